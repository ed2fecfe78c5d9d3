/*
 * c_log_many.c — the hot path's cost per point of simtrack_log_many.
 *
 *   c_log_many K BLOCKS     (bench/log-many.sh builds and runs it)
 *
 * Logs K metrics per call (names m0, m1, ..., string literals as a solver
 * would pass them), first with automatic steps (step -1), then with explicit
 * steps. Each mode: a warm-up of 300,000 points (the lane's first lap, whose
 * pages fault in once), then BLOCKS timed blocks of 1000 calls; prints the
 * median and 99th percentile over the blocks, per call and per point.
 *
 * Between blocks (outside the timing) the program sleeps 5 ms, so the spool
 * writer, which wakes every 100 ms, keeps up: the figures are the cost of the
 * call itself, not the writer's throughput (a solver logging faster than the
 * disk takes data waits for it: see docs/performance.md).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "simtrack.h"

#define BLOCK 1000
#define MAXK 64

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *names[MAXK] = {
    "m0",  "m1",  "m2",  "m3",  "m4",  "m5",  "m6",  "m7",  "m8",  "m9",  "m10", "m11", "m12",
    "m13", "m14", "m15", "m16", "m17", "m18", "m19", "m20", "m21", "m22", "m23", "m24", "m25",
    "m26", "m27", "m28", "m29", "m30", "m31", "m32", "m33", "m34", "m35", "m36", "m37", "m38",
    "m39", "m40", "m41", "m42", "m43", "m44", "m45", "m46", "m47", "m48", "m49", "m50", "m51",
    "m52", "m53", "m54", "m55", "m56", "m57", "m58", "m59", "m60", "m61", "m62", "m63"};

int main(int argc, char **argv) {
    int k = argc > 1 ? atoi(argv[1]) : 10;
    int blocks = argc > 2 ? atoi(argv[2]) : 200;
    if (k < 1 || k > MAXK || blocks < 1) {
        fprintf(stderr, "usage: c_log_many K(1..%d) BLOCKS\n", MAXK);
        return 64;
    }
    simtrack_run *run = NULL;
    if (simtrack_init("bench-c-log-many", NULL, "bench", NULL, "/bench", &run) != SIMTRACK_STATUS_OK) {
        char msg[256];
        simtrack_last_error(msg, sizeof msg);
        fprintf(stderr, "init failed: %s\n", msg);
        return 1;
    }
    double values[MAXK];
    double *samples = malloc(sizeof(double) * (size_t)blocks);
    struct timespec pause = {0, 5000000};
    long step = 0;
    for (int mode = 0; mode < 2; mode++) {
        for (long i = 0; i < 300000 / k; i++) {
            for (int j = 0; j < k; j++) values[j] = (double)(i + j);
            if (simtrack_log_many(run, (size_t)k, names, values, mode ? step++ : -1) != SIMTRACK_STATUS_OK)
                return 2;
        }
        for (int b = 0; b < blocks; b++) {
            nanosleep(&pause, NULL);
            double t0 = now_ns();
            for (int i = 0; i < BLOCK; i++) {
                for (int j = 0; j < k; j++) values[j] = (double)(i + j);
                if (simtrack_log_many(run, (size_t)k, names, values, mode ? step++ : -1) != SIMTRACK_STATUS_OK)
                    return 2;
            }
            samples[b] = now_ns() - t0;
        }
        qsort(samples, (size_t)blocks, sizeof *samples, cmp);
        double med = samples[blocks / 2] / BLOCK, p99 = samples[(blocks * 99) / 100] / BLOCK;
        printf("simtrack_log_many, %2d metrics, %-9s median %7.1f ns/call %6.2f ns/point   p99 %7.1f ns/call\n",
               k, mode ? "explicit" : "automatic", med, med / k, p99);
    }
    free(samples);
    return simtrack_finish(run) == SIMTRACK_STATUS_OK ? 0 : 3;
}

/*
 * c_workload.c — the bench/peers workloads for simtrack from C (the same
 * protocol as peer_worker.py and f_workload.f90, read by peers.py):
 *
 *   c_workload calls NAME N BLOCKS   W1 (simtrack_log, one metric) and W2
 *                                    (simtrack_log_many, ten metrics): one
 *                                    warm-up block, then BLOCKS timed blocks
 *                                    of N calls each; then finish, timed.
 *   c_workload bulk NAME POINTS      W3: POINTS points as POINTS/10 calls of
 *                                    ten metrics, then finish, timed.
 *
 * Prints "key value..." lines: w1_ns / w2_ns (ns per call, one value per
 * block), first_log / last_log (CLOCK_MONOTONIC seconds), finish_s.
 * Online or offline follows the usual SIMTRACK_* environment.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simtrack.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *names[10] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"};

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: c_workload calls NAME N BLOCKS | bulk NAME POINTS\n");
        return 64;
    }
    int calls = strcmp(argv[1], "calls") == 0;
    long n = atol(argv[3]);
    int blocks = argc > 4 ? atoi(argv[4]) : 5;
    simtrack_run *run = NULL;
    if (simtrack_init(argv[2], NULL, "bench", NULL, "/bench", &run) != SIMTRACK_STATUS_OK) {
        char msg[256];
        simtrack_last_error(msg, sizeof msg);
        fprintf(stderr, "init failed: %s\n", msg);
        return 1;
    }
    double values[10];
    long step = 0;
    if (calls) {
        printf("w1_ns");
        for (int b = -1; b < blocks; b++) {
            double t0 = now_s();
            for (long i = 0; i < n; i++, step++) simtrack_log(run, "residual", 1.0 / (double)(step + 1), step);
            if (b >= 0) printf(" %.2f", (now_s() - t0) * 1e9 / (double)n);
        }
        printf("\nw2_ns");
        step = 0;
        for (int b = -1; b < blocks; b++) {
            double t0 = now_s();
            for (long i = 0; i < n; i++, step++) {
                for (int k = 0; k < 10; k++) values[k] = (double)(step + k);
                simtrack_log_many(run, 10, names, values, step);
            }
            if (b >= 0) printf(" %.2f", (now_s() - t0) * 1e9 / (double)n);
        }
        printf("\n");
    } else {
        double first = now_s();
        for (long i = 0; i < n / 10; i++, step++) {
            for (int k = 0; k < 10; k++) values[k] = (double)(step + k);
            simtrack_log_many(run, 10, names, values, step);
        }
        printf("first_log %.6f\nlast_log %.6f\n", first, now_s());
    }
    double t0 = now_s();
    simtrack_status st = simtrack_finish(run);
    double t1 = now_s();
    printf("finish_s %.6f\nclosed_at %.6f\n", t1 - t0, t1);
    if (st != SIMTRACK_STATUS_OK) {
        fprintf(stderr, "finish: %s\n", simtrack_status_str(st));
        return 2;
    }
    return 0;
}

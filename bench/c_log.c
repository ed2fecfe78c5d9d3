/*
 * c_log.c — cost of logging from a C hot loop, and memory while the server
 * is away.
 *
 *   bench/run-c-log.sh            (builds the release library and runs this)
 *
 * Prints, for simtrack_log of one metric and simtrack_log_many of ten: the
 * median and 99th-percentile ns per call over samples of 1000 calls; then
 * the peak resident memory (VmHWM) after logging POINTS points.
 * Whether the worker ships to a server or spools offline depends on the
 * usual SIMTRACK_URL / SIMTRACK_TOKEN / SIMTRACK_MODE environment.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simtrack.h"

#define BLOCK 1000

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long vm_hwm_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static void report(const char *what, double *samples, int n, int per_sample) {
    qsort(samples, (size_t)n, sizeof *samples, cmp);
    printf("%-34s median %7.1f ns/call   p99 %7.1f ns/call\n", what, samples[n / 2] / per_sample,
           samples[(n * 99) / 100] / per_sample);
}

/* The same samples (already sorted by report) per point. */
static void report_points(const char *what, double *samples, int n, int points_per_sample) {
    qsort(samples, (size_t)n, sizeof *samples, cmp);
    printf("%-34s median %7.2f ns/point  p99 %7.2f ns/point\n", what, samples[n / 2] / points_per_sample,
           samples[(n * 99) / 100] / points_per_sample);
}

int main(int argc, char **argv) {
    int nsamples = argc > 1 ? atoi(argv[1]) : 5000;
    long points = argc > 2 ? atol(argv[2]) : 10000000L;
    double *samples = malloc(sizeof(double) * (size_t)nsamples);
    simtrack_run *run = NULL;
    if (simtrack_init("bench-c-log", NULL, "bench", NULL, "/bench", &run) != SIMTRACK_STATUS_OK) {
        char msg[256];
        simtrack_last_error(msg, sizeof msg);
        fprintf(stderr, "init failed: %s\n", msg);
        return 1;
    }
    printf("rss after init: %.1f MiB\n", vm_hwm_kb() / 1024.0);

    long step = 0;
    for (int s = 0; s < nsamples; s++) {
        double t0 = now_ns();
        for (int i = 0; i < BLOCK; i++) simtrack_log(run, "residual", 1.0 / (double)(step + 1), step), step++;
        samples[s] = now_ns() - t0;
    }
    report("simtrack_log, 1 metric", samples, nsamples, BLOCK);

    const char *names[10] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"};
    double values[10];
    int many = nsamples / 10 > 0 ? nsamples / 10 : 1;
    for (int s = 0; s < many; s++) {
        double t0 = now_ns();
        for (int i = 0; i < BLOCK; i++) {
            for (int k = 0; k < 10; k++) values[k] = (double)(i + k);
            simtrack_log_many(run, 10, names, values, -1);
        }
        samples[s] = now_ns() - t0;
    }
    report("simtrack_log_many, 10 metrics", samples, many, BLOCK);
    report_points("simtrack_log_many, automatic steps", samples, many, BLOCK * 10);

    long mstep = 0;
    for (int s = 0; s < many; s++) {
        double t0 = now_ns();
        for (int i = 0; i < BLOCK; i++) {
            for (int k = 0; k < 10; k++) values[k] = (double)(i + k);
            simtrack_log_many(run, 10, names, values, mstep++);
        }
        samples[s] = now_ns() - t0;
    }
    report_points("simtrack_log_many, explicit steps", samples, many, BLOCK * 10);

    double t0 = now_ns();
    for (long i = 0; i < points; i++) simtrack_log(run, "bulk", (double)i, i);
    double secs = (now_ns() - t0) / 1e9;
    printf("%ld points logged in %.2f s (%.1f M points/s from one thread)\n", points, secs, points / secs / 1e6);
    printf("peak rss: %.1f MiB\n", vm_hwm_kb() / 1024.0);
    t0 = now_ns();
    simtrack_status st = simtrack_finish(run);
    printf("finish: %s after %.2f s\n", simtrack_status_str(st), (now_ns() - t0) / 1e9);
    free(samples);
    return 0;
}

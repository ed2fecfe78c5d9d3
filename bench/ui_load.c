/*
 * ui_load.c — loads one big run for the UI benchmark (bench/ui_bench.sh):
 * METRICS metrics of POINTS steps each, logged through libsimtrack with
 * simtrack_log_many (so the server receives msgpack batches, the way every
 * solver sends them), then flushed and finished.
 *
 *   ui_load NAME METRICS POINTS
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "simtrack.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: ui_load NAME METRICS POINTS\n");
        return 64;
    }
    int m = atoi(argv[2]);
    long n = atol(argv[3]);
    if (m < 1 || m > 10000 || n < 1) {
        fprintf(stderr, "ui_load: METRICS must be 1..10000 and POINTS positive\n");
        return 64;
    }
    char **names = calloc((size_t)m, sizeof *names);
    double *values = calloc((size_t)m, sizeof *values);
    if (!names || !values) return 1;
    for (int k = 0; k < m; k++) {
        names[k] = malloc(32);
        snprintf(names[k], 32, "metric_%03d", k);
    }
    simtrack_run *run = NULL;
    if (simtrack_init(argv[1], "{\"bench\": \"ui\"}", "bench,ui", "UI benchmark run", "/bench/ui", &run) !=
        SIMTRACK_STATUS_OK) {
        fprintf(stderr, "init failed\n");
        return 1;
    }
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        for (int k = 0; k < m; k++) {
            /* a decay with a wiggle and some deterministic noise, different per metric */
            double noise = (double)((i * 2654435761u + (unsigned)k * 40503u) % 1000u) / 1000.0 - 0.5;
            values[k] = exp(-(double)i / (2e4 * (k + 1))) + 0.05 * sin((double)i * 1e-4 * (k + 1)) + 0.01 * noise;
        }
        simtrack_log_many(run, (size_t)m, (const char *const *)names, values, i);
    }
    double t1 = now_s();
    simtrack_status fl = simtrack_flush(run, 3600.0);
    double t2 = now_s();
    simtrack_status st = simtrack_finish(run);
    fprintf(stderr, "ui_load: logged %ld x %d points in %.1f s, flushed in %.1f s (%s, %s)\n", n, m, t1 - t0,
            t2 - t1, simtrack_status_str(fl), simtrack_status_str(st));
    return st == SIMTRACK_STATUS_OK ? 0 : 2;
}

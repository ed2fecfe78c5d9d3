/*
 * grids_log_array.c — cost of simtrack_log_array for a large real64 field,
 * and end-to-end throughput to the server.
 *
 *   ./grids_log_array [elements] [steps]
 *
 * Defines a 1-D grid of `elements` points, logs `steps` steps of a smooth
 * field (a travelling wave), timing every call; then flushes (deadline
 * 600 s) and reports elements/s from the first call to the end of the flush
 * (online: everything acknowledged by the server). Prints the run id.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "simtrack.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 1000000;
    int steps = argc > 2 ? atoi(argv[2]) : 20;
    double *x = malloc(n * sizeof *x), *u = malloc(n * sizeof *u), *cost = malloc(steps * sizeof *cost);
    if (!x || !u || !cost) return 1;
    for (size_t i = 0; i < n; i++) x[i] = (double)i / (double)n;

    simtrack_run *run = NULL;
    if (simtrack_init("bench-grids", NULL, "bench", NULL, "/bench", &run) != SIMTRACK_STATUS_OK) return 1;
    simtrack_axis ax = {"x", "m", x, n};
    if (simtrack_grid(run, "line", 1, &ax) != SIMTRACK_STATUS_OK) return 1;

    double t0 = now();
    for (int s = 0; s < steps; s++) {
        for (size_t i = 0; i < n; i++) u[i] = 300.0 + 20.0 * sin(6.283185307179586 * (x[i] * 8.0 - s * 0.05));
        double a = now();
        simtrack_status st = simtrack_log_array(run, "u", "line", u, n, SIMTRACK_ORDER_FORTRAN, s);
        cost[s] = now() - a;
        if (st != SIMTRACK_STATUS_OK) {
            char msg[256];
            simtrack_last_error(msg, sizeof msg);
            fprintf(stderr, "log_array: %s\n", msg);
            return 1;
        }
    }
    double logged = now();
    simtrack_status fl = simtrack_flush(run, 600.0);
    double flushed = now();
    char id[64] = "";
    simtrack_run_id(run, id, sizeof id);
    simtrack_finish(run);

    double sum = 0;
    for (int s = 0; s < steps; s++) sum += cost[s];
    qsort(cost, steps, sizeof *cost, cmp);
    /* Time spent outside the calls (filling u) is excluded from end-to-end. */
    double fill = (logged - t0) - sum;
    printf("elements %zu, steps %d\n", n, steps);
    printf("simtrack_log_array: median %.3f ms, mean %.3f ms, max %.3f ms per call (%.2f GB/s median)\n",
           cost[steps / 2] * 1e3, sum / steps * 1e3, cost[steps - 1] * 1e3,
           n * 8.0 / cost[steps / 2] / 1e9);
    printf("flush: %s after %.3f s\n", simtrack_status_str(fl), flushed - logged);
    printf("end to end: %.3g elements/s (%zu elements in %.3f s of logging + delivery)\n",
           (double)n * steps / (flushed - t0 - fill), n * (size_t)steps, flushed - t0 - fill);
    printf("run %s\n", id);
    free(x); free(u); free(cost);
    return 0;
}

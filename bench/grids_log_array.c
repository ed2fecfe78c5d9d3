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
 *
 * Per call it also counts the calling thread's page faults and the times it
 * was preempted (getrusage): a slow call with neither waited on something
 * else (a lock, a system call); one preempted was slow because another
 * process had the CPU (a loaded machine), not because of the call.
 * GRIDS_TRACE=1 prints every call.
 */
#define _GNU_SOURCE
#include <sys/resource.h>
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

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 1000000;
    int steps = argc > 2 ? atoi(argv[2]) : 20;
    double *x = malloc(n * sizeof *x), *u = malloc(n * sizeof *u), *cost = malloc(steps * sizeof *cost),
           *cpu = malloc(steps * sizeof *cpu);
    if (!x || !u || !cost || !cpu) return 1;
    for (size_t i = 0; i < n; i++) x[i] = (double)i / (double)n;

    simtrack_run *run = NULL;
    if (simtrack_init("bench-grids", NULL, "bench", NULL, "/bench", &run) != SIMTRACK_STATUS_OK) return 1;
    simtrack_axis ax = {"x", "m", x, n};
    if (simtrack_grid(run, "line", 1, &ax) != SIMTRACK_STATUS_OK) return 1;

    long faults = 0, preempted = 0;
    int trace = getenv("GRIDS_TRACE") != NULL;
    double t0 = now();
    for (int s = 0; s < steps; s++) {
        for (size_t i = 0; i < n; i++) u[i] = 300.0 + 20.0 * sin(6.283185307179586 * (x[i] * 8.0 - s * 0.05));
        struct rusage r0, r1;
        getrusage(RUSAGE_THREAD, &r0);
        double a = now(), ca = cpu_now();
        simtrack_status st = simtrack_log_array(run, "u", "line", u, n, SIMTRACK_ORDER_FORTRAN, s);
        cost[s] = now() - a;
        cpu[s] = cpu_now() - ca;
        getrusage(RUSAGE_THREAD, &r1);
        long f = r1.ru_minflt - r0.ru_minflt + r1.ru_majflt - r0.ru_majflt;
        long p = r1.ru_nivcsw - r0.ru_nivcsw;
        faults += f;
        preempted += p > 0;
        if (trace)
            fprintf(stderr, "step %d: %.3f ms (CPU %.3f ms), %ld page faults, preempted %ld times\n", s, cost[s] * 1e3,
                    cpu[s] * 1e3, f, p);
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

    double sum = 0, cpu_sum = 0;
    for (int s = 0; s < steps; s++) sum += cost[s], cpu_sum += cpu[s];
    qsort(cost, steps, sizeof *cost, cmp);
    qsort(cpu, steps, sizeof *cpu, cmp);
    /* Time spent outside the calls (filling u) is excluded from end-to-end. */
    double fill = (logged - t0) - sum;
    printf("elements %zu, steps %d\n", n, steps);
    printf("simtrack_log_array: median %.3f ms, p90 %.3f ms, mean %.3f ms, max %.3f ms per call (%.2f GB/s median)\n",
           cost[steps / 2] * 1e3, cost[(steps * 9) / 10] * 1e3, sum / steps * 1e3, cost[steps - 1] * 1e3,
           n * 8.0 / cost[steps / 2] / 1e9);
    printf("simtrack_log_array CPU time of the calling thread: median %.3f ms, p90 %.3f ms, mean %.3f ms, max %.3f ms\n",
           cpu[steps / 2] * 1e3, cpu[(steps * 9) / 10] * 1e3, cpu_sum / steps * 1e3, cpu[steps - 1] * 1e3);
    double load[1] = {0};
    getloadavg(load, 1);
    printf("in the calls: %ld page faults; %ld of %d calls preempted (load average %.2f)\n", faults, preempted, steps,
           load[0]);
    printf("flush: %s after %.3f s\n", simtrack_status_str(fl), flushed - logged);
    printf("end to end: %.3g elements/s (%zu elements in %.3f s of logging + delivery)\n",
           (double)n * steps / (flushed - t0 - fill), n * (size_t)steps, flushed - t0 - fill);
    printf("run %s\n", id);
    free(x); free(u); free(cost); free(cpu);
    return 0;
}

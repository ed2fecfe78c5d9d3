/*
 * c_threads.c — cost of simtrack_log when several pthreads log to one run.
 *
 *   bench/log-scaling.sh          (builds the release library, runs 1/2/4/8 threads)
 *   c_threads THREADS [SAMPLES] [own|shared]
 *
 * Each thread times SAMPLES blocks of 1000 calls (after 100 blocks of
 * warm-up; all threads start together at a barrier) and takes the median
 * ns/call of its blocks. Printed: the median and the worst of the threads'
 * medians, and the aggregate calls/s. "own": thread k logs metric "t<k>" at
 * explicit steps (a solver's per-thread diagnostics); "shared": every thread
 * logs metric "shared" with automatic steps (the steps are handed out by one
 * counter all threads touch). Every call must return OK.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simtrack.h"

#define BLOCK 1000
#define WARMUP 100

static simtrack_run *run;
static int nsamples = 2000;
static int shared_metric = 0;
static pthread_barrier_t start;
static double medians[64];
static double wall[64];
static long failures = 0;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void *work(void *arg) {
    long k = (long)arg;
    char name[16];
    if (shared_metric)
        snprintf(name, sizeof name, "shared");
    else
        snprintf(name, sizeof name, "t%ld", k);
    double *samples = malloc(sizeof(double) * (size_t)nsamples);
    long step = 0, bad = 0;
    pthread_barrier_wait(&start);
    double w0 = now_ns();
    for (int s = -WARMUP; s < nsamples; s++) {
        double t0 = now_ns();
        for (int i = 0; i < BLOCK; i++, step++)
            bad += simtrack_log(run, name, (double)step, shared_metric ? -1 : step) != SIMTRACK_STATUS_OK;
        if (s >= 0) samples[s] = (now_ns() - t0) / BLOCK;
    }
    wall[k] = now_ns() - w0;
    qsort(samples, (size_t)nsamples, sizeof *samples, cmp);
    medians[k] = samples[nsamples / 2];
    free(samples);
    __atomic_add_fetch(&failures, bad, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (argc > 2) nsamples = atoi(argv[2]);
    if (argc > 3) shared_metric = strcmp(argv[3], "shared") == 0;
    if (threads < 1 || threads > 64) return 1;
    if (simtrack_init("bench-c-threads", NULL, "bench", NULL, "/bench", &run) != SIMTRACK_STATUS_OK) {
        char msg[256];
        simtrack_last_error(msg, sizeof msg);
        fprintf(stderr, "init failed: %s\n", msg);
        return 1;
    }
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    pthread_t th[64];
    for (long k = 0; k < threads; k++) pthread_create(&th[k], NULL, work, (void *)k);
    for (int k = 0; k < threads; k++) pthread_join(th[k], NULL);
    qsort(medians, (size_t)threads, sizeof *medians, cmp);
    double longest = 0;
    for (int k = 0; k < threads; k++) longest = wall[k] > longest ? wall[k] : longest;
    double calls = (double)threads * (nsamples + WARMUP) * BLOCK;
    printf("c pthreads %-6s threads %d: median ns/call %6.1f (threads' medians %.1f..%.1f)   %.1f M calls/s in all\n",
           shared_metric ? "shared" : "own", threads, medians[threads / 2], medians[0], medians[threads - 1],
           calls / longest * 1e3);
    simtrack_status st = simtrack_finish(run);
    if (st != SIMTRACK_STATUS_OK || failures) {
        fprintf(stderr, "finish: %s, %ld failed calls\n", simtrack_status_str(st), failures);
        return 2;
    }
    return 0;
}

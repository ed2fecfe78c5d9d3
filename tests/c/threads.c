/* 16 threads log concurrently on one handle; prints the run id. Each thread
 * logs POINTS values of its own metric with automatic steps, plus the shared
 * metric "all" — the test then finds every point in the spool. */
#include <pthread.h>
#include <stdio.h>

#include "simtrack.h"

#define THREADS 16
#define POINTS 20000

static simtrack_run *run;
static int errors = 0;

static void *work(void *arg) {
    long t = (long)arg;
    char name[32];
    snprintf(name, sizeof name, "thread/%02ld", t);
    for (long i = 0; i < POINTS; i++) {
        if (simtrack_log(run, name, (double)i, -1) != SIMTRACK_STATUS_OK) __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
        if (simtrack_log(run, "all", (double)t, -1) != SIMTRACK_STATUS_OK) __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(void) {
    if (simtrack_init("threads", NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK) return 1;
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, work, (void *)t);
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    char id[64];
    simtrack_run_id(run, id, sizeof id);
    if (simtrack_finish(run) != SIMTRACK_STATUS_OK || errors) return 2;
    printf("%s\n", id);
    return 0;
}

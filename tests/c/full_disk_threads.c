/* Eight threads log while the spool's disk is full: THREADS threads each log
 * metric "w<k>" at steps 0..POINTS-1 (value = step). A call that fails (the
 * thread's buffer is full and the disk takes nothing) took nothing: the
 * thread counts it, waits 5 ms and logs the same step again. Prints the run
 * id and the number of failed calls; the test removes the disk's filler
 * while the threads wait and then finds every point in the spool. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "simtrack.h"

#define THREADS 8
#define POINTS 200000

static simtrack_run *run;
static long failures = 0;

static void *work(void *arg) {
    long k = (long)arg;
    char name[16];
    snprintf(name, sizeof name, "w%ld", k);
    struct timespec pause = {0, 5000000};
    for (long i = 0; i < POINTS;) {
        simtrack_status st = simtrack_log(run, name, (double)i, i);
        if (st == SIMTRACK_STATUS_OK) {
            i++;
        } else if (st == SIMTRACK_STATUS_IO) {
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
            nanosleep(&pause, NULL);
        } else {
            fprintf(stderr, "unexpected status %s\n", simtrack_status_str(st));
            return (void *)1;
        }
    }
    return NULL;
}

int main(void) {
    if (simtrack_init("full-disk", NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK) return 1;
    pthread_t th[THREADS];
    for (long k = 0; k < THREADS; k++) pthread_create(&th[k], NULL, work, (void *)k);
    int bad = 0;
    for (int k = 0; k < THREADS; k++) {
        void *r;
        pthread_join(th[k], &r);
        bad |= r != NULL;
    }
    char id[64];
    simtrack_run_id(run, id, sizeof id);
    simtrack_status st = simtrack_finish(run);
    if (st != SIMTRACK_STATUS_OK || bad) {
        char msg[256];
        simtrack_last_error(msg, sizeof msg);
        fprintf(stderr, "finish: %s %s\n", simtrack_status_str(st), msg);
        return 2;
    }
    printf("%s %ld\n", id, failures);
    return 0;
}

/* Misuse of simtrack_finish, ROUNDS times: two threads finish one handle at
 * the same moment while a third logs into it.
 *
 * Each round: exactly one simtrack_finish returns OK and the other returns
 * SIMTRACK_STATUS_RUN_FINISHED with a message; the logger's first failure is
 * SIMTRACK_STATUS_RUN_FINISHED; afterwards every call on the handle says the
 * run is finished (and the queries return 0). Prints "<run id> <points the
 * logger logged with OK>" per round, so the test can check that each of
 * those points reached the spool. Exits non-zero on the first surprise. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "simtrack.h"

#define ROUNDS 60

static simtrack_run *run;
static pthread_barrier_t start;
static simtrack_status finished[2];
static long logged;
static simtrack_status logger_stop;

static void *finisher(void *arg) {
    long t = (long)arg;
    pthread_barrier_wait(&start);
    finished[t] = simtrack_finish(run);
    if (finished[t] != SIMTRACK_STATUS_OK) {
        char msg[256];
        if (simtrack_last_error(msg, sizeof msg) == 0) finished[t] = SIMTRACK_STATUS_INTERNAL;
    }
    return NULL;
}

static void *logger(void *arg) {
    (void)arg;
    long i = 0;
    simtrack_status st;
    pthread_barrier_wait(&start);
    while ((st = simtrack_log(run, "x", (double)i, i)) == SIMTRACK_STATUS_OK) i++;
    logged = i;
    logger_stop = st;
    return NULL;
}

static int fail(int round, const char *what) {
    fprintf(stderr, "round %d: %s (finish: %d, %d; logger stopped with %d)\n", round, what,
            finished[0], finished[1], logger_stop);
    return 1;
}

int main(void) {
    for (int round = 0; round < ROUNDS; round++) {
        if (simtrack_init("double-finish", NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK)
            return fail(round, "init failed");
        char id[64];
        simtrack_run_id(run, id, sizeof id);
        pthread_barrier_init(&start, NULL, 3);
        pthread_t th[3];
        pthread_create(&th[0], NULL, finisher, (void *)0L);
        pthread_create(&th[1], NULL, finisher, (void *)1L);
        pthread_create(&th[2], NULL, logger, NULL);
        for (int t = 0; t < 3; t++) pthread_join(th[t], NULL);
        pthread_barrier_destroy(&start);

        int ok = (finished[0] == SIMTRACK_STATUS_OK) + (finished[1] == SIMTRACK_STATUS_OK);
        int refused = (finished[0] == SIMTRACK_STATUS_RUN_FINISHED) +
                      (finished[1] == SIMTRACK_STATUS_RUN_FINISHED);
        if (ok != 1 || refused != 1) return fail(round, "not exactly one finish succeeded");
        if (logger_stop != SIMTRACK_STATUS_RUN_FINISHED) return fail(round, "logger stopped oddly");

        /* The handle is finished: later calls are refused, never undefined. */
        if (simtrack_log(run, "x", 1.0, -1) != SIMTRACK_STATUS_RUN_FINISHED ||
            simtrack_event(run, "late") != SIMTRACK_STATUS_RUN_FINISHED ||
            simtrack_flush(run, 0.0) != SIMTRACK_STATUS_RUN_FINISHED ||
            simtrack_finish(run) != SIMTRACK_STATUS_RUN_FINISHED ||
            simtrack_abort_requested(run) != 0 || simtrack_run_id(run, NULL, 0) != 0)
            return fail(round, "a call after finish was not refused");
        char msg[256];
        simtrack_last_error(msg, sizeof msg);
        if (strstr(msg, "finished") == NULL) return fail(round, "message does not say finished");
        printf("%s %ld\n", id, logged);
    }
    return 0;
}

/* fork() after simtrack_init, while two threads log heavily into the run.
 *
 * The parent forks CHILDREN children, one every millisecond, each doing one
 * of five things with the handle it inherited (child i does kind i % 5):
 *   0  log a few points and an event, flush, finish, then exit(0)
 *   1  log far past the memory cap (run with SIMTRACK_MEMORY_CAP_MB=1),
 *      finish, then exit(0)
 *   2  simtrack_finish the inherited handle at once, then exit(0)
 *   3  exit(0) at once (the library's exit handler runs in the child)
 *   4  try to start a run of its own: simtrack_init must refuse it at once
 *      with SIMTRACK_STATUS_IN_FORKED_CHILD and a NULL run, then exit(0)
 * Every call a child makes must return OK, and every child must end within
 * CHILD_SECONDS: a child that deadlocks is killed and reported.
 *
 * argv[1], if given, replaces LOGGER_MAX.
 *
 * Prints "parent <run id> <points of thread 0> <points of thread 1>" and,
 * for each kind-4 child, "child refused". Exits non-zero if any
 * child failed or hung, or if a parent call failed. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "simtrack.h"

#define CHILDREN 40
#define CHILD_SECONDS 10.0
#define LOGGER_MAX 1000000L /* points per logging thread, unless argv[1] says */

static simtrack_run *run;
static long logger_max = LOGGER_MAX;
static volatile int stop = 0;
static long logged[2];
static int parent_errors = 0;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *logger(void *arg) {
    long t = (long)arg;
    const char *name = t == 0 ? "parent/t0" : "parent/t1";
    long i = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED) && i < logger_max) {
        if (simtrack_log(run, name, (double)i, -1) != SIMTRACK_STATUS_OK) {
            __atomic_add_fetch(&parent_errors, 1, __ATOMIC_RELAXED);
            break;
        }
        i++;
    }
    logged[t] = i;
    return NULL;
}

/* The body of child `i`; returns its exit status. */
static int child(int i) {
    int bad = 0;
    switch (i % 5) {
    case 0:
        for (long k = 0; k < 100; k++) bad |= simtrack_log(run, "child/few", (double)k, -1);
        bad |= simtrack_event(run, "hello from a child");
        bad |= simtrack_flush(run, 1.0);
        bad |= simtrack_finish(run);
        break;
    case 1:
        for (long k = 0; k < 200000; k++) bad |= simtrack_log(run, "child/many", (double)k, -1);
        bad |= simtrack_finish(run);
        break;
    case 2:
        bad |= simtrack_log(run, "child/finish", 1.0, 0);
        bad |= simtrack_finish(run);
        break;
    case 3:
        break;
    case 4: {
        simtrack_run *own = NULL;
        int st = simtrack_init("forked-child", NULL, NULL, NULL, NULL, &own);
        if (st == SIMTRACK_STATUS_IN_FORKED_CHILD && own == NULL) {
            printf("child refused\n");
        } else {
            fprintf(stderr, "child %d: simtrack_init gave %d, not IN_FORKED_CHILD\n", i, st);
            bad = 1;
        }
        break;
    }
    }
    if (bad) {
        char msg[256];
        simtrack_last_error(msg, sizeof msg);
        fprintf(stderr, "child %d (kind %d): a call failed: %s\n", i, i % 5, msg);
    }
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc > 1) logger_max = atol(argv[1]);
    if (simtrack_init("fork-parent", NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK) return 10;
    pthread_t th[2];
    for (long t = 0; t < 2; t++) pthread_create(&th[t], NULL, logger, (void *)t);

    pid_t pids[CHILDREN];
    double started[CHILDREN];
    struct timespec gap = {0, 1000000};
    for (int i = 0; i < CHILDREN; i++) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 11;
        }
        if (pid == 0) exit(child(i));
        pids[i] = pid;
        started[i] = now();
        nanosleep(&gap, NULL);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);

    int failed = 0, left = CHILDREN;
    double slowest = 0.0;
    while (left > 0) {
        for (int i = 0; i < CHILDREN; i++) {
            if (pids[i] == 0) continue;
            int status;
            pid_t r = waitpid(pids[i], &status, WNOHANG);
            double age = now() - started[i];
            if (r == pids[i]) {
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                    fprintf(stderr, "child %d (kind %d) failed: status %d\n", i, i % 5, status);
                    failed++;
                }
                if (age > slowest) slowest = age;
                pids[i] = 0;
                left--;
            } else if (age > CHILD_SECONDS) {
                fprintf(stderr, "child %d (kind %d) hung for %.0f s: killed\n", i, i % 5, age);
                kill(pids[i], SIGKILL);
                waitpid(pids[i], &status, 0);
                failed++;
                pids[i] = 0;
                left--;
            }
        }
        struct timespec tick = {0, 5000000};
        nanosleep(&tick, NULL);
    }
    fprintf(stderr, "slowest child: %.3f s\n", slowest);

    char id[64];
    simtrack_run_id(run, id, sizeof id);
    simtrack_status st = simtrack_finish(run);
    if (st != SIMTRACK_STATUS_OK) {
        fprintf(stderr, "parent finish: %s\n", simtrack_status_str(st));
        return 12;
    }
    printf("parent %s %ld %ld\n", id, logged[0], logged[1]);
    if (parent_errors) return 13;
    return failed ? 14 : 0;
}

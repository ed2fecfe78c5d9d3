/* A solver that dies while it logs, and proves what it was told was logged.
 *
 *   dying NAME PROOF kill     log until killed (the test sends SIGKILL)
 *   dying NAME PROOF segv N   log N points per thread, then segfault
 *
 * THREADS threads each log metric "t<k>" at steps 0, 1, 2, ... (value
 * step/2), pausing 1 ms every 200 points. After each simtrack_log that
 * returned SIMTRACK_STATUS_OK, the thread stores its step into slot k of
 * PROOF, a file mapped shared: the kernel keeps the store when the process
 * dies, so PROOF holds, per thread, the last step whose call returned (-1:
 * none). Prints the run id once init is done. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "simtrack.h"

#define THREADS 3

static simtrack_run *run;
static volatile long *proof;
static long limit = -1;

static void *work(void *arg) {
    long k = (long)arg;
    char name[16];
    snprintf(name, sizeof name, "t%ld", k);
    struct timespec ms = {0, 1000000};
    for (long i = 0; limit < 0 || i < limit; i++) {
        if (simtrack_log(run, name, 0.5 * (double)i, i) != SIMTRACK_STATUS_OK) {
            char msg[256];
            simtrack_last_error(msg, sizeof msg);
            fprintf(stderr, "log failed: %s\n", msg);
            exit(3);
        }
        __atomic_store_n(&proof[k], i, __ATOMIC_RELEASE);
        if (i % 200 == 199) nanosleep(&ms, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) return 1;
    int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return 1;
    proof = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (proof == MAP_FAILED) return 1;
    for (int k = 0; k < THREADS; k++) proof[k] = -1;
    int segv = strcmp(argv[3], "segv") == 0;
    if (segv) limit = argc > 4 ? atol(argv[4]) : 1000;
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (simtrack_init(argv[1], NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK) return 2;
    char id[64];
    simtrack_run_id(run, id, sizeof id);
    printf("%s\n", id);
    fflush(stdout);
    pthread_t th[THREADS];
    for (long k = 0; k < THREADS; k++) pthread_create(&th[k], NULL, work, (void *)k);
    for (int k = 0; k < THREADS; k++) pthread_join(th[k], NULL);
    if (segv) {
        /* The points are in the lanes only (no flush, no finish): die. */
        raise(SIGSEGV);
        *(volatile int *)0 = 1;
    }
    for (;;) pause();
}

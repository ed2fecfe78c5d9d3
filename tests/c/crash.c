/* Logs, flushes, announces how many points the flush covered, then keeps
 * logging until it is killed (the test sends SIGKILL). */
#include <stdio.h>
#include <stdlib.h>

#include "simtrack.h"

int main(int argc, char **argv) {
    long before_flush = argc > 1 ? atol(argv[1]) : 100000;
    simtrack_run *run = NULL;
    if (simtrack_init("crash", NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK) return 1;
    for (long i = 0; i < before_flush; i++) simtrack_log(run, "x", (double)i, i);
    simtrack_event(run, "about to flush");
    if (simtrack_flush(run, 30.0) != SIMTRACK_STATUS_OK) return 2;
    char id[64];
    simtrack_run_id(run, id, sizeof id);
    printf("flushed %s %ld\n", id, before_flush);
    fflush(stdout);
    for (long i = before_flush;; i++) simtrack_log(run, "x", (double)i, i);
}

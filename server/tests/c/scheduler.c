/* A solver under a batch scheduler, for tests/scheduler_signals.rs.
 * argv[1]: run name; argv[2]: "env" (opt in with SIMTRACK_SIGNALS), "call"
 * (opt in with simtrack_handle_signals("TERM,USR1", 5)), or "own" (the
 * solver has its own SIGTERM handler, installed first, that writes a line
 * and exits 0; opt in with the call). Logs 1000 points, prints "ready",
 * then waits for a signal. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "simtrack.h"

static void own_handler(int sig) {
    (void)sig;
    static const char msg[] = "solver handler ran\n";
    ssize_t n = write(1, msg, sizeof msg - 1);
    (void)n;
    _exit(0);
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "scheduler";
    const char *how = argc > 2 ? argv[2] : "env";
    if (strcmp(how, "own") == 0) {
        signal(SIGTERM, own_handler);
    }
    if (strcmp(how, "call") == 0 || strcmp(how, "own") == 0) {
        if (simtrack_handle_signals("TERM,USR1", 5.0) != SIMTRACK_STATUS_OK) {
            fprintf(stderr, "simtrack_handle_signals failed\n");
            return 1;
        }
    }
    simtrack_run *run = NULL;
    if (simtrack_init(name, NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK) {
        fprintf(stderr, "init failed\n");
        return 1;
    }
    for (int i = 0; i < 1000; i++) {
        simtrack_log(run, "x", (double)i, i);
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
    }
}

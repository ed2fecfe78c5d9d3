/* Logs STEPS arrays of 1000 values (value i + 1000 * step) on a 1-D grid,
 * prints the run id, and SIGKILLs itself as soon as the last
 * simtrack_log_array has returned: the test checks that every array is
 * delivered by recovery, exactly once. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "simtrack.h"

#define N 1000

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 8;
    static double x[N], u[N];
    for (int i = 0; i < N; i++) x[i] = i;
    simtrack_run *run = NULL;
    if (simtrack_init("array-kill", NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK) return 1;
    simtrack_axis ax = {"x", "m", x, N};
    if (simtrack_grid(run, "line", 1, &ax) != SIMTRACK_STATUS_OK) return 2;
    char id[64];
    simtrack_run_id(run, id, sizeof id);
    printf("run %s\n", id);
    fflush(stdout);
    struct timespec pause = {0, 2000000};
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < N; i++) u[i] = i + 1000.0 * s;
        if (simtrack_log_array(run, "u", "line", u, N, SIMTRACK_ORDER_FORTRAN, s) != SIMTRACK_STATUS_OK) return 3;
        /* Half the steps leave the array thread time to make files ready. */
        if (s % 2) nanosleep(&pause, NULL);
    }
    raise(SIGKILL);
    return 4;
}

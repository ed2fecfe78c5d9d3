/* Logs and returns from main without simtrack_finish: the exit handler
 * must still get every point into the spool. Prints the run id first. */
#include <stdio.h>

#include "simtrack.h"

int main(void) {
    simtrack_run *run = NULL;
    if (simtrack_init("no-finish", NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK) return 1;
    char id[64];
    simtrack_run_id(run, id, sizeof id);
    printf("%s\n", id);
    for (long i = 0; i < 12345; i++) simtrack_log(run, "x", (double)i, i);
    return 0;
}

/* The length-taking entry points Fortran uses: names passed with a length
 * and blank padding, and a packed array of fixed-width names. Prints the
 * run id. */
#include <stdio.h>
#include <string.h>

#include "simtrack.h"

int main(void) {
    simtrack_run *run = NULL;
    if (simtrack_init("layout", NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK) return 1;
    const char padded[] = "resid     "; /* like character(len=10) :: name = 'resid' */
    for (int i = 0; i < 5; i++)
        if (simtrack_log_n(run, padded, sizeof padded - 1, (double)i, -1) != SIMTRACK_STATUS_OK) return 2;
    /* character(len=6) :: names(3) = [character(len=6) :: 'a', 'bb', 'cccccc'] */
    const char names[] = "a     bb    cccccc";
    const double values[3] = {1.0, 2.0, 3.0};
    for (int s = 0; s < 4; s++)
        if (simtrack_log_many_fixed(run, 3, names, 6, values, s) != SIMTRACK_STATUS_OK) return 3;
    /* An all-blank name is refused and nothing of that call is logged. */
    const char blank_in_middle[] = "ok    " "      " "ok2   ";
    if (simtrack_log_many_fixed(run, 3, blank_in_middle, 6, values, 9) != SIMTRACK_STATUS_INVALID_ARGUMENT) return 4;
    char id[64];
    simtrack_run_id(run, id, sizeof id);
    if (simtrack_finish(run) != SIMTRACK_STATUS_OK) return 5;
    printf("%s\n", id);
    return 0;
}

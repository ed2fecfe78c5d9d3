/* Grid and array calls with bad input: each returns its status (printed as
 * "name=status"), none crashes; then good calls in both orders. Prints the
 * run id last. */
#include <stdio.h>

#include "simtrack.h"

#define P(name, call) printf("%s=%d\n", name, (int)(call))

int main(void) {
    simtrack_run *run = NULL;
    if (simtrack_init("grid-input", NULL, NULL, NULL, NULL, &run) != SIMTRACK_STATUS_OK) return 1;
    double x[3] = {0, 1, 2}, y[2] = {10, 20}, bad[3] = {0, 2, 1};
    simtrack_axis ok[2] = {{"x", "m", x, 3}, {"y", NULL, y, 2}};
    simtrack_axis unordered[1] = {{"x", "m", bad, 3}};
    simtrack_axis nulls[1] = {{"x", "m", NULL, 3}};
    double f[6] = {1, 2, 3, 4, 5, 6};    /* axis 0 fastest: f[i + 3j] */
    double c[3][2] = {{1, 4}, {2, 5}, {3, 6}}; /* c[i][j]: the same field */
    float f32[6] = {1, 2, 3, 4, 5, 6.5f};

    P("null_run", simtrack_grid(NULL, "g", 2, ok));
    P("null_name", simtrack_grid(run, NULL, 2, ok));
    P("null_axes", simtrack_grid(run, "g", 2, NULL));
    P("ndim_0", simtrack_grid(run, "g", 0, ok));
    P("ndim_4", simtrack_grid(run, "g", 4, ok));
    P("unordered", simtrack_grid(run, "g", 1, unordered));
    P("null_coords", simtrack_grid(run, "g", 1, nulls));
    P("grid", simtrack_grid(run, "g", 2, ok));
    P("grid_again", simtrack_grid(run, "g", 2, ok));
    P("grid_other_lengths", simtrack_grid(run, "g", 1, ok));
    P("unknown_grid", simtrack_log_array(run, "T", "nope", f, 6, SIMTRACK_ORDER_FORTRAN, 0));
    P("wrong_n", simtrack_log_array(run, "T", "g", f, 5, SIMTRACK_ORDER_FORTRAN, 0));
    P("null_data", simtrack_log_array(run, "T", "g", NULL, 6, SIMTRACK_ORDER_FORTRAN, 0));
    P("bad_order", simtrack_log_array(run, "T", "g", f, 6, 7, 0));
    P("negative_step", simtrack_log_array(run, "T", "g", f, 6, SIMTRACK_ORDER_FORTRAN, -1));
    P("null_metric", simtrack_log_array(run, NULL, "g", f, 6, SIMTRACK_ORDER_FORTRAN, 0));
    P("fortran", simtrack_log_array(run, "T", "g", f, 6, SIMTRACK_ORDER_FORTRAN, 0));
    P("c", simtrack_log_array(run, "T", "g", &c[0][0], 6, SIMTRACK_ORDER_C, 1));
    P("f32", simtrack_log_array_f32(run, "T", "g", f32, 6, SIMTRACK_ORDER_FORTRAN, 2));
    char id[64];
    simtrack_run_id(run, id, sizeof id);
    P("finish", simtrack_finish(run));
    printf("run %s\n", id);
    return 0;
}

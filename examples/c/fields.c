/*
 * fields.c — logs whole fields per step: a 1-D temperature profile along a
 * rod and a 2-D temperature field on a plate, each on a grid with named
 * axes, units and coordinates (array metrics, shown in the run page's
 * "Fields" section of the web UI).
 *
 * The fields are closed-form (a parabola whose peak moves along the rod; a
 * tilted plane with a moving bump) so a test can recompute every value
 * exactly: +, -, * and / only, in the order written.
 *
 * Build (from the repository root, after `cargo build`):
 *   cc -Wall -Wextra -Werror -Iinclude examples/c/fields.c -Ltarget/debug \
 *      -lsimtrack -Wl,-rpath,$PWD/target/debug -o fields
 * Run offline, or online with SIMTRACK_URL and SIMTRACK_TOKEN set:
 *   ./fields [steps]
 */
#include <stdio.h>
#include <stdlib.h>

#include "simtrack.h"

#define NX 64
#define PX 40
#define PY 30

static int failures = 0;

static void check(simtrack_status st, const char *what) {
    if (st != SIMTRACK_STATUS_OK) {
        char msg[512];
        simtrack_last_error(msg, sizeof msg);
        fprintf(stderr, "fields: %s failed: %s (%s)\n", what, simtrack_status_str(st), msg);
        failures++;
    }
}

int main(int argc, char **argv) {
    long steps = argc > 1 ? atol(argv[1]) : 20;
    simtrack_run *run = NULL;
    check(simtrack_init("fields-c", "{\"nx\": 64, \"px\": 40, \"py\": 30}", "fields,c,example",
                        "1-D and 2-D fields per step", "/examples/c", &run),
          "init");

    /* Grid coordinates: x along the rod in metres; the plate in cm. */
    double x[NX], px[PX], py[PY];
    for (int i = 0; i < NX; i++) x[i] = i / (double)(NX - 1);
    for (int i = 0; i < PX; i++) px[i] = i * 0.5;
    for (int j = 0; j < PY; j++) py[j] = j * 0.5;
    simtrack_axis rod[1] = {{"x", "m", x, NX}};
    simtrack_axis plate[2] = {{"x", "cm", px, PX}, {"y", "cm", py, PY}};
    check(simtrack_grid(run, "rod", 1, rod), "grid rod");
    check(simtrack_grid(run, "plate", 2, plate), "grid plate");

    static double t[NX];
    static double p[PY][PX]; /* x (grid axis 0) is the last index: axis 0 fastest */
    static double q[PX][PY]; /* the same field indexed [x][y]: the last axis fastest */
    for (long s = 0; s < steps; s++) {
        double c = (double)s / (double)steps;
        for (int i = 0; i < NX; i++) {
            double d = x[i] - c;
            t[i] = 300.0 + 50.0 * (1.0 - d * d);
        }
        for (int j = 0; j < PY; j++)
            for (int i = 0; i < PX; i++)
                q[i][j] = p[j][i] = 20.0 + 0.25 * i - 0.5 * j + (double)((i + j + s) % 7) / 4.0;
        check(simtrack_log_array(run, "temperature", "rod", t, NX, SIMTRACK_ORDER_FORTRAN, s),
              "log_array temperature");
        /* p[j][i] with i fastest is grid axis 0 fastest: Fortran order over (x, y). */
        check(simtrack_log_array(run, "plate_temperature", "plate", &p[0][0], PX * PY,
                                 SIMTRACK_ORDER_FORTRAN, s),
              "log_array plate");
        /* q[i][j] lists the grid's axes in order (x, y) with y fastest: C order. */
        check(simtrack_log_array(run, "plate_temperature_c", "plate", &q[0][0], PX * PY,
                                 SIMTRACK_ORDER_C, s),
              "log_array plate (C order)");
        check(simtrack_log(run, "peak", 350.0, s), "log");
    }
    check(simtrack_flush(run, 30.0), "flush");
    check(simtrack_finish(run), "finish");
    printf("fields: %ld steps, %d failures\n", steps, failures);
    return failures ? 1 : 0;
}

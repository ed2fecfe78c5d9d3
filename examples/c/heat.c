/*
 * heat.c — a 1-D heat equation solver that reports to simtrack.
 *
 * What it shows: every function of the C API in a real solver loop —
 * a run with metadata, tags and a folder; a residual and an energy logged
 * every step (one with simtrack_log, the rest with simtrack_log_many);
 * typed metadata; events; the input deck, the source and the result saved
 * as files; threshold and range alerts; folder details; a final status;
 * an abort check every step; flush and finish with error reporting.
 *
 * Build (from the repository root, after `cargo build`):
 *   cc -Wall -Wextra -Werror -Iinclude examples/c/heat.c -Ltarget/debug \
 *      -lsimtrack -Wl,-rpath,$PWD/target/debug -lm -o heat
 * Run offline (recorded under $SIMTRACK_OFFLINE_DIR, upload later with
 * `simtrack sync`), or online with SIMTRACK_URL and SIMTRACK_TOKEN set:
 *   ./heat [steps] [workdir]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simtrack.h"

#define NX 64

/* Reports a failed call on stderr and carries on: telemetry never stops
 * the simulation. */
static void check(simtrack_status st, const char *what) {
    if (st != SIMTRACK_STATUS_OK) {
        char msg[512];
        simtrack_last_error(msg, sizeof msg);
        fprintf(stderr, "heat: %s failed: %s (%s)\n", what, simtrack_status_str(st), msg);
    }
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

int main(int argc, char **argv) {
    long steps = argc > 1 ? atol(argv[1]) : 500;
    const char *workdir = argc > 2 ? argv[2] : ".";
    const double alpha = 0.25; /* dt * kappa / dx^2, stable for <= 0.5 */

    char input[1024], output[1024];
    snprintf(input, sizeof input, "%s/heat_input.nml", workdir);
    snprintf(output, sizeof output, "%s/heat_output.dat", workdir);
    char deck[256];
    snprintf(deck, sizeof deck, "&heat\n  nx = %d\n  alpha = %.3f\n  steps = %ld\n/\n", NX, alpha, steps);
    if (write_file(input, deck) != 0) {
        fprintf(stderr, "heat: cannot write %s\n", input);
        return 1;
    }

    printf("simtrack %s\n", simtrack_version());
    simtrack_run *run = NULL;
    char meta[128];
    snprintf(meta, sizeof meta, "{\"nx\": %d, \"alpha\": %.3f, \"steps\": %ld}", NX, alpha, steps);
    check(simtrack_init("heat-c", meta, "heat,c,example", "1-D explicit heat equation", "/examples/c", &run), "init");

    check(simtrack_set_metadata_str(run, "scheme", "FTCS"), "set_metadata_str");
    check(simtrack_set_metadata_i64(run, "nx", NX), "set_metadata_i64");
    check(simtrack_set_metadata_f64(run, "alpha", alpha), "set_metadata_f64");
    check(simtrack_set_folder_details(run, "/examples/c", "{\"owner\": \"examples\"}", "examples",
                                      "Runs of the C heat example"),
          "set_folder_details");
    check(simtrack_save(run, input, "input"), "save input");
    check(simtrack_save(run, __FILE__, "code"), "save code");
    check(simtrack_alert(run, "residual-high", "is above", "residual", 1.0, 1.0, 10.0), "alert");
    check(simtrack_alert_range(run, "energy-range", "is outside range", "energy", 1.0, 1.0, 0.0, 100.0), "alert_range");
    check(simtrack_event(run, "initialised a hot spot in the middle of the rod"), "event");

    double u[NX], un[NX];
    for (int i = 0; i < NX; i++) u[i] = (i > NX / 3 && i < 2 * NX / 3) ? 1.0 : 0.0;

    long it;
    int aborted = 0;
    for (it = 0; it < steps; it++) {
        double residual = 0.0, energy = 0.0;
        un[0] = un[NX - 1] = 0.0;
        for (int i = 1; i < NX - 1; i++) {
            un[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1]);
            residual = fmax(residual, fabs(un[i] - u[i]));
        }
        for (int i = 0; i < NX; i++) {
            u[i] = un[i];
            energy += u[i] * u[i];
        }
        check(simtrack_log(run, "residual", residual, it), "log");
        const char *names[] = {"energy", "u_mid"};
        double values[] = {energy, u[NX / 2]};
        check(simtrack_log_many(run, 2, names, values, it), "log_many");
        if (it % 100 == 0) {
            char line[64];
            snprintf(line, sizeof line, "step %ld residual %.3e", it, residual);
            check(simtrack_event(run, line), "event");
        }
        if (simtrack_abort_requested(run)) {
            check(simtrack_event(run, "abort requested: stopping early"), "event");
            aborted = 1;
            break;
        }
    }

    FILE *out = fopen(output, "w");
    if (out) {
        for (int i = 0; i < NX; i++) fprintf(out, "%d %.12e\n", i, u[i]);
        fclose(out);
        check(simtrack_save(run, output, "output"), "save output");
    }
    check(simtrack_set_metadata_i64(run, "steps_done", it), "set_metadata_i64");
    if (aborted) check(simtrack_set_status(run, "terminated"), "set_status");

    char id[64];
    simtrack_run_id(run, id, sizeof id);
    check(simtrack_flush(run, 10.0), "flush");
    simtrack_status st = simtrack_finish(run);
    check(st, "finish");
    printf("run %s finished after %ld steps%s\n", id, it, aborted ? " (aborted)" : "");
    return st == SIMTRACK_STATUS_OK ? 0 : 2;
}

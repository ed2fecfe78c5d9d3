/*
 * probe.c — a tiny solver driven by the server's integration tests
 * (server/tests/c_library.rs) to exercise the real C library against the
 * real server. Each mode prints "ok" and exits 0 when its part worked.
 *
 *   probe points NAME N PAUSE_US   log x = 0.5*i at step i for i < N, sleeping
 *                                  PAUSE_US every 1000 points; then finish
 *   probe abort NAME               log until the server asks to abort (60 s max),
 *                                  then set status terminated and finish
 *   probe alert NAME PHASE_MS      define "temp-high" (temp is above 10, window
 *                                  0.01 min); log temp = 1, then 50, then 1,
 *                                  PHASE_MS each; finish
 *   probe crash NAME               log a few points, flush, exit without finish
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "simtrack.h"

static int check(simtrack_status st, const char *what) {
    if (st != SIMTRACK_STATUS_OK) {
        char msg[512];
        simtrack_last_error(msg, sizeof msg);
        fprintf(stderr, "probe: %s failed: %s (%s)\n", what, simtrack_status_str(st), msg);
        return 1;
    }
    return 0;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_us(long us) {
    struct timespec t = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&t, NULL);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: probe MODE NAME [ARGS]\n");
        return 64;
    }
    const char *mode = argv[1];
    simtrack_run *run = NULL;
    if (check(simtrack_init(argv[2], "{\"probe\": true}", "probe", "integration test probe", "/probe", &run), "init"))
        return 1;
    int failed = 0;

    if (strcmp(mode, "points") == 0 && argc >= 5) {
        long n = atol(argv[3]);
        long pause = atol(argv[4]);
        for (long i = 0; i < n; i++) {
            failed |= check(simtrack_log(run, "x", 0.5 * (double)i, i), "log");
            if (i % 1000 == 999 && pause > 0) sleep_us(pause);
            if (i % 100000 == 0) {
                char line[64];
                snprintf(line, sizeof line, "point %ld", i);
                failed |= check(simtrack_event(run, line), "event");
            }
        }
    } else if (strcmp(mode, "levels") == 0) {
        /* Events at levels (any case), one without, one refused. */
        failed |= check(simtrack_event_level(run, "warning", "cfl near 1"), "event_level");
        failed |= check(simtrack_event_level(run, "ERROR", "solver diverged"), "event_level");
        failed |= check(simtrack_event_level(run, NULL, "plain line"), "event_level");
        if (simtrack_event_level(run, "loud", "refused") != SIMTRACK_STATUS_INVALID_ARGUMENT) {
            fprintf(stderr, "an unknown level was accepted\n");
            failed = 1;
        }
    } else if (strcmp(mode, "abort") == 0) {
        double start = now_s();
        long i = 0;
        int aborted = 0;
        while (now_s() - start < 60.0) {
            failed |= check(simtrack_log(run, "x", (double)i, i), "log");
            i++;
            if (simtrack_abort_requested(run)) {
                aborted = 1;
                break;
            }
            sleep_us(10000);
        }
        if (!aborted) {
            fprintf(stderr, "probe: no abort request within 60 s\n");
            failed = 1;
        }
        failed |= check(simtrack_event(run, "abort seen by the solver"), "event");
        failed |= check(simtrack_set_status(run, "terminated"), "set_status");
    } else if (strcmp(mode, "alert") == 0 && argc >= 4) {
        long phase_us = atol(argv[3]) * 1000;
        failed |= check(simtrack_alert(run, "temp-high", "is above", "temp", 0.01, 0.01, 10.0), "alert");
        double values[3] = {1.0, 50.0, 1.0};
        long step = 0;
        for (int p = 0; p < 3; p++) {
            double start = now_s();
            while ((now_s() - start) * 1e6 < (double)phase_us) {
                failed |= check(simtrack_log(run, "temp", values[p], step++), "log");
                sleep_us(20000);
            }
            failed |= check(simtrack_flush(run, 10.0), "flush");
        }
    } else if (strcmp(mode, "crash") == 0) {
        for (long i = 0; i < 10; i++) failed |= check(simtrack_log(run, "x", (double)i, i), "log");
        failed |= check(simtrack_flush(run, 10.0), "flush");
        printf(failed ? "failed\n" : "ok\n");
        fflush(stdout);
        _exit(failed);
    } else {
        fprintf(stderr, "probe: unknown mode %s\n", mode);
        return 64;
    }
    failed |= check(simtrack_finish(run), "finish");
    printf(failed ? "failed\n" : "ok\n");
    return failed;
}

/*
 * Force-included (-include) when the UI tests compile examples/c/heat.c:
 * the example is unchanged, but each abort check first sleeps
 * $HEAT_STEP_DELAY_US microseconds, so a run lasts long enough to watch
 * its status change and to abort it from the browser.
 */
#ifndef SIMTRACK_UI_TESTS_SLOW_HEAT_H
#define SIMTRACK_UI_TESTS_SLOW_HEAT_H

#include <stdlib.h>
#include <time.h>

#include "simtrack.h"

static int slow_heat_abort_requested(const simtrack_run *run) {
    static long delay_us = -1;
    if (delay_us < 0) {
        const char *s = getenv("HEAT_STEP_DELAY_US");
        delay_us = s ? atol(s) : 0;
    }
    if (delay_us > 0) {
        struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
    return simtrack_abort_requested(run);
}

#define simtrack_abort_requested slow_heat_abort_requested

#endif

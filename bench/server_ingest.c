/*
 * server_ingest.c — end-to-end ingest benchmark: one C solver logs N points
 * of one metric through libsimtrack to a simtrack server and finishes; the
 * driver (bench/server_ingest.sh) then waits until all N are queryable.
 *
 *   server_ingest NAME N     prints "logged N points in S s; finish took F s"
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "simtrack.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: server_ingest NAME N\n");
        return 64;
    }
    long n = atol(argv[2]);
    simtrack_run *run = NULL;
    if (simtrack_init(argv[1], NULL, "bench", NULL, "/bench", &run) != SIMTRACK_STATUS_OK) {
        fprintf(stderr, "init failed\n");
        return 1;
    }
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        simtrack_log(run, "residual", 1.0 / (double)(i + 1), i);
    }
    double t1 = now_s();
    simtrack_status st = simtrack_finish(run);
    double t2 = now_s();
    printf("logged %ld points in %.3f s; finish took %.3f s (status %s)\n", n, t1 - t0, t2 - t1,
           simtrack_status_str(st));
    return st == SIMTRACK_STATUS_OK ? 0 : 2;
}

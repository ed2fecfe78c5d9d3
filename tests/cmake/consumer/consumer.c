/* Install smoke test, C side: includes <simtrack.h>, links libsimtrack, runs a
 * tiny tracked run offline. Built by tests/cmake/consumer/CMakeLists.txt
 * (shared and static) and by tests/cmake/pkgconfig/pkgconfig.sh. */
#include <simtrack.h>
#include <stdio.h>

int main(void) {
    simtrack_run *run = NULL;
    simtrack_status st = simtrack_init("install-smoke-c", "{\"consumer\": \"c\"}", "smoke",
                                       NULL, "/tests/install", &run);
    if (st != SIMTRACK_STATUS_OK) {
        fprintf(stderr, "simtrack_init: %s\n", simtrack_status_str(st));
        return 1;
    }
    for (int64_t step = 0; step < 10; ++step) {
        st = simtrack_log(run, "residual", 1.0 / (double)(step + 1), step);
        if (st != SIMTRACK_STATUS_OK) {
            fprintf(stderr, "simtrack_log: %s\n", simtrack_status_str(st));
            simtrack_finish(run);
            return 1;
        }
    }
    st = simtrack_finish(run);
    if (st != SIMTRACK_STATUS_OK) {
        fprintf(stderr, "simtrack_finish: %s\n", simtrack_status_str(st));
        return 1;
    }
    printf("simtrack %s: consumer ok\n", simtrack_version());
    return 0;
}

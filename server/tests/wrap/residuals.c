/* A solver nobody will edit, for `simtrack run`'s tests: prints a table of
 * residuals (step, residual, energy) on stdout, a warning on stderr every
 * fifth step, writes result.dat, then ends as argv[1] says:
 *   ok     exit 0
 *   fail   exit 3
 *   segv   dies by SIGSEGV
 *   burst  prints N lines ("line <i>") as fast as it can, N = argv[2], exit 0
 *   stubborn  ignores SIGTERM, prints "ready", then sleeps forever
 *   sleep  prints "ready", then sleeps until a signal kills it
 *   tty    prints "isatty=<0|1>" (whether stdout is a terminal) and
 *          "waiting", without flushing, then waits until the file argv[2]
 *          exists (at most 60 s), prints "done", exit 0
 * Values are printed with %.17g so they round-trip exactly. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "ok";
    if (strcmp(mode, "burst") == 0) {
        long n = argc > 2 ? atol(argv[2]) : 1000000;
        for (long i = 1; i <= n; i++) {
            printf("line %ld\n", i);
        }
        return 0;
    }
    if (strcmp(mode, "tty") == 0 && argc > 2) {
        printf("isatty=%d\n", isatty(1));
        printf("waiting\n");
        struct timespec tick = {0, 10000000};
        for (int i = 0; i < 6000 && access(argv[2], F_OK) != 0; i++) {
            nanosleep(&tick, NULL);
        }
        printf("done\n");
        return 0;
    }
    if (strcmp(mode, "stubborn") == 0 || strcmp(mode, "sleep") == 0) {
        if (strcmp(mode, "stubborn") == 0) {
            signal(SIGTERM, SIG_IGN);
        }
        printf("ready\n");
        fflush(stdout);
        for (;;) {
            pause();
        }
    }
    printf("  iter  residual  energy\n");
    for (int k = 1; k <= 20; k++) {
        double residual = 1.0 / ((double)k * k);
        double energy = 100.0 - 0.25 * k;
        printf("%6d  %.17g  %.17g\n", k, residual, energy);
        if (k % 5 == 0) {
            fprintf(stderr, "warning: step %d is slow\n", k);
        }
    }
    fflush(stdout);
    FILE *f = fopen("result.dat", "w");
    if (f == NULL) {
        return 1;
    }
    fprintf(f, "final residual %.17g\n", 1.0 / 400.0);
    fclose(f);
    if (strcmp(mode, "fail") == 0) {
        fprintf(stderr, "error: did not converge\n");
        return 3;
    }
    if (strcmp(mode, "segv") == 0) {
        raise(SIGSEGV);
    }
    return 0;
}

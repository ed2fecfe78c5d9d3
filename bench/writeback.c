/* How long the last sync of a spool written in bulk waits, depending on how
 * often its writeback was started while it was written (what
 * SpoolWriter::start_writeback does, src/spool.rs).
 *
 *   cc -O2 bench/writeback.c -o /tmp/writeback && /tmp/writeback [DIR]
 *
 * Writes 12 MB (what `simtrack run` spools for a million short lines) in
 * 256 KiB appends, 1 ms apart (about the pace of such a burst), into a file
 * in DIR (default: the current directory, on the disk being measured),
 * starting writeback (sync_file_range, SYNC_FILE_RANGE_WRITE) every N MiB
 * (0: never), then times the final fdatasync. Five rounds per N, medians. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double final_sync_ms(const char *dir, size_t every) {
    static char buf[256 * 1024];
    char name[4096];
    snprintf(name, sizeof name, "%s/writeback-bench.%d", dir, (int)getpid());
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (fd < 0) {
        perror(name);
        exit(1);
    }
    memset(buf, 'x', sizeof buf);
    size_t done = 0, started = 0, total = 12000000;
    while (done < total) {
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
            perror("write");
            exit(1);
        }
        done += sizeof buf;
        if (every && done - started >= every) {
            sync_file_range(fd, (off_t)started, (off_t)(done - started), SYNC_FILE_RANGE_WRITE);
            started = done;
        }
        usleep(1000);
    }
    double t0 = now_ms();
    if (fdatasync(fd) != 0) {
        perror("fdatasync");
        exit(1);
    }
    double t = now_ms() - t0;
    close(fd);
    unlink(name);
    return t;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    const size_t mib[] = {0, 1, 4, 8};
    for (size_t i = 0; i < sizeof mib / sizeof mib[0]; i++) {
        double t[5];
        for (int r = 0; r < 5; r++) t[r] = final_sync_ms(dir, mib[i] << 20);
        qsort(t, 5, sizeof t[0], cmp);
        printf("writeback every %zu MiB: final fdatasync %.2f ms (median of 5; %.2f-%.2f)\n",
               mib[i], t[2], t[0], t[4]);
    }
    return 0;
}

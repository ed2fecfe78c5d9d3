/* The least a wrapper that reads a program's output can cost it: runs
 * CMD ARGS... with its stdout on a 1 MiB pipe, reads the pipe the way
 * `simtrack run` does (in 1 MiB reads, pausing 1 ms after a read of
 * 4 KiB or more so the next read takes many writes at once) and discards
 * what it reads. Records nothing, spools nothing, starts no threads.
 * Exits with the program's exit code. Used by bench/run-wrapper.sh. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: pipe_floor CMD [ARGS...]\n");
        return 2;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        perror("pipe2");
        return 1;
    }
    (void)fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        if (dup2(fds[1], STDOUT_FILENO) < 0) _exit(127);
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    close(fds[1]);
    static char buf[1 << 20];
    const struct timespec pause = {0, 1000000};
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        if (n >= 4096) nanosleep(&pause, NULL);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) {
        perror("waitpid");
        return 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// corpus: exercise=pipeline bin=pipeline
// design: all n-1 pipes created up front with pipe2(O_CLOEXEC), then fork/dup2/execvp per stage; the parent closes every end after the last fork and reaps with wait() (any child) until all are collected
// expect: full
/*
 * What makes it different from the reference (one pipe per fork, closed as
 * it goes): every pipe exists before the first fork. Instead of closing
 * strangers' ends by hand in each child, the ends carry close-on-exec, so
 * execvp() drops all of them except the two copies dup2() made on 0 and 1
 * (dup2 clears the flag). The parent closes all ends once every stage runs
 * and then collects children with wait() in whatever order they end — the
 * lecture's `wait (NULL)` loop, keeping the last stage's status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const WS = " \t\n\v\f\r";

/* Split one command on white space into a NULL-terminated argv (edits `cmd`). */
static char **words(char *cmd)
{
    size_t n = 0, cap = 4;
    char **argv = malloc(cap * sizeof *argv), *save = NULL;
    for (char *w = strtok_r(cmd, WS, &save); argv && w; w = strtok_r(NULL, WS, &save)) {
        if (n + 2 > cap)
            argv = realloc(argv, (cap *= 2) * sizeof *argv);
        if (argv)
            argv[n++] = w;
    }
    if (!argv) {
        perror("pipeline: malloc");
        exit(1);
    }
    argv[n] = NULL;
    return argv;
}

int main(int argc, char **argv)
{
    int n = argc - 1;
    char ***cmds = calloc((size_t)n + 1, sizeof *cmds);
    for (int i = 0; cmds && i < n; i++)
        if (!(cmds[i] = words(argv[i + 1]))[0])
            n = -1;
    if (n < 1 || !cmds) {
        fputs("pipeline: usage: pipeline CMD [CMD ...] (each CMD non-empty)\n", stderr);
        return 1;
    }

    int (*pipes)[2] = calloc((size_t)n, sizeof *pipes);
    for (int i = 0; i + 1 < n; i++)
        if (pipe2(pipes[i], O_CLOEXEC) < 0) {
            perror("pipeline: pipe2");
            return 1;
        }

    pid_t last = -1;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("pipeline: fork");
            return 1;
        }
        if (pid == 0) {
            if (i > 0 && dup2(pipes[i - 1][0], STDIN_FILENO) < 0)
                _exit(126);
            if (i + 1 < n && dup2(pipes[i][1], STDOUT_FILENO) < 0)
                _exit(126);
            /* Every other pipe end is close-on-exec. */
            execvp(cmds[i][0], cmds[i]);
            dprintf(STDERR_FILENO, "pipeline: %s: command not found\n", cmds[i][0]);
            _exit(127);
        }
        last = pid;
    }
    for (int i = 0; i + 1 < n; i++) {
        close(pipes[i][0]);
        close(pipes[i][1]);
    }

    int code = 1, status;
    for (int left = n; left > 0;) {
        pid_t pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            perror("pipeline: wait");
            return 1;
        }
        left--;
        if (pid == last)
            code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    }
    return code;
}

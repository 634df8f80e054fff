// corpus: exercise=pipeline bin=pipeline
// design: a supervisor process — the program forks one child that forks, wires and reaps every stage (wait for any) and exits with the last stage's status; the program waits for the supervisor and exits with its status
// expect: full
/*
 * What makes it different: the stages are grandchildren. The program itself
 * holds no pipe at all: it forks a supervisor, which runs the shell part
 * (one pipe per fork, parent copies closed at once, reaping with
 * waitpid(-1) as stages finish) and passes the last stage's status on as its
 * own exit status (128+N for a signal, which an exit status can carry). The
 * program waits for the supervisor and exits with that status. Every stage
 * is still forked by a process running this program and reaped before the
 * program exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WS " \t\n\v\f\r"

static int status_code(int st)
{
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static void exec_stage(char *cmd)
{
    char **argv = malloc((strlen(cmd) / 2 + 2) * sizeof *argv);
    int n = 0;
    if (!argv)
        _exit(127);
    for (char *w = strtok(cmd, WS); w; w = strtok(NULL, WS))
        argv[n++] = w;
    argv[n] = NULL;
    execvp(argv[0], argv);
    dprintf(2, "pipeline: %s: command not found\n", argv[0]);
    _exit(127);
}

/* The supervisor: start every stage, reap them all, return the last one's status. */
static int supervise(int n, char **cmds)
{
    pid_t last = 0;
    int in = -1;
    for (int i = 0; i < n; i++) {
        int p[2] = {-1, -1};
        if (i < n - 1 && pipe(p)) {
            perror("pipeline: pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("pipeline: fork");
            return 1;
        }
        if (pid == 0) {
            if (in >= 0) {
                dup2(in, 0);
                close(in);
            }
            if (p[1] >= 0) {
                close(p[0]);
                dup2(p[1], 1);
                close(p[1]);
            }
            exec_stage(cmds[i]);
        }
        if (in >= 0)
            close(in);
        if (p[1] >= 0)
            close(p[1]);
        in = p[0];
        last = pid;
    }
    int code = 1, st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, 0)) > 0 || errno == EINTR)
        if (pid == last)
            code = status_code(st);
    return code; /* ECHILD: every stage is reaped */
}

int main(int argc, char **argv)
{
    int n = argc - 1;
    for (int i = 1; i < argc; i++)
        if (strspn(argv[i], WS) == strlen(argv[i]))
            n = 0;
    if (n == 0) {
        fputs("pipeline: usage: pipeline CMD [CMD ...] (no empty CMD)\n", stderr);
        return 1;
    }
    pid_t sup = fork();
    if (sup < 0) {
        perror("pipeline: fork");
        return 1;
    }
    if (sup == 0)
        _exit(supervise(n, argv + 1));
    int st;
    while (waitpid(sup, &st, 0) < 0)
        if (errno != EINTR) {
            perror("pipeline: waitpid");
            return 1;
        }
    return status_code(st);
}

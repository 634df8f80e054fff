// corpus: exercise=pipeline bin=pipeline
// design: reaping in a SIGCHLD handler (waitpid(-1, WNOHANG) until none is left), the main program sleeps in sigsuspend() until every stage is collected; all pipes made up front, each child closes every end but its two by hand
// expect: full
/*
 * What makes it different: nobody sits in wait(). SIGCHLD is blocked while
 * the stages are started; then the program sleeps in sigsuspend(), and each
 * SIGCHLD runs a handler that collects every finished child with
 * waitpid(WNOHANG) (waitpid is async-signal-safe) and counts it. Because the
 * signal is blocked outside sigsuspend(), no SIGCHLD can slip in between
 * "count checked" and "asleep". The children get back the original empty
 * mask before execvp (a blocked SIGCHLD would be inherited by the stage).
 * All n-1 pipes exist before the first fork and carry no close-on-exec
 * flag: each child closes them all after its dup2s, the parent after the
 * last fork.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t reaped;
static volatile sig_atomic_t last_code = 1;
static pid_t last_pid;

static void on_sigchld(int sig)
{
    (void)sig;
    int saved = errno, st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        reaped++;
        if (pid == last_pid)
            last_code = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
    }
    errno = saved;
}

static char **argv_of(char *cmd)
{
    char **v = malloc((strlen(cmd) / 2 + 2) * sizeof *v);
    int n = 0;
    if (!v)
        return NULL;
    for (char *w = strtok(cmd, " \t\n\v\f\r"); w; w = strtok(NULL, " \t\n\v\f\r"))
        v[n++] = w;
    v[n] = NULL;
    return v;
}

int main(int argc, char **argv)
{
    int n = argc - 1;
    char ***cmds = malloc((size_t)(n > 0 ? n : 1) * sizeof *cmds);
    int (*fd)[2] = malloc((size_t)(n > 0 ? n : 1) * sizeof *fd);
    if (!cmds || !fd)
        return 1;
    for (int i = 0; i < n; i++)
        if (!(cmds[i] = argv_of(argv[i + 1])) || !cmds[i][0])
            n = 0;
    if (n == 0) {
        fputs("pipeline: usage: pipeline CMD [CMD ...]\n", stderr);
        return 1;
    }

    sigset_t chld, orig;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &orig);
    struct sigaction sa = {.sa_handler = on_sigchld, .sa_flags = SA_NOCLDSTOP};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);

    for (int i = 0; i < n - 1; i++)
        if (pipe(fd[i])) {
            perror("pipeline: pipe");
            return 1;
        }
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("pipeline: fork");
            return 1;
        }
        if (pid == 0) {
            if (i > 0)
                dup2(fd[i - 1][0], 0);
            if (i < n - 1)
                dup2(fd[i][1], 1);
            for (int k = 0; k < n - 1; k++) {
                close(fd[k][0]);
                close(fd[k][1]);
            }
            sigprocmask(SIG_SETMASK, &orig, NULL); /* the handler itself is reset by exec */
            execvp(cmds[i][0], cmds[i]);
            dprintf(2, "pipeline: %s: command not found\n", cmds[i][0]);
            _exit(127);
        }
        if (i == n - 1)
            last_pid = pid; /* SIGCHLD is blocked: the handler cannot run before this */
    }
    for (int k = 0; k < n - 1; k++) {
        close(fd[k][0]);
        close(fd[k][1]);
    }

    sigset_t during = orig;
    sigdelset(&during, SIGCHLD);
    while (reaped < n)
        sigsuspend(&during);
    return last_code;
}

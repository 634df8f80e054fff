// corpus: exercise=pipeline bin=pipeline
// design: posix_spawnp() per stage — dup2/close file actions wire the pipes, spawn attributes set SIGPIPE to default and an empty signal mask; reaps with waitpid(-1) until all are collected
// expect: full
/*
 * What makes it different: no fork() and no execvp() in the program. Each
 * stage is one posix_spawnp() call, and everything the child must do between
 * fork and exec is described up front: file actions (dup2 the pipe ends onto
 * 0 and 1, close the originals and the next stage's read end) and
 * attributes (POSIX_SPAWN_SETSIGDEF for SIGPIPE, POSIX_SPAWN_SETSIGMASK with
 * an empty set). When the program cannot be executed, glibc reports the
 * error to the caller and no stage process exists: the program prints the
 * contract's message itself and counts that stage's status as 127.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char **split(char *s, int *count)
{
    char **v = calloc(strlen(s) / 2 + 2, sizeof *v);
    int n = 0;
    if (!v)
        exit(1);
    for (char *tok = strtok(s, " \t\n\v\f\r"); tok; tok = strtok(NULL, " \t\n\v\f\r"))
        v[n++] = tok;
    *count = n;
    return v;
}

int main(int argc, char **argv)
{
    int stages = argc - 1;
    char ***cmd = calloc((size_t)argc, sizeof *cmd);
    for (int i = 0; cmd && i < stages; i++) {
        int words;
        cmd[i] = split(argv[i + 1], &words);
        if (words == 0)
            stages = 0;
    }
    if (stages == 0 || !cmd) {
        fputs("pipeline: usage: pipeline CMD [CMD ...]\n", stderr);
        return 1;
    }

    posix_spawnattr_t attr;
    sigset_t empty, sigpipe;
    sigemptyset(&empty);
    sigemptyset(&sigpipe);
    sigaddset(&sigpipe, SIGPIPE);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setsigdefault(&attr, &sigpipe);
    posix_spawnattr_setsigmask(&attr, &empty);

    int running = 0, last_code = 0;
    pid_t last = -1;
    int prev_read = -1;
    for (int i = 0; i < stages; i++) {
        int p[2] = {-1, -1};
        if (i + 1 < stages && pipe(p) < 0) {
            perror("pipeline: pipe");
            return 1;
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        if (prev_read >= 0) {
            posix_spawn_file_actions_adddup2(&fa, prev_read, STDIN_FILENO);
            posix_spawn_file_actions_addclose(&fa, prev_read);
        }
        if (p[1] >= 0) {
            posix_spawn_file_actions_addclose(&fa, p[0]);
            posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
            posix_spawn_file_actions_addclose(&fa, p[1]);
        }
        pid_t pid;
        int err = posix_spawnp(&pid, cmd[i][0], &fa, &attr, cmd[i], environ);
        posix_spawn_file_actions_destroy(&fa);
        if (err) {
            fprintf(stderr, "pipeline: %s: command not found\n", cmd[i][0]);
            if (i + 1 == stages)
                last_code = 127; /* the status such a stage has under fork + execvp */
        } else {
            running++;
            if (i + 1 == stages)
                last = pid;
        }
        if (prev_read >= 0)
            close(prev_read);
        if (p[1] >= 0)
            close(p[1]);
        prev_read = p[0];
    }
    posix_spawnattr_destroy(&attr);

    while (running > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            perror("pipeline: waitpid");
            return 1;
        }
        running--;
        if (pid == last)
            last_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    }
    return last_code;
}

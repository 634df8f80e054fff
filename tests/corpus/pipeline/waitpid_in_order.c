// corpus: exercise=pipeline bin=pipeline
// design: the shell's discipline (pipe i made right before fork i, the parent closes the ends it handed on at once); then waits for the stages in pipeline order, waitpid(pid) on each pid in turn
// expect: full
/*
 * What makes it different: the waiting. After starting every stage the
 * parent calls waitpid(pid[0]), waitpid(pid[1]), ... in pipeline order. A
 * later stage that ends first stays a zombie until the earlier ones are
 * collected — not a defect: every stage is reaped before the pipeline exits,
 * and the status is the last stage's (SPEC §5). The parent keeps at most one
 * pipe end open between forks: the read end the next stage will inherit.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Split on white space into a freshly allocated argv. */
static char **split(const char *s)
{
    size_t len = strlen(s);
    char **argv = calloc(len / 2 + 2, sizeof *argv);
    char *copy = strdup(s);
    if (!argv || !copy)
        exit(1);
    size_t n = 0;
    for (char *p = copy; *p;) {
        while (*p && isspace((unsigned char)*p))
            *p++ = '\0';
        if (!*p)
            break;
        argv[n++] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
    }
    return argv;
}

static void run_stage(char **argv, int in, int out)
{
    if (in != STDIN_FILENO) {
        dup2(in, STDIN_FILENO);
        close(in);
    }
    if (out != STDOUT_FILENO) {
        dup2(out, STDOUT_FILENO);
        close(out);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "pipeline: %s: command not found\n", argv[0]);
    _exit(127);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: pipeline CMD [CMD ...]\n", stderr);
        return 1;
    }
    char ***cmd = malloc((size_t)argc * sizeof *cmd);
    pid_t *pid = malloc((size_t)argc * sizeof *pid);
    if (!cmd || !pid)
        return 1;
    for (int i = 1; i < argc; i++) {
        cmd[i] = split(argv[i]);
        if (!cmd[i][0]) {
            fprintf(stderr, "pipeline: empty command (argument %d)\nusage: pipeline CMD [CMD ...]\n", i);
            return 1;
        }
    }

    int in = STDIN_FILENO;
    for (int i = 1; i < argc; i++) {
        int p[2] = {-1, STDOUT_FILENO};
        if (i + 1 < argc && pipe(p) < 0) {
            perror("pipeline: pipe");
            return 1;
        }
        pid[i] = fork();
        if (pid[i] < 0) {
            perror("pipeline: fork");
            return 1;
        }
        if (pid[i] == 0) {
            if (p[0] >= 0)
                close(p[0]); /* the next stage's end */
            run_stage(cmd[i], in, p[1]);
        }
        if (in != STDIN_FILENO)
            close(in);
        if (p[1] != STDOUT_FILENO)
            close(p[1]);
        in = p[0];
    }

    int status = 0;
    for (int i = 1; i < argc; i++)
        while (waitpid(pid[i], &status, 0) < 0)
            if (errno != EINTR) {
                perror("pipeline: waitpid");
                return 1;
            }
    /* `status` is now the last stage's. */
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

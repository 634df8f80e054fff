// corpus: exercise=pipeline bin=pipeline
// design: SHORTCUT — quotes the words and hands the whole pipeline to `/bin/sh -c 'A | B | C'` (exec, no pipe or fork of its own); even mimics the contract's not-found message and status
// expect: fail inherited-state | forked by pipeline itself
/*
 * This program must NOT score full marks: it does not do the exercise. The
 * shell makes the pipes, forks the stages and reaps them; the program only
 * builds a command line. To pass the output checks it wraps every stage as
 * `{ command -v W0 >/dev/null 2>&1 || { printf 'pipeline: %s: command not
 * found\n' W0 >&2; exit 127; }; exec W0 W1 ...; }`. What gives it away: the
 * stages' parent is a process running /bin/sh, not the pipeline program.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *script;
static size_t len, cap;

static void add(const char *s)
{
    size_t n = strlen(s);
    if (len + n + 1 > cap) {
        cap = 2 * (len + n + 1);
        if (!(script = realloc(script, cap)))
            exit(1);
    }
    memcpy(script + len, s, n + 1);
    len += n;
}

/* A word in single quotes: ' becomes '\''. */
static void add_quoted(const char *w, size_t n)
{
    add("'");
    for (size_t i = 0; i < n; i++) {
        char c[2] = {w[i], 0};
        add(w[i] == '\'' ? "'\\''" : c);
    }
    add("'");
}

int main(int argc, char **argv)
{
    const char *ws = " \t\n\v\f\r";
    if (argc < 2)
        goto usage;
    add("");
    for (int i = 1; i < argc; i++) {
        const char *p = argv[i] + strspn(argv[i], ws);
        if (!*p)
            goto usage;
        size_t n0 = strcspn(p, ws);
        add(i > 1 ? " | { command -v " : "{ command -v ");
        add_quoted(p, n0);
        add(" >/dev/null 2>&1 || { printf 'pipeline: %s: command not found\\n' ");
        add_quoted(p, n0);
        add(" >&2; exit 127; }; exec");
        while (*p) {
            size_t n = strcspn(p, ws);
            add(" ");
            add_quoted(p, n);
            p += n;
            p += strspn(p, ws);
        }
        add("; }");
    }
    execl("/bin/sh", "sh", "-c", script, (char *)NULL);
    perror("pipeline: /bin/sh");
    return 1;
usage:
    fputs("pipeline: usage: pipeline CMD [CMD ...]\n", stderr);
    return 1;
}

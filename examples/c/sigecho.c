/*
 * sigecho.c — the ipc-lab `signals` exercise (SPEC §4.1) in C, for
 * instructors: the grader grades any executable.
 *
 *     gcc -O2 -Wall -Wextra -o sigecho examples/c/sigecho.c
 *     cargo grade signals --bin sigecho=./sigecho
 *
 * It is the slide "Beispiel" (sighandler) done right:
 *   - sigaction() without SA_RESTART instead of signal(): a blocking read()
 *     returns -1/EINTR when a signal arrives, so the main loop gets control;
 *   - the handler only sets a volatile sig_atomic_t flag (printf is not
 *     async-signal-safe); the main loop prints, between whole lines;
 *   - a line buffer kept across reads and signals; `exit` compared as a whole
 *     line (the slide's strcmp(buffer, "exit", 4) also matches `exitfoo`).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got_int, got_alrm, got_term;
static unsigned alarm_secs = 5;

static void handler(int sig)
{
    /* Async-signal-safe: only store into a volatile sig_atomic_t. */
    if (sig == SIGINT)
        got_int = 1;
    else if (sig == SIGALRM)
        got_alrm = 1;
    else if (sig == SIGTERM)
        got_term = 1;
}

/* write(2) all of buf: short writes and EINTR (no SA_RESTART!) just mean
 * "carry on". Exits 4 on a real error such as EPIPE. */
static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "sigecho: writing stdout: %s\n", strerror(errno));
            exit(4);
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void say(const char *line)
{
    write_all(line, strlen(line));
}

/* Report pending signals, in ascending order. Called only between lines. */
static void report_signals(void)
{
    if (got_int) {
        got_int = 0;
        say("Caught signal 2\n");
    }
    if (got_alrm) {
        got_alrm = 0;
        say("Caught signal 14\n");
        alarm(alarm_secs); /* one-shot: re-arm for periodic alarms */
    }
    if (got_term) {
        got_term = 0;
        say("Caught signal 15\n");
        exit(0);
    }
}

/* The line read so far, not yet terminated by a newline. */
static char *line;
static size_t len, cap;

static void append(const char *bytes, size_t n)
{
    if (n == 0)
        return;
    if (len + n > cap) {
        cap = (len + n) * 2;
        if (!(line = realloc(line, cap))) {
            perror("sigecho: realloc");
            exit(1);
        }
    }
    memcpy(line + len, bytes, n);
    len += n;
}

static void usage(const char *problem)
{
    fprintf(stderr, "sigecho: %s; usage: sigecho [--alarm SECONDS]\n", problem);
    exit(1);
}

static unsigned parse_seconds(const char *s)
{
    char *end;
    unsigned long v;
    if (*s < '0' || *s > '9')
        usage("--alarm expects a whole number of seconds");
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > 0xffffffffUL)
        usage("--alarm expects a whole number of seconds");
    return (unsigned)v;
}

int main(int argc, char *argv[])
{
    static const int sigs[] = { SIGINT, SIGALRM, SIGTERM };
    struct sigaction sa;
    char buf[65536];
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--alarm") == 0) {
            if (++i == argc)
                usage("--alarm needs a value");
            alarm_secs = parse_seconds(argv[i]);
        } else if (strncmp(argv[i], "--alarm=", 8) == 0) {
            alarm_secs = parse_seconds(argv[i] + 8);
        } else {
            usage("unexpected argument");
        }
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* deliberately no SA_RESTART */
    for (i = 0; i < 3; i++)
        if (sigaction(sigs[i], &sa, NULL) < 0) {
            perror("sigecho: sigaction");
            return 1;
        }
    alarm(alarm_secs); /* alarm(0) cancels: fine in C */

    snprintf(buf, sizeof buf, "ready %ld\n", (long)getpid());
    say(buf);

    for (;;) {
        ssize_t n, k, start;

        report_signals();
        n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue; /* a handler ran: report it; nothing was lost */
            fprintf(stderr, "sigecho: reading stdin: %s\n", strerror(errno));
            return 1;
        }
        if (n == 0) { /* EOF */
            if (len > 0) {
                if (len == 4 && memcmp(line, "exit", 4) == 0)
                    return 0;
                write_all(line, len);
                say("\n");
            }
            say("Exiting\n");
            return 0;
        }
        /* Append to the pending line; write every line its newline completes. */
        for (start = 0, k = 0; k < n; k++) {
            if (buf[k] != '\n')
                continue;
            append(buf + start, (size_t)(k - start));
            if (len == 4 && memcmp(line, "exit", 4) == 0)
                return 0;
            write_all(line, len);
            say("\n");
            len = 0;
            start = k + 1;
        }
        append(buf + start, (size_t)(n - start));
    }
}

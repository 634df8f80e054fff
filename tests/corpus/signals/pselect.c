// corpus: exercise=signals bin=sigecho
// design: handlers set flags, but the signals are blocked everywhere except inside pselect(); pending ones are drained with sigpending() when stdin is already ready
// expect: full
/*
 * What makes it different: the classic race-free flag design. SIGINT,
 * SIGALRM and SIGTERM stay blocked while the program looks at its flags,
 * reads and writes; pselect() unblocks them atomically only while it sleeps,
 * so a signal can never slip in between "flags checked" and "asleep", and
 * read/write are never interrupted (no EINTR outside pselect).
 *
 * One Linux detail: when stdin is already readable, pselect returns at once
 * without delivering signals that are pending. Under continuous input the
 * program would never see them, so after every pselect it asks sigpending()
 * and, if one of its signals waits, opens the mask for a moment to let the
 * handlers run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

static volatile sig_atomic_t flag[NSIG];
static const int caught[] = {SIGINT, SIGALRM, SIGTERM};

static void on_signal(int sig)
{
    flag[sig] = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "sigecho: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_all(const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, c, n);
        if (w < 0)
            die("write"); /* no EINTR: our signals are blocked here */
        c += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv)
{
    unsigned secs = 5;
    int opt_ok = argc == 1;
    if (argc == 3 && !strcmp(argv[1], "--alarm")) {
        char *end;
        unsigned long v = strtoul(argv[2], &end, 10);
        opt_ok = argv[2][0] >= '0' && argv[2][0] <= '9' && !*end && v <= 1000000;
        secs = (unsigned)v;
    }
    if (!opt_ok) {
        fputs("sigecho: usage: sigecho [--alarm SECONDS]\n", stderr);
        return 1;
    }

    sigset_t blocked, during_wait;
    sigemptyset(&blocked);
    for (int i = 0; i < 3; i++)
        sigaddset(&blocked, caught[i]);
    if (sigprocmask(SIG_BLOCK, &blocked, &during_wait))
        die("sigprocmask");
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++)
        if (sigaction(caught[i], &sa, NULL))
            die("sigaction");
    alarm(secs);
    char msg[32];
    write_all(msg, (size_t)snprintf(msg, sizeof msg, "ready %d\n", (int)getpid()));

    char *line = NULL;
    size_t len = 0, cap = 0;
    char chunk[8192];
    for (;;) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(STDIN_FILENO, &rd);
        int r = pselect(STDIN_FILENO + 1, &rd, NULL, NULL, NULL, &during_wait);
        if (r < 0 && errno != EINTR)
            die("pselect");
        sigset_t pending;
        sigpending(&pending);
        for (int i = 0; i < 3; i++)
            if (sigismember(&pending, caught[i])) {
                sigprocmask(SIG_SETMASK, &during_wait, NULL); /* the handlers run here */
                sigprocmask(SIG_BLOCK, &blocked, NULL);
                break;
            }
        for (int i = 0; i < 3; i++) {
            int s = caught[i];
            if (!flag[s])
                continue;
            flag[s] = 0;
            write_all(msg, (size_t)snprintf(msg, sizeof msg, "Caught signal %d\n", s));
            if (s == SIGALRM)
                alarm(secs);
            if (s == SIGTERM)
                return 0;
        }
        if (r <= 0)
            continue;
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0)
            die("read");
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (len + 1 >= cap && !(line = realloc(line, cap = cap ? 2 * cap : 4096)))
                die("realloc"); /* always room for the byte and a '\n' */
            if (chunk[i] != '\n') {
                line[len++] = chunk[i];
                continue;
            }
            if (len == 4 && !memcmp(line, "exit", 4))
                return 0;
            line[len] = '\n';
            write_all(line, len + 1);
            len = 0;
        }
    }
    if (len == 4 && !memcmp(line, "exit", 4))
        return 0;
    if (len > 0) {
        line[len] = '\n';
        write_all(line, len + 1);
    }
    write_all("Exiting\n", 8);
    return 0;
}

// corpus: exercise=signals bin=sigecho
// design: no handlers at all — SIGINT, SIGALRM, SIGTERM blocked and read as data from a signalfd; poll() on stdin and the signalfd
// expect: full
/*
 * What makes it different: nothing runs asynchronously. The three signals are
 * blocked before anything else, so the kernel keeps them pending, and a
 * signalfd turns "a signal is pending" into "a descriptor is readable". The
 * main loop polls stdin and the signalfd and handles whichever is ready, in
 * ordinary code: no flags, no EINTR, no async-signal-safety rules.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "sigecho: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Write all iovecs, whatever the kernel takes per call. */
static void writev_all(struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t w = writev(STDOUT_FILENO, iov, cnt);
        if (w < 0)
            die("write");
        while (cnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
}

static void say(const char *s)
{
    struct iovec v = {(void *)s, strlen(s)};
    writev_all(&v, 1);
}

static void echo_line(const char *p, size_t n)
{
    struct iovec v[2] = {{(void *)p, n}, {"\n", 1}};
    writev_all(v, 2);
}

static int is_exit(const char *p, size_t n)
{
    return n == 4 && !memcmp(p, "exit", 4);
}

int main(int argc, char **argv)
{
    unsigned secs = 5;
    if (argc == 3 && !strcmp(argv[1], "--alarm") && argv[2][0] >= '0' && argv[2][0] <= '9' &&
        strspn(argv[2], "0123456789") == strlen(argv[2]) && strlen(argv[2]) < 9)
        secs = (unsigned)atoi(argv[2]);
    else if (argc != 1) {
        fputs("sigecho: usage: sigecho [--alarm SECONDS]\n", stderr);
        return 1;
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGALRM);
    sigaddset(&mask, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &mask, NULL))
        die("sigprocmask");
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0)
        die("signalfd");
    alarm(secs);
    char ready[32];
    snprintf(ready, sizeof ready, "ready %d\n", (int)getpid());
    say(ready);

    char *line = malloc(1024);
    size_t len = 0, cap = 1024;
    static char chunk[65536];
    if (!line)
        die("malloc");
    for (;;) {
        struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0)
            die("poll");
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si[16];
            ssize_t n = read(sfd, si, sizeof si);
            if (n < 0)
                die("read signalfd");
            for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++) {
                char msg[32];
                snprintf(msg, sizeof msg, "Caught signal %u\n", si[i].ssi_signo);
                say(msg);
                if (si[i].ssi_signo == SIGALRM)
                    alarm(secs);
                else if (si[i].ssi_signo == SIGTERM)
                    return 0;
            }
        }
        if (!fds[1].revents)
            continue;
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0)
            die("read");
        if (n == 0)
            break;
        /* Lines wholly inside the chunk are written straight from it. */
        char *p = chunk, *end = chunk + n, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
            size_t k = (size_t)(nl - p);
            if (len > 0) {
                if (len + k > cap && !(line = realloc(line, cap = 2 * (len + k))))
                    die("realloc");
                memcpy(line + len, p, k);
                len += k;
                if (is_exit(line, len))
                    return 0;
                echo_line(line, len);
                len = 0;
            } else {
                if (is_exit(p, k))
                    return 0;
                echo_line(p, k);
            }
            p = nl + 1;
        }
        size_t rest = (size_t)(end - p);
        if (len + rest > cap && !(line = realloc(line, cap = 2 * (len + rest))))
            die("realloc");
        memcpy(line + len, p, rest);
        len += rest;
    }
    if (is_exit(line, len))
        return 0;
    if (len > 0)
        echo_line(line, len);
    say("Exiting\n");
    return 0;
}

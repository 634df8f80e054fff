// corpus: exercise=signals bin=sigecho
// design: SA_SIGINFO handler without SA_RESTART counts signals; EINTR read loop; periodic setitimer instead of re-armed alarm()
// expect: full
/*
 * What makes it different from examples/c/sigecho.c (also handler + EINTR):
 * the period is kept by the kernel — setitimer(ITIMER_REAL) with an
 * it_interval, so nothing is re-armed in the main loop —, the handler is an
 * SA_SIGINFO handler that counts deliveries per signal (the main loop reports
 * a signal when its count moved since the last look), and echoed lines are
 * gathered in an output buffer and written once per read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t delivered[NSIG];

static void on_signal(int sig, siginfo_t *info, void *ctx)
{
    (void)info;
    (void)ctx;
    delivered[sig]++; /* only this: async-signal-safe */
}

static void die(const char *what)
{
    fprintf(stderr, "sigecho: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Growing byte buffers: the pending line and the output of one read. */
struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        if (!(b->p = realloc(b->p, cap)))
            die("realloc");
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void flush(struct buf *out)
{
    write_all(out->p, out->len);
    out->len = 0;
}

static void report(void)
{
    static sig_atomic_t seen[NSIG];
    static const int sigs[] = {SIGINT, SIGALRM, SIGTERM};
    char msg[32];
    for (int i = 0; i < 3; i++) {
        int s = sigs[i];
        sig_atomic_t now = delivered[s];
        if (now == seen[s])
            continue;
        seen[s] = now;
        int n = snprintf(msg, sizeof msg, "Caught signal %d\n", s);
        write_all(msg, (size_t)n);
        if (s == SIGTERM)
            exit(0);
    }
}

static void usage(void)
{
    fprintf(stderr, "sigecho: usage: sigecho [--alarm SECONDS]\n");
    exit(1);
}

static long seconds(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno || v > 100000000)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    long secs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--alarm") && i + 1 < argc)
            secs = seconds(argv[++i]);
        else if (!strncmp(argv[i], "--alarm=", 8))
            secs = seconds(argv[i] + 8);
        else
            usage();
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: a blocked read returns EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGALRM, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
        die("sigaction");
    if (secs > 0) {
        struct itimerval it = {.it_interval = {secs, 0}, .it_value = {secs, 0}};
        if (setitimer(ITIMER_REAL, &it, NULL))
            die("setitimer");
    }
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);

    struct buf line = {0}, out = {0};
    char chunk[4096];
    for (;;) {
        report();
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue; /* the count moved; the partial line stays in `line` */
            die("read");
        }
        if (n == 0)
            break;
        const char *p = chunk, *end = chunk + n;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) {
                put(&line, p, (size_t)(end - p));
                break;
            }
            put(&line, p, (size_t)(nl - p));
            if (line.len == 4 && !memcmp(line.p, "exit", 4)) {
                flush(&out);
                return 0;
            }
            put(&out, line.p, line.len);
            put(&out, "\n", 1);
            line.len = 0;
            p = nl + 1;
        }
        flush(&out);
    }
    if (line.len > 0) {
        if (line.len == 4 && !memcmp(line.p, "exit", 4))
            return 0;
        put(&out, line.p, line.len);
        put(&out, "\n", 1);
    }
    put(&out, "Exiting\n", 8);
    flush(&out);
    return 0;
}

// corpus: exercise=signals bin=sigecho
// design: self-pipe trick — handlers (with SA_RESTART) set a flag and write a byte into a non-blocking pipe; poll() waits for stdin or the pipe
// expect: full
/*
 * What makes it different: the main loop never relies on EINTR. It sleeps in
 * poll() on stdin and on the read end of a pipe; a handler sets its flag and
 * writes one byte into the pipe, so poll wakes up even if the signal came
 * just before poll started (no window between "look at the flags" and
 * "block"). Because of that the handlers may use SA_RESTART. Output goes
 * through stdio, flushed after every batch of input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int wake_w = -1;
static volatile sig_atomic_t got_int, got_alrm, got_term;

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGINT)
        got_int = 1;
    else if (sig == SIGALRM)
        got_alrm = 1;
    else
        got_term = 1;
    (void)!write(wake_w, "!", 1); /* a full pipe already wakes poll */
    errno = saved;
}

static void die(const char *what)
{
    fprintf(stderr, "sigecho: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void out(const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, stdout) != n)
        die("write");
}

static void flush(void)
{
    if (fflush(stdout) == EOF)
        die("write");
}

static unsigned alarm_secs = 5;

static void report(void)
{
    if (got_int) {
        got_int = 0;
        out("Caught signal 2\n", 16);
    }
    if (got_alrm) {
        got_alrm = 0;
        out("Caught signal 14\n", 17);
        alarm(alarm_secs);
    }
    if (got_term) {
        out("Caught signal 15\n", 17);
        flush();
        exit(0);
    }
    flush();
}

static void usage(void)
{
    fputs("sigecho: usage: sigecho [--alarm SECONDS]\n", stderr);
    exit(1);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--alarm") && i + 1 < argc)
            v = argv[++i];
        else if (!strncmp(argv[i], "--alarm=", 8))
            v = argv[i] + 8;
        char *end;
        if (!v || *v < '0' || *v > '9')
            usage();
        errno = 0;
        unsigned long s = strtoul(v, &end, 10);
        if (*end || errno || s > 1000000)
            usage();
        alarm_secs = (unsigned)s;
    }

    int wake[2];
    if (pipe2(wake, O_NONBLOCK | O_CLOEXEC))
        die("pipe2");
    wake_w = wake[1];

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* harmless here: poll() is never restarted */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGALRM, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
        die("sigaction");
    alarm(alarm_secs);
    printf("ready %d\n", (int)getpid());
    flush();

    char *line = NULL;
    size_t len = 0, cap = 0;
    char chunk[16384];
    for (;;) {
        struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = wake[0], .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno != EINTR)
                die("poll");
            continue; /* the byte is in the pipe: the next poll returns at once */
        }
        if (fds[1].revents) {
            char drain[256];
            while (read(wake[0], drain, sizeof drain) > 0)
                ;
            report();
        }
        if (!fds[0].revents)
            continue;
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read");
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] != '\n') {
                if (len == cap && !(line = realloc(line, cap = cap ? 2 * cap : 128)))
                    die("realloc");
                line[len++] = chunk[i];
                continue;
            }
            if (len == 4 && !memcmp(line, "exit", 4)) {
                flush();
                return 0;
            }
            out(line, len);
            out("\n", 1);
            len = 0;
        }
        flush();
    }
    if (len == 4 && !memcmp(line, "exit", 4))
        return 0;
    if (len > 0) {
        out(line, len);
        out("\n", 1);
    }
    out("Exiting\n", 8);
    flush();
    return 0;
}

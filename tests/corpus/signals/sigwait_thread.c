// corpus: exercise=signals bin=sigecho
// design: signals blocked in every thread; a dedicated thread takes them with sigwaitinfo() and forwards the numbers through a pipe; the main thread polls stdin and the pipe
// expect: full
/*
 * What makes it different: signals are handled synchronously by a thread of
 * their own. The mask is set before the thread is created, so every thread
 * inherits it and no thread can be interrupted; the signal thread sleeps in
 * sigwaitinfo() and writes each signal number (one byte) into a pipe. The
 * main thread sees the pipe become readable in poll(), next to stdin, and
 * prints — output has a single writer, so lines never interleave.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sigset_t handled;
static int forward[2];

static void die(const char *what, int err)
{
    fprintf(stderr, "sigecho: %s: %s\n", what, strerror(err));
    exit(1);
}

static void *signal_thread(void *arg)
{
    (void)arg;
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&handled, &si);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            die("sigwaitinfo", errno);
        }
        unsigned char b = (unsigned char)sig;
        /* Blocking write: while the pipe is full, further signals stay pending. */
        while (write(forward[1], &b, 1) < 0)
            if (errno != EINTR)
                die("write", errno);
    }
    return NULL;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0)
            die("write", errno);
        p += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv)
{
    long secs = 5;
    if (argc == 3 && !strcmp(argv[1], "--alarm")) {
        char *end;
        errno = 0;
        secs = strtol(argv[2], &end, 10);
        if (argv[2][0] < '0' || argv[2][0] > '9' || *end || errno || secs > 1000000) {
            fputs("sigecho: usage: sigecho [--alarm SECONDS]\n", stderr);
            return 1;
        }
    } else if (argc != 1) {
        fputs("sigecho: usage: sigecho [--alarm SECONDS]\n", stderr);
        return 1;
    }

    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGALRM);
    sigaddset(&handled, SIGTERM);
    int err = pthread_sigmask(SIG_BLOCK, &handled, NULL); /* before the thread: it inherits the mask */
    if (err)
        die("pthread_sigmask", err);
    if (pipe2(forward, O_CLOEXEC))
        die("pipe2", errno);
    pthread_t tid;
    if ((err = pthread_create(&tid, NULL, signal_thread, NULL)))
        die("pthread_create", err);
    alarm((unsigned)secs);
    char msg[64];
    write_all(msg, (size_t)snprintf(msg, sizeof msg, "ready %d\n", (int)getpid()));

    /* The pending line lives at the front of `buf`; reads append after it. */
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        die("malloc", errno);
    for (;;) {
        struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = forward[0], .events = POLLIN}};
        if (poll(fds, 2, -1) < 0)
            die("poll", errno);
        if (fds[1].revents & POLLIN) {
            unsigned char sigs[64];
            ssize_t n = read(forward[0], sigs, sizeof sigs);
            for (ssize_t i = 0; i < n; i++) {
                write_all(msg, (size_t)snprintf(msg, sizeof msg, "Caught signal %d\n", sigs[i]));
                if (sigs[i] == SIGALRM)
                    alarm((unsigned)secs);
                if (sigs[i] == SIGTERM)
                    exit(0); /* exit(), not return: the other thread keeps running until then */
            }
        }
        if (!fds[0].revents)
            continue;
        if (cap - len < 4096 && !(buf = realloc(buf, cap *= 2)))
            die("realloc", errno);
        ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
        if (n < 0)
            die("read", errno);
        if (n == 0)
            break;
        size_t start = 0, end = len + (size_t)n;
        for (size_t i = len; i < end; i++) {
            if (buf[i] != '\n')
                continue;
            if (i - start == 4 && !memcmp(buf + start, "exit", 4))
                exit(0);
            write_all(buf + start, i - start + 1);
            start = i + 1;
        }
        memmove(buf, buf + start, end - start);
        len = end - start;
    }
    if (len == 4 && !memcmp(buf, "exit", 4))
        exit(0);
    if (len > 0) {
        buf[len] = '\n'; /* there is room: a read always leaves at least 4096 bytes */
        write_all(buf, len + 1);
    }
    write_all("Exiting\n", 8);
    exit(0);
}

// corpus: exercise=framing bin=pipeframe
// design: raw read/write without a user-space input buffer — the decoder reads exactly 2 header bytes, then exactly LEN payload bytes, per frame; relay child by fork(); the relay parent ignores SIGPIPE and maps EPIPE to exit 4
// expect: full
/*
 * What makes it different: no buffered reader at all. The encoder builds each
 * frame in place (the line is collected right behind a 2-byte header slot)
 * and writes it with one write(2) loop; the decoder asks the kernel for
 * exactly the bytes it still needs (read_full), so it never holds bytes of
 * the next frame and every line is written the moment its frame is complete.
 * encode/decode keep SIGPIPE at its default (a gone reader kills them
 * quietly, which the contract allows); the relay parent ignores it to get
 * EPIPE and exit 4.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { OK = 0, USAGE = 1, TOO_LONG = 2, TRUNCATED = 3, GONE = 4 };

static int complain(int code, const char *what)
{
    if (code == GONE)
        fputs("pipeframe: the reader of our output has gone (EPIPE); stopping\n", stderr);
    else
        fprintf(stderr, "pipeframe: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    return code;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EPIPE ? complain(GONE, "") : complain(USAGE, "write");
        }
        p += w;
        n -= (size_t)w;
    }
    return OK;
}

/* Read exactly n bytes unless EOF comes first; return how many arrived, or -1. */
static ssize_t read_full(int fd, unsigned char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int encode(int in, int out)
{
    static unsigned char frame[2 + 65535];
    size_t len = 0;
    unsigned char chunk[4096];
    for (;;) {
        ssize_t n = read(in, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return complain(USAGE, "read");
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] != '\n') {
                if (len == 65535) {
                    errno = 0;
                    return complain(TOO_LONG, "line longer than 65535 bytes");
                }
                frame[2 + len++] = chunk[i];
                continue;
            }
            frame[0] = (unsigned char)(len >> 8);
            frame[1] = (unsigned char)(len & 0xff);
            int rc = write_all(out, frame, 2 + len);
            if (rc)
                return rc;
            len = 0;
        }
    }
    if (len == 0)
        return OK; /* no unterminated last line */
    frame[0] = (unsigned char)(len >> 8);
    frame[1] = (unsigned char)(len & 0xff);
    return write_all(out, frame, 2 + len);
}

/* Decode frames; with `with_len` print `LEN PAYLOAD`; stop after `max` frames if max >= 0. */
static int decode(int in, int out, int with_len, long max)
{
    static unsigned char line[16 + 65535 + 1];
    for (long done = 0; max < 0 || done < max; done++) {
        unsigned char hdr[2];
        ssize_t h = read_full(in, hdr, 2);
        if (h < 0)
            return complain(USAGE, "read");
        if (h == 0)
            return OK;
        errno = 0;
        if (h == 1)
            return complain(TRUNCATED, "truncated frame");
        size_t len = (size_t)hdr[0] << 8 | hdr[1];
        size_t pre = with_len ? (size_t)sprintf((char *)line, "%zu ", len) : 0;
        ssize_t got = read_full(in, line + pre, len);
        if (got < 0)
            return complain(USAGE, "read");
        errno = 0;
        if ((size_t)got < len)
            return complain(TRUNCATED, "truncated frame");
        line[pre + len] = '\n';
        int rc = write_all(out, line, pre + len + 1);
        if (rc)
            return rc;
    }
    return OK;
}

static int relay(long max)
{
    int p[2];
    if (pipe(p))
        return complain(USAGE, "pipe");
    pid_t child = fork();
    if (child < 0)
        return complain(USAGE, "fork");
    if (child == 0) {
        close(p[1]); /* or the child keeps its own pipe open and never sees EOF */
        _exit(decode(p[0], STDOUT_FILENO, 1, max));
    }
    close(p[0]); /* or a child that left gives us no EPIPE */
    signal(SIGPIPE, SIG_IGN);
    int rc = encode(STDIN_FILENO, p[1]);
    close(p[1]); /* the child's EOF */
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            return complain(USAGE, "waitpid");
    if (rc == OK && WIFEXITED(status))
        return WEXITSTATUS(status);
    if (rc == OK)
        return 1;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "encode"))
        return encode(STDIN_FILENO, STDOUT_FILENO);
    if (argc == 2 && !strcmp(argv[1], "decode"))
        return decode(STDIN_FILENO, STDOUT_FILENO, 0, -1);
    if (argc == 2 && !strcmp(argv[1], "relay"))
        return relay(-1);
    if (argc == 4 && !strcmp(argv[1], "relay") && !strcmp(argv[2], "--child-max") &&
        strspn(argv[3], "0123456789") == strlen(argv[3]) && argv[3][0] && strlen(argv[3]) < 10)
        return relay(atol(argv[3]));
    fputs("pipeframe: usage: pipeframe encode | decode | relay [--child-max N]\n", stderr);
    return USAGE;
}

// corpus: exercise=framing bin=pipeframe
// design: the relay child is a fresh copy of the program started with posix_spawn(/proc/self/exe, hidden subcommand) — the pipe's read end put on its stdin by a file action, the write end closed by O_CLOEXEC; buffered output flushed before every blocking read
// expect: full
/*
 * What makes it different: no fork() in the program. The relay starts its
 * decoding half as a new process image — /proc/self/exe with the hidden
 * subcommand `__relay-child` — via posix_spawn(). The pipe is made with
 * O_CLOEXEC: the spawn's dup2 file action puts the read end on the child's
 * descriptor 0 (dup2 clears close-on-exec there) and every other pipe end
 * vanishes at exec, so the child holds only what it uses. Spawn attributes
 * give the child SIGPIPE at its default and an empty mask, although the
 * parent ignores SIGPIPE to see EPIPE.
 * I/O: a small buffered reader and writer; pending output is written out
 * before any read that may block, so lines never wait in the buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct out {
    int fd;
    size_t len;
    unsigned char buf[1 << 16];
};

struct in {
    int fd;
    size_t pos, len;
    unsigned char buf[1 << 16];
    struct out *flush_first; /* written out before a read that may block */
};

static int status_of_errno(void)
{
    if (errno == EPIPE) {
        fputs("pipeframe: the reader of our output has gone (EPIPE); stopping\n", stderr);
        return 4;
    }
    fprintf(stderr, "pipeframe: %s\n", strerror(errno));
    return 1;
}

static int out_flush(struct out *o)
{
    size_t done = 0;
    while (done < o->len) {
        ssize_t w = write(o->fd, o->buf + done, o->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return status_of_errno();
        done += (size_t)w;
    }
    o->len = 0;
    return 0;
}

static int out_put(struct out *o, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        if (o->len == sizeof o->buf) {
            int rc = out_flush(o);
            if (rc)
                return rc;
        }
        size_t k = sizeof o->buf - o->len < n ? sizeof o->buf - o->len : n;
        memcpy(o->buf + o->len, c, k);
        o->len += k;
        c += k;
        n -= k;
    }
    return 0;
}

/* Next byte, or -1 at EOF, or -2 - status on an error. */
static int in_byte(struct in *i)
{
    if (i->pos == i->len) {
        if (i->flush_first) {
            int rc = out_flush(i->flush_first);
            if (rc)
                return -2 - rc;
        }
        ssize_t r;
        while ((r = read(i->fd, i->buf, sizeof i->buf)) < 0 && errno == EINTR)
            ;
        if (r < 0)
            return -2 - status_of_errno();
        if (r == 0)
            return -1;
        i->pos = 0;
        i->len = (size_t)r;
    }
    return i->buf[i->pos++];
}

static int encode(struct in *in, struct out *out)
{
    static unsigned char line[65535];
    size_t len = 0;
    for (;;) {
        int c = in_byte(in);
        if (c < -1)
            return -2 - c;
        if (c >= 0 && c != '\n') {
            if (len == sizeof line) {
                out_flush(out);
                fputs("pipeframe: line longer than 65535 bytes\n", stderr);
                return 2;
            }
            line[len++] = (unsigned char)c;
            continue;
        }
        if (c == -1 && len == 0)
            return out_flush(out);
        unsigned char hdr[2] = {(unsigned char)(len >> 8), (unsigned char)len};
        int rc = out_put(out, hdr, 2);
        if (!rc)
            rc = out_put(out, line, len);
        if (rc || c == -1)
            return rc ? rc : out_flush(out);
        len = 0;
    }
}

static int decode(struct in *in, struct out *out, int with_len, long max)
{
    static unsigned char payload[65535];
    for (long n = 0; max < 0 || n < max; n++) {
        int hi = in_byte(in);
        if (hi == -1)
            break;
        int lo = hi < 0 ? hi : in_byte(in);
        if (lo < -1 || hi < -1)
            return -2 - (hi < -1 ? hi : lo);
        size_t len = (size_t)hi << 8 | (size_t)lo, got = 0;
        int c = 0;
        while (lo >= 0 && got < len && (c = in_byte(in)) >= 0)
            payload[got++] = (unsigned char)c;
        if (c < -1)
            return -2 - c;
        if (lo < 0 || got < len) {
            out_flush(out);
            fputs("pipeframe: truncated frame\n", stderr);
            return 3;
        }
        char num[16];
        int rc = with_len ? out_put(out, num, (size_t)sprintf(num, "%zu ", len)) : 0;
        if (!rc)
            rc = out_put(out, payload, len);
        if (!rc)
            rc = out_put(out, "\n", 1);
        if (rc)
            return rc;
    }
    return out_flush(out);
}

static struct in input;
static struct out output;

static int relay(const char *max)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        return status_of_errno();
    signal(SIGPIPE, SIG_IGN); /* EPIPE instead of death: reap the child and exit 4 */

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, pipe_only;
    sigemptyset(&none);
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], STDIN_FILENO);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setsigdefault(&attr, &pipe_only);
    posix_spawnattr_setsigmask(&attr, &none);
    char *argv[] = {"pipeframe", "__relay-child", (char *)max, NULL};
    pid_t child;
    int err = posix_spawn(&child, "/proc/self/exe", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(p[0]);
    if (err) {
        errno = err;
        close(p[1]);
        return status_of_errno();
    }

    input.fd = STDIN_FILENO;
    output.fd = p[1];
    input.flush_first = &output;
    int rc = encode(&input, &output);
    close(p[1]); /* the child's EOF */
    int st;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    return rc;
}

static int number(const char *s)
{
    return s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s) && strlen(s) < 10;
}

int main(int argc, char **argv)
{
    input.fd = STDIN_FILENO;
    output.fd = STDOUT_FILENO;
    input.flush_first = &output;
    if (argc == 2 && !strcmp(argv[1], "encode"))
        return encode(&input, &output);
    if (argc == 2 && !strcmp(argv[1], "decode"))
        return decode(&input, &output, 0, -1);
    if (argc == 2 && !strcmp(argv[1], "relay"))
        return relay("-");
    if (argc == 4 && !strcmp(argv[1], "relay") && !strcmp(argv[2], "--child-max") && number(argv[3]))
        return relay(argv[3]);
    /* The relay's second half, started by relay() only: frames on stdin, `LEN PAYLOAD` lines. */
    if (argc == 3 && !strcmp(argv[1], "__relay-child") && (number(argv[2]) || !strcmp(argv[2], "-")))
        return decode(&input, &output, 1, argv[2][0] == '-' ? -1 : atol(argv[2]));
    fputs("pipeframe: usage: pipeframe encode | decode | relay [--child-max N]\n", stderr);
    return 1;
}

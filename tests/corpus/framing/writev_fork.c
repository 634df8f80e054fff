// corpus: exercise=framing bin=pipeframe
// design: scatter/gather — frames are sent with writev(header, payload) straight out of the read buffer, and the decoder gathers every frame complete in one read into a single writev; relay child by fork(); the relay parent blocks SIGPIPE to get EPIPE
// expect: full
/*
 * What makes it different: no payload is ever copied into a frame or line
 * buffer. The encoder points an iovec at the 2-byte header and another at the
 * line where it lies in the read buffer; the decoder collects the iovecs of
 * all frames that one read() completed (payload, "\n" — or "LEN ", payload,
 * "\n" in the relay child) and writes them with one writev() before it reads
 * again, so each line is out as soon as its frame is complete. For EPIPE the
 * relay parent blocks SIGPIPE (the signal stays pending, write() fails with
 * EPIPE) instead of ignoring it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE (1 << 18) /* larger than any frame: 2 + 65535 */
#define MAX_IOV 1020       /* a multiple of 3 below IOV_MAX */

static int fail(int code, const char *msg)
{
    if (code == 4)
        fputs("pipeframe: the reader of our output has gone (EPIPE); stopping\n", stderr);
    else
        fprintf(stderr, "pipeframe: %s\n", msg);
    return code;
}

/* writev everything, resuming after short writes. */
static int writev_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t w = writev(fd, iov, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return fail(errno == EPIPE ? 4 : 1, strerror(errno));
        }
        for (; cnt > 0 && (size_t)w >= iov->iov_len; iov++, cnt--)
            w -= (ssize_t)iov->iov_len;
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static ssize_t fill(int fd, unsigned char *buf, size_t have, size_t cap)
{
    for (;;) {
        ssize_t r = read(fd, buf + have, cap - have);
        if (r >= 0 || errno != EINTR)
            return r;
    }
}

static int encode(int in, int out)
{
    static unsigned char buf[BUF_SIZE];
    size_t have = 0; /* bytes of the unfinished line at the front of buf */
    for (;;) {
        ssize_t r = fill(in, buf, have, sizeof buf);
        if (r < 0)
            return fail(1, strerror(errno));
        size_t end = have + (size_t)r, start = 0;
        for (size_t i = have; i < end || (r == 0 && start < end); i++) {
            if (i < end && buf[i] != '\n')
                continue;
            size_t len = i - start; /* i == end: the unterminated last line */
            if (len > 65535)
                return fail(2, "a line is longer than 65535 bytes");
            unsigned char hdr[2] = {(unsigned char)(len >> 8), (unsigned char)len};
            struct iovec v[2] = {{hdr, 2}, {buf + start, len}};
            int rc = writev_all(out, v, 2);
            if (rc)
                return rc;
            start = i + 1;
        }
        if (r == 0)
            return 0;
        if (end - start > 65535)
            return fail(2, "a line is longer than 65535 bytes");
        memmove(buf, buf + start, end - start);
        have = end - start;
    }
}

static int decode(int in, int out, int with_len, long max)
{
    static unsigned char buf[BUF_SIZE];
    static char lens[MAX_IOV / 3][8];
    struct iovec iov[MAX_IOV];
    size_t start = 0, end = 0;
    long done = 0;
    for (;;) {
        int n = 0, frames = 0;
        while (end - start >= 2 && frames < MAX_IOV / 3 && (max < 0 || done < max)) {
            size_t len = (size_t)buf[start] << 8 | buf[start + 1];
            if (end - start < 2 + len)
                break;
            if (with_len) {
                int k = snprintf(lens[frames], sizeof lens[0], "%zu ", len);
                iov[n].iov_base = lens[frames];
                iov[n++].iov_len = (size_t)k;
            }
            iov[n].iov_base = buf + start + 2;
            iov[n++].iov_len = len;
            iov[n].iov_base = "\n";
            iov[n++].iov_len = 1;
            start += 2 + len;
            frames++;
            done++;
        }
        int rc = writev_all(out, iov, n);
        if (rc)
            return rc;
        if (max >= 0 && done >= max)
            return 0;
        if (n > 0)
            continue; /* maybe more complete frames in the buffer */
        memmove(buf, buf + start, end - start);
        end -= start;
        start = 0;
        ssize_t r = fill(in, buf, end, sizeof buf);
        if (r < 0)
            return fail(1, strerror(errno));
        if (r == 0)
            return end == 0 ? 0 : fail(3, "truncated frame");
        end += (size_t)r;
    }
}

static int relay(long max)
{
    int p[2];
    if (pipe(p))
        return fail(1, strerror(errno));
    pid_t child = fork();
    if (child < 0)
        return fail(1, strerror(errno));
    if (child == 0) {
        close(p[1]);
        _exit(decode(p[0], STDOUT_FILENO, 1, max));
    }
    close(p[0]);
    sigset_t pipe_sig;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    sigprocmask(SIG_BLOCK, &pipe_sig, NULL);
    int rc = encode(STDIN_FILENO, p[1]);
    close(p[1]);
    int st;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR)
        ;
    if (rc)
        return rc;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    char *end = NULL;
    long max = -1;
    if (argc == 4 && !strcmp(argv[2], "--child-max") && argv[3][0] >= '0' && argv[3][0] <= '9')
        max = strtol(argv[3], &end, 10);
    if (argc == 2 && !strcmp(cmd, "encode"))
        return encode(STDIN_FILENO, STDOUT_FILENO);
    if (argc == 2 && !strcmp(cmd, "decode"))
        return decode(STDIN_FILENO, STDOUT_FILENO, 0, -1);
    if (!strcmp(cmd, "relay") && (argc == 2 || (argc == 4 && end && !*end)))
        return relay(max);
    return fail(1, "usage: pipeframe encode | decode | relay [--child-max N]");
}

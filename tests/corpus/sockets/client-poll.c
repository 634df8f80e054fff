// corpus: exercise=sockets bin=tcp-client
// checks: client-
// design: getaddrinfo, each address tried in turn; one thread, one poll() over stdin, the socket and stdout; socket and stdout non-blocking, a buffer for each direction, POLLIN asked for only while its buffer has room
// expect: full
//
// The README's "one thread with poll works too, but then writes must not block
// either": nothing here ever blocks except poll(). Bytes from stdin wait in
// `up` until the socket takes them, bytes from the server wait in `down` until
// stdout takes them. stdout's O_NONBLOCK is set for the run and restored at
// exit (it is a shared file description).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { CAP = 256 * 1024 };

struct buf {
    size_t off, len;
    char p[CAP];
};

static struct buf up, down;
static int stdout_flags = -1;

static void leave(int status) {
    if (stdout_flags >= 0)
        fcntl(1, F_SETFL, stdout_flags);
    exit(status);
}

static int connect_to(const char *host, const char *port) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "tcp-client: cannot connect to %s:%s: %s\n", host, port, gai_strerror(rc));
        exit(1);
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
        } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "tcp-client: cannot connect to %s:%s: %s\n", host, port, strerror(err));
        exit(1);
    }
    return fd;
}

static size_t pending(const struct buf *b) {
    return b->len - b->off;
}

/* Room at the end of b, after moving the pending bytes to the front. */
static size_t room(struct buf *b) {
    if (b->off > 0) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    return CAP - b->len;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fputs("usage: tcp-client HOST PORT\n", stderr);
        return 1;
    }
    int fd = connect_to(argv[1], argv[2]);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    stdout_flags = fcntl(1, F_GETFL);
    if (stdout_flags >= 0)
        fcntl(1, F_SETFL, stdout_flags | O_NONBLOCK);

    int in_eof = 0, sock_eof = 0, shut = 0;
    for (;;) {
        if (in_eof && up.off == up.len && !shut) {
            shutdown(fd, SHUT_WR); /* everything from stdin is out: half-close */
            shut = 1;
        }
        if (sock_eof && down.off == down.len)
            leave(0);
        struct pollfd pfd[3] = {
            {.fd = (!in_eof && pending(&up) < CAP) ? 0 : -1, .events = POLLIN},
            {.fd = fd, .events = (short)((!sock_eof && pending(&down) < CAP ? POLLIN : 0) | (up.off < up.len ? POLLOUT : 0))},
            {.fd = down.off < down.len ? 1 : -1, .events = POLLOUT},
        };
        if (poll(pfd, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "tcp-client: poll: %s\n", strerror(errno));
            leave(1);
        }
        if (pfd[0].revents) {
            ssize_t n = read(0, up.p + up.len, room(&up));
            if (n > 0)
                up.len += (size_t)n;
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                in_eof = 1;
        }
        if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) && !sock_eof && pending(&down) < CAP) {
            ssize_t n = recv(fd, down.p + down.len, room(&down), 0);
            if (n > 0) {
                down.len += (size_t)n;
            } else if (n == 0) {
                sock_eof = 1;
            } else if (errno != EAGAIN && errno != EINTR) {
                fprintf(stderr, "tcp-client: recv: %s\n", strerror(errno));
                leave(1);
            }
        }
        if (up.off < up.len && (pfd[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t k = send(fd, up.p + up.off, up.len - up.off, MSG_NOSIGNAL);
            if (k > 0) {
                up.off += (size_t)k;
            } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
                up.off = up.len = 0; /* the server has gone: stop uploading */
                in_eof = shut = 1;
            }
        }
        if (pfd[2].revents) {
            ssize_t k = write(1, down.p + down.off, down.len - down.off);
            if (k > 0) {
                down.off += (size_t)k;
            } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
                fprintf(stderr, "tcp-client: stdout: %s\n", strerror(errno));
                leave(1);
            }
        }
    }
}

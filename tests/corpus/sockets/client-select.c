// corpus: exercise=sockets bin=tcp-client
// checks: client-
// design: getaddrinfo, each address tried in turn; one thread, select() over stdin and the socket; recv/send with MSG_DONTWAIT (the socket stays blocking), one pending upload chunk, stdout written with plain blocking writes
// expect: full
//
// What makes it different from the poll client: select(), the socket's flags
// untouched (MSG_DONTWAIT per call), and stdout blocking like nc's. A blocking
// stdout write cannot deadlock: whoever reads our stdout does not wait for the
// server. What must never block is the socket send while the server waits for
// us to read — so a chunk of stdin is only sent as far as the socket takes it,
// and the rest waits for select() to report the socket writable.
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

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

int main(int argc, char **argv) {
    if (argc != 3) {
        fputs("usage: tcp-client HOST PORT\n", stderr);
        return 1;
    }
    int fd = connect_to(argv[1], argv[2]);
    if (fd >= FD_SETSIZE) {
        fputs("tcp-client: socket descriptor too large for select\n", stderr);
        return 1;
    }
    static char chunk[64 * 1024], buf[64 * 1024];
    size_t off = 0, len = 0; /* the pending upload: chunk[off..len) */
    int in_eof = 0;
    for (;;) {
        fd_set rd, wr;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_SET(fd, &rd);
        if (off < len)
            FD_SET(fd, &wr);
        else if (!in_eof)
            FD_SET(0, &rd);
        if (select(fd + 1, &rd, &wr, NULL, NULL) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "tcp-client: select: %s\n", strerror(errno));
            return 1;
        }
        if (FD_ISSET(fd, &rd)) {
            ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0)
                return 0; /* the server closed */
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                fprintf(stderr, "tcp-client: recv: %s\n", strerror(errno));
                return 1;
            }
            for (ssize_t w = 0; n > 0 && w < n;) {
                ssize_t k = write(1, buf + w, (size_t)(n - w));
                if (k < 0 && errno == EINTR)
                    continue;
                if (k < 0) {
                    fprintf(stderr, "tcp-client: stdout: %s\n", strerror(errno));
                    return 1;
                }
                w += k;
            }
        }
        if (FD_ISSET(0, &rd)) {
            ssize_t n = read(0, chunk, sizeof chunk);
            if (n > 0) {
                off = 0;
                len = (size_t)n;
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                in_eof = 1;
                shutdown(fd, SHUT_WR);
            }
        }
        if (FD_ISSET(fd, &wr)) {
            ssize_t k = send(fd, chunk + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (k > 0) {
                off += (size_t)k;
                if (off == len && in_eof)
                    shutdown(fd, SHUT_WR);
            } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
                off = len = 0; /* the server has gone: stop uploading */
                in_eof = 1;
            }
        }
    }
}

// corpus: exercise=sockets bin=tcp-client
// checks: client-
// design: getaddrinfo, each address tried in turn; an upload pthread copies stdin to the socket and half-closes at EOF, the main thread copies the socket to stdout and exits 0 at the server's EOF without joining the upload thread
// expect: full
//
// The lecture's route in C: two threads, each blocking in one direction.
// exit(0) from the main thread ends the upload thread too, even while it sits
// in read() on a stdin that never ends.
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void *upload(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t k = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return NULL; /* the server has gone: nothing more to upload */
            off += k;
        }
    }
    shutdown(fd, SHUT_WR);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fputs("usage: tcp-client HOST PORT\n", stderr);
        return 1;
    }
    int fd = connect_to(argv[1], argv[2]);
    pthread_t t;
    if (pthread_create(&t, NULL, upload, (void *)(intptr_t)fd) != 0) {
        fputs("tcp-client: cannot start the upload thread\n", stderr);
        return 1;
    }
    pthread_detach(t);
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "tcp-client: recv: %s\n", strerror(errno));
            exit(1);
        }
        if (n == 0)
            exit(0); /* the server closed: done, whatever stdin does */
        for (ssize_t off = 0; off < n;) {
            ssize_t k = write(1, buf + off, (size_t)(n - off));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                fprintf(stderr, "tcp-client: stdout: %s\n", strerror(errno));
                exit(1);
            }
            off += k;
        }
    }
}

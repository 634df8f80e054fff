// corpus: exercise=sockets bin=tcp-client
// checks: client-
// design: getaddrinfo, each address tried in turn; fork: the child copies stdin to the socket and half-closes with shutdown (which acts on the shared socket, unlike close), the parent copies the socket to stdout and at the server's EOF kills and reaps the child, then exits 0
// expect: full
//
// Two processes instead of two threads (slide "Pipes, Sockets und Prozesse").
// The contract points that matter with processes: the half-close must be
// shutdown(SHUT_WR) — the child's close() would not end the connection while
// the parent still holds the socket; the parent must not wait for the child
// (stdin may never end), so it ends it with SIGTERM and reaps it; the child
// asks for PR_SET_PDEATHSIG so it never outlives a parent that was killed.
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

static void upload(int fd) {
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
                return; /* the server has gone */
            off += k;
        }
    }
    shutdown(fd, SHUT_WR);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fputs("usage: tcp-client HOST PORT\n", stderr);
        return 1;
    }
    int fd = connect_to(argv[1], argv[2]);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "tcp-client: fork: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(0);
        upload(fd);
        _exit(0);
    }
    close(0); /* stdin is the child's */
    int status = 0;
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "tcp-client: recv: %s\n", strerror(errno));
            status = 1;
            break;
        }
        if (n == 0)
            break; /* the server closed */
        ssize_t off = 0;
        while (off < n) {
            ssize_t k = write(1, buf + off, (size_t)(n - off));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                break;
            off += k;
        }
        if (off < n) {
            fprintf(stderr, "tcp-client: stdout: %s\n", strerror(errno));
            status = 1;
            break;
        }
    }
    kill(child, SIGTERM); /* it may still be reading a stdin that never ends */
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
    }
    return status;
}

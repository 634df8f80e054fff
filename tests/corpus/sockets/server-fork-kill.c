// corpus: exercise=sockets bin=tcp-server
// checks: server-
// design: one forked process per connection; the parent waits in poll() on the listening socket and a signalfd (SIGCHLD, SIGINT, SIGTERM), reaps children as they end, and at shutdown kills and reaps every child before exiting 0
// expect: full
//
// What makes it different: processes instead of threads, and no signal handler
// at all. The parent blocks SIGCHLD/SIGINT/SIGTERM and reads them from a
// signalfd in the same poll() as the listening socket. It remembers every
// child's pid; on SIGINT/SIGTERM it sends each one SIGTERM and waits for it, so
// nothing outlives the server. Children restore the signal mask before serving.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char GREETING[] = "Message from Server\n";

static pid_t *kids;
static size_t nkids, capkids;

static void usage(void) {
    fputs("usage: tcp-server [--bind ADDR] [--port PORT]\n", stderr);
    exit(1);
}

static int send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void serve(int fd) {
    char buf[64 * 1024];
    if (send_all(fd, GREETING, sizeof GREETING - 1) < 0)
        return;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || send_all(fd, buf, (size_t)n) < 0)
            return;
    }
}

static void forget(pid_t pid) {
    for (size_t i = 0; i < nkids; i++)
        if (kids[i] == pid) {
            kids[i] = kids[--nkids];
            return;
        }
}

int main(int argc, char **argv) {
    const char *addr = "127.0.0.1", *port_s = "5000";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--bind") == 0)
            addr = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--port") == 0)
            port_s = argv[++i];
        else
            usage();
    }
    char *end;
    unsigned long port = strtoul(port_s, &end, 10);
    if (*port_s == '\0' || *end != '\0' || port > 65535)
        usage();

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        len = sizeof *in4;
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof *in6;
    } else {
        usage();
    }

    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, &old);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "tcp-server: signalfd: %s\n", strerror(errno));
        return 1;
    }

    int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (lfd < 0) {
        fprintf(stderr, "tcp-server: socket: %s\n", strerror(errno));
        return 1;
    }
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&ss, len) < 0) {
        fprintf(stderr, "tcp-server: cannot bind %s:%s: %s\n", addr, port_s, strerror(errno));
        return 1;
    }
    if (listen(lfd, 128) < 0) {
        fprintf(stderr, "tcp-server: listen: %s\n", strerror(errno));
        return 1;
    }
    len = sizeof ss;
    getsockname(lfd, (struct sockaddr *)&ss, &len);
    char text[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        printf("listening on [%s]:%u\n", text, ntohs(in6->sin6_port));
    } else {
        inet_ntop(AF_INET, &in4->sin_addr, text, sizeof text);
        printf("listening on %s:%u\n", text, ntohs(in4->sin_port));
    }
    fflush(stdout);

    for (;;) {
        struct pollfd pfd[2] = {{.fd = lfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "tcp-server: poll: %s\n", strerror(errno));
            return 1;
        }
        if (pfd[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo == SIGCHLD) {
                    pid_t pid;
                    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
                        forget(pid);
                } else {
                    /* SIGINT or SIGTERM: end the children, reap them, leave. */
                    for (size_t i = 0; i < nkids; i++)
                        kill(kids[i], SIGTERM);
                    for (size_t i = 0; i < nkids; i++)
                        while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR) {
                        }
                    return 0;
                }
            }
        }
        if (!(pfd[0].revents & POLLIN))
            continue;
        for (;;) {
            int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC); /* blocking socket: no SOCK_NONBLOCK */
            if (cfd < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED && errno != EPROTO)
                    fprintf(stderr, "tcp-server: accept: %s\n", strerror(errno));
                if (errno == EAGAIN || errno == EMFILE || errno == ENFILE)
                    break;
                continue;
            }
            if (nkids == capkids) {
                size_t cap = capkids ? 2 * capkids : 64;
                pid_t *p = realloc(kids, cap * sizeof *p);
                if (p == NULL) {
                    close(cfd);
                    continue;
                }
                kids = p;
                capkids = cap;
            }
            pid_t pid = fork();
            if (pid == 0) {
                sigprocmask(SIG_SETMASK, &old, NULL);
                close(lfd);
                close(sfd);
                serve(cfd);
                _exit(0);
            }
            if (pid > 0)
                kids[nkids++] = pid;
            else
                fprintf(stderr, "tcp-server: fork: %s; connection dropped\n", strerror(errno));
            close(cfd);
        }
    }
}

// corpus: exercise=sockets bin=tcp-server
// checks: server-
// design: one thread, edge-triggered epoll; each wake-up services a client until both directions would block; SIGINT/SIGTERM are blocked except inside epoll_pwait, whose handler only sets a flag
// expect: full
//
// What makes it different: epoll with EPOLLET, registered once per client for
// EPOLLIN|EPOLLOUT and never modified. Edge-triggered means "tell me once": so
// service() loops, sending and receiving, until send and recv both say EAGAIN
// (or reading is paused because 256 KiB of echo wait unsent — then send has
// said EAGAIN, and the EPOLLOUT edge will come). Signals: the pselect pattern,
// with epoll_pwait unblocking them atomically while it waits.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char GREETING[] = "Message from Server\n";
enum { BUF = 512 * 1024, PAUSE = 256 * 1024 };

struct client {
    int fd;
    int eof;
    size_t off, len; /* unsent echo: buf[off..len) */
    char buf[BUF];
};

static volatile sig_atomic_t stop;

static void usage(void) {
    fputs("usage: tcp-server [--bind ADDR] [--port PORT]\n", stderr);
    exit(1);
}

static void on_stop(int sig) {
    (void)sig;
    stop = 1;
}

/* Send and receive until neither makes progress. Returns 1 when the client is
   done (echo complete after its half-close, or it has gone). */
static int service(struct client *c) {
    for (;;) {
        int progress = 0;
        while (c->off < c->len) {
            ssize_t k = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN)
                    break;
                return 1; /* EPIPE, ECONNRESET: gone */
            }
            c->off += (size_t)k;
            progress = 1;
        }
        if (c->off == c->len)
            c->off = c->len = 0;
        if (!c->eof && c->len - c->off < PAUSE) {
            if (c->off > 0) {
                memmove(c->buf, c->buf + c->off, c->len - c->off);
                c->len -= c->off;
                c->off = 0;
            }
            ssize_t n = recv(c->fd, c->buf + c->len, BUF - c->len, 0);
            if (n > 0) {
                c->len += (size_t)n;
                progress = 1;
            } else if (n == 0) {
                c->eof = 1;
                progress = 1;
            } else if (errno != EAGAIN && errno != EINTR) {
                return 1;
            }
        }
        if (c->eof && c->off == c->len)
            return 1;
        if (!progress)
            return 0;
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

    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGTERM);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

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

    int ep = epoll_create1(EPOLL_CLOEXEC);
    /* The listener is level-triggered: one accept per wake-up is enough. */
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        fprintf(stderr, "tcp-server: epoll: %s\n", strerror(errno));
        return 1;
    }
    struct epoll_event evs[64];
    while (!stop) {
        int n = epoll_pwait(ep, evs, 64, -1, &waitmask);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "tcp-server: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct client *c = evs[i].data.ptr;
            if (c == NULL) {
                int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (cfd < 0)
                    continue;
                c = malloc(sizeof *c);
                if (c == NULL) {
                    close(cfd);
                    continue;
                }
                c->fd = cfd;
                c->eof = 0;
                c->off = 0;
                c->len = sizeof GREETING - 1;
                memcpy(c->buf, GREETING, c->len);
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0) {
                    close(cfd);
                    free(c);
                    continue;
                }
            }
            if (service(c)) {
                close(c->fd); /* also takes it out of the epoll set */
                free(c);
            }
        }
    }
    return 0;
}

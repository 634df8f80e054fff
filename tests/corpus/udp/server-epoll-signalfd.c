// corpus: exercise=udp bin=udp-server
// design: epoll over the socket and a signalfd; recvmsg; peers in a growing array searched linearly
// expect: full
// checks: server-
//
// Linux's epoll instead of poll/select, the signals as a signalfd (blocked
// first, so their default action never runs), recvmsg instead of recvfrom,
// and the simplest possible table: an array that doubles when full, searched
// from the start with memcmp on the sender's sockaddr.
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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

struct peer {
    struct sockaddr_storage addr;
    socklen_t len;
    unsigned long long total;
    int seen;
    uint32_t last;
    char reply[64];
    int reply_len;
};

static struct peer *peers;
static size_t npeers, cap;

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
    if (a->ss_family != b->ss_family) return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static struct peer *find(const struct sockaddr_storage *a, socklen_t len) {
    for (size_t i = 0; i < npeers; i++)
        if (same_addr(&peers[i].addr, a)) return &peers[i];
    if (npeers == cap) {
        size_t ncap = cap ? 2 * cap : 64;
        struct peer *np = realloc(peers, ncap * sizeof *np);
        if (np == NULL) return NULL;
        peers = np;
        cap = ncap;
    }
    struct peer *p = &peers[npeers++];
    memset(p, 0, sizeof *p);
    p->addr = *a;
    p->len = len;
    return p;
}

static void answer(struct peer *p, uint32_t seq_net, const char *payload, size_t len) {
    char text[40];
    unsigned long long n = 0;
    int add = len > 4 && memcmp(payload, "ADD ", 4) == 0;
    for (size_t i = 4; add && i < len; i++) {
        if (payload[i] < '0' || payload[i] > '9') add = 0;
        else if ((n = n * 10 + (unsigned)(payload[i] - '0')) > 2147483647ULL) add = 0;
    }
    if (add) {
        p->total += n;
        snprintf(text, sizeof text, "OK %llu", p->total);
    } else if (len == 3 && memcmp(payload, "GET", 3) == 0) {
        snprintf(text, sizeof text, "OK %llu", p->total);
    } else {
        strcpy(text, "ERR unknown command");
    }
    memcpy(p->reply, &seq_net, 4);
    p->reply_len = 4 + (int)strlen(text);
    memcpy(p->reply + 4, text, strlen(text));
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *port = "5001";
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--bind")) host = argv[++i];
        else if (!strcmp(argv[i], "--port")) port = argv[++i];
    }
    struct sockaddr_in6 a6 = {0};
    struct sockaddr_in a4 = {0};
    struct sockaddr *addr;
    socklen_t alen;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)atoi(port));
        addr = (struct sockaddr *)&a4;
        alen = sizeof a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)atoi(port));
        addr = (struct sockaddr *)&a6;
        alen = sizeof a6;
    } else {
        fprintf(stderr, "udp-server: bad address %s\n", host);
        return 1;
    }
    int s = socket(addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, addr, alen) < 0) {
        fprintf(stderr, "udp-server: cannot bind %s:%s: %s\n", host, port, strerror(errno));
        return 1;
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    ev.data.fd = sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

    struct sockaddr_storage me;
    socklen_t mlen = sizeof me;
    char text[INET6_ADDRSTRLEN];
    getsockname(s, (struct sockaddr *)&me, &mlen);
    if (me.ss_family == AF_INET)
        printf("listening on %s:%d\n", inet_ntop(AF_INET, &((struct sockaddr_in *)&me)->sin_addr, text, sizeof text),
               ntohs(((struct sockaddr_in *)&me)->sin_port));
    else
        printf("listening on [%s]:%d\n",
               inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&me)->sin6_addr, text, sizeof text),
               ntohs(((struct sockaddr_in6 *)&me)->sin6_port));
    fflush(stdout);

    static char buf[65536];
    for (;;) {
        struct epoll_event got[2];
        int n = epoll_wait(ep, got, 2, -1);
        if (n < 0 && errno != EINTR) { perror("udp-server: epoll_wait"); return 1; }
        for (int i = 0; i < n; i++)
            if (got[i].data.fd == sfd) return 0;
        // Drain what is queued: the socket is non-blocking.
        for (;;) {
            struct sockaddr_storage from;
            struct iovec iov = {buf, sizeof buf};
            struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
            ssize_t len = recvmsg(s, &msg, 0);
            if (len < 0) break;           // EAGAIN: all read
            if (len < 4) continue;        // not a request
            uint32_t seq_net, seq;
            memcpy(&seq_net, buf, 4);
            seq = ntohl(seq_net);
            struct peer *p = find(&from, msg.msg_namelen);
            if (p == NULL) continue;
            if (p->seen && seq < p->last) continue;
            if (!p->seen || seq != p->last) {
                answer(p, seq_net, buf + 4, (size_t)len - 4);
                p->seen = 1;
                p->last = seq;
            }
            sendto(s, p->reply, (size_t)p->reply_len, 0, (struct sockaddr *)&p->addr, p->len);
        }
    }
}

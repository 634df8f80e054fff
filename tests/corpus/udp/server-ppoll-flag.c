// corpus: exercise=udp bin=udp-server
// design: signals blocked except inside ppoll (the handler only sets a flag); peers in a linked list; strtoul-free parsing
// expect: full
// checks: server-
//
// The race-free version of "a handler sets a flag": SIGINT and SIGTERM stay
// blocked while the loop works and are let through only inside ppoll, which
// swaps the signal mask atomically with going to sleep. A signal that comes
// while a datagram is handled waits until the next ppoll, which then returns
// EINTR at once. Peers are a singly linked list with the newest in front.
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
#include <sys/socket.h>
#include <unistd.h>

struct peer {
    struct peer *next;
    struct sockaddr_storage addr;
    int has_last;
    uint32_t last;
    uint64_t total;
    size_t reply_len;
    unsigned char reply[64];
};

static volatile sig_atomic_t stop;
static void on_stop(int sig) { (void)sig; stop = 1; }

static struct peer *peers;

static int equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
    if (a->ss_family != b->ss_family) return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr);
}

static struct peer *peer_for(const struct sockaddr_storage *a) {
    for (struct peer *p = peers; p; p = p->next)
        if (equal(&p->addr, a)) return p;
    struct peer *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->addr = *a;
    p->next = peers;
    peers = p;
    return p;
}

// Decimal digits only, value below 2^31.
static int decimal(const unsigned char *s, size_t n, uint64_t *out) {
    uint64_t v = 0;
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
        if (v >= 2147483648u) return 0;
    }
    *out = v;
    return 1;
}

static void execute(struct peer *p, const unsigned char *d, size_t n) {
    const unsigned char *pl = d + 4;
    size_t len = n - 4;
    uint64_t v;
    char text[48];
    if (len >= 4 && !memcmp(pl, "ADD ", 4) && decimal(pl + 4, len - 4, &v)) {
        p->total += v;
        snprintf(text, sizeof text, "OK %llu", (unsigned long long)p->total);
    } else if (len == 3 && !memcmp(pl, "GET", 3)) {
        snprintf(text, sizeof text, "OK %llu", (unsigned long long)p->total);
    } else {
        snprintf(text, sizeof text, "ERR unknown command");
    }
    memcpy(p->reply, d, 4);
    memcpy(p->reply + 4, text, strlen(text));
    p->reply_len = 4 + strlen(text);
}

static void print_addr(int s) {
    struct sockaddr_storage me;
    socklen_t len = sizeof me;
    char h[INET6_ADDRSTRLEN];
    getsockname(s, (struct sockaddr *)&me, &len);
    if (me.ss_family == AF_INET) {
        struct sockaddr_in *m = (struct sockaddr_in *)&me;
        printf("listening on %s:%u\n", inet_ntop(AF_INET, &m->sin_addr, h, sizeof h), ntohs(m->sin_port));
    } else {
        struct sockaddr_in6 *m = (struct sockaddr_in6 *)&me;
        printf("listening on [%s]:%u\n", inet_ntop(AF_INET6, &m->sin6_addr, h, sizeof h), ntohs(m->sin6_port));
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    char *host = "127.0.0.1", *port = "5001";
    for (int i = 1; i < argc - 1; i++) {
        if (strcmp(argv[i], "--bind") == 0) host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0) port = argv[++i];
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sslen;
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)strtoul(port, NULL, 10));
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) { fprintf(stderr, "udp-server: bad address\n"); return 1; }
        sslen = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)strtoul(port, NULL, 10));
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1) { fprintf(stderr, "udp-server: bad address\n"); return 1; }
        sslen = sizeof *a;
    }
    int s = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("udp-server: socket"); return 1; }
    if (bind(s, (struct sockaddr *)&ss, sslen) != 0) {
        fprintf(stderr, "udp-server: cannot bind %s:%s: %s\n", host, port, strerror(errno));
        return 1;
    }
    sigset_t block, during_wait;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &during_wait);
    sigdelset(&during_wait, SIGINT);
    sigdelset(&during_wait, SIGTERM);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    print_addr(s);

    static unsigned char buf[65536];
    while (!stop) {
        struct pollfd pfd = {.fd = s, .events = POLLIN};
        int r = ppoll(&pfd, 1, NULL, &during_wait);
        if (r < 0) {
            if (errno == EINTR) continue; // the loop condition looks at the flag
            perror("udp-server: ppoll");
            return 1;
        }
        struct sockaddr_storage from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
        if (n < 4) continue;
        uint32_t seq = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) | buf[3];
        struct peer *p = peer_for(&from);
        if (!p) continue;
        if (p->has_last && seq < p->last) continue;
        if (!p->has_last || seq > p->last) {
            execute(p, buf, (size_t)n);
            p->has_last = 1;
            p->last = seq;
        }
        sendto(s, p->reply, p->reply_len, MSG_DONTWAIT, (struct sockaddr *)&from, flen);
    }
    return 0;
}

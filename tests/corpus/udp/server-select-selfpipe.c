// corpus: exercise=udp bin=udp-server
// design: select over the socket and a self-pipe fed by a SIGINT/SIGTERM handler; peers in an open-addressing hash table
// expect: full
// checks: server-
//
// The classic pre-signalfd way to wait for a socket and a signal at once: the
// handler writes a byte into a non-blocking pipe, and select watches the
// pipe's read end next to the socket (no race: the byte stays there until
// read). Peers live in a fixed open-addressing table of 4096 slots, keyed by
// family, port and address — no dynamic allocation at all.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOTS 4096
#define MAXDGRAM 65536

struct peer {
    int used;
    struct sockaddr_storage addr;
    socklen_t len;
    uint64_t total;
    int executed;          // a request has been executed: last/reply valid
    uint32_t last;
    char reply[64];
    size_t reply_len;
};

static struct peer table[SLOTS];
static int pipe_w = -1;

static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    char b = 1;
    if (write(pipe_w, &b, 1) < 0) { /* pipe full: a byte is there already */ }
    errno = saved;
}

// The bytes that identify a sender: family, port, address.
static size_t key_of(const struct sockaddr_storage *a, unsigned char *key) {
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)a;
        key[0] = 4;
        memcpy(key + 1, &s->sin_port, 2);
        memcpy(key + 3, &s->sin_addr, 4);
        return 7;
    }
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
    key[0] = 6;
    memcpy(key + 1, &s->sin6_port, 2);
    memcpy(key + 3, &s->sin6_addr, 16);
    return 19;
}

static struct peer *lookup(const struct sockaddr_storage *a, socklen_t len) {
    unsigned char key[19], other[19];
    size_t n = key_of(a, key);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ key[i]) * 16777619u;
    for (size_t probe = 0; probe < SLOTS; probe++) {
        struct peer *p = &table[(h + probe) % SLOTS];
        if (!p->used) {
            memset(p, 0, sizeof *p);
            p->used = 1;
            p->addr = *a;
            p->len = len;
            return p;
        }
        if (key_of(&p->addr, other) == n && memcmp(key, other, n) == 0) return p;
    }
    return NULL; // table full: more than 4096 clients
}

// ADD N with N decimal, below 2^31; returns -1 if not.
static long long parse_add(const char *p, size_t n) {
    if (n < 5 || memcmp(p, "ADD ", 4) != 0) return -1;
    long long v = 0;
    for (size_t i = 4; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
        if (v >= (1LL << 31)) return -1;
    }
    return v;
}

int main(int argc, char **argv) {
    const char *addr_text = "127.0.0.1", *port_text = "5001";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--bind") == 0) addr_text = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0) port_text = argv[i + 1];
    }
    struct sockaddr_storage bind_addr;
    memset(&bind_addr, 0, sizeof bind_addr);
    socklen_t bind_len;
    struct sockaddr_in *b4 = (struct sockaddr_in *)&bind_addr;
    struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&bind_addr;
    int port = atoi(port_text);
    if (inet_pton(AF_INET, addr_text, &b4->sin_addr) == 1) {
        b4->sin_family = AF_INET;
        b4->sin_port = htons(port);
        bind_len = sizeof *b4;
    } else if (inet_pton(AF_INET6, addr_text, &b6->sin6_addr) == 1) {
        b6->sin6_family = AF_INET6;
        b6->sin6_port = htons(port);
        bind_len = sizeof *b6;
    } else {
        fprintf(stderr, "udp-server: bad address %s\n", addr_text);
        return 1;
    }
    int s = socket(bind_addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("udp-server: socket"); return 1; }
    if (bind(s, (struct sockaddr *)&bind_addr, bind_len) < 0) {
        fprintf(stderr, "udp-server: cannot bind %s:%s: %s\n", addr_text, port_text, strerror(errno));
        return 1;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) { perror("udp-server: pipe"); return 1; }
    pipe_w = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct sockaddr_storage me;
    socklen_t me_len = sizeof me;
    getsockname(s, (struct sockaddr *)&me, &me_len);
    char host[INET6_ADDRSTRLEN];
    if (me.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&me)->sin_addr, host, sizeof host);
        printf("listening on %s:%u\n", host, ntohs(((struct sockaddr_in *)&me)->sin_port));
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&me)->sin6_addr, host, sizeof host);
        printf("listening on [%s]:%u\n", host, ntohs(((struct sockaddr_in6 *)&me)->sin6_port));
    }
    fflush(stdout);

    static char buf[MAXDGRAM];
    for (;;) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(s, &rd);
        FD_SET(fds[0], &rd);
        int maxfd = s > fds[0] ? s : fds[0];
        if (select(maxfd + 1, &rd, NULL, NULL, NULL) < 0) {
            if (errno == EINTR) continue;
            perror("udp-server: select");
            return 1;
        }
        if (FD_ISSET(fds[0], &rd)) return 0;
        if (!FD_ISSET(s, &rd)) continue;
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &from_len);
        if (n < 4) continue; // an error, or shorter than a sequence number
        uint32_t net_seq;
        memcpy(&net_seq, buf, 4);
        uint32_t seq = ntohl(net_seq);
        struct peer *p = lookup(&from, from_len);
        if (p == NULL) continue;
        if (p->executed && seq < p->last) continue;
        if (!p->executed || seq != p->last) {
            const char *payload = buf + 4;
            size_t len = (size_t)n - 4;
            long long add = parse_add(payload, len);
            char text[48];
            if (add >= 0) {
                p->total += (uint64_t)add;
                snprintf(text, sizeof text, "OK %llu", (unsigned long long)p->total);
            } else if (len == 3 && memcmp(payload, "GET", 3) == 0) {
                snprintf(text, sizeof text, "OK %llu", (unsigned long long)p->total);
            } else {
                snprintf(text, sizeof text, "ERR unknown command");
            }
            memcpy(p->reply, &net_seq, 4);
            memcpy(p->reply + 4, text, strlen(text));
            p->reply_len = 4 + strlen(text);
            p->last = seq;
            p->executed = 1;
        }
        sendto(s, p->reply, p->reply_len, MSG_DONTWAIT, (struct sockaddr *)&from, from_len);
    }
}

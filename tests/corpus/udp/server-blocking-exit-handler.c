// corpus: exercise=udp bin=udp-server
// design: a plain blocking recvfrom loop, no poll at all; the SIGINT/SIGTERM handler itself calls _exit(0)
// expect: full
// checks: server-
//
// The shortest correct server: with nothing to clean up, the stop signals need
// no flag and no second descriptor — the handler ends the process with the
// async-signal-safe _exit(0), wherever the loop happens to be. The loop is the
// slide's "Passives Warten" literally: bind, then recvfrom and sendto forever.
// Peers sit in a fixed array of 2048, found by linear search.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXPEERS 2048

static struct {
    struct sockaddr_in6 addr; // IPv4 senders stored as-is in the larger struct
    socklen_t len;
    long long total;
    long long last; // -1: nothing executed yet
    char reply[64];
    int reply_len;
} peers[MAXPEERS];
static int npeers;

static void bye(int sig) {
    (void)sig;
    _exit(0);
}

static int lookup(const struct sockaddr_in6 *a, socklen_t len) {
    for (int i = 0; i < npeers; i++)
        if (peers[i].len == len && memcmp(&peers[i].addr, a, len) == 0) return i;
    if (npeers == MAXPEERS) return -1;
    memset(&peers[npeers], 0, sizeof peers[npeers]);
    memcpy(&peers[npeers].addr, a, len);
    peers[npeers].len = len;
    peers[npeers].last = -1;
    return npeers++;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *port = "5001";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--bind")) host = argv[i + 1];
        if (!strcmp(argv[i], "--port")) port = argv[i + 1];
    }
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    socklen_t salen;
    struct sockaddr_in *sa4 = (struct sockaddr_in *)&sa;
    if (inet_pton(AF_INET, host, &sa4->sin_addr) == 1) {
        sa4->sin_family = AF_INET;
        sa4->sin_port = htons(atoi(port));
        salen = sizeof *sa4;
    } else if (inet_pton(AF_INET6, host, &sa.sin6_addr) == 1) {
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(atoi(port));
        salen = sizeof sa;
    } else {
        fprintf(stderr, "udp-server: bad address %s\n", host);
        return 1;
    }
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = bye;
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGTERM, &act, NULL);
    int s = socket(sa.sin6_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("udp-server: socket"); return 1; }
    if (bind(s, (struct sockaddr *)&sa, salen) < 0) {
        fprintf(stderr, "udp-server: cannot bind %s:%s: %s\n", host, port, strerror(errno));
        return 1;
    }
    struct sockaddr_in6 me;
    socklen_t melen = sizeof me;
    char name[INET6_ADDRSTRLEN];
    getsockname(s, (struct sockaddr *)&me, &melen);
    if (me.sin6_family == AF_INET6)
        printf("listening on [%s]:%d\n", inet_ntop(AF_INET6, &me.sin6_addr, name, sizeof name), ntohs(me.sin6_port));
    else
        printf("listening on %s:%d\n", inet_ntop(AF_INET, &((struct sockaddr_in *)&me)->sin_addr, name, sizeof name),
               ntohs(((struct sockaddr_in *)&me)->sin_port));
    fflush(stdout);

    static char buf[65536];
    for (;;) {
        struct sockaddr_in6 from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
        if (n < 4) continue;
        uint32_t net;
        memcpy(&net, buf, 4);
        long long seq = ntohl(net);
        int i = lookup(&from, flen);
        if (i < 0) continue;
        if (seq < peers[i].last) continue;
        if (seq != peers[i].last) {
            char text[40];
            char *p = buf + 4, *end = buf + n;
            long long v = 0;
            int ok = end - p > 4 && !memcmp(p, "ADD ", 4);
            for (char *q = p + 4; ok && q < end; q++) {
                ok = *q >= '0' && *q <= '9';
                v = v * 10 + (*q - '0');
                if (v > 2147483647LL) ok = 0;
            }
            if (ok) {
                peers[i].total += v;
                snprintf(text, sizeof text, "OK %lld", peers[i].total);
            } else if (end - p == 3 && !memcmp(p, "GET", 3)) {
                snprintf(text, sizeof text, "OK %lld", peers[i].total);
            } else {
                snprintf(text, sizeof text, "ERR unknown command");
            }
            memcpy(peers[i].reply, buf, 4);
            memcpy(peers[i].reply + 4, text, strlen(text));
            peers[i].reply_len = 4 + (int)strlen(text);
            peers[i].last = seq;
        }
        sendto(s, peers[i].reply, peers[i].reply_len, 0, (struct sockaddr *)&from, flen);
    }
}

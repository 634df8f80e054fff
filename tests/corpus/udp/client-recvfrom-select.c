// corpus: exercise=udp bin=udp-client
// design: unconnected socket with sendto/recvfrom, every sender compared with the server's address; select with a timeval from an absolute deadline
// expect: full
// checks: client-
//
// Without connect the kernel hands us datagrams from anybody, so each one's
// sender (recvfrom) is compared with the server's address and port; and no
// ICMP error ever reaches an unconnected socket, so ECONNREFUSED cannot occur.
// select gets a fresh struct timeval before every call (select overwrites
// it), computed from the absolute deadline and rounded up to microseconds.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct timespec now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

static struct timespec plus_ms(struct timespec t, long long ms) {
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) { t.tv_nsec -= 1000000000; t.tv_sec++; }
    return t;
}

// Time from now to `d` in a timeval, rounded up; 0 when it has passed.
static int left(struct timespec d, struct timeval *tv) {
    struct timespec n = now();
    long long ns = (long long)(d.tv_sec - n.tv_sec) * 1000000000 + (d.tv_nsec - n.tv_nsec);
    if (ns <= 0) return 0;
    long long us = (ns + 999) / 1000;
    tv->tv_sec = us / 1000000;
    tv->tv_usec = us % 1000000;
    return 1;
}

static int from_server(const struct sockaddr_storage *a, const struct sockaddr_in *server) {
    const struct sockaddr_in *f = (const struct sockaddr_in *)a;
    return a->ss_family == AF_INET && f->sin_port == server->sin_port && f->sin_addr.s_addr == server->sin_addr.s_addr;
}

int main(int argc, char **argv) {
    char *pos[2];
    int npos = 0;
    long long t_ms = 200;
    int retries = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) t_ms = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--retries") && i + 1 < argc) retries = atoi(argv[++i]);
        else if (npos < 2) pos[npos++] = argv[i];
    }
    if (npos != 2) { fprintf(stderr, "udp-client: usage: udp-client HOST PORT [--timeout-ms T] [--retries R]\n"); return 1; }
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(pos[1]))};
    if (!strcmp(pos[0], "localhost")) server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, pos[0], &server.sin_addr) != 1) {
        fprintf(stderr, "udp-client: cannot resolve %s (IPv4 literals and localhost only)\n", pos[0]);
        return 1;
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("udp-client: socket"); return 1; }

    char line[2048];
    static unsigned char req[4 + sizeof line], rep[65536];
    unsigned seq = 0;
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        seq++;
        req[0] = seq >> 24; req[1] = seq >> 16; req[2] = seq >> 8; req[3] = seq;
        memcpy(req + 4, line, n);
        long long timeout = t_ms;
        int done = 0;
        for (int sent = 0; !done; sent++) {
            if (sent > retries) {
                fprintf(stderr, "udp-client: no reply to request %u after %d retransmissions\n", seq, retries);
                return 3;
            }
            sendto(s, req, 4 + n, 0, (struct sockaddr *)&server, sizeof server);
            struct timespec deadline = plus_ms(now(), timeout);
            struct timeval tv;
            while (!done && left(deadline, &tv)) {
                fd_set rd;
                FD_ZERO(&rd);
                FD_SET(s, &rd);
                if (select(s + 1, &rd, NULL, NULL, &tv) <= 0) continue;
                struct sockaddr_storage from;
                socklen_t flen = sizeof from;
                ssize_t got = recvfrom(s, rep, sizeof rep, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
                if (got < 4 || !from_server(&from, &server)) continue;
                unsigned rseq = (unsigned)rep[0] << 24 | rep[1] << 16 | rep[2] << 8 | rep[3];
                if (rseq != seq) continue;
                fwrite(rep + 4, 1, (size_t)got - 4, stdout);
                fputc('\n', stdout);
                fflush(stdout);
                done = 1;
            }
            timeout *= 2;
        }
    }
    return 0;
}

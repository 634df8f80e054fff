// corpus: exercise=udp bin=udp-client
// design: unconnected socket, recvfrom compared with the resolved address (memcmp); poll with a shrinking timeout (elapsed time subtracted after every wake-up)
// expect: full
// checks: client-
//
// Instead of an absolute deadline this client keeps "time left" and, after
// every poll that returned without the reply, subtracts the time that really
// passed (measured on CLOCK_MONOTONIC around the call) — the same arithmetic,
// the other way round. Datagrams are accepted only from the exact sockaddr
// getaddrinfo gave for the server.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long usec(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static void die_usage(void) {
    fprintf(stderr, "udp-client: usage: udp-client HOST PORT [--timeout-ms T] [--retries R]\n");
    exit(1);
}

int main(int argc, char **argv) {
    const char *args[2] = {0};
    int nargs = 0;
    long long timeout_us = 200000;
    long retries = 5;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--", 2)) {
            if (i + 1 >= argc) die_usage();
            if (!strcmp(argv[i], "--timeout-ms")) timeout_us = atoll(argv[++i]) * 1000;
            else if (!strcmp(argv[i], "--retries")) retries = atol(argv[++i]);
            else die_usage();
        } else if (nargs < 2) {
            args[nargs++] = argv[i];
        } else {
            die_usage();
        }
    }
    if (nargs != 2 || timeout_us <= 0) die_usage();
    struct addrinfo hints = {0}, *server;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_family = AF_UNSPEC;
    int e = getaddrinfo(args[0], args[1], &hints, &server);
    if (e) { fprintf(stderr, "udp-client: cannot resolve %s:%s: %s\n", args[0], args[1], gai_strerror(e)); return 1; }
    int s = socket(server->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("udp-client: socket"); return 1; }

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint32_t seq = 0;
    unsigned char *buf = malloc(65536), *req = NULL;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len && line[len - 1] == '\n') line[--len] = '\0';
        seq++;
        req = realloc(req, (size_t)len + 4);
        uint32_t be = htonl(seq);
        memcpy(req, &be, 4);
        memcpy(req + 4, line, (size_t)len);
        long long timeout = timeout_us;
        long retransmissions = 0;
        ssize_t got = -1;
        while (got < 0) {
            sendto(s, req, (size_t)len + 4, 0, server->ai_addr, server->ai_addrlen);
            long long remaining = timeout;
            while (got < 0 && remaining > 0) {
                long long before = usec();
                struct pollfd p = {s, POLLIN, 0};
                int ms = (int)((remaining + 999) / 1000);
                if (poll(&p, 1, ms) > 0) {
                    struct sockaddr_storage from;
                    socklen_t flen = sizeof from;
                    ssize_t n = recvfrom(s, buf, 65536, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
                    uint32_t rbe;
                    if (n >= 4 && flen == server->ai_addrlen && !memcmp(&from, server->ai_addr, flen)) {
                        memcpy(&rbe, buf, 4);
                        if (ntohl(rbe) == seq) got = n;
                    }
                }
                remaining -= usec() - before;
            }
            if (got >= 0) break;
            if (retransmissions++ == retries) {
                fprintf(stderr, "udp-client: no reply to request %u after %ld retransmissions\n", seq, retries);
                return 3;
            }
            timeout *= 2;
        }
        fwrite(buf + 4, 1, (size_t)got - 4, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    return 0;
}

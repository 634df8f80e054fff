// corpus: exercise=udp bin=udp-client
// design: connected socket (the kernel filters other senders, ECONNREFUSED shows), poll, an absolute CLOCK_MONOTONIC deadline
// expect: full
// checks: client-
//
// The slide "Timeouts (1)" in C: after each transmission remember the absolute
// deadline; before every poll compute the time left from clock_gettime
// (CLOCK_MONOTONIC, not the slide's gettimeofday, which jumps when the clock
// is set) and round it up to whole milliseconds.
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <arpa/inet.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void transmit(int s, const char *d, size_t n) {
    // A pending ICMP error from an earlier transmission is reported here
    // instead, and this datagram was not sent: send it again.
    for (int i = 0; i < 2; i++) {
        if (send(s, d, n, 0) >= 0) return;
        if (errno != ECONNREFUSED && errno != EINTR) { perror("udp-client: send"); exit(1); }
    }
}

int main(int argc, char **argv) {
    const char *host = NULL, *port = NULL;
    long timeout_ms = 200, retries = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) timeout_ms = atol(argv[++i]);
        else if (!strcmp(argv[i], "--retries") && i + 1 < argc) retries = atol(argv[++i]);
        else if (!host) host = argv[i];
        else port = argv[i];
    }
    if (!host || !port || timeout_ms <= 0) {
        fprintf(stderr, "udp-client: usage: udp-client HOST PORT [--timeout-ms T] [--retries R]\n");
        return 1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) { fprintf(stderr, "udp-client: cannot resolve %s:%s: %s\n", host, port, gai_strerror(rc)); return 1; }
    int s = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) < 0) { perror("udp-client: connect"); return 1; }
    freeaddrinfo(ai);

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint32_t seq = 0;
    static char out[65536], in[65536];
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') len--;
        seq++;
        uint32_t net = htonl(seq);
        memcpy(out, &net, 4);
        if (len > (ssize_t)sizeof out - 4) len = sizeof out - 4;
        memcpy(out + 4, line, (size_t)len);
        int64_t timeout = (int64_t)timeout_ms * 1000000;
        for (long tries = 0;; tries++) {
            transmit(s, out, 4 + (size_t)len);
            int64_t deadline = now_ns() + timeout;
            ssize_t got = -1;
            for (;;) {
                int64_t left = deadline - now_ns();
                if (left <= 0) break;
                struct pollfd p = {.fd = s, .events = POLLIN};
                int r = poll(&p, 1, (int)((left + 999999) / 1000000));
                if (r <= 0) continue; // timeout (the loop asks the clock) or EINTR
                ssize_t n = recv(s, in, sizeof in, MSG_DONTWAIT);
                if (n < 0) {
                    if (errno == ECONNREFUSED || errno == EAGAIN || errno == EINTR) continue;
                    perror("udp-client: recv");
                    return 1;
                }
                uint32_t rseq;
                if (n >= 4 && (memcpy(&rseq, in, 4), ntohl(rseq) == seq)) { got = n; break; }
            }
            if (got >= 0) {
                fwrite(in + 4, 1, (size_t)got - 4, stdout);
                putchar('\n');
                fflush(stdout);
                break;
            }
            if (tries == retries) {
                fprintf(stderr, "udp-client: no reply to request %u after %ld retransmissions\n", seq, retries);
                return 3;
            }
            timeout *= 2;
        }
    }
    free(line);
    return 0;
}

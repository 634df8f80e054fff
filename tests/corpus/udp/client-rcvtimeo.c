// corpus: exercise=udp bin=udp-client
// design: connected socket, blocking recv bounded by SO_RCVTIMEO, set afresh to the time left before every recv
// expect: full
// checks: client-
//
// No poll and no select: the kernel's receive timeout does the waiting. The
// timeout shrinks: before each recv it is set to what is left until the
// absolute deadline, so a datagram that is ignored does not restart the wait.
// A timeout of exactly 0 would mean "block forever" to SO_RCVTIMEO, so an
// expired deadline is checked before, never passed on.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    const char *host = NULL, *port = NULL;
    double timeout_s = 0.2;
    int retries = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) timeout_s = atof(argv[++i]) / 1000.0;
        else if (strcmp(argv[i], "--retries") == 0 && i + 1 < argc) retries = atoi(argv[++i]);
        else if (host == NULL) host = argv[i];
        else port = argv[i];
    }
    if (host == NULL || port == NULL) {
        fputs("udp-client: usage: udp-client HOST PORT [--timeout-ms T] [--retries R]\n", stderr);
        return 1;
    }
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        fprintf(stderr, "udp-client: cannot resolve %s:%s\n", host, port);
        return 1;
    }
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        perror("udp-client: connect");
        return 1;
    }
    freeaddrinfo(res);

    char *line = NULL;
    size_t linecap = 0;
    ssize_t n;
    uint32_t seq = 0;
    static char msg[65536], reply[65536];
    while ((n = getline(&line, &linecap, stdin)) != -1) {
        if (n > 0 && line[n - 1] == '\n') n--;
        if (n > 65000) n = 65000;
        seq++;
        uint32_t be = htonl(seq);
        memcpy(msg, &be, 4);
        memcpy(msg + 4, line, (size_t)n);
        double wait = timeout_s;
        int attempt = 0;
        for (;;) {
            if (send(fd, msg, (size_t)n + 4, 0) < 0 && errno == ECONNREFUSED) send(fd, msg, (size_t)n + 4, 0);
            double deadline = mono() + wait;
            ssize_t got = -1;
            for (;;) {
                double rest = deadline - mono();
                if (rest <= 0) break;
                struct timeval tv = {.tv_sec = (time_t)rest, .tv_usec = (suseconds_t)((rest - (time_t)rest) * 1e6) + 1};
                if (tv.tv_usec >= 1000000) { tv.tv_sec++; tv.tv_usec -= 1000000; }
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                ssize_t r = recv(fd, reply, sizeof reply, 0);
                if (r < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNREFUSED) continue;
                    perror("udp-client: recv");
                    return 1;
                }
                uint32_t rbe;
                if (r >= 4) {
                    memcpy(&rbe, reply, 4);
                    if (ntohl(rbe) == seq) { got = r; break; }
                }
            }
            if (got >= 0) {
                fwrite(reply + 4, 1, (size_t)got - 4, stdout);
                fputc('\n', stdout);
                fflush(stdout);
                break;
            }
            if (attempt++ == retries) {
                fprintf(stderr, "udp-client: no reply to request %u after %d retransmissions\n", seq, retries);
                return 3;
            }
            wait *= 2;
        }
    }
    return 0;
}

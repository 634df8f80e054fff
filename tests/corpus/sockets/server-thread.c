// corpus: exercise=sockets bin=tcp-server
// checks: server-
// design: one detached pthread per connection with blocking recv/send; SIGINT/SIGTERM handler that calls _exit(0)
// expect: full
//
// What makes it different from the reference: no signal-waiting thread and no
// blocked signal mask. A handler that only calls _exit(0) (async-signal-safe)
// ends the process whichever thread the signal lands on; every socket is
// closed by the kernel. Threads get small stacks and are detached, so nobody
// joins them.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char GREETING[] = "Message from Server\n";

static void usage(void) {
    fputs("usage: tcp-server [--bind ADDR] [--port PORT]\n", stderr);
    exit(1);
}

static void on_stop(int sig) {
    (void)sig;
    _exit(0);
}

/* send() until every byte is out; MSG_NOSIGNAL turns SIGPIPE into EPIPE. */
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

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[32 * 1024];
    if (send_all(fd, GREETING, sizeof GREETING - 1) == 0) {
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0 || send_all(fd, buf, (size_t)n) < 0)
                break; /* EOF (half-close), reset, or the client went away */
        }
    }
    close(fd);
    return NULL;
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

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            fprintf(stderr, "tcp-server: accept: %s\n", strerror(errno));
            continue;
        }
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)cfd) != 0) {
            fprintf(stderr, "tcp-server: cannot start a thread; connection dropped\n");
            close(cfd);
        }
    }
}

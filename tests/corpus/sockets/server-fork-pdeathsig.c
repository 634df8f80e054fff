// corpus: exercise=sockets bin=tcp-server
// checks: server-
// design: one forked process per connection; children ask for PR_SET_PDEATHSIG, so they end right after the server exits; a SIGCHLD handler reaps them
// expect: full
//
// What makes it different: processes instead of threads (slide "Pipes, Sockets
// und Prozesse (5)"). The parent closes its copy of every connection and reaps
// finished children from a SIGCHLD handler (waitpid WNOHANG in a loop, SA_RESTART
// so accept() resumes). On SIGINT/SIGTERM the parent simply _exit(0)s: each
// child asked the kernel (prctl PR_SET_PDEATHSIG) for SIGTERM when the parent
// dies, and checks getppid() afterwards to close the race with a parent that
// died before the prctl.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

static void on_child(int sig) {
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

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

static void serve(int fd) {
    char buf[64 * 1024];
    if (send_all(fd, GREETING, sizeof GREETING - 1) < 0)
        return;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || send_all(fd, buf, (size_t)n) < 0)
            return;
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

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);

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

    pid_t server = getpid();
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO)
                fprintf(stderr, "tcp-server: accept: %s\n", strerror(errno));
            continue;
        }
        pid_t pid = fork();
        if (pid == 0) {
            signal(SIGCHLD, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != server)
                _exit(0);
            close(lfd);
            serve(cfd);
            _exit(0);
        }
        if (pid < 0)
            fprintf(stderr, "tcp-server: fork: %s; connection dropped\n", strerror(errno));
        close(cfd);
    }
}

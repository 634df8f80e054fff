// corpus: exercise=sockets bin=tcp-server
// checks: server-
// design: one thread, one poll() loop over the listening socket, a self-pipe for SIGINT/SIGTERM and every client; non-blocking sockets with a per-client output buffer (reading pauses while it is full)
// expect: full
//
// What makes it different: no threads, no processes. Every client socket is
// non-blocking; what it sends goes into its output buffer and is written when
// poll() reports POLLOUT. While 256 KiB wait unsent, the client's POLLIN is not
// asked for: that is the flow control the blocking designs get for free.
// The signal handler only writes a byte into a pipe that poll() watches.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char GREETING[] = "Message from Server\n";
enum { BUF = 512 * 1024, PAUSE = 256 * 1024 };

struct client {
    int fd;
    int eof;       /* the client half-closed: finish the echo, then close */
    size_t off, len; /* unsent bytes are out[off..len) */
    char *out;
};

static struct client *clients;
static size_t nclients, capclients;
static int sigpipe_w;

static void usage(void) {
    fputs("usage: tcp-server [--bind ADDR] [--port PORT]\n", stderr);
    exit(1);
}

static void on_stop(int sig) {
    (void)sig;
    int saved = errno;
    (void)!write(sigpipe_w, "x", 1);
    errno = saved;
}

/* Writes what the socket takes now. Returns -1 if the client has gone. */
static int flush_out(struct client *c) {
    while (c->off < c->len) {
        ssize_t k = send(c->fd, c->out + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (k < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        c->off += (size_t)k;
    }
    c->off = c->len = 0;
    return 0;
}

/* One recv into the output buffer (it is the echo). Returns -1 on reset. */
static int read_in(struct client *c) {
    if (c->off > 0) {
        memmove(c->out, c->out + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    ssize_t n = recv(c->fd, c->out + c->len, BUF - c->len, 0);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    if (n == 0)
        c->eof = 1;
    c->len += (size_t)n;
    return 0;
}

static void drop(size_t i) {
    close(clients[i].fd);
    free(clients[i].out);
    clients[i] = clients[--nclients];
}

static struct client *add_client(int fd) {
    if (nclients == capclients) {
        size_t cap = capclients ? 2 * capclients : 32;
        struct client *p = realloc(clients, cap * sizeof *p);
        if (p == NULL) {
            close(fd);
            return NULL;
        }
        clients = p;
        capclients = cap;
    }
    struct client *c = &clients[nclients];
    c->out = malloc(BUF);
    if (c->out == NULL) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->eof = 0;
    c->off = 0;
    memcpy(c->out, GREETING, sizeof GREETING - 1);
    c->len = sizeof GREETING - 1;
    nclients++;
    return c;
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

    int sp[2];
    if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) < 0) {
        fprintf(stderr, "tcp-server: pipe: %s\n", strerror(errno));
        return 1;
    }
    sigpipe_w = sp[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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

    struct pollfd *pfd = NULL;
    size_t cappfd = 0;
    int accepting = 1;
    for (;;) {
        if (cappfd < nclients + 2) {
            cappfd = 2 * (nclients + 2);
            pfd = realloc(pfd, cappfd * sizeof *pfd);
            if (pfd == NULL) {
                fputs("tcp-server: out of memory\n", stderr);
                return 1;
            }
        }
        pfd[0] = (struct pollfd){.fd = sp[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = accepting ? lfd : -1, .events = POLLIN};
        for (size_t i = 0; i < nclients; i++) {
            struct client *c = &clients[i];
            short ev = 0;
            if (!c->eof && c->len - c->off < PAUSE)
                ev |= POLLIN;
            if (c->len > c->off)
                ev |= POLLOUT;
            pfd[i + 2] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        size_t polled = nclients;
        if (poll(pfd, polled + 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "tcp-server: poll: %s\n", strerror(errno));
            return 1;
        }
        if (pfd[0].revents)
            return 0; /* SIGINT or SIGTERM; exit closes every socket */
        /* Clients from the back, so that drop() (swap with the last) never
           moves an unvisited one. */
        for (size_t i = polled; i-- > 0;) {
            struct client *c = &clients[i];
            short re = pfd[i + 2].revents;
            int gone = 0;
            if (re & (POLLIN | POLLHUP | POLLERR))
                gone = read_in(c) < 0;
            if (!gone && c->len > c->off)
                gone = flush_out(c) < 0;
            if (!gone && (re & (POLLHUP | POLLERR)) && !(re & POLLIN))
                gone = 1;
            if (gone || (c->eof && c->len == c->off))
                drop(i);
        }
        if (nclients < polled)
            accepting = 1;
        if (pfd[1].revents & POLLIN) {
            for (;;) {
                int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (cfd >= 0) {
                    struct client *c = add_client(cfd);
                    if (c != NULL && flush_out(c) < 0)
                        drop(nclients - 1);
                    continue;
                }
                if (errno == EMFILE || errno == ENFILE)
                    accepting = 0; /* until a client goes */
                else if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                    continue;
                break;
            }
        }
    }
}

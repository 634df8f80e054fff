// corpus: exercise=select bin=evloop
// design: poll(); timers in a sorted singly-linked list searched from the head (new timer after every equal deadline) and naming their client only by its id; idle deadlines kept in the clients and found by a scan over all clients before each poll(); a fixed 64 KiB line buffer per client (exactly the contract's limit)
// expect: full
//
// What makes it different: the simplest data structures that still meet the
// contract. A timer remembers the client *id* only (ids are never reused), so
// a timer whose client has gone finds nobody and is dropped — no descriptor
// numbers, no generation check. The idle deadline is a field of each client;
// the earliest one is found by looking at every client, O(clients) per round
// (fine for hundreds). Input goes into a fixed array as large as the longest
// line the contract allows; a full array without a newline is `ERR line too
// long`.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { OPEN, CLOSING, GONE };
enum { MAX_LINE = 64 * 1024, PAUSE = 1 << 20, MAX_BACKLOG = 8 << 20 };

struct client {
    struct client *next;
    int fd, state;
    unsigned long id;
    int64_t idle_at;
    size_t in_len;
    char in[MAX_LINE + 2]; /* a line of MAX_LINE bytes, `\r` and `\n` */
    char *out;
    size_t out_off, out_len, out_cap;
};

struct timer {
    struct timer *next;
    int64_t at;
    unsigned long client_id;
    size_t label_len;
    char label[];
};

static struct client *clients;
static size_t nclients;
static struct timer *timers;
static unsigned long next_id = 1;
static int64_t idle_ns;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (q == NULL) {
        fputs("evloop: out of memory\n", stderr);
        exit(1);
    }
    return q;
}

static void out_add(struct client *c, const void *d, size_t n) {
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        while (c->out_cap < c->out_len + n)
            c->out_cap = c->out_cap ? 2 * c->out_cap : 256;
        c->out = xrealloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, d, n);
    c->out_len += n;
}

static void send_line(struct client *c, const char *a, size_t an, const char *b, size_t bn) {
    if (c->state == GONE)
        return;
    out_add(c, a, an);
    out_add(c, b, bn);
    out_add(c, "\n", 1);
    if (c->out_len - c->out_off > MAX_BACKLOG) {
        fprintf(stderr, "evloop: client %lu does not read its answers; dropped\n", c->id);
        c->state = GONE;
    }
}

static void flush_client(struct client *c) {
    while (c->out_off < c->out_len && c->state != GONE) {
        ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0)
            c->out_off += (size_t)k;
        else if (k < 0 && errno == EINTR)
            continue;
        else if (k < 0 && errno == EAGAIN)
            return;
        else
            c->state = GONE;
    }
}

static struct client *find(unsigned long id) {
    for (struct client *c = clients; c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static int parse_timer(const char *a, size_t n, int64_t *ms, const char **label, size_t *label_len) {
    size_t i = 0;
    int64_t v = 0;
    while (i < n && a[i] >= '0' && a[i] <= '9') {
        v = v * 10 + (a[i] - '0');
        if (v > 1000000000000LL)
            return -1;
        i++;
    }
    if (i == 0 || i >= n || a[i] != ' ')
        return -1;
    *ms = v;
    *label = a + i + 1;
    *label_len = n - i - 1;
    return 0;
}

static void handle_line(struct client *c, const char *l, size_t n) {
    if (n >= 5 && memcmp(l, "ECHO ", 5) == 0) {
        send_line(c, l + 5, n - 5, "", 0);
    } else if (n >= 4 && memcmp(l, "SAY ", 4) == 0) {
        char pre[32];
        int k = snprintf(pre, sizeof pre, "%lu: ", c->id);
        for (struct client *o = clients; o != NULL; o = o->next)
            if (o != c && o->state == OPEN)
                send_line(o, pre, (size_t)k, l + 4, n - 4);
    } else if (n >= 6 && memcmp(l, "TIMER ", 6) == 0) {
        int64_t ms;
        const char *label;
        size_t len;
        if (parse_timer(l + 6, n - 6, &ms, &label, &len) < 0) {
            send_line(c, "ERR unknown command", 19, "", 0);
            return;
        }
        struct timer *t = xrealloc(NULL, sizeof *t + len);
        t->at = now_ns() + ms * 1000000;
        t->client_id = c->id;
        t->label_len = len;
        memcpy(t->label, label, len);
        struct timer **pp = &timers;
        while (*pp != NULL && (*pp)->at <= t->at) /* after every equal deadline */
            pp = &(*pp)->next;
        t->next = *pp;
        *pp = t;
    } else if (n == 4 && memcmp(l, "QUIT", 4) == 0) {
        send_line(c, "BYE", 3, "", 0);
        c->state = CLOSING;
    } else {
        send_line(c, "ERR unknown command", 19, "", 0);
    }
}

static void read_client(struct client *c) {
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        c->state = GONE;
        return;
    }
    c->in_len += (size_t)n;
    c->idle_at = now_ns() + idle_ns;
    char *start = c->in, *end = c->in + c->in_len, *nl;
    while (c->state == OPEN && (nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
        size_t len = (size_t)(nl - start);
        if (len > 0 && start[len - 1] == '\r')
            len--;
        handle_line(c, start, len);
        start = nl + 1;
    }
    c->in_len = (size_t)(end - start);
    memmove(c->in, start, c->in_len);
    if (c->state == OPEN && c->in_len == sizeof c->in) {
        send_line(c, "ERR line too long", 17, "", 0);
        c->state = CLOSING;
    }
}

static void accept_clients(int lfd, int *accepting) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno != EAGAIN) {
                fprintf(stderr, "evloop: accept: %s; not accepting until a client leaves\n", strerror(errno));
                *accepting = 0;
            }
            return;
        }
        struct client *c = malloc(sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        memset(c, 0, offsetof(struct client, in));
        c->out = NULL;
        c->out_off = c->out_len = c->out_cap = 0;
        c->fd = fd;
        c->id = next_id++;
        c->state = OPEN;
        c->idle_at = now_ns() + idle_ns;
        c->next = clients;
        clients = c;
        nclients++;
        char w[40];
        int k = snprintf(w, sizeof w, "welcome %lu", c->id);
        send_line(c, w, (size_t)k, "", 0);
    }
}

static void free_client(struct client *c) {
    close(c->fd);
    free(c->out);
    free(c);
    nclients--;
}

static void shutdown_all(void) {
    while (clients != NULL) {
        struct client *c = clients;
        clients = c->next;
        if (c->state == OPEN)
            send_line(c, "BYE shutdown", 12, "", 0);
        flush_client(c);
        free_client(c);
    }
    exit(0);
}

static void read_stdin(char *in, size_t *len) {
    ssize_t n = read(0, in + *len, 1024 - *len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0)
        shutdown_all();
    *len += (size_t)n;
    char *start = in, *nl;
    while ((nl = memchr(start, '\n', (size_t)(in + *len - start))) != NULL) {
        size_t l = (size_t)(nl - start);
        if (l > 0 && start[l - 1] == '\r')
            l--;
        if (l == 4 && memcmp(start, "quit", 4) == 0)
            shutdown_all();
        fprintf(stderr, "evloop: stdin: unknown command (only `quit`)\n");
        start = nl + 1;
    }
    *len = (size_t)(in + *len - start);
    memmove(in, start, *len);
    if (*len == 1024)
        *len = 0; /* a console line that long is not `quit` */
}

static void usage(const char *why) {
    fprintf(stderr, "evloop: %s; usage: evloop [--port PORT] [--idle-ms T]\n", why);
    exit(1);
}

int main(int argc, char **argv) {
    unsigned long port = 0, idle_ms = 10000;
    for (int i = 1; i < argc; i++) {
        unsigned long *dst = strcmp(argv[i], "--port") == 0 ? &port : strcmp(argv[i], "--idle-ms") == 0 ? &idle_ms : NULL;
        if (dst == NULL || i + 1 >= argc)
            usage("bad arguments");
        char *end;
        errno = 0;
        *dst = strtoul(argv[++i], &end, 10);
        if (*argv[i] == '\0' || *end != '\0' || errno != 0 || (dst == &port && port > 65535))
            usage("bad number");
    }
    idle_ns = (int64_t)idle_ms * 1000000;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "evloop: cannot bind 127.0.0.1:%lu: %s\n", port, strerror(errno));
        return 1;
    }
    socklen_t slen = sizeof sa;
    if (listen(lfd, SOMAXCONN) < 0 || getsockname(lfd, (struct sockaddr *)&sa, &slen) < 0) {
        fprintf(stderr, "evloop: listen: %s\n", strerror(errno));
        return 1;
    }
    printf("listening on 127.0.0.1:%u\n", ntohs(sa.sin_port));
    fflush(stdout);

    char console[1024];
    size_t console_len = 0;
    int accepting = 1;
    struct pollfd *pfd = NULL;
    struct client **who = NULL;
    size_t cap = 0;
    for (;;) {
        int64_t now = now_ns();
        while (timers != NULL && timers->at <= now) {
            struct timer *t = timers;
            timers = t->next;
            struct client *c = find(t->client_id);
            if (c != NULL && c->state == OPEN)
                send_line(c, "TIMER ", 6, t->label, t->label_len);
            free(t);
        }
        int64_t next = timers != NULL ? timers->at : INT64_MAX;
        for (struct client **pp = &clients; *pp != NULL;) {
            struct client *c = *pp;
            if (idle_ns > 0 && c->state == OPEN && c->idle_at <= now) {
                send_line(c, "BYE idle", 8, "", 0);
                c->state = CLOSING;
            }
            flush_client(c);
            if (c->state != OPEN) {
                *pp = c->next;
                free_client(c);
                accepting = 1;
                continue;
            }
            if (idle_ns > 0 && c->idle_at < next)
                next = c->idle_at;
            pp = &c->next;
        }
        int timeout = -1;
        if (next != INT64_MAX) {
            int64_t delta = next - now_ns();
            int64_t ms = delta <= 0 ? 0 : (delta + 999999) / 1000000;
            timeout = ms > INT_MAX ? INT_MAX : (int)ms;
        }
        if (cap < nclients + 2) {
            cap = 2 * (nclients + 2);
            pfd = xrealloc(pfd, cap * sizeof *pfd);
            who = xrealloc(who, cap * sizeof *who);
        }
        size_t np = 0;
        pfd[np++] = (struct pollfd){.fd = accepting ? lfd : -1, .events = POLLIN};
        pfd[np++] = (struct pollfd){.fd = 0, .events = POLLIN};
        for (struct client *c = clients; c != NULL; c = c->next) {
            short ev = c->out_len - c->out_off < PAUSE ? POLLIN : 0;
            if (c->out_off < c->out_len)
                ev |= POLLOUT;
            who[np] = c;
            pfd[np++] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        if (poll(pfd, np, timeout) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "evloop: poll: %s\n", strerror(errno));
            return 1;
        }
        if (pfd[1].revents)
            read_stdin(console, &console_len);
        for (size_t i = 2; i < np; i++) { /* nobody is freed before the next round */
            struct client *c = who[i];
            if (pfd[i].revents & POLLOUT)
                flush_client(c);
            if (c->state == OPEN && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                read_client(c);
        }
        if (pfd[0].revents & POLLIN)
            accept_clients(lfd, &accepting);
    }
}

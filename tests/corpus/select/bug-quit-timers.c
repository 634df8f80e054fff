// corpus: exercise=select bin=evloop
// design: ONE BUG (issue 10, case 6) in select-list.c: a timer names its client by descriptor only, and a client's timers are removed when it is idle-closed but not when it sends `QUIT` or disconnects (EOF, reset); they fire later into the next client that gets the same descriptor
// expect: fail quit-drops-timers | delivered on the reused descriptor
//
// `idle-drops-timers` takes the idle path only, which this program handles.
// `quit-drops-timers` catches it: client 1 sets a timer and sends `QUIT`
// (client 3, separately, resets its connection); client 2 connects, gets the
// same descriptor, and must not receive client 1's `TIMER`.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { OPEN, CLOSING, GONE };
enum { CHUNK = 16 * 1024, MAX_LINE = 64 * 1024, PAUSE = 1 << 20, MAX_BACKLOG = 8 << 20 };
enum { TIMER, IDLE };

struct buf {
    char *p;
    size_t off, len, cap;
};

struct node {
    int64_t at; /* ns, CLOCK_MONOTONIC */
    struct node *prev, *next;
    int kind, fd, linked;
    char *label;
    size_t label_len;
};

struct client {
    int fd, state;
    unsigned long id;
    struct node idle;
    struct buf in, out;
};

static struct node deadlines = {.prev = &deadlines, .next = &deadlines}; /* sentinel */
static struct client *clients[FD_SETSIZE];
static int max_fd = -1;
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

static void buf_add(struct buf *b, const void *d, size_t n) {
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap) {
        if (b->off > 0) {
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

/* ----- the sorted list ----- */

static void list_insert(struct node *n) {
    struct node *p = deadlines.prev;
    while (p != &deadlines && p->at > n->at) /* strictly later: ties stay behind */
        p = p->prev;
    n->prev = p;
    n->next = p->next;
    p->next->prev = n;
    p->next = n;
    n->linked = 1;
}

static void list_unlink(struct node *n) {
    if (!n->linked)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->linked = 0;
}

/* ----- clients ----- */

static void send_line(struct client *c, const char *a, size_t an, const char *b, size_t bn) {
    if (c->state == GONE)
        return;
    buf_add(&c->out, a, an);
    buf_add(&c->out, b, bn);
    buf_add(&c->out, "\n", 1);
    if (c->out.len - c->out.off > MAX_BACKLOG) {
        fprintf(stderr, "evloop: client %lu does not read its answers; dropped\n", c->id);
        c->state = GONE;
    }
}

static void flush_client(struct client *c) {
    while (c->out.off < c->out.len && c->state != GONE) {
        ssize_t k = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0)
            c->out.off += (size_t)k;
        else if (k < 0 && errno == EINTR)
            continue;
        else if (k < 0 && errno == EAGAIN)
            return;
        else
            c->state = GONE;
    }
}

static void touch(struct client *c) {
    if (idle_ns == 0)
        return;
    list_unlink(&c->idle);
    c->idle.at = now_ns() + idle_ns;
    list_insert(&c->idle);
}

/* The client's timers go with it (only called on the idle path: THE BUG). */
static void drop_timers(int fd) {
    for (struct node *n = deadlines.next, *next; n != &deadlines; n = next) {
        next = n->next;
        if (n->kind == TIMER && n->fd == fd) {
            list_unlink(n);
            free(n->label);
            free(n);
        }
    }
}

static void close_client(struct client *c) {
    list_unlink(&c->idle);
    close(c->fd);
    clients[c->fd] = NULL;
    free(c->in.p);
    free(c->out.p);
    free(c);
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
        for (int fd = 0; fd <= max_fd; fd++)
            if (clients[fd] != NULL && clients[fd] != c && clients[fd]->state == OPEN)
                send_line(clients[fd], pre, (size_t)k, l + 4, n - 4);
    } else if (n >= 6 && memcmp(l, "TIMER ", 6) == 0) {
        int64_t ms;
        const char *label;
        size_t len;
        if (parse_timer(l + 6, n - 6, &ms, &label, &len) < 0) {
            send_line(c, "ERR unknown command", 19, "", 0);
            return;
        }
        struct node *t = xrealloc(NULL, sizeof *t);
        *t = (struct node){.at = now_ns() + ms * 1000000, .kind = TIMER, .fd = c->fd, .label_len = len};
        t->label = xrealloc(NULL, len + 1);
        memcpy(t->label, label, len);
        list_insert(t);
    } else if (n == 4 && memcmp(l, "QUIT", 4) == 0) {
        send_line(c, "BYE", 3, "", 0);
        c->state = CLOSING;
    } else {
        send_line(c, "ERR unknown command", 19, "", 0);
    }
}

static void read_client(struct client *c) {
    char chunk[CHUNK];
    ssize_t n = recv(c->fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        c->state = GONE;
        return;
    }
    buf_add(&c->in, chunk, (size_t)n);
    touch(c);
    char *start = c->in.p + c->in.off, *end = c->in.p + c->in.len, *nl;
    while (c->state == OPEN && (nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
        size_t len = (size_t)(nl - start);
        if (len > 0 && start[len - 1] == '\r')
            len--;
        handle_line(c, start, len);
        start = nl + 1;
    }
    c->in.off = (size_t)(start - c->in.p);
    if (c->state == OPEN && c->in.len - c->in.off > MAX_LINE) {
        send_line(c, "ERR line too long", 17, "", 0);
        c->state = CLOSING;
    }
}

static void fire(struct node *n) {
    list_unlink(n);
    if (n->kind == IDLE) {
        struct client *c = (struct client *)((char *)n - offsetof(struct client, idle));
        if (c->state == OPEN) {
            send_line(c, "BYE idle", 8, "", 0);
            c->state = CLOSING;
            drop_timers(c->fd);
        }
        return;
    }
    struct client *c = clients[n->fd];
    if (c != NULL && c->state == OPEN)
        send_line(c, "TIMER ", 6, n->label, n->label_len);
    free(n->label);
    free(n);
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
        if (fd >= FD_SETSIZE) {
            /* The guard: FD_SET(fd) would write past the end of the fd_set. */
            fprintf(stderr, "evloop: descriptor %d does not fit in an fd_set (FD_SETSIZE %d); connection refused\n",
                    fd, FD_SETSIZE);
            close(fd);
            continue;
        }
        struct client *c = xrealloc(NULL, sizeof *c);
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->id = next_id++;
        c->state = OPEN;
        c->idle.kind = IDLE;
        clients[fd] = c;
        if (fd > max_fd)
            max_fd = fd;
        char w[40];
        int k = snprintf(w, sizeof w, "welcome %lu", c->id);
        send_line(c, w, (size_t)k, "", 0);
        touch(c);
    }
}

static void shutdown_all(void) {
    for (int fd = 0; fd <= max_fd; fd++) {
        struct client *c = clients[fd];
        if (c == NULL)
            continue;
        if (c->state == OPEN)
            send_line(c, "BYE shutdown", 12, "", 0);
        flush_client(c);
        close_client(c);
    }
    exit(0);
}

static void read_stdin(struct buf *in) {
    char chunk[1024];
    ssize_t n = read(0, chunk, sizeof chunk);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0)
        shutdown_all();
    buf_add(in, chunk, (size_t)n);
    char *nl;
    while ((nl = memchr(in->p + in->off, '\n', in->len - in->off)) != NULL) {
        char *l = in->p + in->off;
        size_t len = (size_t)(nl - l);
        if (len > 0 && l[len - 1] == '\r')
            len--;
        if (len == 4 && memcmp(l, "quit", 4) == 0)
            shutdown_all();
        fprintf(stderr, "evloop: stdin: unknown command (only `quit`)\n");
        in->off += (size_t)(nl - l) + 1;
    }
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
    if (listen(lfd, SOMAXCONN) < 0 || getsockname(lfd, (struct sockaddr *)&sa, &slen) < 0 || lfd >= FD_SETSIZE) {
        fprintf(stderr, "evloop: listen: %s\n", strerror(errno));
        return 1;
    }
    printf("listening on 127.0.0.1:%u\n", ntohs(sa.sin_port));
    fflush(stdout);

    struct buf console = {0};
    int accepting = 1;
    for (;;) {
        int64_t now = now_ns();
        while (deadlines.next != &deadlines && deadlines.next->at <= now)
            fire(deadlines.next);
        for (int fd = 0; fd <= max_fd; fd++) {
            struct client *c = clients[fd];
            if (c == NULL)
                continue;
            flush_client(c);
            if (c->state != OPEN) {
                close_client(c);
                accepting = 1;
            }
        }
        while (max_fd >= 0 && clients[max_fd] == NULL)
            max_fd--;

        fd_set rd, wr;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        int top = lfd;
        FD_SET(0, &rd);
        if (accepting)
            FD_SET(lfd, &rd);
        for (int fd = 0; fd <= max_fd; fd++) {
            struct client *c = clients[fd];
            if (c == NULL)
                continue;
            if (c->out.len - c->out.off < PAUSE)
                FD_SET(fd, &rd);
            if (c->out.off < c->out.len)
                FD_SET(fd, &wr);
            if (fd > top)
                top = fd;
        }
        struct timeval tv, *tvp = NULL;
        if (deadlines.next != &deadlines) {
            int64_t delta = deadlines.next->at - now_ns();
            int64_t us = delta <= 0 ? 0 : (delta + 999) / 1000; /* rounded up */
            tv.tv_sec = (time_t)(us / 1000000);
            tv.tv_usec = (suseconds_t)(us % 1000000);
            tvp = &tv;
        }
        if (select(top + 1, &rd, &wr, NULL, tvp) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "evloop: select: %s\n", strerror(errno));
            return 1;
        }
        if (FD_ISSET(0, &rd))
            read_stdin(&console);
        for (int fd = 0; fd <= max_fd; fd++) {
            struct client *c = clients[fd];
            if (c == NULL)
                continue;
            if (FD_ISSET(fd, &wr))
                flush_client(c);
            if (FD_ISSET(fd, &rd) && c->state == OPEN)
                read_client(c);
        }
        if (FD_ISSET(lfd, &rd))
            accept_clients(lfd, &accepting);
    }
}

// corpus: exercise=select bin=evloop
// design: poll() over listener, stdin and clients; timers and idle deadlines in one binary min-heap keyed by (deadline, sequence number); idle deadlines re-armed lazily (one heap entry per client, pushed again if the client was active meanwhile); stale entries recognised by the client id
// expect: full
//
// What makes it different from the reference (a BTreeMap with cancel on every
// line): a binary heap cannot cancel cheaply, so nothing is ever cancelled.
// Activity only moves the client's idle_at forward; when its heap entry comes
// due and idle_at is later, the entry is pushed again for idle_at. Entries of a
// client that has gone (by fd *and* id: descriptor numbers are reused) are
// dropped when they surface. Ties keep arrival order through the sequence
// number, which the heap compares after the deadline.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { OPEN, CLOSING, GONE };
enum { CHUNK = 16 * 1024, MAX_LINE = 64 * 1024, PAUSE = 1 << 20, MAX_BACKLOG = 8 << 20 };

struct buf {
    char *p;
    size_t off, len, cap; /* the bytes are p[off..len) */
};

struct client {
    int fd, state;
    unsigned long id;
    int64_t idle_at; /* ns, CLOCK_MONOTONIC */
    struct buf in, out;
};

enum { TIMER, IDLE };
struct event {
    int64_t at;
    uint64_t seq;
    int kind, fd;
    unsigned long id;
    char *label;
    size_t label_len;
};

static struct {
    struct event *a;
    size_t n, cap;
    uint64_t seq;
} heap;

static struct client **by_fd; /* indexed by descriptor */
static int *fds;              /* descriptors of all clients, dense */
static size_t nfds, max_fds;
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

/* ----- the heap ----- */

static int earlier(const struct event *x, const struct event *y) {
    return x->at < y->at || (x->at == y->at && x->seq < y->seq);
}

static void heap_push(struct event e) {
    if (heap.n == heap.cap) {
        heap.cap = heap.cap ? 2 * heap.cap : 64;
        heap.a = xrealloc(heap.a, heap.cap * sizeof *heap.a);
    }
    e.seq = heap.seq++;
    size_t i = heap.n++;
    while (i > 0 && earlier(&e, &heap.a[(i - 1) / 2])) {
        heap.a[i] = heap.a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap.a[i] = e;
}

static struct event heap_pop(void) {
    struct event top = heap.a[0], last = heap.a[--heap.n];
    size_t i = 0;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= heap.n)
            break;
        if (k + 1 < heap.n && earlier(&heap.a[k + 1], &heap.a[k]))
            k++;
        if (!earlier(&heap.a[k], &last))
            break;
        heap.a[i] = heap.a[k];
        i = k;
    }
    if (heap.n > 0)
        heap.a[i] = last;
    return top;
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

static void close_client(struct client *c) {
    close(c->fd);
    by_fd[c->fd] = NULL;
    for (size_t i = 0; i < nfds; i++)
        if (fds[i] == c->fd) {
            fds[i] = fds[--nfds];
            break;
        }
    free(c->in.p);
    free(c->out.p);
    free(c);
}

static int parse_timer(const char *a, size_t n, int64_t *ms, const char **label, size_t *label_len) {
    size_t i = 0;
    int64_t v = 0;
    while (i < n && a[i] >= '0' && a[i] <= '9') {
        v = v * 10 + (a[i] - '0');
        if (v > 1000000000000LL) /* 31 years: no deadline that far */
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
        for (size_t i = 0; i < nfds; i++) {
            struct client *o = by_fd[fds[i]];
            if (o != c && o->state == OPEN)
                send_line(o, pre, (size_t)k, l + 4, n - 4);
        }
    } else if (n >= 6 && memcmp(l, "TIMER ", 6) == 0) {
        int64_t ms;
        const char *label;
        size_t len;
        if (parse_timer(l + 6, n - 6, &ms, &label, &len) < 0) {
            send_line(c, "ERR unknown command", 19, "", 0);
            return;
        }
        struct event e = {.at = now_ns() + ms * 1000000, .kind = TIMER, .fd = c->fd, .id = c->id, .label_len = len};
        e.label = xrealloc(NULL, len + 1);
        memcpy(e.label, label, len);
        heap_push(e);
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
        c->state = GONE; /* EOF or reset */
        return;
    }
    buf_add(&c->in, chunk, (size_t)n);
    c->idle_at = now_ns() + idle_ns; /* any bytes are activity */
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

static void fire(struct event e, int64_t now) {
    struct client *c = by_fd[e.fd];
    if (c == NULL || c->id != e.id || c->state != OPEN) {
        free(e.label); /* its client has gone */
        return;
    }
    if (e.kind == TIMER) {
        send_line(c, "TIMER ", 6, e.label, e.label_len);
        free(e.label);
    } else if (c->idle_at > now) {
        e.at = c->idle_at; /* active since: come back later */
        heap_push(e);
    } else {
        send_line(c, "BYE idle", 8, "", 0);
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
        if ((size_t)fd >= max_fds) {
            close(fd);
            continue;
        }
        struct client *c = xrealloc(NULL, sizeof *c);
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->id = next_id++;
        c->state = OPEN;
        by_fd[fd] = c;
        fds[nfds++] = fd;
        char w[40];
        int k = snprintf(w, sizeof w, "welcome %lu", c->id);
        send_line(c, w, (size_t)k, "", 0);
        if (idle_ns > 0) {
            c->idle_at = now_ns() + idle_ns;
            heap_push((struct event){.at = c->idle_at, .kind = IDLE, .fd = fd, .id = c->id});
        }
    }
}

static void shutdown_all(void) {
    while (nfds > 0) {
        struct client *c = by_fd[fds[0]];
        if (c->state == OPEN)
            send_line(c, "BYE shutdown", 12, "", 0);
        flush_client(c);
        close_client(c);
    }
    exit(0);
}

/* stdin: a line `quit`, or EOF, shuts the server down. */
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
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 1 << 20 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    max_fds = rl.rlim_cur > (1 << 20) ? 1 << 20 : rl.rlim_cur;
    by_fd = calloc(max_fds, sizeof *by_fd);
    fds = calloc(max_fds, sizeof *fds);
    if (by_fd == NULL || fds == NULL) {
        fputs("evloop: out of memory\n", stderr);
        return 1;
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

    struct buf console = {0};
    struct pollfd *pfd = xrealloc(NULL, (max_fds + 2) * sizeof *pfd);
    unsigned long *ids = xrealloc(NULL, (max_fds + 2) * sizeof *ids);
    int accepting = 1;
    for (;;) {
        int64_t now = now_ns();
        while (heap.n > 0 && heap.a[0].at <= now)
            fire(heap_pop(), now);
        for (size_t i = nfds; i-- > 0;) {
            struct client *c = by_fd[fds[i]];
            flush_client(c);
            if (c->state != OPEN) {
                close_client(c);
                accepting = 1;
            }
        }
        int timeout = -1;
        if (heap.n > 0) {
            int64_t delta = heap.a[0].at - now_ns();
            int64_t ms = delta <= 0 ? 0 : (delta + 999999) / 1000000; /* rounded up */
            timeout = ms > INT_MAX ? INT_MAX : (int)ms;
        }
        size_t np = 0;
        pfd[np] = (struct pollfd){.fd = accepting ? lfd : -1, .events = POLLIN};
        ids[np++] = 0;
        pfd[np] = (struct pollfd){.fd = 0, .events = POLLIN};
        ids[np++] = 0;
        for (size_t i = 0; i < nfds; i++) {
            struct client *c = by_fd[fds[i]];
            short ev = c->out.len - c->out.off < PAUSE ? POLLIN : 0;
            if (c->out.off < c->out.len)
                ev |= POLLOUT;
            pfd[np] = (struct pollfd){.fd = c->fd, .events = ev};
            ids[np++] = c->id;
        }
        if (poll(pfd, np, timeout) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "evloop: poll: %s\n", strerror(errno));
            return 1;
        }
        if (pfd[1].revents)
            read_stdin(&console);
        for (size_t i = 2; i < np; i++) {
            struct client *c = by_fd[pfd[i].fd];
            if (pfd[i].revents == 0 || c == NULL || c->id != ids[i])
                continue; /* nothing, or closed and replaced since poll */
            if (pfd[i].revents & POLLOUT)
                flush_client(c);
            if (c->state == OPEN && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                read_client(c);
        }
        if (pfd[0].revents & POLLIN)
            accept_clients(lfd, &accepting);
    }
}

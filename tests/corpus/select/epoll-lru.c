// corpus: exercise=select bin=evloop
// design: level-triggered epoll (EPOLLOUT switched on and off with EPOLL_CTL_MOD); timers in a sorted array (binary search, insert after equal deadlines); idle deadlines need no sorting at all: clients sit in a list in order of their last activity (moved to the back on every recv), so the front one is the next to go idle; a closing client's timers are removed at once
// expect: full
//
// What makes it different: two deadline structures instead of one. All idle
// deadlines are "last activity + T" with the same T, so the clients ordered by
// last activity (an LRU list, O(1) per touch) are already ordered by idle
// deadline; the poll timeout is the earlier of the LRU front and the first
// timer. Timers point to their client and are removed eagerly when it closes
// (QUIT, EOF, reset, idle, dropped) instead of being recognised by id later.
// stdin may be a regular file or /dev/null, which epoll refuses (EPERM): such
// a stdin is read directly, it never blocks.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { OPEN, CLOSING, GONE };
enum { CHUNK = 16 * 1024, MAX_LINE = 64 * 1024, PAUSE = 1 << 20, MAX_BACKLOG = 8 << 20 };

struct buf {
    char *p;
    size_t off, len, cap;
};

struct client {
    int fd, state;
    uint32_t registered; /* the events epoll watches now */
    unsigned long id;
    int64_t idle_at;
    struct client *prev, *next; /* the LRU list */
    struct buf in, out;
};

struct timer {
    int64_t at;
    struct client *owner;
    char *label;
    size_t label_len;
};

static struct client lru = {.prev = &lru, .next = &lru}; /* sentinel; front = least recently active */
static struct timer *timers;
static size_t ntimers, captimers;
static unsigned long next_id = 1;
static int64_t idle_ns;
static int ep;
static char LISTENER, CONSOLE; /* their addresses tag epoll events */

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

/* ----- timers: a sorted array ----- */

static void timer_add(struct timer t) {
    if (ntimers == captimers) {
        captimers = captimers ? 2 * captimers : 64;
        timers = xrealloc(timers, captimers * sizeof *timers);
    }
    size_t lo = 0, hi = ntimers; /* first index whose deadline is later than t's */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (timers[mid].at <= t.at)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&timers[lo + 1], &timers[lo], (ntimers - lo) * sizeof *timers);
    timers[lo] = t;
    ntimers++;
}

static void timers_drop_owner(struct client *c) {
    size_t k = 0;
    for (size_t i = 0; i < ntimers; i++) {
        if (timers[i].owner == c)
            free(timers[i].label);
        else
            timers[k++] = timers[i];
    }
    ntimers = k;
}

/* ----- the LRU list ----- */

static void lru_unlink(struct client *c) {
    c->prev->next = c->next;
    c->next->prev = c->prev;
}

static void lru_append(struct client *c) {
    c->prev = lru.prev;
    c->next = &lru;
    lru.prev->next = c;
    lru.prev = c;
}

static void touch(struct client *c) {
    c->idle_at = now_ns() + idle_ns;
    lru_unlink(c);
    lru_append(c);
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
    timers_drop_owner(c);
    lru_unlink(c);
    close(c->fd); /* also removes it from the epoll set */
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
        for (struct client *o = lru.next; o != &lru; o = o->next)
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
        struct timer t = {.at = now_ns() + ms * 1000000, .owner = c, .label_len = len};
        t.label = xrealloc(NULL, len + 1);
        memcpy(t.label, label, len);
        timer_add(t);
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

static void accept_clients(int lfd, int *accepting) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno != EAGAIN) {
                fprintf(stderr, "evloop: accept: %s; not accepting until a client leaves\n", strerror(errno));
                epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
                *accepting = 0;
            }
            return;
        }
        struct client *c = xrealloc(NULL, sizeof *c);
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->id = next_id++;
        c->state = OPEN;
        c->registered = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        lru_append(c);
        c->idle_at = now_ns() + idle_ns;
        char w[40];
        int k = snprintf(w, sizeof w, "welcome %lu", c->id);
        send_line(c, w, (size_t)k, "", 0);
    }
}

static void shutdown_all(void) {
    while (lru.next != &lru) {
        struct client *c = lru.next;
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
    if (listen(lfd, SOMAXCONN) < 0 || getsockname(lfd, (struct sockaddr *)&sa, &slen) < 0) {
        fprintf(stderr, "evloop: listen: %s\n", strerror(errno));
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &LISTENER};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        fprintf(stderr, "evloop: epoll: %s\n", strerror(errno));
        return 1;
    }
    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = &CONSOLE};
    int plain_stdin = epoll_ctl(ep, EPOLL_CTL_ADD, 0, &cev) < 0; /* EPERM: a file, always readable */
    printf("listening on 127.0.0.1:%u\n", ntohs(sa.sin_port));
    fflush(stdout);

    struct buf console = {0};
    int accepting = 1;
    struct epoll_event evs[256];
    for (;;) {
        int64_t now = now_ns();
        while (ntimers > 0 && timers[0].at <= now) {
            struct timer t = timers[0];
            memmove(&timers[0], &timers[1], --ntimers * sizeof *timers);
            if (t.owner->state == OPEN)
                send_line(t.owner, "TIMER ", 6, t.label, t.label_len);
            free(t.label);
        }
        if (idle_ns > 0)
            for (struct client *c = lru.next; c != &lru && c->idle_at <= now; c = c->next)
                if (c->state == OPEN) {
                    send_line(c, "BYE idle", 8, "", 0);
                    c->state = CLOSING;
                }
        for (struct client *c = lru.next, *next; c != &lru; c = next) {
            next = c->next;
            flush_client(c);
            if (c->state != OPEN) {
                close_client(c);
                if (!accepting) {
                    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
                    accepting = 1;
                }
                continue;
            }
            uint32_t want = (c->out.len - c->out.off < PAUSE ? EPOLLIN : 0) | (c->out.off < c->out.len ? EPOLLOUT : 0);
            if (want != c->registered) {
                struct epoll_event ev = {.events = want, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->registered = want;
            }
        }
        if (plain_stdin)
            read_stdin(&console);

        int64_t next = INT64_MAX;
        if (ntimers > 0)
            next = timers[0].at;
        if (idle_ns > 0 && lru.next != &lru && lru.next->idle_at < next)
            next = lru.next->idle_at;
        int timeout = -1;
        if (next != INT64_MAX) {
            int64_t delta = next - now_ns();
            int64_t ms = delta <= 0 ? 0 : (delta + 999999) / 1000000;
            timeout = ms > INT_MAX ? INT_MAX : (int)ms;
        }
        int n = epoll_wait(ep, evs, 256, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "evloop: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            void *who = evs[i].data.ptr;
            if (who == &LISTENER) {
                accept_clients(lfd, &accepting);
            } else if (who == &CONSOLE) {
                read_stdin(&console);
            } else {
                struct client *c = who; /* nobody is freed inside this loop */
                if (evs[i].events & EPOLLOUT)
                    flush_client(c);
                if (c->state == OPEN && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    read_client(c);
            }
        }
    }
}

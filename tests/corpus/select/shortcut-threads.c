// corpus: exercise=select bin=evloop
// design: SHORTCUT — no event loop: a thread per client with blocking recv (SO_RCVTIMEO as the idle timeout), a sleeping thread per TIMER, a console thread for stdin, one mutex around everything shared
// expect: fail single-thread | one thread doing all the waiting in one poll/select call
//
// The exercise is one thread that waits only in poll/select with a timeout
// from its list of deadlines; this program answers every command correctly
// but hands each client to its own thread and each timer to a thread that
// sleeps. `single-thread` sees the threads today.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_LINE = 64 * 1024, MAX_CLIENTS = 4096 };

struct client {
    int fd;
    unsigned long id;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct client *table[MAX_CLIENTS]; /* the connected clients, under `lock` */
static unsigned long next_id = 1;
static unsigned long idle_ms = 10000;
static pthread_attr_t small;

/* Blocking send of a+b+"\n" to c; caller holds `lock`. */
static void say_to(struct client *c, const char *a, size_t an, const char *b, size_t bn) {
    char *msg = malloc(an + bn + 1);
    if (msg == NULL)
        return;
    memcpy(msg, a, an);
    memcpy(msg + an, b, bn);
    msg[an + bn] = '\n';
    for (size_t off = 0; off < an + bn + 1;) {
        ssize_t k = send(c->fd, msg + off, an + bn + 1 - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    free(msg);
}

struct timer {
    unsigned long id, ms;
    size_t len;
    char label[];
};

static void *timer_thread(void *arg) {
    struct timer *t = arg;
    struct timespec ts = {(time_t)(t->ms / 1000), (long)(t->ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (table[i] != NULL && table[i]->id == t->id)
            say_to(table[i], "TIMER ", 6, t->label, t->len);
    pthread_mutex_unlock(&lock);
    free(t);
    return NULL;
}

/* Returns 1 when the client is to be closed. */
static int handle_line(struct client *c, const char *l, size_t n) {
    pthread_mutex_lock(&lock);
    int quit = 0;
    if (n >= 5 && memcmp(l, "ECHO ", 5) == 0) {
        say_to(c, l + 5, n - 5, "", 0);
    } else if (n >= 4 && memcmp(l, "SAY ", 4) == 0) {
        char pre[32];
        int k = snprintf(pre, sizeof pre, "%lu: ", c->id);
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (table[i] != NULL && table[i] != c)
                say_to(table[i], pre, (size_t)k, l + 4, n - 4);
    } else if (n >= 6 && memcmp(l, "TIMER ", 6) == 0) {
        char *end;
        const char *a = l + 6;
        unsigned long ms = (a < l + n && *a >= '0' && *a <= '9') ? strtoul(a, &end, 10) : 0;
        if (a < l + n && *a >= '0' && *a <= '9' && end < l + n && *end == ' ') {
            size_t len = (size_t)(l + n - end - 1);
            struct timer *t = malloc(sizeof *t + len);
            pthread_t th;
            if (t != NULL) {
                t->id = c->id;
                t->ms = ms;
                t->len = len;
                memcpy(t->label, end + 1, len);
                if (pthread_create(&th, &small, timer_thread, t) != 0)
                    free(t);
            }
        } else {
            say_to(c, "ERR unknown command", 19, "", 0);
        }
    } else if (n == 4 && memcmp(l, "QUIT", 4) == 0) {
        say_to(c, "BYE", 3, "", 0);
        quit = 1;
    } else {
        say_to(c, "ERR unknown command", 19, "", 0);
    }
    pthread_mutex_unlock(&lock);
    return quit;
}

static void *client_thread(void *arg) {
    struct client *c = arg;
    if (idle_ms > 0) {
        struct timeval tv = {(time_t)(idle_ms / 1000), (suseconds_t)(idle_ms % 1000) * 1000};
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    char *in = malloc(MAX_LINE + 2);
    size_t len = 0;
    int done = in == NULL;
    while (!done) {
        ssize_t n = recv(c->fd, in + len, MAX_LINE + 2 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) { /* SO_RCVTIMEO: idle */
            pthread_mutex_lock(&lock);
            say_to(c, "BYE idle", 8, "", 0);
            pthread_mutex_unlock(&lock);
            break;
        }
        if (n <= 0)
            break;
        len += (size_t)n;
        char *start = in, *nl;
        while (!done && (nl = memchr(start, '\n', (size_t)(in + len - start))) != NULL) {
            size_t l = (size_t)(nl - start);
            if (l > 0 && start[l - 1] == '\r')
                l--;
            done = handle_line(c, start, l);
            start = nl + 1;
        }
        len = (size_t)(in + len - start);
        memmove(in, start, len);
        if (!done && len == MAX_LINE + 2) {
            pthread_mutex_lock(&lock);
            say_to(c, "ERR line too long", 17, "", 0);
            pthread_mutex_unlock(&lock);
            done = 1;
        }
    }
    free(in);
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (table[i] == c)
            table[i] = NULL;
    close(c->fd);
    pthread_mutex_unlock(&lock);
    free(c);
    return NULL;
}

static void *console_thread(void *arg) {
    (void)arg;
    char buf[1024];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(0, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memmem(buf, len, "quit\n", 5) != NULL)
            break;
        if (len == sizeof buf)
            len = 0;
    }
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (table[i] != NULL) {
            say_to(table[i], "BYE shutdown", 12, "", 0);
            close(table[i]->fd);
        }
    exit(0);
}

static int run(int argc, char **argv) {
    unsigned long port = 0;
    for (int i = 1; i < argc; i++) {
        unsigned long *dst = strcmp(argv[i], "--port") == 0 ? &port : strcmp(argv[i], "--idle-ms") == 0 ? &idle_ms : NULL;
        if (dst == NULL || i + 1 >= argc) {
            fputs("evloop: usage: evloop [--port PORT] [--idle-ms T]\n", stderr);
            return 1;
        }
        *dst = strtoul(argv[++i], NULL, 10);
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "evloop: cannot bind 127.0.0.1:%lu: %s\n", port, strerror(errno));
        return 1;
    }
    socklen_t slen = sizeof sa;
    listen(lfd, SOMAXCONN);
    getsockname(lfd, (struct sockaddr *)&sa, &slen);
    printf("listening on 127.0.0.1:%u\n", ntohs(sa.sin_port));
    fflush(stdout);

    pthread_attr_init(&small);
    pthread_attr_setdetachstate(&small, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&small, 64 * 1024);
    pthread_t th;
    pthread_create(&th, &small, console_thread, NULL);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct client *c = malloc(sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        pthread_mutex_lock(&lock);
        int slot = -1;
        for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
            if (table[i] == NULL)
                slot = i;
        if (slot < 0) {
            pthread_mutex_unlock(&lock);
            close(fd);
            free(c);
            continue;
        }
        c->id = next_id++;
        table[slot] = c;
        char w[40];
        int k = snprintf(w, sizeof w, "welcome %lu", c->id);
        say_to(c, w, (size_t)k, "", 0);
        pthread_mutex_unlock(&lock);
        if (pthread_create(&th, &small, client_thread, c) != 0) {
            pthread_mutex_lock(&lock);
            table[slot] = NULL;
            close(fd);
            pthread_mutex_unlock(&lock);
            free(c);
        }
    }
}

int main(int argc, char **argv) {
    return run(argc, argv);
}

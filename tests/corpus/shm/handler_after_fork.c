// corpus: exercise=shm bin=shm-handshake
// design: /dev/zero mapped MAP_SHARED; SIGUSR1 blocked before fork, the handler installed only in the child after fork; sigsuspend() wait
// expect: full
/*
 * What makes it different: the shared page comes from mapping /dev/zero with
 * MAP_SHARED (the pre-MAP_ANONYMOUS idiom), and the SIGUSR1 handler exists
 * only in the child, installed after fork(). That is safe because SIGUSR1 was
 * blocked before fork(): a quick parent's signal stays pending until the
 * child's sigsuspend() unblocks it, by which time the handler is in place.
 * The parent sleeps with clock_nanosleep() on an absolute deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHM_SIZE 4096

struct page {
    size_t len;
    char bytes[SHM_SIZE - sizeof(size_t)];
};

static volatile sig_atomic_t woken;

static void on_usr1(int sig)
{
    (void)sig;
    woken = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "shm-handshake: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void show(const char *prefix, int pid, const struct page *pg)
{
    printf(prefix, pid);
    fwrite(pg->bytes, 1, pg->len, stdout);
    fputc('\n', stdout);
    if (fflush(stdout) == EOF)
        die("write");
}

int main(int argc, char **argv)
{
    unsigned long delay_ms = 0;
    char *message = NULL;
    int dashdash = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i], *end;
        if (!dashdash && !strcmp(a, "--")) {
            dashdash = 1;
        } else if (!dashdash && !strncmp(a, "--delay-ms", 10) && (a[10] == '=' || (a[10] == 0 && i + 1 < argc))) {
            const char *v = a[10] ? a + 11 : argv[++i];
            delay_ms = strtoul(v, &end, 10);
            if (*v < '0' || *v > '9' || *end)
                goto usage;
        } else if (!dashdash && a[0] == '-' && a[1]) {
            goto usage;
        } else if (message) {
            goto usage;
        } else {
            message = a;
        }
    }
    if (message && strlen(message) > 2048) {
        fprintf(stderr, "shm-handshake: MESSAGE has %zu bytes, at most 2048 allowed\n", strlen(message));
        return 1;
    }

    int zero = open("/dev/zero", O_RDWR | O_CLOEXEC);
    if (zero < 0)
        die("open /dev/zero");
    struct page *pg = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, zero, 0);
    if (pg == MAP_FAILED)
        die("mmap");
    close(zero);

    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);

    struct timespec wake;
    clock_gettime(CLOCK_MONOTONIC, &wake);
    wake.tv_sec += (time_t)(delay_ms / 1000);
    wake.tv_nsec += (long)(delay_ms % 1000) * 1000000L;
    if (wake.tv_nsec >= 1000000000L) {
        wake.tv_sec++;
        wake.tv_nsec -= 1000000000L;
    }

    int ppid = getpid();
    fflush(stdout);
    int cpid = fork();
    if (cpid < 0)
        die("fork");
    if (cpid == 0) {
        struct sigaction sa = {.sa_handler = on_usr1};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL); /* late, but SIGUSR1 is still blocked */
        int me = getpid();
        printf("child %d: waiting for message...\n", me);
        fflush(stdout);
        sigdelset(&old, SIGUSR1);
        while (!woken)
            sigsuspend(&old);
        show("child %d reading from shmem: ", me, pg);
        pg->len = (size_t)snprintf(pg->bytes, sizeof pg->bytes, "Got it [%d] -- exiting", ppid);
        show("child %d writing to shmem: ", me, pg);
        exit(0);
    }

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, NULL) == EINTR)
        ;
    if (message) {
        pg->len = strlen(message);
        memcpy(pg->bytes, message, pg->len);
    } else {
        pg->len = (size_t)snprintf(pg->bytes, sizeof pg->bytes, "Parent %d sending message to child %d", ppid, cpid);
    }
    if (kill(cpid, SIGUSR1) < 0)
        die("kill");
    int status = 0;
    if (waitpid(cpid, &status, 0) != cpid)
        die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "shm-handshake: child ended with status %#x\n", status);
        return 1;
    }
    show("Message from child %d: ", cpid, pg);
    return 0;

usage:
    fputs("shm-handshake: usage: shm-handshake [--delay-ms N] [--] [MESSAGE]\n", stderr);
    return 1;
}

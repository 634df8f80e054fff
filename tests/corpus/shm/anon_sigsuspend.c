// corpus: exercise=shm bin=shm-handshake
// design: anonymous MAP_SHARED mapping; SIGUSR1 handler installed and SIGUSR1 blocked before fork; the child sleeps in sigsuspend() until the handler ran
// expect: full
/*
 * What makes it different from the reference (sigwait, no handler): this is
 * the slide's own structure — a `child_handler` that sets a flag — made
 * race-free. The handler is installed and SIGUSR1 blocked before fork(), so
 * the child is born with both; sigsuspend() unblocks and sleeps in one atomic
 * step, and the flag loop covers a signal that is already pending.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHM_SIZE 4096
#define MAX_MSG 2048

static volatile sig_atomic_t message_ready;

static void child_handler(int sig)
{
    (void)sig;
    message_ready = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "shm-handshake: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void usage(const char *why)
{
    fprintf(stderr, "shm-handshake: %s\nusage: shm-handshake [--delay-ms N] [--] [MESSAGE]\n", why);
    exit(1);
}

int main(int argc, char **argv)
{
    long delay_ms = 0;
    const char *message = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (strcmp(argv[i], "--delay-ms") || i + 1 == argc)
            usage("unknown option or missing value");
        char *end;
        const char *v = argv[++i];
        delay_ms = strtol(v, &end, 10);
        if (*v < '0' || *v > '9' || *end)
            usage("--delay-ms expects a whole number of milliseconds");
    }
    if (i < argc)
        message = argv[i++];
    if (i < argc)
        usage("only one MESSAGE");
    if (message && strlen(message) > MAX_MSG)
        usage("MESSAGE is longer than 2048 bytes");

    char *shmem = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shmem == MAP_FAILED)
        die("mmap");

    struct sigaction sa = {.sa_handler = child_handler};
    sigemptyset(&sa.sa_mask);
    sigset_t usr1, unblocked;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    if (sigaction(SIGUSR1, &sa, NULL) || sigprocmask(SIG_BLOCK, &usr1, &unblocked))
        die("signals");
    sigdelset(&unblocked, SIGUSR1);

    pid_t ppid = getpid();
    fflush(stdout);
    pid_t cpid = fork();
    if (cpid < 0)
        die("fork");
    if (cpid == 0) {
        pid_t me = getpid();
        printf("child %d: waiting for message...\n", (int)me);
        fflush(stdout);
        while (!message_ready)
            sigsuspend(&unblocked); /* returns after the handler ran */
        printf("child %d reading from shmem: %s\n", (int)me, shmem);
        fflush(stdout);
        snprintf(shmem, SHM_SIZE, "Got it [%d] -- exiting", (int)ppid);
        printf("child %d writing to shmem: %s\n", (int)me, shmem);
        fflush(stdout);
        _exit(0);
    }

    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    if (message)
        memcpy(shmem, message, strlen(message) + 1);
    else
        snprintf(shmem, SHM_SIZE, "Parent %d sending message to child %d", (int)ppid, (int)cpid);
    if (kill(cpid, SIGUSR1))
        die("kill");
    int status;
    while (waitpid(cpid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "shm-handshake: the child failed\n");
        return 1;
    }
    printf("Message from child %d: %s\n", (int)cpid, shmem);
    return 0;
}

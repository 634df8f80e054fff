// corpus: exercise=shm bin=shm-handshake
// design: memfd_create() + mmap(MAP_SHARED) as the shared page; SIGUSR1 blocked before fork; the child blocks in read() on a signalfd
// expect: full
/*
 * What makes it different: the page is backed by an anonymous file
 * (memfd_create) that is mapped once and closed before fork; the child waits
 * for SIGUSR1 as for data — a blocking read() on a signalfd, which returns
 * the pending signal's siginfo. Output uses plain write(2), no stdio, so
 * nothing buffered can be duplicated by fork.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHM_SIZE 4096
#define MAX_MSG 2048

static void fail(const char *what)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "shm-handshake: %s: %s\n", what, strerror(errno));
    (void)!write(STDERR_FILENO, buf, (size_t)n);
    _exit(1);
}

/* One line from three pieces, in one writev. */
static void line(const char *a, const char *b, size_t blen)
{
    struct iovec v[3] = {{(void *)a, strlen(a)}, {(void *)b, blen}, {"\n", 1}};
    size_t total = v[0].iov_len + blen + 1;
    ssize_t w = writev(STDOUT_FILENO, v, 3);
    if (w < 0 || (size_t)w != total) /* a pipe takes up to 4 KiB at once */
        fail("write");
}

int main(int argc, char **argv)
{
    long delay_ms = 0;
    const char *message = NULL;
    int i = 1;
    while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        char *end;
        if (!strcmp(argv[i], "--delay-ms") && i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9' &&
            (delay_ms = strtol(argv[i + 1], &end, 10), *end == '\0')) {
            i += 2;
            continue;
        }
        fprintf(stderr, "shm-handshake: bad option %s\nusage: shm-handshake [--delay-ms N] [--] [MESSAGE]\n", argv[i]);
        return 1;
    }
    if (argc - i > 1 || (argc - i == 1 && strlen(argv[i]) > MAX_MSG)) {
        fputs("shm-handshake: one MESSAGE of at most 2048 bytes\n", stderr);
        return 1;
    }
    if (argc - i == 1)
        message = argv[i];

    int fd = memfd_create("shm-handshake", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, SHM_SIZE))
        fail("memfd");
    char *shmem = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shmem == MAP_FAILED)
        fail("mmap");
    close(fd);

    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &usr1, NULL))
        fail("sigprocmask");

    pid_t ppid = getpid();
    pid_t cpid = fork();
    if (cpid < 0)
        fail("fork");
    if (cpid == 0) {
        char me[64];
        snprintf(me, sizeof me, "child %d", (int)getpid());
        int sfd = signalfd(-1, &usr1, SFD_CLOEXEC);
        if (sfd < 0)
            fail("signalfd");
        line(me, ": waiting for message...", strlen(": waiting for message..."));
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
            if (errno != EINTR)
                fail("read signalfd");
        char prefix[96];
        snprintf(prefix, sizeof prefix, "%s reading from shmem: ", me);
        line(prefix, shmem, strlen(shmem));
        int n = snprintf(shmem, SHM_SIZE, "Got it [%d] -- exiting", (int)ppid);
        snprintf(prefix, sizeof prefix, "%s writing to shmem: ", me);
        line(prefix, shmem, (size_t)n);
        _exit(0);
    }

    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    if (message)
        strcpy(shmem, message); /* at most 2048 bytes + NUL: fits */
    else
        snprintf(shmem, SHM_SIZE, "Parent %d sending message to child %d", (int)ppid, (int)cpid);
    if (kill(cpid, SIGUSR1))
        fail("kill");
    int status;
    while (waitpid(cpid, &status, 0) < 0)
        if (errno != EINTR)
            fail("waitpid");
    if (status != 0) {
        fputs("shm-handshake: the child failed\n", stderr);
        return 1;
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "Message from child %d: ", (int)cpid);
    line(prefix, shmem, strlen(shmem));
    return 0;
}

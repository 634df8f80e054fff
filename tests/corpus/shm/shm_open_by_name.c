// corpus: exercise=shm bin=shm-handshake
// design: POSIX shm_open object the child maps by name after fork; SIGUSR1 blocked before fork, child waits in sigwaitinfo(); length-prefixed message; shm_unlink after waitpid
// expect: full
/*
 * What makes it different: the memory is a named POSIX shared-memory object
 * (/dev/shm), not an inherited anonymous mapping. The parent creates and maps
 * it before fork; the child opens the same name and maps it again, so the two
 * processes share pages through the object, not through fork. The parent
 * removes the name with shm_unlink() once the child has exited (by then both
 * have mapped it, and nothing is left behind). Messages carry a length word
 * instead of a terminating NUL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHM_SIZE 4096
#define MAX_MSG 2048

struct shared {
    uint32_t len;
    char text[SHM_SIZE - sizeof(uint32_t)];
};

static char name[64];
static pid_t owner; /* the parent: only it removes the name */

static void die(const char *what)
{
    int e = errno;
    if (owner == getpid())
        shm_unlink(name);
    fprintf(stderr, "shm-handshake: %s: %s\n", what, strerror(e));
    exit(1);
}

static struct shared *map_object(int flags)
{
    int fd = shm_open(name, flags, 0600);
    if (fd < 0)
        die("shm_open");
    if (flags & O_CREAT)
        owner = getpid();
    if ((flags & O_CREAT) && ftruncate(fd, SHM_SIZE))
        die("ftruncate");
    void *p = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap");
    close(fd); /* the mapping keeps the object alive */
    return p;
}

static void put(struct shared *s, const char *text, size_t len)
{
    memcpy(s->text, text, len);
    s->len = (uint32_t)len;
}

static void say(const char *prefix, const struct shared *s)
{
    fputs(prefix, stdout);
    fwrite(s->text, 1, s->len, stdout);
    putchar('\n');
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long delay_ms = 0;
    int opt_end = 0;
    const char *message = NULL;
    for (int i = 1; i < argc; i++) {
        if (!opt_end && !strcmp(argv[i], "--")) {
            opt_end = 1;
        } else if (!opt_end && !strcmp(argv[i], "--delay-ms") && i + 1 < argc &&
                   strspn(argv[i + 1], "0123456789") == strlen(argv[i + 1]) && argv[i + 1][0]) {
            delay_ms = atol(argv[++i]);
        } else if ((opt_end || argv[i][0] != '-' || !argv[i][1]) && !message) {
            message = argv[i];
        } else {
            fputs("shm-handshake: usage: shm-handshake [--delay-ms N] [--] [MESSAGE]\n", stderr);
            return 1;
        }
    }
    if (message && strlen(message) > MAX_MSG) {
        fputs("shm-handshake: MESSAGE longer than 2048 bytes\n", stderr);
        return 1;
    }

    pid_t ppid = getpid();
    snprintf(name, sizeof name, "/shm-handshake-%d", (int)ppid);
    struct shared *shm = map_object(O_RDWR | O_CREAT | O_EXCL);

    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &usr1, NULL)) /* before fork: the child is born with it blocked */
        die("sigprocmask");

    fflush(stdout);
    pid_t cpid = fork();
    if (cpid < 0)
        die("fork");
    if (cpid == 0) {
        munmap(shm, SHM_SIZE); /* map it again, by name */
        struct shared *mine = map_object(O_RDWR);
        pid_t me = getpid();
        printf("child %d: waiting for message...\n", (int)me);
        fflush(stdout);
        siginfo_t si;
        while (sigwaitinfo(&usr1, &si) < 0)
            if (errno != EINTR)
                die("sigwaitinfo");
        char prefix[64];
        snprintf(prefix, sizeof prefix, "child %d reading from shmem: ", (int)me);
        say(prefix, mine);
        char reply[64];
        put(mine, reply, (size_t)snprintf(reply, sizeof reply, "Got it [%d] -- exiting", (int)ppid));
        snprintf(prefix, sizeof prefix, "child %d writing to shmem: ", (int)me);
        say(prefix, mine);
        _exit(0);
    }

    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    char def[96];
    if (message)
        put(shm, message, strlen(message));
    else
        put(shm, def, (size_t)snprintf(def, sizeof def, "Parent %d sending message to child %d", (int)ppid, (int)cpid));
    if (kill(cpid, SIGUSR1))
        die("kill");
    int status;
    if (waitpid(cpid, &status, 0) < 0)
        die("waitpid");
    shm_unlink(name); /* both have mapped it; the child is gone */
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        fputs("shm-handshake: the child failed\n", stderr);
        return 1;
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "Message from child %d: ", (int)cpid);
    say(prefix, shm);
    munmap(shm, SHM_SIZE);
    return 0;
}

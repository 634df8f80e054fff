// corpus: exercise=shm bin=shm-handshake
// design: System V segment (shmget IPC_PRIVATE, shmat, IPC_RMID right after attaching); SIGUSR1 blocked before fork; the child waits in sigtimedwait() with a long timeout
// expect: full
/*
 * What makes it different: the shared memory is a System V segment. It is
 * attached before fork (the child inherits the attachment) and marked for
 * removal at once, so it disappears when the last process detaches — even if
 * the program is killed. The child takes SIGUSR1 with sigtimedwait(): a
 * 60-second timeout only guards against a parent that never signals (then the
 * child gives up), it is no polling.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "shm-handshake: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    long delay_ms = 0;
    const char *message = NULL;
    int i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (!strcmp(argv[i], "--delay-ms") && i + 1 < argc) {
            char *end;
            delay_ms = strtol(argv[++i], &end, 10);
            if (argv[i][0] < '0' || argv[i][0] > '9' || *end)
                goto usage;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            goto usage;
        } else {
            break;
        }
    }
    if (i < argc)
        message = argv[i++];
    if (i < argc || (message && strlen(message) > 2048))
        goto usage;

    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    if (id < 0)
        die("shmget");
    char *shmem = shmat(id, NULL, 0);
    if (shmem == (void *)-1)
        die("shmat");
    shmctl(id, IPC_RMID, NULL); /* gone once the last attachment ends */

    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);

    pid_t parent = getpid();
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        pid_t me = getpid();
        printf("child %d: waiting for message...\n", (int)me);
        fflush(stdout);
        struct timespec limit = {60, 0};
        int sig;
        while ((sig = sigtimedwait(&usr1, NULL, &limit)) != SIGUSR1) {
            if (sig < 0 && errno == EAGAIN) {
                fputs("shm-handshake: no message within 60 s\n", stderr);
                _exit(1);
            }
        }
        printf("child %d reading from shmem: %s\n", (int)me, shmem);
        fflush(stdout);
        snprintf(shmem, 4096, "Got it [%d] -- exiting", (int)parent);
        printf("child %d writing to shmem: %s\n", (int)me, shmem);
        fflush(stdout);
        _exit(0);
    }

    struct timespec nap = {delay_ms / 1000, delay_ms % 1000 * 1000000};
    while (nanosleep(&nap, &nap) && errno == EINTR)
        ;
    if (message)
        snprintf(shmem, 4096, "%s", message);
    else
        snprintf(shmem, 4096, "Parent %d sending message to child %d", (int)parent, (int)child);
    kill(child, SIGUSR1);
    int status;
    if (waitpid(child, &status, 0) < 0)
        die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        return 1;
    printf("Message from child %d: %s\n", (int)child, shmem);
    shmdt(shmem);
    return 0;

usage:
    fputs("shm-handshake: usage: shm-handshake [--delay-ms N] [--] [MESSAGE] (MESSAGE at most 2048 bytes)\n", stderr);
    return 1;
}

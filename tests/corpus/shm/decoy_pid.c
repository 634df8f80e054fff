// corpus: exercise=shm bin=shm-handshake
// design: SHORTCUT — the real child busy-waits on a flag in shared memory (no signal at all), while every line names an idle decoy child that only sleeps in pause()
// expect: fail no-busy-wait | not the child
/*
 * This program must NOT score full marks. It skips the exercise (no SIGUSR1,
 * no sleeping wait: the worker spins on a flag) and hides it from a grader
 * that measures only the pid it is told: the lines print the pid of a second,
 * idle child. The decoy is a real child of the program, so "is CPID my
 * child?" holds; only measuring what all of the program's processes do
 * (SPEC §5: "the child tree neither spins nor polls") catches it.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
    int ready;
    char text[4000];
};

int main(int argc, char **argv)
{
    long delay_ms = 0;
    const char *message = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--delay-ms") && i + 1 < argc)
            delay_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--"))
            message = argv[i];
    }
    if (message && strlen(message) > 2048) {
        fputs("shm-handshake: MESSAGE too long\n", stderr);
        return 1;
    }
    struct shared *shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED)
        return 1;
    int parent = getpid();
    fflush(stdout);
    pid_t decoy = fork();
    if (decoy == 0) {
        for (;;)
            pause();
    }
    pid_t worker = fork();
    if (worker == 0) {
        printf("child %d: waiting for message...\n", (int)decoy);
        fflush(stdout);
        while (!__atomic_load_n(&shm->ready, __ATOMIC_ACQUIRE))
            ; /* busy waiting */
        printf("child %d reading from shmem: %s\n", (int)decoy, shm->text);
        snprintf(shm->text, sizeof shm->text, "Got it [%d] -- exiting", parent);
        printf("child %d writing to shmem: %s\n", (int)decoy, shm->text);
        fflush(stdout);
        _exit(0);
    }
    struct timespec ts = {delay_ms / 1000, delay_ms % 1000 * 1000000L};
    nanosleep(&ts, NULL);
    if (message)
        snprintf(shm->text, sizeof shm->text, "%s", message);
    else
        snprintf(shm->text, sizeof shm->text, "Parent %d sending message to child %d", parent, (int)decoy);
    __atomic_store_n(&shm->ready, 1, __ATOMIC_RELEASE);
    waitpid(worker, NULL, 0);
    printf("Message from child %d: %s\n", (int)decoy, shm->text);
    fflush(stdout);
    kill(decoy, SIGKILL);
    waitpid(decoy, NULL, 0);
    return 0;
}

// corpus: exercise=framing bin=pipeframe
// design: buffered stdio (getc/fread/fwrite on FILE streams, fdopen on the pipe ends) with an explicit fflush after every frame and line; relay child by fork(); EPIPE seen at fflush
// expect: full
/*
 * What makes it different: everything goes through C stdio. fread() already
 * loops until it has the requested count or EOF, which is exactly what a
 * frame reader needs; the price of buffering is that output must be flushed
 * by hand — after every frame (encode) and every line (decode), or a line
 * would wait in the buffer while the input stays open. The relay wraps the
 * pipe's ends in FILE streams with fdopen(); stdout is flushed before fork()
 * so nothing buffered is printed twice.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PAYLOAD 65535

/* Flush `out`: 0, or the exit status for the failure (4: the reader has gone). */
static int flush(FILE *out)
{
    if (fflush(out) == 0)
        return 0;
    if (errno == EPIPE) {
        fputs("pipeframe: the reader of our output has gone (EPIPE); stopping\n", stderr);
        return 4;
    }
    perror("pipeframe: write");
    return 1;
}

static int encode(FILE *in, FILE *out)
{
    static char line[MAX_PAYLOAD];
    size_t len = 0;
    for (;;) {
        int c = getc(in);
        if (c != '\n' && c != EOF) {
            if (len == MAX_PAYLOAD) {
                fputs("pipeframe: a line is longer than 65535 bytes\n", stderr);
                return 2;
            }
            line[len++] = (char)c;
            continue;
        }
        if (c == EOF && ferror(in)) {
            perror("pipeframe: read");
            return 1;
        }
        if (c == EOF && len == 0)
            return 0;
        putc(len >> 8, out);
        putc(len & 0xff, out);
        fwrite(line, 1, len, out);
        int rc = flush(out);
        if (rc || c == EOF)
            return rc;
        len = 0;
    }
}

static int decode(FILE *in, FILE *out, int with_len, long max)
{
    static unsigned char payload[MAX_PAYLOAD];
    for (long n = 0; max < 0 || n < max; n++) {
        unsigned char hdr[2];
        size_t got = fread(hdr, 1, 2, in);
        if (got == 0 && !ferror(in))
            return 0; /* EOF between frames */
        unsigned len = got == 2 ? (unsigned)hdr[0] << 8 | hdr[1] : 0;
        if (got < 2 || fread(payload, 1, len, in) < len) {
            if (ferror(in)) {
                perror("pipeframe: read");
                return 1;
            }
            fputs("pipeframe: truncated frame\n", stderr);
            return 3;
        }
        if (with_len)
            fprintf(out, "%u ", len);
        fwrite(payload, 1, len, out);
        putc('\n', out);
        int rc = flush(out);
        if (rc)
            return rc;
    }
    return 0;
}

static int relay(long max)
{
    int p[2];
    if (pipe(p) < 0) {
        perror("pipeframe: pipe");
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("pipeframe: fork");
        return 1;
    }
    if (pid == 0) {
        close(p[1]); /* or our own write end keeps the pipe from ever reaching EOF */
        FILE *from_parent = fdopen(p[0], "r");
        exit(from_parent ? decode(from_parent, stdout, 1, max) : 1);
    }
    close(p[0]); /* or a child that has left gives no EPIPE */
    signal(SIGPIPE, SIG_IGN); /* EPIPE instead of death: we must still reap the child and exit 4 */
    FILE *to_child = fdopen(p[1], "w");
    int rc = to_child ? encode(stdin, to_child) : 1;
    if (to_child && fclose(to_child) == EOF && rc == 0) /* the child's EOF */
        rc = errno == EPIPE ? 4 : 1;
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            perror("pipeframe: waitpid");
            return 1;
        }
    }
    if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "encode"))
        return encode(stdin, stdout);
    if (argc == 2 && !strcmp(argv[1], "decode"))
        return decode(stdin, stdout, 0, -1);
    if (argc == 2 && !strcmp(argv[1], "relay"))
        return relay(-1);
    if (argc == 4 && !strcmp(argv[1], "relay") && !strcmp(argv[2], "--child-max") && argv[3][0] >= '0' &&
        argv[3][0] <= '9' && strspn(argv[3], "0123456789") == strlen(argv[3]))
        return relay(strtol(argv[3], NULL, 10));
    fputs("pipeframe: usage: pipeframe encode | decode | relay [--child-max N]\n", stderr);
    return 1;
}

// corpus: exercise=sockets bin=tcp-client
// checks: client-
// design: SHORTCUT — no socket of its own: execs `python3 -c` with a small threaded netcat (nc is not installed on this machine; python3 is); the program written in the exercise does nothing but exec
// expect: fail client-greeting,client-duplex,client-half-close,client-names | the client must do the socket work itself
//
// Behaves exactly as the contract asks (getaddrinfo via create_connection, each
// address tried, half-close at stdin EOF, exit 0 when the server closes, the
// `cannot connect` message), so no check that judges only bytes and statuses
// can tell. The exercise is to write the client: every check that connects
// sees that a process of the client runs another program (`python3`, from
// /proc/PID/exe) than the graded executable.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char SCRIPT[] =
    "import os, socket, sys, threading\n"
    "host, port = sys.argv[1], sys.argv[2]\n"
    "try:\n"
    "    s = socket.create_connection((host, int(port)))\n"
    "except OSError as e:\n"
    "    sys.stderr.write('tcp-client: cannot connect to %s:%s: %s\\n' % (host, port, e.strerror or e))\n"
    "    sys.exit(1)\n"
    "def up():\n"
    "    while True:\n"
    "        b = os.read(0, 65536)\n"
    "        if not b:\n"
    "            break\n"
    "        try:\n"
    "            s.sendall(b)\n"
    "        except OSError:\n"
    "            return\n"
    "    s.shutdown(socket.SHUT_WR)\n"
    "threading.Thread(target=up, daemon=True).start()\n"
    "while True:\n"
    "    b = s.recv(65536)\n"
    "    if not b:\n"
    "        break\n"
    "    while b:\n"
    "        b = b[os.write(1, b):]\n"
    "os._exit(0)\n";

int main(int argc, char **argv) {
    if (argc != 3) {
        fputs("usage: tcp-client HOST PORT\n", stderr);
        return 1;
    }
    execlp("python3", "python3", "-c", SCRIPT, argv[1], argv[2], (char *)NULL);
    fprintf(stderr, "tcp-client: cannot run python3: %s\n", strerror(errno));
    return 1;
}

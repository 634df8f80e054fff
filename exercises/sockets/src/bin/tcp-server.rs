//! `tcp-server` — the ipc-lab exercise `sockets`, server half. **This is a
//! file you edit** (the other one is `tcp-client.rs` next to it).
//!
//! Read `exercises/sockets/README.md` first; grade with
//! `cargo grade sockets`.
//!
//! ```text
//! tcp-server [--bind ADDR] [--port PORT]   (defaults 127.0.0.1 and 5000;
//!                                           ADDR an IPv4 or IPv6 literal,
//!                                           PORT 0: the OS picks a free port)
//! ```
//!
//! The slide "Beispiel: Server", grown up. The slide's server accepts a
//! connection, sends `Message from Server\n` and closes it at once. Yours
//! sends the same greeting, then **echoes** every byte the client sends until
//! the client half-closes, then closes — for many clients at the same time,
//! without ever dying because one of them misbehaves. The steps are the
//! slide "Ablauf: Server": `socket()`, `bind()`, `listen()`, `accept()`,
//! `read/write()` (here `recv`/`send`), `close()`.
//!
//! What is done for you: argument parsing ([`parse_args`], [`Options`]),
//! error messages and exit codes ([`Failure`], [`diagnose`]), stopping on
//! SIGINT/SIGTERM ([`stop_on_signals`]), deciding what a failed `accept`
//! means ([`accept_failed`]), and [`run`]/`main`. What you write: every
//! function whose body is `todo!()`, TODO 1–6, in that order:
//!
//! 1. [`listen_on`] — `socket`, `SO_REUSEADDR`, `bind`, `listen`;
//! 2. [`announce`] — `getsockname`, print `listening on SOCKADDR`;
//!    now `cargo grade sockets --check server-greeting` can connect (and
//!    waits for the greeting);
//! 3. [`accept_loop`] — `accept`, one thread per connection;
//! 4. [`serve`] — one connection: echo, errors, close;
//! 5. [`echo`] — greeting, then the `recv`/`send` loop;
//! 6. [`send_all`] — `send` until every byte is out.
//!
//! Rules of the game (the grader checks them from outside):
//! - the `listening on` line is the first thing on stdout, flushed at once;
//! - never `println!`, never `unwrap()`/`expect()` on a system call: a panic
//!   fails the check (in a worker thread it is printed on stderr, too);
//! - all socket calls through `nix::sys::socket` (`socket`, `setsockopt`,
//!   `bind`, `listen`, `accept`, `getsockname`, `recv`, `send`). Note the
//!   shapes in nix 0.32: `listen(&fd, backlog)` and `accept(&fd)` (which
//!   returns an `OwnedFd`) take the `OwnedFd`; `bind`, `recv`, `send`,
//!   `getsockname` take a `RawFd` (`fd.as_raw_fd()`).
//!
//! Each TODO's doc comment says what it must achieve and why. Stuck? Ask for
//! a hint: `cargo grade --hint sockets` (the concept), then `--level 2` (the
//! API) and `--level 3` (nearly the code); `--check ID` for one check.

// Lets the untouched skeleton compile without warnings.
// Delete this line when you are done: the warnings it hides are useful.
#![allow(unused_variables, unused_mut, unused_imports, dead_code)]

use std::ffi::OsString;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{
    accept, bind, getsockname, listen, recv, send, setsockopt, socket, sockopt, AddressFamily, Backlog, MsgFlags,
    SockFlag, SockType, SockaddrStorage,
};

/// The slide's server listens on port 5000.
const DEFAULT_PORT: u16 = 5000;

/// Sent to every client first (the slide's `sendbuf`).
const GREETING: &[u8] = b"Message from Server\n";

/// How many bytes to ask `recv` for at once.
const CHUNK: usize = 64 * 1024;

/// Connections the kernel may queue for us before we `accept` them. The
/// slide's 10 is small for 20 clients connecting at once: connection
/// attempts beyond the backlog are retried by the client's kernel only after
/// a second or more.
const BACKLOG: i32 = 128;

const USAGE: &str = "usage: tcp-server [--bind ADDR] [--port PORT]";

// ---------------------------------------------------------------------------
// Errors and exit codes (Provided.)
// ---------------------------------------------------------------------------

/// Everything that ends the server early: one line on stderr (prefixed
/// `tcp-server: `), exit status 1. (Provided.)
#[derive(Debug)]
enum Failure {
    /// Bad command line.
    Usage(String),
    /// `bind` (or `listen`) failed: ADDR and PORT as given on the command
    /// line. Make it with [`Options::bind_failed`].
    Bind { addr: String, port: String, errno: Errno },
    /// Any other failed system call: `Failure::Sys("socket", errno)`.
    Sys(&'static str, Errno),
    /// Writing the `listening on` line failed.
    Stdout(std::io::Error),
    /// A thread could not be started.
    Thread(std::io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(why) => write!(f, "{why}; {USAGE}"),
            Failure::Bind { addr, port, errno } => write!(f, "cannot bind {addr}:{port}: {errno}"),
            Failure::Sys(what, errno) => write!(f, "{what}: {errno}"),
            Failure::Stdout(e) => write!(f, "writing stdout: {e}"),
            Failure::Thread(e) => write!(f, "cannot start a thread: {e}"),
        }
    }
}

/// One diagnostic line on stderr. `writeln!` with the result ignored, not
/// `eprintln!`, which panics when stderr is gone. (Provided.)
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "tcp-server: {message}");
}

/// What the command line asks for. (Provided.)
struct Options {
    /// The address to bind, parsed: `IpAddr::V4(..)` or `IpAddr::V6(..)`.
    addr: IpAddr,
    /// The port to bind, parsed (0: the OS chooses).
    port: u16,
    /// ADDR exactly as given (or the default), for the bind error message.
    addr_text: String,
    /// PORT exactly as given (or the default), for the bind error message.
    port_text: String,
}

impl Options {
    /// The failure `tcp-server: cannot bind ADDR:PORT: REASON`.
    /// Use it as `.map_err(|e| options.bind_failed(e))?`. (Provided.)
    fn bind_failed(&self, errno: Errno) -> Failure {
        Failure::Bind { addr: self.addr_text.clone(), port: self.port_text.clone(), errno }
    }
}

// ---------------------------------------------------------------------------
// Setting up — your part starts here
// ---------------------------------------------------------------------------

/// TODO 1 — create the listening socket (slides "Ablauf: Server", "Socket
/// erzeugen", "Datenstrukturen für Adressen", "Passives Warten").
///
/// What it must achieve: a TCP socket of the address's family (an IPv4
/// socket cannot bind `::1`: `server-ipv6`), bound to `options.addr` and
/// `options.port`, listening with a queue of [`BACKLOG`] connections, and
/// returned (an `OwnedFd`: dropping it closes it). A `bind` or `listen`
/// that fails is reported as `tcp-server: cannot bind ADDR:PORT: REASON`
/// ([`Options::bind_failed`]; `server-bind-conflict`); other failures name
/// the call (`Failure::Sys`).
///
/// Pitfall — restarting: stop a server that had clients connected and start
/// it again at once. The connections the old server closed first wait in
/// the state TIME_WAIT and still occupy the port, so a plain `bind` fails
/// with EADDRINUSE for about a minute (`server-restart`). The socket option
/// SO_REUSEADDR, set *before* `bind`, allows it anyway (`man 7 socket`).
/// (std's `TcpListener` sets it for you; a socket made with nix does not.)
/// It does *not* let two servers listen on one port: that stays an error.
///
/// Look up: `nix::sys::socket::{socket, setsockopt, sockopt, bind, listen,
/// Backlog, AddressFamily, SockType, SockFlag, SockaddrStorage}`; `man 2
/// socket`, `man 2 bind`, `man 2 listen`, `man 7 socket`. A
/// `std::net::SocketAddr` converts into a `SockaddrStorage` (the slide's
/// `struct sockaddr_in`, port in network byte order included).
fn listen_on(options: &Options) -> Result<OwnedFd, Failure> {
    todo!("TODO 1: the listening socket")
}

/// TODO 2 — print `listening on SOCKADDR` with the address the socket is
/// really bound to (slide "Weitere Funktionen": `getsockname` — "nützlich
/// für dynamisch vom Betriebssystem zugewiesene Ports").
///
/// Why: with `--port 0` only the kernel knows which port it picked, and the
/// grader reads it from this line. Print it as `127.0.0.1:43567` or
/// `[::1]:43567`, flushed at once: whoever started the server waits for this
/// line before connecting (`server-greeting`). Errors: `Failure::Sys` for
/// the call, [`Failure::Stdout`] for the output.
///
/// Look up: `nix::sys::socket::getsockname`, `man 2 getsockname`; the
/// `Display` of `SockaddrStorage`; `std::io::Write::flush`.
fn announce(listener: &OwnedFd) -> Result<(), Failure> {
    todo!("TODO 2: print the bound address")
}

/// SIGINT and SIGTERM end the server with status 0, whatever the threads
/// are doing. (Provided.)
///
/// Blocks both signals in the calling (main) thread — every thread started
/// afterwards inherits the mask — and starts a thread that waits for them
/// with `sigwait` ([`SigSet::wait`]). When one arrives it calls `exit(0)`:
/// the kernel closes every socket. No signal handler, and no blocked
/// `accept` or `recv` that would need to be woken up.
///
/// It must run before any worker thread exists ([`run`] calls it right
/// after [`listen_on`]): a signal is delivered to *some* thread that does not
/// block it, and with the default action that kills the whole process
/// (killed by SIGTERM, not exit 0).
fn stop_on_signals() -> Result<(), Failure> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block().map_err(|e| Failure::Sys("pthread_sigmask", e))?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || match signals.wait() {
            // exit, not return: the other threads are still blocked in
            // accept/recv/send. The kernel closes every socket.
            Ok(_) => std::process::exit(0),
            Err(errno) => diagnose(&format!("sigwait: {errno}")),
        })
        .map_err(Failure::Thread)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Serving — your part
// ---------------------------------------------------------------------------

/// TODO 3 — accept connections forever, each served at the same time as the
/// others (slide "Verbindungen (TCP)": `accept` "liefert einen neuen
/// Socket-Deskriptor für diese Verbindung", the listening socket "bleibt
/// zum Annehmen weiterer Verbindungen").
///
/// What it must achieve: every connection is handed to [`serve`], and an
/// idle or slow client never delays the others (`server-concurrent`; slide
/// "Client-Server-Modell": "Aufträge werden in einzelnen Threads
/// (Worker-Threads) abgearbeitet"). The slide's server serves one client at
/// a time. A failed `accept` is judged by the provided [`accept_failed`]; a
/// connection that cannot get a thread is closed and the server goes on —
/// it never panics.
///
/// Ownership: once a worker has the connection, the worker — and only the
/// worker — closes it. Threads, unlike `fork`ed children, leave no zombies,
/// so there is nothing to wait for.
///
/// Look up: `nix::sys::socket::accept`, `man 2 accept`;
/// `std::thread::Builder` (why not `thread::spawn`: read what it does when
/// no thread can be started); `move` closures.
fn accept_loop(listener: OwnedFd) -> Result<(), Failure> {
    todo!("TODO 3: accept and hand out connections")
}

/// Decides whether a failed `accept` ends the server. (Provided.)
///
/// * EINTR, ECONNABORTED (the client reset before we accepted it), EPROTO:
///   nothing to do, accept the next one.
/// * EMFILE, ENFILE, ENOBUFS, ENOMEM: out of descriptors or memory for now;
///   say so, wait a little (not spin) and go on — finishing clients free
///   resources.
/// * Anything else (EBADF, EINVAL, …) is a bug: give up.
fn accept_failed(errno: Errno) -> Result<(), Failure> {
    match errno {
        Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO => Ok(()),
        Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM => {
            diagnose(&format!("accept: {errno}; retrying"));
            thread::sleep(Duration::from_millis(100));
            Ok(())
        }
        _ => Err(Failure::Sys("accept", errno)),
    }
}

/// TODO 4 — one connection, in its own thread: [`echo`], then close.
///
/// What it must achieve: a client that resets or closes without reading
/// (EPIPE, ECONNRESET) is the client's business — nothing to report, and
/// it never takes the server down (`server-survives-resets`); any other
/// error is one line on stderr ([`diagnose`]). Either way the connection is
/// closed at the end: the client's `recv` returns 0, and the descriptor is
/// free again (`server-no-leaks` counts them after 100 clients).
///
/// Pitfalls:
/// - a way of getting a `RawFd` that gives up ownership leaves nothing that
///   closes the descriptor — borrow it instead, and keep the `OwnedFd`
///   until the end;
/// - `shutdown` is not `close`: the client sees EOF, but the descriptor
///   stays open — one lost per client;
/// - `std::process::exit` or a `panic!` on an error ends the server or
///   leaves a panic message: just return.
///
/// Look up: `AsRawFd` vs `IntoRawFd`; `nix::errno::Errno`.
fn serve(conn: OwnedFd) {
    todo!("TODO 4: serve one connection")
}

/// TODO 5 — send the greeting, then echo every byte until the client
/// half-closes (slides "Senden von Daten", "Empfangen von Daten").
///
/// What it must achieve: [`GREETING`] first; then every byte the client
/// sends comes back, exactly and in order; when the client has half-closed
/// (no more data will come), return `Ok(())`. An interrupted call is
/// repeated; any other error is returned.
///
/// Pitfalls:
/// - `recv` returns whatever has arrived, from 1 byte to the buffer's size
///   — not the client's "messages". Echo exactly the bytes you got, never
///   the whole buffer.
/// - Bytes, not text: no `String`, no NUL terminator like the slide's C
///   strings. The grader sends arbitrary bytes.
/// - Do not read everything first and echo at the end. Blocking
///   `recv`/`send` are right here: while the client does not read, `send`
///   waits, we stop reading, and TCP makes the client wait in turn — nothing
///   is lost and nothing piles up in memory (`server-echo-large`).
/// - 64 KiB on a thread's stack is a lot; a heap buffer is safer.
///
/// Look up: `nix::sys::socket::{recv, MsgFlags}`, `man 2 recv` (what 0
/// means); [`send_all`].
fn echo(fd: RawFd) -> nix::Result<()> {
    todo!("TODO 5: greeting, then echo")
}

/// TODO 6 — send all of `bytes` (slide "Senden von Daten").
///
/// What it must achieve: every byte goes out, or the error comes back.
/// `send` may take fewer bytes than you gave it (a *short write*) — when a
/// signal interrupts it after some bytes went out, or when the socket may
/// not block — so one call is not enough. An interrupted call is repeated.
///
/// Pitfall — SIGPIPE: sending on a connection the client has reset raises
/// SIGPIPE, whose default action kills the *whole server*, every other
/// client included (slide "Pipes, Sockets und Prozesse": "Linux-Signal:
/// SIGPIPE … Erfordert entsprechende Fehlerbehandlung"). Ask `send` for an
/// error instead, so that [`serve`] ends just that connection. (Rust's
/// runtime happens to ignore SIGPIPE; a C server would die, and so would
/// this one if anything set SIGPIPE back to its default.)
///
/// Look up: `nix::sys::socket::{send, MsgFlags}`, `man 2 send` (the flags).
fn send_all(fd: RawFd, mut bytes: &[u8]) -> nix::Result<()> {
    todo!("TODO 6: send every byte")
}

// ---------------------------------------------------------------------------
// Command line (Provided.)
// ---------------------------------------------------------------------------

enum Command {
    Run(Options),
    Help,
}

/// Parses `[--bind ADDR] [--port PORT]` (also `--bind=ADDR`, `--port=PORT`)
/// and `--help`. (Provided.)
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Failure> {
    let mut options = Options {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: DEFAULT_PORT,
        addr_text: "127.0.0.1".into(),
        port_text: DEFAULT_PORT.to_string(),
    };
    let mut args = args.into_iter().map(|arg| arg.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--bind" | "--port" => {
                let value = match inline.or_else(|| args.next()) {
                    Some(value) => value,
                    None => return Err(Failure::Usage(format!("{name} needs a value"))),
                };
                if name == "--bind" {
                    options.addr = value.parse().map_err(|_| {
                        Failure::Usage(format!(
                            "--bind needs an IPv4 or IPv6 address like 127.0.0.1 or ::1, not {value:?}"
                        ))
                    })?;
                    options.addr_text = value;
                } else {
                    options.port = value
                        .parse()
                        .map_err(|_| Failure::Usage(format!("--port needs a number from 0 to 65535, not {value:?}")))?;
                    options.port_text = value;
                }
            }
            _ => return Err(Failure::Usage(format!("unexpected argument {arg:?}"))),
        }
    }
    Ok(Command::Run(options))
}

/// The slide "Typische Programmstruktur": initialise (socket, signals),
/// then the main loop. (Provided.)
fn run(options: &Options) -> Result<(), Failure> {
    let listener = listen_on(options)?;
    stop_on_signals()?;
    announce(&listener)?;
    accept_loop(listener)
}

/// (Provided.)
fn main() -> ExitCode {
    let result = parse_args(std::env::args_os().skip(1)).and_then(|command| match command {
        Command::Run(options) => run(&options),
        Command::Help => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            Ok(())
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            diagnose(&failure.to_string());
            ExitCode::from(1)
        }
    }
}

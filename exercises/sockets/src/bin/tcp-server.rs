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
/// What to do:
/// 1. `socket(family, SockType::Stream, SockFlag::empty(), None)` — the
///    slide's `socket(AF_INET, SOCK_STREAM, 0)`. The family must match the
///    address: `AddressFamily::Inet` for `IpAddr::V4`, `AddressFamily::Inet6`
///    for `IpAddr::V6` (an AF_INET socket cannot bind `::1`). Errors:
///    `Failure::Sys("socket", errno)`.
/// 2. `setsockopt(&listener, sockopt::ReuseAddr, &true)` — *before* `bind`.
/// 3. `bind(listener.as_raw_fd(), &address)` with
///    `let address = SockaddrStorage::from(SocketAddr::new(options.addr, options.port));`
///    — that builds the `struct sockaddr_in` / `sockaddr_in6` of the slide,
///    port in network byte order (`htons`) included. Errors:
///    `options.bind_failed(errno)`.
/// 4. `listen(&listener, Backlog::new(BACKLOG)?)` (map `Backlog::new`'s error
///    to `Failure::Sys("listen", ..)`); a failing `listen` is reported as
///    `options.bind_failed(errno)` too: with SO_REUSEADDR two servers may both
///    `bind` a port, but only one may `listen` on it.
/// 5. Return the socket (an `OwnedFd`: dropping it closes it).
///
/// Pitfall — SO_REUSEADDR: stop a server that had clients connected and
/// start it again at once: without SO_REUSEADDR `bind` fails with
/// EADDRINUSE for about a minute, because the connections the old server
/// closed first wait in the state TIME_WAIT and still occupy the port.
/// SO_REUSEADDR allows the `bind` anyway. (std's `TcpListener` sets it for
/// you; a socket made with nix does not.) It does *not* let two servers
/// listen on one port: that stays an error (`server-bind-conflict`).
fn listen_on(options: &Options) -> Result<OwnedFd, Failure> {
    todo!("listen_on: socket, setsockopt(ReuseAddr), bind, listen")
}

/// TODO 2 — print `listening on SOCKADDR` with the address the socket is
/// really bound to (slide "Weitere Funktionen": `getsockname` — "nützlich
/// für dynamisch vom Betriebssystem zugewiesene Ports").
///
/// With `--port 0` only the kernel knows which port it picked, and the
/// grader reads it from this line.
///
/// What to do:
/// 1. `let bound: SockaddrStorage = getsockname(listener.as_raw_fd())` (map
///    errors to `Failure::Sys("getsockname", ..)`);
/// 2. write the line: `SockaddrStorage` implements `Display` and gives
///    exactly `127.0.0.1:43567` or `[::1]:43567`. Use
///    `let mut stdout = std::io::stdout().lock();`, `writeln!(stdout, ...)`
///    and then `stdout.flush()` — at once: whoever started the server waits
///    for this line before connecting. Map errors with `Failure::Stdout`.
fn announce(listener: &OwnedFd) -> Result<(), Failure> {
    todo!("announce: getsockname, print `listening on SOCKADDR`, flush")
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

/// TODO 3 — accept connections forever, each in its own thread (slide
/// "Verbindungen (TCP)": `accept` "liefert einen neuen Socket-Deskriptor für
/// diese Verbindung", the listening socket "bleibt zum Annehmen weiterer
/// Verbindungen").
///
/// ```text
/// loop {
///     accept(&listener)      Ok(conn)   -> a new OwnedFd for this client
///                            Err(errno) -> accept_failed(errno)?; continue
///     thread::Builder::new().spawn(move || serve(conn))
///                            Err(e)     -> diagnose(..) and go on
/// }
/// ```
///
/// * One thread per connection (slide "Client-Server-Modell": "Aufträge
///   werden in einzelnen Threads (Worker-Threads) abgearbeitet"). Calling
///   `serve(conn)` right here, like the slide's server, serves one client at
///   a time: an idle client blocks everybody else (`server-concurrent`).
/// * `move` gives `conn` to the thread: from then on the worker owns the
///   descriptor and closes it. If the thread cannot be started, the closure
///   and `conn` in it are dropped — that client is closed, the server goes
///   on.
/// * Not `thread::spawn(..)`: it panics when no thread can be started;
///   `Builder::spawn` returns the error.
/// * Drop the `JoinHandle` (don't `join`): the worker runs on its own.
///   Threads, unlike `fork`ed children, leave no zombies behind.
fn accept_loop(listener: OwnedFd) -> Result<(), Failure> {
    todo!("accept_loop: accept, spawn a thread running serve(conn)")
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
/// What to do:
/// 1. `match echo(conn.as_raw_fd())`:
///    - `Ok(())`, `Err(Errno::EPIPE)`, `Err(Errno::ECONNRESET)`: nothing to
///      report. A client that resets or closes without reading is the
///      client's business; it must never take the server down;
///    - any other `Err(errno)`: `diagnose(&format!("connection: {errno}"))`.
/// 2. `drop(conn)` — that is `close(fd)`: the client's `recv` returns 0
///    (EOF), and the descriptor is free again.
///
/// Pitfalls:
/// - `conn.into_raw_fd()` to get the `RawFd` nix's `send`/`recv` want gives
///   up the ownership: nothing closes the descriptor any more. Use
///   `as_raw_fd()` (borrowing) and keep the `OwnedFd` until the end.
/// - `shutdown(fd, Shutdown::Both)` is not `close`: the client sees EOF, but
///   the descriptor stays open — one lost per client, until the server
///   hits its open-files limit (`server-no-leaks` counts them).
/// - `std::process::exit` or a `panic!` here on an error would end the
///   server or leave a panic message: just return.
fn serve(conn: OwnedFd) {
    todo!("serve: echo(fd), ignore EPIPE/ECONNRESET, report the rest, close")
}

/// TODO 5 — send the greeting, then echo every byte until the client
/// half-closes (slides "Senden von Daten", "Empfangen von Daten").
///
/// ```text
/// send_all(fd, GREETING)?
/// loop {
///     recv(fd, &mut buf, MsgFlags::empty())
///         Ok(0)            -> the client half-closed: return Ok(())
///         Ok(n)            -> send_all(fd, &buf[..n])?
///         Err(Errno::EINTR)-> try again
///         Err(errno)       -> return Err(errno)
/// }
/// ```
///
/// * `recv` returns whatever has arrived, 1 to `buf.len()` bytes — not the
///   client's "messages". Echo exactly the `n` bytes you got: `&buf[..n]`,
///   never the whole buffer.
/// * Bytes, not text: no `String`, no `from_utf8`, no NUL terminator like
///   the slide's C strings. The grader sends arbitrary bytes.
/// * Blocking `recv`/`send` are right here: while the client does not read,
///   `send` waits, we stop reading, and TCP makes the client wait in turn.
///   Nothing is lost and nothing piles up in memory (`server-echo-large`).
///   Do not read everything first and echo at the end.
/// * A heap buffer (`vec![0u8; CHUNK]`) keeps 64 KiB off the thread's stack.
fn echo(fd: RawFd) -> nix::Result<()> {
    todo!("echo: greeting, then recv/send until recv returns 0")
}

/// TODO 6 — send all of `bytes` (slide "Senden von Daten").
///
/// `send` returns how many bytes it took, which may be fewer than you gave
/// it (a *short write*): when a signal interrupts it after some bytes went
/// out, or when the socket may not block. Loop until the slice is empty:
/// `Ok(n)` → `bytes = &bytes[n..]`; `Err(Errno::EINTR)` → try again; any other
/// error → return it.
///
/// Flags: `MsgFlags::MSG_NOSIGNAL`. Sending to a connection the client has
/// reset or closed raises SIGPIPE, whose default action kills the *whole
/// server*, every other client included (slide "Pipes, Sockets und
/// Prozesse": "Linux-Signal: SIGPIPE … Erfordert entsprechende
/// Fehlerbehandlung"). With `MSG_NOSIGNAL`, `send` fails with EPIPE instead
/// and [`serve`] ends just that connection. (Rust's runtime also sets
/// SIGPIPE to "ignore" before `main`; `MSG_NOSIGNAL` keeps the server safe
/// even if something in the process sets it back to the default action, and
/// it is what a C server needs.)
fn send_all(fd: RawFd, mut bytes: &[u8]) -> nix::Result<()> {
    todo!("send_all: send with MSG_NOSIGNAL until every byte is out")
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

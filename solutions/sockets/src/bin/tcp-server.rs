//! `tcp-server` — reference solution of the ipc-lab exercise `sockets`
//! (contract: `exercises/sockets/README.md`), the server half.
//!
//! Lecture: slides "Socket-Programmierung", "Übersicht", "Ablauf: Server",
//! "Typische Programmstruktur", "Socket erzeugen", "Datenstrukturen für
//! Adressen", "Passives Warten", "Verbindungen (TCP)", "Senden von Daten",
//! "Empfangen von Daten", "Weitere Funktionen" (`getsockname`), "Beispiel:
//! Server" and "Pipes, Sockets und Prozesse" (SIGPIPE).
//!
//! ```text
//! tcp-server [--bind ADDR] [--port PORT]   (defaults 127.0.0.1 and 5000;
//!                                           ADDR an IPv4 or IPv6 literal,
//!                                           PORT 0: the OS picks a free port)
//! ```
//!
//! * `socket` (AF_INET or AF_INET6, whichever ADDR is), `SO_REUSEADDR`,
//!   `bind`, `listen`, then `listening on SOCKADDR` on stdout, where SOCKADDR
//!   is read back with `getsockname` (`127.0.0.1:43567`, `[::1]:43567`);
//! * every connection gets `Message from Server\n`, then an echo of every
//!   byte it sends until it half-closes (`shutdown` write: our `recv`
//!   returns 0), then we close it;
//! * SIGINT or SIGTERM: exit 0 at once, also with clients connected;
//! * bind failure: `tcp-server: cannot bind ADDR:PORT: REASON`, exit 1.
//!
//! # The design, and why
//!
//! The slide "Beispiel: Server" accepts one connection, sends the greeting
//! and closes; it never reads. An *echo* server has to keep a connection open
//! for as long as the client wants, so while one client is connected, the
//! next one must not wait: one **thread per connection** (slide
//! "Client-Server-Modell": "Aufträge werden in einzelnen Threads
//! (Worker-Threads) abgearbeitet"). The main thread only `accept`s. Threads,
//! unlike `fork`ed children, leave no zombies behind; each thread owns its
//! connection's descriptor (`OwnedFd`) and closes it when it is done, so the
//! number of open descriptors goes back down after every client.
//!
//! Each worker uses plain *blocking* `recv`/`send`. Echoing 16 MiB to a
//! client that does not read for a while is then automatic flow control:
//! `send` blocks while the client's receive buffer is full, meanwhile we do
//! not `recv`, our receive buffer fills, and TCP makes the client's `send`
//! wait in turn. Nothing is lost, nothing piles up in our memory.
//!
//! A client may vanish at any moment (reset, close without reading). Writing
//! to such a connection raises SIGPIPE, whose default action kills the
//! *whole process*, all other clients included (slide "Pipes, Sockets und
//! Prozesse"). We send with `MSG_NOSIGNAL`, so `send` fails with EPIPE
//! instead, and the worker just ends that one connection. (Rust's runtime
//! also sets SIGPIPE to "ignore" before `main`; `MSG_NOSIGNAL` keeps the
//! server safe even if something in the process sets it back to the
//! default action, and it is what a C server needs.)
//!
//! Stopping: SIGINT and SIGTERM are *blocked* in every thread (the mask is
//! set before any thread is started, and threads inherit it) and one
//! dedicated thread waits for them with `sigwait` ([`SigSet::wait`]). When
//! one arrives it calls `exit(0)`: the kernel closes every socket. No signal
//! handler, nothing async-signal-unsafe, and no blocked `accept` or `recv`
//! that needs to be woken up. `SO_REUSEADDR` lets the next server bind the
//! port at once, although our closed connections linger in TIME_WAIT.

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

/// How many bytes we ask `recv` for at once.
const CHUNK: usize = 64 * 1024;

/// Connections the kernel may queue for us before we `accept` them. The
/// slide's 10 is small for 20 clients connecting at once: connection
/// attempts beyond the backlog are retried by the client's kernel only after
/// a second or more.
const BACKLOG: i32 = 128;

const USAGE: &str = "usage: tcp-server [--bind ADDR] [--port PORT]";

// ---------------------------------------------------------------------------
// Errors and exit codes
// ---------------------------------------------------------------------------

/// Everything that ends the server early: one line on stderr (prefixed
/// `tcp-server: `), exit status 1.
#[derive(Debug)]
enum Failure {
    /// Bad command line.
    Usage(String),
    /// `bind` (or `listen`) failed: ADDR and PORT as given on the command line.
    Bind { addr: String, port: String, errno: Errno },
    /// Any other failed system call.
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
/// `eprintln!`, which panics when stderr is gone.
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "tcp-server: {message}");
}

// ---------------------------------------------------------------------------
// Setting up: socket, SO_REUSEADDR, bind, listen, getsockname
// ---------------------------------------------------------------------------

/// What the command line asks for.
struct Options {
    /// The address to bind, parsed.
    addr: IpAddr,
    /// The port to bind, parsed (0: the OS chooses).
    port: u16,
    /// ADDR exactly as given (or the default), for the bind error message.
    addr_text: String,
    /// PORT exactly as given (or the default), for the bind error message.
    port_text: String,
}

impl Options {
    fn bind_failed(&self, errno: Errno) -> Failure {
        Failure::Bind { addr: self.addr_text.clone(), port: self.port_text.clone(), errno }
    }
}

/// Creates the listening socket (slides "Ablauf: Server", "Socket erzeugen",
/// "Passives Warten").
///
/// * The address family follows the address: an IPv6 address needs an
///   AF_INET6 socket; an AF_INET socket (the slide's) cannot bind `::1`.
/// * `SO_REUSEADDR` *before* `bind`. Without it `bind` fails with EADDRINUSE
///   for about a minute after a server on this port has gone: the
///   connections it closed first wait in TIME_WAIT and still occupy the
///   port. (std's `TcpListener` sets it for you; a nix socket does not.)
/// * `SockaddrStorage::from(SocketAddr)` builds the `sockaddr_in` or
///   `sockaddr_in6` for us, port already in network byte order (`htons`).
/// * `listen` failing with EADDRINUSE is a bind conflict too (two servers
///   may both `bind` with SO_REUSEADDR, but only one may `listen`).
fn listen_on(options: &Options) -> Result<OwnedFd, Failure> {
    let family = match options.addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let listener = socket(family, SockType::Stream, SockFlag::empty(), None).map_err(|e| Failure::Sys("socket", e))?;
    setsockopt(&listener, sockopt::ReuseAddr, &true).map_err(|e| Failure::Sys("setsockopt(SO_REUSEADDR)", e))?;
    let address = SockaddrStorage::from(SocketAddr::new(options.addr, options.port));
    bind(listener.as_raw_fd(), &address).map_err(|e| options.bind_failed(e))?;
    let backlog = Backlog::new(BACKLOG).map_err(|e| Failure::Sys("listen", e))?;
    listen(&listener, backlog).map_err(|e| options.bind_failed(e))?;
    Ok(listener)
}

/// Prints `listening on SOCKADDR` with the address the socket is really
/// bound to (slide "Weitere Funktionen": `getsockname` is "nützlich für
/// dynamisch vom Betriebssystem zugewiesene Ports" — with `--port 0` only
/// the kernel knows the port). `SockaddrStorage`'s `Display` writes
/// `127.0.0.1:43567` or `[::1]:43567`.
///
/// Flushed at once: whoever started us waits for this line before
/// connecting.
fn announce(listener: &OwnedFd) -> Result<(), Failure> {
    let bound: SockaddrStorage = getsockname(listener.as_raw_fd()).map_err(|e| Failure::Sys("getsockname", e))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {bound}").and_then(|()| stdout.flush()).map_err(Failure::Stdout)
}

/// SIGINT and SIGTERM end the server with status 0, whatever the threads
/// are doing.
///
/// Blocks both signals in the calling (main) thread — every thread started
/// afterwards inherits the mask — and starts a thread that waits for them
/// with `sigwait`. Must run before any worker thread exists: a signal is
/// delivered to *some* thread that does not block it, and with the default
/// disposition that kills the whole process (by SIGTERM, not exit 0).
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
// Serving: accept, one thread per connection, echo
// ---------------------------------------------------------------------------

/// Accepts connections forever, one worker thread each (slide "Verbindungen
/// (TCP)": `accept` "liefert einen neuen Socket-Deskriptor für diese
/// Verbindung", the listening socket "bleibt zum Annehmen weiterer
/// Verbindungen").
fn accept_loop(listener: OwnedFd) -> Result<(), Failure> {
    loop {
        let conn = match accept(&listener) {
            Ok(conn) => conn,
            Err(errno) => {
                accept_failed(errno)?;
                continue;
            }
        };
        // The closure takes `conn` along: the worker owns the descriptor
        // now. If the thread cannot be started, the closure is dropped and
        // with it `conn`: that client is closed, the server goes on.
        if let Err(e) = thread::Builder::new().spawn(move || serve(conn)) {
            diagnose(&format!("cannot start a thread for a connection: {e}"));
        }
    }
}

/// Decides whether a failed `accept` ends the server.
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

/// One connection, in its own thread: greeting, echo, close.
///
/// A client that resets or closes without reading shows up as EPIPE or
/// ECONNRESET: that is the client's business, not an error of ours, so we
/// end this connection quietly. Other errors are reported; the server goes
/// on either way.
fn serve(conn: OwnedFd) {
    match echo(conn.as_raw_fd()) {
        Ok(()) | Err(Errno::EPIPE | Errno::ECONNRESET) => {}
        Err(errno) => diagnose(&format!("connection: {errno}")),
    }
    // close(fd): the client's `recv` returns 0 (EOF), and the descriptor
    // is free again.
    drop(conn);
}

/// Sends the greeting, then echoes every byte until the client half-closes
/// (`recv` returns 0).
///
/// Bytes, not text: whatever arrives goes back unchanged — no `String`, no
/// terminating NUL like the slide's C strings.
fn echo(fd: RawFd) -> nix::Result<()> {
    send_all(fd, GREETING)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match recv(fd, &mut buf, MsgFlags::empty()) {
            Ok(0) => return Ok(()), // the client half-closed: nothing more will come
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        };
        send_all(fd, &buf[..n])?;
    }
}

/// Sends all of `bytes` (slide "Senden von Daten").
///
/// `send` may send fewer bytes than asked (a *short write*: when a signal
/// interrupts it after some bytes went out, or on a non-blocking socket
/// whose buffer is full) and returns how many; the rest must be sent again.
///
/// `MSG_NOSIGNAL`: a send to a connection the client has reset or closed
/// returns EPIPE instead of raising SIGPIPE, which would kill the whole
/// server (slide "Pipes, Sockets und Prozesse").
fn send_all(fd: RawFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match send(fd, bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

enum Command {
    Run(Options),
    Help,
}

/// Parses `[--bind ADDR] [--port PORT]` (also `--bind=ADDR`, `--port=PORT`)
/// and `--help`.
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
/// then the main loop.
fn run(options: &Options) -> Result<(), Failure> {
    let listener = listen_on(options)?;
    stop_on_signals()?;
    announce(&listener)?;
    accept_loop(listener)
}

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

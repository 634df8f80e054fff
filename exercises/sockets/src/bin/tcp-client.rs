//! `tcp-client` — the ipc-lab exercise `sockets`, client half. **This is a
//! file you edit** (the other one is `tcp-server.rs` next to it; do the
//! server first).
//!
//! Read `exercises/sockets/README.md` first; grade with
//! `cargo grade sockets`.
//!
//! ```text
//! tcp-client HOST PORT        e.g.  tcp-client localhost 5000
//!                                   tcp-client ::1 43567
//! ```
//!
//! The slide "Beispiel: Client", grown up. The slide's client connects to
//! 127.0.0.1:5000 and prints what it receives. Yours resolves any HOST,
//! IPv4 or IPv6 (slides "Namensauflösung", "getaddrinfo"), and works like a
//! small `nc`: stdin goes to the server and the server's data goes to
//! stdout — **at the same time**. The steps are the slide "Anlauf: Client":
//! `socket()`, `connect()`, `read/write()`, `close()` — plus `shutdown()`
//! (slide "Verbindungen (TCP)") for the half-close.
//!
//! What is done for you: argument parsing ([`parse_args`]), error messages
//! and exit codes ([`Failure`], [`diagnose`]), [`send_all`] (the loop you
//! wrote in the server) and [`write_all`] for stdout, [`run`] and `main`.
//! What you write: every function whose body is `todo!()`, TODO 1–5:
//!
//! 1. [`connect_to`] — resolve HOST, try each address;
//! 2. [`connect_one`] — `socket` + `connect`;
//!    now `cargo grade sockets --check client-refused` should pass;
//! 3. [`copy_both_ways`] — start the upload thread, run the download;
//! 4. [`upload`] — stdin → socket, then `shutdown(Write)`;
//! 5. [`download`] — socket → stdout until the server closes.
//!
//! Rules of the game (the grader checks them from outside):
//! - stdout carries exactly the bytes the server sent, nothing else;
//! - exit 0 as soon as the server has closed and everything it sent is on
//!   stdout, even if stdin is still open;
//! - never `println!`, never `unwrap()`/`expect()` on a system call: a panic
//!   fails the check;
//! - socket calls through `nix::sys::socket` (`socket`, `connect`, `send`,
//!   `recv`, `shutdown`; all but `socket` take a `RawFd`:
//!   `fd.as_raw_fd()`), stdin with `nix::unistd::read`.
//!
//! Each TODO's doc comment says what it must achieve and why. Stuck? Ask for
//! a hint: `cargo grade --hint sockets` (the concept), then `--level 2` (the
//! API) and `--level 3` (nearly the code); `--check ID` for one check.

// Lets the untouched skeleton compile without warnings.
// Delete this line when you are done: the warnings it hides are useful.
#![allow(unused_variables, unused_mut, unused_imports, dead_code)]

use std::ffi::OsString;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

use nix::errno::Errno;
use nix::sys::socket::{
    connect, recv, send, shutdown, socket, AddressFamily, MsgFlags, Shutdown, SockFlag, SockType, SockaddrStorage,
};
use nix::unistd::{read, write};

/// How many bytes to read or receive at once.
const CHUNK: usize = 64 * 1024;

const USAGE: &str = "usage: tcp-client HOST PORT";

// ---------------------------------------------------------------------------
// Errors and exit codes (Provided.)
// ---------------------------------------------------------------------------

/// Everything that ends the client with status 1: one line on stderr
/// (prefixed `tcp-client: `). (Provided.)
#[derive(Debug)]
enum Failure {
    /// Bad command line.
    Usage(String),
    /// No address of HOST accepted the connection: HOST and PORT as given,
    /// and why the last attempt failed. [`run`] makes it from
    /// [`connect_to`]'s error.
    Connect { host: String, port: String, reason: String },
    /// Any other failed system call: `Failure::Sys("recv", errno)`.
    Sys(&'static str, Errno),
    /// Writing to stdout failed (e.g. EPIPE: nobody reads our output).
    Stdout(Errno),
    /// The upload thread could not be started.
    Thread(std::io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(why) => write!(f, "{why}; {USAGE}"),
            Failure::Connect { host, port, reason } => write!(f, "cannot connect to {host}:{port}: {reason}"),
            Failure::Sys(what, errno) => write!(f, "{what}: {errno}"),
            Failure::Stdout(errno) => write!(f, "writing stdout: {errno}"),
            Failure::Thread(e) => write!(f, "cannot start the upload thread: {e}"),
        }
    }
}

/// One diagnostic line on stderr (never panics, unlike `eprintln!`).
/// (Provided.)
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "tcp-client: {message}");
}

// ---------------------------------------------------------------------------
// Connecting — your part starts here
// ---------------------------------------------------------------------------

/// TODO 1 — resolve `host` and connect to the first of its addresses that
/// accepts (slides "Anlauf: Client", "Namensauflösung", "getaddrinfo").
/// Returns the connected socket, or the REASON for the message
/// `tcp-client: cannot connect to HOST:PORT: REASON`.
///
/// What it must achieve: names (`localhost`) and literals (`127.0.0.1`,
/// `::1`) both work (`client-names`); every address of the name is tried in
/// turn until one accepts; when none does, the reason is the last attempt's
/// error (e.g. `ECONNREFUSED: Connection refused`, `client-refused`), or a
/// text of your own if the name had no address at all.
///
/// Why try them all? A name can have several addresses and the server may
/// listen on only one of them — say on 127.0.0.1 while `localhost` also
/// resolves to `::1`. Trying only the first one is the classic bug.
///
/// Look up: `std::net::ToSocketAddrs` (std's `getaddrinfo`; nix has none),
/// `man 3 getaddrinfo`; [`connect_one`].
fn connect_to(host: &str, port: u16) -> Result<OwnedFd, String> {
    todo!("TODO 1: resolve and connect")
}

/// TODO 2 — a socket connected to one address (slides "Socket erzeugen",
/// "Verbindungen (TCP)").
///
/// What it must achieve: a TCP socket of the address's family — the slide's
/// hard-wired `AF_INET` cannot reach `::1` — connected to `address`, or the
/// error. A socket whose `connect` failed cannot be used again: the next
/// address needs a new one (and the failed one must be closed).
///
/// Look up: `nix::sys::socket::{socket, connect, AddressFamily, SockType,
/// SockFlag, SockaddrStorage}`, `man 2 connect`. A `SocketAddr` converts
/// into a `SockaddrStorage`, port already in network byte order.
fn connect_one(address: SocketAddr) -> nix::Result<OwnedFd> {
    todo!("TODO 2: socket and connect")
}

// ---------------------------------------------------------------------------
// Copying both ways at once — your part
// ---------------------------------------------------------------------------

/// TODO 3 — copy stdin to the socket and the socket to stdout *at the same
/// time*; return what the download side returns.
///
/// Why at the same time? Think of an echo server and 16 MiB on stdin. If
/// you send everything first and read afterwards, the server's echo fills
/// your receive buffer (you do not read), so the server's `send` blocks, so
/// it stops reading, so its receive buffer fills, so *your* `send` blocks —
/// forever. Both sides wait for each other. Loopback buffers hold a few MB
/// per direction: small tests pass, `client-duplex` hangs. With one thread
/// per direction, each may block as long as it likes.
///
/// What it must achieve: [`upload`] runs in a second thread, [`download`]
/// in this one, both on the same socket, which is closed when neither needs
/// it any more. The program is done when the server has closed and
/// everything it sent is on stdout — even if stdin is still open and the
/// upload side is still waiting for it (`client-server-closes-first`):
/// returning from `main` ends the process, all threads included, so do not
/// wait for the upload thread.
///
/// Look up: `std::thread::Builder`; `std::sync::Arc` (two owners of one
/// `OwnedFd`).
fn copy_both_ways(sock: OwnedFd) -> Result<(), Failure> {
    todo!("TODO 3: both directions at once")
}

/// TODO 4 — stdin → socket; at stdin EOF, half-close. Runs in its own
/// thread, so it reports problems itself ([`diagnose`]) and returns nothing.
///
/// What it must achieve: every byte of stdin goes to the server, in order;
/// at the end of stdin, the server learns "no more data from me" while this
/// client can still *receive* its answer (`client-half-close`). A server
/// that has gone (EPIPE, ECONNRESET) ends the upload quietly — the download
/// side notices the end; other errors are one line on stderr. A read error
/// on stdin is reported and treated like its end.
///
/// The half-close (slide "Verbindungen (TCP)": `shutdown` — "Lokal: nicht
/// mehr senden/empfangen"): `close` would end both directions; doing
/// nothing leaves the server waiting for more data forever.
///
/// Look up: `nix::unistd::read`; [`send_all`]; `nix::sys::socket::{shutdown,
/// Shutdown}`, `man 2 shutdown` (and which error it gives when the server
/// is gone already).
fn upload(sock: RawFd) {
    todo!("TODO 4: stdin to the socket, then half-close")
}

/// TODO 5 — socket → stdout until the server closes.
///
/// What it must achieve: stdout gets exactly the bytes the server sent, as
/// they came; when the server has closed — or reset — the connection, the
/// download is over and returns `Ok(())`. A failed write to stdout is
/// [`Failure::Stdout`]; another receive error is `Failure::Sys`.
///
/// Pitfall: the slide's `rb[n] = '\0'; printf ("%s\n", rb);` corrupts the
/// bytes twice: `%s` stops at the first NUL byte, and `\n` adds a newline
/// after every `recv` — and `recv` boundaries are arbitrary. In Rust the
/// same bug is printing a `String` made from the bytes. Use the provided
/// [`write_all`].
///
/// Look up: `nix::sys::socket::recv`, `man 2 recv`.
fn download(sock: RawFd) -> Result<(), Failure> {
    todo!("TODO 5: the socket to stdout")
}

/// Sends all of `bytes`, looping over short writes; `MSG_NOSIGNAL` turns
/// SIGPIPE into EPIPE — the loop you wrote as the server's `send_all`.
/// (Provided.)
fn send_all(sock: RawFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match send(sock, bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// Writes all of `bytes` to `fd` (stdout), looping over short writes.
/// Straight to the descriptor with `nix::unistd::write`: std's `stdout()`
/// buffers up to the next newline, and binary data has few of those.
/// (Provided.)
fn write_all(fd: BorrowedFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Command line (Provided.)
// ---------------------------------------------------------------------------

enum Command {
    Run { host: String, port: u16, port_text: String },
    Help,
}

/// Parses `HOST PORT` and `--help`. (Provided.)
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Failure> {
    let args: Vec<String> = args.into_iter().map(|arg| arg.to_string_lossy().into_owned()).collect();
    match args.as_slice() {
        [help] if help == "-h" || help == "--help" => Ok(Command::Help),
        [host, port] => {
            let number = port
                .parse()
                .map_err(|_| Failure::Usage(format!("PORT must be a number from 0 to 65535, not {port:?}")))?;
            Ok(Command::Run { host: host.clone(), port: number, port_text: port.clone() })
        }
        _ => Err(Failure::Usage("expected HOST and PORT".into())),
    }
}

/// Connects (`[::1]` is accepted for `::1`), then copies. (Provided.)
fn run(host: &str, port: u16, port_text: &str) -> Result<(), Failure> {
    let name = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let sock = connect_to(name, port).map_err(|reason| Failure::Connect {
        host: host.to_string(),
        port: port_text.to_string(),
        reason,
    })?;
    copy_both_ways(sock)
}

/// (Provided.)
fn main() -> ExitCode {
    let result = parse_args(std::env::args_os().skip(1)).and_then(|command| match command {
        Command::Run { host, port, port_text } => run(&host, port, &port_text),
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

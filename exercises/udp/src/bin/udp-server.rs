//! `udp-server` — the ipc-lab exercise `udp`, server half. **This is a file
//! you edit** (the other one is `udp-client.rs` next to it; do the server
//! first).
//!
//! Read `exercises/udp/README.md` first; grade with
//! `cargo grade udp --check server-`.
//!
//! ```text
//! udp-server [--bind ADDR] [--port PORT]   (defaults 127.0.0.1 and 5001;
//!                                           PORT 0: the OS picks a free port)
//! ```
//!
//! A counter service over UDP (slide "Socket erzeugen": „SOCK_DGRAM: UDP =
//! nachrichtenbasierte Kommunikation“ — „Achtung: UDP ist unzuverlässig!“).
//! Every datagram is a 4-byte sequence number in network byte order, then
//! the payload:
//!
//! ```text
//! ADD N  (0 ≤ N < 2^31)  ->  OK TOTAL    N added to the total of the sender's address
//! GET                    ->  OK TOTAL
//! anything else          ->  ERR unknown command
//! ```
//!
//! The reply carries the request's sequence number and goes back to the
//! address the request came from. Each request is executed **at most
//! once**, although clients send requests again when a reply gets lost.
//!
//! What is done for you: argument parsing ([`parse_args`], [`Options`]),
//! error messages and exit codes ([`Failure`], [`diagnose`]), printing the
//! address ([`announce`]), SIGINT/SIGTERM as a descriptor
//! ([`termination_signals`]), parsing a payload ([`Request::parse`]), and
//! [`run`]/`main`. What you write, in this order:
//!
//! 1. [`open_socket`] — the datagram socket, bound to the port;
//!    now `cargo grade udp --check server-bind-conflict` should pass;
//! 2. [`Peer`] — what the server remembers per sender address;
//! 3. [`Counter::handle`] — one datagram in, the reply (or none) out;
//! 4. [`serve`] — the main loop: one `poll`, `recvfrom`, `sendto`.
//!
//! Rules of the game (the grader checks them from outside):
//! - one thread, and all waiting happens in one `poll` (or `select`);
//! - never `println!`, never `unwrap()`/`expect()` on a system call: a
//!   panic fails the check;
//! - socket calls through `nix::sys::socket`; they take a `RawFd`
//!   (`sock.as_raw_fd()`) except `socket` itself.

// Lets the untouched skeleton compile without warnings.
// Delete this line when you are done: the warnings it hides are useful.
#![allow(unused_variables, unused_mut, unused_imports, dead_code)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::ExitCode;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    bind, getsockname, recvfrom, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrStorage,
};

/// The contract's default port.
const DEFAULT_PORT: u16 = 5001;

/// Bytes of the sequence number in front of every payload.
const SEQ_LEN: usize = 4;

/// The largest UDP datagram (65535 minus the 8-byte UDP and 20-byte IPv4
/// headers) fits: one `recvfrom` never cuts a datagram off.
const MAX_DATAGRAM: usize = 65_536;

/// `ADD N` takes N below 2^31.
const ADD_LIMIT: u64 = 1 << 31;

const USAGE: &str = "usage: udp-server [--bind ADDR] [--port PORT]";

// ---------------------------------------------------------------------------
// Errors and exit codes (Provided.)
// ---------------------------------------------------------------------------

/// Everything that ends the server early: one line on stderr (prefixed
/// `udp-server: `), exit status 1. (Provided.)
#[derive(Debug)]
enum Failure {
    /// Bad command line.
    Usage(String),
    /// `bind` failed: ADDR and PORT as given on the command line.
    Bind { addr: String, port: String, errno: Errno },
    /// Any other failed system call.
    Sys(&'static str, Errno),
    /// Writing the `listening on` line failed.
    Stdout(std::io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(why) => write!(f, "{why}; {USAGE}"),
            Failure::Bind { addr, port, errno } => write!(f, "cannot bind {addr}:{port}: {}", errno.desc()),
            Failure::Sys(what, errno) => write!(f, "{what}: {}", errno.desc()),
            Failure::Stdout(e) => write!(f, "writing stdout: {e}"),
        }
    }
}

/// One diagnostic line on stderr. `writeln!` with the result ignored, not
/// `eprintln!`, which panics when stderr is gone. (Provided.)
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "udp-server: {message}");
}

// ---------------------------------------------------------------------------
// Setting up: socket, bind, getsockname, signals
// ---------------------------------------------------------------------------

/// What the command line asks for. (Provided.)
struct Options {
    addr: IpAddr,
    port: u16,
    /// ADDR and PORT exactly as given (or the defaults), for the bind error.
    addr_text: String,
    port_text: String,
}

/// TODO 1 — create the server's datagram socket and register the port
/// (slides "Socket erzeugen", "Passives Warten", "Ports (2)": a passive
/// process „registriert sich auf einer Portnummer“).
///
/// What it must achieve: a socket of the kind the slide calls SOCK_DGRAM, in the address
/// family that matches `options.addr` (an IPv6 address needs an IPv6
/// socket), non-blocking and close-on-exec, bound to `options.addr` and
/// `options.port`. That is all: „UDP: fertig“ — no `listen`, no `accept`,
/// no connections. Every client sends to this one socket.
///
/// Why non-blocking: the server has one thread; if `recvfrom` or `sendto`
/// could block, one client could stop the service for everybody ([`serve`]
/// only reads when `poll` says there is something).
///
/// Errors: a failed `bind` (the port is taken, the address is not one of
/// this machine's) must become `Failure::Bind` with ADDR and PORT *as
/// given* — that prints the contract's `udp-server: cannot bind ADDR:PORT:
/// REASON`, and `main` exits 1. Any other failed call is `Failure::Sys`.
///
/// Pitfall: do not set SO_REUSEADDR. TCP servers need it because of
/// TIME_WAIT; UDP has no TIME_WAIT, and on a UDP socket the option lets a
/// second server bind the same port — `server-bind-conflict` expects the
/// second one to fail.
///
/// Look up: `nix::sys::socket::{socket, bind, AddressFamily, SockType,
/// SockFlag, SockaddrStorage}` (a `SockaddrStorage` can be made from a std
/// `SocketAddr`, port already in network byte order); `man 2 socket`,
/// `man 2 bind`, `man 7 udp`.
fn open_socket(options: &Options) -> Result<OwnedFd, Failure> {
    todo!("TODO 1: the bound datagram socket")
}

/// Prints `listening on SOCKADDR` with the address the socket is really
/// bound to (`getsockname`: "nützlich für dynamisch vom Betriebssystem
/// zugewiesene Ports"), and flushes: clients wait for this line.
/// (Provided.)
fn announce(sock: &OwnedFd) -> Result<(), Failure> {
    let bound: SockaddrStorage = getsockname(sock.as_raw_fd()).map_err(|e| Failure::Sys("getsockname", e))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {bound}").and_then(|()| stdout.flush()).map_err(Failure::Stdout)
}

/// SIGINT and SIGTERM as a descriptor: blocks both (so their default action,
/// death by the signal, never happens) and returns a `signalfd` that is
/// readable while one of them is pending. Must run before `listening on`
/// is printed: whoever reads that line may send SIGTERM at once.
/// (Provided.)
///
/// Put it into your `poll` next to the socket: when it is readable, a stop
/// signal has arrived (you need not read it; just return). This way there
/// is no signal handler, and no moment in which a signal could slip in
/// between "check a flag" and "go to sleep" (the lost wake-up of the `shm`
/// exercise).
fn termination_signals() -> Result<SignalFd, Failure> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    mask.thread_block().map_err(|e| Failure::Sys("sigprocmask", e))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(|e| Failure::Sys("signalfd", e))
}

// ---------------------------------------------------------------------------
// The service: commands, and at-most-once per sender address
// ---------------------------------------------------------------------------

/// A request payload, parsed. (Provided.)
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Add(u64),
    Get,
    Unknown,
}

impl Request {
    /// `ADD N` (N decimal digits only, leading zeros allowed, below 2^31),
    /// `GET`, or anything else — exactly, with no newline or spaces around.
    /// (Provided.)
    fn parse(payload: &[u8]) -> Request {
        if payload == b"GET" {
            return Request::Get;
        }
        let Some(digits) = payload.strip_prefix(b"ADD ") else {
            return Request::Unknown;
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Request::Unknown;
        }
        let value = digits.iter().try_fold(0u64, |n, d| {
            let n = n * 10 + u64::from(d - b'0');
            (n < ADD_LIMIT).then_some(n)
        });
        value.map_or(Request::Unknown, Request::Add)
    }
}

/// TODO 2 — what the server remembers about one sender address: add the
/// fields.
///
/// Three jobs need memory, per address:
/// - the address's running total (`ADD` adds to it, `GET` reads it);
/// - recognising a *retransmission*: the same sequence number as the last
///   request executed for this address. The client sent it again because
///   our reply (or its request) was lost; it must get exactly the reply it
///   missed, and the request must not be executed a second time;
/// - recognising an *old* request: a smaller sequence number than the last
///   one seen — a late copy still wandering through the network.
///
/// `#[derive(Default)]` then gives the state of an address never seen
/// before (total 0, nothing executed yet). Think about what "nothing
/// executed yet" looks like: the first request of an address may carry any
/// sequence number, also 0.
#[derive(Default)]
struct Peer {}

/// The state of the service: one [`Peer`] per sender address (IP and port,
/// as `recvfrom` reports it). (Provided.)
///
/// `SockaddrStorage` can be a `HashMap` key (it is `Hash` and `Eq`), and it
/// is what `sendto` takes to answer. The map grows with every new address:
/// the contract asks for state for at least 1024 of them.
#[derive(Default)]
struct Counter {
    peers: HashMap<SockaddrStorage, Peer>,
}

impl Counter {
    /// TODO 3 — handle one datagram from `from`; return the whole reply
    /// datagram to send back, or `None` for no reply.
    ///
    /// What it must achieve (the first case that applies decides):
    /// - shorter than a sequence number ([`SEQ_LEN`] bytes): not a request
    ///   — `None`;
    /// - the same sequence number as the last request *executed* for this
    ///   address: the reply stored for it, unchanged — nothing is executed;
    /// - a smaller one: `None`, and nothing changes;
    /// - otherwise execute it ([`Request::parse`] the payload): `ADD N`
    ///   adds N to this address's total and answers `OK TOTAL`, `GET`
    ///   answers `OK TOTAL`, anything else `ERR unknown command`. The reply
    ///   is the request's four sequence-number bytes followed by that text.
    ///   Remember it (an `ERR` reply, too: that request was executed) and
    ///   return it.
    ///
    /// Why: „UDP ist unzuverlässig“ — a client that gets no reply sends the
    /// same request again, and it cannot know whether the request or the
    /// reply was lost. `ADD 5` sent twice because the first reply was lost
    /// must leave the total at 5: "at most once". The sequence number is what
    /// makes this possible, and only per address: two clients both start at
    /// sequence number 1.
    ///
    /// Pitfalls:
    /// - "Smaller" is a comparison of numbers, so turn the four bytes into
    ///   a number the way they were written — network byte order, big-endian
    ///   (slide "Konvertierungsfunktionen (2)": `ntohl`). Read in the CPU's
    ///   order (little-endian on x86), 256 (`00 00 01 00`) looks smaller than
    ///   255 (`00 00 00 ff`).
    /// - Never index past the end of a short datagram: a panic ends the
    ///   service for every client.
    /// - One total (or one "last sequence number") for everybody instead of
    ///   one per address is the classic bug `server-per-address` catches.
    ///
    /// Look up: `HashMap::entry` (`or_default`), `u32::from_be_bytes`,
    /// `<[u8]>::split_first_chunk`, `u64::saturating_add`.
    fn handle(&mut self, from: SockaddrStorage, datagram: &[u8]) -> Option<Vec<u8>> {
        todo!("TODO 3: one datagram in, the reply (or none) out")
    }
}

// ---------------------------------------------------------------------------
// The main loop: one poll over the socket and the signals
// ---------------------------------------------------------------------------

/// TODO 4 — serve datagrams until SIGINT or SIGTERM; then return `Ok(())`
/// (`main` exits 0).
///
/// What it must achieve:
/// - every datagram that arrives reaches [`Counter::handle`] whole, with
///   the address it came from, and the reply (if any) goes back to exactly
///   that address;
/// - a stop signal (the `signals` descriptor turns readable) ends the
///   server promptly — also while no datagram comes;
/// - idle, the server sleeps in the kernel and uses no CPU.
///
/// Errors: EINTR and EAGAIN are harmless (go round again). A failed
/// `recvfrom` or `sendto` ends nothing: [`diagnose`] it and go on — „UDP
/// ist unzuverlässig“ anyway, and a lost reply is repaired by the client's
/// retransmission, which gets the stored reply. Only a failing `poll` is
/// fatal (`Failure::Sys`).
///
/// Why one `poll` over both: blocking in `recvfrom` alone would not notice
/// SIGTERM until the next datagram; `poll` watches both at once (slide
/// "I/O Multiplexing (poll)").
///
/// Pitfalls:
/// - A buffer smaller than the datagram cuts it off, and the rest is
///   *discarded*, not kept for the next call: a datagram is read whole or
///   not at all (slide "Empfangen von Daten", nachrichtenbasiert). Requests
///   can be 4 + 1400 bytes long.
/// - `recvfrom` returning 0 is an empty datagram, not an end of file: UDP
///   has no connections to end.
/// - `PollTimeout::ZERO` (return at once) turns the loop into busy
///   waiting: `server-idle-signals` measures the CPU time.
///
/// Look up: `nix::poll::{poll, PollFd, PollFlags, PollTimeout}`,
/// `PollFd::any`, `nix::sys::socket::{recvfrom, sendto}` (`recvfrom` is
/// generic in the address type: ask for a `SockaddrStorage`);
/// `man 2 poll`, `man 2 recvfrom`, `man 2 sendto`.
fn serve(sock: &OwnedFd, signals: &SignalFd) -> Result<(), Failure> {
    todo!("TODO 4: the main loop")
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
                let Some(value) = inline.or_else(|| args.next()) else {
                    return Err(Failure::Usage(format!("{name} needs a value")));
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
    let sock = open_socket(options)?;
    let signals = termination_signals()?;
    announce(&sock)?;
    serve(&sock, &signals)
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

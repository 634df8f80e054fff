//! `udp-client` — the ipc-lab exercise `udp`, client half. **This is a file
//! you edit** (the other one is `udp-server.rs` next to it).
//!
//! Read `exercises/udp/README.md` first; grade with
//! `cargo grade udp --check client-`.
//!
//! ```text
//! udp-client HOST PORT [--timeout-ms T] [--retries R]    (defaults 200 and 5)
//! ```
//!
//! Each line of stdin (without its newline) is one request to the server:
//! sequence number 1, 2, 3, … as 4 bytes in network byte order, then the
//! line. The client waits for the reply carrying that number and prints its
//! payload and a newline. „Achtung: UDP ist unzuverlässig!“: when no reply
//! comes within T ms, it sends the same datagram again and waits twice as
//! long (T, 2T, 4T, …) — the slide "Timeouts (1)": "maximale Wartezeit auf
//! Antwort, dann erneut versuchen". After R retransmissions without a
//! reply: `udp-client: no reply to request SEQ after R retransmissions` on
//! stderr, exit 3. After the last reply (or at once for empty input): exit 0.
//!
//! What is done for you: argument parsing ([`parse_args`], [`Options`]),
//! error messages and exit codes ([`Failure`], [`diagnose`]), sending one
//! datagram ([`transmit`]), printing a reply ([`print_reply`]), reading
//! stdin line by line ([`run`]) and `main`. What you write, in this order:
//!
//! 1. [`connect_to`] — resolve HOST, a datagram socket, `connect`;
//! 2. [`encode`] — the request datagram;
//!    now a server that answers at once gets its requests (try it against
//!    your `udp-server`);
//! 3. [`poll_timeout`] — the time left until a deadline, for `poll`;
//! 4. [`await_reply`] — wait for one reply until a deadline, ignoring the
//!    rest;
//! 5. [`request`] — transmit, wait, retransmit with a doubled timeout, give
//!    up.
//!
//! Rules of the game (the grader checks them from outside):
//! - all waiting is one `poll` (or `select`) with a timeout — no busy loop,
//!   no sleeping in steps; a retransmission is never early;
//! - stdout carries exactly the replies' payloads, one per line;
//! - never `println!`, never `unwrap()`/`expect()` on a system call.

// Lets the untouched skeleton compile without warnings.
// Delete this line when you are done: the warnings it hides are useful.
#![allow(unused_variables, unused_mut, unused_imports, dead_code)]

use std::ffi::OsString;
use std::io::{BufRead as _, Write as _};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{connect, recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrStorage};

/// Bytes of the sequence number in front of every payload.
const SEQ_LEN: usize = 4;

/// Big enough for any UDP datagram: `recv` never cuts a reply off.
const MAX_DATAGRAM: usize = 65_536;

/// `--timeout-ms` and `--retries` when not given.
const DEFAULT_TIMEOUT_MS: u64 = 200;
const DEFAULT_RETRIES: u32 = 5;

/// The doubling stops here (a year): `Instant + Duration` must not
/// overflow for absurd `--retries`.
const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

const USAGE: &str = "usage: udp-client HOST PORT [--timeout-ms T] [--retries R]";

// ---------------------------------------------------------------------------
// Errors and exit codes (Provided.)
// ---------------------------------------------------------------------------

/// Everything that ends the client early: one line on stderr (prefixed
/// `udp-client: `); exit status 3 for [`Failure::NoReply`], 1 otherwise.
/// (Provided.)
#[derive(Debug)]
enum Failure {
    /// Bad command line.
    Usage(String),
    /// HOST:PORT has no address.
    Resolve { host: String, port: u16, reason: String },
    /// Any failed system call.
    Sys(&'static str, Errno),
    /// Reading stdin or writing stdout failed.
    Io(&'static str, std::io::Error),
    /// No reply to request `seq` after `retries` retransmissions.
    NoReply { seq: u32, retries: u32 },
}

impl Failure {
    fn exit_status(&self) -> u8 {
        match self {
            Failure::NoReply { .. } => 3,
            _ => 1,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(why) => write!(f, "{why}; {USAGE}"),
            Failure::Resolve { host, port, reason } => write!(f, "cannot resolve {host}:{port}: {reason}"),
            Failure::Sys(what, errno) => write!(f, "{what}: {}", errno.desc()),
            Failure::Io(what, e) => write!(f, "{what}: {e}"),
            Failure::NoReply { seq, retries } => write!(f, "no reply to request {seq} after {retries} retransmissions"),
        }
    }
}

/// One diagnostic line on stderr. `writeln!` with the result ignored, not
/// `eprintln!`, which panics when stderr is gone. (Provided.)
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "udp-client: {message}");
}

// ---------------------------------------------------------------------------
// The socket
// ---------------------------------------------------------------------------

/// TODO 1 — resolve HOST:PORT and return a datagram socket *connected* to
/// the server's (first) address.
///
/// What it must achieve: find the address (nix has no `getaddrinfo`; std's
/// `ToSocketAddrs` is one, for names like `localhost` and for literals),
/// create a socket of the kind SOCK_DGRAM in that address's family, and
/// `connect` it to the address. Resolving fails or gives no address:
/// `Failure::Resolve`; a failed system call: `Failure::Sys`.
///
/// Why `connect` a UDP socket? It sends nothing and cannot fail because
/// nobody listens — it only fixes the peer (slide "Ports (2)": the OS gives
/// an active process a free port of its own, and the 5-tuple identifies
/// the conversation). From then on:
/// - `send`/`recv` need no address;
/// - the kernel delivers to this socket only datagrams *from that address*:
///   a stranger's datagram never reaches you (`client-ignores-others`
///   sends one with the right sequence number);
/// - an ICMP "port unreachable" — nobody listens on the server's port —
///   comes back to you as ECONNREFUSED (see [`await_reply`]).
///
/// The alternative is an unconnected socket with `sendto`/`recvfrom`: then
/// *you* must compare the sender address of every datagram with the
/// server's, and ECONNREFUSED never shows.
///
/// Look up: `std::net::ToSocketAddrs`, `nix::sys::socket::{socket, connect,
/// AddressFamily, SockType, SockFlag, SockaddrStorage}`; `man 2 connect`
/// (the paragraph on datagram sockets), `man 7 udp`.
fn connect_to(host: &str, port: u16) -> Result<OwnedFd, Failure> {
    todo!("TODO 1: a datagram socket connected to the server")
}

// ---------------------------------------------------------------------------
// One request: transmit, wait, retransmit with backoff
// ---------------------------------------------------------------------------

/// TODO 2 — the datagram for request `seq`: the sequence number as
/// [`SEQ_LEN`] bytes in network byte order, then the payload.
///
/// Why network byte order: "Daten im Netz werden immer 'Big Endian'
/// übertragen" (slide "Konvertierungsfunktionen (2)", `htonl`). The server
/// on the other side may run on any CPU; x86 keeps a `u32` little-endian in
/// memory, so request 1 copied as it lies in memory goes out as
/// `01 00 00 00` — request 16 777 216 to the server.
///
/// Look up: `u32::to_be_bytes` (and why not `to_ne_bytes`).
fn encode(seq: u32, payload: &[u8]) -> Vec<u8> {
    todo!("TODO 2: the request datagram")
}

/// Sends `datagram` once. (Provided.)
///
/// A pending ICMP error from an *earlier* transmission that no `recv` has
/// picked up yet is reported by `send` instead, as ECONNREFUSED, and this
/// datagram is not sent; reporting clears the error, so we send again. Any
/// ECONNREFUSED after that counts as a lost datagram.
fn transmit(sock: &OwnedFd, datagram: &[u8]) -> Result<(), Failure> {
    for _ in 0..2 {
        match send(sock.as_raw_fd(), datagram, MsgFlags::empty()) {
            Ok(_) => return Ok(()),
            Err(Errno::ECONNREFUSED | Errno::EINTR) => continue,
            Err(errno) => return Err(Failure::Sys("send", errno)),
        }
    }
    Ok(())
}

/// TODO 3 — the time from now until `deadline`, as a `poll` timeout in
/// whole milliseconds, **rounded up**; 0 if the deadline has passed; the
/// largest timeout `poll` takes if it is longer than that.
///
/// Why up: `poll` counts in milliseconds (slide "I/O Multiplexing (poll)").
/// Rounded down, 0.7 ms left becomes 0 — `poll` returns at once, nothing
/// has arrived, the deadline has not come, and the loop spins until it
/// does: busy waiting for the last fraction of every timeout. Rounded up,
/// `poll` may return a fraction of a millisecond *after* the deadline,
/// which is harmless — early would not be.
///
/// Why "from now", every time: the deadline is absolute (slide "Timeouts
/// (1)": "Abstand von frühestem Timeout zur aktuellen Zeit bestimmen; dieses
/// Delta an poll/select() als Timeout übergeben"). Time passes between two
/// calls.
///
/// Pitfall: `PollTimeout::try_from(Duration)` exists, but it rounds *down*.
///
/// Look up: `std::time::Instant` (the ways to get the time between two
/// instants, and what each does when the deadline has already passed),
/// `std::time::Duration`, `nix::poll::PollTimeout` (its conversions and
/// constants); `man 2 poll`.
fn poll_timeout(deadline: Instant) -> PollTimeout {
    todo!("TODO 3: the time left, for poll")
}

/// TODO 4 — wait until the reply to `seq` arrives (return its payload,
/// without the sequence number) or `deadline` passes (return `None`).
///
/// What it must achieve:
/// - the reply is the first datagram of at least [`SEQ_LEN`] bytes that
///   carries `seq` (read in network byte order); its payload is returned;
/// - anything else — a reply with another number (the late duplicate of a
///   reply to an earlier request), a datagram too short to carry a number
///   — is dropped, and the wait goes on towards the *same* deadline;
/// - `None` comes only when the clock (`Instant::now()`) has reached the
///   deadline — `poll` may come back earlier (a dropped datagram, a
///   signal, its own rounding);
/// - all waiting happens in **one** `poll` on the socket, with the time
///   left until the deadline ([`poll_timeout`]); reading a datagram
///   (into `buf`) never blocks.
///
/// Errors of `recv`: ECONNREFUSED means an ICMP "port unreachable" came
/// back for one of our transmissions — nobody listens on the server's port
/// right now. The server may be back in a moment: treat it as a lost
/// datagram, i.e. ignore it and keep waiting (`client-refused`). EAGAIN
/// and EINTR: keep waiting. Anything else: `Failure::Sys`.
///
/// Pitfalls:
/// - Passing the *whole* timeout to every `poll` restarts the wait after
///   each dropped datagram: a stream of stale datagrams then postpones the
///   retransmission forever (`client-ignores-others` sends one every 40 ms).
/// - `PollTimeout::ZERO` or sleeping in small steps between non-blocking
///   `recv`s is the slide's „(0, 0) == Busy Waiting“ (`client-idle-cpu`
///   measures the CPU time and the wake-ups).
/// - An ICMP error makes `poll` report the socket (POLLERR, even if you
///   asked only for POLLIN): call `recv` to pick the error up, or `poll`
///   reports it again and again.
///
/// Look up: `nix::poll::{poll, PollFd, PollFlags}`, `nix::sys::socket::recv`
/// with `MsgFlags::MSG_DONTWAIT`, `Errno::ECONNREFUSED`; `man 2 poll`,
/// `man 2 recv`, `man 7 udp` (section ERRORS).
fn await_reply(sock: &OwnedFd, seq: u32, deadline: Instant, buf: &mut [u8]) -> Result<Option<Vec<u8>>, Failure> {
    todo!("TODO 4: one reply, or the deadline")
}

/// TODO 5 — send request `seq` and return the reply's payload; after
/// `options.retries` retransmissions without a reply, give up with
/// `Failure::NoReply` (`main` prints the contract's message and exits 3).
///
/// What it must achieve: the datagram of request `seq` ([`encode`]) goes
/// out ([`transmit`]) at most `1 + options.retries` times, every time the
/// same bytes. After the first transmission the client waits
/// `options.timeout` for the reply ([`await_reply`]), after every
/// retransmission twice as long as the wait before; each wait is measured
/// from the end of its own transmission. The first reply is returned; when
/// the wait after the last transmission has passed too, it gives up.
///
/// Why the same datagram — the same sequence number: it is how the server
/// recognises a retransmission and answers it without executing it twice.
/// Why doubling (exponential backoff): if the server is slow or the network
/// congested, sending faster makes it worse.
///
/// Pitfalls:
/// - R *re*transmissions are R + 1 transmissions, and after the last one
///   comes a last full wait (2^R · T) before giving up: `client-gives-up`
///   counts the transmissions and times the exit.
/// - Never early: a deadline taken before the send, or a wall clock
///   (`SystemTime`, the slide's `gettimeofday`, jumps when someone sets the
///   time) can make a retransmission early. `Instant` is the monotonic
///   clock, CLOCK_MONOTONIC (`man 2 clock_gettime`).
/// - Doubling forever overflows: `Duration::saturating_mul`, and at most
///   [`MAX_WAIT`] (`Instant + Duration` panics on overflow).
fn request(sock: &OwnedFd, seq: u32, payload: &[u8], options: &Options) -> Result<Vec<u8>, Failure> {
    todo!("TODO 5: transmit, wait, retransmit with backoff")
}

/// Prints one reply's payload and a newline, at once (a reader waiting for
/// it must not wait for the next one). (Provided.)
fn print_reply(payload: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(payload)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Io("writing stdout", e))
}

// ---------------------------------------------------------------------------
// Command line and main loop (Provided.)
// ---------------------------------------------------------------------------

struct Options {
    host: String,
    port: u16,
    timeout: Duration,
    retries: u32,
}

enum Command {
    Run(Options),
    Help,
}

/// Parses `HOST PORT [--timeout-ms T] [--retries R]` (options also as
/// `--name=value`, anywhere) and `--help`. (Provided.)
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Failure> {
    let mut positional = Vec::new();
    let mut timeout_ms = DEFAULT_TIMEOUT_MS;
    let mut retries = DEFAULT_RETRIES;
    let mut args = args.into_iter().map(|arg| arg.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--timeout-ms" | "--retries" => {
                let Some(value) = inline.or_else(|| args.next()) else {
                    return Err(Failure::Usage(format!("{name} needs a value")));
                };
                let bad = || Failure::Usage(format!("{name} needs a whole number, not {value:?}"));
                if name == "--timeout-ms" {
                    timeout_ms = value.parse().ok().filter(|&t| t > 0).ok_or_else(bad)?;
                } else {
                    retries = value.parse().map_err(|_| bad())?;
                }
            }
            _ if name.starts_with("--") => return Err(Failure::Usage(format!("unexpected option {arg:?}"))),
            _ => positional.push(arg),
        }
    }
    let [host, port] = <[String; 2]>::try_from(positional)
        .map_err(|_| Failure::Usage("expected exactly two arguments, HOST and PORT".into()))?;
    let port =
        port.parse().map_err(|_| Failure::Usage(format!("PORT must be a number from 0 to 65535, not {port:?}")))?;
    Ok(Command::Run(Options { host, port, timeout: Duration::from_millis(timeout_ms), retries }))
}

/// One request per line of stdin, in order; each reply printed before the
/// next line is read. (Provided.)
fn run(options: &Options) -> Result<(), Failure> {
    let sock = connect_to(&options.host, options.port)?;
    let mut stdin = std::io::stdin().lock();
    let mut line = Vec::new();
    let mut seq: u32 = 0;
    loop {
        line.clear();
        if stdin.read_until(b'\n', &mut line).map_err(|e| Failure::Io("reading stdin", e))? == 0 {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        seq = seq.checked_add(1).ok_or_else(|| Failure::Usage("more than 2^32 - 1 requests".into()))?;
        let reply = request(&sock, seq, &line, options)?;
        print_reply(&reply)?;
    }
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
            ExitCode::from(failure.exit_status())
        }
    }
}

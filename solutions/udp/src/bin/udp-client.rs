//! `udp-client` — reference solution of the ipc-lab exercise `udp` (SPEC
//! §4.7), the client half: one request per line of stdin over UDP, with
//! retransmission and exponential backoff.
//!
//! Lecture: slides "Socket erzeugen" („SOCK_DGRAM: UDP =
//! nachrichtenbasierte Kommunikation“, „Achtung: UDP ist unzuverlässig!“),
//! "Ports (2)" (an active process gets a free port from the OS and
//! receives its answers on it), "Senden von Daten" / "Empfangen von
//! Daten", "Konvertierungsfunktionen (2)" (`htonl`), "I/O Multiplexing
//! (poll)" and "Timeouts (1)" / "Timeouts (2)" — "maximale Wartezeit auf
//! Antwort, dann erneut versuchen" is this program.
//!
//! ```text
//! udp-client HOST PORT [--timeout-ms T] [--retries R]    (defaults 200 and 5)
//! ```
//!
//! * each line of stdin (without its newline) is one request: sequence
//!   number 1, 2, … (4 bytes, network byte order), then the line;
//! * waits for the reply with that sequence number and prints its payload
//!   and a newline;
//! * no reply within T ms: the same datagram again, now waiting 2T, then
//!   4T, …; after R retransmissions without a reply:
//!   `udp-client: no reply to request SEQ after R retransmissions`, exit 3;
//! * exit 0 after the last reply (at once for empty input).
//!
//! # The design, and why
//!
//! *Connected UDP socket.* `connect` on a datagram socket sends nothing; it
//! fixes the peer address. From then on `send` needs no address, and — the
//! reason to do it — the kernel delivers only datagrams *from that address*
//! to the socket: a datagram from any other sender never reaches us. It
//! also makes the kernel report an ICMP "port unreachable" (nobody listens
//! on the server's port) as ECONNREFUSED on a later `recv` (or `send`). For
//! us that is just a lost datagram — the server may come up a moment later
//! — so it is ignored, and the timeout goes on as if nothing had arrived.
//!
//! *One deadline per transmission, absolute.* After each transmission the
//! deadline is "now + timeout" (slide "Timeouts (1)": "Jeweils immer die
//! absolute Zeit merken"). The one `poll` gets the time left until that
//! deadline, computed afresh before every call and rounded *up* to whole
//! milliseconds. Whatever arrives in between and is not our reply — an
//! old reply with a smaller sequence number (the answer to an earlier
//! transmission that came late), a datagram too short to carry a sequence
//! number, ECONNREFUSED — is dropped, and the wait goes on towards the
//! *same* deadline. Restarting a full timeout after every such datagram
//! would let a stream of stale datagrams postpone the retransmission
//! forever.
//!
//! *Never early.* The deadline is taken after `send` returned, from the
//! monotonic clock (`Instant`, CLOCK_MONOTONIC: unlike `gettimeofday` it
//! does not jump when the system time is set), and the loop returns "no
//! reply" only when `Instant::now()` has reached it — `poll` may return
//! earlier (a stale datagram) or, rounding, a little later, never matters.
//!
//! *Backoff.* Each timeout doubles the next: if the server is slow or the
//! network congested, hammering it at a fixed rate makes things worse.
//! After R retransmissions (R+1 transmissions) and the last wait of
//! 2^R · T, the client gives up.

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
// Errors and exit codes
// ---------------------------------------------------------------------------

/// Everything that ends the client early: one line on stderr (prefixed
/// `udp-client: `); exit status 3 for [`Failure::NoReply`], 1 otherwise.
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
/// `eprintln!`, which panics when stderr is gone.
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "udp-client: {message}");
}

// ---------------------------------------------------------------------------
// The socket
// ---------------------------------------------------------------------------

/// Resolves HOST:PORT and returns a UDP socket connected to its first
/// address (see the module doc for why connected). `connect` on a datagram
/// socket cannot fail for an unreachable server: nothing is sent yet.
fn connect_to(host: &str, port: u16) -> Result<OwnedFd, Failure> {
    let resolve_failed = |reason: String| Failure::Resolve { host: host.to_string(), port, reason };
    let server = (host, port)
        .to_socket_addrs()
        .map_err(|e| resolve_failed(e.to_string()))?
        .next()
        .ok_or_else(|| resolve_failed("no address".into()))?;
    let family = match server {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let sock =
        socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).map_err(|e| Failure::Sys("socket", e))?;
    connect(sock.as_raw_fd(), &SockaddrStorage::from(server)).map_err(|e| Failure::Sys("connect", e))?;
    Ok(sock)
}

// ---------------------------------------------------------------------------
// One request: transmit, wait, retransmit with backoff
// ---------------------------------------------------------------------------

/// The datagram for request `seq`: the sequence number in network byte
/// order (big-endian, the slide's `htonl`), then the payload.
fn encode(seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::with_capacity(SEQ_LEN + payload.len());
    datagram.extend_from_slice(&seq.to_be_bytes());
    datagram.extend_from_slice(payload);
    datagram
}

/// Sends `datagram` once.
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

/// The time from now to `deadline` as a `poll` timeout in whole
/// milliseconds, rounded *up* (rounded down, 0.7 ms left would become 0:
/// `poll` returns at once, and the loop spins until the deadline).
fn poll_timeout(deadline: Instant) -> PollTimeout {
    let left = deadline.saturating_duration_since(Instant::now());
    PollTimeout::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(PollTimeout::MAX)
}

/// Waits until the reply to `seq` arrives (returns its payload) or
/// `deadline` passes (returns `None`). Everything else that arrives —
/// replies with another sequence number, datagrams shorter than one,
/// ECONNREFUSED — is ignored, and the wait goes on towards the same
/// deadline.
fn await_reply(sock: &OwnedFd, seq: u32, deadline: Instant, buf: &mut [u8]) -> Result<Option<Vec<u8>>, Failure> {
    loop {
        if Instant::now() >= deadline {
            return Ok(None);
        }
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, poll_timeout(deadline)) {
            // Timed out — or woke a little early: the loop asks the clock.
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(errno) => return Err(Failure::Sys("poll", errno)),
        }
        match recv(sock.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => {
                if let Some((got, payload)) = buf[..n].split_first_chunk::<SEQ_LEN>() {
                    if u32::from_be_bytes(*got) == seq {
                        return Ok(Some(payload.to_vec()));
                    }
                }
            }
            // ECONNREFUSED: an ICMP port unreachable for one of our
            // transmissions — lost, like any datagram.
            Err(Errno::ECONNREFUSED | Errno::EAGAIN | Errno::EINTR) => {}
            Err(errno) => return Err(Failure::Sys("recv", errno)),
        }
    }
}

/// Sends request `seq` and returns the reply's payload: up to
/// `1 + retries` transmissions, the wait doubling after each.
fn request(sock: &OwnedFd, seq: u32, payload: &[u8], options: &Options) -> Result<Vec<u8>, Failure> {
    let datagram = encode(seq, payload);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut timeout = options.timeout;
    let mut retransmissions = 0;
    loop {
        transmit(sock, &datagram)?;
        // Taken after the send: the wait is never shorter than `timeout`.
        let deadline = Instant::now() + timeout;
        if let Some(reply) = await_reply(sock, seq, deadline, &mut buf)? {
            return Ok(reply);
        }
        if retransmissions == options.retries {
            return Err(Failure::NoReply { seq, retries: options.retries });
        }
        retransmissions += 1;
        timeout = timeout.saturating_mul(2).min(MAX_WAIT);
    }
}

/// Prints one reply's payload and a newline, at once (a reader waiting for
/// it must not wait for the next one).
fn print_reply(payload: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(payload)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Io("writing stdout", e))
}

// ---------------------------------------------------------------------------
// Command line and main loop
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
/// `--name=value`, anywhere) and `--help`.
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
/// next line is read.
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

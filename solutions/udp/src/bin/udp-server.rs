//! `udp-server` — reference solution of the ipc-lab exercise `udp` (SPEC
//! §4.7), the server half: a counter service over UDP that executes every
//! request at most once.
//!
//! Lecture: slides "Ports", "Ports (2)" (a passive process "registriert sich
//! auf einer Portnummer" and waits for "Nachrichten (UDP)"), "Socket
//! erzeugen" („SOCK_DGRAM: UDP = nachrichtenbasierte Kommunikation“,
//! „Achtung: UDP ist unzuverlässig!“), "Passives Warten" ("`bind` … UDP:
//! fertig"), "Senden von Daten" / "Empfangen von Daten" (`sendto`,
//! `recvfrom`: "Liefert die Absenderadresse"), "Weitere Funktionen"
//! (`getsockname`), "Konvertierungsfunktionen (2)" (`htonl`/`ntohl`) and
//! "Bewertung synchron vs. asynchron" ("Paketverlust", "Wiederholung von
//! Paketen").
//!
//! ```text
//! udp-server [--bind ADDR] [--port PORT]   (defaults 127.0.0.1 and 5001;
//!                                           PORT 0: the OS picks a free port)
//! ```
//!
//! Every datagram, request or reply, is a 4-byte sequence number in network
//! byte order followed by the payload:
//!
//! ```text
//! ADD N  (0 ≤ N < 2^31)  ->  OK TOTAL    N added to the total of the sender's address
//! GET                    ->  OK TOTAL
//! anything else          ->  ERR unknown command
//! ```
//!
//! The reply carries the request's sequence number and goes back to the
//! address the request came from. SIGINT or SIGTERM: exit 0. Bind failure:
//! `udp-server: cannot bind ADDR:PORT: REASON`, exit 1.
//!
//! # The design, and why
//!
//! *One socket, no connections.* A UDP server has no `listen` and no
//! `accept` ("Passives Warten": "UDP: fertig" after `bind`). Every client
//! talks to the same socket; the only thing that tells clients apart is the
//! sender address `recvfrom` returns with each datagram (IP address and
//! port: the slide's 5-tuple). So the per-client state — the running total —
//! lives in a map keyed by that address, and the reply goes back with
//! `sendto` to exactly that address.
//!
//! *Messages, not a stream.* One `recvfrom` returns exactly one datagram,
//! whole, however many are queued: the boundaries are kept („nachrichtenbasierte
//! Kommunikation“), unlike TCP. The buffer must be large enough for the
//! largest datagram (a smaller buffer silently cuts the datagram off: the
//! rest is *discarded*, not kept for the next call).
//!
//! *At most once.* „UDP ist unzuverlässig“: requests and replies get lost,
//! so clients send a request again when no reply comes. The server cannot
//! tell "my reply was lost" from "the request was lost" — but it can
//! recognise the second copy: same sender, same sequence number as the last
//! request it executed. Executing it again would add twice (`ADD 5` sent
//! twice because the first reply was lost must leave the total at 5). So
//! the server keeps, per address, the last sequence number and the reply it
//! sent, and answers a repetition with the stored reply. A smaller sequence
//! number is an old copy still wandering through the network (the client
//! has moved on): it gets no answer at all.
//!
//! *Never wait for one client.* The socket is non-blocking and single
//! threaded: a reply that does not fit into the socket buffer is dropped
//! (the client retransmits and gets the stored reply), instead of stopping
//! the service for everybody.
//!
//! *Stopping.* SIGINT and SIGTERM are blocked and read from a `signalfd`,
//! a descriptor that turns readable when one of them is pending. The one
//! `poll` waits for the socket and the signals together: no handler, no
//! race between checking a flag and going to sleep, no CPU while idle.

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
// Errors and exit codes
// ---------------------------------------------------------------------------

/// Everything that ends the server early: one line on stderr (prefixed
/// `udp-server: `), exit status 1.
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
/// `eprintln!`, which panics when stderr is gone.
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "udp-server: {message}");
}

// ---------------------------------------------------------------------------
// Setting up: socket, bind, getsockname, signals
// ---------------------------------------------------------------------------

/// What the command line asks for.
struct Options {
    addr: IpAddr,
    port: u16,
    /// ADDR and PORT exactly as given (or the defaults), for the bind error.
    addr_text: String,
    port_text: String,
}

/// Creates the datagram socket and registers the port (slides "Socket
/// erzeugen", "Passives Warten": `bind` — "UDP: fertig").
///
/// * `SockType::Datagram` is the slide's SOCK_DGRAM; the family follows the
///   address (AF_INET6 for `::1`).
/// * Non-blocking: `recvfrom` and `sendto` never stop the one thread (see
///   [`serve`]).
/// * No SO_REUSEADDR: UDP has no TIME_WAIT to get around, and on a UDP
///   socket the option would let a second server share the port.
fn open_socket(options: &Options) -> Result<OwnedFd, Failure> {
    let family = match options.addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let sock = socket(family, SockType::Datagram, flags, None).map_err(|e| Failure::Sys("socket", e))?;
    let address = SockaddrStorage::from(SocketAddr::new(options.addr, options.port));
    bind(sock.as_raw_fd(), &address).map_err(|errno| Failure::Bind {
        addr: options.addr_text.clone(),
        port: options.port_text.clone(),
        errno,
    })?;
    Ok(sock)
}

/// Prints `listening on SOCKADDR` with the address the socket is really
/// bound to (`getsockname`: "nützlich für dynamisch vom Betriebssystem
/// zugewiesene Ports"), and flushes: clients wait for this line.
fn announce(sock: &OwnedFd) -> Result<(), Failure> {
    let bound: SockaddrStorage = getsockname(sock.as_raw_fd()).map_err(|e| Failure::Sys("getsockname", e))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {bound}").and_then(|()| stdout.flush()).map_err(Failure::Stdout)
}

/// SIGINT and SIGTERM as a descriptor: blocks both (so their default action,
/// death by the signal, never happens) and returns a `signalfd` that is
/// readable while one of them is pending. Must run before `listening on`
/// is printed: whoever reads that line may send SIGTERM at once.
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

/// A request payload, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Add(u64),
    Get,
    Unknown,
}

impl Request {
    /// `ADD N` (N decimal digits only, leading zeros allowed, below 2^31),
    /// `GET`, or anything else — exactly, with no newline or spaces around.
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

/// What the server remembers about one sender address.
#[derive(Default)]
struct Peer {
    total: u64,
    /// The sequence number of the last request executed for this address,
    /// and the whole reply datagram sent for it.
    last: Option<(u32, Vec<u8>)>,
}

/// The state of the service: one [`Peer`] per sender address (IP and port,
/// as `recvfrom` reports it).
#[derive(Default)]
struct Counter {
    peers: HashMap<SockaddrStorage, Peer>,
}

impl Counter {
    /// Handles one datagram from `from`; returns the reply to send, if any.
    ///
    /// * shorter than a sequence number: not a request, ignored;
    /// * the same sequence number as the last executed one: a
    ///   retransmission (our reply, or the request, was lost) — the stored
    ///   reply again, *not* executed again;
    /// * a smaller one: an old duplicate, ignored;
    /// * otherwise: executed, and its reply stored.
    ///
    /// The sequence number is compared as a number, so it is read in
    /// network byte order (`ntohl`, here `u32::from_be_bytes`); the reply
    /// repeats the request's four bytes unchanged.
    fn handle(&mut self, from: SockaddrStorage, datagram: &[u8]) -> Option<Vec<u8>> {
        let (seq_bytes, payload) = datagram.split_first_chunk::<SEQ_LEN>()?;
        let seq = u32::from_be_bytes(*seq_bytes);
        let peer = self.peers.entry(from).or_default();
        if let Some((last_seq, reply)) = &peer.last {
            if seq == *last_seq {
                return Some(reply.clone());
            }
            if seq < *last_seq {
                return None;
            }
        }
        let text = match Request::parse(payload) {
            Request::Add(n) => {
                peer.total = peer.total.saturating_add(n);
                format!("OK {}", peer.total)
            }
            Request::Get => format!("OK {}", peer.total),
            Request::Unknown => "ERR unknown command".to_string(),
        };
        let mut reply = seq_bytes.to_vec();
        reply.extend_from_slice(text.as_bytes());
        peer.last = Some((seq, reply.clone()));
        Some(reply)
    }
}

// ---------------------------------------------------------------------------
// The main loop: one poll over the socket and the signals
// ---------------------------------------------------------------------------

/// Serves datagrams until SIGINT or SIGTERM (then `Ok`: exit 0).
///
/// One `poll` with no timeout over the socket and the signalfd: the thread
/// sleeps until a datagram or a signal is there. Each round takes one
/// datagram (`recvfrom` with the sender's address), so a stop signal is
/// seen between any two datagrams even under a flood.
fn serve(sock: &OwnedFd, signals: &SignalFd) -> Result<(), Failure> {
    let mut counter = Counter::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN), PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(Failure::Sys("poll", errno)),
        }
        if fds[1].any().unwrap_or(false) {
            return Ok(());
        }
        if !fds[0].any().unwrap_or(false) {
            continue;
        }
        let (n, from) = match recvfrom::<SockaddrStorage>(sock.as_raw_fd(), &mut buf) {
            Ok((n, Some(from))) => (n, from),
            // No sender address: nobody to answer.
            Ok((_, None)) | Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(errno) => {
                diagnose(&format!("recvfrom: {}", errno.desc()));
                continue;
            }
        };
        if let Some(reply) = counter.handle(from, &buf[..n]) {
            match sendto(sock.as_raw_fd(), &reply, &from, MsgFlags::empty()) {
                // EAGAIN: the socket buffer is full; the reply is lost like
                // any datagram, and the client's retransmission gets it.
                Ok(_) | Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(errno) => diagnose(&format!("sendto {from}: {}", errno.desc())),
            }
        }
    }
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
/// then the main loop.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddrV4;

    fn addr(port: u16) -> SockaddrStorage {
        SockaddrStorage::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
    }

    fn req(seq: u32, payload: &str) -> Vec<u8> {
        let mut d = seq.to_be_bytes().to_vec();
        d.extend_from_slice(payload.as_bytes());
        d
    }

    #[test]
    fn commands() {
        assert_eq!(Request::parse(b"ADD 0005"), Request::Add(5));
        assert_eq!(Request::parse(b"ADD 2147483647"), Request::Add(2_147_483_647));
        assert_eq!(Request::parse(b"ADD 2147483648"), Request::Unknown);
        assert_eq!(Request::parse(b"ADD -1"), Request::Unknown);
        assert_eq!(Request::parse(b"ADD "), Request::Unknown);
        assert_eq!(Request::parse(b"GET\n"), Request::Unknown);
        assert_eq!(Request::parse(b"GET"), Request::Get);
    }

    #[test]
    fn at_most_once_per_address() {
        let mut c = Counter::default();
        assert_eq!(c.handle(addr(1), &req(1, "ADD 5")), Some(req(1, "OK 5")));
        assert_eq!(c.handle(addr(1), &req(1, "ADD 5")), Some(req(1, "OK 5")));
        assert_eq!(c.handle(addr(2), &req(1, "ADD 2")), Some(req(1, "OK 2")));
        assert_eq!(c.handle(addr(1), &req(0, "GET")), None);
        assert_eq!(c.handle(addr(1), b"\0\0\0"), None);
        assert_eq!(c.handle(addr(1), &req(7, "GET")), Some(req(7, "OK 5")));
    }
}

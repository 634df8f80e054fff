//! `tcp-client` — reference solution of the ipc-lab exercise `sockets`
//! (contract: `exercises/sockets/README.md`), the client half.
//!
//! Lecture: slides "Anlauf: Client", "Socket erzeugen", "Verbindungen
//! (TCP)" (`connect`, `shutdown`), "Senden von Daten", "Empfangen von
//! Daten", "Namensauflösung" / "getaddrinfo", "Beispiel: Client".
//!
//! ```text
//! tcp-client HOST PORT
//! ```
//!
//! * resolves HOST (a name like `localhost` or a literal like `127.0.0.1` or
//!   `::1`) and tries each address in turn until one connects;
//! * copies stdin to the socket and the socket to stdout *at the same time*;
//! * at stdin EOF half-closes the connection (`shutdown` write), so the
//!   server sees EOF, and keeps printing what the server sends;
//! * exits 0 when the server closes, after writing everything received,
//!   even if stdin is still open;
//! * nothing connects: `tcp-client: cannot connect to HOST:PORT: REASON`,
//!   exit 1.
//!
//! # The design, and why
//!
//! Why "at the same time"? Think of an echo server and 16 MiB on stdin. A
//! client that first sends everything and only then starts reading gets
//! stuck: the server echoes, our receive buffer fills (we do not read), the
//! server's `send` blocks, so the server stops reading, its receive buffer
//! fills, and now *our* `send` blocks — forever. Both sides wait for the
//! other. Loopback buffers hold a few MB per direction, so small tests pass
//! and big ones hang.
//!
//! So the two directions are independent: a second thread copies stdin →
//! socket ([`upload`]) while the main thread copies socket → stdout
//! ([`download`]). Each may block as long as it likes without stopping the
//! other. (One thread with `poll` over stdin and the socket also works, but
//! then writes must not block either: non-blocking sockets and buffers of
//! unsent bytes — the `select` exercise.)
//!
//! Who decides when we are done? The *server*: when it closes, `recv`
//! returns 0, the main thread has written everything to stdout and returns
//! from `main`, which ends the process, the upload thread included — also
//! when it is still blocked reading a stdin that never ends. Joining the
//! upload thread instead would wait for a stdin EOF that may never come.
//!
//! Half-close: at stdin EOF we must tell the server "no more data", but keep
//! receiving its answer. `close` would do the first and prevent the second;
//! `shutdown(fd, Shutdown::Write)` (slide "Verbindungen (TCP)") sends the
//! FIN — the server's `recv` returns 0 — and leaves our receiving side open.

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

/// How many bytes we read or receive at once.
const CHUNK: usize = 64 * 1024;

const USAGE: &str = "usage: tcp-client HOST PORT";

// ---------------------------------------------------------------------------
// Errors and exit codes
// ---------------------------------------------------------------------------

/// Everything that ends the client with status 1: one line on stderr
/// (prefixed `tcp-client: `).
#[derive(Debug)]
enum Failure {
    /// Bad command line.
    Usage(String),
    /// No address of HOST accepted the connection: HOST and PORT as given,
    /// and why the last attempt failed.
    Connect { host: String, port: String, reason: String },
    /// Any other failed system call.
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
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "tcp-client: {message}");
}

// ---------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------

/// Resolves `host` and connects to the first of its addresses that accepts
/// (slides "Anlauf: Client", "Namensauflösung").
///
/// std's `(host, port).to_socket_addrs()` is `getaddrinfo`: it accepts
/// names (`localhost`) and literals (`127.0.0.1`, `::1`) and may return
/// several addresses, IPv6 and IPv4 mixed. A name can resolve to an address
/// nobody listens on (say `::1` while the server is on `127.0.0.1`), so try
/// them in turn — each with a new socket of the matching family, since a
/// failed `connect` leaves a socket unusable — and report the last error
/// only when none worked.
///
/// Returns the connected socket, or the REASON for the error message.
fn connect_to(host: &str, port: u16) -> Result<OwnedFd, String> {
    let addresses = (host, port).to_socket_addrs().map_err(|e| e.to_string())?;
    let mut last_error = String::from("no address found");
    for address in addresses {
        match connect_one(address) {
            Ok(sock) => return Ok(sock),
            Err(errno) => last_error = errno.to_string(),
        }
    }
    Err(last_error)
}

/// `socket` + `connect` to one address. On failure the socket is dropped,
/// i.e. closed.
fn connect_one(address: SocketAddr) -> nix::Result<OwnedFd> {
    let family = match address {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let sock = socket(family, SockType::Stream, SockFlag::empty(), None)?;
    connect(sock.as_raw_fd(), &SockaddrStorage::from(address))?;
    Ok(sock)
}

// ---------------------------------------------------------------------------
// Copying both ways at once
// ---------------------------------------------------------------------------

/// Starts [`upload`] in a second thread and runs [`download`] in this one.
/// Returns when the server has closed the connection.
///
/// Both threads use the same socket: an `Arc` shares the `OwnedFd`, which is
/// closed when the last user is gone. The upload thread is *not* joined: see
/// the module docs.
fn copy_both_ways(sock: OwnedFd) -> Result<(), Failure> {
    let sock = Arc::new(sock);
    let upload_sock = Arc::clone(&sock);
    let _uploader = thread::Builder::new()
        .name("upload".into())
        .spawn(move || upload(upload_sock.as_raw_fd()))
        .map_err(Failure::Thread)?;
    download(sock.as_raw_fd())
}

/// stdin → socket, then half-close. Runs in its own thread.
///
/// At stdin EOF: `shutdown(Write)` — the server's `recv` returns 0, our
/// side can still receive. If the server has gone already (EPIPE,
/// ECONNRESET; `send_all` uses `MSG_NOSIGNAL`, so no SIGPIPE) there is
/// nobody to upload to: stop quietly, [`download`] notices the end too.
fn upload(sock: RawFd) {
    let stdin = std::io::stdin();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match read(stdin.as_fd(), &mut buf) {
            Ok(0) => break, // EOF
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                diagnose(&format!("reading stdin: {errno}"));
                break; // treat like EOF: nothing more to send
            }
        };
        match send_all(sock, &buf[..n]) {
            Ok(()) => {}
            Err(Errno::EPIPE | Errno::ECONNRESET) => return,
            Err(errno) => {
                diagnose(&format!("send: {errno}"));
                return;
            }
        }
    }
    match shutdown(sock, Shutdown::Write) {
        // ENOTCONN: the server has closed already; nothing to half-close.
        Ok(()) | Err(Errno::ENOTCONN) => {}
        Err(errno) => diagnose(&format!("shutdown: {errno}")),
    }
}

/// socket → stdout until the server closes (`recv` returns 0).
///
/// Bytes go out exactly as they came: no `String`, no added newline (the
/// slide's `printf ("%s\n", rb)` stops at the first NUL byte and adds a
/// newline after every `recv`).
///
/// A reset (ECONNRESET) also means the server is gone: everything it sent
/// before has been written, so it ends the copy like a normal close.
fn download(sock: RawFd) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match recv(sock, &mut buf, MsgFlags::empty()) {
            Ok(0) | Err(Errno::ECONNRESET) => return Ok(()),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(Failure::Sys("recv", errno)),
        };
        write_all(stdout.as_fd(), &buf[..n]).map_err(Failure::Stdout)?;
    }
}

/// Sends all of `bytes`, looping over short writes; `MSG_NOSIGNAL` turns
/// SIGPIPE into EPIPE (same as the server's `send_all`).
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
// Command line
// ---------------------------------------------------------------------------

enum Command {
    Run { host: String, port: u16, port_text: String },
    Help,
}

/// Parses `HOST PORT` and `--help`. `[::1]` is accepted for `::1`.
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

fn run(host: &str, port: u16, port_text: &str) -> Result<(), Failure> {
    let name = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let sock = connect_to(name, port).map_err(|reason| Failure::Connect {
        host: host.to_string(),
        port: port_text.to_string(),
        reason,
    })?;
    copy_both_ways(sock)
}

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

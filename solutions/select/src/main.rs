//! `evloop` — reference solution of the ipc-lab exercise `select`; its
//! contract is `exercises/select/README.md`.
//!
//! A small chat-and-timer server that serves any number of TCP clients and
//! its own stdin with **one thread**. Slide "I/O-Multiplexing": a process
//! that wants data from several connections must not ask them round-robin
//! (busy waiting), nor block in one `read` while another connection has
//! data. It hands the whole list of descriptors to the kernel and sleeps
//! until at least one of them has something for it — *or until a timeout
//! has passed*.
//!
//! ```text
//! evloop [--port PORT] [--idle-ms T]        (defaults: 0 = any free port, 10000; T = 0: no idle limit)
//! ```
//!
//! Protocol (one command per line, each answer one line):
//!
//! ```text
//! (connect)            ->  welcome ID            ids 1, 2, 3, ... in accept order
//! ECHO TEXT            ->  TEXT                  to the sender
//! SAY TEXT             ->  ID: TEXT              to every *other* client
//! TIMER MS LABEL       ->  TIMER LABEL           to the sender, MS milliseconds later
//! QUIT                 ->  BYE                   then the connection is closed
//! anything else        ->  ERR unknown command
//! (T ms of silence)    ->  BYE idle              then closed, pending timers dropped
//! stdin: `quit` or EOF ->  BYE shutdown          to every client, exit 0
//! ```
//!
//! # The event loop (slides "Typische Programmstruktur", "I/O Multiplexing (poll)")
//!
//! Initialisation: raise the descriptor limit, create, bind and `listen` on
//! the socket, print `listening on 127.0.0.1:PORT`. Then the main loop, in
//! [`run`], forever:
//!
//! 1. **Fire what is due.** Take every deadline that has already passed off
//!    the front of the sorted [`Deadlines`] list and handle it (a timer sends
//!    `TIMER LABEL`, an idle deadline sends `BYE idle`).
//! 2. **Write and tidy up.** Try to write every client's pending output;
//!    close the clients that are finished ([`Server::flush_and_reap`]).
//! 3. **Compute the timeout.** The delta from *now* to the earliest deadline
//!    that is left, or "no timeout" (-1) when the list is empty — slide
//!    "Timeouts (1)": "Abstand von frühestem Timeout zur aktuellen Zeit
//!    bestimmen; dieses Delta an poll/select() als Timeout übergeben".
//! 4. **Wait** in one `poll` over the listening socket, stdin and every
//!    client ([`Server::poll_once`]). This is the *only* place the program
//!    ever blocks. Idle, it sleeps here and uses no CPU at all.
//! 5. **Handle** what `poll` reported: accept new clients, read and execute
//!    complete command lines, write pending output, read stdin.
//!
//! # Why `poll` and not `select`
//!
//! Slide "I/O-Multiplexing: select" and "fd_set Makros": an `fd_set` is a bit
//! array of `FD_SETSIZE` = 1024 bits; a descriptor >= 1024 cannot be put in
//! it (in C, `FD_SET` writes past the array; nix's `FdSet::insert` panics).
//! With 500 clients plus whatever is open we get close to that, and after
//! raising `RLIMIT_NOFILE` we may go beyond it. `poll` takes an array of
//! `struct pollfd` of any length, has no such limit, and does not overwrite
//! its inputs (only `revents`): the slide's "Heißt zwar poll, macht aber kein
//! Polling" — with a timeout of -1 it blocks until something happens.
//!
//! Every socket is non-blocking: a `recv` or `send` that would wait returns
//! `EAGAIN` instead, so one slow or stalled client can never stop the loop.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::socket::{
    accept4, bind, getsockname, listen, recv, send, setsockopt, socket, sockopt, AddressFamily, Backlog, MsgFlags,
    SockFlag, SockType, SockaddrIn,
};
use nix::unistd::read;

/// `--idle-ms` when not given.
const DEFAULT_IDLE_MS: u64 = 10_000;

/// How many bytes one `recv` asks for.
const READ_CHUNK: usize = 16 * 1024;

/// A command line may be at most this long; a client that sends more
/// without a newline gets `ERR line too long` and is closed (otherwise one
/// client could make us buffer gigabytes).
const MAX_LINE: usize = 64 * 1024;

/// While this much output waits for a client (it does not read its
/// answers), we stop reading its commands: flow control, the simplest kind.
const PAUSE_BACKLOG: usize = 1 << 20;

/// A client whose unsent output grows beyond this (other clients keep
/// `SAY`ing to it, and it never reads) is dropped: our memory is bounded.
const MAX_BACKLOG: usize = 8 << 20;

const USAGE: &str = "usage: evloop [--port PORT] [--idle-ms T]";

// ---------------------------------------------------------------------------
// Errors and exit codes
// ---------------------------------------------------------------------------

/// Everything that ends the program early: one line on stderr (prefixed
/// `evloop: `), exit status 1.
#[derive(Debug)]
enum Failure {
    /// Bad command line.
    Usage(String),
    /// `bind` failed (port in use, ...).
    Bind(u16, Errno),
    /// Any other failed system call.
    Sys(&'static str, Errno),
    /// Writing to stdout (or duplicating stdin) failed.
    Io(&'static str, std::io::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(why) => write!(f, "{why}; {USAGE}"),
            Failure::Bind(port, errno) => write!(f, "cannot bind 127.0.0.1:{port}: {}", errno.desc()),
            Failure::Sys(what, errno) => write!(f, "{what}: {}", errno.desc()),
            Failure::Io(what, err) => write!(f, "{what}: {err}"),
        }
    }
}

/// Prints one diagnostic line on stderr. `writeln!` with the result ignored
/// instead of `eprintln!`, which would panic if stderr were a closed pipe.
fn warn(message: fmt::Arguments) {
    let _ = writeln!(std::io::stderr(), "evloop: {message}");
}

/// Turns the result into an exit status, printing the failure (if any).
fn report(result: Result<(), Failure>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(failure) => {
            warn(format_args!("{failure}"));
            1
        }
    }
}

// ---------------------------------------------------------------------------
// The deadline list (slides "Timeouts (1)" and "Timeouts (2)")
// ---------------------------------------------------------------------------

/// A place in the deadline list. Ordered by `at` first, then by `seq`
/// (`derive(Ord)` compares the fields in declaration order), so the first
/// entry of the list is always the earliest deadline, and deadlines that
/// fall on the same instant keep the order in which they were set.
///
/// The time is *absolute* ("jeweils immer die absolute Zeit merken, wenn
/// Timeout gesetzt wird"): "fire 200 ms from now" is stored as the instant
/// it happens. A relative "200 ms" would be wrong as soon as anything else
/// has taken time since — the slide's `gettimeofday` + 200 ms is exactly
/// this. [`Instant`] is a monotonic clock: unlike `gettimeofday` it does not
/// jump when someone sets the system time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    at: Instant,
    seq: u64,
}

/// What happens when a deadline is reached: the slide's "Kontext, zu dem
/// der Timeout gehört".
///
/// Both name their client by descriptor *and* id. The descriptor alone is
/// not enough: when a client is closed the kernel hands its number to the
/// next `accept` (always the lowest free number), so "descriptor 7" may be a
/// different client by the time the deadline comes. The id (1, 2, 3, ...,
/// never reused) works as a generation number: an event whose id does not
/// match the client now at that descriptor belongs to a client that has
/// gone, and is ignored.
#[derive(Debug)]
enum Event {
    /// `TIMER MS LABEL` is due: send `TIMER LABEL`.
    Timer { fd: RawFd, id: u64, label: Vec<u8> },
    /// The client has been silent for the whole idle time: `BYE idle`.
    Idle { fd: RawFd, id: u64 },
}

/// The sorted list of all pending deadlines — timers and idle deadlines of
/// every client — slide "Timeouts (1)": "Verwalten einer sortierten Liste
/// aller Timeouts". A `BTreeMap` keeps its keys sorted, and inserting,
/// removing and finding the first entry each cost O(log n): timeouts are
/// "häufig gesetzt, zurückgesetzt, abgeschaltet" (every line a client sends
/// resets its idle deadline) and "müssen deshalb effizient implementiert
/// werden".
struct Deadlines {
    list: BTreeMap<Key, Event>,
    next_seq: u64,
}

impl Deadlines {
    fn new() -> Self {
        Deadlines { list: BTreeMap::new(), next_seq: 0 }
    }

    /// Adds `event`, due at the absolute time `at`. Returns its key, with
    /// which it can be cancelled again.
    fn push(&mut self, at: Instant, event: Event) -> Key {
        let key = Key { at, seq: self.next_seq };
        self.next_seq += 1;
        self.list.insert(key, event);
        key
    }

    /// Removes a deadline that is no longer wanted (an idle deadline that
    /// was reset). Cancelling one that has already fired does nothing.
    fn cancel(&mut self, key: Key) {
        self.list.remove(&key);
    }

    /// The timeout for the next `poll`: the delta from `now` to the earliest
    /// deadline, or [`PollTimeout::NONE`] (-1, block until a descriptor is
    /// ready) when there is none — then an idle server sleeps without ever
    /// waking up.
    ///
    /// Rounded *up* to whole milliseconds: rounded down, 0.7 ms left becomes
    /// a timeout of 0 and the loop spins through `poll` until the deadline
    /// is really reached. (A timeout too short by rounding is harmless for
    /// correctness — nothing fires before its time, see [`Deadlines::pop_due`]
    /// — but it is busy waiting on a small scale.)
    fn timeout(&self, now: Instant) -> PollTimeout {
        match self.list.first_key_value() {
            None => PollTimeout::NONE,
            Some((key, _)) => {
                let delta = key.at.saturating_duration_since(now);
                let ms = delta.as_nanos().div_ceil(1_000_000);
                // More than i32::MAX ms (24 days): wait that long, then
                // compute again.
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    /// Takes the earliest deadline off the list if it is due (not later than
    /// `now`), else returns `None`. Call it in a loop: several may be due
    /// ("Prüfen, ob dieser Zeitpunkt bereits verstrichen ist → ggf. sofort
    /// behandeln. Schließlich kann viel Zeit seit dem Setzen des Timeout
    /// vergangen sein").
    fn pop_due(&mut self, now: Instant) -> Option<Event> {
        let entry = self.list.first_entry()?;
        if entry.key().at > now {
            return None;
        }
        Some(entry.remove())
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// Where a client connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Connected; its commands are read and executed.
    Open,
    /// Said goodbye (`BYE`, `BYE idle`): its output is written once more,
    /// then it is closed. Nothing more is read from it.
    Closing,
    /// Disconnected (EOF, reset, write error) or dropped: closed without
    /// writing anything more.
    Gone,
}

/// One connected client.
struct Client {
    /// The connected socket. Dropping the `Client` closes it.
    fd: OwnedFd,
    /// 1, 2, 3, ... in accept order; never reused, so it also serves as the
    /// client's generation number (see [`Event`]).
    id: u64,
    /// Bytes received but not yet part of a complete line. TCP is a stream:
    /// one `recv` may return half a line, or many lines at once.
    input: Vec<u8>,
    /// Bytes to send that the socket did not take yet. We never block in
    /// `send`: what does not fit waits here, and `poll` tells us (POLLOUT)
    /// when there is room again.
    output: Vec<u8>,
    /// The key of this client's idle deadline in [`Deadlines`], to cancel it
    /// when the client sends something (or is closed).
    idle_key: Option<Key>,
    state: State,
}

impl Client {
    fn new(fd: OwnedFd, id: u64) -> Self {
        Client { fd, id, input: Vec::new(), output: Vec::new(), idle_key: None, state: State::Open }
    }

    /// Queues `line` plus `\n` for sending. Nothing is written here; the
    /// main loop writes all pending output before it waits in `poll`.
    ///
    /// A client that lets more than [`MAX_BACKLOG`] bytes pile up is
    /// dropped (it never reads; we will not buffer for it forever).
    fn send_line(&mut self, line: &[u8]) {
        if self.state == State::Gone {
            return;
        }
        self.output.extend_from_slice(line);
        self.output.push(b'\n');
        if self.output.len() > MAX_BACKLOG {
            warn(format_args!("client {}: more than {MAX_BACKLOG} bytes of unread output; dropped", self.id));
            self.output.clear();
            self.state = State::Gone;
        }
    }

    /// Writes as much pending output as the socket takes now, without
    /// blocking. The rest stays queued; `poll` with POLLOUT says when to
    /// try again.
    ///
    /// `MSG_NOSIGNAL`: writing to a connection the peer has reset raises
    /// SIGPIPE, which would kill the whole server (Rust happens to ignore
    /// SIGPIPE, a C program does not); with the flag `send` just fails with
    /// EPIPE, and we close that one client.
    fn flush(&mut self) {
        while !self.output.is_empty() && self.state != State::Gone {
            match send(self.fd.as_raw_fd(), &self.output, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return, // socket buffer full: wait for POLLOUT
                Err(_) => {
                    // EPIPE, ECONNRESET: the client has gone.
                    self.output.clear();
                    self.state = State::Gone;
                }
            }
        }
    }
}

/// What one `recv` from a client brought.
enum Received {
    /// Bytes, appended to the client's input buffer.
    Bytes,
    /// Nothing after all (`EAGAIN`, `EINTR`): go back to `poll`.
    Nothing,
    /// End of file or a connection error: the client has gone.
    Gone,
}

/// One non-blocking `recv` from a client that `poll` reported readable.
///
/// Exactly one call: `poll` said there is *something*, not how much. Reading
/// "until the line is complete" would block (or spin) on a client that
/// stalls mid-line, and the whole server with it. What we got goes into the
/// client's input buffer; the lines are cut out by [`take_lines`], the rest
/// waits for the next `recv`.
fn receive(client: &mut Client, buf: &mut [u8]) -> Received {
    match recv(client.fd.as_raw_fd(), buf, MsgFlags::empty()) {
        Ok(0) => Received::Gone, // EOF: the client closed the connection
        Ok(n) => {
            client.input.extend_from_slice(&buf[..n]);
            Received::Bytes
        }
        // Readable a moment ago, not any more; or a signal: poll again.
        Err(Errno::EAGAIN | Errno::EINTR) => Received::Nothing,
        // ECONNRESET (the client reset the connection) and the like.
        Err(_) => Received::Gone,
    }
}

/// Cuts every complete line (without its `\n`, and without a `\r` before
/// it, so `telnet` works too) off the front of `input`. An incomplete last
/// line stays in `input` until the rest arrives.
fn take_lines(input: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(len) = input[start..].iter().position(|&b| b == b'\n') {
        let mut line = input[start..start + len].to_vec();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        lines.push(line);
        start += len + 1;
    }
    input.drain(..start);
    lines
}

/// Splits `MS LABEL` (the arguments of `TIMER`) into milliseconds and label.
fn parse_timer(args: &[u8]) -> Option<(u64, &[u8])> {
    let space = args.iter().position(|&b| b == b' ')?;
    let (ms, label) = (&args[..space], &args[space + 1..]);
    if ms.is_empty() || !ms.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let ms = std::str::from_utf8(ms).ok()?.parse().ok()?;
    Some((ms, label))
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// Who a `pollfd` entry belongs to.
#[derive(Clone, Copy, Debug)]
enum Source {
    Listener,
    Console,
    /// A client, by descriptor and id (a client may be closed, and its
    /// descriptor number reused, between `poll` and our handling it).
    Client {
        fd: RawFd,
        id: u64,
    },
}

/// The server's whole state. Everything lives in one thread; no locks.
struct Server {
    /// The listening socket (non-blocking).
    listener: OwnedFd,
    /// Our stdin (a duplicate of descriptor 0).
    console: OwnedFd,
    /// Bytes from stdin not yet part of a complete line.
    console_input: Vec<u8>,
    /// The clients by descriptor number — like the slide's `fd_set`, where
    /// the descriptor *is* the index.
    clients: BTreeMap<RawFd, Client>,
    deadlines: Deadlines,
    /// The id for the next client.
    next_id: u64,
    /// `--idle-ms`; `None` for 0 (no idle limit).
    idle: Option<Duration>,
    /// False while `accept` fails for lack of descriptors (EMFILE): then the
    /// listening socket stays readable, and polling it would only spin.
    accepting: bool,
}

impl Server {
    fn new(listener: OwnedFd, console: OwnedFd, idle: Option<Duration>) -> Self {
        Server {
            listener,
            console,
            console_input: Vec::new(),
            clients: BTreeMap::new(),
            deadlines: Deadlines::new(),
            next_id: 1,
            idle,
            accepting: true,
        }
    }

    /// Handles one deadline taken off the list.
    ///
    /// An event whose client is gone — or whose descriptor now belongs to a
    /// newer client with another id — is dropped: that is how a closed
    /// client's pending timers disappear without searching the list for
    /// them.
    fn fire(&mut self, event: Event) {
        match event {
            Event::Timer { fd, id, label } => {
                if let Some(client) = self.clients.get_mut(&fd).filter(|c| c.id == id && c.state == State::Open) {
                    client.send_line(&[b"TIMER ", &label[..]].concat());
                }
            }
            Event::Idle { fd, id } => {
                if let Some(client) = self.clients.get_mut(&fd).filter(|c| c.id == id) {
                    client.idle_key = None; // it has just been taken off the list
                    if client.state == State::Open {
                        client.send_line(b"BYE idle");
                        client.state = State::Closing;
                    }
                }
            }
        }
    }

    /// (Re)starts the idle deadline of the client at `fd`: cancel the old
    /// one, push a new one at now + T. Called when the client connects and
    /// whenever it sends bytes — any bytes, also half a line.
    fn touch(&mut self, fd: RawFd) {
        let Some(idle) = self.idle else { return };
        let Some(client) = self.clients.get_mut(&fd) else { return };
        if let Some(old) = client.idle_key.take() {
            self.deadlines.cancel(old);
        }
        let event = Event::Idle { fd, id: client.id };
        client.idle_key = Some(self.deadlines.push(Instant::now() + idle, event));
    }

    /// Accepts every pending connection (the listening socket is
    /// non-blocking: `accept4` returns EAGAIN when the queue is empty).
    /// Each new client gets `welcome ID` and an idle deadline.
    fn accept_clients(&mut self) {
        loop {
            // SOCK_NONBLOCK: the new socket must not block either.
            // SOCK_CLOEXEC: do not leak it into programs we might start.
            match accept4(&self.listener, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC) {
                Ok(fd) => {
                    let raw = fd.as_raw_fd();
                    let id = self.next_id;
                    self.next_id += 1;
                    let mut client = Client::new(fd, id);
                    client.send_line(format!("welcome {id}").as_bytes());
                    self.clients.insert(raw, client);
                    self.touch(raw);
                }
                Err(Errno::EAGAIN) => return, // no more pending connections
                // A signal, or a client that connected and reset before we
                // got to it: try the next one.
                Err(Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO) => continue,
                Err(errno @ (Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)) => {
                    // Out of descriptors. The connection stays queued and the
                    // listening socket stays readable: polling it now would
                    // wake us up again at once, forever. Stop accepting until
                    // a client goes away.
                    warn(format_args!("accept: {}; not accepting until a client leaves", errno.desc()));
                    self.accepting = false;
                    return;
                }
                Err(errno) => {
                    warn(format_args!("accept: {}", errno.desc()));
                    return;
                }
            }
        }
    }

    /// Reads from the client at `fd`, which `poll` reported readable (or hung
    /// up, or in error), and executes every complete line it has now.
    fn read_client(&mut self, fd: RawFd, buf: &mut [u8]) {
        let Some(client) = self.clients.get_mut(&fd) else { return };
        match receive(client, buf) {
            Received::Bytes => {}
            Received::Nothing => return,
            Received::Gone => {
                client.state = State::Gone;
                return;
            }
        }
        let lines = take_lines(&mut client.input);
        let too_long = client.input.len() > MAX_LINE;
        // Any bytes count as activity, also half a line.
        self.touch(fd);
        for line in lines {
            if self.clients.get(&fd).is_none_or(|c| c.state != State::Open) {
                break; // QUIT (or a write error): ignore what follows
            }
            self.handle_line(fd, &line);
        }
        if too_long {
            if let Some(client) = self.clients.get_mut(&fd).filter(|c| c.state == State::Open) {
                client.send_line(b"ERR line too long");
                client.state = State::Closing;
            }
        }
    }

    /// Executes one command line from the client at `fd`.
    fn handle_line(&mut self, fd: RawFd, line: &[u8]) {
        let Some(client) = self.clients.get_mut(&fd) else { return };
        let (word, args) = match line.iter().position(|&b| b == b' ') {
            Some(space) => (&line[..space], Some(&line[space + 1..])),
            None => (line, None),
        };
        match (word, args) {
            (b"ECHO", Some(text)) => client.send_line(text),
            (b"SAY", Some(text)) => {
                let message = [format!("{}: ", client.id).as_bytes(), text].concat();
                for (&other_fd, other) in self.clients.iter_mut() {
                    if other_fd != fd && other.state == State::Open {
                        other.send_line(&message);
                    }
                }
            }
            (b"TIMER", Some(args)) => {
                let due = parse_timer(args)
                    .and_then(|(ms, label)| Some((Instant::now().checked_add(Duration::from_millis(ms))?, label)));
                match due {
                    Some((at, label)) => {
                        let event = Event::Timer { fd, id: client.id, label: label.to_vec() };
                        self.deadlines.push(at, event);
                    }
                    None => client.send_line(b"ERR unknown command"),
                }
            }
            (b"QUIT", None) => {
                client.send_line(b"BYE");
                client.state = State::Closing;
            }
            _ => client.send_line(b"ERR unknown command"),
        }
    }

    /// Reads from stdin, which `poll` reported readable or hung up. Returns
    /// true when the server is to shut down: a line `quit`, or end of file.
    ///
    /// A pipe whose writer has closed is reported as POLLHUP *without*
    /// POLLIN; the `read` then returns 0. Reacting only to POLLIN would miss
    /// the EOF — and since `poll` reports POLLHUP again and again, the loop
    /// would spin.
    fn read_console(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        match read(self.console.as_fd(), &mut buf) {
            Ok(0) => true, // EOF
            Ok(n) => {
                self.console_input.extend_from_slice(&buf[..n]);
                let mut quit = false;
                for line in take_lines(&mut self.console_input) {
                    if line == b"quit" {
                        quit = true;
                        break;
                    }
                    warn(format_args!("stdin: unknown command {:?} (only `quit`)", String::from_utf8_lossy(&line)));
                }
                quit
            }
            Err(Errno::EAGAIN | Errno::EINTR) => false,
            Err(errno) => {
                warn(format_args!("stdin: {}; shutting down", errno.desc()));
                true
            }
        }
    }

    /// Builds the `pollfd` array — the listening socket, stdin and every
    /// client — and waits in `poll` until one of them is ready or `timeout`
    /// has passed. Returns who is ready, with what (`revents`); empty after
    /// a timeout or a signal.
    ///
    /// Each client is watched for input (POLLIN) and, only while output is
    /// waiting, for room to write (POLLOUT). Asking for POLLOUT always would
    /// make `poll` return at once every time: a socket with room in its
    /// buffer is always writable. POLLHUP and POLLERR need not be asked for:
    /// `poll` reports them anyway.
    fn poll_once(&self, timeout: PollTimeout) -> Result<Vec<(Source, PollFlags)>, Failure> {
        let mut sources = Vec::with_capacity(self.clients.len() + 2);
        let mut fds = Vec::with_capacity(self.clients.len() + 2);
        if self.accepting {
            sources.push(Source::Listener);
            fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        }
        sources.push(Source::Console);
        fds.push(PollFd::new(self.console.as_fd(), PollFlags::POLLIN));
        for (&fd, client) in &self.clients {
            let mut events = PollFlags::empty();
            if client.output.len() < PAUSE_BACKLOG {
                events |= PollFlags::POLLIN;
            }
            if !client.output.is_empty() {
                events |= PollFlags::POLLOUT;
            }
            sources.push(Source::Client { fd, id: client.id });
            fds.push(PollFd::new(client.fd.as_fd(), events));
        }
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(Vec::new()), // timeout: the deadlines are handled at the top of the loop
            Ok(_) => {}
            // "Reparierbar (z.B. interrupted system call) → nochmal"
            Err(Errno::EINTR) => return Ok(Vec::new()),
            // "Fatal → Terminate"
            Err(errno) => return Err(Failure::Sys("poll", errno)),
        }
        Ok(sources
            .into_iter()
            .zip(&fds)
            .filter_map(|(source, fd)| {
                let revents = fd.revents().unwrap_or(PollFlags::POLLERR);
                (!revents.is_empty()).then_some((source, revents))
            })
            .collect())
    }

    /// Writes the pending output of every client, then closes the clients
    /// that are done: those that said goodbye (`Closing`, whatever of their
    /// output the socket did not take is dropped — we never wait for a
    /// client) and those that are `Gone`. Closing one cancels its idle
    /// deadline; its timers stay in the list and are ignored when they come
    /// due (see [`Server::fire`]).
    fn flush_and_reap(&mut self) {
        let mut done = Vec::new();
        for (&fd, client) in self.clients.iter_mut() {
            client.flush();
            if client.state != State::Open {
                done.push(fd);
            }
        }
        for fd in done {
            if let Some(client) = self.clients.remove(&fd) {
                if let Some(key) = client.idle_key {
                    self.deadlines.cancel(key);
                }
                // A descriptor is free again. `client` is dropped here,
                // which closes its socket.
                self.accepting = true;
            }
        }
    }

    /// `quit` or EOF on stdin: `BYE shutdown` to every client, close all.
    fn shutdown(&mut self) {
        for client in self.clients.values_mut() {
            if client.state == State::Open {
                client.send_line(b"BYE shutdown");
            }
            client.flush();
        }
        self.clients.clear(); // closes every client socket
    }
}

// ---------------------------------------------------------------------------
// Setting up (slide "Typische Programmstruktur": Initialisierung)
// ---------------------------------------------------------------------------

/// Raises the soft limit of open descriptors to the hard limit. Each client
/// costs one descriptor; the usual soft limit of 1024 leaves room for 1021
/// clients at best. Failing to raise it is not fatal.
fn raise_fd_limit() {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Creates the listening socket on 127.0.0.1:`port` (0: the kernel picks a
/// free port), non-blocking, with SO_REUSEADDR (a restart right after a
/// previous run can bind again at once), and returns it with the address it
/// is bound to, read back with `getsockname`.
///
/// The backlog is the system maximum, not the slide's 10: when 500 clients
/// connect at once, connections beyond the backlog are not refused but
/// their handshake is dropped and retried a second later.
fn open_listener(port: u16) -> Result<(OwnedFd, SockaddrIn), Failure> {
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket(AddressFamily::Inet, SockType::Stream, flags, None).map_err(|e| Failure::Sys("socket", e))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| Failure::Sys("setsockopt SO_REUSEADDR", e))?;
    let addr = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    bind(fd.as_raw_fd(), &addr).map_err(|e| Failure::Bind(port, e))?;
    listen(&fd, Backlog::MAXCONN).map_err(|e| Failure::Sys("listen", e))?;
    let bound = getsockname::<SockaddrIn>(fd.as_raw_fd()).map_err(|e| Failure::Sys("getsockname", e))?;
    Ok((fd, bound))
}

/// Prints `listening on 127.0.0.1:PORT` and flushes it at once: whoever
/// started us waits for this line before connecting.
fn announce(addr: &SockaddrIn) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush()).map_err(|e| Failure::Io("stdout", e))
}

// ---------------------------------------------------------------------------
// The main loop (slides "Typische Programmstruktur", "I/O Multiplexing (poll)",
// "Timeouts (1)")
// ---------------------------------------------------------------------------

/// Sets everything up and runs the event loop until stdin says `quit` or
/// ends.
fn run(config: Config) -> Result<(), Failure> {
    // Initialisierung
    raise_fd_limit();
    let (listener, addr) = open_listener(config.port)?;
    // Our own copy of descriptor 0, so the server owns all it polls.
    let console = std::io::stdin().as_fd().try_clone_to_owned().map_err(|e| Failure::Io("stdin", e))?;
    announce(&addr)?;
    let idle = (config.idle_ms > 0).then(|| Duration::from_millis(config.idle_ms));
    let mut server = Server::new(listener, console, idle);
    let mut buf = vec![0u8; READ_CHUNK];

    // Hauptschleife
    loop {
        // 1. Everything already due, earliest first.
        let now = Instant::now();
        while let Some(event) = server.deadlines.pop_due(now) {
            server.fire(event);
        }
        // 2. Write what is pending; close who is done.
        server.flush_and_reap();
        // 3. The delta to the earliest deadline left: poll's timeout.
        let timeout = server.deadlines.timeout(Instant::now());
        // 4. The one place where we wait.
        let ready = server.poll_once(timeout)?;
        // 5. Handle what is ready.
        for (source, revents) in ready {
            match source {
                Source::Listener => server.accept_clients(),
                Source::Console => {
                    if server.read_console() {
                        // Aufräumen
                        server.shutdown();
                        return Ok(());
                    }
                }
                Source::Client { fd, id } => {
                    // Closed and replaced by a newer client since `poll`?
                    if server.clients.get(&fd).is_none_or(|c| c.id != id) {
                        continue;
                    }
                    if revents.contains(PollFlags::POLLOUT) {
                        if let Some(client) = server.clients.get_mut(&fd) {
                            client.flush();
                        }
                    }
                    if revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                        server.read_client(fd, &mut buf);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// The options.
struct Config {
    port: u16,
    idle_ms: u64,
}

enum Command {
    Run(Config),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Failure> {
    let mut config = Config { port: 0, idle_ms: DEFAULT_IDLE_MS };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg.into_string().map_err(|arg| Failure::Usage(format!("argument {arg:?} is not UTF-8")))?;
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg, None),
        };
        if name == "-h" || name == "--help" {
            return Ok(Command::Help);
        }
        if name != "--port" && name != "--idle-ms" {
            return Err(Failure::Usage(format!("unexpected argument {name:?}")));
        }
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value")))?,
        };
        if name == "--port" {
            config.port =
                value.parse().map_err(|_| Failure::Usage(format!("--port needs a port number, not {value:?}")))?;
        } else {
            config.idle_ms =
                value.parse().map_err(|_| Failure::Usage(format!("--idle-ms needs milliseconds, not {value:?}")))?;
        }
    }
    Ok(Command::Run(config))
}

fn main() -> ExitCode {
    let code = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Run(config)) => report(run(config)),
        Ok(Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            0
        }
        Err(failure) => report(Err(failure)),
    };
    ExitCode::from(code)
}

//! `evloop` — the ipc-lab exercise `select`. **This is the file you edit.**
//! Read `exercises/select/README.md` first; grade with `cargo grade select`.
//!
//! Lecture: slides *I/O-Multiplexing*, *I/O-Multiplexing: select*, *fd_set
//! Makros*, *I/O Multiplexing (poll)*, *Timeouts (1)*, *Timeouts (2)*, and
//! *Typische Programmstruktur* from the socket part.
//!
//! A small chat-and-timer server that serves any number of TCP clients and
//! its own stdin with **one thread**. A process that wants data from several
//! connections must not ask them round-robin ("busy waiting ist
//! unpraktisch"), nor block in one `read` while another connection has data.
//! It hands the whole list of descriptors to the kernel and sleeps until at
//! least one of them has something for it — or until a timeout has passed.
//!
//! ```text
//! evloop [--port PORT] [--idle-ms T]        (defaults: 0 = any free port, 10000; T = 0: no idle limit)
//! ```
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
//! Done for you (marked "(Provided.)"): argument parsing, errors and exit
//! codes, the listening socket ([`open_listener`], [`announce`],
//! [`raise_fd_limit`]), the [`Client`] struct with its output buffer
//! ([`Client::send_line`], [`Client::flush`]), the deadline list's types
//! ([`Key`], [`Event`], [`Deadlines`]), stdin handling
//! ([`Server::read_console`]) and closing finished clients
//! ([`Server::flush_and_reap`]).
//!
//! Your work is marked `todo!()`, TODO 1–11. Suggested order:
//!
//! 1. [`Deadlines::push`], [`Deadlines::timeout`], [`Deadlines::pop_due`] — the sorted list of deadlines,
//! 2. [`run`] — the main loop,
//! 3. [`Server::poll_once`] — the `pollfd` array and the one `poll` call,
//! 4. [`Server::accept_clients`] — `accept4` and `welcome ID`,
//! 5. [`Server::touch`] — (re)start a client's idle deadline.
//!
//!    Now `cargo grade select --check welcome` passes.
//!
//! 6. [`receive`] — one non-blocking `recv`,
//! 7. [`take_lines`] — cut complete lines out of the input buffer,
//! 8. [`Server::read_client`] — receive, take lines, execute them,
//! 9. [`Server::handle_line`] — `ECHO`, `SAY`, `TIMER`, `QUIT`, `ERR`,
//! 10. [`Server::fire`] — a timer or an idle deadline is due,
//! 11. [`Server::shutdown`] — `BYE shutdown` to everyone.
//!
//! Rules of the game (the grader checks them from outside): one thread
//! (no `std::thread::spawn`); every wait happens in the one `poll` call;
//! never `println!`, never `unwrap()` on I/O; all system calls through
//! `nix`.
//!
//! Each TODO's doc comment says what it must achieve and why. Stuck? Ask for
//! a hint: `cargo grade --hint select` (the concept), then `--level 2` (the
//! API) and `--level 3` (nearly the code); `--check ID` for one check.

// Lets the unfinished skeleton compile without warnings (`ptr_arg`: clippy
// would suggest `&mut [u8]` for `take_lines`'s input until you call `drain`
// on it).
// Delete this line when you are done: the warnings it hides are useful.
#![allow(unused_variables, unused_mut, unused_imports, dead_code, clippy::ptr_arg)]

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
// Errors and exit codes (Provided.)
// ---------------------------------------------------------------------------

/// Everything that ends the program early: one line on stderr (prefixed
/// `evloop: `), exit status 1. (Provided.)
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
/// (Provided.) Use it like `warn(format_args!("accept: {}", errno.desc()))`.
fn warn(message: fmt::Arguments) {
    let _ = writeln!(std::io::stderr(), "evloop: {message}");
}

/// Turns the result into an exit status, printing the failure (if any).
/// (Provided.)
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

/// A place in the deadline list. (Provided.)
///
/// Ordered by `at` first, then by `seq` (`derive(Ord)` compares the fields
/// in declaration order), so the first entry of a sorted container is always
/// the earliest deadline, and deadlines that fall on the same instant keep
/// the order in which they were set (`seq` counts up: 0, 1, 2, ...).
///
/// The time is *absolute* (slide "Timeouts (1)": "jeweils immer die absolute
/// Zeit merken, wenn Timeout gesetzt wird"): `TIMER 200 x` is stored as the
/// instant it is due, `Instant::now() + Duration::from_millis(200)` — the
/// slide's `gettimeofday` + 200 ms. [`Instant`] is a monotonic clock: unlike
/// `gettimeofday` it does not jump when someone sets the system time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    at: Instant,
    seq: u64,
}

/// What happens when a deadline is reached: the slide's "Kontext, zu dem der
/// Timeout gehört". (Provided.)
///
/// Both name their client by descriptor *and* id. The descriptor alone is
/// not enough: when a client is closed, the kernel hands its number to the
/// next `accept` (always the lowest free number), so "descriptor 7" may be a
/// different client by the time the deadline comes. The id (1, 2, 3, ...,
/// never reused) works as a generation number: an event whose id does not
/// match the client now at that descriptor belongs to a client that has
/// gone.
#[derive(Debug)]
enum Event {
    /// `TIMER MS LABEL` is due: send `TIMER LABEL`.
    Timer { fd: RawFd, id: u64, label: Vec<u8> },
    /// The client has been silent for the whole idle time: `BYE idle`.
    Idle { fd: RawFd, id: u64 },
}

/// The sorted list of all pending deadlines — the timers and the idle
/// deadlines of every client (slide "Timeouts (1)": "Verwalten einer
/// sortierten Liste aller Timeouts"). (Provided: the type, [`Deadlines::new`]
/// and [`Deadlines::cancel`].)
///
/// A `BTreeMap` keeps its keys sorted; inserting, removing and finding the
/// first entry each cost O(log n). That matters: timeouts are "häufig
/// gesetzt, zurückgesetzt, abgeschaltet" (every line a client sends resets
/// its idle deadline) "und müssen deshalb effizient implementiert werden".
/// A `Vec` you sort after every insertion, or search from end to end before
/// every `poll`, works but costs O(n) each time.
struct Deadlines {
    list: BTreeMap<Key, Event>,
    /// The `seq` for the next [`Key`].
    next_seq: u64,
}

impl Deadlines {
    /// (Provided.)
    fn new() -> Self {
        Deadlines { list: BTreeMap::new(), next_seq: 0 }
    }

    /// TODO 1a — add `event`, due at the absolute time `at`; return its key.
    ///
    /// What it must achieve: the deadline is in the list, found again by the
    /// returned [`Key`] (the caller keeps it to [`Deadlines::cancel`] the
    /// deadline later, e.g. an idle deadline that is reset), and deadlines on
    /// the same instant come out in the order they were pushed (see [`Key`]:
    /// `seq` counts up).
    ///
    /// Look up: [`Key`], `BTreeMap::insert`.
    fn push(&mut self, at: Instant, event: Event) -> Key {
        todo!("TODO 1a: add a deadline")
    }

    /// Removes a deadline that is no longer wanted (an idle deadline that
    /// was reset). Cancelling one that has already fired does nothing.
    /// (Provided.)
    fn cancel(&mut self, key: Key) {
        self.list.remove(&key);
    }

    /// TODO 1b — the timeout for the next `poll`: the delta from `now` to the
    /// earliest deadline (slide "Timeouts (1)": "Abstand von frühestem Timeout
    /// zur aktuellen Zeit bestimmen; dieses Delta an poll/select() als Timeout
    /// übergeben").
    ///
    /// What it must achieve: no deadline at all → block until a descriptor is
    /// ready (an idle server sleeps and uses no CPU, `idle-cpu`); otherwise the
    /// time left until the earliest deadline in milliseconds, never negative (a
    /// deadline already past gives 0 — the slide's `delta.tv_sec < 0` case), and
    /// never *shorter* than the time left: a timeout rounded down to 0 ms while
    /// 0.7 ms remain wakes `poll` at once with nothing due, and the loop spins
    /// until the deadline really comes. A delta too large for `poll`'s `int`
    /// waits as long as it can; the loop computes afresh afterwards.
    ///
    /// Pitfalls:
    /// - a zero timeout "to check the timers often" is the slide's
    ///   `(0, 0) == Busy Waiting`;
    /// - compute the delta afresh before *every* `poll`, from the absolute
    ///   deadline: passing "200 ms" again after 150 ms went by on other work
    ///   fires 150 ms late — the same mistake as reusing `select`'s
    ///   `struct timeval`, which `select` has overwritten with the time left.
    ///
    /// Look up: `BTreeMap::first_key_value`; `Instant::saturating_duration_since`,
    /// `Duration::as_nanos`, `u128::div_ceil`; `nix::poll::PollTimeout` (its
    /// constants and its `TryFrom` conversions); `man 2 poll` (the timeout).
    fn timeout(&self, now: Instant) -> PollTimeout {
        todo!("TODO 1b: the timeout for poll")
    }

    /// TODO 1c — take the earliest deadline off the list if it is due (its time
    /// is not later than `now`); otherwise `None`.
    ///
    /// The caller calls this in a loop before every `poll` and handles
    /// everything that is due — several deadlines may have passed while the
    /// server was busy ("Prüfen, ob dieser Zeitpunkt bereits verstrichen ist →
    /// ggf. sofort behandeln"). Never hand out a deadline whose time has not
    /// come: `poll` may return early (a client sent something), and a timer
    /// must never be early (`timers`).
    ///
    /// Look up: `BTreeMap::first_entry` and its `OccupiedEntry`.
    fn pop_due(&mut self, now: Instant) -> Option<Event> {
        todo!("TODO 1c: the earliest deadline, if due")
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// Where a client connection stands. (Provided.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Connected; its commands are read and executed.
    Open,
    /// Said goodbye (`BYE`, `BYE idle`): its output is written once more,
    /// then it is closed (by [`Server::flush_and_reap`]). Nothing more is
    /// read from it or sent to it.
    Closing,
    /// Disconnected (EOF, reset, write error) or dropped: closed without
    /// writing anything more.
    Gone,
}

/// One connected client. (Provided.)
struct Client {
    /// The connected socket (non-blocking). Dropping the `Client` closes it.
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
    /// (Provided.)
    fn new(fd: OwnedFd, id: u64) -> Self {
        Client { fd, id, input: Vec::new(), output: Vec::new(), idle_key: None, state: State::Open }
    }

    /// Queues `line` plus `\n` for sending. (Provided.)
    ///
    /// Nothing is written here; the main loop writes all pending output
    /// ([`Server::flush_and_reap`]) before it waits in `poll`. So you can
    /// call this anywhere, also for many clients in a row (`SAY`), and no
    /// client that does not read can ever block you.
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
    /// try again. (Provided.)
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

/// What one `recv` from a client brought. (Provided.)
enum Received {
    /// Bytes, appended to the client's input buffer.
    Bytes,
    /// Nothing after all (`EAGAIN`, `EINTR`): go back to `poll`.
    Nothing,
    /// End of file or a connection error: the client has gone.
    Gone,
}

/// TODO 6 — one non-blocking `recv` from a client that `poll` reported
/// readable (or hung up, or in error).
///
/// What it must achieve: bytes that arrived are appended to the client's
/// input buffer ([`Received::Bytes`]); end of file or a connection error
/// (the client reset) is [`Received::Gone`]; "nothing there after all" or an
/// interrupted call is [`Received::Nothing`] — nothing lost, back to `poll`.
///
/// **Exactly one call.** `poll` said there is *something*, not how much, and
/// certainly not "a whole line". Reading "until the line is complete" blocks
/// — or, on a non-blocking socket, spins — as soon as one client stalls in
/// the middle of a line, and the whole server with it: every other client
/// waits (`stalled-client`). What you got goes into the buffer;
/// [`take_lines`] cuts out the complete lines, the rest waits for the next
/// `recv`.
///
/// Look up: `nix::sys::socket::{recv, MsgFlags}`, `man 2 recv` (what 0 and
/// EAGAIN mean).
fn receive(client: &mut Client, buf: &mut [u8]) -> Received {
    todo!("TODO 6: one recv")
}

/// TODO 7 — cut every complete line off the front of `input` and return
/// them, without their `\n` (and without a `\r` right before it, so `telnet`
/// works too). An incomplete last line stays in `input` until the rest
/// arrives.
///
/// One `recv` may bring `ECHO a\nECHO b\nEC`: that is two lines, and the
/// start of a third (`split-and-packed`).
///
/// Pitfalls: handling only the first line of a `recv` (the others are lost,
/// or wait until the client happens to send again); throwing away the
/// incomplete rest (a command that arrives in pieces is never recognised).
/// Work on bytes: `ECHO` must return non-UTF-8 text exactly.
///
/// Look up: `Iterator::position`, `Vec::drain`.
fn take_lines(input: &mut Vec<u8>) -> Vec<Vec<u8>> {
    todo!("TODO 7: cut out the complete lines")
}

/// Splits `MS LABEL` (the arguments of `TIMER`) into milliseconds and label;
/// `None` if malformed. (Provided.)
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

/// Who a `pollfd` entry belongs to. (Provided.)
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
/// (Provided.)
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
    /// The id for the next client (starts at 1).
    next_id: u64,
    /// `--idle-ms`; `None` for 0 (no idle limit).
    idle: Option<Duration>,
    /// False while `accept` fails for lack of descriptors (EMFILE): then the
    /// listening socket stays readable, and polling it would only spin.
    accepting: bool,
}

impl Server {
    /// (Provided.)
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

    /// TODO 10 — handle one deadline taken off the list.
    ///
    /// What it must achieve:
    /// - a timer sends `TIMER LABEL` to its client, if that client is still
    ///   there and `Open`;
    /// - an idle deadline sends `BYE idle` to its client and starts closing it
    ///   ([`State::Closing`]: [`Server::flush_and_reap`] writes the line and
    ///   closes it) if the client is still there and `Open`; either way the
    ///   client's idle deadline is no longer in the list — forget its key;
    /// - an event whose client has gone is dropped. That is how a closed
    ///   client's pending timers disappear, without searching the list for them
    ///   when it closes.
    ///
    /// Pitfall — "still there": the descriptor alone does not say so. After
    /// client 1 (descriptor 5) has been idle-closed, the next client that
    /// connects gets descriptor 5 again, and client 1's timer would go to it
    /// (`idle-drops-timers`). See [`Event`].
    fn fire(&mut self, event: Event) {
        todo!("TODO 10: a deadline is due")
    }

    /// TODO 5 — (re)start the idle deadline of the client at `fd`: it must get
    /// `BYE idle` when it has sent nothing for T ms (`idle-timeout`).
    ///
    /// What it must achieve: nothing without an idle limit (`--idle-ms 0`) or
    /// without a client at `fd`; otherwise the client has exactly one idle
    /// deadline, T ms from now, whose key it keeps in `idle_key`. Called when a
    /// client connects and whenever it sends bytes — any bytes, also half a
    /// line.
    ///
    /// Pitfalls: forgetting the reset (an active client is thrown out T ms after
    /// it connected); pushing a new deadline without removing the old one (the
    /// old one still fires).
    ///
    /// Look up: [`Deadlines::push`], [`Deadlines::cancel`], [`Event::Idle`];
    /// `Option::take`.
    fn touch(&mut self, fd: RawFd) {
        todo!("TODO 5: restart the idle deadline")
    }

    /// TODO 4 — accept every pending connection; each new client gets
    /// `welcome ID` and an idle deadline.
    ///
    /// What it must achieve: all connections waiting now are accepted — not
    /// just one per `poll` — each a non-blocking socket, closed on exec; each
    /// new client gets the next id (1, 2, 3, … in accept order, `welcome`), the
    /// line `welcome ID` queued, a place in `self.clients` under its descriptor
    /// number, and its idle deadline ([`Server::touch`]). When no connection is
    /// left, return.
    ///
    /// Errors, by what they mean:
    /// - a signal, or a client that connected and reset before we got to it:
    ///   go on with the next;
    /// - out of descriptors or memory: [`warn`], stop accepting
    ///   (`self.accepting = false`) and return. The connection stays queued and
    ///   the listening socket stays readable: polling it again would wake the
    ///   loop at once, forever. [`Server::flush_and_reap`] switches accepting
    ///   back on when a client leaves;
    /// - anything else: [`warn`] and return.
    ///
    /// Why non-blocking: every `recv`/`send` on a client socket must return
    /// EAGAIN instead of waiting. The listening socket is non-blocking too
    /// ([`open_listener`]): a client may connect and reset between `poll` and
    /// `accept`, and a blocking `accept` would then hang the server until the
    /// next connection.
    ///
    /// Look up: `nix::sys::socket::{accept4, SockFlag}`, `man 2 accept4` (the
    /// flags, and the ERRORS list); [`Client::new`], [`Client::send_line`].
    fn accept_clients(&mut self) {
        todo!("TODO 4: accept the pending connections")
    }

    /// TODO 8 — read from the client at `fd` (which `poll` reported readable,
    /// hung up, or in error) and execute every complete line it has now.
    ///
    /// What it must achieve: one [`receive`]. A client that has gone is marked
    /// [`State::Gone`] (it is closed by [`Server::flush_and_reap`]); if bytes
    /// came, every complete line is executed in order ([`Server::handle_line`])
    /// — but nothing after a line that ended the conversation (after `QUIT`,
    /// the client is no longer `Open`) — and the client's idle deadline starts
    /// again ([`Server::touch`]). An incomplete rest longer than [`MAX_LINE`]
    /// gets `ERR line too long` and the client is closed.
    ///
    /// Borrowing: a client borrowed from `self.clients` must be finished with
    /// before you call a method that needs all of `self` (`touch`,
    /// `handle_line`); look it up again where you need it afterwards.
    ///
    /// Look up: [`receive`], [`take_lines`], `BTreeMap::get_mut`.
    fn read_client(&mut self, fd: RawFd, buf: &mut [u8]) {
        todo!("TODO 8: receive and execute lines")
    }

    /// TODO 9 — execute one command line from the client at `fd`.
    ///
    /// What it must achieve (the contract in the module docs and the README):
    /// - `ECHO TEXT` → `TEXT` to the sender;
    /// - `SAY TEXT` → `ID: TEXT` (the *sender's* id) to every *other* client
    ///   that is `Open` (`say`);
    /// - `TIMER MS LABEL` ([`parse_timer`]) → a deadline MS milliseconds from
    ///   now that will send `TIMER LABEL` to this client ([`Event::Timer`]).
    ///   Nothing is sent now. An MS so large that the instant cannot be
    ///   represented is malformed;
    /// - `QUIT` (nothing after it) → `BYE`, and the client starts closing;
    /// - anything else — also `ECHO` without a space, or a malformed `TIMER` —
    ///   → `ERR unknown command`.
    ///
    /// Never wait here: `TIMER` does not sleep (one `sleep` stops every client),
    /// it only adds a deadline; [`run`]'s `poll` wakes up for it.
    ///
    /// Look up: matching on byte-string literals (`b"ECHO"`);
    /// `Instant::checked_add`; [`Deadlines::push`]; [`Client::send_line`].
    fn handle_line(&mut self, fd: RawFd, line: &[u8]) {
        todo!("TODO 9: execute one command")
    }

    /// Reads from stdin, which `poll` reported readable or hung up. Returns
    /// true when the server is to shut down: a line `quit`, or end of file.
    /// (Provided.)
    ///
    /// A pipe whose writer has closed is reported as POLLHUP *without*
    /// POLLIN; the `read` then returns 0. Reacting only to POLLIN would miss
    /// the EOF — and since `poll` reports POLLHUP again and again, the loop
    /// would spin. Call this when `revents` has POLLIN *or* POLLHUP (or
    /// POLLERR).
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

    /// TODO 3 — wait in one `poll` until a descriptor is ready or `timeout` has
    /// passed (slide "I/O Multiplexing (poll)"), and say who is ready, with
    /// what.
    ///
    /// What it must achieve: `poll` watches the listening socket (only while
    /// `self.accepting`), stdin and every client — for input unless the
    /// client's unsent output has reached [`PAUSE_BACKLOG`] (flow control), and
    /// for room to write only while it has output waiting. It returns the
    /// [`Source`] and the reported events of every descriptor that has any;
    /// nothing when the timeout passed or a signal interrupted the wait
    /// ("Reparierbar (z.B. interrupted system call) → nochmal"); any other
    /// error is fatal ("Fatal → Terminate").
    ///
    /// `PollFd` borrows the descriptor, so the array cannot outlive `&self`:
    /// that is why this returns plain `(Source, PollFlags)` pairs and the
    /// caller handles them afterwards.
    ///
    /// Pitfalls:
    /// - asking every client for room to write, always: a socket with room in
    ///   its buffer is always writable, so `poll` returns at once, every time —
    ///   a busy loop (`idle-cpu`);
    /// - hang-ups and errors are reported even if you did not ask for them; the
    ///   caller must react to them (read, see EOF or the error, close), or
    ///   `poll` reports them again and again;
    /// - why not `select`: an `fd_set` holds descriptors below `FD_SETSIZE` =
    ///   1024 only ("fd_set Makros"); nix's `FdSet::insert` panics for 1024 and
    ///   above, C's `FD_SET` silently writes past the array. With the
    ///   descriptor limit raised, 500 clients get close (`many-clients`). And
    ///   `select` overwrites its sets and its `timeval`: everything must be
    ///   rebuilt before each call. `poll` has neither problem.
    ///
    /// Look up: `nix::poll::{poll, PollFd, PollFlags}`, `man 2 poll`
    /// (`revents`, POLLHUP, POLLERR); `AsFd::as_fd`.
    fn poll_once(&self, timeout: PollTimeout) -> Result<Vec<(Source, PollFlags)>, Failure> {
        todo!("TODO 3: one poll over every descriptor")
    }

    /// Writes the pending output of every client, then closes the clients
    /// that are done: those that said goodbye (`Closing`; whatever of their
    /// output the socket did not take is dropped — we never wait for a
    /// client) and those that are `Gone`. Closing one cancels its idle
    /// deadline; its timers stay in the list and are dropped by
    /// [`Server::fire`] when they come due. (Provided.)
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

    /// TODO 11 — `quit` or EOF on stdin: say `BYE shutdown` to every client and
    /// close them all (`shutdown`).
    ///
    /// What it must achieve: every client that is `Open` gets `BYE shutdown`;
    /// every client's pending output gets its last chance to go out (we are
    /// about to exit); then every client socket is closed (slide "Typische
    /// Programmstruktur", *Aufräumen*: "Alle Deskriptoren schließen").
    ///
    /// Look up: [`Client::send_line`], [`Client::flush`]; dropping a [`Client`]
    /// closes its socket.
    fn shutdown(&mut self) {
        todo!("TODO 11: goodbye to everyone")
    }
}

// ---------------------------------------------------------------------------
// Setting up (slide "Typische Programmstruktur": Initialisierung) (Provided.)
// ---------------------------------------------------------------------------

/// Raises the soft limit of open descriptors to the hard limit. Each client
/// costs one descriptor; the usual soft limit of 1024 leaves room for 1021
/// clients at best. Failing to raise it is not fatal. (Provided.)
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
/// is bound to, read back with `getsockname`. (Provided.)
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
/// started us waits for this line before connecting. (Provided.)
fn announce(addr: &SockaddrIn) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush()).map_err(|e| Failure::Io("stdout", e))
}

// ---------------------------------------------------------------------------
// The main loop (slides "Typische Programmstruktur", "I/O Multiplexing (poll)",
// "Timeouts (1)")
// ---------------------------------------------------------------------------

/// TODO 2 — set everything up and run the event loop until stdin says
/// `quit` or ends. Return `Ok(())` then (exit status 0).
///
/// *Initialisierung* — all provided, you only call it: raise the descriptor
/// limit ([`raise_fd_limit`]), open the listening socket
/// ([`open_listener`]), take the server's own copy of descriptor 0 (the
/// server owns everything it polls), print the address ([`announce`]), make
/// the [`Server`] (`--idle-ms 0` means no idle limit) and one receive buffer
/// of [`READ_CHUNK`] bytes for all clients.
///
/// *Hauptschleife*, forever, in this order — each step has its reason:
/// 1. handle every deadline that is due ([`Deadlines::pop_due`],
///    [`Server::fire`]): "Prüfen, ob dieser Zeitpunkt bereits verstrichen
///    ist → ggf. sofort behandeln";
/// 2. write pending output and close the clients that are done
///    ([`Server::flush_and_reap`]);
/// 3. compute the timeout afresh ([`Deadlines::timeout`]);
/// 4. wait — in [`Server::poll_once`], the *only* place the program waits;
/// 5. handle what is ready: the listener → [`Server::accept_clients`];
///    stdin → [`Server::read_console`], and when that says stop,
///    [`Server::shutdown`] and return (*Aufräumen*); a client → first make
///    sure it is still the client that was polled (it may have been closed,
///    and its descriptor reused by a client accepted earlier in this same
///    round), then write its output if it has room ([`Client::flush`]), and
///    read from it ([`Server::read_client`]) if it is readable, hung up or
///    in error: a hang-up or an error shows up as EOF or an error from
///    `recv`.
///
/// Rules: nothing in the loop may block except `poll`. No `sleep`, no
/// blocking `read`, no thread: `single-thread` and `idle-cpu` check that
/// the process has exactly one thread and uses no CPU while idle.
///
/// Look up: `std::os::fd::BorrowedFd::try_clone_to_owned` (a duplicate of a
/// descriptor, `man 2 dup`); `Instant::now`; `PollFlags::contains` and
/// `intersects`.
fn run(config: Config) -> Result<(), Failure> {
    todo!("TODO 2: set up, then the event loop")
}

// ---------------------------------------------------------------------------
// Command line (Provided.)
// ---------------------------------------------------------------------------

/// The options. (Provided.)
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

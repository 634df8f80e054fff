//! `bus-counter` — the ipc-lab exercise `bus`, the service. **This is a file
//! you edit** (the other one is `bus-watch.rs` next to it; do this one
//! first).
//!
//! Read `exercises/bus/README.md` first; grade with
//! `cargo grade bus --check counter-`.
//!
//! ```text
//! bus-counter          (the bus: DBUS_SESSION_BUS_ADDRESS)
//! ```
//!
//! A counter on the D-Bus session bus (slide "Beispiel: Dbus (Linux)":
//! „Adressierung über Namen (well-known names)“, „Möglichkeit, Signale und
//! Funktionen zu registrieren“). It owns the name `de.ipclab.Counter` and
//! serves the object `/de/ipclab/Counter` with the interface
//! `de.ipclab.Counter1`:
//!
//! ```text
//! Add(x: i64) -> total: i64   on overflow the error de.ipclab.Counter1.Error.Overflow, total unchanged
//! Get() -> total: i64
//! Reset()
//! Quit()                      replies, releases the name, exits 0
//! signal Changed(total: i64)  after every Add and Reset (never after Get or a failed Add)
//! ```
//!
//! It prints `ready UNIQUE-NAME` once it owns the name and serves the
//! object. Name taken: `bus-counter: name de.ipclab.Counter is taken` on
//! stderr, exit 1. SIGINT or SIGTERM: release the name, exit 0. The bus
//! goes away: `bus-counter: lost the bus connection`, exit 1.
//!
//! What is done for you: connecting ([`connect`]), exporting the object
//! ([`export`], [`Counter`]) and the shape of its interface (the `impl
//! Counter` block with the `#[interface]` attribute, the signal
//! `changed`), the overflow error ([`CounterError`]), SIGINT/SIGTERM as
//! events on a channel ([`stop_signals`], [`Event`]), `ready`
//! ([`announce`]), waiting for pending replies ([`answer_pending_calls`]),
//! error messages and `main`. What you write, in this order:
//!
//! 1. [`own_name`] — the well-known name, without queueing;
//!    now `cargo grade bus --check counter-refuses` should pass;
//! 2. `Counter::get`, 3. `Counter::add`, 4. `Counter::reset` — the service,
//!    with the signal `Changed`; try it with `busctl --user` (README);
//! 5. `Counter::quit` — tell the main thread;
//! 6. [`watch_connection`] — notice when the bus goes away;
//! 7. [`release_name`] and 8. [`serve`] — the shutdown paths.
//!
//! Rules of the game (the grader checks them from outside):
//! - talk to the bus through zbus (its blocking API, `zbus::blocking`);
//! - the main thread waits in one blocking `recv` — no busy loop;
//! - never `println!`, never `unwrap()`/`expect()` on a call to the bus:
//!   a panic fails the check (a panic in a method handler leaves the
//!   caller without an answer).

// Lets the untouched skeleton compile without warnings.
// Delete this line when you are done: the warnings it hides are useful.
#![allow(unused_variables, unused_mut, unused_imports, dead_code)]

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::mpsc::{channel, Receiver, Sender};

use nix::sys::signal::{SigSet, Signal};
use zbus::blocking::{Connection, MessageIterator};
use zbus::fdo::RequestNameFlags;
use zbus::message::Type;
use zbus::object_server::SignalEmitter;
use zbus::{interface, DBusError, MatchRule};

/// The well-known name of the service.
const NAME: &str = "de.ipclab.Counter";

/// The object that carries the interface.
const PATH: &str = "/de/ipclab/Counter";

// ---------------------------------------------------------------------------
// Errors and exit codes (Provided.)
// ---------------------------------------------------------------------------

/// Everything that ends the service with status 1: one line on stderr,
/// prefixed `bus-counter: `.
#[derive(Debug)]
enum Failure {
    /// No session bus (DBUS_SESSION_BUS_ADDRESS unset, or nobody there).
    NoBus(zbus::Error),
    /// Another connection owns [`NAME`].
    Taken,
    /// The connection to the bus ended while serving.
    Lost,
    /// Any other error of the bus.
    Bus(zbus::Error),
    /// A failed system call.
    Sys(&'static str, nix::errno::Errno),
    /// Writing `ready` failed.
    Stdout(std::io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NoBus(e) => write!(f, "cannot connect to the session bus: {e}"),
            Failure::Taken => write!(f, "name {NAME} is taken"),
            Failure::Lost => write!(f, "lost the bus connection"),
            Failure::Bus(e) => write!(f, "D-Bus: {e}"),
            Failure::Sys(what, errno) => write!(f, "{what}: {}", errno.desc()),
            Failure::Stdout(e) => write!(f, "writing stdout: {e}"),
        }
    }
}

/// One diagnostic line on stderr (`writeln!`, not `eprintln!`, which
/// panics when stderr is gone).
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "bus-counter: {message}");
}

// ---------------------------------------------------------------------------
// Events: what the main thread waits for (Provided.)
// ---------------------------------------------------------------------------

/// The three things that end the service, sent to the main thread.
#[derive(Debug)]
enum Event {
    /// A client called `Quit` (sent by its handler).
    Quit,
    /// SIGINT or SIGTERM arrived.
    Stop,
    /// The connection to the bus ended.
    Lost,
}

/// SIGINT and SIGTERM as [`Event::Stop`]: blocks both — before any other
/// thread exists, so every thread zbus starts later inherits the mask and
/// none of them is killed by the default action — and starts a thread that
/// takes them with `sigwait` and sends them to `events`.
fn stop_signals(events: Sender<Event>) -> Result<(), Failure> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    mask.thread_block().map_err(|e| Failure::Sys("pthread_sigmask", e))?;
    std::thread::spawn(move || {
        while mask.wait().is_ok() {
            if events.send(Event::Stop).is_err() {
                break;
            }
        }
    });
    Ok(())
}

// ---------------------------------------------------------------------------
// The service: the object and its interface
// ---------------------------------------------------------------------------

/// The error `Add` replies on overflow: its D-Bus name is the prefix and
/// the variant, `de.ipclab.Counter1.Error.Overflow`. (Provided.)
#[derive(Debug, DBusError)]
#[zbus(prefix = "de.ipclab.Counter1.Error")]
enum CounterError {
    /// Any error of zbus itself (emitting the signal failed).
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The sum does not fit into an i64; the text says which.
    Overflow(String),
}

/// The object at [`PATH`]: the total, and the way to tell the main thread
/// that a client called `Quit`. (Provided.)
struct Counter {
    total: i64,
    events: Sender<Event>,
}

/// The interface `de.ipclab.Counter1`: zbus turns every method of this
/// block into a D-Bus method (`add` → `Add`), answers a call with the
/// method's return value (`Ok`) or error (`Err`), and describes the block
/// to `Introspect`. The signatures are given: i64 is D-Bus `x`, `()` is no
/// value; `#[zbus(out_args("total"))]` names the returned value.
///
/// The methods run on zbus's own thread, one call at a time for `&mut
/// self`. A `todo!()` or `unwrap` that panics here never ends the program:
/// the caller simply gets no answer. Only the methods of this block are on
/// the bus — a helper written in here would be a D-Bus method too: put
/// helpers into a separate `impl Counter` block.
#[interface(name = "de.ipclab.Counter1")]
impl Counter {
    /// TODO 3 — `Add(x) -> total`: add `x` to the total and return the new
    /// total; emit `Changed(total)` after the change.
    ///
    /// Overflow: the sum of two i64 may not fit (`i64::MAX + 1`). Then
    /// reply the error `CounterError::Overflow` (its text says what did not
    /// fit) and leave the total exactly as it was — and emit nothing.
    ///
    /// Emitting: the signal function [`Counter::changed`] below, given to
    /// you, sends the signal from this object — `emitter` knows the path
    /// and the connection — with no destination: the bus hands it to every
    /// connection subscribed to it, not only to the caller.
    ///
    /// Pitfall: `self.total + x` panics on overflow in a debug build and
    /// wraps around in a release build; neither is the contract.
    ///
    /// Look up: `i64::checked_add`, `Option::ok_or_else`.
    #[zbus(out_args("total"))]
    async fn add(&mut self, x: i64, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) -> Result<i64, CounterError> {
        todo!("TODO 3: Add, the new total or the Overflow error")
    }

    /// TODO 2 — `Get() -> total`: the total. Reading changes nothing, so it
    /// emits nothing.
    #[zbus(out_args("total"))]
    fn get(&self) -> i64 {
        todo!("TODO 2: Get, the total")
    }

    /// TODO 4 — `Reset()`: the total is 0 again; emit `Changed(0)` — every
    /// Reset, as every Add, is reported.
    async fn reset(&mut self, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) -> Result<(), CounterError> {
        todo!("TODO 4: Reset, and Changed(0)")
    }

    /// TODO 5 — `Quit()`: tell the main thread (send [`Event::Quit`] on
    /// `self.events`) and return. zbus sends the reply once this returns.
    ///
    /// Why not exit here: the reply is sent *after* the method returns. A
    /// process that exits inside the method leaves the caller with the
    /// error "NoReply". The main thread shuts down ([`serve`]).
    fn quit(&self) {
        todo!("TODO 5: Quit, told to the main thread")
    }

    /// The signal `Changed(total)`, emitted from [`PATH`] with this
    /// interface to everybody subscribed. zbus writes the body.
    #[zbus(signal)]
    async fn changed(emitter: &SignalEmitter<'_>, total: i64) -> zbus::Result<()>;
}

// ---------------------------------------------------------------------------
// Setting up: connect, export, own the name, announce
// ---------------------------------------------------------------------------

/// Connects to the session bus `DBUS_SESSION_BUS_ADDRESS` names; the bus
/// gives the connection its unique name. (Provided.)
fn connect() -> Result<Connection, Failure> {
    Connection::session().map_err(Failure::NoBus)
}

/// Exports a [`Counter`] at [`PATH`]: from now on zbus answers calls to it
/// on `conn`. (Provided.)
fn export(conn: &Connection, events: Sender<Event>) -> Result<(), Failure> {
    conn.object_server().at(PATH, Counter { total: 0, events }).map_err(Failure::Bus)?;
    Ok(())
}

/// TODO 1 — request the well-known name [`NAME`] for this connection
/// (slide: „Adressierung über Namen“, „Konventionen über Namensvergabe
/// erforderlich (wie bei Ports)“).
///
/// What: ask the bus for the name with the flag DO_NOT_QUEUE and no other
/// flag. The name taken: `Failure::Taken` (`main` prints `bus-counter: name
/// de.ipclab.Counter is taken` and exits 1); any other error
/// `Failure::Bus`.
///
/// Why these flags: a name has one owner at a time, like a port. Without
/// DO_NOT_QUEUE the bus puts a second counter into a queue (the reply
/// IN_QUEUE — no error!) and it would wait for the first one to go. With
/// REPLACE_EXISTING it would take the name from a first counter that
/// allowed it (ALLOW_REPLACEMENT). Neither is the contract: the second
/// counter fails.
///
/// Pitfall: zbus's `Connection::request_name` sets DO_NOT_QUEUE *and*
/// REPLACE_EXISTING *and* ALLOW_REPLACEMENT — two counters would hand the
/// name back and forth. Use `request_name_with_flags`; with DO_NOT_QUEUE
/// alone a taken name is the error `zbus::Error::NameTaken`.
///
/// Look up: `zbus::blocking::Connection::request_name_with_flags`,
/// `zbus::fdo::RequestNameFlags` (`RequestNameFlags::DoNotQueue.into()`
/// makes the flag set), `zbus::fdo::RequestNameReply`.
fn own_name(conn: &Connection) -> Result<(), Failure> {
    todo!("TODO 1: own the name, without queueing")
}

/// TODO 6 — send [`Event::Lost`] to `events` when the connection to the
/// bus ends (the daemon died).
///
/// How you notice: zbus reads the bus's socket on its own thread. When the
/// socket reaches EOF, every *message stream* of the connection ends —
/// after one last `Err` item. So: make a stream, give it to a thread of
/// its own that reads it to its end, and then sends [`Event::Lost`].
///
/// Which stream: one that receives (next to) nothing while all is well —
/// a match rule for a signal you never expect, e.g. the bus's `NameLost`
/// for [`NAME`] (sender `org.freedesktop.DBus`, member `NameLost`, arg0
/// the name). A stream of *every* message would work too, but queues
/// every message the connection gets.
///
/// Why a thread: the main thread waits on the channel for three kinds of
/// events; this is how the connection's end becomes one of them.
///
/// Look up: `zbus::MatchRule::builder()` (`msg_type`, `sender`, `member`,
/// `arg`, `build`), `zbus::blocking::MessageIterator::for_match_rule`
/// (an `Iterator` of `Result<Message>`), `std::thread::spawn`.
fn watch_connection(conn: &Connection, events: Sender<Event>) -> Result<(), Failure> {
    todo!("TODO 6: Event::Lost when the connection ends")
}

/// Prints `ready UNIQUE-NAME` and flushes: whoever reads it may call at
/// once. (Provided.)
fn announce(conn: &Connection) -> Result<(), Failure> {
    let unique = conn.unique_name().map(|n| n.to_string()).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready {unique}").and_then(|()| stdout.flush()).map_err(Failure::Stdout)
}

// ---------------------------------------------------------------------------
// Shutting down
// ---------------------------------------------------------------------------

/// Waits until every method call that has reached the object so far is
/// answered: zbus holds the object's lock while a method runs *and* while
/// its reply is sent, so taking the lock for writing waits for both.
/// (Provided.)
///
/// Why: `Quit` tells the main thread before zbus has sent its reply; a
/// process that exits in that moment leaves the caller with "NoReply".
fn answer_pending_calls(conn: &Connection) -> Result<(), Failure> {
    let counter = conn.object_server().interface::<_, Counter>(PATH).map_err(Failure::Bus)?;
    drop(counter.get_mut());
    Ok(())
}

/// TODO 7 — give [`NAME`] back to the bus.
///
/// Why: observers (`bus-watch`) see `NameOwnerChanged(de.ipclab.Counter,
/// YOUR-UNIQUE-NAME, "")` — the name has no owner — and the next counter
/// can take it. (The bus also releases every name of a connection that
/// closes; releasing it yourself is the orderly way, before you go.)
///
/// Look up: `zbus::blocking::Connection::release_name`.
fn release_name(conn: &Connection) -> Result<(), Failure> {
    todo!("TODO 7: give the name back")
}

/// TODO 8 — wait for the one event that ends the service, and end it that
/// way (`main` turns `Ok` into status 0, `Err` into the message and 1):
///
/// - [`Event::Quit`]: the caller must get its reply first — call
///   [`answer_pending_calls`] — then release the name: `Ok`;
/// - [`Event::Stop`] (SIGINT, SIGTERM): release the name: `Ok`;
/// - [`Event::Lost`]: the bus is gone, there is nothing to release:
///   `Failure::Lost` (`bus-counter: lost the bus connection`, exit 1).
///
/// Why one blocking `recv`: the main thread has nothing to do until one of
/// them comes. Every sender lives as long as the program (zbus keeps the
/// [`Counter`] and its `events`), so `recv` does not fail while all is well.
///
/// Pitfall: a loop around `try_recv` (or `recv_timeout` with a short
/// timeout) works — and keeps a CPU busy or waking up all the time
/// (`counter-idle` measures both).
fn serve(conn: &Connection, events: &Receiver<Event>) -> Result<(), Failure> {
    todo!("TODO 8: wait for the event that ends the service")
}

// ---------------------------------------------------------------------------
// Main (Provided.)
// ---------------------------------------------------------------------------

/// Signals first (before zbus starts its threads), then connect, export,
/// own the name, watch the connection, `ready`, serve.
fn run() -> Result<(), Failure> {
    let (events, wait) = channel();
    stop_signals(events.clone())?;
    let conn = connect()?;
    export(&conn, events.clone())?;
    own_name(&conn)?;
    watch_connection(&conn, events)?;
    announce(&conn)?;
    serve(&conn, &wait)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            diagnose(&failure.to_string());
            ExitCode::from(1)
        }
    }
}

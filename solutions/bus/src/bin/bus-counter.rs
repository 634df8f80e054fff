//! `bus-counter` — reference solution of the ipc-lab exercise `bus` (SPEC
//! §4.8), the service: a counter on the D-Bus session bus, found by its
//! well-known name.
//!
//! Lecture: slide "Beispiel: Dbus (Linux)" — „Busse für alle
//! Kommunikationspartner (System Bus, Session Bus)“, „Adressierung über
//! Namen (well-known names)“: „Jeder Teilnehmer bekommt eine Adresse und
//! einen oder mehrere Namen“, „Konventionen über Namensvergabe erforderlich
//! (wie bei Ports)“, „Möglichkeit, Signale und Funktionen zu registrieren“,
//! Remote Method Invocation and Publish/Subscribe — and "Software-Bussysteme"
//! (N connections to one bus instead of N·(N−1) between every pair).
//!
//! ```text
//! bus-counter          (the bus: DBUS_SESSION_BUS_ADDRESS)
//! ```
//!
//! Name `de.ipclab.Counter`, object `/de/ipclab/Counter`, interface
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
//! Prints `ready UNIQUE-NAME` once it owns the name and serves the object.
//! Name taken: `bus-counter: name de.ipclab.Counter is taken`, exit 1. No
//! bus: `bus-counter: cannot connect to the session bus: REASON`, exit 1.
//! SIGINT or SIGTERM: release the name, exit 0. The bus goes away:
//! `bus-counter: lost the bus connection`, exit 1.
//!
//! # The design, and why
//!
//! *Addresses and names.* Connecting gives the program a unique name
//! (`:1.7`, the bus's "Adresse"); clients find the service by the
//! well-known name instead, which it must request — like a port, by
//! convention, and only one owner at a time. The name is requested without
//! queueing: a second counter must fail at once, not wait in line for the
//! first to go.
//!
//! *Export, then name, then `ready`.* zbus's object server answers the
//! method calls of every object exported on the connection. The object is
//! exported before the name is requested, and `ready` printed after both:
//! whoever reads `ready` may call at once, and must neither find no owner
//! nor an owner without the object.
//!
//! *Signals are broadcast.* `Changed` goes to the bus without a
//! destination; the bus hands it to every connection with a matching rule
//! (publish/subscribe). It is emitted only where the total changed, after
//! the change: never for `Get`, never for a failed `Add`.
//!
//! *One thread waits for everything.* zbus runs the connection on a thread
//! of its own; the method handlers run there. The main thread waits on a
//! channel for the three events that end the service: `Quit` (sent by its
//! handler), SIGINT/SIGTERM (blocked in every thread and taken by a thread
//! in `sigwait`) and the end of the connection (a thread reading a message
//! stream sees it end). No polling, no CPU while idle.
//!
//! *Shutting down.* On `Quit` and on a signal the service releases its
//! name (observers see `NameOwnerChanged` with an empty new owner) and
//! exits 0; `Quit`'s own reply must be on its way first. When the bus is
//! gone there is nothing to release: the message and status 1.

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
/// block into a D-Bus method (`add` → `Add`), answers calls with their
/// return values or errors, and describes it all to `Introspect`.
#[interface(name = "de.ipclab.Counter1")]
impl Counter {
    /// `Add(x) -> total`: the sum, or the overflow error with the total
    /// unchanged; `Changed(total)` after a change.
    #[zbus(out_args("total"))]
    async fn add(&mut self, x: i64, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) -> Result<i64, CounterError> {
        let total = self
            .total
            .checked_add(x)
            .ok_or_else(|| CounterError::Overflow(format!("{} + {x} does not fit into 64 bits", self.total)))?;
        self.total = total;
        Self::changed(&emitter, total).await?;
        Ok(total)
    }

    /// `Get() -> total`: reads, changes nothing, emits nothing.
    #[zbus(out_args("total"))]
    fn get(&self) -> i64 {
        self.total
    }

    /// `Reset()`: the total is 0 again; `Changed(0)`.
    async fn reset(&mut self, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) -> Result<(), CounterError> {
        self.total = 0;
        Self::changed(&emitter, 0).await?;
        Ok(())
    }

    /// `Quit()`: tells the main thread; zbus replies once this returns.
    fn quit(&self) {
        let _ = self.events.send(Event::Quit);
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

/// Requests [`NAME`] with DO_NOT_QUEUE and no other flag: a taken name is
/// the error `NameTaken` at once (the bus answers EXISTS), and nobody may
/// take it over later. (`request_name` would also set REPLACE_EXISTING and
/// ALLOW_REPLACEMENT: a second counter would replace the first.)
fn own_name(conn: &Connection) -> Result<(), Failure> {
    match conn.request_name_with_flags(NAME, RequestNameFlags::DoNotQueue.into()) {
        // With DO_NOT_QUEUE the only success is PRIMARY_OWNER.
        Ok(_) => Ok(()),
        Err(zbus::Error::NameTaken) => Err(Failure::Taken),
        Err(e) => Err(Failure::Bus(e)),
    }
}

/// Sends [`Event::Lost`] when the connection ends: a message stream ends
/// when zbus can read no more from the bus's socket. The stream's rule
/// (losing our name) matches nothing while all is well, so the thread
/// sleeps until then.
fn watch_connection(conn: &Connection, events: Sender<Event>) -> Result<(), Failure> {
    let rule = MatchRule::builder()
        .msg_type(Type::Signal)
        .sender("org.freedesktop.DBus")
        .and_then(|r| r.member("NameLost"))
        .and_then(|r| r.arg(0, NAME))
        .map_err(Failure::Bus)?
        .build();
    let messages = MessageIterator::for_match_rule(rule, conn, None).map_err(Failure::Bus)?;
    std::thread::spawn(move || {
        for message in messages {
            if message.is_err() {
                break;
            }
        }
        let _ = events.send(Event::Lost);
    });
    Ok(())
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

/// Gives [`NAME`] back to the bus: observers see `NameOwnerChanged` with
/// an empty new owner, and the next counter may start.
fn release_name(conn: &Connection) -> Result<(), Failure> {
    conn.release_name(NAME).map_err(Failure::Bus)?;
    Ok(())
}

/// Waits for the event that ends the service and ends it that way.
fn serve(conn: &Connection, events: &Receiver<Event>) -> Result<(), Failure> {
    match events.recv() {
        Ok(Event::Quit) => {
            answer_pending_calls(conn)?;
            release_name(conn)
        }
        Ok(Event::Stop) => release_name(conn),
        Ok(Event::Lost) | Err(_) => Err(Failure::Lost),
    }
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

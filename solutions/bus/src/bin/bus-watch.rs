//! `bus-watch` — reference solution of the ipc-lab exercise `bus` (SPEC
//! §4.8), the subscriber: it follows the counter of `bus-counter` through
//! the bus, without ever calling it.
//!
//! Lecture: slide "Beispiel: Dbus (Linux)" — Publish/Subscribe: „Prozesse
//! registrieren Interesse an bestimmten Nachrichten/Ereignissen (über
//! Namen)“, „Ereignisse werden dann unter diesen Namen „publiziert“ und
//! erreichen genau die Interessenten“; „Applikationen können sich für
//! Nachrichten selektiv registrieren“.
//!
//! ```text
//! bus-watch            (the bus: DBUS_SESSION_BUS_ADDRESS)
//! ```
//!
//! Prints `ready` once subscribed, then one line per event:
//!
//! ```text
//! counter up     de.ipclab.Counter has an owner (also: one already running at start)
//! total N        the counter emitted Changed(N)
//! counter down   de.ipclab.Counter lost its owner
//! ```
//!
//! Signals from any other sender, and `Changed` from another object or
//! interface, print nothing. SIGINT or SIGTERM: exit 0. The bus goes away:
//! `bus-watch: lost the bus connection`, exit 1. No bus: `bus-watch: cannot
//! connect to the session bus: REASON`, exit 1.
//!
//! # The design, and why
//!
//! *Match rules: selective registration.* A signal is broadcast: it has no
//! destination, and the bus delivers it to every connection that
//! registered a match rule it fits. So the watcher tells the bus exactly
//! what it wants — `Changed` from the sender `de.ipclab.Counter` (the bus
//! resolves the well-known name to its current owner), from the object
//! `/de/ipclab/Counter`, interface `de.ipclab.Counter1`; and the bus's own
//! `NameOwnerChanged` for that name only (`arg0`). A rule on the member
//! name alone would let anybody's `Changed` through.
//!
//! *One ordered stream.* The watcher reads one stream of every message its
//! connection receives (created before the rules, so nothing is missed)
//! and picks the two kinds out of it in the order the bus sent them. Its
//! own check of path, interface and member guards against messages that
//! other rules (none here) would bring.
//!
//! *The state before the first event.* `NameOwnerChanged` reports changes
//! only. A counter that is already running has changed nothing since the
//! watcher subscribed, so the watcher asks the bus (`NameHasOwner`) once,
//! after subscribing — subscribing first, so no change falls between the
//! answer and the rules.
//!
//! *Ending.* SIGINT and SIGTERM are taken by a thread in `sigwait`, which
//! exits 0 (there is nothing to release). The end of the message stream is
//! the end of the connection: the message and status 1.

use std::io::Write as _;
use std::process::ExitCode;

use nix::sys::signal::{SigSet, Signal};
use zbus::blocking::fdo::DBusProxy;
use zbus::blocking::{Connection, MessageIterator};
use zbus::message::{Message, Type};
use zbus::names::BusName;
use zbus::MatchRule;

/// The counter's well-known name, object and interface.
const NAME: &str = "de.ipclab.Counter";
const PATH: &str = "/de/ipclab/Counter";
const INTERFACE: &str = "de.ipclab.Counter1";

/// The bus itself: the sender of `NameOwnerChanged`.
const BUS: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

// ---------------------------------------------------------------------------
// Errors and exit codes (Provided.)
// ---------------------------------------------------------------------------

/// Everything that ends the watcher with status 1: one line on stderr,
/// prefixed `bus-watch: `.
#[derive(Debug)]
enum Failure {
    /// No session bus (DBUS_SESSION_BUS_ADDRESS unset, or nobody there).
    NoBus(zbus::Error),
    /// The connection to the bus ended.
    Lost,
    /// Any other error of the bus.
    Bus(zbus::Error),
    /// A failed system call.
    Sys(&'static str, nix::errno::Errno),
    /// Writing stdout failed.
    Stdout(std::io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NoBus(e) => write!(f, "cannot connect to the session bus: {e}"),
            Failure::Lost => write!(f, "lost the bus connection"),
            Failure::Bus(e) => write!(f, "D-Bus: {e}"),
            Failure::Sys(what, errno) => write!(f, "{what}: {}", errno.desc()),
            Failure::Stdout(e) => write!(f, "writing stdout: {e}"),
        }
    }
}

/// One diagnostic line on stderr.
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "bus-watch: {message}");
}

impl From<zbus::Error> for Failure {
    fn from(e: zbus::Error) -> Failure {
        Failure::Bus(e)
    }
}

// ---------------------------------------------------------------------------
// Plumbing: signals, connection, output (Provided.)
// ---------------------------------------------------------------------------

/// SIGINT and SIGTERM end the watcher with status 0: both blocked (before
/// zbus starts its threads, which inherit the mask), and a thread takes
/// them with `sigwait` and exits. Every line printed so far is already
/// out: [`say`] flushes each one.
fn exit_on_stop_signals() -> Result<(), Failure> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    mask.thread_block().map_err(|e| Failure::Sys("pthread_sigmask", e))?;
    std::thread::spawn(move || {
        if mask.wait().is_ok() {
            std::process::exit(0);
        }
    });
    Ok(())
}

/// Connects to the session bus `DBUS_SESSION_BUS_ADDRESS` names.
fn connect() -> Result<Connection, Failure> {
    Connection::session().map_err(Failure::NoBus)
}

/// Prints one line and flushes it: whoever reads the output sees each
/// event as it happens.
fn say(line: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").and_then(|()| stdout.flush()).map_err(Failure::Stdout)
}

// ---------------------------------------------------------------------------
// Subscribing: the match rules
// ---------------------------------------------------------------------------

/// `Changed` signals of the counter, and nobody else's.
fn changed_rule() -> Result<MatchRule<'static>, Failure> {
    Ok(MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(NAME)?
        .path(PATH)?
        .interface(INTERFACE)?
        .member("Changed")?
        .build())
}

/// The bus's `NameOwnerChanged` for the counter's name only (`arg0`).
fn owner_rule() -> Result<MatchRule<'static>, Failure> {
    Ok(MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(BUS)?
        .path(BUS_PATH)?
        .interface(BUS)?
        .member("NameOwnerChanged")?
        .arg(0, NAME)?
        .build())
}

/// The stream of every message the connection receives from now on, and
/// both rules registered with the bus (`AddMatch`), in that order: a
/// signal the bus routes to us as soon as a rule is in place is already
/// in the stream.
fn subscribe(conn: &Connection) -> Result<MessageIterator, Failure> {
    let messages = MessageIterator::from(conn);
    let bus = DBusProxy::new(conn)?;
    for rule in [changed_rule()?, owner_rule()?] {
        bus.add_match_rule(rule).map_err(|e| Failure::Bus(e.into()))?;
    }
    Ok(messages)
}

/// Whether the counter runs now (`NameHasOwner`): asked once, after
/// subscribing.
fn counter_running(conn: &Connection) -> Result<bool, Failure> {
    let name = BusName::try_from(NAME).map_err(|e| Failure::Bus(e.into()))?;
    DBusProxy::new(conn)?.name_has_owner(name).map_err(|e| Failure::Bus(e.into()))
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/// The line one message gives, if any: `total N` for the counter's
/// `Changed(N)`, `counter up` / `counter down` for `NameOwnerChanged` of
/// its name with a new owner / without one.
fn line_for(message: &Message) -> Option<String> {
    if message.message_type() != Type::Signal {
        return None;
    }
    let header = message.header();
    let (path, interface, member) = (header.path()?.as_str(), header.interface()?.as_str(), header.member()?.as_str());
    match (path, interface, member) {
        (PATH, INTERFACE, "Changed") => {
            let total: i64 = message.body().deserialize().ok()?;
            Some(format!("total {total}"))
        }
        (BUS_PATH, BUS, "NameOwnerChanged") => {
            let (name, _old, new): (String, String, String) = message.body().deserialize().ok()?;
            if name != NAME {
                return None;
            }
            Some(if new.is_empty() { "counter down" } else { "counter up" }.to_string())
        }
        _ => None,
    }
}

/// Prints a line for every event until the connection ends; its end is an
/// error (a stream only ends with it).
fn watch(messages: MessageIterator) -> Result<(), Failure> {
    for message in messages {
        let message = message.map_err(|_| Failure::Lost)?;
        if let Some(line) = line_for(&message) {
            say(&line)?;
        }
    }
    Err(Failure::Lost)
}

// ---------------------------------------------------------------------------
// Main (Provided.)
// ---------------------------------------------------------------------------

/// Signals first, then connect, subscribe, ask once, `ready` (and `counter
/// up` for a counter already there), watch.
fn run() -> Result<(), Failure> {
    exit_on_stop_signals()?;
    let conn = connect()?;
    let messages = subscribe(&conn)?;
    let running = counter_running(&conn)?;
    say("ready")?;
    if running {
        say("counter up")?;
    }
    watch(messages)
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

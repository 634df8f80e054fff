//! `bus-watch` — the ipc-lab exercise `bus`, the subscriber. **This is a
//! file you edit** (do `bus-counter.rs` next to it first).
//!
//! Read `exercises/bus/README.md` first; grade with
//! `cargo grade bus --check watch-`.
//!
//! ```text
//! bus-watch            (the bus: DBUS_SESSION_BUS_ADDRESS)
//! ```
//!
//! It follows the counter of `bus-counter` through the bus without ever
//! calling it (slide "Beispiel: Dbus (Linux)", Publish/Subscribe:
//! „Prozesse registrieren Interesse an bestimmten Nachrichten/Ereignissen
//! (über Namen)“). It prints `ready` once subscribed, then one line per
//! event:
//!
//! ```text
//! counter up     de.ipclab.Counter has an owner (also: one already running at start)
//! total N        the counter emitted Changed(N)
//! counter down   de.ipclab.Counter lost its owner
//! ```
//!
//! Signals from any other sender, and `Changed` from another object or
//! interface, print nothing. SIGINT or SIGTERM: exit 0. The bus goes away:
//! `bus-watch: lost the bus connection`, exit 1.
//!
//! What is done for you: SIGINT/SIGTERM ([`exit_on_stop_signals`]),
//! connecting ([`connect`]), printing a line ([`say`]), error messages and
//! [`run`]/`main`. What you write, in this order:
//!
//! 1. [`changed_rule`] and 2. [`owner_rule`] — the match rules;
//! 3. [`subscribe`] — register them with the bus;
//! 4. [`counter_running`] — the state at start;
//! 5. [`line_for`] — a message in, a line (or none) out;
//! 6. [`watch`] — the loop, and what its end means.
//!
//! Rules of the game (the grader checks them from outside):
//! - one line per event, flushed at once ([`say`] does);
//! - no busy loop: waiting for the next message blocks;
//! - never `println!`, never `unwrap()`/`expect()` on a call to the bus.

// Lets the untouched skeleton compile without warnings.
// Delete this line when you are done: the warnings it hides are useful.
#![allow(unused_variables, unused_mut, unused_imports, dead_code)]

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

/// TODO 1 — the match rule for the counter's `Changed` signals, and
/// nobody else's.
///
/// What: a rule for messages of type signal, from the sender [`NAME`],
/// the object [`PATH`], the interface [`INTERFACE`], the member `Changed`.
/// As text: `type='signal',sender='de.ipclab.Counter',path=…,interface=…,
/// member='Changed'`.
///
/// Why every field: a signal has no destination; the bus delivers it to
/// every connection with a rule it fits (slide: „Applikationen können sich
/// für Nachrichten selektiv registrieren“). A rule on the member alone
/// fits *anybody's* `Changed`. The sender may be the well-known name: the
/// bus compares it with the name's current owner.
///
/// Look up: `zbus::MatchRule::builder()` and its `msg_type`, `sender`,
/// `path`, `interface`, `member`, `build` (each setter that checks a name
/// returns a `Result`: `?` works, `Failure` converts from `zbus::Error`).
fn changed_rule() -> Result<MatchRule<'static>, Failure> {
    todo!("TODO 1: the rule for the counter's Changed")
}

/// TODO 2 — the match rule for the bus's `NameOwnerChanged` about
/// [`NAME`] only.
///
/// What: a signal from the sender [`BUS`] (`org.freedesktop.DBus`, the
/// bus itself), path [`BUS_PATH`], interface [`BUS`], member
/// `NameOwnerChanged`, and its first argument (`arg0`) equal to [`NAME`].
/// The signal's arguments are (name, old owner, new owner); an empty
/// string means "nobody".
///
/// Why `arg0`: the bus announces every name's changes — every client that
/// connects has a unique name that comes and goes. Why the sender: anybody
/// can *emit* a signal called `NameOwnerChanged`; only the bus's counts.
///
/// Look up: `MatchRule` builder's `arg(0, …)`.
fn owner_rule() -> Result<MatchRule<'static>, Failure> {
    todo!("TODO 2: the rule for NameOwnerChanged of the counter's name")
}

/// TODO 3 — subscribe: return a stream of every message the connection
/// receives from now on, with both rules registered with the bus.
///
/// What, in this order: the stream (`MessageIterator::from(conn)`), then
/// both rules to the bus (`AddMatch`, through the bus's proxy
/// `DBusProxy::new(conn)` and its `add_match_rule`).
///
/// Why this order: the bus routes matching signals to the connection as
/// soon as a rule is in place; a stream made afterwards would miss what
/// came in between. Why one stream for both: the lines come out in the
/// order the bus sent the signals. (`MessageIterator::for_match_rule`
/// makes a stream *per rule*; two streams need two threads, and their
/// lines could come out of order.)
///
/// Look up: `zbus::blocking::MessageIterator` (`From<&Connection>`),
/// `zbus::blocking::fdo::DBusProxy::add_match_rule` (its error is a
/// `zbus::fdo::Error`: `.map_err(|e| Failure::Bus(e.into()))`).
fn subscribe(conn: &Connection) -> Result<MessageIterator, Failure> {
    todo!("TODO 3: the stream, then both rules registered")
}

/// TODO 4 — does the counter run now? Ask the bus once: does [`NAME`]
/// have an owner?
///
/// Why: `NameOwnerChanged` reports *changes*. A counter that was running
/// before the watcher subscribed has changed nothing since — without this
/// question the watcher would not know it is there ([`run`] prints
/// `counter up` for it right after `ready`). Asked after subscribing, so no
/// change can fall between the answer and the rules.
///
/// Look up: `DBusProxy::name_has_owner` (it takes a `BusName`:
/// `BusName::try_from(NAME)`).
fn counter_running(conn: &Connection) -> Result<bool, Failure> {
    todo!("TODO 4: does the counter run now?")
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/// TODO 5 — the line one message gives, or `None`.
///
/// - the counter's `Changed(N)` (a signal from [`PATH`], [`INTERFACE`],
///   member `Changed`, one i64 argument): `total N`;
/// - the bus's `NameOwnerChanged(name, old, new)` with `name` ==
///   [`NAME`]: `counter up` when `new` is not empty, `counter down` when it
///   is;
/// - anything else: `None`. The stream carries *every* message the
///   connection receives — replies to your own calls, too — so look at
///   the type, path, interface and member of each.
///
/// Look up: `Message::message_type`, `Message::header` (`path`,
/// `interface`, `member`: `Option`s), `Message::body().deserialize::<T>()`
/// with `T = i64` or `(String, String, String)`.
fn line_for(message: &Message) -> Option<String> {
    todo!("TODO 5: the line for one message")
}

/// TODO 6 — print a line ([`say`]) for every message that gives one, until
/// the stream ends.
///
/// The end: the stream's items are `Result<Message>`. When the bus goes
/// away, zbus's reading of the socket fails: the stream yields one `Err`
/// and then ends. Either means the connection is gone — return
/// `Failure::Lost` (`bus-watch: lost the bus connection`, status 1), never
/// `Ok`: a watcher without a bus has nothing more to watch, and whoever
/// started it must learn that it stopped.
///
/// Why a plain `for` loop is right: `next` blocks until a message comes —
/// no CPU while waiting.
fn watch(messages: MessageIterator) -> Result<(), Failure> {
    todo!("TODO 6: a line per event until the connection ends")
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

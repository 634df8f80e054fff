//! `bus` — binaries `bus-counter` and `bus-watch` (exercises/bus/README.md;
//! slides „Software-Bussysteme“ and „Beispiel: Dbus (Linux)“).
//!
//! Every check runs on a private `dbus-daemon` of its own
//! ([`crate::harness::bus`]), started before the program and given to it in
//! `DBUS_SESSION_BUS_ADDRESS`. The grader is the service's clients — it
//! calls, listens for `Changed` on a connection of its own, owns the name
//! first, kills the bus — and, for `bus-watch`, the counter itself and the
//! strangers around it: it owns `de.ipclab.Counter` and gives it up, emits
//! `Changed` as the owner and as somebody else, from other objects and
//! interfaces, and fakes the bus's own `NameOwnerChanged`.
//!
//! Every wait is bounded and waits for an event: a reply (zbus's method
//! time-out), a signal or a line (with a deadline, ending early when the
//! program exits), an exit. Signals from different connections have no
//! order of their own; before a marker the grader makes a round trip to
//! the bus on every connection that sent something, so the marker comes
//! last at every receiver. Without `dbus-daemon` on the machine every
//! check is skipped with the package to install.

use std::collections::BTreeSet;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::support::{expect_diagnostic, measure_idle};
use crate::check::{same_line, Check, Ctx, Exercise};
use crate::harness::bus::{Bus, Client, Next, Signals};
use crate::harness::{show, Exit, Failure, Kind, Program, Step};

const COUNTER: &str = "bus-counter";
const WATCH: &str = "bus-watch";

const NAME: &str = "de.ipclab.Counter";
const PATH: &str = "/de/ipclab/Counter";
const IFACE: &str = "de.ipclab.Counter1";
const OVERFLOW: &str = "de.ipclab.Counter1.Error.Overflow";

const BUS: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

pub fn exercise() -> Exercise {
    Exercise {
        id: "bus",
        title: "D-Bus: a counter service owning a well-known name, and a subscriber that follows it",
        slides: "„Software-Bussysteme“, „Beispiel: Dbus (Linux)“ (1) and (2)",
        bins: &[COUNTER, WATCH],
        hints: include_str!("../../hints/bus.toml"),
        checks: vec![
            Check::new("counter-ready", 7, "counter: `ready NAME` only once it owns de.ipclab.Counter and serves its object; NAME is its unique name",
                "Connect, export the object, request the name — then print `ready` with the unique name the bus gave \
                 the connection (`:1.N`, `Connection::unique_name`), not the well-known one. Whoever reads `ready` \
                 calls at once.", counter_ready),
            Check::new("counter-methods", 8, "counter: Add, Get and Reset answer with the total as a 64-bit signed integer (`x`)",
                "`Add(x: i64) -> i64` adds and returns the new total, `Get() -> i64` reads it, `Reset()` sets 0. zbus \
                 turns the Rust types into D-Bus signatures: i64 is `x`.", counter_methods),
            Check::new("counter-overflow", 7, "counter: an Add that overflows replies the error de.ipclab.Counter1.Error.Overflow and leaves the total as it was",
                "`i64::checked_add` says when the sum does not fit. Return an error whose D-Bus name is \
                 `de.ipclab.Counter1.Error.Overflow`: `#[derive(DBusError)]` with `#[zbus(prefix = \
                 \"de.ipclab.Counter1.Error\")]` and a variant `Overflow`. Change the total only after the check.", counter_overflow),
            Check::new("counter-changed", 9, "counter: `Changed(total)` after every Add and Reset, to everybody — never after Get or an Add that overflowed",
                "Emit the signal from /de/ipclab/Counter with the interface de.ipclab.Counter1 and no destination (a \
                 broadcast: the bus hands it to every subscriber, not only to the caller), after the total changed. \
                 Get changes nothing; a failed Add neither.", counter_changed),
            Check::new("counter-clients", 6, "counter: two clients calling at once share one total",
                "The calls of many clients arrive interleaved on the service's one connection to the bus (N \
                 connections instead of N·(N−1)); the service keeps one counter for all of them — not one per \
                 caller, as the udp server kept one per address.", counter_clients),
            Check::new("counter-introspect", 5, "counter: Introspect on /de/ipclab/Counter describes exactly the interface de.ipclab.Counter1",
                "zbus describes every method of the `#[interface]` block to `Introspect`: a helper function written \
                 inside that block becomes a D-Bus method too. Keep helpers in a separate `impl` block.", counter_introspect),
            Check::new("counter-refuses", 7, "counter: a taken name — also by a first bus-counter — and a missing bus give the stated message and status 1, and no `ready`",
                "Request the name with the flag DO_NOT_QUEUE and nothing else: a second counter must fail at once, not \
                 wait in line — and must not take the name over. zbus's `request_name` also sets REPLACE_EXISTING and \
                 ALLOW_REPLACEMENT; use `request_name_with_flags`. A failed connect is a message, not a panic.", counter_refuses),
            Check::new("counter-quit", 6, "counter: Quit replies, the name is released (NameOwnerChanged), exit 0",
                "The reply to Quit goes out after the handler returns: exiting inside it leaves the caller with \
                 NoReply. Let the main thread release the name and exit once the reply is on its way.", counter_quit),
            Check::new("counter-signals", 6, "counter: SIGTERM and SIGINT release the name and exit 0",
                "Block both signals before zbus starts its threads, take them with `sigwait` on one thread, and shut \
                 down from the main thread: release the name, exit 0.", counter_signals),
            Check::new("counter-bus-lost", 6, "counter: the bus killed — it notices the end of its connection and exits 1 with the stated message",
                "When the daemon dies, the connection's socket reaches EOF and every zbus message stream ends. Let \
                 one end the wait of the main thread: `bus-counter: lost the bus connection`, status 1.", counter_bus_lost),
            Check::new("counter-idle", 4, "counter: no CPU while waiting for calls",
                "Block on something — a channel's `recv`, a message stream — never loop around `try_recv` or a \
                 short sleep.", counter_idle),
            Check::new("watch-total", 6, "watcher: `ready`, then `counter up` and `total N` for each Changed(N)",
                "Register a match rule with the bus (`AddMatch`) for Changed from de.ipclab.Counter and print one line \
                 per signal, flushed — also the same total twice.", watch_total),
            Check::new("watch-up-down", 6, "watcher: `counter up` when de.ipclab.Counter gets an owner, `counter down` when it loses it",
                "Subscribe to the bus's NameOwnerChanged with arg0 = de.ipclab.Counter; the third argument, the new \
                 owner, is empty when the name is gone.", watch_up_down),
            Check::new("watch-already-running", 4, "watcher: a counter running before the watcher starts gives `counter up` right after `ready`",
                "NameOwnerChanged reports changes only. After subscribing, ask the bus once whether the name has an \
                 owner (`NameHasOwner` / `GetNameOwner`).", watch_already_running),
            Check::new("watch-foreign", 8, "watcher: Changed from another sender, object or interface, and other names' NameOwnerChanged print nothing",
                "A match rule on the member name alone lets everybody's `Changed` through. Name the sender (the \
                 well-known name: the bus resolves it to its owner), path and interface; for NameOwnerChanged the \
                 sender org.freedesktop.DBus and arg0.", watch_foreign),
            Check::new("watch-exit", 5, "watcher: no CPU while waiting; SIGTERM and SIGINT exit 0; the bus killed — message and status 1",
                "Block on the message stream. Its end is the end of the connection: `bus-watch: lost the bus \
                 connection`, status 1.", watch_exit),
        ],
    }
}

// ----- the bus and the programs on it ------------------------------------------------

/// A private bus for one check.
fn bus(cx: &Ctx) -> Step<Bus> {
    Bus::start(cx.secs(5.0), cx.log.clone())
}

/// A connection of the grader's; its calls give up after a while (a correct
/// program answers in milliseconds).
fn client(cx: &Ctx, bus: &Bus, name: &str) -> Step<Client> {
    bus.connect(name, cx.secs(3.0))
}

/// Start `bin` on `bus`.
fn start(cx: &Ctx, bin: &str, bus: &Bus) -> Step<Program> {
    cx.start_with(bin, &[], |spec, opts| {
        spec.env.push(bus.env());
        opts.needs_account = true;
    })
}

/// Start `bus-counter` and read its `ready …` line (what follows `ready`
/// is `counter-ready`'s business; the other checks ask the bus).
fn start_counter(cx: &Ctx, bus: &Bus) -> Step<Program> {
    Ok(start_counter_line(cx, bus)?.0)
}

/// Start `bus-counter`; the program and what its `ready` line names.
fn start_counter_line(cx: &Ctx, bus: &Bus) -> Step<(Program, String)> {
    let mut p = start(cx, COUNTER, bus)?;
    let line = p.line("`ready UNIQUE-NAME`", cx.secs(5.0))?;
    match String::from_utf8_lossy(&line).strip_prefix("ready ") {
        Some(name) if !name.is_empty() => Ok((p, name.to_string())),
        _ => Err(Failure::wrong(format!("the line {}", show(&line)), "`ready UNIQUE-NAME`, e.g. `ready :1.7`")),
    }
}

/// The unique name owning de.ipclab.Counter, asked by `c` after `ready`.
fn counter_owner(c: &Client) -> Step<String> {
    let owner = c.owner(NAME)?;
    c.log(format!("{} asked the bus who owns {NAME} (GetNameOwner): {}", c.name, owner.as_deref().unwrap_or("nobody")));
    owner.ok_or_else(|| {
        Failure::wrong(
            format!("nobody owned {NAME} after `ready`"),
            format!("`ready` only once the name {NAME} is owned"),
        )
    })
}

/// Start `bus-watch` and read `ready`.
fn start_watch(cx: &Ctx, bus: &Bus) -> Step<Program> {
    let mut p = start(cx, WATCH, bus)?;
    let line = p.line("`ready`", cx.secs(5.0))?;
    same_line(&line, "ready")?;
    Ok(p)
}

/// The next line of the watcher must be `want`.
fn expect_line(cx: &Ctx, p: &mut Program, want: &str, after: &str) -> Step {
    let what = format!("`{want}` {after}");
    let line = p.line(&what, cx.secs(3.0))?;
    same_line(&line, want).map_err(|f| Failure::wrong(f.got, what))
}

// ----- calling the counter ---------------------------------------------------------

/// How a call went, when the counter answered at all.
enum Answer {
    Returned(zbus::message::Message),
    /// An error reply: its name and text.
    Error(String, String),
}

/// Call `member(body)` on the counter from `c`, logged as
/// `CLIENT called MEMBER(SHOWN)`. A call that got no answer — or an answer
/// from the bus that the counter is not there — is the failure, told from
/// the program's side (a `todo!()` in a handler, an exit, where it sat).
fn invoke<B>(cx: &Ctx, p: &mut Program, c: &Client, member: &str, body: &B, shown: &str) -> Step<Answer>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    let what = format!("an answer to {member}({shown})");
    let reply = c.call(NAME, PATH, IFACE, member, body);
    let answer = match reply {
        Ok(m) => Answer::Returned(m),
        Err(zbus::Error::MethodError(name, text, _)) => Answer::Error(name.to_string(), text.unwrap_or_default()),
        Err(e) => return Err(no_answer(cx, p, &what, &e.to_string())),
    };
    if let Answer::Error(name, text) = &answer {
        let unreachable = [
            ("org.freedesktop.DBus.Error.NoReply", ""),
            ("org.freedesktop.DBus.Error.ServiceUnknown", "nobody owns de.ipclab.Counter"),
            ("org.freedesktop.DBus.Error.NameHasNoOwner", "nobody owns de.ipclab.Counter"),
            ("org.freedesktop.DBus.Error.UnknownObject", "there is no object /de/ipclab/Counter"),
            ("org.freedesktop.DBus.Error.UnknownInterface", "the object has no interface de.ipclab.Counter1"),
            (
                "org.freedesktop.DBus.Error.UnknownMethod",
                "the interface has no such method (or not with this signature)",
            ),
        ];
        if let Some((_, why)) = unreachable.iter().find(|(n, _)| n == name) {
            let said =
                format!("the error {name} ({text}){}", if why.is_empty() { String::new() } else { format!(": {why}") });
            return Err(no_answer(cx, p, &what, &said));
        }
    }
    let shown_answer = match &answer {
        Answer::Returned(m) => describe_body(m),
        Answer::Error(name, _) => format!("the error {name}"),
    };
    c.log(format!("{} called {member}({shown}): {shown_answer}", c.name));
    Ok(answer)
}

/// The arguments of a reply or signal as the transcript shows them.
fn describe_body(m: &zbus::message::Message) -> String {
    let body = m.body();
    let sig = body.signature().to_string();
    match sig.as_str() {
        "" => "()".to_string(),
        "x" => body.deserialize::<i64>().map(|v| v.to_string()).unwrap_or_else(|_| "?".into()),
        _ => format!("values with the signature `{sig}`"),
    }
}

/// Why a call got no proper answer, from the program's side.
fn no_answer(cx: &Ctx, p: &mut Program, what: &str, said: &str) -> Failure {
    if let Some(f) = p.panicked(what) {
        return f;
    }
    if p.exit().is_some() {
        return match p.wait_exit(what, cx.secs(2.0)) {
            Ok(exit) => p.classify(exit, what),
            Err(f) => f,
        };
    }
    let w = p.whereabouts();
    Failure::new(Kind::WrongOutput, format!("{said}; {w}"), what)
}

/// An answer that must be the total `want` (`x`).
fn expect_total(answer: Answer, call: &str, want: i64) -> Step {
    let what = format!("{call} to return {want}");
    match answer {
        Answer::Error(name, text) => Err(Failure::wrong(format!("{call} replied the error {name}: {text}"), what)),
        Answer::Returned(m) => {
            let body = m.body();
            let sig = body.signature().to_string();
            if sig != "x" {
                return Err(Failure::wrong(
                    format!("{call} returned a value with the signature `{sig}`"),
                    format!("{what} as `x` (i64)"),
                )
                .diagnosed(
                    "the total came back as another D-Bus type than `x`",
                    "the total is a 64-bit signed integer: declare it `i64` (D-Bus `x`)",
                ));
            }
            let got: i64 = body.deserialize().map_err(|e| Failure::grader(format!("decoding `x`: {e}")))?;
            if got != want {
                return Err(Failure::wrong(format!("{call} returned {got}"), what));
            }
            Ok(())
        }
    }
}

fn add(cx: &Ctx, p: &mut Program, c: &Client, x: i64) -> Step<Answer> {
    invoke(cx, p, c, "Add", &x, &x.to_string())
}

fn add_expect(cx: &Ctx, p: &mut Program, c: &Client, x: i64, want: i64) -> Step {
    expect_total(add(cx, p, c, x)?, &format!("Add({x})"), want)
}

fn get_expect(cx: &Ctx, p: &mut Program, c: &Client, want: i64) -> Step {
    expect_total(invoke(cx, p, c, "Get", &(), "")?, "Get()", want)
}

/// A call that returns nothing: `Reset()`, `Quit()`.
fn call_unit(cx: &Ctx, p: &mut Program, c: &Client, member: &str) -> Step {
    match invoke(cx, p, c, member, &(), "")? {
        Answer::Error(name, text) => Err(Failure::wrong(
            format!("{member}() replied the error {name}: {text}"),
            format!("{member}() to return nothing"),
        )),
        Answer::Returned(m) => {
            let sig = m.body().signature().to_string();
            if !sig.is_empty() {
                return Err(Failure::wrong(
                    format!("{member}() returned a value with the signature `{sig}`"),
                    format!("{member}() to return nothing"),
                ));
            }
            Ok(())
        }
    }
}

/// An Add that must fail with the overflow error.
fn add_overflows(cx: &Ctx, p: &mut Program, c: &Client, x: i64, before: i64) -> Step {
    let what = format!("Add({x}) to reply the error {OVERFLOW}: {before} + {x} does not fit into an i64");
    match add(cx, p, c, x)? {
        Answer::Error(name, _) if name == OVERFLOW => Ok(()),
        Answer::Error(name, text) => Err(Failure::wrong(format!("the error {name}: {text}"), what).diagnosed(
            "the overflow was refused, but under another error name",
            "the error's D-Bus name is the derive's prefix, a dot and the variant: prefix \
             `de.ipclab.Counter1.Error`, variant `Overflow`",
        )),
        Answer::Returned(m) => Err(Failure::wrong(format!("Add({x}) returned {}", describe_body(&m)), what).diagnosed(
            "the Add was carried out although the sum does not fit into an i64",
            "`+` wraps around (or panics in a debug build); `checked_add` returns None instead",
        )),
    }
}

// ----- the service ---------------------------------------------------------------------

fn counter_ready(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let a = client(cx, &bus, "client A")?;
    let (mut p, printed) = start_counter_line(cx, &bus)?;
    let owner = counter_owner(&a)?;
    if printed != owner {
        let f = Failure::wrong(
            format!("`ready {printed}`, and {NAME} is owned by {owner}"),
            format!("`ready {owner}`: the unique name of the connection that owns the name"),
        );
        return Err(if printed.starts_with(':') {
            f
        } else {
            f.diagnosed(
                "`ready` names something other than the connection's unique name",
                "the unique name (`:1.N`) is the bus's address for this connection: `Connection::unique_name()`",
            )
        });
    }
    get_expect(cx, &mut p, &a, 0)
}

fn counter_methods(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let a = client(cx, &bus, "client A")?;
    let mut p = start_counter(cx, &bus)?;
    add_expect(cx, &mut p, &a, 5, 5)?;
    add_expect(cx, &mut p, &a, -7, -2)?;
    get_expect(cx, &mut p, &a, -2)?;
    add_expect(cx, &mut p, &a, 1_000_000_000_000, 999_999_999_998)?;
    get_expect(cx, &mut p, &a, 999_999_999_998)?;
    call_unit(cx, &mut p, &a, "Reset")?;
    get_expect(cx, &mut p, &a, 0)?;
    add_expect(cx, &mut p, &a, 3, 3)
}

fn counter_overflow(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let a = client(cx, &bus, "client A")?;
    let mut p = start_counter(cx, &bus)?;
    add_expect(cx, &mut p, &a, i64::MAX, i64::MAX)?;
    add_overflows(cx, &mut p, &a, 1, i64::MAX)?;
    get_expect(cx, &mut p, &a, i64::MAX)?;
    call_unit(cx, &mut p, &a, "Reset")?;
    add_expect(cx, &mut p, &a, i64::MIN, i64::MIN)?;
    add_overflows(cx, &mut p, &a, -1, i64::MIN)?;
    get_expect(cx, &mut p, &a, i64::MIN)
}

/// Wait for the next message on `signals` while `p` runs.
fn next_signal(cx: &Ctx, p: &mut Program, signals: &mut Signals, what: &str) -> Step<zbus::message::Message> {
    match signals.next(cx.secs(3.0), Some(p.pid())) {
        Next::Got(m) => Ok(m),
        Next::Exited => Err(no_answer(cx, p, what, "it exited")),
        Next::Closed => Err(Failure::grader("the grader's connection to the bus ended")),
        Next::Deadline => {
            if let Some(f) = p.panicked(what) {
                return Err(f);
            }
            Err(Failure::new(
                Kind::TimedOut,
                format!("no such signal within {:.1} s", cx.secs(3.0).as_secs_f64()),
                what,
            ))
        }
    }
}

/// `PATH IFACE.MEMBER(args)` of a signal, for messages.
fn describe_signal(m: &zbus::message::Message) -> String {
    let h = m.header();
    let field = |s: Option<String>| s.unwrap_or_else(|| "?".into());
    format!(
        "the signal {}.{}({}) from the object {}",
        field(h.interface().map(|i| i.to_string())),
        field(h.member().map(|i| i.to_string())),
        describe_body(m).trim_start_matches("()"),
        field(h.path().map(|i| i.to_string()))
    )
}

fn counter_changed(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let a = client(cx, &bus, "client A")?;
    let listener = client(cx, &bus, "the grader's listener")?;
    let mut p = start_counter(cx, &bus)?;
    let unique = counter_owner(&listener)?;
    let mut signals = listener.subscribe(&format!("type='signal',sender='{unique}'"))?;
    listener.log(format!("the grader's listener subscribed to every signal from {unique}"));
    add_expect(cx, &mut p, &a, 3, 3)?;
    get_expect(cx, &mut p, &a, 3)?;
    add_overflows(cx, &mut p, &a, i64::MAX, 3)?;
    get_expect(cx, &mut p, &a, 3)?;
    call_unit(cx, &mut p, &a, "Reset")?;
    add_expect(cx, &mut p, &a, -4, -4)?;
    let want = [3i64, 0, -4];
    let expected = "Changed(3) (Add), Changed(0) (Reset), Changed(-4) (Add), and nothing for Get or the failed Add";
    let mut got: Vec<i64> = Vec::new();
    while got.last() != Some(&-4) && got.len() < 8 {
        let m = next_signal(cx, &mut p, &mut signals, &format!("the listener to receive {expected}")).map_err(
            |mut f| {
                if f.kind == Kind::TimedOut {
                    f.got = format!("the signals {}, then {}", show_totals(&got), f.got);
                    f = f.diagnosed(
                        "a connection that never called did not receive every Changed",
                        "emit Changed after every change, with no destination: a signal sent to the caller reaches \
                         nobody else",
                    );
                }
                f
            },
        )?;
        let h = m.header();
        let right = h.path().is_some_and(|x| x.as_str() == PATH)
            && h.interface().is_some_and(|x| x.as_str() == IFACE)
            && h.member().is_some_and(|x| x.as_str() == "Changed");
        if !right || m.body().signature().to_string() != "x" {
            return Err(Failure::wrong(
                format!("the listener received {}", describe_signal(&m)),
                format!("only {IFACE}.Changed(x) from the object {PATH}"),
            ));
        }
        got.push(m.body().deserialize().map_err(|e| Failure::grader(format!("decoding `x`: {e}")))?);
    }
    listener.log(format!("the listener received {}", show_totals(&got)));
    if got != want {
        let f = Failure::wrong(format!("the signals {}", show_totals(&got)), expected);
        return Err(if got.windows(2).any(|w| w[0] == w[1]) {
            f.diagnosed(
                "a total came twice: a Changed went out after Get or after the failed Add, when nothing changed",
                "emit only where the total changes: a successful Add, a Reset",
            )
        } else {
            f
        });
    }
    Ok(())
}

fn show_totals(totals: &[i64]) -> String {
    if totals.is_empty() {
        return "none".to_string();
    }
    totals.iter().map(|t| format!("Changed({t})")).collect::<Vec<_>>().join(", ")
}

fn counter_clients(cx: &Ctx) -> Step {
    const CALLS: usize = 50;
    let bus = bus(cx)?;
    let a = client(cx, &bus, "client A")?;
    let b = client(cx, &bus, "client B")?;
    let mut p = start_counter(cx, &bus)?;
    let barrier = std::sync::Barrier::new(2);
    let run = |conn: &zbus::blocking::Connection, x: i64| -> Result<Vec<i64>, String> {
        barrier.wait();
        (0..CALLS)
            .map(|_| {
                conn.call_method(Some(NAME), PATH, Some(IFACE), "Add", &x)
                    .and_then(|m| m.body().deserialize::<i64>())
                    .map_err(|e| format!("Add({x}) failed: {e}"))
            })
            .collect()
    };
    let (conn_a, conn_b) = (a.connection(), b.connection());
    let (from_a, from_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| run(conn_a, 1));
        let tb = s.spawn(|| run(conn_b, 1000));
        (ta.join(), tb.join())
    });
    cx.did(format!(
        "client A and client B each called Add {CALLS} times, both at the same moment: A Add(1), B Add(1000)"
    ));
    let from_a = from_a.map_err(|_| Failure::grader("a client thread panicked"))?;
    let from_b = from_b.map_err(|_| Failure::grader("a client thread panicked"))?;
    let (from_a, from_b) = match (from_a, from_b) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return Err(no_answer(cx, &mut p, "an answer to every Add", &e)),
    };
    let all: BTreeSet<i64> = from_a.iter().chain(&from_b).copied().collect();
    let total = CALLS as i64 * 1001;
    cx.did(format!(
        "A's last total {}, B's last total {}",
        from_a.last().copied().unwrap_or_default(),
        from_b.last().copied().unwrap_or_default()
    ));
    let per_client = from_a.last() == Some(&(CALLS as i64)) && from_b.last() == Some(&(CALLS as i64 * 1000));
    if per_client {
        return Err(Failure::wrong(
            format!("A's totals ended at {CALLS}, B's at {}: each client counted alone", CALLS * 1000),
            format!("one total for both: {total} after the last Add"),
        )
        .diagnosed("each client counted alone", "one counter for every client, not one per sender"));
    }
    let rising = |v: &[i64]| v.windows(2).all(|w| w[0] < w[1]);
    if all.len() != 2 * CALLS || !rising(&from_a) || !rising(&from_b) || all.last() != Some(&total) {
        return Err(Failure::wrong(
            format!("{} different totals; the highest {}", all.len(), all.last().copied().unwrap_or_default()),
            format!("{} different totals, each client's rising, the last {total}", 2 * CALLS),
        ));
    }
    get_expect(cx, &mut p, &a, total)
}

/// The expected members of de.ipclab.Counter1: name → argument
/// `direction type` list.
const INTERFACE: [(&str, &str, &[&str]); 5] = [
    ("method", "Add", &["in x", "out x"]),
    ("method", "Get", &["out x"]),
    ("method", "Reset", &[]),
    ("method", "Quit", &[]),
    ("signal", "Changed", &["x"]),
];

fn counter_introspect(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let a = client(cx, &bus, "client A")?;
    let mut p = start_counter(cx, &bus)?;
    let what = "an answer to org.freedesktop.DBus.Introspectable.Introspect()";
    let xml = match a.call(NAME, PATH, "org.freedesktop.DBus.Introspectable", "Introspect", &()) {
        Ok(m) => m
            .body()
            .deserialize::<String>()
            .map_err(|e| Failure::wrong(format!("a reply that is no string: {e}"), what))?,
        Err(e) => return Err(no_answer(cx, &mut p, what, &e.to_string())),
    };
    a.log(format!("client A called Introspect() on {PATH}: {} bytes of XML", xml.len()));
    // The D-Bus introspection format starts with its DOCTYPE.
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(&xml, options)
        .map_err(|e| Failure::wrong(format!("introspection data that is not XML: {e}"), "the XML of a node"))?;
    let Some(iface) =
        doc.root_element().children().find(|n| n.has_tag_name("interface") && n.attribute("name") == Some(IFACE))
    else {
        return Err(Failure::wrong(
            format!("no interface {IFACE} in the introspection data"),
            format!("the interface {IFACE}"),
        ));
    };
    let mut got: Vec<String> = Vec::new();
    for member in iface.children().filter(|n| n.is_element()) {
        let kind = member.tag_name().name();
        let name = member.attribute("name").unwrap_or("?");
        if kind == "annotation" {
            continue;
        }
        let args: Vec<String> = member
            .children()
            .filter(|n| n.has_tag_name("arg"))
            .map(|arg| {
                let ty = arg.attribute("type").unwrap_or("?");
                match (kind, arg.attribute("direction")) {
                    ("signal", _) => ty.to_string(),
                    (_, dir) => format!("{} {ty}", dir.unwrap_or("in")),
                }
            })
            .collect();
        got.push(format!("{kind} {name}({})", args.join(", ")));
    }
    let mut want: Vec<String> =
        INTERFACE.iter().map(|(kind, name, args)| format!("{kind} {name}({})", args.join(", "))).collect();
    got.sort();
    want.sort();
    if got != want {
        let extra: Vec<&String> = got.iter().filter(|g| !want.contains(g)).collect();
        let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
        let list = |v: &[&String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
            }
        };
        return Err(Failure::wrong(
            format!(
                "{IFACE} with members the contract does not name: {}; and without: {}",
                list(&extra),
                list(&missing)
            ),
            format!("exactly {}", want.join("; ")),
        ));
    }
    Ok(())
}

/// Start a counter that must give up: exit 1, one line `bus-counter: …`
/// containing `message`, nothing on stdout.
fn expect_refusal(cx: &Ctx, p: &mut Program, message: &str, why: &str) -> Step {
    let what = format!("exit status 1 and `bus-counter: {message}…` on stderr ({why})");
    p.wait_for(&what, cx.secs(5.0), false, |p| (p.exit().is_some() || !p.stdout_pending().is_empty()).then_some(()))?;
    if !p.stdout_pending().is_empty() {
        return Err(Failure::wrong(format!("it printed {} ({why})", show(p.stdout_pending())), what).diagnosed(
            "it went on as if it owned the name: a name requested with queueing is not owned but waits in line \
             (RequestName answers 2, IN_QUEUE), without an error",
            "request the name with DO_NOT_QUEUE: a taken name is then an error at once",
        ));
    }
    let exit = p.wait_exit(&what, cx.secs(2.0))?;
    if exit != Exit::Code(1) {
        return Err(p.classify(exit, &what));
    }
    expect_diagnostic(p, "bus-counter: ", message)
}

fn counter_refuses(cx: &Ctx) -> Step {
    let taken = format!("name {NAME} is taken");
    {
        let bus = bus(cx)?;
        let other = client(cx, &bus, "the grader's own counter")?;
        other.own(NAME)?;
        let mut p = start(cx, COUNTER, &bus)?;
        expect_refusal(cx, &mut p, &taken, "the grader owns the name")?;
    }
    {
        let bus = bus(cx)?;
        let a = client(cx, &bus, "client A")?;
        let mut first = start_counter(cx, &bus)?;
        let unique = counter_owner(&a)?;
        let mut second = start(cx, COUNTER, &bus)?;
        expect_refusal(cx, &mut second, &taken, "the first bus-counter owns the name").map_err(|f| {
            if f.got.contains("ready") {
                f.diagnosed(
                    "the second counter went on as if it owned the name: it waited in line for it, or took it over — \
                     the first allowed replacement (ALLOW_REPLACEMENT) and the second asked for it \
                     (REPLACE_EXISTING)",
                    "request the name with DO_NOT_QUEUE alone (`request_name_with_flags`): zbus's `request_name` \
                     also sets the two others",
                )
            } else {
                f
            }
        })?;
        let owner = a.owner(NAME)?;
        if owner.as_deref() != Some(unique.as_str()) {
            return Err(Failure::wrong(
                format!(
                    "after the second counter gave up, {NAME} is owned by {}",
                    owner.as_deref().unwrap_or("nobody")
                ),
                format!("the first counter, {unique}, to keep the name"),
            ));
        }
        get_expect(cx, &mut first, &a, 0)?;
    }
    let bus = bus(cx)?;
    let nowhere = bus.nowhere();
    let mut p = cx.start_with(COUNTER, &[], |spec, opts| {
        spec.env.push((crate::harness::bus::ADDRESS_VAR.into(), nowhere.clone().into()));
        opts.needs_account = true;
    })?;
    cx.did(format!("(its DBUS_SESSION_BUS_ADDRESS was `{nowhere}`, where nothing listens)"));
    expect_refusal(cx, &mut p, "cannot connect to the session bus: ", "no bus at that address")
}

/// Subscribe `c` to the bus's NameOwnerChanged for the counter's name.
fn owner_changes(c: &Client) -> Step<Signals> {
    let s = c.subscribe(&format!(
        "type='signal',sender='{BUS}',path='{BUS_PATH}',interface='{BUS}',member='NameOwnerChanged',arg0='{NAME}'"
    ))?;
    c.log(format!("{} subscribed to NameOwnerChanged for {NAME}", c.name));
    Ok(s)
}

/// Wait for `NameOwnerChanged(NAME, unique, "")`, then exit 0 (`cause`
/// names the stimulus).
fn expect_release(cx: &Ctx, p: &mut Program, changes: &mut Signals, unique: &str, cause: &str) -> Step {
    let what = format!("NameOwnerChanged({NAME}, {unique}, \"\") after {cause}: the name released");
    loop {
        let m = match changes.next(cx.secs(3.0), None) {
            Next::Got(m) => m,
            Next::Deadline => {
                if let Some(f) = p.panicked(&what) {
                    return Err(f);
                }
                let w = p.whereabouts();
                let state = if w.is_empty() { format!("{} had exited", p.name) } else { w };
                return Err(Failure::new(
                    Kind::TimedOut,
                    format!("no NameOwnerChanged within {:.1} s; {state}", cx.secs(3.0).as_secs_f64()),
                    what,
                ));
            }
            Next::Exited | Next::Closed => return Err(Failure::grader("the grader's connection to the bus ended")),
        };
        let (name, old, new): (String, String, String) =
            m.body().deserialize().map_err(|e| Failure::grader(format!("decoding NameOwnerChanged: {e}")))?;
        if name == NAME && old == unique && new.is_empty() {
            cx.did(format!("the bus announced NameOwnerChanged({NAME}, {unique}, \"\")"));
            break;
        }
    }
    p.expect_exit(0, &format!("exit status 0 after {cause}"), cx.secs(3.0))
}

fn counter_quit(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let a = client(cx, &bus, "client A")?;
    let mut p = start_counter(cx, &bus)?;
    let unique = counter_owner(&a)?;
    let mut changes = owner_changes(&a)?;
    call_unit(cx, &mut p, &a, "Quit").map_err(|f| {
        if f.got.contains("NoReply") {
            f.diagnosed(
                "it exited before zbus sent the reply to Quit",
                "leave the exit to the main thread, once the reply is on its way",
            )
        } else {
            f
        }
    })?;
    expect_release(cx, &mut p, &mut changes, &unique, "Quit")
}

fn counter_signals(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let a = client(cx, &bus, "client A")?;
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut p = start_counter(cx, &bus)?;
        let unique = counter_owner(&a)?;
        let mut changes = owner_changes(&a)?;
        p.signal(sig);
        expect_release(cx, &mut p, &mut changes, &unique, sig.as_str())?;
    }
    Ok(())
}

fn counter_bus_lost(cx: &Ctx) -> Step {
    let mut bus = bus(cx)?;
    let mut p = start_counter(cx, &bus)?;
    bus.kill("the bus goes away under the service");
    let what = "bus-counter to notice the end of its connection and exit with status 1";
    let exit = p.wait_exit(what, cx.secs(3.0)).map_err(|f| {
        if f.kind == Kind::TimedOut {
            f.diagnosed(
                "it kept running without its bus: nothing waited for the end of the connection",
                "a message stream of the connection ends with it: let its end wake the main thread",
            )
        } else {
            f
        }
    })?;
    if exit != Exit::Code(1) {
        return Err(p.classify(exit, what));
    }
    expect_diagnostic(&p, "bus-counter: ", "lost the bus connection")
}

fn counter_idle(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let a = client(cx, &bus, "client A")?;
    let mut p = start_counter(cx, &bus)?;
    add_expect(cx, &mut p, &a, 1, 1)?;
    let pid = p.pid();
    let usage = measure_idle(&mut p, pid, COUNTER, Duration::from_secs(1), "with no calls coming")?;
    usage.expect_no_cpu("with nothing to do every thread blocks: zbus's in the socket, yours in `recv`")?;
    usage.expect_no_polling("the main thread waits in one blocking `recv`, not in a loop of short waits")
}

// ----- the watcher ------------------------------------------------------------------------

/// Emit `Changed(total)` from `c` as the counter would (logged).
fn changed(c: &Client, total: i64) -> Step {
    c.emit(PATH, IFACE, "Changed", &total)?;
    c.log(format!("{} emitted {IFACE}.Changed({total}) from {PATH}", c.name));
    Ok(())
}

fn watch_total(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let mut p = start_watch(cx, &bus)?;
    let counter = client(cx, &bus, "the grader's counter")?;
    counter.own(NAME)?;
    expect_line(cx, &mut p, "counter up", "once the name has an owner")?;
    for total in [5, -3, 0, 0] {
        changed(&counter, total)?;
    }
    for total in [5, -3, 0, 0] {
        expect_line(cx, &mut p, &format!("total {total}"), "for each Changed, in order").map_err(|f| {
            if total == 0 && f.kind == Kind::TimedOut {
                f.diagnosed(
                    "the second Changed(0) printed nothing: a repeated total was skipped",
                    "every signal is a line, also one that repeats the total (a Reset at 0 sends Changed(0) again)",
                )
            } else {
                f
            }
        })?;
    }
    Ok(())
}

fn watch_up_down(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let mut p = start_watch(cx, &bus)?;
    let first = client(cx, &bus, "the grader's first counter")?;
    first.own(NAME)?;
    expect_line(cx, &mut p, "counter up", "as the first line after `ready`: no counter ran before")?;
    first.disown(NAME)?;
    expect_line(cx, &mut p, "counter down", "once the name is released")?;
    let second = client(cx, &bus, "the grader's second counter")?;
    second.own(NAME)?;
    expect_line(cx, &mut p, "counter up", "once the name has an owner again")?;
    drop(second);
    cx.did("the grader's second counter closed its connection (the bus releases its name)");
    expect_line(cx, &mut p, "counter down", "once its owner is gone")
}

fn watch_already_running(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let counter = client(cx, &bus, "the grader's counter")?;
    counter.own(NAME)?;
    let mut p = start_watch(cx, &bus)?;
    changed(&counter, 7)?;
    expect_line(cx, &mut p, "counter up", "right after `ready`: the counter was running already").map_err(
        |f| match f.kind {
            Kind::WrongOutput | Kind::TimedOut => f.diagnosed(
                "no `counter up` for a counter that ran before the watcher started",
                "a counter running at start sends no NameOwnerChanged: ask the bus once, after subscribing",
            ),
            _ => f,
        },
    )?;
    expect_line(cx, &mut p, "total 7", "for Changed(7)")
}

fn watch_foreign(cx: &Ctx) -> Step {
    let bus = bus(cx)?;
    let mut p = start_watch(cx, &bus)?;
    let counter = client(cx, &bus, "the grader's counter")?;
    counter.own(NAME)?;
    expect_line(cx, &mut p, "counter up", "once the name has an owner")?;
    let stranger = client(cx, &bus, "a stranger")?;
    stranger.emit(PATH, IFACE, "Changed", &666i64)?;
    stranger.log(format!("the stranger (not the owner of {NAME}) emitted {IFACE}.Changed(666) from {PATH}"));
    counter.emit("/de/ipclab/Other", IFACE, "Changed", &777i64)?;
    counter.log(format!("the grader's counter emitted {IFACE}.Changed(777) from another object, /de/ipclab/Other"));
    counter.emit(PATH, "de.ipclab.Other1", "Changed", &888i64)?;
    counter.log(format!("the grader's counter emitted de.ipclab.Other1.Changed(888) from {PATH}: another interface"));
    stranger.own("de.ipclab.CounterBackup")?;
    stranger.emit(BUS_PATH, BUS, "NameOwnerChanged", &(NAME, "", ":1.999"))?;
    stranger.log(format!("the stranger emitted a fake {BUS}.NameOwnerChanged({NAME}, \"\", :1.999) from {BUS_PATH}"));
    stranger.sync()?;
    counter.sync()?;
    changed(&counter, 1)?;
    let line = p.line("`total 1` for the counter's Changed(1), and nothing before it", cx.secs(3.0))?;
    let text = String::from_utf8_lossy(&line).into_owned();
    let diagnosis = match text.as_str() {
        "total 666" => Some((
            "it printed a Changed from a connection that does not own de.ipclab.Counter",
            "name the sender in the rule",
        )),
        "total 777" => Some(("it printed a Changed from another object", "name the path in the rule")),
        "total 888" => Some(("it printed a Changed of another interface", "name the interface in the rule")),
        "counter up" | "counter down" => Some((
            "it took a NameOwnerChanged for the counter's: one about another name, or a fake one a stranger sent",
            "the sender org.freedesktop.DBus and arg0 de.ipclab.Counter belong in the rule",
        )),
        _ => None,
    };
    same_line(&line, "total 1").map_err(|f| match diagnosis {
        Some((means, hint)) => f.diagnosed(means, hint),
        None => f,
    })
}

fn watch_exit(cx: &Ctx) -> Step {
    let mut bus = bus(cx)?;
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut p = start_watch(cx, &bus)?;
        if sig == Signal::SIGTERM {
            let pid = p.pid();
            let usage = measure_idle(&mut p, pid, WATCH, Duration::from_millis(500), "with no signals coming")?;
            usage.expect_no_cpu("waiting for the next message blocks")?;
            usage.expect_no_polling("one blocking wait on the message stream, not a loop of short waits")?;
        }
        p.signal(sig);
        p.expect_exit(0, &format!("exit status 0 after {sig}"), cx.secs(3.0))?;
    }
    let mut p = start_watch(cx, &bus)?;
    bus.kill("the bus goes away under the watcher");
    let what = "bus-watch to notice the end of its connection and exit with status 1";
    let exit = p.wait_exit(what, cx.secs(3.0))?;
    if exit != Exit::Code(1) {
        return Err(p.classify(exit, what));
    }
    expect_diagnostic(&p, "bus-watch: ", "lost the bus connection")
}

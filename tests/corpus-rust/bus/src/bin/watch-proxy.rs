// corpus: exercise=bus bin=bus-watch
// design: Proxy signal stream and DBusProxy NameOwnerChanged stream, one thread each
// checks: watch-
// expect: full
//! A different route to `bus-watch`: two signal streams (zbus's
//! `Proxy::receive_signal` — the proxy adds the match rule, sender, path and
//! interface from the proxy), read by two threads that print, and the bus's
//! `DBusProxy::receive_name_owner_changed_with_args` for arg0.
use std::io::Write as _;
use std::process::ExitCode;

use nix::sys::signal::{SigSet, Signal};
use zbus::blocking::fdo::DBusProxy;
use zbus::blocking::{Connection, Proxy};

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn fail(msg: &str) -> ! {
    // Both threads notice a lost bus: one message.
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = ONCE.lock();
    let _ = writeln!(std::io::stderr(), "bus-watch: {msg}");
    std::process::exit(1)
}

fn main() -> ExitCode {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    if mask.thread_block().is_err() {
        fail("sigprocmask");
    }
    std::thread::spawn(move || {
        if mask.wait().is_ok() {
            std::process::exit(0);
        }
    });
    let conn = Connection::session().unwrap_or_else(|e| fail(&format!("cannot connect to the session bus: {e}")));
    let counter = Proxy::new(&conn, "de.ipclab.Counter", "/de/ipclab/Counter", "de.ipclab.Counter1")
        .unwrap_or_else(|e| fail(&format!("D-Bus: {e}")));
    let changes = counter.receive_signal("Changed").unwrap_or_else(|e| fail(&format!("D-Bus: {e}")));
    let bus = DBusProxy::new(&conn).unwrap_or_else(|e| fail(&format!("D-Bus: {e}")));
    let owners = bus
        .receive_name_owner_changed_with_args(&[(0, "de.ipclab.Counter")])
        .unwrap_or_else(|e| fail(&format!("D-Bus: {e}")));
    let running =
        bus.name_has_owner("de.ipclab.Counter".try_into().unwrap()).unwrap_or_else(|e| fail(&format!("D-Bus: {e}")));
    say("ready");
    if running {
        say("counter up");
    }
    std::thread::spawn(move || {
        for m in changes {
            if let Ok(t) = m.body().deserialize::<i64>() {
                say(&format!("total {t}"));
            }
        }
        fail("lost the bus connection");
    });
    for s in owners {
        if let Ok(args) = s.args() {
            say(if args.new_owner().is_some() { "counter up" } else { "counter down" });
        }
    }
    fail("lost the bus connection")
}

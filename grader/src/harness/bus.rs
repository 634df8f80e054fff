//! A private D-Bus for one check, and the grader's own connections to it.
//!
//! The `bus` exercise runs on a real message bus, not a mock: [`Bus::start`]
//! starts a `dbus-daemon` of the grader's own with a configuration in a
//! private directory (a session bus listening on a socket in that
//! directory, EXTERNAL authentication, everything allowed), reads the
//! address it prints, and hands it to programs in
//! `DBUS_SESSION_BUS_ADDRESS` ([`Bus::env`]). No program of a check ever
//! meets the machine's own session bus or another check's. The daemon is a
//! tracked child of the grader (see [`super::reaper`]) in a session of its
//! own, and dies with the grader: dropping the [`Bus`] kills and reaps it
//! and removes the directory; an interrupt kills it with every other
//! tracked process.
//!
//! The daemon runs as the grader's user, the programs of a root grader
//! each as a uid of their own ([`super::runas`]), picked only when each
//! starts — after the bus. So the bus lets every user in (`<allow
//! user="*"/>`: a bus run as root otherwise admits root alone), and its
//! directory lets others pass to the socket (which the daemon makes
//! writable to all) without listing it. The daemon is no process of the
//! program's — not in its cgroup, process group or uid — so no leftover
//! check counts it, and it makes no IPC object an IPC window could see.
//!
//! The grader speaks D-Bus through zbus — its blocking API for method
//! calls, bounded by a method time-out, and a message stream for signals,
//! read in [`Signals::next`] with a deadline and, optionally, a program's
//! exit as a second event. Where no `dbus-daemon` is installed, starting a
//! bus fails as [`Failure::skipped`] with the package to install;
//! `GRADER_DBUS_DAEMON` names another executable (a missing one tests that
//! path).

use std::ffi::{OsStr, OsString};
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_lite::{future, StreamExt};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use zbus::blocking::connection::Builder;
use zbus::blocking::Connection;
use zbus::message::Message;

use super::deadline::{self, Deadline};
use super::failure::{Failure, Step};
use super::program::SharedTranscript;
use super::reaper::{self, SpawnError, Tracked};
use super::{runas, spawn};

/// Environment variable naming the daemon to run (default `dbus-daemon`,
/// looked up in `PATH`).
pub const DAEMON_VAR: &str = "GRADER_DBUS_DAEMON";

/// Where D-Bus programs look for the session bus.
pub const ADDRESS_VAR: &str = "DBUS_SESSION_BUS_ADDRESS";

/// Why the checks are skipped without a daemon, and what to install.
const MISSING: &str = "this machine has no `dbus-daemon` (install the package `dbus-daemon`, or `dbus` on \
                       older Debian and Ubuntu releases: `sudo apt-get install dbus-daemon`)";

/// A session bus with its own socket, allowing everything to everybody:
/// the checks own names, send signals as other senders and introspect
/// freely, and a program running as another uid than the daemon connects
/// (without `<allow user>` a bus admits only its own user).
fn config(dir: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        dir.display()
    )
}

/// A running private `dbus-daemon`.
pub struct Bus {
    /// `None` once [`Self::kill`] ended it.
    daemon: Option<Tracked>,
    pid: Pid,
    address: String,
    /// Kept open: the daemon printed its address there and may not get
    /// SIGPIPE for anything it prints later.
    stdout: std::fs::File,
    log: SharedTranscript,
    /// Holds the configuration, the socket and the daemon's stderr;
    /// removed after the daemon is gone (fields drop in order).
    dir: tempfile::TempDir,
}

impl Bus {
    /// Start a private daemon (`GRADER_DBUS_DAEMON` or `dbus-daemon`) and
    /// wait (until `timeout`) for its address.
    pub fn start(timeout: Duration, log: SharedTranscript) -> Step<Bus> {
        let program = std::env::var_os(DAEMON_VAR).unwrap_or_else(|| "dbus-daemon".into());
        Bus::start_program(&program, timeout, log)
    }

    fn start_program(program: &OsStr, timeout: Duration, log: SharedTranscript) -> Step<Bus> {
        let dir = tempfile::Builder::new()
            .prefix("ipc-lab-bus-")
            .permissions(std::fs::Permissions::from_mode(0o711))
            .tempdir_in(runas::workdir_base())
            .map_err(|e| Failure::grader(format!("cannot create a directory for the bus: {e}")))?;
        if dir.path().to_str().is_none_or(|p| p.chars().any(|c| "<>&\"' \t\n".contains(c))) {
            return Err(Failure::grader(format!(
                "the temporary directory {} is unfit for a bus address",
                dir.path().display()
            )));
        }
        let conf = dir.path().join("bus.conf");
        std::fs::write(&conf, config(dir.path()))
            .map_err(|e| Failure::grader(format!("cannot write {}: {e}", conf.display())))?;
        let stderr = std::fs::File::create(dir.path().join("stderr"))
            .map_err(|e| Failure::grader(format!("cannot create the daemon's stderr file: {e}")))?;
        let mut cmd = Command::new(program);
        let mut flag = OsString::from("--config-file=");
        flag.push(&conf);
        cmd.arg(flag).args(["--nofork", "--print-address=1"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr).env_remove(ADDRESS_VAR);
        spawn::contain_helper(&mut cmd);
        let mut daemon = reaper::spawn_tracked(&mut cmd).map_err(|e| match e {
            SpawnError::Stopping => Failure::grader("the grader is stopping"),
            SpawnError::Io(e) if e.kind() == ErrorKind::NotFound => {
                Failure::skipped(format!("{MISSING}; tried `{}`", Path::new(program).display()))
            }
            SpawnError::Io(e) => Failure::grader(format!("cannot start `{}`: {e}", Path::new(program).display())),
        })?;
        let pid = daemon.pid();
        let stdout: OwnedFd = daemon.stdout.take().map(Into::into).ok_or_else(|| Failure::grader("no stdout pipe"))?;
        let mut bus = Bus { daemon: Some(daemon), pid, address: String::new(), stdout: stdout.into(), log, dir };
        bus.address = bus.read_address(Deadline::after(timeout))?;
        bus.log.borrow_mut().did(format!("started a private dbus-daemon (pid {pid}) at `{}`", bus.address));
        Ok(bus)
    }

    /// The first line the daemon prints (`--print-address=1`): its address.
    fn read_address(&mut self, deadline: Deadline) -> Step<String> {
        if let Ok(flags) = fcntl(&self.stdout, FcntlArg::F_GETFL) {
            let _ = fcntl(&self.stdout, FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK));
        }
        let pidfd = reaper::pidfd_open(self.pid).ok_or_else(|| self.died("before it printed its address"))?;
        let mut line = Vec::new();
        loop {
            let mut chunk = [0u8; 512];
            match (&self.stdout).read(&mut chunk) {
                Ok(0) => return Err(self.died("before it printed its address")),
                Ok(n) => line.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::grader(format!("reading the dbus-daemon's address: {e}"))),
            }
            if let Some(end) = line.iter().position(|&b| b == b'\n') {
                let address = String::from_utf8_lossy(&line[..end]).trim().to_string();
                if address.is_empty() {
                    return Err(self.died("with an empty address line"));
                }
                return Ok(address);
            }
            if deadline.passed() {
                return Err(Failure::grader("the dbus-daemon printed no address in time".to_string()));
            }
            let mut fds =
                [PollFd::new(self.stdout.as_fd(), PollFlags::POLLIN), PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            deadline::wait(&mut fds, deadline);
            if fds[1].any().unwrap_or(false) && !fds[0].any().unwrap_or(false) {
                return Err(self.died("before it printed its address"));
            }
        }
    }

    /// The daemon failed to start: what it said.
    fn died(&self, when: &str) -> Failure {
        let said = std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default();
        let said: Vec<&str> = said.lines().filter(|l| !l.contains("fd limit")).collect();
        Failure::grader(format!("the private dbus-daemon ended {when}: {}", said.join(" | ")))
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// An address in the bus's directory where nothing listens: a program
    /// given it finds no bus.
    pub fn nowhere(&self) -> String {
        format!("unix:path={}", self.dir.path().join("nobody-listens-here").display())
    }

    /// The environment a program needs to find this bus.
    pub fn env(&self) -> (OsString, OsString) {
        (ADDRESS_VAR.into(), self.address.clone().into())
    }

    /// A connection of the grader's own, called `name` in the transcript;
    /// its method calls give up after `timeout`.
    pub fn connect(&self, name: &str, timeout: Duration) -> Step<Client> {
        let conn = Builder::address(self.address.as_str())
            .and_then(|b| b.method_timeout(timeout).build())
            .map_err(|e| Failure::grader(format!("{name} cannot connect to the private bus: {e}")))?;
        let client = Client { name: name.to_string(), conn, log: self.log.clone() };
        client.log(format!("{name} connected to the bus as {}", client.unique_name()));
        Ok(client)
    }

    /// Kill the daemon (SIGKILL) and wait until it is gone: every
    /// connection to the bus ends, as when a real bus crashes.
    pub fn kill(&mut self, why: &str) {
        self.log.borrow_mut().did(format!("killed the dbus-daemon (pid {}) with SIGKILL: {why}", self.pid));
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = daemon.wait_until(Deadline::after(Duration::from_secs(10)));
            let _ = daemon.wait();
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How a method call went: its reply, or the error the bus or the callee
/// answered with (or a time-out).
pub type Reply = Result<Message, zbus::Error>;

/// A connection of the grader's own to a private bus.
pub struct Client {
    /// For the transcript: `client A`, `the grader's counter`.
    pub name: String,
    conn: Connection,
    log: SharedTranscript,
}

impl Client {
    pub fn log(&self, step: impl Into<String>) {
        self.log.borrow_mut().did(step);
    }

    /// The unique name the bus gave this connection (`:1.4`).
    pub fn unique_name(&self) -> String {
        self.conn.unique_name().map(|n| n.to_string()).unwrap_or_default()
    }

    /// The zbus connection itself, for a thread of a check (a [`Client`]
    /// writes to the check's transcript and stays on its thread).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Call `iface.member(body)` on `path` of `dest`, unlogged.
    pub fn call<B>(&self, dest: &str, path: &str, iface: &str, member: &str, body: &B) -> Reply
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn.call_method(Some(dest), path, Some(iface), member, body)
    }

    /// The unique name owning `name` now, if any (`GetNameOwner`).
    pub fn owner(&self, name: &str) -> Step<Option<String>> {
        let reply =
            self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner", &name);
        match reply {
            Ok(m) => m
                .body()
                .deserialize::<String>()
                .map(Some)
                .map_err(|e| Failure::grader(format!("GetNameOwner replied oddly: {e}"))),
            Err(zbus::Error::MethodError(error, _, _))
                if error.as_str() == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
            {
                Ok(None)
            }
            Err(e) => Err(Failure::grader(format!("GetNameOwner({name}) failed: {e}"))),
        }
    }

    /// Own `name` without queueing and without letting anybody replace
    /// this connection as its owner (only DO_NOT_QUEUE), logged.
    pub fn own(&self, name: &str) -> Step {
        self.conn
            .request_name_with_flags(name, zbus::fdo::RequestNameFlags::DoNotQueue.into())
            .map_err(|e| Failure::grader(format!("{} cannot own {name}: {e}", self.name)))?;
        self.log(format!("{} took the name {name}", self.name));
        Ok(())
    }

    /// Give `name` up, logged.
    pub fn disown(&self, name: &str) -> Step {
        self.conn
            .release_name(name)
            .map_err(|e| Failure::grader(format!("{} cannot release {name}: {e}", self.name)))?;
        self.log(format!("{} released the name {name}", self.name));
        Ok(())
    }

    /// Emit signal `iface.member(body)` from `path` as this connection
    /// (broadcast), unlogged.
    pub fn emit<B>(&self, path: &str, iface: &str, member: &str, body: &B) -> Step
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn
            .emit_signal(None::<&str>, path, iface, member, body)
            .map_err(|e| Failure::grader(format!("{} cannot emit {iface}.{member}: {e}", self.name)))
    }

    /// A round trip to the bus (`GetId`): once it returns, the bus has
    /// routed everything this connection sent before — to every receiver,
    /// in order. Signals from two connections have no order of their own;
    /// this gives them one.
    pub fn sync(&self) -> Step {
        self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId", &())
            .map(drop)
            .map_err(|e| Failure::grader(format!("{}: a round trip to the bus failed: {e}", self.name)))
    }

    /// Receive the messages matching `rule` (a D-Bus match rule, registered
    /// with the bus) from now on.
    pub fn subscribe(&self, rule: &str) -> Step<Signals> {
        let stream = zbus::block_on(zbus::MessageStream::for_match_rule(rule, self.conn.inner(), Some(1024)))
            .map_err(|e| Failure::grader(format!("{} cannot subscribe to `{rule}`: {e}", self.name)))?;
        Ok(Signals { stream })
    }
}

/// Messages arriving for one match rule of a [`Client`].
pub struct Signals {
    stream: zbus::MessageStream,
}

/// How a wait in [`Signals::next`] ended.
pub enum Next {
    Got(Message),
    /// The program watched exited first.
    Exited,
    Deadline,
    /// The connection ended (the bus is gone).
    Closed,
}

impl Signals {
    /// The next message, waiting until `timeout`; with `exit`, a program's
    /// pid, also stop when that program exits (a message already queued is
    /// returned first).
    pub fn next(&mut self, timeout: Duration, exit: Option<Pid>) -> Next {
        // A pidfd of its own: registering a descriptor with the async
        // reactor makes it non-blocking, and the program's own pidfd must
        // stay as it is.
        let exited = exit.and_then(reaper::pidfd_open).and_then(|fd| async_io::Async::new(fd).ok());
        let stream = &mut self.stream;
        zbus::block_on(async {
            let message = async {
                match stream.next().await {
                    Some(Ok(m)) => Next::Got(m),
                    Some(Err(_)) | None => Next::Closed,
                }
            };
            let gone = async {
                match &exited {
                    Some(fd) => {
                        let _ = fd.readable().await;
                        Next::Exited
                    }
                    None => future::pending().await,
                }
            };
            let late = async {
                async_io::Timer::after(timeout).await;
                Next::Deadline
            };
            future::or(message, future::or(gone, late)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts a real daemon where there is one; the skip path otherwise.
    #[test]
    fn a_private_bus_routes_a_signal_and_goes_away() {
        let log = SharedTranscript::default();
        let mut bus = match Bus::start(Duration::from_secs(10), log.clone()) {
            Ok(bus) => bus,
            Err(f) if f.kind == crate::harness::Kind::Skipped => return,
            Err(f) => panic!("{f}"),
        };
        assert!(bus.address().starts_with("unix:"), "{}", bus.address());
        let a = bus.connect("a", Duration::from_secs(5)).unwrap();
        let b = bus.connect("b", Duration::from_secs(5)).unwrap();
        let rule = format!("type='signal',sender='{}',member='Ping'", a.unique_name());
        let mut signals = b.subscribe(&rule).unwrap();
        a.emit("/x", "de.ipclab.Test", "Ping", &7i64).unwrap();
        let Next::Got(m) = signals.next(Duration::from_secs(5), None) else { panic!("no signal") };
        assert_eq!(m.body().deserialize::<i64>().unwrap(), 7);
        assert!(matches!(signals.next(Duration::from_millis(20), None), Next::Deadline));
        a.own("de.ipclab.Test").unwrap();
        assert_eq!(b.owner("de.ipclab.Test").unwrap(), Some(a.unique_name()));
        let pid = bus.pid;
        bus.kill("test");
        assert!(matches!(signals.next(Duration::from_secs(5), None), Next::Closed));
        assert!(crate::harness::procfs::state(pid).is_none(), "the daemon is reaped");
        let dir = bus.dir.path().to_path_buf();
        drop(bus);
        assert!(!dir.exists());
    }

    #[test]
    fn a_missing_daemon_is_a_skip_that_names_the_package() {
        let missing = OsStr::new("/nonexistent/dbus-daemon");
        let f = Bus::start_program(missing, Duration::from_secs(5), Default::default()).err().expect("no bus");
        assert_eq!(f.kind, crate::harness::Kind::Skipped);
        assert!(f.got.contains("dbus-daemon") && f.got.contains("apt-get install"), "{}", f.got);
    }
}

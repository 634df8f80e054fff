//! Each program in a PID namespace of its own, where the machine allows it.
//!
//! Without one, `kill(-1, SIG)` from a program reaches every process its
//! user may signal — the student's desktop session, the CI runner, other
//! graders — and `kill(getppid(), SIGSTOP)` stops the grader. In a PID
//! namespace a program sees and reaches only its own processes. Per
//! program:
//!
//! ```text
//! grader ── init (pid 1) ── parent (pid 2) ── program (pid P) ── its children (P+1, …)
//! ```
//!
//! - **init** holds the namespace: it waits until the grader closes the
//!   link to it (or the program could not be started). Killing it kills
//!   everything in the namespace, which no process can leave.
//! - **the parent** stands in for the grader as the program sees it: it is
//!   the program's `getppid()` and, as a child subreaper, the reaper of its
//!   orphans, as the grader is without a namespace. It blocks every signal
//!   and tells the grader of each that a process of the namespace sends it;
//!   the grader collects them when the program is done
//!   ([`Namespace::incidents`]), and the check fails as if they had reached
//!   the grader. Once it has started the program it takes the program's uid
//!   and gid (a root grader runs programs as a uid of their own, see
//!   [`super::runas`]): then the program can signal it as it could a grader
//!   of its own user, the parent holds no power over anything else, and it
//!   is one process of the program's `RLIMIT_NPROC` (raised by one for it)
//!   but no member of its leash (`Leash::stand_in`). Unlike the grader it
//!   may be stopped (SIGSTOP) or killed (SIGKILL) without harm, and the
//!   grader notices that too. It never reaps: the program stays a zombie,
//!   and the grader reads its exit status from `/proc`
//!   ([`procfs::exit_status`]), as it sees a child the program did not reap.
//! - **the program**, prepared exactly as without a namespace (the rest of
//!   [`super::spawn`]'s `pre_exec` runs in it), gets as its pid the
//!   parent's pid outside the namespace, which no other process on the
//!   machine has while it runs: names made from `getpid()` (`/shm-<pid>`)
//!   cannot clash with those of programs running beside it in other
//!   namespaces. (Its children's pids count on from there where the grader
//!   may write `/proc/sys`, else from 3, and are unique only within its
//!   namespace.)
//!
//! init dies with the grader (`PR_SET_PDEATHSIG`, where the grader's
//! thread that starts it lives on) and ends when the link to the grader
//! closes, as it does when the grader dies: everything in the namespace
//! dies with it. The program itself has no parent-death signal: its parent
//! is the stand-in, which it may kill.
//!
//! init and the parent are forks of the grader that never `exec`, so they
//! keep the capability to choose the program's pid (`clone3`'s `set_tid`)
//! also in the grader's own user namespace; between `fork` and `_exit` they
//! make only async-signal-safe system calls on data prepared before the
//! fork, like any `pre_exec` code.
//!
//! Namespaces need CAP_SYS_ADMIN: root has it; an unprivileged grader gets
//! it in a user namespace of its own, entered at start ([`prepare`]) where
//! the machine allows unprivileged user namespaces, with its uid and gid
//! mapped to themselves so that nothing else changes. Every pid the grader
//! shows or compares is the one the program sees (`NSpid` in
//! `/proc/PID/status`, see [`procfs::ns_pid`]). `GRADER_NO_PIDNS=1` turns
//! namespaces off; the report says which way the programs ran
//! ([`isolation`]).

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;

use super::deadline::{self, Deadline};
use super::failure::signal_name;
use super::failure::{Failure, Kind, Step};
use super::procfs::{self, Status};
use super::reaper::{self, SpawnError, Tracked};
use super::signals::{self, sent_to_grader, Action};
use super::spawn::{default_signals, die_with_parent, First};
use crate::results::Isolation;

// ----- may we? -------------------------------------------------------------

static ISOLATION: OnceLock<Isolation> = OnceLock::new();

/// Decide whether programs run in PID namespaces, entering a user namespace
/// if that is what it takes. Call in `main` before any thread starts (a
/// process with threads cannot enter a user namespace).
pub fn prepare() {
    ISOLATION.get_or_init(|| decide(true));
}

/// Whether programs run in PID namespaces of their own, for the report.
pub fn isolation() -> Isolation {
    ISOLATION.get_or_init(|| decide(false)).clone()
}

fn enabled() -> bool {
    isolation().pid_namespace
}

fn decide(may_enter_user_namespace: bool) -> Isolation {
    let off = |why: &str| Isolation { pid_namespace: false, reason: Some(why.to_string()) };
    if std::env::var_os("GRADER_NO_PIDNS").is_some_and(|v| !v.is_empty() && v != "0") {
        return off("GRADER_NO_PIDNS is set");
    }
    let on = Isolation { pid_namespace: true, reason: None };
    if probe(None) {
        return on;
    }
    // Root without CAP_SYS_ADMIN (a container) stays as it is: in a user
    // namespace of its own it would lose its power over other uids.
    let (uid, gid) = own_ids();
    if !may_enter_user_namespace || uid == 0 {
        return off("no permission to make PID namespaces");
    }
    let maps = Maps::of(uid, gid);
    if !probe(Some(&maps)) || maps.enter().is_err() || !probe(None) {
        return off("no permission to make PID namespaces, and no unprivileged user namespaces");
    }
    on
}

/// The grader's effective uid and gid (root when unknown: then it does not
/// try a user namespace).
fn own_ids() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let id = |key: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(key));
        line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
    };
    (id("Uid:"), id("Gid:"))
}

/// A user namespace's `uid_map` and `gid_map` that map the grader's ids to
/// themselves.
struct Maps {
    uid: CString,
    gid: CString,
}

impl Maps {
    fn of(uid: u32, gid: u32) -> Maps {
        let line = |id: u32| CString::new(format!("{id} {id} 1")).expect("digits");
        Maps { uid: line(uid), gid: line(gid) }
    }

    /// Enter a new user namespace, as the same uid and gid.
    fn enter(&self) -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWUSER)?;
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", self.uid.as_bytes())?;
        std::fs::write("/proc/self/gid_map", self.gid.as_bytes())
    }
}

/// Can a namespace be made, and its next pid chosen, here (after entering a
/// user namespace with `maps`)? Tried in a child.
fn probe(maps: Option<&Maps>) -> bool {
    reaper::owning_children(|| {
        // SAFETY: the child makes only raw system calls on data prepared
        // before the fork (the maps), then `_exit`s; nothing is allocated.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => false,
            0 => unsafe { libc::_exit(probe_child(maps)) },
            pid => {
                let mut status = 0;
                // SAFETY: waits for the child just made.
                let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
                rc == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
            }
        }
    })
}

/// # Safety
/// Only in the child of [`probe`].
unsafe fn probe_child(maps: Option<&Maps>) -> i32 {
    if let Some(m) = maps {
        if libc::unshare(libc::CLONE_NEWUSER) != 0
            || !write_file(c"/proc/self/setgroups", b"deny")
            || !write_file(c"/proc/self/uid_map", m.uid.as_bytes())
            || !write_file(c"/proc/self/gid_map", m.gid.as_bytes())
        {
            return 1;
        }
    }
    if libc::unshare(libc::CLONE_NEWPID) != 0 {
        return 1;
    }
    match libc::fork() {
        -1 => 1,
        0 => {
            // init of the namespace: can it choose a child's pid?
            let child = fork_as(300);
            if child == 0 {
                libc::_exit(0);
            }
            let mut status = 0;
            let ok = child > 0 && libc::waitpid(child, &mut status, 0) == child;
            libc::_exit(if ok && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 { 0 } else { 1 })
        }
        init => {
            let mut status = 0;
            let ok = libc::waitpid(init, &mut status, 0) == init && libc::WIFEXITED(status);
            if ok && libc::WEXITSTATUS(status) == 0 {
                0
            } else {
                1
            }
        }
    }
}

/// `clone3`'s arguments up to `set_tid_size` (`CLONE_ARGS_SIZE_VER1`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
}

/// `fork`, with the child's pid in the caller's PID namespace chosen
/// (`clone3`'s `set_tid`; Linux 5.5). Needs CAP_SYS_ADMIN (or
/// CAP_CHECKPOINT_RESTORE) over the namespace. Like `fork`: -1, 0 in the
/// child, the pid in the parent.
///
/// # Safety
/// As `fork`: in the child, only async-signal-safe calls (and glibc's
/// cached thread id is the parent's: no `raise`, no pthread calls).
unsafe fn fork_as(pid: libc::pid_t) -> libc::pid_t {
    let tid = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tid.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) as libc::pid_t
}

// ----- starting a program in a namespace --------------------------------------

/// How a program is started in a namespace of its own: made before its
/// `Command` (which takes [`Plan::first`]), finished after it.
pub struct Plan {
    /// The grader's end of the link to the parent and init.
    ours: OwnedFd,
    theirs: OwnedFd,
    /// The program's end of the pipe that tells init it got as far as
    /// `exec`: set in the program, used by [`Plan::last`]'s code.
    witness: Arc<AtomicI32>,
    /// The uid and gid the program runs as, if not the grader's: the
    /// parent takes them once it has started the program.
    user: Option<(u32, u32)>,
}

/// The program's namespace, seen from the grader.
#[derive(Debug)]
pub struct Namespace {
    link: OwnedFd,
    /// init (the grader's child) and the parent, as pids of the grader's
    /// `/proc`.
    init: Pid,
    parent: Pid,
    /// The program's pid as it sees it.
    pub seen: Pid,
    /// Signals the parent told of while the program was being started.
    early: Vec<(i32, Pid)>,
}

/// A program started in a namespace.
pub struct Started {
    /// init: the grader's child.
    pub child: Tracked,
    /// The program, as the grader's `/proc` shows it.
    pub program: Pid,
    pub ns: Namespace,
}

impl Plan {
    /// `None` when programs run without namespaces. `user`: the uid and
    /// gid the program runs as, if not the grader's own.
    pub fn new(user: Option<(u32, u32)>) -> Option<io::Result<Plan>> {
        if !enabled() {
            return None;
        }
        Some(
            socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
                .map_err(io::Error::from)
                .map(|(ours, theirs)| Plan { ours, theirs, witness: Arc::new(AtomicI32::new(-1)), user }),
        )
    }

    /// The first `pre_exec` code: split the child into init, the parent and
    /// the program. Only the program returns (to be prepared and to run
    /// [`Plan::last`]).
    pub fn first(&self) -> First {
        let link = self.theirs.as_raw_fd();
        let witness = self.witness.clone();
        let user = self.user;
        // init dies with the grader's thread that starts it, where that
        // thread is the caller's (see [`in_new_namespace`]); a thread of its
        // own would end at once. Either way init ends when the link closes,
        // as it does when the grader dies.
        let grader = own_namespace().map(|_| std::process::id() as i32);
        // SAFETY (of the `pre_exec` it becomes): see the module
        // documentation; `split` and all it calls are async-signal-safe.
        Box::new(move || unsafe { split(link, &witness, user, grader) })
    }

    /// Add the last `pre_exec` code: the program `exec`s itself, with the
    /// command's program, arguments and environment, and `argv0` as the
    /// program's name (the path the grader was given: `Command` may run a
    /// copy, see [`super::runas::exec_path`]). (`Command`'s own
    /// `exec` would report a failure to the grader and then wait for its
    /// child — init, which does not end by itself.) The command must clear
    /// its environment (as `spawn::command` does): only the variables
    /// it sets are passed.
    pub fn last(&self, cmd: &mut Command, argv0: &Path) {
        let exec = Exec::of(cmd, argv0);
        let link = self.theirs.as_raw_fd();
        let witness = self.witness.clone();
        // SAFETY: runs in the program between fork and exec; `run` makes
        // only async-signal-safe calls on data prepared here.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(cmd, move || exec.run(witness.load(Ordering::Relaxed), link));
        }
    }

    /// Start `cmd` (built with [`Plan::first`] and [`Plan::last`]) with its
    /// child as init of a new PID namespace, and wait until the program
    /// (`path`) has been exec'ed.
    pub fn spawn(self, cmd: &mut Command, path: &Path) -> Step<Started> {
        let not_started = |e: io::Error| {
            Failure::new(
                Kind::Crashed,
                format!("`{}` could not be started: {e}", path.display()),
                "an executable program",
            )
        };
        // `Command::spawn` returns once the program has exec'ed (or failed).
        let child = in_new_namespace(|| {
            reaper::spawn_tracked(cmd).map_err(|e| match e {
                SpawnError::Stopping => Failure::grader("the grader is stopping"),
                SpawnError::Io(e) => not_started(e),
            })
        })?;
        drop(self.theirs);
        let init = child.pid();
        // What the parent and the program said is all in the link by now:
        // `started` came before the program could go on, `failed` before it
        // ended.
        let (mut started, mut errno, mut broken, mut early) = (None, None, None, Vec::new());
        let mut buf = [0u8; 64];
        let mut deadline = Deadline::after(Duration::from_secs(5));
        while let Some(n) = receive(&self.ours, &mut buf, deadline) {
            let (word, numbers) = message(&buf[..n]);
            match (word, numbers.as_slice()) {
                (b"started", &[seen, parent]) => started = Some((seen, parent)),
                (b"failed", &[e]) => errno = Some(e),
                (b"broken", &[e]) => broken = Some(io::Error::from_raw_os_error(e as i32)),
                // The program may be quick to signal its parent.
                (b"sig", &[sig, from]) => early.push((sig as i32, Pid::from_raw(from as i32))),
                _ => {}
            }
            deadline = Deadline::after(Duration::ZERO);
        }
        let failure = match (started, errno) {
            (Some((seen, parent)), None) => {
                let parent = Pid::from_raw(parent as i32);
                match procfs::children(parent).first().copied() {
                    Some(program) => {
                        let seen = Pid::from_raw(seen as i32);
                        let ns = Namespace { link: self.ours, init, parent, seen, early };
                        return Ok(Started { child, program, ns });
                    }
                    None => Failure::grader("the program vanished as it started"),
                }
            }
            (_, Some(e)) => not_started(io::Error::from_raw_os_error(e as i32)),
            _ => Failure::grader(match broken {
                Some(e) => format!("the program's stand-in parent could not start it: {e}"),
                None => "the program's stand-in parent did not start it".into(),
            }),
        };
        let mut child = child;
        let _ = kill(init, Signal::SIGKILL);
        let _ = child.wait();
        Err(failure)
    }
}

/// Run `spawn` with the children the calling thread makes going into a new
/// PID namespace (`unshare(CLONE_NEWPID)` is about the next children of the
/// calling thread): the first becomes its init. Then the thread's children
/// go to the grader's namespace again — by `setns` where the grader may
/// (see [`own_namespace`]), else by making them in a thread of its own.
fn in_new_namespace<T: Send>(spawn: impl FnOnce() -> Step<T> + Send) -> Step<T> {
    let unshared =
        || unshare(CloneFlags::CLONE_NEWPID).map_err(|e| Failure::grader(format!("cannot make a PID namespace: {e}")));
    match own_namespace() {
        Some(own) => {
            unshared()?;
            let spawned = spawn();
            // Should it fail, the next `unshare` on this thread fails too:
            // no program lands in another's namespace.
            setns(own, CloneFlags::CLONE_NEWPID)
                .map_err(|e| Failure::grader(format!("cannot leave the program's PID namespace: {e}")))?;
            spawned
        }
        None => std::thread::scope(|s| {
            s.spawn(|| {
                unshared()?;
                spawn()
            })
            .join()
            .unwrap_or_else(|_| Err(Failure::grader("the thread starting the program panicked")))
        }),
    }
}

/// The grader's own PID namespace, if a thread may return to it after
/// `unshare` (the grader has CAP_SYS_ADMIN over it: root, not an
/// unprivileged user namespace). Tried once, in a thread of its own.
fn own_namespace() -> Option<&'static OwnedFd> {
    static OWN: OnceLock<Option<OwnedFd>> = OnceLock::new();
    OWN.get_or_init(|| {
        let own: OwnedFd = std::fs::File::open("/proc/self/ns/pid").ok()?.into();
        let back = std::thread::scope(|s| {
            s.spawn(|| unshare(CloneFlags::CLONE_NEWPID).is_ok() && setns(&own, CloneFlags::CLONE_NEWPID).is_ok())
                .join()
                .unwrap_or(false)
        });
        back.then_some(own)
    })
    .as_ref()
}

/// A message of the link (`started 4242 4242`): its word and its numbers.
fn message(msg: &[u8]) -> (&[u8], Vec<i64>) {
    let mut parts = msg.split(|&b| b == b' ');
    let word = parts.next().unwrap_or_default();
    (word, parts.filter_map(|w| std::str::from_utf8(w).ok()?.parse().ok()).collect())
}

/// One message from the link, or `None` at EOF or when `deadline` passed.
fn receive(link: &OwnedFd, buf: &mut [u8], deadline: Deadline) -> Option<usize> {
    loop {
        let ready = deadline::wait(&mut [PollFd::new(link.as_fd(), PollFlags::POLLIN)], deadline);
        if ready == 0 {
            return None;
        }
        match nix::unistd::read(link, buf) {
            Ok(0) => return None,
            Ok(n) => return Some(n),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(_) => return None,
        }
    }
}

impl Namespace {
    /// The program's stand-in parent, as the grader's `/proc` shows it.
    pub fn parent(&self) -> Pid {
        self.parent
    }

    /// Kill everything in the namespace (by killing init).
    pub fn kill(&self) {
        let _ = kill(self.init, Signal::SIGKILL);
    }

    /// The processes of the namespace other than init and the parent.
    pub fn members(&self) -> Vec<Pid> {
        procfs::tree(self.init).into_iter().filter(|&p| p != self.init && p != self.parent).collect()
    }

    /// The process of the namespace that sees itself as `seen`.
    ///
    /// Looked up by the namespace each process is in, not by walking the
    /// tree from init: a process that is being re-parented while the walk
    /// passes (its parent just exited) is under neither parent the walk
    /// reads, and a stage a pipeline left behind would go unseen.
    pub fn find(&self, seen: Pid) -> Option<Pid> {
        let ns_of = |p: Pid| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
        let ours = ns_of(self.init)?;
        procfs::all_pids().into_iter().find(|&p| {
            p != self.init && p != self.parent && procfs::ns_pid(p) == Some(seen) && ns_of(p).as_ref() == Some(&ours)
        })
    }

    /// What the program `name` and its processes did to their parent, the
    /// grader's stand-in, as lines for the check's failure: the signals
    /// they sent it, and whether they stopped or killed it.
    pub fn incidents(&self, name: &str) -> Vec<String> {
        if reaper::stopping() {
            return Vec::new(); // the grader killed them all itself
        }
        let own = format!("{name} (pid {})", self.seen);
        let mut out = Vec::new();
        let stopped = format!("{own} or a process it started sent SIGSTOP to the grader");
        if procfs::state(self.parent).is_none_or(|s| matches!(s, 'Z' | 'X')) {
            let how = procfs::exit_status(self.parent).filter(|s| libc::WIFSIGNALED(*s));
            let sig = how.map(|s| libc::WTERMSIG(s)).unwrap_or(libc::SIGKILL);
            out.push(format!("{own} or a process it started killed the grader with {}", signal_name(sig)));
            return out;
        }
        if self.stopped() {
            out.push(stopped.clone());
        }
        // The parent tells of each signal as it reads it. Idle with none
        // queued, it has told all: read what is there. Else ask, and wait
        // for its `end`.
        let ask = !out.is_empty() || !self.idle();
        if ask && nix::unistd::write(&self.link, b"f").is_err() {
            return out;
        }
        let tell = |out: &mut Vec<String>, sig: i32, from: Pid| {
            let comm = self.find(from).map(procfs::comm);
            let who = signals::who(name, from, from == self.seen, comm.as_deref());
            out.push(sent_to_grader(&who, sig));
        };
        self.early.iter().for_each(|&(sig, from)| tell(&mut out, sig, from));
        let mut deadline = Deadline::after(if ask { Duration::from_secs(1) } else { Duration::ZERO });
        let mut buf = [0u8; 64];
        loop {
            let Some(n) = receive(&self.link, &mut buf, deadline) else {
                // A SIGSTOP that had yet to take effect when looked at holds
                // up the answer: look again.
                if ask && out.first() != Some(&stopped) && self.stopped() {
                    out.insert(0, stopped.clone());
                    deadline = Deadline::after(Duration::from_secs(5));
                    continue;
                }
                break;
            };
            let (word, numbers) = message(&buf[..n]);
            match (word, numbers.as_slice()) {
                (b"sig", &[sig, from]) => tell(&mut out, sig as i32, Pid::from_raw(from as i32)),
                _ => break, // `end`
            }
        }
        out
    }

    /// Whether the parent has told the grader of every signal sent to it so
    /// far: none is queued for it, and it sleeps in `ppoll` (it tells before
    /// it sleeps again). In this order: a signal it takes between the two
    /// looks finds it awake.
    fn idle(&self) -> bool {
        let queued = procfs::status(self.parent).map_or(u64::MAX, |s| s.shd_pnd | s.sig_pnd);
        let harmless = (1..=64).all(|sig| !Status::has(queued, sig) || signals::default_action(sig) == Action::Ignore);
        harmless && procfs::syscall(self.parent) == Some(libc::SYS_ppoll)
    }

    /// Whether the parent is stopped, or about to be (SIGSTOP pending);
    /// then it is continued.
    fn stopped(&self) -> bool {
        let pending = procfs::status(self.parent).is_some_and(|s| Status::has(s.shd_pnd | s.sig_pnd, libc::SIGSTOP));
        let stopped = pending || matches!(procfs::state(self.parent), Some('T' | 't'));
        if stopped {
            let _ = kill(self.parent, Signal::SIGCONT);
        }
        stopped
    }
}

// ----- in the child: init, the parent, the program ---------------------------

/// What the program `exec`s, as C strings made before the fork.
struct Exec {
    path: CString,
    _args: Vec<CString>,
    _env: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into the `CString`s owned alongside them,
// which are never changed; they are only read (by `execve`).
unsafe impl Send for Exec {}
// SAFETY: as for `Send`.
unsafe impl Sync for Exec {}

impl Exec {
    fn of(cmd: &Command, argv0: &Path) -> Exec {
        let c = |s: &OsStr| CString::new(s.as_bytes()).unwrap_or_default();
        let path = c(cmd.get_program());
        let args: Vec<CString> = std::iter::once(argv0.as_os_str()).chain(cmd.get_args()).map(c).collect();
        let env: Vec<CString> = cmd
            .get_envs()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v?.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let ptrs = |v: &[CString]| v.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
        let (argv, envp) = (ptrs(&args), ptrs(&env));
        Exec { path, _args: args, _env: env, argv, envp }
    }

    /// In the program: tell init (through `witness`) that it got this far,
    /// then `exec`; on failure send the errno over the `link` and `_exit`.
    ///
    /// # Safety
    /// Only between fork and exec.
    unsafe fn run(&self, witness: RawFd, link: RawFd) -> io::Result<()> {
        libc::write(witness, b"E".as_ptr().cast(), 1);
        libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
        report(link, b"failed", *libc::__errno_location())
    }
}

/// In the fresh child, pid 1 of the new namespace: become init, fork the
/// parent, which forks the program. Returns (`Ok`) only in the program.
///
/// # Safety
/// Only between fork and exec, as `pre_exec` code.
unsafe fn split(link: RawFd, witness: &AtomicI32, user: Option<(u32, u32)>, grader: Option<i32>) -> io::Result<()> {
    // A session of their own: a terminal's Ctrl-C for the grader's process
    // group is not for init and the parent (the program makes its own).
    libc::setsid();
    // Killing init kills the namespace: it dies with the grader, as a
    // program outside a namespace does. (Not inherited by the parent.)
    if let Some(grader) = grader {
        die_with_parent(grader, libc::SIGKILL)?;
    }
    let mut pipe = [0; 2];
    if libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
        return Err(io::Error::last_os_error());
    }
    match libc::fork() {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            libc::close(pipe[0]);
            parent(link, pipe[1], witness, user)
        }
        _ => {
            libc::close(pipe[1]);
            init(link, pipe[0])
        }
    }
}

/// init: wait until the grader closes the link. Also end when the program
/// ends before it got to `exec` (`witness` closed without an `E`): then
/// `Command` reports the failure and waits for init.
unsafe fn init(link: RawFd, witness: RawFd) -> ! {
    close_all_but(&mut [link, witness]);
    null_stdio();
    // Every signal at its default: init of a namespace then ignores what
    // its members send it.
    default_signals();
    let mut watching = true;
    loop {
        let mut fds = [
            libc::pollfd { fd: link, events: 0, revents: 0 },
            libc::pollfd { fd: if watching { witness } else { -1 }, events: libc::POLLIN, revents: 0 },
        ];
        if libc::poll(fds.as_mut_ptr(), 2, -1) < 0 {
            continue;
        }
        if fds[0].revents != 0 {
            libc::_exit(0);
        }
        if fds[1].revents != 0 {
            let mut b = 0u8;
            if libc::read(witness, (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(0);
            }
            libc::close(witness);
            watching = false;
        }
    }
}

/// The parent: fork the program with a pid of the machine's, tell the
/// grader, let the program go on once the parent holds nothing of the
/// grader's, then count the signals sent to it until the grader is done.
/// Returns only in the program. (The program can stop the parent as soon
/// as it runs: by then the parent holds no descriptor that anybody waits
/// on.)
unsafe fn parent(link: RawFd, witness: RawFd, witness_slot: &AtomicI32, user: Option<(u32, u32)>) -> io::Result<()> {
    libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    let sfd = libc::signalfd(-1, &all, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
    // This process's pid outside the namespace (`/proc` is the grader's):
    // unique on the machine while it lives, the program's pid inside.
    let mut buf = [0u8; 24];
    let n = libc::readlink(c"/proc/self".as_ptr(), buf.as_mut_ptr().cast(), buf.len());
    let outside = if n > 0 { parse(&buf[..n as usize]) } else { 0 };
    let mut go = [0; 2];
    if sfd < 0 || outside < 3 || libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
        report(link, b"broken", *libc::__errno_location());
    }
    // Its children count on from there where `/proc/sys` can be written
    // (not in a container), else from 3.
    let mut last = Line::new();
    last.num(outside);
    write_file(c"/proc/sys/kernel/ns_last_pid", last.bytes());
    let program = fork_as(outside as libc::pid_t);
    if program == 0 {
        libc::close(go[1]);
        libc::close(sfd);
        witness_slot.store(witness, Ordering::Relaxed);
        let mut b = 0u8;
        if libc::read(go[0], (&mut b as *mut u8).cast(), 1) != 1 {
            libc::_exit(1);
        }
        libc::close(go[0]);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        return Ok(());
    }
    if program < 0 {
        report(link, b"broken", *libc::__errno_location());
    }
    // As the program's user, like a grader that is not root: then the
    // program and its processes can signal their parent (and the grader
    // learns of it), and the parent holds no power over anything else.
    if let Some((uid, gid)) = user {
        if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
            report(link, b"broken", *libc::__errno_location());
        }
    }
    libc::close(go[0]);
    libc::close(witness);
    let mut msg = Line::new();
    msg.word(b"started").num(program as i64).num(outside);
    msg.send(link);
    close_all_but(&mut [link, sfd, go[1]]);
    null_stdio();
    libc::write(go[1], b"g".as_ptr().cast(), 1);
    libc::close(go[1]);
    watch_signals(link, sfd)
}

/// Tell the grader why the program did not start — `failed`: its `exec`
/// failed; `broken`: the parent could not start it — and end.
unsafe fn report(link: RawFd, what: &[u8], errno: i32) -> ! {
    let mut msg = Line::new();
    msg.word(what).num(errno as i64);
    msg.send(link);
    libc::_exit(127)
}

/// The parent's loop: tell the grader at once of every signal a process of
/// the namespace sends it (the first of each kind, and who sent it:
/// `sig SIG PID`); on the grader's request (`f`), read what is queued and
/// answer `end`. Blocked in `ppoll` only with nothing left to tell (see
/// [`Namespace::idle`]).
unsafe fn watch_signals(link: RawFd, sfd: RawFd) -> ! {
    let mut told = [false; 65];
    loop {
        let mut fds = [
            libc::pollfd { fd: sfd, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: link, events: libc::POLLIN, revents: 0 },
        ];
        if libc::ppoll(fds.as_mut_ptr(), 2, std::ptr::null(), std::ptr::null()) < 0 {
            continue;
        }
        if fds[0].revents != 0 {
            tell_signals(link, sfd, &mut told);
        }
        if fds[1].revents & libc::POLLIN != 0 {
            let mut req = [0u8; 8];
            if libc::read(link, req.as_mut_ptr().cast(), req.len()) <= 0 {
                libc::_exit(0);
            }
            tell_signals(link, sfd, &mut told);
            let mut end = Line::new();
            end.word(b"end");
            end.send(link);
        } else if fds[1].revents != 0 {
            libc::_exit(0);
        }
    }
}

/// Read what is queued on the signalfd, and tell the grader of each kind
/// of signal the first time a process of the namespace sends it
/// (`si_code` ≤ 0; the grader's own, from outside, show pid 0) — of those
/// that would do something to a process at its default.
unsafe fn tell_signals(link: RawFd, sfd: RawFd, told: &mut [bool; 65]) {
    let mut infos: [libc::signalfd_siginfo; 8] = std::mem::zeroed();
    loop {
        let n = libc::read(sfd, infos.as_mut_ptr().cast(), std::mem::size_of_val(&infos));
        if n <= 0 {
            return;
        }
        let got = n as usize / std::mem::size_of::<libc::signalfd_siginfo>();
        for info in &infos[..got] {
            let sig = info.ssi_signo as usize;
            if sig == 0 || sig >= told.len() || told[sig] || info.ssi_code > 0 || info.ssi_pid == 0 {
                continue;
            }
            if signals::default_action(sig as i32) == Action::Ignore {
                continue;
            }
            told[sig] = true;
            let mut msg = Line::new();
            msg.word(b"sig").num(sig as i64).num(info.ssi_pid as i64);
            msg.send(link);
        }
    }
}

// ----- async-signal-safe helpers -----------------------------------------------

/// A message for the link, built without allocating: words and numbers
/// separated by spaces.
struct Line {
    buf: [u8; 96],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line { buf: [0; 96], len: 0 }
    }

    fn push(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn word(&mut self, w: &[u8]) -> &mut Line {
        if self.len > 0 {
            self.push(b' ');
        }
        w.iter().for_each(|&b| self.push(b));
        self
    }

    fn num(&mut self, n: i64) -> &mut Line {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = n.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if n < 0 {
            i -= 1;
            digits[i] = b'-';
        }
        self.word(&digits[i..])
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// One message on the (SOCK_SEQPACKET) link; nobody listening is no
    /// error worth a SIGPIPE.
    unsafe fn send(&self, link: RawFd) {
        let bytes = self.bytes();
        libc::send(link, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL);
    }
}

/// The decimal number at the start of `digits`.
fn parse(digits: &[u8]) -> i64 {
    digits.iter().take_while(|b| b.is_ascii_digit()).fold(0, |n, &b| n * 10 + i64::from(b - b'0'))
}

/// Write `data` to the file `path` in one `write`.
unsafe fn write_file(path: &CStr, data: &[u8]) -> bool {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return false;
    }
    let ok = libc::write(fd, data.as_ptr().cast(), data.len()) == data.len() as isize;
    libc::close(fd);
    ok
}

/// Close every descriptor from 3 up except `keep`: init and the parent
/// never exec, so close-on-exec does not close what they inherited from the
/// grader (other programs' pipes among it).
unsafe fn close_all_but(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut from: u32 = 3;
    for &k in keep.iter() {
        if k < from as RawFd {
            continue;
        }
        if k as u32 > from {
            close_range(from, k as u32 - 1);
        }
        from = k as u32 + 1;
    }
    close_range(from, u32::MAX);
}

unsafe fn close_range(first: u32, last: u32) {
    if libc::syscall(libc::SYS_close_range, first, last, 0) == 0 {
        return;
    }
    // Kernels before 5.9: one by one, up to the descriptor limit.
    let mut lim: libc::rlimit = std::mem::zeroed();
    let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 { lim.rlim_cur.min(1 << 16) as u32 } else { 4096 };
    for fd in first..=last.min(max) {
        libc::close(fd as RawFd);
    }
}

/// `/dev/null` as stdin, stdout and stderr: init and the parent must not
/// hold the program's pipes (the grader waits for EOF on them).
unsafe fn null_stdio() {
    let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    if fd >= 0 {
        for to in 0..3 {
            libc::dup2(fd, to);
        }
        if fd > 2 {
            libc::close(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::failure::Exit;
    use super::super::program::{Options, Program, SharedTranscript};
    use super::super::spawn::Spec;
    use super::*;

    /// `sh -c SCRIPT` as a program, if programs run in namespaces here.
    fn sh(script: &str, log: &SharedTranscript) -> Option<Program> {
        if !enabled() {
            eprintln!("skipped: {:?}", isolation().reason);
            return None;
        }
        let spec = Spec {
            path: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            limits: Default::default(),
            cpu: None,
            env: Vec::new(),
        };
        let opts = Options { output_cap: 1 << 20, forbid_leftovers: true, needs_account: false };
        Some(Program::start("sh", &spec, opts, log.clone()).expect("sh starts"))
    }

    #[test]
    fn a_program_sees_a_pid_of_the_machine_and_the_stand_in_as_its_parent() {
        let log = SharedTranscript::default();
        let Some(mut p) = sh("echo $$ $PPID; exec cat", &log) else { return };
        let line = p.line("pids", Duration::from_secs(10)).unwrap();
        let seen = p.seen_pid();
        assert_eq!(String::from_utf8(line).unwrap(), format!("{seen} 2"));
        assert_ne!(seen, p.pid(), "the pid it sees is not its own outside");
        assert!(procfs::alive(seen), "its pid is that of a live process outside: no other program has it");
        assert_eq!(p.find(seen), Some(p.pid()));
        assert_eq!(p.shown(p.pid()), seen);
        assert!(log.borrow().steps[0].ends_with(&format!("(pid {seen})")), "{:?}", log.borrow().steps);
    }

    #[test]
    fn every_signal_a_program_sends_its_parent_is_told_whenever_it_comes() {
        // Sent at once, the signals are told while the program is still
        // being started; sent later, while it runs. Either way, each once.
        for _ in 0..20 {
            let log = SharedTranscript::default();
            let Some(mut p) = sh("kill -TERM $PPID; kill -INT $PPID; kill -TERM $PPID", &log) else { return };
            p.wait_exit("exit", Duration::from_secs(10)).unwrap();
            let seen = p.seen_pid();
            drop(p);
            let mut told = log.borrow().incidents.clone();
            told.sort();
            assert_eq!(
                told,
                [
                    format!("sh (pid {seen}) sent SIGINT to the grader"),
                    format!("sh (pid {seen}) sent SIGTERM to the grader")
                ]
            );
        }
    }

    #[test]
    fn how_a_program_ended_is_read_although_it_is_not_the_grader_s_child() {
        let log = SharedTranscript::default();
        let Some(mut p) = sh("exit 3", &log) else { return };
        assert_eq!(p.wait_exit("exit", Duration::from_secs(10)).unwrap(), Exit::Code(3));
        let Some(mut p) = sh("kill -TERM $$", &log) else { return };
        assert_eq!(p.wait_exit("exit", Duration::from_secs(10)).unwrap(), Exit::Signal(libc::SIGTERM));
    }

    #[test]
    fn what_a_program_leaves_in_its_namespace_is_found_and_named_as_it_sees_it() {
        let log = SharedTranscript::default();
        let Some(mut p) = sh("sleep 30 >/dev/null 2>&1 & echo $!", &log) else { return };
        let child: i32 =
            String::from_utf8(p.line("the child's pid", Duration::from_secs(10)).unwrap()).unwrap().parse().unwrap();
        p.wait_exit("exit", Duration::from_secs(10)).unwrap();
        let host = p.find(Pid::from_raw(child)).expect("the child, in /proc");
        drop(p);
        let left = &log.borrow().leftovers;
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(left[0].contains(&format!("sleep (pid {child})")), "{left:?}");
        assert!(procfs::state(host).is_none(), "the child outlived its namespace");
    }

    #[test]
    fn lines_are_built_without_allocating_and_read_back() {
        let mut l = Line::new();
        l.word(b"sig").num(15).num(4242).num(-3);
        assert_eq!(l.bytes(), b"sig 15 4242 -3");
        assert_eq!(message(l.bytes()), (&b"sig"[..], vec![15, 4242, -3]));
        assert_eq!(parse(b"31337"), 31337);
        assert_eq!(parse(b"12x"), 12);
    }

    #[test]
    fn the_program_execs_what_the_command_names_under_the_given_name() {
        let mut cmd = Command::new("/bin/echo");
        cmd.arg("hi there").env_clear().env("A", "1");
        let e = Exec::of(&cmd, Path::new("/somewhere/echo"));
        assert_eq!(e.path.as_bytes(), b"/bin/echo");
        assert_eq!(e._args.iter().map(|a| a.to_str().unwrap()).collect::<Vec<_>>(), ["/somewhere/echo", "hi there"]);
        assert_eq!(e._env.iter().map(|a| a.to_str().unwrap()).collect::<Vec<_>>(), ["A=1"]);
        assert!(e.argv.last().unwrap().is_null() && e.envp.last().unwrap().is_null());
    }
}

//! Starting a student program in a clean, contained state.
//!
//! Whatever state the grader was started in must not leak into the program:
//! a grader started with `&` from a script ignores SIGINT, Rust ignores
//! SIGPIPE, a test harness may block signals, and this machine even hands
//! descriptors 10 and 251 to every process. So in the child, between `fork`
//! and `exec`, we reset every signal disposition and the mask, mark every
//! descriptor above 2 close-on-exec, start a new session, join the cgroup,
//! and set resource limits. Last, a program that must not run as the
//! grader's user ([`super::runas`]) gives up root: no supplementary groups,
//! its gid, its uid, and no way back up through a setuid executable.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::resource::{setrlimit, Resource};

use super::leash::{Leash, TOKEN_VAR};

/// Resource limits for one program. `None` leaves a limit as inherited.
#[derive(Debug, Clone)]
pub struct Limits {
    /// CPU seconds (SIGXCPU, then SIGKILL one second later).
    pub cpu_secs: u64,
    /// Address space in bytes.
    pub address_space: u64,
    /// Largest file the program may write, in bytes.
    pub file_size: u64,
    /// Open descriptors.
    pub open_files: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { cpu_secs: 20, address_space: 2 << 30, file_size: 64 << 20, open_files: 1024 }
    }
}

/// What to start and how.
#[derive(Debug, Clone)]
pub struct Spec {
    pub path: std::path::PathBuf,
    pub args: Vec<OsString>,
    pub limits: Limits,
    /// Pin the program (and so its children) to one CPU.
    pub cpu: Option<usize>,
    /// Variables set on top of the clean environment (`DBUS_SESSION_BUS_ADDRESS`).
    pub env: Vec<(OsString, OsString)>,
}

/// Code that runs in the forked child before anything else of `pre_exec`.
pub(crate) type First = Box<dyn FnMut() -> std::io::Result<()> + Send + Sync>;

/// Build the `Command` for `spec`, executing `exe` (the spec's path, or a
/// copy its user can reach) under the spec's name: stdin, stdout and stderr
/// are pipes the caller owns; everything else is reset in the child.
/// `first`, if given, runs in the child before that (see [`super::pidns`]:
/// it splits the child into a namespace's init, the program's parent, and
/// the program, which alone goes on to be prepared here).
pub(crate) fn command(spec: &Spec, exe: &Path, leash: &Leash, cwd: &Path, first: Option<First>) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg0(&spec.path)
        .args(&spec.args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()))
        .env("HOME", cwd)
        .env("LANG", "C.UTF-8")
        .env("RUST_BACKTRACE", "0")
        .env(TOKEN_VAR, &leash.token)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    // In a PID namespace the program's parent is the grader's stand-in,
    // and the namespace's init dies with the grader instead (see
    // `pidns::split`). The stand-in runs as the program's user: one more
    // process of its uid.
    let in_namespace = first.is_some();
    if let Some(first) = first {
        // SAFETY: as the `pre_exec` below; see `pidns::Plan::first`.
        unsafe { cmd.pre_exec(first) };
    }
    let join = leash.join_path.clone();
    let limits = spec.limits.clone();
    let cpu = spec.cpu;
    let user = leash.identity.as_ref().map(|who| (who.uid, who.gid, who.nproc() + u64::from(in_namespace)));
    let grader = std::process::id() as i32;
    // SAFETY: the closure runs in the forked child of a multi-threaded
    // process, before exec. It only makes async-signal-safe system calls
    // (open, write, close, setsid, sigaction, sigprocmask, setrlimit,
    // close_range/fcntl, sched_setaffinity, setgroups, setgid, setuid,
    // prctl, getppid) on data prepared before the fork; it allocates
    // nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            // Join the cgroup first, so that nothing the program does later
            // escapes it. "0" means the writing process itself.
            if let Some(path) = &join {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                }
            }
            // A session (and process group) of its own.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Every signal at its default disposition, none blocked.
            default_signals();
            // Only 0, 1, 2 survive exec.
            mark_cloexec_from(3);
            let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
            let _ = setrlimit(Resource::RLIMIT_CPU, limits.cpu_secs, limits.cpu_secs + 1);
            let _ = setrlimit(Resource::RLIMIT_AS, limits.address_space, limits.address_space);
            let _ = setrlimit(Resource::RLIMIT_FSIZE, limits.file_size, limits.file_size);
            let _ = setrlimit(Resource::RLIMIT_NOFILE, limits.open_files, limits.open_files);
            if let Some(cpu) = cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
            // Last: everything above may need root.
            if let Some((uid, gid, nproc)) = user {
                become_user(uid, gid, nproc)?;
            }
            // After the ids: a change of credentials clears it.
            if in_namespace {
                return Ok(());
            }
            die_with_parent(grader, libc::SIGKILL)
        });
    }
    cmd
}

/// Have the kernel send `sig` to the child when `parent` (the thread that
/// started it) dies. A grader killed by one of its programs then takes its
/// other programs with it, before any of them, orphaned, could take the
/// grader's own parent (a gradebook) for its grader. Async-signal-safe.
///
/// # Safety
/// Only call between fork and exec.
pub(crate) unsafe fn die_with_parent(parent: i32, sig: libc::c_int) -> std::io::Result<()> {
    if libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The parent may have died before the prctl. (0: the parent is outside
    // the child's PID namespace, and cannot be compared.)
    let now = libc::getppid();
    if now != 0 && now != parent {
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// Give up root for `uid`/`gid`, with at most `nproc` processes of that
/// uid (`RLIMIT_NPROC` counts all of them, on the whole machine). The order
/// matters: the groups and the gid can only be changed while still root,
/// so the uid goes last. `PR_SET_NO_NEW_PRIVS` then keeps a setuid
/// executable from making the program root again. Async-signal-safe.
///
/// # Safety
/// Only call between fork and exec.
unsafe fn become_user(uid: u32, gid: u32, nproc: u64) -> std::io::Result<()> {
    let _ = setrlimit(Resource::RLIMIT_NPROC, nproc, nproc);
    // Only the errno reaches the parent (std sends nothing else back), and
    // nothing may allocate here.
    if libc::setgroups(0, std::ptr::null()) != 0
        || libc::setgid(gid) != 0
        || libc::setuid(uid) != 0
        || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reset the signal mask and dispositions in the child of a helper command
/// (cargo): the grader blocks every signal in its threads (see
/// [`super::signals`]), and children would inherit that mask.
pub fn reset_signals(cmd: &mut Command) {
    // SAFETY: runs between fork and exec; only async-signal-safe calls.
    unsafe {
        cmd.pre_exec(|| {
            default_signals();
            Ok(())
        });
    }
}

/// Start the child of `cmd` in a session (and so a process group) of its
/// own, without a controlling terminal, and end it with SIGTERM if the
/// process starting it dies: a gradebook's grader, which then cleans up
/// after itself.
pub fn new_session(cmd: &mut Command) {
    let parent = std::process::id() as i32;
    // SAFETY: runs between fork and exec; setsid, prctl and getppid are
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            die_with_parent(parent, libc::SIGTERM)
        });
    }
}

/// Contain a helper process of the grader's own (the private
/// `dbus-daemon` of a `bus` check): every signal at its default and none
/// blocked, a session of its own (a Ctrl-C in the terminal is the grader's
/// to handle), no descriptor above 2 inherited — on this machine kind the
/// grader itself inherits some — and SIGKILL when the grader dies, like
/// the programs it serves.
pub fn contain_helper(cmd: &mut Command) {
    let grader = std::process::id() as i32;
    // SAFETY: runs between fork and exec; only async-signal-safe calls
    // (sigaction, sigprocmask, setsid, close_range/fcntl, prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            default_signals();
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            mark_cloexec_from(3);
            die_with_parent(grader, libc::SIGKILL)
        });
    }
}

/// Every signal to SIG_DFL, none blocked. Async-signal-safe.
///
/// # Safety
/// Only call between fork and exec (or `_exit`).
pub(crate) unsafe fn default_signals() {
    // Handlers are reset by exec anyway; SIG_IGN would be inherited. The raw
    // system call, because glibc refuses signals 32 and 33 (reserved for
    // its threads) — and a parent may well have left one of them ignored.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::syscall(libc::SYS_rt_sigaction, sig, &dfl as *const KernelSigaction, std::ptr::null_mut::<u8>(), 8);
        }
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
}

/// Set FD_CLOEXEC on every descriptor >= `first`. Async-signal-safe.
///
/// # Safety
/// Only call between fork and exec (or on descriptors you own).
unsafe fn mark_cloexec_from(first: u32) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let rc = libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC);
    if rc == 0 {
        return;
    }
    // Kernels before 5.11: walk the descriptor table up to the limit.
    let mut lim: libc::rlimit = std::mem::zeroed();
    let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 { lim.rlim_cur.min(1 << 16) as i32 } else { 4096 };
    for fd in first as i32..max {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

//! Reading a process's state from `/proc`.
//!
//! The grader judges programs from the outside. Where a program's state has no
//! event to wait for (which signals it catches, whether it is asleep, how much
//! CPU it burnt, which descriptors it holds) the kernel's view in `/proc` is
//! the observable truth. Every reader here tolerates the process vanishing
//! between two reads: it returns `None` or an empty list, never an error.

use std::fs;
use std::path::PathBuf;

use nix::unistd::Pid;

/// One thread's scheduling state, from `/proc/PID/task/TID/stat`.
#[derive(Debug, Clone)]
pub struct Task {
    pub tid: i32,
    /// `R` running, `S` interruptible sleep, `D` disk sleep, `T` stopped,
    /// `t` traced, `Z` zombie, `X` dead.
    pub state: char,
    /// Kernel function the thread sleeps in (`pipe_read`, `do_sys_poll`, …),
    /// empty while it runs.
    pub wchan: String,
}

/// The fields of `/proc/PID/status` the checks read.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Signals with a handler installed (`SigCgt`).
    pub sig_cgt: u64,
    /// Signals sent and not yet taken: to the process as a whole
    /// (`ShdPnd`), and to its main thread (`SigPnd`).
    pub shd_pnd: u64,
    pub sig_pnd: u64,
}

impl Status {
    /// Whether the bit for signal `sig` is set in a `/proc` signal mask.
    pub fn has(mask: u64, sig: i32) -> bool {
        sig >= 1 && mask & (1u64 << (sig - 1)) != 0
    }
}

fn stat_fields(text: &str) -> Option<Vec<&str>> {
    // The command name in parentheses may itself hold spaces and parens:
    // everything after the last ')' is space separated.
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// State character of the process (thread group leader), `None` when gone.
pub fn state(pid: Pid) -> Option<char> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&text)?.first()?.chars().next()
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: Pid) -> bool {
    !matches!(state(pid), None | Some('Z') | Some('X'))
}

/// CPU time (user + system) of the whole process in clock ticks (1/100 s),
/// summed over all its threads, living and exited.
pub fn cpu_ticks(pid: Pid) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f = stat_fields(&text)?;
    // Fields 14 and 15 of stat(5) are utime and stime; `f` starts at field 3.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Parent of `pid`.
pub fn ppid(pid: Pid) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&text)?.get(1)?.parse().ok()
}

/// The wait status (as `waitpid` reports it) of `pid`, an exited process
/// not yet reaped (`exit_code`, field 52 of `/proc/PID/stat`): how a
/// program that is not the grader's own child ended (see
/// [`super::pidns`]). `None` when it is gone or still runs.
pub fn exit_status(pid: Pid) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f = stat_fields(&text)?;
    if !matches!(f.first()?.chars().next()?, 'Z' | 'X') {
        return None;
    }
    f.get(49)?.parse().ok()
}

/// `pid` as the process itself sees it (`getpid()` in it): the last field
/// of `NSpid` in `/proc/PID/status`, which differs from `pid` when it runs
/// in a PID namespace of its own. `None` when it is gone.
pub fn ns_pid(pid: Pid) -> Option<Pid> {
    ns_id(&format!("/proc/{pid}/status"))
}

/// Thread `tid` of `pid` as the thread itself sees it (`gettid()`).
fn ns_tid(pid: Pid, tid: i32) -> Option<i32> {
    ns_id(&format!("/proc/{pid}/task/{tid}/status")).map(Pid::as_raw)
}

fn ns_id(status_path: &str) -> Option<Pid> {
    let text = fs::read_to_string(status_path).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok().map(Pid::from_raw)
}

/// The system call `pid` is blocked in (`/proc/PID/syscall`); `None`
/// while it runs, or when unknown.
pub fn syscall(pid: Pid) -> Option<i64> {
    let text = fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Process group of `pid`.
pub fn pgid(pid: Pid) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&text)?.get(2)?.parse().ok()
}

/// Parent, process group and session of `pid` (zombies too).
pub fn lineage(pid: Pid) -> Option<(i32, i32, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f = stat_fields(&text)?;
    Some((f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

pub fn status(pid: Pid) -> Option<Status> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut s = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let mask = || u64::from_str_radix(value.trim(), 16).unwrap_or(0);
        match key {
            "SigCgt" => s.sig_cgt = mask(),
            "ShdPnd" => s.shd_pnd = mask(),
            "SigPnd" => s.sig_pnd = mask(),
            _ => {}
        }
    }
    Some(s)
}

/// The value of `key` in `/proc/PID/task/TID/status` of every thread of
/// `pid`; empty when it is gone.
fn task_status_values(pid: Pid, key: &str) -> Vec<String> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    dir.flatten()
        .filter_map(|task| {
            let text = fs::read_to_string(task.path().join("status")).ok()?;
            let value = text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?;
            Some(value.trim().to_string())
        })
        .collect()
}

/// Times the threads of `pid` gave up the CPU to wait (each wake-up of a
/// polling loop counts one), summed over its living threads: the counter in
/// `/proc/PID/status` is the main thread's alone.
pub fn voluntary_switches(pid: Pid) -> Option<u64> {
    let values = task_status_values(pid, "voluntary_ctxt_switches");
    (!values.is_empty()).then(|| values.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
}

/// Signals that no thread of `pid` lets through to a handler or a default
/// action: blocked in every thread — those are taken, if at all, with
/// `sigwait` or a `signalfd`. A thread asleep in `sigwait`/`sigwaitinfo`/
/// `sigtimedwait` counts as blocking all: while it waits, the kernel shows
/// the signals it waits for as unblocked (`SigBlk`), and takes them for it.
pub fn blocked_in_every_thread(pid: Pid) -> Option<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { return None };
    let masks: Vec<u64> = dir
        .flatten()
        .filter_map(|task| {
            let wchan = fs::read_to_string(task.path().join("wchan")).unwrap_or_default();
            if wchan.contains("sigtimedwait") {
                return Some(u64::MAX);
            }
            let text = fs::read_to_string(task.path().join("status")).ok()?;
            let value = text.lines().find_map(|l| l.strip_prefix("SigBlk:"))?;
            u64::from_str_radix(value.trim(), 16).ok()
        })
        .collect();
    (!masks.is_empty()).then(|| masks.iter().fold(u64::MAX, |a, b| a & b))
}

/// The real uid of `pid` (the first field of `Uid:` in `/proc/PID/status`):
/// the user it runs as, which it cannot change without privileges. Read
/// for every process on the machine when a program's uid is swept, so
/// only the head of the file, in one read.
pub fn real_uid(pid: Pid) -> Option<u32> {
    use std::io::Read;
    let mut head = [0u8; 1024];
    let n = fs::File::open(format!("/proc/{pid}/status")).ok()?.read(&mut head).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// Every thread of `pid` with its state and wait channel.
pub fn tasks(pid: Pid) -> Vec<Task> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut tasks: Vec<Task> = dir
        .flatten()
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(e.path().join("stat")).ok()?;
            let state = stat_fields(&stat)?.first()?.chars().next()?;
            let wchan = fs::read_to_string(e.path().join("wchan")).unwrap_or_default();
            let wchan = if wchan == "0" { String::new() } else { wchan };
            Some(Task { tid, state, wchan })
        })
        .collect();
    tasks.sort_by_key(|t| t.tid);
    tasks
}

/// Direct children of `pid` (over all its threads).
pub fn children(pid: Pid) -> Vec<Pid> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut kids = Vec::new();
    for task in dir.flatten() {
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            kids.extend(text.split_whitespace().filter_map(|s| s.parse().ok()).map(Pid::from_raw));
        }
    }
    kids
}

/// `pid` and all its descendants, parents before children.
pub fn tree(pid: Pid) -> Vec<Pid> {
    let mut out = vec![pid];
    let mut i = 0;
    // Bounded: a fork storm is capped by the containment, and a cycle cannot
    // occur in a process tree; the bound only guards against a runaway read.
    while i < out.len() && out.len() < 100_000 {
        let kids = children(out[i]);
        out.extend(kids);
        i += 1;
    }
    out
}

/// Short command name (`comm`).
pub fn comm(pid: Pid) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim_end().to_string()).unwrap_or_else(|_| "?".into())
}

/// The executable `pid` runs (`/proc/PID/exe`); `None` once it is a zombie
/// or gone. A file replaced or removed since shows with ` (deleted)`.
pub fn exe(pid: Pid) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Whether the environment of `pid` contains exactly the entry `entry`
/// (`KEY=VALUE`). Zombies have no environment any more.
pub fn environ_has(pid: Pid, entry: &str) -> bool {
    match fs::read(format!("/proc/{pid}/environ")) {
        Ok(env) => env.split(|&b| b == 0).any(|e| e == entry.as_bytes()),
        Err(_) => false,
    }
}

/// Does an entry of `pid`'s environment start with `prefix`?
pub fn environ_starts(pid: Pid, prefix: &str) -> bool {
    match fs::read(format!("/proc/{pid}/environ")) {
        Ok(env) => env.split(|&b| b == 0).any(|e| e.starts_with(prefix.as_bytes())),
        Err(_) => false,
    }
}

/// Every process id on the machine.
pub fn all_pids() -> Vec<Pid> {
    let Ok(rd) = fs::read_dir("/proc") else { return Vec::new() };
    rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).map(Pid::from_raw).collect()
}

/// Open descriptors of `pid` with what they point to (`pipe:[123]`, `/dev/null`).
pub fn fds(pid: Pid) -> Vec<(i32, String)> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    let mut out: Vec<(i32, String)> = dir
        .flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?.to_string_lossy().into_owned();
            Some((fd, target))
        })
        .collect();
    out.sort();
    out
}

/// Where every thread of every process in `pids` sits, for time-out
/// messages ("sigecho (pid 42) was blocked in pipe_read"), with the pids
/// the processes see themselves (see [`ns_pid`]). The first few
/// are named one by one, the rest counted by state, so a fork storm gives
/// one readable line.
pub fn describe(pids: &[Pid]) -> String {
    const NAMED: usize = 4;
    let mut parts = Vec::new();
    let mut rest: std::collections::BTreeMap<String, usize> = Default::default();
    let mut count = 0;
    for &pid in pids {
        let tasks = tasks(pid);
        let name = comm(pid);
        let many = tasks.len() > 1;
        // The pids the program itself sees (its PID namespace's).
        let seen = ns_pid(pid).unwrap_or(pid);
        for t in tasks {
            let words = state_words(t.state, &t.wchan);
            count += 1;
            if count <= NAMED {
                let who = if many {
                    format!("{name} (pid {seen}, thread {})", ns_tid(pid, t.tid).unwrap_or(t.tid))
                } else {
                    format!("{name} (pid {seen})")
                };
                parts.push(format!("{who} {words}"));
            } else {
                *rest.entry(words).or_default() += 1;
            }
        }
    }
    if !rest.is_empty() {
        let counted: Vec<String> = rest.iter().map(|(w, n)| format!("{n} {}", w.trim_start_matches("was "))).collect();
        parts.push(format!("and {} more: {}", count - NAMED, counted.join(", ")));
    }
    parts.join("; ")
}

fn state_words(state: char, wchan: &str) -> String {
    match state {
        'R' => "was running (busy on the CPU)".into(),
        'S' | 'D' if !wchan.is_empty() => format!("was blocked in {wchan}"),
        'S' | 'D' => "was asleep".into(),
        'T' | 't' => "was stopped (SIGSTOP/SIGTSTP)".into(),
        'Z' => "had exited but was not yet reaped (zombie)".into(),
        other => format!("was in state {other}"),
    }
}

// ----- for diagnoses: signal masks, pipes and who holds them ---------------

/// The signal masks of a process, from `/proc/PID/status` (bit N-1 for
/// signal N).
#[derive(Debug, Clone, Copy, Default)]
pub struct SignalMasks {
    /// Sent and not yet delivered, to the thread or the process
    /// (`SigPnd | ShdPnd`).
    pub pending: u64,
    /// Blocked by the main thread (`SigBlk`).
    pub blocked: u64,
    /// Ignored (`SigIgn`).
    pub ignored: u64,
    /// With a handler (`SigCgt`).
    pub caught: u64,
}

pub fn signal_masks(pid: Pid) -> Option<SignalMasks> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut m = SignalMasks::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = u64::from_str_radix(value.trim(), 16).unwrap_or(0);
        match key {
            "SigPnd" | "ShdPnd" => m.pending |= value,
            "SigBlk" => m.blocked = value,
            "SigIgn" => m.ignored = value,
            "SigCgt" => m.caught = value,
            _ => {}
        }
    }
    Some(m)
}

/// What descriptor `fd` of `pid` points to (`pipe:[123]`, `/dev/null`).
pub fn fd_target(pid: Pid, fd: i32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok().map(|t| t.to_string_lossy().into_owned())
}

/// The inode of a pipe, from a descriptor's target `pipe:[123]`: two
/// descriptors on one pipe show the same.
pub fn pipe_inode(target: &str) -> Option<u64> {
    target.strip_prefix("pipe:[")?.strip_suffix(']')?.parse().ok()
}

/// The two ends of a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeEnd {
    Read,
    Write,
}

impl PipeEnd {
    pub fn other(self) -> PipeEnd {
        match self {
            PipeEnd::Read => PipeEnd::Write,
            PipeEnd::Write => PipeEnd::Read,
        }
    }

    /// "read" or "write".
    pub fn word(self) -> &'static str {
        match self {
            PipeEnd::Read => "read",
            PipeEnd::Write => "write",
        }
    }
}

/// The end of a pipe descriptor `fd` of `pid` is: its access mode, from the
/// octal `flags` of `/proc/PID/fdinfo/FD` (`O_WRONLY` is 1).
pub fn pipe_end(pid: Pid, fd: i32) -> Option<PipeEnd> {
    let text = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let flags = text.lines().find_map(|l| l.strip_prefix("flags:"))?;
    let flags = u32::from_str_radix(flags.trim(), 8).ok()?;
    Some(if flags & libc::O_ACCMODE as u32 == libc::O_WRONLY as u32 { PipeEnd::Write } else { PipeEnd::Read })
}

/// Every descriptor that the processes `pids` hold on pipe `inode`: the
/// process, the descriptor and the end.
pub fn pipe_holders(pids: &[Pid], inode: u64) -> Vec<(Pid, i32, PipeEnd)> {
    let mut out = Vec::new();
    for &pid in pids {
        for (fd, target) in fds(pid) {
            if pipe_inode(&target) == Some(inode) {
                if let Some(end) = pipe_end(pid, fd) {
                    out.push((pid, fd, end));
                }
            }
        }
    }
    out
}

/// The end of a pipe `pid` waits on, and its descriptor, while it sleeps in
/// the kernel's pipe read or write (`pipe_read`, `anon_pipe_read`, and
/// `pipe_wait_readable` for `splice`, which std's `io::copy` uses). The
/// descriptor is the argument of the system call it sleeps in
/// (`/proc/PID/syscall`); when that cannot be read, its stdin or stdout.
pub fn pipe_wait(pid: Pid) -> Option<(PipeEnd, i32)> {
    let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).ok()?;
    let end = if wchan.ends_with("pipe_read") || wchan == "pipe_wait_readable" {
        PipeEnd::Read
    } else if wchan.ends_with("pipe_write") || wchan == "pipe_wait_writable" {
        PipeEnd::Write
    } else {
        return None;
    };
    let syscall = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let fields: Vec<&str> = syscall.split_whitespace().collect();
    let arg = |i: usize| -> Option<i32> {
        let hex = fields.get(i)?.strip_prefix("0x")?;
        i32::try_from(i64::from_str_radix(hex, 16).ok()?).ok()
    };
    let fd = match fields.first().and_then(|n| n.parse::<i64>().ok()) {
        // splice(fd_in, off_in, fd_out, …)
        Some(libc::SYS_splice) if end == PipeEnd::Write => arg(3),
        Some(nr)
            if [libc::SYS_read, libc::SYS_readv, libc::SYS_write, libc::SYS_writev, libc::SYS_splice].contains(&nr) =>
        {
            arg(1)
        }
        _ => None,
    };
    Some((end, fd.unwrap_or(if end == PipeEnd::Read { 0 } else { 1 })))
}

/// Whether `pid` sleeps waiting for a child to change state (`waitpid`).
pub fn waits_for_children(pid: Pid) -> bool {
    fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w == "do_wait" || w.ends_with("_wait4"))
}

/// Whether thread `tid` sleeps in a system call that ends by itself: a
/// `nanosleep`, or a wait for events or a futex with a time-out
/// (`/proc/TID/syscall`: the call's number and arguments). `false` while
/// it runs, in a wait without a time-out, or when the file cannot be read.
pub fn waits_with_timeout(tid: Pid) -> bool {
    fs::read_to_string(format!("/proc/{tid}/syscall")).is_ok_and(|line| ends_by_itself(&line))
}

/// `NR ARG1 … ARG6 SP PC` (hex arguments): a call that returns by itself
/// after a time.
fn ends_by_itself(line: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let Some(nr) = fields.first().and_then(|n| n.parse::<i64>().ok()) else { return false };
    let arg = |i: usize| fields.get(i).and_then(|a| u64::from_str_radix(a.strip_prefix("0x")?, 16).ok());
    // A time-out in milliseconds: -1 (in any width) waits for ever.
    let millis = |i: usize| arg(i).is_some_and(|v| (v as i32) >= 0);
    // A pointer to a time-out: none (NULL) waits for ever.
    let pointer = |i: usize| arg(i).is_some_and(|v| v != 0);
    match nr {
        libc::SYS_nanosleep | libc::SYS_clock_nanosleep => true,
        libc::SYS_ppoll | libc::SYS_rt_sigtimedwait => pointer(3),
        libc::SYS_pselect6 => pointer(5),
        libc::SYS_epoll_pwait => millis(4),
        libc::SYS_epoll_pwait2 | libc::SYS_futex => pointer(4),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_poll => millis(3),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_select => pointer(5),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_epoll_wait => millis(4),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_with_a_time_out_end_by_themselves() {
        let call = |nr: i64, args: &str| format!("{nr} {args} 0x7ffc00000000 0x7f0000000000");
        assert!(ends_by_itself(&call(libc::SYS_clock_nanosleep, "0x0 0x0 0x7fff2e13bc00 0x7fff2e13bc40 0x0 0x0")));
        assert!(ends_by_itself(&call(libc::SYS_epoll_pwait, "0x3 0x7ffc 0x10 0x1f4 0x0 0x8")));
        assert!(!ends_by_itself(&call(libc::SYS_epoll_pwait, "0x3 0x7ffc 0x10 0xffffffff 0x0 0x8")));
        assert!(!ends_by_itself(&call(libc::SYS_epoll_pwait, "0x3 0x7ffc 0x10 0xffffffffffffffff 0x0 0x8")));
        assert!(ends_by_itself(&call(libc::SYS_ppoll, "0x7ffc 0x2 0x7ffd 0x0 0x8 0x0")));
        assert!(!ends_by_itself(&call(libc::SYS_ppoll, "0x7ffc 0x2 0x0 0x0 0x8 0x0")));
        assert!(!ends_by_itself(&call(libc::SYS_read, "0x0 0x7ffc 0x1000 0x0 0x0 0x0")));
        assert!(!ends_by_itself(&call(libc::SYS_futex, "0x7f00 0x80 0x2 0x0 0x0 0x0")));
        assert!(!ends_by_itself("running"), "a thread that runs shows no call");
        #[cfg(target_arch = "x86_64")]
        {
            assert!(ends_by_itself(&call(libc::SYS_poll, "0x7ffc 0x2 0x3e8 0x0 0x0 0x0")));
            assert!(!ends_by_itself(&call(libc::SYS_poll, "0x7ffc 0x2 0xffffffff 0x0 0x0 0x0")));
        }
    }
}

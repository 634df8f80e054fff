//! What several test plans share, defined once: how idleness is measured
//! and judged, lower and upper time bounds, a child that must be reaped, a
//! state sampled from `/proc` until it settles, the diagnostic line on
//! stderr, a server's `listening on` line, where a program sat when a wait
//! on it timed out, who holds the pipe a process waits on forever, and
//! deterministic test data.
//!
//! Everything here stands on the harness's public API; the exercise files
//! keep the stimulus, the expectation and the words.

use std::net::SocketAddr;
use std::time::Duration;

use nix::unistd::Pid;

use crate::check::Ctx;
use crate::harness::net::listening_addr;
use crate::harness::procfs::PipeEnd;
use crate::harness::{procfs, reaper, show, Failure, Kind, Program, Step};

// ----- idleness ----------------------------------------------------------

/// CPU ticks (1/100 s, `/proc/PID/stat`) a process may be charged over a
/// window in which it should sleep. The kernel charges a whole tick to
/// whatever runs when the timer interrupt fires, so a process that wakes
/// for a moment can be charged one without spinning; three leave room for
/// that and still catch a loop that never blocks even when it gets only a
/// slice of a loaded machine (it is charged dozens in the shortest window
/// measured, 300 ms). An allowance for noise, not a rate: the same for
/// every window.
pub const IDLE_TICKS_MAX: u64 = 3;

/// Voluntary context switches per second a process may make while it
/// should sleep. Blocked in `read`, `poll` or `sigwait` with nothing
/// arriving, it makes none; polling with a short sleep makes hundreds
/// (`usleep(1000)` a thousand). A rate, because the windows differ: 25 in
/// 0.5 s, 15 in 0.3 s.
pub const IDLE_WAKEUPS_PER_SEC: u64 = 50;

/// What a process did over a window in which it had nothing to do.
pub struct Usage {
    who: String,
    during: String,
    span: Duration,
    ticks: u64,
    wakeups: u64,
}

/// CPU ticks and voluntary context switches (over all threads) of `pid`.
fn usage_sample(pid: Pid) -> Option<(u64, u64)> {
    procfs::cpu_ticks(pid).zip(procfs::voluntary_switches(pid))
}

fn log_measured(p: &Program, what: &str, span: Duration, during: &str) {
    p.log(format!(
        "measured {what} over {} ms {during}: CPU time from /proc/PID/stat, voluntary context switches of every \
         thread from /proc/PID/task/*/status",
        span.as_millis()
    ));
}

/// Measure process `pid` of `p` (the program itself or one of its
/// processes, as the grader's `/proc` shows it; called `who` in messages)
/// over `span` in which nothing
/// happens (`during` says what, e.g. "without input"): the CPU time it was
/// charged and how often its threads went to sleep again. The program's
/// pipes are served meanwhile; it must keep running and `pid` must exist
/// throughout.
pub fn measure_idle(p: &mut Program, pid: Pid, who: &str, span: Duration, during: &str) -> Step<Usage> {
    let seen = p.shown(pid);
    let gone = |when: &str| Failure::wrong(format!("{who} (pid {seen}) gone {when}"), format!("{who} alive {during}"));
    let (ticks0, switches0) = usage_sample(pid).ok_or_else(|| gone("before the measurement"))?;
    let what = format!("{} to keep running {during}", p.name);
    p.observe(span, &what)?;
    let (ticks1, switches1) = usage_sample(pid).ok_or_else(|| gone("during the measurement"))?;
    log_measured(p, &format!("{who} (pid {seen})"), span, during);
    Ok(Usage {
        who: who.to_string(),
        during: during.to_string(),
        span,
        ticks: ticks1.saturating_sub(ticks0),
        wakeups: switches1.saturating_sub(switches0),
    })
}

/// Measure every process of `p` — the program and all its descendants as
/// they are when the window opens — like [`measure_idle`]: what the
/// program's processes do, whichever of them it names in its output.
/// `name` says who a pid is, for messages. A process that exits during the
/// window is left out.
pub fn measure_idle_tree(
    p: &mut Program,
    name: impl Fn(Pid) -> String,
    span: Duration,
    during: &str,
) -> Step<Vec<Usage>> {
    let before: Vec<(Pid, (u64, u64))> =
        p.tree().into_iter().filter_map(|pid| Some((pid, usage_sample(pid)?))).collect();
    let what = format!("{} to keep running {during}", p.name);
    p.observe(span, &what)?;
    let pids: Vec<String> = before.iter().map(|&(pid, _)| p.shown(pid).to_string()).collect();
    log_measured(p, &format!("every process of {} (pids {})", p.name, pids.join(", ")), span, during);
    Ok(before
        .into_iter()
        .filter_map(|(pid, (ticks0, switches0))| {
            let (ticks1, switches1) = usage_sample(pid)?;
            Some(Usage {
                who: name(pid),
                during: during.to_string(),
                span,
                ticks: ticks1.saturating_sub(ticks0),
                wakeups: switches1.saturating_sub(switches0),
            })
        })
        .collect())
}

/// [`Usage::expect_no_cpu`] for the process of `usages` charged the most.
pub fn expect_none_spins(usages: &[Usage], why: &str) -> Step {
    usages.iter().max_by_key(|u| u.ticks).map_or(Ok(()), |u| u.expect_no_cpu(why))
}

/// [`Usage::expect_no_polling`] for the process of `usages` that woke up
/// most often (one window, so the counts compare).
pub fn expect_none_polls(usages: &[Usage], why: &str) -> Step {
    usages.iter().max_by_key(|u| u.wakeups).map_or(Ok(()), |u| u.expect_no_polling(why))
}

impl Usage {
    /// Fail if it was charged more than [`IDLE_TICKS_MAX`]: it spins.
    /// `why` says why none is expected.
    pub fn expect_no_cpu(&self, why: &str) -> Step {
        if self.ticks <= IDLE_TICKS_MAX {
            return Ok(());
        }
        Err(Failure::wrong(
            format!("{} used {} ms of CPU in {} ms {}", self.who, self.ticks * 10, self.span.as_millis(), self.during),
            format!("about 0 ms: {why}"),
        )
        .diagnosed(
            "it is spinning: a loop that never blocks",
            "block in the call that waits (`read`, `poll`, `waitpid`, …) instead of trying again",
        ))
    }

    /// Fail if it woke up more often than [`IDLE_WAKEUPS_PER_SEC`]: it
    /// polls. `why` says why it should sleep.
    pub fn expect_no_polling(&self, why: &str) -> Step {
        let allowed = IDLE_WAKEUPS_PER_SEC * self.span.as_millis() as u64 / 1000;
        if self.wakeups <= allowed {
            return Ok(());
        }
        Err(Failure::wrong(
            format!(
                "{} woke up {} times in {} ms {} (voluntary context switches)",
                self.who,
                self.wakeups,
                self.span.as_millis(),
                self.during
            ),
            format!("at most {allowed}: {why}"),
        )
        .diagnosed(
            "it is polling: sleeping briefly and looking again is busy waiting in slow motion",
            "block in the call that waits for the event itself (`read`, `poll`, `waitpid`, …), without a timeout",
        ))
    }
}

// ----- time bounds -------------------------------------------------------

/// How long to wait for something due `earliest` after a reference point,
/// `elapsed` after it: until `earliest` plus `slack` seconds, the slack
/// scaled by `--time-scale`. An upper bound only ends the wait for a broken
/// program, so it grows on a slow machine; the lower bound is
/// [`not_before`], which never does.
pub fn time_left(cx: &Ctx, elapsed: Duration, earliest: Duration, slack: f64) -> Duration {
    (earliest + cx.secs(slack)).saturating_sub(elapsed)
}

/// A lower bound: `what` came `at` after `since` (measured from before the
/// stimulus), and that must not be before `earliest`. Strict and never
/// scaled: load only ever makes a program later, so early is wrong on
/// every machine.
pub fn not_before(what: &str, at: Duration, earliest: Duration, since: &str) -> Step {
    if at >= earliest {
        return Ok(());
    }
    Err(Failure::wrong(
        format!("{what} came {} ms after {since}", at.as_millis()),
        format!("not before {} ms after {since}", earliest.as_millis()),
    ))
}

// ----- children ----------------------------------------------------------

/// A child of the program that must be reaped by it. The grader is a
/// subreaper (or, in a PID namespace, the program's stand-in parent is,
/// and never reaps): a child whose parent exits without `waitpid` comes to
/// it, running or a zombie. While this lives the grader leaves that child
/// alone, so it stays visible in `/proc` for [`Self::expect_reaped`].
pub struct WatchedChild {
    pid: Pid,
    _hold: reaper::Hold,
}

impl WatchedChild {
    pub fn new(pid: Pid) -> WatchedChild {
        WatchedChild { pid, _hold: reaper::Hold::new(pid) }
    }

    /// After the program exited: fail with `got` and `expected` unless the
    /// child is gone, i.e. its parent reaped it.
    pub fn expect_reaped(&self, got: impl Into<String>, expected: &str) -> Step {
        match procfs::state(self.pid) {
            None => Ok(()),
            Some(_) => Err(Failure::wrong(got, expected)),
        }
    }
}

/// Children of `pid` that still run (not zombies).
pub fn live_children(pid: Pid) -> Vec<Pid> {
    procfs::children(pid).into_iter().filter(|&c| !matches!(procfs::state(c), None | Some('Z'))).collect()
}

/// Children of `pid` that exited and wait to be reaped.
pub fn zombie_children(pid: Pid) -> usize {
    procfs::children(pid).into_iter().filter(|&c| procfs::state(c) == Some('Z')).count()
}

// ----- states without an event ---------------------------------------------

/// Descriptors the program holds now.
pub fn descriptors(p: &Program) -> usize {
    procfs::fds(p.pid()).len()
}

/// Wait until `settled` yields a value, sampled from `/proc` (a state
/// without an event of its own: descriptors back at a baseline, a zombie
/// reaped). `Ok(None)` when it did not within `timeout`: the caller says
/// what it saw instead. Other failures (the program exited, flooded its
/// output) pass through.
pub fn settle<T>(
    p: &mut Program,
    what: &str,
    timeout: Duration,
    settled: impl FnMut(&mut Program) -> Option<T>,
) -> Step<Option<T>> {
    match p.wait_for(what, timeout, true, settled) {
        Ok(v) => Ok(Some(v)),
        Err(f) if f.kind == Kind::TimedOut => Ok(None),
        Err(f) => Err(f),
    }
}

// ----- stderr --------------------------------------------------------------

/// Stderr is one diagnostic line: `prefix` (the binary's name, as the
/// contract states it), then a reason that contains `containing` (any
/// reason when that is empty).
pub fn expect_diagnostic(p: &Program, prefix: &str, containing: &str) -> Step {
    let err = String::from_utf8_lossy(p.stderr());
    let ok = match err.lines().collect::<Vec<_>>().as_slice() {
        [line] => line.strip_prefix(prefix).is_some_and(|r| !r.trim().is_empty() && r.contains(containing)),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let want = if containing.is_empty() {
        format!("one line `{prefix}REASON`")
    } else {
        format!("one line `{prefix}…{containing}…`")
    };
    Err(Failure::wrong(format!("stderr {}", show(p.stderr())), want))
}

/// Stderr is not empty (`expected` says what it should hold).
pub fn expect_some_stderr(p: &Program, expected: &str) -> Step {
    if p.stderr().is_empty() {
        return Err(Failure::wrong("nothing on stderr", expected));
    }
    Ok(())
}

// ----- servers -------------------------------------------------------------

/// Start the server `bin` with `args` and read its first line, `listening
/// on ADDR:PORT`: the address to connect to. Servers bind port 0, so the
/// line must show the port the kernel chose (`getsockname`), not 0.
pub fn start_server(cx: &Ctx, bin: &str, args: &[&str]) -> Step<(Program, SocketAddr)> {
    let mut p = cx.start(bin, args)?;
    let line = p.line("`listening on ADDR:PORT`", cx.secs(5.0))?;
    let addr = listening_addr(&line)?;
    if addr.port() == 0 {
        return Err(Failure::wrong("port 0 in the `listening on` line", "the port the kernel chose (getsockname)"));
    }
    Ok((p, addr))
}

/// For `map_err` on a wait that hangs on the program without being a wait
/// on it (a connection, a listener): a time-out says where every process
/// of the program sat, or that it had exited.
pub fn with_whereabouts(p: &Program) -> impl FnOnce(Failure) -> Failure + '_ {
    move |mut f| {
        if f.kind == Kind::TimedOut {
            let w = p.whereabouts();
            f.got.push_str(&if w.is_empty() { format!("; {} had exited", p.name) } else { format!("; {w}") });
        }
        f
    }
}

// ----- pipes held open --------------------------------------------------------

/// A pipe end kept open where EOF (or EPIPE) was due: why a process of the
/// program waits on a pipe forever.
#[derive(Debug, Clone)]
pub struct HeldPipe {
    /// The process blocked on the pipe.
    pub blocked: Pid,
    /// The process that keeps the other end open: the write end when
    /// `blocked` reads, the read end when it writes.
    pub holder: Pid,
    /// What that means, one sentence for a diagnosis ("pipeline (pid 42)
    /// still holds the write end of the pipe into `cat` (stage 2) as fd 5,
    /// so `cat` never sees EOF").
    pub what_it_means: String,
}

/// Once the input has ended, EOF should reach every process of `p`, and a
/// reader that is gone should end every writer. For a wait that timed out
/// then: the first process of `p` found blocked reading (writing) a pipe
/// whose write (read) end a process of `p` keeps open and will not use —
/// the blocked process itself, a process waiting for its children
/// (`waitpid`), or one that holds it besides its stdin and stdout (an
/// end it inherited and never closed) — read from `/proc/PID/fd` and
/// `fdinfo`. `name` names a process as `SHORT (DETAIL)` ("`cat` (stage
/// 2)", "pipeline (pid 42)"); the sentence uses the short part where it
/// names it again.
pub fn who_holds_pipe(p: &Program, name: impl Fn(Pid) -> String) -> Option<HeldPipe> {
    let pids = p.tree();
    let mut held = Vec::new();
    for &blocked in &pids {
        let Some((waits_on, fd)) = procfs::pipe_wait(blocked) else { continue };
        let Some(inode) = procfs::fd_target(blocked, fd).as_deref().and_then(procfs::pipe_inode) else { continue };
        let end = waits_on.other();
        // Where a pipeline stage holds the end it uses: the writer's stdout,
        // the reader's stdin.
        let its_place = if end == PipeEnd::Write { 1 } else { 0 };
        held.extend(
            procfs::pipe_holders(&pids, inode)
                .into_iter()
                .filter(|&(holder, hfd, e)| {
                    e == end && (holder == blocked || hfd != its_place || procfs::waits_for_children(holder))
                })
                .map(|(holder, hfd, _)| (blocked, holder, hfd, end)),
        );
    }
    let &(blocked, holder, fd, end) = held.first()?;
    let short = |pid| {
        let n: String = name(pid);
        n.split_once(" (").map_or(n.clone(), |(s, _)| s.to_string())
    };
    let (who, it) = (name(blocked), short(blocked));
    let mut what_it_means = match (holder == blocked, end) {
        (true, PipeEnd::Write) => format!(
            "{who} holds the write end of the pipe it reads itself, as fd {fd}, so its `read` never returns 0 (EOF)"
        ),
        (true, PipeEnd::Read) => format!(
            "{who} holds the read end of the pipe it writes into itself, as fd {fd}, so its `write` waits for a \
             reader instead of failing (SIGPIPE, EPIPE)"
        ),
        (false, PipeEnd::Write) => {
            format!(
                "{} still holds the write end of the pipe into {who} as fd {fd}, so {it} never sees EOF",
                name(holder)
            )
        }
        (false, PipeEnd::Read) => format!(
            "{} still holds the read end of the pipe out of {who} as fd {fd}, so {it} waits for a reader instead \
             of getting SIGPIPE (EPIPE)",
            name(holder)
        ),
    };
    let more = held.iter().filter(|h| h.0 != blocked).map(|h| h.0).collect::<std::collections::BTreeSet<_>>().len();
    match more {
        0 => {}
        1 => what_it_means.push_str("; one more process waits on a pipe held open alike"),
        n => what_it_means.push_str(&format!("; {n} more processes wait on pipes held open alike")),
    }
    Some(HeldPipe { blocked, holder, what_it_means })
}

// ----- test data -----------------------------------------------------------

/// `len` bytes of deterministic test data, a different stream for each
/// `seed`. A xorshift sequence does not repeat within 16 GiB, so a chunk
/// lost, doubled or put out of order shows as a difference where it
/// happened.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    // Any odd multiple is non-zero, and zero is xorshift's fixed point.
    let mut x = seed.wrapping_mul(0x9e37_79b9) | 1;
    let mut out = vec![0; len];
    for chunk in out.chunks_mut(4) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_deterministic_and_differs_by_seed() {
        assert_eq!(pattern(4099, 1), pattern(4099, 1));
        assert_ne!(pattern(64, 1), pattern(64, 2));
        assert_eq!(pattern(4099, 1).len(), 4099);
        // No short period: the second MiB is not the first again.
        let data = pattern(2 << 20, 3);
        assert_ne!(data[..1 << 20], data[1 << 20..]);
    }

    #[test]
    fn lower_bound_is_strict() {
        let ms = Duration::from_millis;
        assert!(not_before("x", ms(1000), ms(1000), "the start").is_ok());
        let f = not_before("`TIMER b`", ms(99), ms(100), "the request").unwrap_err();
        assert_eq!(f.got, "`TIMER b` came 99 ms after the request");
        assert_eq!(f.expected, "not before 100 ms after the request");
    }
}

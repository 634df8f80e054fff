//! `shm` — binary `shm-handshake` (contract: exercises/shm/README.md;
//! slides „Implizite Kommunikation“ and „Beispiel: Gemeinsamer Speicher
//! (1/2), (2/2)“).
//!
//! The test plan: the handshake's lines and pids; messages copied exactly,
//! up to the 2048-byte limit and without stale bytes; the lost-wakeup race,
//! provoked 50 times (half of them on a single CPU, where the parent runs
//! first after `fork`); no busy waiting and no polling while the parent
//! sleeps, measured in `/proc` on every process of the program (not only
//! the pid it prints); the child reaped.

use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::support::{
    expect_none_polls, expect_none_spins, expect_some_stderr, measure_idle_tree, Usage, WatchedChild,
};
use crate::check::{same, Check, Ctx, Exercise};
use crate::harness::{procfs, show, Failure, Program, Step};

const BIN: &str = "shm-handshake";

pub fn exercise() -> Exercise {
    Exercise {
        id: "shm",
        title: "Shared memory: a message handshake between parent and child",
        slides: "„Implizite Kommunikation“ and „Beispiel: Gemeinsamer Speicher (1/2), (2/2)“",
        bins: &[BIN],
        hints: include_str!("../../hints/shm.toml"),
        checks: vec![
            Check::new(
                "lines",
                15,
                "the four lines of the handshake, with consistent pids",
                "The child prints `waiting`, `reading` and `writing`, then exits; the parent waits for it and \
                 prints `Message from child CPID: …` last. CPID is the child's `getpid()`, PPID the parent's.",
                lines,
            ),
            Check::new(
                "child-process",
                10,
                "the child is a real process forked by the program",
                "Use `fork`: the child has its own pid and its parent is the program the grader started.",
                child_process,
            ),
            Check::new(
                "custom-message",
                10,
                "a custom UTF-8 message is copied exactly",
                "Copy the argument's bytes into the shared memory and read back exactly as many bytes \
                 (store the length or a terminating NUL).",
                custom_message,
            ),
            Check::new(
                "long-message",
                10,
                "2048 bytes copied exactly, no stale bytes; 2049 bytes is a usage error",
                "The reply is shorter than a long message: without a terminator (or length) the parent reads \
                 the reply followed by the rest of the message. Reject more than 2048 bytes before forking.",
                long_message,
            ),
            Check::heavy(
                "race",
                25,
                "50 handshakes with --delay-ms 0 (half on one CPU): none hangs or dies",
                "A signal sent before the child installed its handler kills it (default action); one sent \
                 between the child's flag test and `pause()` is lost and the child waits forever. Block \
                 SIGUSR1 *before* `fork` (`SigSet::thread_block`) and wait with `SigSet::wait` (sigwait) or \
                 `sigsuspend`, which unblock and wait in one step.",
                race,
            ),
            Check::new(
                "no-busy-wait",
                10,
                "the waiting child (and every other process of the program) uses no CPU while the parent sleeps",
                "`while !flag {}` burns a whole CPU. Wait in the kernel: `SigSet::wait` or `sigsuspend`.",
                no_busy_wait,
            ),
            Check::new(
                "no-polling",
                10,
                "the waiting child (and every other process of the program) does not poll while the parent sleeps",
                "The slide's `while (!message) usleep(1000);` wakes up a thousand times a second — the \
                 „aufwendiges busy-waiting“ the slide warns about. Sleep until the signal arrives.",
                no_polling,
            ),
            Check::new(
                "reaped",
                10,
                "the parent reaps its child before exiting",
                "`waitpid(child, None)` in the parent: it also guarantees the child has written its reply \
                 before the parent reads it.",
                reaped,
            ),
        ],
    }
}

/// The child's pid from its first line, `child CPID: waiting for message...`.
fn child_pid(line: &[u8]) -> Step<Pid> {
    let text = String::from_utf8_lossy(line);
    text.strip_prefix("child ")
        .and_then(|r| r.strip_suffix(": waiting for message..."))
        .and_then(|n| n.parse::<i32>().ok())
        .map(Pid::from_raw)
        .ok_or_else(|| Failure::wrong(format!("first line {}", show(line)), "`child CPID: waiting for message...`"))
}

/// `Some` failure when the parent's `Message from child` line came before
/// the child's `writing to shmem` line (or without it): the parent read the
/// shared memory before the child had answered. One story for a parent that
/// does not wait, whichever of its lines the race put first.
fn parent_did_not_wait(p: &Program) -> Option<Failure> {
    let out = String::from_utf8_lossy(p.stdout());
    let lines: Vec<&str> = out.lines().collect();
    let message = lines.iter().position(|l| l.starts_with("Message from child "))?;
    let answered = lines.iter().position(|l| l.starts_with("child ") && l.contains(" writing to shmem: "));
    if answered.is_some_and(|a| a < message) {
        return None;
    }
    Some(Failure::wrong(
        "the parent printed `Message from child …` before the child's `child CPID writing to shmem: …` line: it \
         read the shared memory before the child had answered",
        "the parent to wait for the child (`waitpid`) before it reads the reply",
    ))
}

/// A failure of the handshake's lines, told as [`parent_did_not_wait`]
/// when that is what happened.
fn or_not_waited(p: &Program, f: Failure) -> Failure {
    parent_did_not_wait(p).unwrap_or(f)
}

/// Wait for the child's first line and return its pid (as the program
/// sees it).
fn first_line(cx: &Ctx, p: &mut Program) -> Step<Pid> {
    let line = p.line("`child CPID: waiting for message...` from the child", cx.secs(5.0))?;
    let cpid = child_pid(&line).map_err(|f| or_not_waited(p, f))?;
    if cpid == p.seen_pid() {
        return Err(Failure::wrong(
            format!("CPID {cpid}, the pid of the program itself"),
            "the pid of the forked child (`getpid()` in the child)",
        ));
    }
    Ok(cpid)
}

/// The child `cpid` (as the program printed it) in the grader's `/proc`.
fn find_child(p: &Program, cpid: Pid) -> Step<Pid> {
    p.find(cpid).ok_or_else(|| {
        Failure::wrong(
            format!("no process {cpid} (the CPID of the first line) among the program's processes"),
            "CPID to be the pid of the forked child (`getpid()` in the child)",
        )
    })
}

/// Finish a handshake whose first line was taken: exit 0 and the three
/// remaining lines exactly.
fn rest_of_handshake(cx: &Ctx, p: &mut Program, cpid: Pid, msg: Option<&[u8]>) -> Step {
    p.expect_exit(0, "the handshake to complete with exit status 0", cx.secs(5.0))?;
    let ppid = p.seen_pid();
    let default = format!("Parent {ppid} sending message to child {cpid}");
    let msg = msg.unwrap_or(default.as_bytes());
    let reply = format!("Got it [{ppid}] -- exiting");
    let mut want = format!("child {cpid} reading from shmem: ").into_bytes();
    want.extend_from_slice(msg);
    want.extend_from_slice(
        format!("\nchild {cpid} writing to shmem: {reply}\nMessage from child {cpid}: {reply}\n").as_bytes(),
    );
    same("the lines after `waiting for message...`", p.stdout_pending(), &want).map_err(|f| or_not_waited(p, f))
}

fn handshake(cx: &Ctx, args: &[&str], msg: Option<&[u8]>) -> Step {
    let mut p = cx.start(BIN, args)?;
    let cpid = first_line(cx, &mut p)?;
    rest_of_handshake(cx, &mut p, cpid, msg)
}

fn lines(cx: &Ctx) -> Step {
    handshake(cx, &[], None)
}

fn child_process(cx: &Ctx) -> Step {
    let mut p = cx.start(BIN, &["--delay-ms", "300"])?;
    let cpid = first_line(cx, &mut p)?;
    match p.find(cpid).and_then(procfs::ppid) {
        Some(ppid) if ppid == p.pid().as_raw() => {}
        Some(other) => {
            return Err(Failure::wrong(
                format!("process {cpid} exists but its parent is {}", p.shown(Pid::from_raw(other))),
                format!("a child of the program (pid {})", p.seen_pid()),
            ))
        }
        None => {
            return Err(Failure::wrong(
                format!("no process {cpid} while the parent still sleeps"),
                "the child to be alive, waiting for SIGUSR1",
            ))
        }
    }
    cx.did(format!("saw process {cpid} alive with parent {}", p.seen_pid()));
    rest_of_handshake(cx, &mut p, cpid, None)
}

fn custom_message(cx: &Ctx) -> Step {
    let msg = "Grüße aus dem Elternprozess — ✓ 🦀 „shm“";
    handshake(cx, &[msg], Some(msg.as_bytes()))
}

fn long_message(cx: &Ctx) -> Step {
    let mut msg = String::new();
    while msg.len() + "äöü€🦀x".len() <= 2048 {
        msg.push_str("äöü€🦀x");
    }
    while msg.len() < 2048 {
        msg.push('.');
    }
    handshake(cx, &[&msg], Some(msg.as_bytes()))?;
    msg.push('!');
    let mut p = cx.start(BIN, &[&msg])?;
    p.expect_exit(1, "exit status 1 (usage error) for a 2049-byte message", cx.secs(5.0))?;
    same("stdout for a 2049-byte message", p.stdout(), b"")?;
    expect_some_stderr(&p, "a usage message on stderr")
}

fn race(cx: &Ctx) -> Step {
    const RUNS: usize = 50;
    const BATCH: usize = 10;
    let _heavy = cx.heavy();
    let mut done = 0;
    while done < RUNS {
        let deadline = Instant::now() + cx.secs(5.0);
        let mut batch = Vec::new();
        for i in done..(done + BATCH).min(RUNS) {
            let pinned = i % 2 == 1;
            let p = cx.start_with(BIN, &["--delay-ms", "0"], |spec, _| spec.cpu = pinned.then_some(0))?;
            batch.push((i, pinned, p));
        }
        for (i, pinned, mut p) in batch {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            let outcome = p
                .line("`child CPID: waiting for message...`", left)
                .and_then(|l| child_pid(&l).map_err(|f| or_not_waited(&p, f)))
                .and_then(|cpid| rest_of_handshake(cx, &mut p, cpid, None));
            if let Err(mut f) = outcome {
                f.got = format!(
                    "run {} of {RUNS}{}: {} (runs before it were fine)",
                    i + 1,
                    if pinned { ", pinned to CPU 0" } else { "" },
                    f.got
                );
                return Err(f);
            }
        }
        done = (done + BATCH).min(RUNS);
    }
    cx.did(format!("ran {RUNS} handshakes with --delay-ms 0, {BATCH} at a time, every second one pinned to CPU 0"));
    Ok(())
}

/// Start with `--delay-ms 500`, wait for the child to wait, and measure
/// every process of the program over 300 ms of the parent's sleep (what is
/// left of the 500 ms once the child is seen waiting): what the program's
/// processes do, not only the one whose pid it prints.
fn measure_waiting(cx: &Ctx) -> Step<(Program, Pid, Vec<Usage>)> {
    let mut p = cx.start(BIN, &["--delay-ms", "500"])?;
    let cpid = first_line(cx, &mut p)?;
    let parent = p.pid();
    let child = p.find(cpid);
    // Named as the program sees them (its lines name the child so).
    let who = |pid: Pid| {
        let seen = procfs::ns_pid(pid).unwrap_or(pid);
        if pid == parent {
            format!("the sleeping parent (pid {seen})")
        } else if Some(pid) == child {
            format!("the waiting child (pid {seen})")
        } else {
            format!("process {seen} of {BIN} (not the child {cpid} its lines name)")
        }
    };
    let usages = measure_idle_tree(&mut p, who, Duration::from_millis(300), "while the parent sleeps")?;
    Ok((p, cpid, usages))
}

fn no_busy_wait(cx: &Ctx) -> Step {
    let (mut p, cpid, usages) = measure_waiting(cx)?;
    expect_none_spins(&usages, "a child blocked in sigwait/sigsuspend uses no CPU")?;
    rest_of_handshake(cx, &mut p, cpid, None)
}

fn no_polling(cx: &Ctx) -> Step {
    let (mut p, cpid, usages) = measure_waiting(cx)?;
    expect_none_polls(&usages, "a child blocked until SIGUSR1 arrives sleeps")?;
    rest_of_handshake(cx, &mut p, cpid, None)
}

fn reaped(cx: &Ctx) -> Step {
    let mut p = cx.start(BIN, &["--delay-ms", "200"])?;
    let cpid = first_line(cx, &mut p)?;
    let child = WatchedChild::new(find_child(&p, cpid)?);
    // Reaped or not first: that is what this check is about, and it does
    // not depend on whether the reply made it in time.
    p.expect_exit(0, "the handshake to complete with exit status 0", cx.secs(5.0))?;
    child.expect_reaped(
        format!("the parent exited but its child {cpid} was never reaped (left a zombie or running)"),
        "the parent to `waitpid` for the child before exiting",
    )?;
    rest_of_handshake(cx, &mut p, cpid, None)
}

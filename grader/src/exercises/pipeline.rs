//! `pipeline` — binary `pipeline` (contract: exercises/pipeline/README.md;
//! slides „Pipes“ and „Pipes, Sockets und Prozesse“ (1)–(5)).
//!
//! The test plan: the same bytes and status as `sh -c 'A | B | C'`
//! (computed at check time); EOF through many stages, which only arrives if
//! every process closed every write end it does not use; SIGPIPE for
//! `yes | head`; what each stage inherited, reported by the grader's own
//! probe put in as a stage, which also tells who started it; command not
//! found; 10 MiB byte-exact; 20 stages; every stage reaped before the
//! pipeline exits, in whatever order.

use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use super::support::{pattern, who_holds_pipe, WatchedChild};
use crate::check::{same, Check, Ctx, Exercise};
use crate::harness::failure::signal_name;
use crate::harness::{procfs, show, Exit, Failure, Kind, Program, Spec, Step};
use crate::probe::Report;

const BIN: &str = "pipeline";

pub fn exercise() -> Exercise {
    Exercise {
        id: "pipeline",
        title: "Pipelines: pipe, fork, dup2, execvp, and closing what you do not use",
        slides: "„Pipes“, „Bidirektionale Pipes“ and „Pipes, Sockets und Prozesse“ (1)–(5)",
        bins: &[BIN],
        hints: include_str!("../../hints/pipeline.toml"),
        checks: vec![
            Check::new(
                "like-sh",
                15,
                "prints exactly what `sh -c 'A | B | C'` prints",
                "Stage i reads from pipe i-1 and writes to pipe i: `dup2` the ends onto 0 and 1 in the \
                 child, then `execvp(argv[0], argv)`. The first stage keeps the pipeline's stdin, the last \
                 its stdout.",
                like_sh,
            ),
            Check::new(
                "exit-status",
                10,
                "exit status is the last stage's (128+N if killed by signal N)",
                "Remember the last stage's pid; when `waitpid` returns it, `WaitStatus::Exited(_, code)` \
                 gives `code` and `WaitStatus::Signaled(_, sig, _)` gives `128 + sig`.",
                exit_status,
            ),
            Check::new(
                "eof-propagation",
                15,
                "`pipeline cat cat cat cat` ends when its stdin ends",
                "A reader sees EOF only when *every* copy of the pipe's write end is closed — in the \
                 parent and in every child (slide „Pipes, Sockets und Prozesse (5)“). After each `fork`, \
                 close in the parent the ends it handed on, and in each child every pipe end besides the \
                 two it `dup2`ed.",
                eof_propagation,
            ),
            Check::new(
                "sigpipe",
                10,
                "`pipeline yes 'head -n 3'` ends promptly, nothing on stderr",
                "Rust sets SIGPIPE to SIG_IGN before `main`, and an ignored signal stays ignored across \
                 `execvp`: `yes` then gets EPIPE and complains instead of dying quietly. Reset it in the \
                 child before exec: `signal(Signal::SIGPIPE, SigHandler::SigDfl)`.",
                sigpipe,
            ),
            Check::new(
                "inherited-state",
                15,
                "every stage is forked by pipeline and sees only fds 0, 1, 2, SIGPIPE at default, no blocked signals",
                "`nix::unistd::pipe()` does not set close-on-exec: every pipe end you do not close is \
                 inherited by every later stage. Close them (or use `pipe2(OFlag::O_CLOEXEC)`; `dup2` \
                 clears the flag on the copy).",
                inherited_state,
            ),
            Check::new(
                "not-found",
                10,
                "a command that cannot run: `pipeline: NAME: command not found`, status 127",
                "When `execvp` returns, it failed: print the message and leave the child with \
                 `libc::_exit(127)`. Never fall back into the parent's loop — that child would fork the \
                 remaining stages a second time.",
                not_found,
            ),
            Check::heavy(
                "large-data",
                10,
                "10 MiB through five `cat` stages, byte-exact",
                "The stages run at the same time, connected by pipes that hold 64 KiB: nothing may wait \
                 for a stage to finish before starting the next.",
                large_data,
            ),
            Check::new(
                "many-stages",
                5,
                "20 stages",
                "Close the pipe ends in the parent as you go, or 20 stages hold 40 descriptors each.",
                many_stages,
            ),
            Check::new(
                "no-zombies",
                10,
                "every stage is reaped before the pipeline exits (in any order)",
                "A stage that exited stays a zombie until a `waitpid` collects it, and a stage still running \
                 when the pipeline exits is never collected by it. Reap every stage you started before \
                 exiting — `waitpid(None, None)` until all are collected, or each pid in turn — not only \
                 the last one, whose status you need.",
                no_zombies,
            ),
        ],
    }
}

/// The grader's own probe as a stage: `GRADER __probe ARGS` (the grader's
/// executable, or a copy where the program's user can run it).
fn probe(args: &str) -> Step<String> {
    let exe = std::env::current_exe().map_err(|e| Failure::grader(format!("cannot find the grader: {e}")))?;
    let exe = crate::harness::runas::exec_path(&exe)
        .map_err(|e| Failure::grader(format!("cannot copy the grader where the program's user can run it: {e}")))?;
    let exe = exe.to_string_lossy().into_owned();
    if exe.chars().any(char::is_whitespace) {
        return Err(Failure::grader(format!("the grader's path `{exe}` contains white space; move it")));
    }
    Ok(format!("{exe} __probe {args}"))
}

/// What `sh -c 'A | B | C'` prints for `input`, and its status.
fn reference(cx: &Ctx, stages: &[&str], input: &[u8]) -> Step<(Vec<u8>, Exit)> {
    let spec = Spec {
        path: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), stages.join(" | ").into()],
        limits: Default::default(),
        cpu: None,
        env: Vec::new(),
    };
    let opts = crate::harness::Options { output_cap: 32 << 20, forbid_leftovers: false, needs_account: false };
    let mut sh = Program::start("sh", &spec, opts, Default::default())?;
    sh.send_quiet(input);
    sh.close_stdin();
    let exit = sh.wait_exit("sh to run the reference pipeline", cx.secs(20.0))?;
    Ok((sh.stdout().to_vec(), exit))
}

fn start(cx: &Ctx, stages: &[&str], cap: usize) -> Step<Program> {
    cx.start_with(BIN, stages, |_, opts| opts.output_cap = cap)
}

/// Run `pipeline STAGES` on `input` to its end; compare with `sh`.
fn like(cx: &Ctx, stages: &[&str], input: &[u8]) -> Step {
    let (want, want_exit) = reference(cx, stages, input)?;
    let mut p = start(cx, stages, 32 << 20)?;
    p.send(input);
    p.close_stdin();
    let exit = cx
        .wait_exit(&mut p, &format!("the pipeline to end like `sh -c '{}'`", stages.join(" | ")), 20.0)
        .map_err(|f| held_pipe(&p, stages.len(), f))?;
    let want_code = exit_code(want_exit);
    if exit != Exit::Code(want_code) {
        return Err(p.classify(exit, &format!("exit status {want_code}, as from `sh`")));
    }
    same(&format!("stdout of `{}`", stages.join(" | ")), p.stdout(), &want)
}

/// The pipeline of `count` stages hangs after its input ended: when a stage
/// waits on a pipe whose other end some process keeps open, say who keeps
/// it, as which descriptor.
fn held_pipe(p: &Program, count: usize, f: Failure) -> Failure {
    if f.kind != Kind::TimedOut {
        return f;
    }
    let stages = stage_numbers(p, count);
    let name = |pid: Pid| match stages.iter().find(|s| s.0 == pid) {
        _ if pid == p.pid() => format!("{BIN} (pid {})", p.seen_pid()),
        Some(&(_, k)) => format!("`{}` (stage {k})", procfs::comm(pid)),
        None => format!("`{}` (pid {})", procfs::comm(pid), p.shown(pid)),
    };
    let Some(held) = who_holds_pipe(p, name) else { return f };
    let hint = if held.holder == p.pid() {
        "after each `fork`, close in the parent the pipe ends it handed on to the child: the parent reads and \
         writes none of them"
    } else {
        "in each child, close every pipe end besides the two it `dup2`ed onto 0 and 1 before `execvp` (or make \
         the pipes with `pipe2(OFlag::O_CLOEXEC)`)"
    };
    f.diagnosed(held.what_it_means, hint)
}

/// The stages of a pipeline of `count` stages that still run, by number:
/// the first reads the pipeline's stdin, the last writes its stdout, and
/// each stage between reads, as its stdin, the pipe the one before it
/// writes as its stdout. Found from both ends, so a stage that has gone
/// breaks the chain only where it was.
fn stage_numbers(p: &Program, count: usize) -> Vec<(Pid, usize)> {
    let pipe = |pid: Pid, fd: i32| procfs::fd_target(pid, fd).as_deref().and_then(procfs::pipe_inode);
    let kids = procfs::children(p.pid());
    let mut out = Vec::new();
    let mut walk = |order: Vec<usize>, along: i32, back: i32| {
        let mut end = pipe(p.pid(), along);
        for k in order {
            let Some(stage) = kids.iter().copied().find(|&c| end.is_some() && pipe(c, along) == end) else { break };
            out.push((stage, k));
            end = pipe(stage, back);
        }
    };
    walk((1..=count).collect(), 0, 1);
    walk((1..=count).rev().collect(), 1, 0);
    out
}

fn exit_code(e: Exit) -> i32 {
    match e {
        Exit::Code(c) => c,
        Exit::Signal(s) => 128 + s,
    }
}

/// A pipeline's stages and the input it gets.
type Run<'a> = (&'a [&'a str], &'a [u8]);

fn like_sh(cx: &Ctx) -> Step {
    let text = b"the quick brown fox\njumps over the lazy dog\nthe end\nfox\nthe end\n";
    let cases: [(&str, Run); 3] = [
        ("cat | tr a-z A-Z | sort | uniq -c", (&["cat", "tr a-z A-Z", "sort", "uniq -c"], text)),
        ("seq 1 100 | grep 7 | wc -l", (&["seq 1 100", "grep 7", "wc -l"], b"")),
        ("echo hello world", (&["echo hello world"], b"")),
    ];
    cx.cases(&cases, |&(stages, input)| like(cx, stages, input))
}

fn exit_status(cx: &Ctx) -> Step {
    let term = probe("signal 15")?;
    let cases: [(&str, (&[&str], i32)); 3] = [
        ("true | false", (&["true", "false"], 1)),
        ("false | true", (&["false", "true"], 0)),
        ("true | a stage killed by SIGTERM", (&["true", &term], 143)),
    ];
    cx.cases(&cases, |&(stages, want)| {
        let mut p = start(cx, stages, 1 << 20)?;
        p.close_stdin();
        let exit = cx.wait_exit(&mut p, "the pipeline to end", 10.0)?;
        if exit != Exit::Code(want) {
            return Err(p.classify(exit, &format!("exit status {want} for `{}`", stages.join(" | "))));
        }
        Ok(())
    })
}

fn eof_propagation(cx: &Ctx) -> Step {
    let mut p = start(cx, &["cat", "cat", "cat", "cat"], 1 << 20)?;
    p.send(b"through four cats\n");
    let line = p.line("the line through four `cat`s", cx.secs(5.0))?;
    same("the line", &line, b"through four cats")?;
    p.close_stdin();
    p.expect_exit(0, "exit status 0 once stdin ended (EOF must reach every stage)", cx.secs(5.0))
        .map_err(|f| held_pipe(&p, 4, f))
}

fn sigpipe(cx: &Ctx) -> Step {
    let mut p = start(cx, &["yes", "head -n 3"], 1 << 20)?;
    p.expect_exit(0, "exit status 0 promptly (`yes` ended by SIGPIPE)", cx.secs(5.0))
        .map_err(|f| held_pipe(&p, 2, f))?;
    same("stdout", p.stdout(), b"y\ny\ny\n")?;
    if !p.stderr().is_empty() {
        return Err(Failure::wrong(
            format!("stderr {}", show(p.stderr())),
            "nothing on stderr: `yes` must die of SIGPIPE silently",
        ));
    }
    Ok(())
}

/// The probe stages' reports on the pipeline's stderr, one per tag, in the
/// order of `tags`; `None` until all of them are there.
fn probe_reports(p: &Program, tags: &[&str]) -> Option<Vec<Report>> {
    let err = String::from_utf8_lossy(p.stderr());
    let all: Vec<Report> = err.lines().filter_map(Report::parse).collect();
    tags.iter().map(|&tag| all.iter().find(|r| r.tag == tag).cloned()).collect()
}

fn inherited_state(cx: &Ctx) -> Step {
    const TAGS: [&str; 3] = ["first", "middle", "last"];
    let stages = TAGS.map(|tag| probe(&format!("report {tag}")));
    let stages = stages.into_iter().collect::<Step<Vec<String>>>()?;
    let refs: Vec<&str> = stages.iter().map(String::as_str).collect();
    let mut p = start(cx, &refs, 1 << 20)?;
    p.send(b"probe data\n");
    p.close_stdin();
    cx.expect_exit(&mut p, 0, "the three probe stages to finish", 10.0).map_err(|f| held_pipe(&p, 3, f))?;
    same("stdout", p.stdout(), b"probe data\n")?;
    let Some(reports) = probe_reports(&p, &TAGS) else {
        return Err(Failure::wrong(
            format!("not a report from each of the three probe stages; stderr {}", show(p.stderr())),
            "a line `probe first …`, `probe middle …` and `probe last …` (each stage's stderr is the pipeline's)",
        ));
    };
    let graded = cx.bin_path(BIN)?;
    for r in &reports {
        expect_started_by(r, graded)?;
    }
    for r in &reports {
        expect_clean(r)?;
    }
    Ok(())
}

/// The stage's parent must run the graded executable: the stages are forked
/// by pipeline itself or by a process it forked (a supervisor), not by a
/// shell it handed the command line to.
fn expect_started_by(r: &Report, graded: &Path) -> Step {
    let graded = graded.canonicalize().unwrap_or_else(|_| graded.to_path_buf());
    // The kernel appends ` (deleted)` when the file was replaced meanwhile
    // (a rebuild during `--watch`).
    let parent = Path::new(r.parent.strip_suffix(" (deleted)").unwrap_or(&r.parent));
    if parent == graded {
        return Ok(());
    }
    let grader = std::env::current_exe().ok().and_then(|g| g.canonicalize().ok());
    if grader.as_deref() == Some(parent) {
        // Orphans come to the grader, a subreaper.
        return Err(Failure::wrong(
            format!(
                "the {} stage (pid {}) had lost its parent by the time it ran (it was re-parented to the grader): \
                 the process that forked it had exited already",
                r.tag, r.pid
            ),
            "stages forked by pipeline itself (or by a process it forked), which waits for them",
        ));
    }
    let who = if r.parent == "?" {
        "a process whose program could not be read".to_string()
    } else {
        format!("`{}`", r.parent)
    };
    Err(Failure::wrong(
        format!("the {} stage (pid {}) was started by {who}, not by pipeline (`{}`)", r.tag, r.pid, graded.display()),
        "stages forked by pipeline itself (or by a process it forked) — `pipe`, `fork`, `dup2`, `execvp`, or \
         `posix_spawnp` — not by `sh -c` or another program",
    )
    .diagnosed(
        format!("the stages were started by {who}: the pipeline was handed to another program"),
        "building the pipeline is the exercise: a shell that does it for you skips it",
    ))
}

/// Signals 1–31, the standard ones: glibc's `posix_spawn` leaves its
/// internal real-time signals 32 and 33 ignored in every child, which no
/// program can change, so only these count.
const STANDARD_SIGNALS: u64 = (1 << 31) - 1;

fn signal_list(mask: u64) -> String {
    let names: Vec<String> = (1..=31).filter(|n| mask & (1 << (n - 1)) != 0).map(signal_name).collect();
    names.join(", ")
}

/// Only fds 0, 1, 2, SIGPIPE at its default, no standard signal ignored or
/// blocked.
fn expect_clean(r: &Report) -> Step {
    let stage = format!("the {} stage (pid {})", r.tag, r.pid);
    if r.fds != [0, 1, 2] {
        let fds: Vec<String> = r.fds.iter().map(i32::to_string).collect();
        return Err(Failure::wrong(
            format!("{stage} started with descriptors {} open", fds.join(", ")),
            "only 0, 1 and 2: every other pipe end closed (or close-on-exec) in every process",
        ));
    }
    if r.sigpipe_ignored {
        return Err(Failure::wrong(
            format!("{stage} started with SIGPIPE ignored"),
            "SIGPIPE at its default action (an ignored signal stays ignored across `execvp`)",
        ));
    }
    let ignored = r.sigign & STANDARD_SIGNALS;
    if ignored != 0 {
        return Err(Failure::wrong(
            format!("{stage} started with {} ignored (SigIgn {:x})", signal_list(ignored), r.sigign),
            "no standard signal (1–31) ignored: an ignored signal stays ignored across `fork` and `execvp`",
        ));
    }
    let blocked = r.sigblk & STANDARD_SIGNALS;
    if blocked != 0 {
        return Err(Failure::wrong(
            format!("{stage} started with {} blocked (SigBlk {:x})", signal_list(blocked), r.sigblk),
            "no standard signal (1–31) blocked: the signal mask is inherited across `fork` and `execvp`",
        ));
    }
    Ok(())
}

fn not_found(cx: &Ctx) -> Step {
    let cases: [(&str, bool); 2] = [("nosuchcmd-xyz | echo hi", true), ("echo hi | nosuchcmd-xyz", false)];
    cx.cases(&cases, |&first| {
        if first {
            let mut p = start(cx, &["nosuchcmd-xyz", "echo hi"], 1 << 20)?;
            p.close_stdin();
            p.expect_exit(0, "exit status 0 (the last stage, `echo hi`, succeeded)", cx.secs(5.0))?;
            same("stdout", p.stdout(), b"hi\n")?;
            same("stderr", p.stderr(), b"pipeline: nosuchcmd-xyz: command not found\n")
        } else {
            let mut p = start(cx, &["echo hi", "nosuchcmd-xyz"], 1 << 20)?;
            p.close_stdin();
            p.expect_exit(127, "exit status 127 (the last stage could not be executed)", cx.secs(5.0))
        }
    })
}

fn large_data(cx: &Ctx) -> Step {
    let data = pattern(10 << 20, 4);
    let mut p = start(cx, &["cat"; 5], 12 << 20)?;
    let _heavy = cx.heavy();
    p.send(&data);
    p.close_stdin();
    cx.expect_exit(&mut p, 0, "10 MiB through five `cat`s and exit status 0", 20.0).map_err(|f| held_pipe(&p, 5, f))?;
    same("the 10 MiB after five `cat`s", p.stdout(), &data)
}

fn many_stages(cx: &Ctx) -> Step {
    let mut p = start(cx, &["cat"; 20], 1 << 20)?;
    p.send(b"twenty stages\n");
    p.close_stdin();
    cx.expect_exit(&mut p, 0, "20 `cat` stages to end with status 0", 10.0).map_err(|f| held_pipe(&p, 20, f))?;
    same("stdout", p.stdout(), b"twenty stages\n")
}

fn no_zombies(cx: &Ctx) -> Step {
    const TAGS: [&str; 2] = ["first", "last"];
    // The first stage copies the pipeline's stdin, which stays open until
    // the grader closes it: it runs until then. The last stage reports and
    // exits at once, so a pipeline that waits for it alone exits while the
    // first one still runs — every time, not by luck of timing.
    let stages = [probe("report first")?, probe("report-exit last")?];
    let refs: Vec<&str> = stages.iter().map(String::as_str).collect();
    let mut p = start(cx, &refs, 1 << 20)?;
    let reports =
        p.wait_for("a report with its pid from each probe stage", cx.secs(5.0), false, |p| probe_reports(p, &TAGS))?;
    // Held from here on: a stage the pipeline leaves behind comes to the
    // grader (a subreaper) and stays visible, running or a zombie, whoever
    // forked it. The first stage cannot have ended yet.
    // (A stage the program can no longer show has been reaped already.)
    let stages: Vec<(&Report, WatchedChild)> = reports
        .iter()
        .filter_map(|r| Some((r, WatchedChild::new(p.find(nix::unistd::Pid::from_raw(r.pid))?))))
        .collect();
    cx.did(format!(
        "the probe stages reported their pids: {} (first, copies stdin) and {} (last, exits at once)",
        reports[0].pid, reports[1].pid
    ));
    p.close_stdin();
    p.expect_exit(0, "exit status 0 once its stdin ended (the last stage's status)", cx.secs(5.0))?;
    for (r, stage) in &stages {
        stage.expect_reaped(
            format!("the pipeline exited without reaping its {} stage (pid {})", r.tag, r.pid),
            "every stage reaped (`waitpid`) before the pipeline exits, in any order",
        )?;
    }
    Ok(())
}

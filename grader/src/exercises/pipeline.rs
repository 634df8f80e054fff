//! `pipeline` — binary `pipeline` (contract: exercises/pipeline/README.md;
//! slides „Pipes“ and „Pipes, Sockets und Prozesse“ (1)–(5)).
//!
//! The test plan: the same bytes and status as `sh -c 'A | B | C'`
//! (computed at check time); EOF through many stages, which only arrives if
//! every process closed every write end it does not use; SIGPIPE for
//! `yes | head`; what each stage inherited, reported by the grader's own
//! probe put in as a stage; command not found; 10 MiB byte-exact; 20
//! stages; no zombie lingering while it runs and none after.

use std::path::PathBuf;

use super::support::{pattern, settle, WatchedChild};
use crate::check::{same, Check, Ctx, Exercise};
use crate::harness::{procfs, show, Exit, Failure, Program, Spec, Step};

const BIN: &str = "pipeline";

pub fn exercise() -> Exercise {
    Exercise {
        id: "pipeline",
        title: "Pipelines: pipe, fork, dup2, execvp, and closing what you do not use",
        slides: "„Pipes“, „Bidirektionale Pipes“ and „Pipes, Sockets und Prozesse“ (1)–(5)",
        bins: &[BIN],
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
                "every stage sees only fds 0, 1, 2, SIGPIPE at default, no blocked signals",
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
            Check::new(
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
                "finished stages are reaped while the pipeline runs, and all of them before it exits",
                "A stage that exited stays a zombie until `waitpid` collects it. Reap stages as they \
                 finish (`waitpid(None, None)` — any child — until all are collected).",
                no_zombies,
            ),
        ],
    }
}

/// The grader's own probe as a stage: `GRADER __probe ARGS`.
fn probe(args: &str) -> Step<String> {
    let exe = std::env::current_exe().map_err(|e| Failure::grader(format!("cannot find the grader: {e}")))?;
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
    };
    let opts = crate::harness::Options { output_cap: 32 << 20, forbid_leftovers: false };
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
    let exit = p.wait_exit(&format!("the pipeline to end like `sh -c '{}'`", stages.join(" | ")), cx.secs(20.0))?;
    let want_code = exit_code(want_exit);
    if exit != Exit::Code(want_code) {
        return Err(p.classify(exit, &format!("exit status {want_code}, as from `sh`")));
    }
    same(&format!("stdout of `{}`", stages.join(" | ")), p.stdout(), &want)
}

fn exit_code(e: Exit) -> i32 {
    match e {
        Exit::Code(c) => c,
        Exit::Signal(s) => 128 + s,
    }
}

fn like_sh(cx: &Ctx) -> Step {
    let text = b"the quick brown fox\njumps over the lazy dog\nthe end\nfox\nthe end\n";
    like(cx, &["cat", "tr a-z A-Z", "sort", "uniq -c"], text)?;
    like(cx, &["seq 1 100", "grep 7", "wc -l"], b"")?;
    like(cx, &["echo hello world"], b"")
}

fn exit_status(cx: &Ctx) -> Step {
    let term = probe("signal 15")?;
    let cases: [(&[&str], i32); 3] = [(&["true", "false"], 1), (&["false", "true"], 0), (&["true", &term], 143)];
    for (stages, want) in cases {
        let mut p = start(cx, stages, 1 << 20)?;
        p.close_stdin();
        let exit = p.wait_exit("the pipeline to end", cx.secs(10.0))?;
        if exit != Exit::Code(want) {
            return Err(p.classify(exit, &format!("exit status {want} for `{}`", stages.join(" | "))));
        }
    }
    Ok(())
}

fn eof_propagation(cx: &Ctx) -> Step {
    let mut p = start(cx, &["cat", "cat", "cat", "cat"], 1 << 20)?;
    p.send(b"through four cats\n");
    let line = p.line("the line through four `cat`s", cx.secs(5.0))?;
    same("the line", &line, b"through four cats")?;
    p.close_stdin();
    p.expect_exit(0, "exit status 0 once stdin ended (EOF must reach every stage)", cx.secs(5.0))
}

fn sigpipe(cx: &Ctx) -> Step {
    let mut p = start(cx, &["yes", "head -n 3"], 1 << 20)?;
    p.expect_exit(0, "exit status 0 promptly (`yes` ended by SIGPIPE)", cx.secs(5.0))?;
    same("stdout", p.stdout(), b"y\ny\ny\n")?;
    if !p.stderr().is_empty() {
        return Err(Failure::wrong(
            format!("stderr {}", show(p.stderr())),
            "nothing on stderr: `yes` must die of SIGPIPE silently",
        ));
    }
    Ok(())
}

fn inherited_state(cx: &Ctx) -> Step {
    let stages = [probe("report first")?, probe("report middle")?, probe("report last")?];
    let refs: Vec<&str> = stages.iter().map(String::as_str).collect();
    let mut p = start(cx, &refs, 1 << 20)?;
    p.send(b"probe data\n");
    p.close_stdin();
    p.expect_exit(0, "the three probe stages to finish", cx.secs(10.0))?;
    same("stdout", p.stdout(), b"probe data\n")?;
    let err = String::from_utf8_lossy(p.stderr()).into_owned();
    for tag in ["first", "middle", "last"] {
        let want = format!("probe {tag} fds=0,1,2 sigpipe=default sigign=0 sigblk=0");
        let got = err.lines().find(|l| l.starts_with(&format!("probe {tag} ")));
        match got {
            Some(line) if line == want => {}
            Some(line) => {
                return Err(Failure::wrong(
                    format!("the {tag} stage reported `{line}`"),
                    format!("`{want}` (sigign/sigblk are hex masks, bit N-1 for signal N)"),
                ))
            }
            None => {
                return Err(Failure::wrong(
                    format!("no report from the {tag} stage; stderr {}", show(p.stderr())),
                    want,
                ))
            }
        }
    }
    Ok(())
}

fn not_found(cx: &Ctx) -> Step {
    let mut p = start(cx, &["nosuchcmd-xyz", "echo hi"], 1 << 20)?;
    p.close_stdin();
    p.expect_exit(0, "exit status 0 (the last stage, `echo hi`, succeeded)", cx.secs(5.0))?;
    same("stdout", p.stdout(), b"hi\n")?;
    same("stderr", p.stderr(), b"pipeline: nosuchcmd-xyz: command not found\n")?;
    let mut p = start(cx, &["echo hi", "nosuchcmd-xyz"], 1 << 20)?;
    p.close_stdin();
    p.expect_exit(127, "exit status 127 (the last stage could not be executed)", cx.secs(5.0))
}

fn large_data(cx: &Ctx) -> Step {
    let data = pattern(10 << 20, 4);
    let mut p = start(cx, &["cat"; 5], 12 << 20)?;
    p.send(&data);
    p.close_stdin();
    p.expect_exit(0, "10 MiB through five `cat`s and exit status 0", cx.secs(20.0))?;
    same("the 10 MiB after five `cat`s", p.stdout(), &data)
}

fn many_stages(cx: &Ctx) -> Step {
    let mut p = start(cx, &["cat"; 20], 1 << 20)?;
    p.send(b"twenty stages\n");
    p.close_stdin();
    p.expect_exit(0, "20 `cat` stages to end with status 0", cx.secs(10.0))?;
    same("stdout", p.stdout(), b"twenty stages\n")
}

fn no_zombies(cx: &Ctx) -> Step {
    let mut p = start(cx, &["cat", "echo started"], 1 << 20)?;
    // The last stage prints and exits at once; the first, `cat`, waits for
    // the pipeline's stdin, which stays open. Once `started` is out, the
    // last stage has run: from then on it may only be a zombie briefly.
    let line = p.line("`started` from the last stage", cx.secs(5.0))?;
    same("the last stage's line", &line, b"started")?;
    let only_cat = settle(&mut p, "the finished last stage to be reaped while `cat` still runs", cx.secs(3.0), |p| {
        match procfs::children(p.pid()).as_slice() {
            [cat] if procfs::state(*cat) != Some('Z') && procfs::comm(*cat) == "cat" => Some(*cat),
            _ => None,
        }
    })?;
    let Some(cat) = only_cat else {
        return Err(Failure::wrong(
            "the finished stage `echo started` stayed a zombie for 3 s while the first stage `cat` still ran",
            "finished stages reaped as they finish",
        ));
    };
    cx.did("saw the finished stage `echo started` reaped while `cat` still ran");
    let shown = p.shown(cat);
    let watched = WatchedChild::new(cat);
    // `cat` writes into a pipe without reader: SIGPIPE ends it.
    p.send(b"bye\n");
    p.close_stdin();
    p.expect_exit(0, "exit status 0 (the status of the last stage, `echo`)", cx.secs(5.0))?;
    watched.expect_reaped(
        format!("the pipeline exited without reaping its first stage `cat` (pid {shown})"),
        "every stage reaped (`waitpid`) before the pipeline exits",
    )
}

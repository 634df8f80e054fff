//! Each diagnosis the grader makes, driven by the mutant that shows it: the
//! failure says what the grader saw and what that means, then the one hint
//! for that cause, and not the check's general hint. A failure without a
//! diagnosis shows the general hint, labelled as such. And the human
//! report fits an 80-column terminal.

use std::os::unix::fs::symlink;

use ipc_lab_tests::{grade_json, grader_cmd, mutant_bins};
use rstest::rstest;

/// Grade check `check` of `exercise` with mutant `mutant`; its message.
fn message(exercise: &str, mutant: &str, check: &str) -> String {
    let bins = &mutant_bins()[&format!("{exercise}--{mutant}")];
    let mut args = vec![exercise.to_string(), "--check".into(), check.into()];
    for (bin, exe) in bins {
        args.extend(["--bin".into(), format!("{bin}={}", exe.display())]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, report) = grade_json(&args);
    let (status, message) = report.checks(exercise).remove(check).unwrap_or_else(|| panic!("no check {check}"));
    assert_eq!(status, "failed", "{exercise}/{check} with {mutant}:\n{message}");
    message
}

/// The lines of a message that start with `label: `, without it.
fn labelled<'a>(message: &'a str, label: &str) -> Vec<&'a str> {
    message.lines().filter_map(|l| l.strip_prefix(label)?.strip_prefix(": ")).collect()
}

#[rstest]
// Signals: SA_RESTART — the signal arrived and the program went back into
// `read`; not "re-arm the alarm".
#[case::sa_restart_sigint(
    "signals",
    "sa-restart",
    "sigint-idle",
    &["the signal arrived (sigecho has a handler for SIGINT, and it is not pending), and sigecho went back into `read` \
       without printing"],
    &["a handler installed with SA_RESTART makes the kernel restart the `read`"]
)]
#[case::sa_restart_alarm(
    "signals",
    "sa-restart",
    "alarm-periodic",
    &["no answer to the alarm, nor to a SIGALRM the grader sent itself: the signal arrived (sigecho has a handler \
       for SIGALRM"],
    &["a handler installed with SA_RESTART makes the kernel restart the `read`"]
)]
#[case::alarm_not_rearmed(
    "signals",
    "alarm-not-rearmed",
    "alarm-periodic",
    &["the first alarm came, and sigecho answered a SIGALRM the grader sent itself, but no second alarm came: \
       `alarm` fires once"],
    &["re-arm it each time SIGALRM was caught (`alarm::set`), so it repeats"]
)]
// A raw write(2) in the handler: the message inside an echoed line, not the
// `println!` story.
#[case::write_in_handler(
    "signals",
    "write-in-handler",
    "signal-storm",
    &["the output has `Caught signal` inside an echoed line, at byte ", "the handler prints"],
    &["Even a raw `write(2)`, async-signal-safe as it is, lands in the middle of a line"]
)]
#[case::print_in_handler(
    "signals",
    "print-in-handler",
    "signal-storm",
    &["sigecho panicked inside std's stdout (`already borrowed`): a signal handler printed while the main loop was \
       printing"],
    &["Set a flag in the handler and print from the main loop, between whole lines"]
)]
// Framing: who keeps which end of the relay's pipe open, from /proc/PID/fd.
#[case::child_keeps_write_end(
    "framing",
    "child-keeps-write-end",
    "relay-eof",
    &["pipeframe's child (pid ", ") holds the write end of the pipe it reads itself, as fd ", "so its `read` never \
       returns 0 (EOF)"],
    &["in the child, close the write end right after `fork`"]
)]
#[case::parent_keeps_read_end(
    "framing",
    "parent-keeps-read-end",
    "relay-child-max",
    &["pipeframe (pid ", ") still holds the read end (fd ", ") of the pipe it writes into (fd ", "the write succeeds \
       instead of failing with EPIPE"],
    &["the parent closes the read end right after `fork`: only the child reads"]
)]
#[case::panic_on_epipe(
    "framing",
    "panic-on-epipe",
    "encode-reader-gone",
    &["it panicked on EPIPE: the reader of its output had gone, and the error was not handled"],
    &["write with `write_all` and handle the error"]
)]
#[case::no_wait(
    "framing",
    "no-wait",
    "relay-eof",
    &["the parent exited without `waitpid`: its child was left running or a zombie"],
    &["waits for the child with `waitpid` before it exits"]
)]
// Pipeline: who keeps which pipe end open, by stage.
#[case::parent_keeps_pipe_ends(
    "pipeline",
    "parent-keeps-pipe-ends",
    "eof-propagation",
    &["pipeline (pid ", ") still holds the write end of the pipe into `cat` (stage 2) as fd ", "so `cat` never sees \
       EOF"],
    &["after each `fork`, close in the parent the pipe ends it handed on"]
)]
#[case::parent_keeps_read_ends(
    "pipeline",
    "parent-keeps-read-ends",
    "sigpipe",
    &["pipeline (pid ", ") still holds the read end of the pipe out of `yes` (stage 1) as fd "],
    &["after each `fork`, close in the parent the pipe ends it handed on"]
)]
#[case::child_keeps_extra_ends(
    "pipeline",
    "child-keeps-extra-ends",
    "sigpipe",
    &["`yes` (stage 1) holds the read end of the pipe it writes into itself, as fd "],
    &["in each child, close every pipe end besides the two it `dup2`ed"]
)]
fn the_diagnosis_names_the_cause_and_its_hint(
    #[case] exercise: &str,
    #[case] mutant: &str,
    #[case] check: &str,
    #[case] means: &[&str],
    #[case] hint: &[&str],
) {
    let message = message(exercise, mutant, check);
    let (diagnosis, hints) = (labelled(&message, "diagnosis"), labelled(&message, "hint"));
    assert_eq!((diagnosis.len(), hints.len()), (1, 1), "one diagnosis and one hint:\n{message}");
    for part in means {
        assert!(diagnosis[0].contains(part), "diagnosis lacks {part:?}:\n{message}");
    }
    for part in hint {
        assert!(hints[0].contains(part), "hint lacks {part:?}:\n{message}");
    }
    assert!(!message.contains("hint (general)"), "the general hint only without a diagnosis:\n{message}");
}

#[test]
fn without_a_diagnosis_the_general_hint_is_labelled_as_such() {
    // Little-endian lengths: wrong bytes, and nothing more to conclude.
    let message = message("framing", "host-byte-order", "encode-bytes");
    assert!(labelled(&message, "diagnosis").is_empty() && labelled(&message, "hint").is_empty(), "{message}");
    let general = labelled(&message, "hint (general)");
    assert_eq!(general.len(), 1, "{message}");
    assert!(general[0].starts_with("The length goes on the wire in network byte order"), "{message}");
}

/// Columns of a line: characters, not bytes.
fn too_wide(text: &str, width: usize) -> Vec<String> {
    text.lines()
        .filter(|l| l.chars().count() > width)
        .map(|l| format!("{} > {width}: {l}", l.chars().count()))
        .collect()
}

/// The human report of `args`, on a pipe (not a terminal) and without
/// `COLUMNS`: 80 columns.
fn human(args: &[String]) -> String {
    let out = grader_cmd().args(args).env_remove("COLUMNS").output().expect("run grader");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn the_human_report_of_the_skeletons_fits_80_columns() {
    let text = human(&[]);
    assert!(text.contains("not implemented yet"), "{text}");
    let wide = too_wide(&text, 80);
    assert!(wide.is_empty(), "lines wider than 80 columns:\n{}\n\n{text}", wide.join("\n"));
}

#[test]
fn the_human_report_of_typical_mistakes_fits_80_columns() {
    // SA_RESTART and a decoder that takes one read for one frame: time-outs
    // with where the programs sat, diagnoses, long data that differ. The
    // mutants are linked under their binaries' names in a short folder: a
    // long path is one word that wrapping may not cut (the rerun line must
    // stay copyable).
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec!["signals".into(), "framing".into()];
    for (exercise, mutant) in [("signals", "sa-restart"), ("framing", "one-read-one-frame")] {
        for (bin, exe) in &mutant_bins()[&format!("{exercise}--{mutant}")] {
            let link = dir.path().join(bin);
            symlink(exe, &link).unwrap();
            args.extend(["--bin".into(), format!("{bin}={}", link.display())]);
        }
    }
    let text = human(&args);
    assert!(text.contains("\n  diagnosis: "), "{text}");
    let wide = too_wide(&text, 80);
    assert!(wide.is_empty(), "lines wider than 80 columns:\n{}\n\n{text}", wide.join("\n"));
}

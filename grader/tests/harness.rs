//! The harness starts every program clean, whatever state the grader itself
//! was started in: default signal dispositions, empty mask, only fds 0–2,
//! its own session. The grader's probe (`grader __probe report TAG`)
//! reports what it inherited, read before Rust's runtime touched it.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use grader::harness::{procfs, Options, Program, Spec};
use grader::probe::Report;
use nix::sys::signal::{signal, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

fn probe(tag: &str) -> Program {
    let spec = Spec {
        path: env!("CARGO_BIN_EXE_grader").into(),
        args: vec!["__probe".into(), "report".into(), tag.into()],
        limits: Default::default(),
        cpu: None,
        env: Vec::new(),
    };
    let opts = Options { output_cap: 1 << 20, forbid_leftovers: true, needs_account: false };
    Program::start("probe", &spec, opts, Rc::new(RefCell::new(Default::default()))).expect("start probe")
}

#[test]
fn programs_start_clean_even_from_a_dirty_grader() {
    // Make this thread as dirty as a grader started with `&` from a script,
    // inside a test harness, on a machine that leaks descriptors: SIGINT and
    // SIGQUIT ignored (SIGPIPE already is, by Rust), SIGUSR1 blocked, and a
    // descriptor without close-on-exec.
    for sig in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: SIG_IGN installs no handler code.
        unsafe { signal(sig, SigHandler::SigIgn) }.unwrap();
    }
    let mut blocked = SigSet::empty();
    blocked.add(Signal::SIGUSR1);
    blocked.thread_block().unwrap();
    let file = std::fs::File::open("/dev/null").unwrap();
    let leaked = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_DUPFD(40)).unwrap();
    assert!(leaked >= 40);

    let mut p = probe("clean");
    p.close_stdin();
    let exit = p.wait_exit("the probe to exit", Duration::from_secs(10)).unwrap();
    assert_eq!(exit, grader::harness::Exit::Code(0));
    let line = String::from_utf8_lossy(p.stderr()).trim().to_string();
    let report = Report::parse(&line).unwrap_or_else(|| panic!("not a probe report: {line}"));
    let me = std::env::current_exe().unwrap().canonicalize().unwrap();
    let want = Report {
        tag: "clean".into(),
        pid: p.seen_pid().as_raw(),
        fds: vec![0, 1, 2],
        sigpipe_ignored: false,
        sigign: 0,
        sigblk: 0,
        parent: me.to_string_lossy().into_owned(),
    };
    assert_eq!(report, want);
}

#[test]
fn every_program_leads_its_own_session() {
    let mut p = probe("session");
    let pid = p.pid();
    assert_eq!(procfs::pgid(pid), Some(pid.as_raw()), "own process group");
    assert_ne!(nix::unistd::getsid(Some(pid)).unwrap(), nix::unistd::getsid(None).unwrap(), "own session");
    assert_eq!(nix::unistd::getsid(Some(pid)).unwrap(), pid);
    p.close_stdin();
    p.wait_exit("exit", Duration::from_secs(10)).unwrap();
}

#[test]
fn dropping_a_program_kills_and_reaps_it() {
    let p = probe("drop");
    let pid: Pid = p.pid();
    assert!(procfs::state(pid).is_some());
    drop(p);
    assert_eq!(procfs::state(pid), None, "gone, not even a zombie");
}

#[test]
fn a_wait_reports_the_deadline_and_where_the_program_sat() {
    let mut p = probe("wait");
    let err = p.line("a line that never comes", Duration::from_millis(200)).unwrap_err();
    assert_eq!(err.kind, grader::harness::Kind::TimedOut);
    assert!(err.got.contains("within 0.2 s"), "{}", err.got);
    assert!(err.got.contains("was blocked in"), "{}", err.got);
    assert_eq!(err.expected, "a line that never comes");
}

/// A condition the program's exit fulfils is met by the exit, also when the
/// exit comes between the wait's look at the condition and its look at the
/// program: not "ended early". (The program closes its output first, and
/// the condition dawdles after each look: the exit lands in that gap
/// within the first few runs.)
#[test]
fn a_wait_for_the_exit_is_met_by_the_exit_however_it_falls() {
    let spec = Spec {
        path: "/bin/sh".into(),
        args: vec!["-c".into(), "exec >&- 2>&-; sleep 0.02; exit 1".into()],
        limits: Default::default(),
        cpu: None,
        env: Vec::new(),
    };
    for _ in 0..20 {
        let opts = Options { output_cap: 1 << 20, forbid_leftovers: true, needs_account: false };
        let mut p = Program::start("sh", &spec, opts, Rc::new(RefCell::new(Default::default()))).expect("start sh");
        p.wait_for("the exit", Duration::from_secs(10), true, |p| {
            let seen = p.exit().map(|_| ());
            if seen.is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        })
        .unwrap_or_else(|f| panic!("{} | {}", f.got, f.expected));
    }
}

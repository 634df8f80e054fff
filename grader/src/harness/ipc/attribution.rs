//! Which check made an object: the rule, as a pure function of what the
//! kernel recorded and what the grader knows about its checks (see the
//! rules in [`super`]).

use std::time::SystemTime;

use super::objects::{Held, Life, Made, Object};

/// What the grader knows about one check: when it ran, which programs it
/// started, and whether another grader ran checks meanwhile.
#[derive(Debug, Clone)]
pub struct Span {
    /// The program being graded (`shm`): checks of one exercise run the
    /// same binaries.
    pub exercise: String,
    pub check: String,
    /// Before its first program started.
    pub start: SystemTime,
    /// After its last program was dead; `None` while it runs.
    pub end: Option<SystemTime>,
    /// No other grader ran checks at any time during this span (known once
    /// it has ended; `None` before).
    pub solo: Option<bool>,
    /// Pids of the programs it started (and of descendants seen at their
    /// end), with their names.
    pub pids: Vec<(i32, String)>,
}

impl Span {
    /// Could an object made at `made` have been made during this span?
    pub fn covers(&self, made: &Made) -> bool {
        made.latest >= self.start && self.end.is_none_or(|end| made.earliest <= end)
    }

    pub fn has_pid(&self, pid: i32) -> bool {
        self.pids.iter().any(|(p, _)| *p == pid)
    }
}

/// The verdict on one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Made by the check of this span.
    Made(usize),
    /// In use by a program of this grader or by someone unknown, or a
    /// program of this grader that may have made it still runs: judge it
    /// later.
    Later,
    /// Made during checks of different programs, or while another grader
    /// ran checks: no check is blamed. It is this grader's to remove only
    /// if no other grader may own it (`other_grader`).
    Unclear { other_grader: bool },
    /// Not made by any check of this grader, or used by a process that is
    /// not one of its programs: never touched.
    Foreign,
}

/// Judge `o` against every span of this grader; `life` says whether a pid
/// still runs and whose it is.
pub fn attribute(o: &Object, spans: &[Span], life: impl Fn(i32) -> Life) -> Verdict {
    match o.held {
        Held::No => {}
        Held::ByOthers => return Verdict::Foreign,
        Held::ByOurs | Held::Unknown => return Verdict::Later,
    }
    // 1. A pid the kernel recorded (System V creator, last user): one of a
    //    check's programs during that check.
    let by_pid = |pid: i32| spans.iter().position(|s| s.has_pid(pid) && s.covers(&o.made));
    if let Some(s) = o.pids.iter().find_map(|&p| by_pid(p)) {
        return Verdict::Made(s);
    }
    for &pid in &o.pids {
        match life(pid) {
            Life::Ours => return Verdict::Later,
            Life::Foreign => return Verdict::Foreign,
            Life::Gone => {}
        }
    }
    // 2. A program's pid in the name (`/shm-4242`), the usual way to make
    //    names unique per run.
    if let Some(s) = numbers(&o.name).find_map(by_pid) {
        return Verdict::Made(s);
    }
    // 3. The time it was made.
    let during: Vec<usize> = (0..spans.len()).filter(|&i| spans[i].covers(&o.made)).collect();
    let Some(&first) = during.first() else { return Verdict::Foreign };
    if during.iter().any(|&i| spans[i].exercise != spans[first].exercise) {
        return Verdict::Unclear { other_grader: false };
    }
    if during.iter().any(|&i| spans[i].solo == Some(false)) {
        return Verdict::Unclear { other_grader: true };
    }
    if during.iter().any(|&i| spans[i].end.is_none()) {
        return Verdict::Later;
    }
    // Checks of the same program only, all over: the last one to end.
    during.into_iter().max_by_key(|&i| spans[i].end).map_or(Verdict::Foreign, Verdict::Made)
}

/// The decimal numbers in a name that could be pids.
pub fn numbers(name: &str) -> impl Iterator<Item = i32> + '_ {
    name.split(|c: char| !c.is_ascii_digit()).filter_map(|d| d.parse::<i32>().ok()).filter(|&n| n > 1)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, UNIX_EPOCH};

    use super::super::objects::{Held, Id, Sort};
    use super::*;

    /// Seconds since an arbitrary epoch, as a time.
    fn at(secs: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_765_000_000) + Duration::from_secs_f64(secs)
    }

    fn span(exercise: &str, start: f64, end: Option<f64>, pids: &[i32]) -> Span {
        Span {
            exercise: exercise.into(),
            check: format!("{exercise}-check"),
            start: at(start),
            end: end.map(at),
            solo: end.map(|_| true),
            pids: pids.iter().map(|&p| (p, "prog".to_string())).collect(),
        }
    }

    fn file(name: &str, made: f64) -> Object {
        Object {
            id: Id::File { path: PathBuf::from(format!("/dev/shm{name}")), ino: 7 },
            sort: Sort::PosixShm,
            name: name.into(),
            uid: 0,
            made: Made::fine(at(made)),
            pids: Vec::new(),
            held: Held::No,
            size: 4096,
        }
    }

    fn segment(cpid: i32, made_secs: f64) -> Object {
        let secs = at(made_secs).duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        Object {
            id: Id::Sysv { sort: Sort::SysvShm, id: 1, key: 0 },
            sort: Sort::SysvShm,
            name: String::new(),
            uid: 0,
            made: Made::seconds(secs),
            pids: vec![cpid],
            held: Held::No,
            size: 4096,
        }
    }

    fn gone(_: i32) -> Life {
        Life::Gone
    }

    #[test]
    fn the_creator_pid_names_the_check_even_among_parallel_checks_of_other_programs() {
        // Whole seconds overlap every span; the pid decides.
        let spans = [span("shm", 10.1, Some(10.4), &[100]), span("signals", 10.2, Some(10.3), &[200])];
        assert_eq!(attribute(&segment(100, 10.2), &spans, gone), Verdict::Made(0));
        assert_eq!(attribute(&segment(200, 10.2), &spans, gone), Verdict::Made(1));
    }

    #[test]
    fn a_recycled_pid_outside_the_check_is_no_evidence() {
        let spans = [span("shm", 10.1, Some(10.4), &[100])];
        assert_eq!(attribute(&segment(100, 30.0), &spans, gone), Verdict::Foreign);
    }

    #[test]
    fn a_creator_that_still_runs_decides_whose_it_is() {
        let spans = [span("shm", 10.1, Some(10.4), &[100])];
        let o = segment(555, 10.2);
        assert_eq!(attribute(&o, &spans, |_| Life::Foreign), Verdict::Foreign, "someone else's process");
        assert_eq!(attribute(&o, &spans, |_| Life::Ours), Verdict::Later, "a running program of this grader");
        assert_eq!(attribute(&o, &spans, gone), Verdict::Made(0), "gone: the time decides");
    }

    #[test]
    fn a_pid_in_the_name_names_the_check() {
        let spans = [span("shm", 10.0, Some(11.0), &[4242]), span("signals", 10.0, Some(11.0), &[4343])];
        assert_eq!(attribute(&file("/shm-handshake-4343", 10.5), &spans, gone), Verdict::Made(1));
        assert_eq!(attribute(&file("/shm-handshake-4242", 10.5), &spans, gone), Verdict::Made(0));
    }

    #[test]
    fn objects_in_use_are_judged_later_or_never() {
        let spans = [span("shm", 10.0, Some(11.0), &[4242])];
        let mut o = file("/shm-4242", 10.5);
        o.held = Held::ByOurs;
        assert_eq!(attribute(&o, &spans, gone), Verdict::Later, "a running program of this grader");
        o.held = Held::Unknown;
        assert_eq!(attribute(&o, &spans, gone), Verdict::Later, "an attached System V segment");
        o.held = Held::ByOthers;
        assert_eq!(attribute(&o, &spans, gone), Verdict::Foreign, "another process uses it");
    }

    #[test]
    fn made_while_one_check_ran_alone_it_is_that_checks() {
        let spans = [span("shm", 10.0, Some(11.0), &[1]), span("signals", 11.5, Some(12.0), &[2])];
        assert_eq!(attribute(&file("/random-name", 10.5), &spans, gone), Verdict::Made(0));
        assert_eq!(attribute(&file("/random-name", 11.7), &spans, gone), Verdict::Made(1));
    }

    #[test]
    fn made_outside_every_check_it_is_foreign() {
        let spans = [span("shm", 10.0, Some(11.0), &[1])];
        assert_eq!(attribute(&file("/random-name", 9.0), &spans, gone), Verdict::Foreign);
        assert_eq!(attribute(&file("/random-name", 11.5), &spans, gone), Verdict::Foreign);
    }

    #[test]
    fn the_coarse_clock_lag_counts_towards_the_check_that_began_just_after() {
        // The inode time may be a tick before the moment the grader read.
        let spans = [span("shm", 10.0, Some(11.0), &[1])];
        assert_eq!(attribute(&file("/random-name", 9.99), &spans, gone), Verdict::Made(0));
    }

    #[test]
    fn overlapping_checks_of_different_programs_blame_nobody() {
        let spans = [span("shm", 10.0, Some(11.0), &[1]), span("signals", 10.5, Some(12.0), &[2])];
        assert_eq!(attribute(&file("/random-name", 10.7), &spans, gone), Verdict::Unclear { other_grader: false });
        // … nor do whole seconds that both touch.
        let spans = [span("shm", 10.1, Some(10.3), &[1]), span("signals", 10.6, Some(10.9), &[2])];
        assert_eq!(attribute(&segment(9, 10.2), &spans, gone), Verdict::Unclear { other_grader: false });
    }

    #[test]
    fn overlapping_checks_of_one_program_blame_the_last_to_end_once_all_have() {
        let spans = [span("shm", 10.0, Some(11.0), &[1]), span("shm", 10.5, None, &[2])];
        assert_eq!(attribute(&file("/random-name", 10.7), &spans, gone), Verdict::Later);
        let spans = [span("shm", 10.0, Some(11.0), &[1]), span("shm", 10.5, Some(12.0), &[2])];
        assert_eq!(attribute(&file("/random-name", 10.7), &spans, gone), Verdict::Made(1));
    }

    #[test]
    fn while_another_grader_ran_checks_the_time_blames_nobody() {
        let mut spans = [span("shm", 10.0, Some(11.0), &[4242])];
        spans[0].solo = Some(false);
        assert_eq!(attribute(&file("/random-name", 10.5), &spans, gone), Verdict::Unclear { other_grader: true });
        // The pid still decides.
        assert_eq!(attribute(&file("/shm-4242", 10.5), &spans, gone), Verdict::Made(0));
    }
}

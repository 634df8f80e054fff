//! `grader __probe MODE …` — the grader's own stand-in program, put into a
//! student's pipeline as a stage to report what the stage inherited.
//!
//! Modes:
//! - `report TAG`: one line on stderr (see [`Report`]) —
//!   `probe TAG pid=N fds=0,1,2 sigpipe=default sigign=0 sigblk=0 parent=EXE`
//!   — then copy stdin to stdout;
//! - `report-exit TAG`: the same line, then exit 0 at once without reading
//!   (a stage that finishes while the stages before it still run);
//! - `exit N`: copy stdin to stdout, then exit with status N;
//! - `signal N`: kill itself with signal N.
//!
//! What a process inherited must be read before Rust's runtime changes it
//! (it sets SIGPIPE to SIG_IGN before `main`) and before std opens any
//! descriptor: a constructor in `.init_array` runs before both and keeps a
//! copy of `/proc/self/status` and the descriptor list. It also reads which
//! program the parent runs (`/proc/PPID/exe`) at once, while the process
//! that started the stage is surely still its parent.

use std::io::Write;
use std::sync::OnceLock;

/// The state the process was exec'ed with.
#[derive(Debug, Clone, Default)]
struct AtExec {
    status: String,
    fds: Vec<i32>,
    /// The parent's executable, `?` when it could not be read.
    parent: String,
}

static AT_EXEC: OnceLock<AtExec> = OnceLock::new();

/// Runs before `main` (and before std's runtime init): record the state the
/// process was exec'ed with. Safe code only; std's fs works this early.
/// Registered in `.init_array` by `main.rs` (a static in the binary crate is
/// always linked; one in a library object might be dropped by the linker).
pub extern "C" fn capture_state_at_exec() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut fds: Vec<i32> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for e in dir.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse().ok()) else { continue };
            // Skip the descriptor read_dir itself holds open.
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            if !target.to_string_lossy().ends_with("/fd") {
                fds.push(fd);
            }
        }
    }
    fds.sort();
    // The parent's pid as `/proc` names it: in a PID namespace of its own
    // (see the grader's `pidns`) `getppid()` is a pid of that namespace,
    // while `/proc` is the grader's; `/proc/self/stat` speaks `/proc`'s.
    let ppid = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| {
        let rest = &s[s.rfind(')')? + 1..];
        rest.split_whitespace().nth(1)?.parse::<u32>().ok()
    });
    let parent = ppid
        .and_then(|ppid| std::fs::read_link(format!("/proc/{ppid}/exe")).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "?".into());
    let _ = AT_EXEC.set(AtExec { status, fds, parent });
}

fn mask(status: &str, key: &str) -> u64 {
    status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| u64::from_str_radix(v.trim(), 16).ok()).unwrap_or(0)
}

/// What a probe stage reports: one line on stderr, parsed back by the
/// checks. The parent's path comes last, so a path with spaces in it stays
/// one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub tag: String,
    pub pid: i32,
    /// Descriptors open at exec, ascending.
    pub fds: Vec<i32>,
    pub sigpipe_ignored: bool,
    /// `SigIgn` and `SigBlk` at exec: bit N-1 for signal N.
    pub sigign: u64,
    pub sigblk: u64,
    /// The executable of the process that started this one, as the kernel
    /// names it (`/proc/PPID/exe`); `?` when unreadable.
    pub parent: String,
}

impl Report {
    /// This process's report.
    pub fn of_self(tag: &str) -> Report {
        let at = AT_EXEC.get().cloned().unwrap_or_default();
        let sigign = mask(&at.status, "SigIgn:");
        Report {
            tag: tag.to_string(),
            pid: std::process::id() as i32,
            fds: at.fds,
            sigpipe_ignored: sigign & (1 << (libc::SIGPIPE - 1)) != 0,
            sigign,
            sigblk: mask(&at.status, "SigBlk:"),
            parent: at.parent,
        }
    }

    pub fn line(&self) -> String {
        let fds: Vec<String> = self.fds.iter().map(i32::to_string).collect();
        format!(
            "probe {} pid={} fds={} sigpipe={} sigign={:x} sigblk={:x} parent={}",
            self.tag,
            self.pid,
            fds.join(","),
            if self.sigpipe_ignored { "ignored" } else { "default" },
            self.sigign,
            self.sigblk,
            self.parent
        )
    }

    /// Read a line of [`Self::line`] back; `None` if it is not one.
    pub fn parse(line: &str) -> Option<Report> {
        let rest = line.strip_prefix("probe ")?;
        let (head, parent) = rest.split_once(" parent=")?;
        let mut words = head.split(' ');
        let tag = words.next()?.to_string();
        let mut field = |key: &str| words.next()?.strip_prefix(key)?.strip_prefix('=');
        let pid = field("pid")?.parse().ok()?;
        let fds = field("fds")?;
        let fds =
            if fds.is_empty() { Vec::new() } else { fds.split(',').map(str::parse).collect::<Result<_, _>>().ok()? };
        let sigpipe_ignored = match field("sigpipe")? {
            "ignored" => true,
            "default" => false,
            _ => return None,
        };
        let sigign = u64::from_str_radix(field("sigign")?, 16).ok()?;
        let sigblk = u64::from_str_radix(field("sigblk")?, 16).ok()?;
        if words.next().is_some() {
            return None;
        }
        Some(Report { tag, pid, fds, sigpipe_ignored, sigign, sigblk, parent: parent.to_string() })
    }
}

/// Run the probe; returns the exit status.
pub fn run(args: &[String]) -> u8 {
    let copy = || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::stdout().lock());
    };
    // One write(2) of less than PIPE_BUF bytes: stages report at the same
    // time into one stderr pipe, and lines must not interleave.
    let report = |tag: &str| {
        let _ = std::io::stderr().write_all(format!("{}\n", Report::of_self(tag).line()).as_bytes());
    };
    match args {
        [mode, tag] if mode == "report" => {
            report(tag);
            copy();
            0
        }
        [mode, tag] if mode == "report-exit" => {
            report(tag);
            0
        }
        [mode, n] if mode == "exit" => {
            copy();
            n.parse().unwrap_or(1)
        }
        [mode, n] if mode == "signal" => {
            let sig = n.parse().ok().and_then(|n: i32| nix::sys::signal::Signal::try_from(n).ok());
            if let Some(sig) = sig {
                let _ = nix::sys::signal::raise(sig);
            }
            1
        }
        _ => {
            eprintln!("grader __probe: usage: report TAG | report-exit TAG | exit N | signal N");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_line_reads_back() {
        let r = Report {
            tag: "first".into(),
            pid: 4242,
            fds: vec![0, 1, 2, 5],
            sigpipe_ignored: true,
            sigign: 0x1000,
            sigblk: 0,
            parent: "/home/a b/target/debug/pipeline".into(),
        };
        assert_eq!(
            r.line(),
            "probe first pid=4242 fds=0,1,2,5 sigpipe=ignored sigign=1000 sigblk=0 parent=/home/a b/target/debug/pipeline"
        );
        assert_eq!(Report::parse(&r.line()), Some(r));
        let none = Report {
            fds: Vec::new(),
            ..Report::parse("probe x pid=1 fds=0 sigpipe=default sigign=0 sigblk=0 parent=?").unwrap()
        };
        assert_eq!(Report::parse(&none.line()), Some(none));
        assert_eq!(Report::parse("probe x pid=1 fds=0 sigpipe=maybe sigign=0 sigblk=0 parent=/bin/sh"), None);
        assert_eq!(Report::parse("pipeline: cat: command not found"), None);
    }
}

//! `grader __probe MODE …` — the grader's own stand-in program, put into a
//! student's pipeline as a stage to report what the stage inherited.
//!
//! Modes:
//! - `report TAG`: one line on stderr —
//!   `probe TAG fds=0,1,2 sigpipe=default sigign=0 sigblk=0` — then copy
//!   stdin to stdout;
//! - `exit N`: copy stdin to stdout, then exit with status N;
//! - `signal N`: kill itself with signal N.
//!
//! What a process inherited must be read before Rust's runtime changes it
//! (it sets SIGPIPE to SIG_IGN before `main`) and before std opens any
//! descriptor: a constructor in `.init_array` runs before both and keeps a
//! copy of `/proc/self/status` and the descriptor list.

use std::io::Write;
use std::sync::OnceLock;

static AT_EXEC: OnceLock<(String, Vec<i32>)> = OnceLock::new();

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
    let _ = AT_EXEC.set((status, fds));
}

fn mask(status: &str, key: &str) -> u64 {
    status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| u64::from_str_radix(v.trim(), 16).ok()).unwrap_or(0)
}

/// The report line of `report TAG`.
pub fn report_line(tag: &str) -> String {
    let (status, fds) = AT_EXEC.get().cloned().unwrap_or_default();
    let ign = mask(&status, "SigIgn:");
    let blk = mask(&status, "SigBlk:");
    let sigpipe = if ign & (1 << (libc::SIGPIPE - 1)) != 0 { "ignored" } else { "default" };
    let fds: Vec<String> = fds.iter().map(i32::to_string).collect();
    format!("probe {tag} fds={} sigpipe={sigpipe} sigign={ign:x} sigblk={blk:x}", fds.join(","))
}

/// Run the probe; returns the exit status.
pub fn run(args: &[String]) -> u8 {
    let copy = || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::stdout().lock());
    };
    match args {
        [mode, tag] if mode == "report" => {
            // One write(2) of less than PIPE_BUF bytes: stages report at the
            // same time into one stderr pipe, and lines must not interleave.
            let _ = std::io::stderr().write_all(format!("{}\n", report_line(tag)).as_bytes());
            copy();
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
            eprintln!("grader __probe: usage: report TAG | exit N | signal N");
            2
        }
    }
}

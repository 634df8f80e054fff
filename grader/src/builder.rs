//! Building the exercise (or solution) crates with Cargo.
//!
//! One `cargo build --keep-going --message-format=json` for all selected
//! crates: a compile error in one crate does not stop the others, and the
//! JSON messages tell, per crate, which executables were produced and what
//! the compiler said.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use serde::Deserialize;

use crate::harness::deadline::Deadline;
use crate::harness::reaper::{self, SpawnError};
use crate::harness::spawn;

/// Per crate folder (`exercises/signals`): its executables by binary name,
/// or the compiler's error output.
pub type Built = BTreeMap<PathBuf, Result<BTreeMap<String, PathBuf>, String>>;

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
}

#[derive(Deserialize)]
struct Diagnostic {
    level: String,
    rendered: Option<String>,
}

/// Build the packages in `crates` (their folders) of the workspace at
/// `root` into `target_dir`, within `deadline`.
pub fn build(
    root: &Path,
    crates: &[(PathBuf, String)],
    target_dir: &Path,
    deadline: Duration,
) -> Result<Built, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--keep-going", "--message-format=json", "--target-dir"])
        .arg(target_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (_, package) in crates {
        cmd.args(["-p", package]);
    }
    spawn::reset_signals(&mut cmd);
    // Tracked: orphan reaping must leave cargo's exit status to us. And not
    // started while the grader is stopping: nothing would kill this cargo.
    let mut child = reaper::spawn_tracked(&mut cmd).map_err(|e| match e {
        SpawnError::Stopping => "the grader is stopping".to_string(),
        SpawnError::Io(e) => format!("cannot run cargo: {e}"),
    })?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    // A build script that loops forever must not hang the grader.
    // Cargo leads a process group of its own, so that rustc and build
    // scripts go with it.
    let timed_out = child.wait_until(Deadline::after(deadline)).is_none();
    if timed_out {
        let _ = killpg(child.pid(), Signal::SIGKILL);
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| format!("cargo: {e}"))?;
    drop(child);
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();

    let mut bins: BTreeMap<PathBuf, BTreeMap<String, PathBuf>> = BTreeMap::new();
    let mut errors: BTreeMap<PathBuf, String> = BTreeMap::new();
    for line in out.lines() {
        let Ok(msg) = serde_json::from_str::<Message>(line) else { continue };
        let Some(dir) = msg.manifest_path.as_deref().and_then(Path::parent).map(Path::to_path_buf) else {
            continue;
        };
        match msg.reason.as_str() {
            "compiler-artifact" => {
                if let (Some(exe), Some(t)) = (msg.executable, msg.target) {
                    bins.entry(dir).or_default().insert(t.name, exe);
                }
            }
            "compiler-message" => {
                if let Some(d) = msg.message.filter(|d| d.level == "error") {
                    errors.entry(dir).or_default().push_str(d.rendered.as_deref().unwrap_or(""));
                }
            }
            _ => {}
        }
    }
    let mut built = Built::new();
    for (dir, _) in crates {
        let dir = root.join(dir);
        let key = dir.canonicalize().unwrap_or(dir.clone());
        let result = match (errors.remove(&key), bins.remove(&key)) {
            _ if timed_out => Err(format!(
                "error: the build did not finish within {} s and was stopped (a build script or proc macro that never ends?)",
                deadline.as_secs()
            )),
            (Some(e), _) => Err(e),
            (None, Some(b)) if !b.is_empty() => Ok(b),
            _ if !status.success() => Err(tail(&err, 40)),
            _ => Err("cargo built no executable for this crate".into()),
        };
        built.insert(dir, result);
    }
    Ok(built)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("Compiling")).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

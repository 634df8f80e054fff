//! `--submission DIR`: grade a student's checkout with the instructor's
//! grader and checks.
//!
//! Only the exercise crates of the checkout (`DIR/exercises/<id>/`) are
//! used. They are copied into a private scratch workspace whose root
//! manifest and `Cargo.lock` come from the instructor's repository, so the
//! student's copy of the grader, tests, workflows, `.cargo/config.toml` and
//! `rust-toolchain.toml` never take part. One crate whose manifest is
//! broken or renamed costs only that exercise.
//!
//! The scratch workspace lies *outside* the instructors' repository (under
//! the user's cache folder, see [`scratch_base`]) and holds nothing but the
//! staged crates and a build cache: no `solutions/`, no `tests/`. A staged
//! crate may read only its own files: a manifest that names a path outside
//! the crate's folder ([`manifest`]) or Rust code that includes one
//! ([`sources`]) is refused, and the exercise scores as if it had no code.
//!
//! Building from scratch would compile `nix` for every submission; instead
//! the scratch target directory starts as a copy of a *warm* one (the
//! instructor's own skeletons, built once under `target/ipc-lab/warm/`), and
//! Cargo rebuilds only the student's crates.
//!
//! Build scripts and proc macros of a student's crate still run on this
//! machine when it builds, as the grader's user, and can read whatever that
//! user can: grade untrusted submissions in a throwaway container or VM
//! (INSTRUCTORS.md, "Isolation, and its limits").

mod manifest;
mod sources;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::exercises;
use crate::request::Side;

/// A checkout is graded by its students' crates only, never its solutions.
const SIDE: Side = Side::Exercises;

/// Most bytes copied from one checkout (a hostile checkout must not fill
/// the disk).
const MAX_BYTES: u64 = 64 << 20;

/// How the reason for a refused crate starts: it is the crate's build
/// error, and the gradebook marks the submission's row `error` for it.
pub const REFUSED: &str = "error: refused: ";

/// A staged submission: a scratch workspace, removed when dropped.
pub struct Staged {
    dir: tempfile::TempDir,
    /// Exercises whose crate could not be taken, and why.
    pub problems: BTreeMap<String, String>,
}

impl Staged {
    /// The scratch workspace's root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// Copy the exercise crates of the checkout `dir` into a scratch workspace
/// of the instructor's workspace at `root`.
pub fn stage(root: &Path, dir: &Path) -> Result<Staged, String> {
    let what = format!("--submission {}", dir.display());
    let meta = fs::metadata(dir).map_err(|e| format!("{what}: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("{what}: not a directory"));
    }
    let theirs = dir.join(SIDE.dir());
    if !theirs.is_dir() {
        return Err(format!("{what}: no exercises/ folder (expected a checkout of the course repository)"));
    }
    let base = scratch_base(root)?;
    remove_stale(&base);
    let scratch = tempfile::Builder::new()
        .prefix(&format!("sub-{}-", std::process::id()))
        .tempdir_in(&base)
        .map_err(|e| format!("cannot create a scratch workspace in {}: {e}", base.display()))?;
    write_workspace(root, scratch.path())?;
    if let Some(warm) = warm_target(root) {
        // Shared: copies may run side by side, never during a rebuild.
        let lock = fs::OpenOptions::new().write(true).open(warm.with_file_name(".lock")).ok();
        let _lock = lock.and_then(|f| nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockShared).ok());
        seed_target(&warm, &scratch.path().join("target"));
    }

    let mut problems = BTreeMap::new();
    let mut budget = MAX_BYTES;
    for ex in exercises::all() {
        let from = theirs.join(ex.dir());
        if !from.join("Cargo.toml").is_file() {
            continue; // reported as a missing crate when graded
        }
        // Judged as staged: what is checked is what gets built.
        let to = scratch.path().join(SIDE.crate_dir(&ex));
        let verdict = copy_tree(&from, &to, &mut budget)
            .map_err(|e| format!("could not copy {}: {e}", SIDE.crate_dir(&ex)))
            .and_then(|()| manifest::check(&to, ex.id))
            .and_then(|()| sources::check(&to, ex.id));
        if let Err(why) = verdict {
            problems.insert(ex.id.to_string(), why);
            let _ = fs::remove_dir_all(&to);
        }
    }
    Ok(Staged { dir: scratch, problems })
}

/// Where scratch workspaces are made: `$XDG_CACHE_HOME/ipc-lab/submissions`
/// (by default `~/.cache/…`), else the system's temporary folder. Not
/// under the repository, whose `solutions/` a relative path would find;
/// and not directly in a shared `/tmp`, where anyone could plant a
/// `.cargo/config.toml` in a parent folder that Cargo would read.
pub fn scratch_base(root: &Path) -> Result<PathBuf, String> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| std::env::var_os("HOME").and_then(absolute).map(|h| h.join(".cache")));
    let base = match cache {
        Some(cache) => cache.join("ipc-lab").join("submissions"),
        None => std::env::temp_dir()
            .join(format!("ipc-lab-submissions-{}", fs::metadata("/proc/self").map_or(0, |m| m.uid()))),
    };
    fs::create_dir_all(&base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    let real = base.canonicalize().map_err(|e| format!("{}: {e}", base.display()))?;
    if real.starts_with(root) {
        return Err(format!(
            "the scratch folder for submissions, {}, lies inside the instructors' repository {}: set XDG_CACHE_HOME to a folder outside it",
            real.display(),
            root.display()
        ));
    }
    Ok(real)
}

/// Whether `path` (from a manifest or a source file), taken from the folder
/// `from` inside a crate (both relative to the crate's folder), stays inside
/// that crate's folder at every step. Judged by the words alone: a staged
/// crate holds no symlinks.
fn inside(from: &Path, path: &str) -> bool {
    let mut depth = 0usize;
    for part in from.components().chain(Path::new(path).components()) {
        match part {
            Component::CurDir => {}
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth > 0 => depth -= 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// The one-line reason a staged crate is refused: `file` (and `line`) of
/// the crate, then `what` it names.
fn refusal(file: &str, line: Option<usize>, what: &str) -> String {
    let at = line.map(|l| format!(":{l}")).unwrap_or_default();
    format!("{REFUSED}{file}{at}: {what}; a submission is built from its own files only")
}

/// Scratch workspaces of graders that are gone: a grader stopped by a
/// signal (Ctrl-C, the gradebook's deadline) exits without unwinding, so
/// its scratch folder is left for the next grader to remove.
fn remove_stale(base: &Path) {
    let Ok(rd) = fs::read_dir(base) else { return };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("sub-").and_then(|r| r.split('-').next()).and_then(|p| p.parse().ok()) else {
            continue;
        };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH);
        if gone {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The instructor's root manifest with the workspace narrowed to
/// `exercises/*`, and the instructor's lock file.
fn write_workspace(root: &Path, to: &Path) -> Result<(), String> {
    let path = root.join("Cargo.toml");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut manifest: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
    let ws = manifest
        .get_mut("workspace")
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| format!("{}: no [workspace]", path.display()))?;
    ws.insert("members".into(), toml::Value::Array(vec![format!("{}/*", SIDE.dir()).into()]));
    ws.remove("default-members");
    ws.remove("exclude");
    let out = format!(
        "# Scratch workspace of the ipc-lab grader: the instructor's manifest, narrowed to the exercises.\n{}",
        toml::to_string(&manifest).map_err(|e| e.to_string())?
    );
    write_if_changed(&to.join("Cargo.toml"), out.as_bytes())?;
    if let Ok(lock) = fs::read(root.join("Cargo.lock")) {
        write_if_changed(&to.join("Cargo.lock"), &lock)?;
    }
    fs::create_dir_all(to.join(SIDE.dir())).map_err(|e| e.to_string())
}

/// Write only when the content differs, so Cargo's mtime-based freshness
/// sees an unchanged file as unchanged.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Copy a crate folder: regular files and folders only (no symlinks, which
/// could point anywhere), without build output and version control. Files
/// whose content is already there are left untouched (the warm workspace
/// is synced on every run and must not look changed to Cargo).
fn copy_tree(from: &Path, to: &Path, budget: &mut u64) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let kind = entry.file_type()?;
        let dest = to.join(&name);
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest, budget)?;
        } else if kind.is_file() {
            let len = entry.metadata()?.len();
            *budget = budget.checked_sub(len).ok_or_else(|| {
                std::io::Error::other(format!("the checkout's crates are larger than {} MiB", MAX_BYTES >> 20))
            })?;
            write_if_changed(&dest, &fs::read(entry.path())?).map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}

/// Build the instructor's own exercise crates once into
/// `target/ipc-lab/warm/target`, so that every submission's build can start
/// with compiled dependencies. `None` if that fails (each submission then
/// builds from scratch: slower, same verdict).
pub fn warm_target(root: &Path) -> Option<PathBuf> {
    let base = root.join("target").join("ipc-lab").join("warm");
    fs::create_dir_all(&base).ok()?;
    // One builder at a time; graders in parallel wait here.
    let lock = fs::OpenOptions::new().create(true).truncate(false).write(true).open(base.join(".lock")).ok()?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).ok()?;
    let ws = base.join("ws");
    fs::create_dir_all(&ws).ok()?;
    write_workspace(root, &ws).ok()?;
    let mut crates = Vec::new();
    for ex in exercises::all() {
        let from = root.join(SIDE.crate_dir(&ex));
        if !from.join("Cargo.toml").is_file() {
            continue;
        }
        let mut unlimited = u64::MAX; // the instructor's own crates
        copy_tree(&from, &ws.join(SIDE.crate_dir(&ex)), &mut unlimited).ok()?;
        crates.push((PathBuf::from(SIDE.crate_dir(&ex)), SIDE.package(&ex)));
    }
    let target = base.join("target");
    crate::builder::build(&ws, &crates, &target, Duration::from_secs(900)).ok()?;
    Some(target)
}

/// Start `to` as a copy of the warm target (timestamps kept, which Cargo's
/// freshness check needs), without the exercise crates' own fingerprints:
/// the skeletons built there must never pass for the student's crates,
/// whatever the files' timestamps say. A failed copy only costs build time.
fn seed_target(warm: &Path, to: &Path) {
    let ok = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(warm)
        .arg(to)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = fs::remove_dir_all(to);
        return;
    }
    for profile in ["debug", "release"] {
        let Ok(rd) = fs::read_dir(to.join(profile).join(".fingerprint")) else { continue };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let package = name.rsplit_once('-').map_or(name.as_str(), |(p, _)| p);
            if exercises::all().iter().any(|e| e.id == package) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

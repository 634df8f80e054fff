//! Helpers for the integration tests that prove the grader right: running
//! the real `grader` binary, reading its JSON report, and building mutants
//! (copies of a reference solution with one realistic student bug).
//!
//! Mutants live in `tests/mutants/<exercise>/<name>.toml` as exact
//! find/replace edits against `solutions/<exercise>/`, so each reads as the
//! diff of one bug and cannot drift silently from the solution: an edit
//! whose `find` text no longer occurs exactly once fails the build of the
//! mutants with a clear message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

/// One exercise of the grader's registry, as far as the tests need it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: &'static str,
    pub bins: &'static [&'static str],
    /// Check ids, in the registry's order.
    pub checks: Vec<&'static str>,
}

/// Every exercise the grader knows, in course order: the one list the
/// tests loop over, so adding an exercise needs no edit here.
pub fn registry() -> Vec<Listed> {
    grader::exercises::all()
        .into_iter()
        .map(|e| Listed { id: e.id, bins: e.bins, checks: e.checks.iter().map(|c| c.id).collect() })
        .collect()
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The `grader` executable, built once per test process.
pub fn grader() -> &'static Path {
    static GRADER: OnceLock<PathBuf> = OnceLock::new();
    GRADER.get_or_init(|| {
        let status = Command::new(cargo())
            .current_dir(root())
            .args(["build", "--quiet", "-p", "grader", "--bin", "grader"])
            .status()
            .expect("run cargo");
        assert!(status.success(), "building the grader failed");
        root().join("target/debug/grader")
    })
}

/// A `grader` command with a generous time scale: the test suite runs
/// several graders at once on two cores, and only upper bounds scale.
pub fn grader_cmd() -> Command {
    let mut cmd = Command::new(grader());
    cmd.current_dir(root()).env("GRADER_TIME_SCALE", "2").env_remove("NO_COLOR");
    cmd
}

/// Run the grader with `args` plus `--format json`; return exit code and
/// the parsed report.
pub fn grade_json(args: &[&str]) -> (i32, Report) {
    let out = grader_cmd().args(args).args(["--format", "json"]).output().expect("run grader");
    let code = out.status.code().unwrap_or(-1);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "grader printed no JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, Report(json))
}

/// The grader's JSON report, with accessors the tests need.
#[derive(Debug, Clone)]
pub struct Report(pub Value);

impl Report {
    pub fn score(&self) -> u64 {
        self.0["score"].as_u64().expect("score")
    }
    pub fn max_score(&self) -> u64 {
        self.0["max_score"].as_u64().expect("max_score")
    }
    pub fn exercise(&self, id: &str) -> &Value {
        self.0["exercises"]
            .as_array()
            .expect("exercises[]")
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("no exercise {id} in report"))
    }
    /// check id → (status, message) of one exercise.
    pub fn checks(&self, exercise: &str) -> BTreeMap<String, (String, String)> {
        self.exercise(exercise)["checks"]
            .as_array()
            .expect("checks[]")
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_string(),
                    (c["status"].as_str().unwrap().to_string(), c["message"].as_str().unwrap_or("").to_string()),
                )
            })
            .collect()
    }
}

/// One mutant: a realistic bug, as edits to a reference solution.
#[derive(Debug, Deserialize)]
pub struct Mutant {
    #[serde(skip)]
    pub exercise: String,
    #[serde(skip)]
    pub name: String,
    pub bug: String,
    pub catches: Vec<String>,
    #[serde(default)]
    pub may_fail: Vec<String>,
    pub edit: Vec<Edit>,
}

#[derive(Debug, Deserialize)]
pub struct Edit {
    #[serde(default = "main_rs")]
    pub file: String,
    pub find: String,
    pub replace: String,
}

impl Edit {
    /// Replace the one occurrence of `find` in `text`; `Err(n)` when it
    /// occurs `n` times instead (an edit must say exactly where it goes).
    pub fn apply(&self, text: &mut String) -> Result<(), usize> {
        match text.matches(&self.find).count() {
            1 => {
                *text = text.replacen(&self.find, &self.replace, 1);
                Ok(())
            }
            n => Err(n),
        }
    }
}

fn main_rs() -> String {
    "src/main.rs".into()
}

impl Mutant {
    pub fn load(path: &Path) -> Mutant {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut m: Mutant = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        m.exercise = path.parent().and_then(Path::file_name).unwrap().to_string_lossy().into_owned();
        m.name = path.file_stem().unwrap().to_string_lossy().into_owned();
        m
    }

    /// Every mutant under `tests/mutants/`.
    pub fn all() -> Vec<Mutant> {
        let mut out = Vec::new();
        let dir = root().join("tests/mutants");
        let mut exercises: Vec<_> = std::fs::read_dir(&dir).expect("tests/mutants").flatten().collect();
        exercises.sort_by_key(|e| e.file_name());
        for ex in exercises {
            let mut files: Vec<_> = std::fs::read_dir(ex.path()).expect("mutant dir").flatten().collect();
            files.sort_by_key(|e| e.file_name());
            for f in files {
                if f.path().extension().is_some_and(|e| e == "toml") {
                    out.push(Mutant::load(&f.path()));
                }
            }
        }
        out
    }

    /// Binary target name of this mutant in the generated crate.
    pub fn bin_name(&self) -> String {
        format!("{}--{}", self.exercise, self.name)
    }

    /// The solution's sources with this mutant's edits applied:
    /// path relative to the solution crate → contents.
    pub fn sources(&self) -> Result<BTreeMap<String, String>, String> {
        let crate_dir = root().join("solutions").join(&self.exercise);
        let mut files = BTreeMap::new();
        for entry in walk(&crate_dir.join("src")) {
            let rel = entry.strip_prefix(&crate_dir).unwrap().to_string_lossy().into_owned();
            files.insert(rel, std::fs::read_to_string(&entry).map_err(|e| e.to_string())?);
        }
        for edit in &self.edit {
            let text = files
                .get_mut(&edit.file)
                .ok_or_else(|| format!("mutant {}/{}: no file {}", self.exercise, self.name, edit.file))?;
            edit.apply(text).map_err(|n| {
                format!(
                    "mutant {}/{}: its `find` text occurs {n} times in solutions/{}/{} (must be exactly once); \
                     update the mutant to the solution",
                    self.exercise, self.name, self.exercise, edit.file
                )
            })?;
        }
        Ok(files)
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Write `contents` to `path` only if it differs, atomically: concurrent
/// test processes write the same files, and an unchanged file must keep
/// its mtime so Cargo does not rebuild.
fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The binaries of `solutions/<exercise>`: (name, path relative to the
/// crate).
pub fn solution_bins(exercise: &str) -> Vec<(String, String)> {
    crate_bins(&root().join("solutions").join(exercise))
}

/// The binaries of the crate in `dir`: (name, path relative to the crate),
/// from its `[[bin]]` entries or, without them, `src/bin/*.rs`.
pub fn crate_bins(dir: &Path) -> Vec<(String, String)> {
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
    let mut bins: Vec<(String, String)> = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .map(|a| {
            a.iter()
                .map(|b| {
                    let name = b["name"].as_str().unwrap().to_string();
                    let path = b.get("path").and_then(|p| p.as_str()).map(String::from);
                    let path = path.unwrap_or_else(|| format!("src/bin/{name}.rs"));
                    (name, path)
                })
                .collect()
        })
        .unwrap_or_default();
    if bins.is_empty() {
        for e in std::fs::read_dir(dir.join("src/bin")).into_iter().flatten().flatten() {
            let name = e.path().file_stem().unwrap().to_string_lossy().into_owned();
            bins.push((name.clone(), format!("src/bin/{name}.rs")));
        }
    }
    bins.sort();
    bins
}

/// Build every mutant (once per test process) into one generated crate
/// under `target/mutants/`; return mutant → binary name → executable. A
/// mutant of a crate with several binaries gets all of them, the edited
/// one and the untouched rest.
pub fn mutant_bins() -> &'static BTreeMap<String, BTreeMap<String, PathBuf>> {
    static BINS: OnceLock<BTreeMap<String, BTreeMap<String, PathBuf>>> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = root().join("target/mutants");
        let mutants = Mutant::all();
        let mut manifest = String::from(
            "# Generated by tests/src/lib.rs from tests/mutants/*/*.toml; do not edit.\n\
             [package]\nname = \"ipc-lab-mutants\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\
             autobins = false\n\n[workspace]\n\n[lints.rust]\nwarnings = \"allow\"\n\n",
        );
        manifest.push_str(&dependencies());
        let mut out = BTreeMap::new();
        for m in &mutants {
            let sources = m.sources().unwrap_or_else(|e| panic!("{e}"));
            let base = dir.join("src").join(m.bin_name());
            for (rel, text) in &sources {
                write_if_changed(&base.join(rel), text);
            }
            let mut exes = BTreeMap::new();
            for (bin, path) in solution_bins(&m.exercise) {
                let target = format!("{}--{bin}", m.bin_name());
                manifest.push_str(&format!("\n[[bin]]\nname = \"{target}\"\npath = \"src/{}/{path}\"\n", m.bin_name()));
                exes.insert(bin, dir.join("target/debug").join(&target));
            }
            out.insert(m.bin_name(), exes);
        }
        write_if_changed(&dir.join("Cargo.toml"), &manifest);
        // The workspace's lock file pins the same nix as the solutions, and
        // lets Cargo build without touching the network.
        let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock");
        write_if_changed(&dir.join("Cargo.lock"), &lock);
        let out_cmd = Command::new(cargo())
            .current_dir(&dir)
            .args(["build", "--quiet", "--bins", "--offline"])
            .output()
            .expect("run cargo");
        assert!(out_cmd.status.success(), "building the mutants failed:\n{}", String::from_utf8_lossy(&out_cmd.stderr));
        out
    })
}

/// Build the crate of correct Rust designs `tests/corpus-rust/<name>` (once
/// per test process) in a copy under `target/corpus-rust/<name>`, with the
/// workspace's lock file (the same zbus as the solutions, no network);
/// return binary name → executable. The crate is no workspace member: its
/// programs are written as a student might, outside the project's lints.
pub fn rust_corpus_bins(name: &str) -> BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<std::sync::Mutex<BTreeMap<String, BTreeMap<String, PathBuf>>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(bins) = built.get(name) {
        return bins.clone();
    }
    let from = root().join("tests/corpus-rust").join(name);
    let dir = root().join("target/corpus-rust").join(name);
    write_if_changed(&dir.join("Cargo.toml"), &std::fs::read_to_string(from.join("Cargo.toml")).unwrap());
    for (_, path) in crate_bins(&from) {
        write_if_changed(&dir.join(&path), &std::fs::read_to_string(from.join(&path)).unwrap());
    }
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock");
    write_if_changed(&dir.join("Cargo.lock"), &lock);
    let out = Command::new(cargo())
        .current_dir(&dir)
        .args(["build", "--quiet", "--bins", "--offline"])
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building tests/corpus-rust/{name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bins: BTreeMap<String, PathBuf> =
        crate_bins(&from).into_iter().map(|(bin, _)| (bin.clone(), dir.join("target/debug").join(bin))).collect();
    built.insert(name.to_string(), bins.clone());
    bins
}

/// `[dependencies]` for the mutants crate: every dependency of every
/// solution crate, with the union of their features.
fn dependencies() -> String {
    let mut features: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let workspace: toml::Value = toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let ws_deps = &workspace["workspace"]["dependencies"];
    for entry in std::fs::read_dir(root().join("solutions")).unwrap().flatten() {
        let manifest: toml::Value =
            toml::from_str(&std::fs::read_to_string(entry.path().join("Cargo.toml")).unwrap()).unwrap();
        if let Some(deps) = manifest.get("dependencies").and_then(|d| d.as_table()) {
            for (name, spec) in deps {
                let f = features.entry(name.clone()).or_default();
                if let Some(list) = spec.get("features").and_then(|f| f.as_array()) {
                    f.extend(list.iter().filter_map(|v| v.as_str().map(String::from)));
                }
            }
        }
    }
    let mut s = String::from("[dependencies]\n");
    for (name, mut feats) in features {
        feats.sort();
        feats.dedup();
        let version = match &ws_deps[&name] {
            toml::Value::String(v) => v.clone(),
            t => t["version"].as_str().unwrap().to_string(),
        };
        let quoted: Vec<String> = feats.iter().map(|f| format!("\"{f}\"")).collect();
        s.push_str(&format!(
            "{name} = {{ version = \"{version}\", default-features = false, features = [{}] }}\n",
            quoted.join(", ")
        ));
    }
    s
}

/// Where a crate of a made-up student checkout comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// `solutions/<id>`, its package renamed to `<id>` as in `exercises/`.
    Solution,
    /// `exercises/<id>`: the unedited skeleton.
    Skeleton,
}

/// Make a student checkout at `dir` with `exercises/<id>` for each crate
/// given; returns the crate folders by id for further edits.
pub fn make_submission(dir: &Path, crates: &[(&str, From)]) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for &(id, from) in crates {
        let to = dir.join("exercises").join(id);
        let src = match from {
            From::Solution => root().join("solutions").join(id),
            From::Skeleton => root().join("exercises").join(id),
        };
        copy_tree(&src, &to);
        if from == From::Solution {
            let manifest = to.join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest).unwrap();
            let renamed = text.replacen(&format!("name = \"{id}-solution\""), &format!("name = \"{id}\""), 1);
            assert_ne!(text, renamed, "solutions/{id}/Cargo.toml names its package `{id}-solution`");
            std::fs::write(&manifest, renamed).unwrap();
        }
        out.insert(id.to_string(), to);
    }
    out
}

/// Copy a folder recursively (without `target/`).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_name() == "target" {
            continue;
        }
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Make `dir` a workspace with only the exercise crates `exercises`, for
/// tests that must edit them (`--root DIR`). Its manifest is the real one
/// with `exercises/*` as the only members — same `[workspace.package]`,
/// dependencies and profiles, same `Cargo.lock` — so Cargo resolves
/// neither the grader nor the solutions, and a first build of `signals`
/// compiles just nix and the crate (a few seconds).
pub fn minimal_workspace(dir: &Path, exercises: &[&str]) {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let mut manifest: toml::Table = toml::from_str(&text).expect("the workspace manifest");
    let workspace = manifest.get_mut("workspace").and_then(toml::Value::as_table_mut).expect("[workspace]");
    workspace.insert("members".into(), toml::Value::Array(vec!["exercises/*".into()]));
    workspace.remove("default-members");
    std::fs::write(dir.join("Cargo.toml"), toml::to_string(&manifest).unwrap()).unwrap();
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    for id in exercises {
        copy_tree(&root().join("exercises").join(id), &dir.join("exercises").join(id));
    }
}

/// Running processes (not zombies) whose environment carries a token of
/// the grader with pid `grader`: what its student programs left behind.
pub fn token_holders(grader: u32) -> Vec<String> {
    let marker = format!("IPC_LAB_TOKEN={grader}-");
    processes(|pid, _| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v.starts_with(marker.as_bytes())))
    })
}

/// Running processes (not zombies) in the process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<String> {
    processes(|_, pgrp| pgrp == pgid)
}

/// `pid (comm)` of every process that is not a zombie and matches `want`
/// (called with its pid and process group).
fn processes(want: impl Fn(u32, u32) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // `pid (comm) state ppid pgrp …`; comm may contain anything but
        // ends at the last `)`.
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(&state), Some(pgrp)) = (fields.first(), fields.get(2).and_then(|p| p.parse().ok())) else {
            continue;
        };
        if state != "Z" && state != "X" && want(pid, pgrp) {
            let comm = head.split_once(" (").map_or("?", |(_, c)| c);
            out.push(format!("{pid} ({comm})"));
        }
    }
    out
}

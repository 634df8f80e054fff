//! The corpus of correct designs — the mirror of the mutants. Mutants prove
//! that each check catches a bug in the reference solution; the corpus
//! proves that the checks judge behaviour, not one design: every program in
//! `tests/corpus/<exercise>/<name>.c`, written from the exercise's contract
//! alone, must score full marks three times in a row, and every shortcut
//! program (one that passes without doing the exercise) must fail the checks
//! its header names, with a message saying what the exercise requires.
//!
//! The header format is described in the corpus README the helpers share:
//!
//! ```c
//! // corpus: exercise=pipeline bin=pipeline
//! // design: waits for the stages in pipeline order
//! // checks: server-          (optional: only checks whose id starts with this)
//! // expect: full             (or: expect: fail CHECK[,CHECK...] | MESSAGE FRAGMENT)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipc_lab_tests::{grade_json, root};
use rstest::rstest;

/// Gradings in a row a correct program must pass (issue 10: 3/3).
const RUNS: usize = 3;

/// How many programs of `expect: full` every binary of the corpus needs.
const DESIGNS_PER_BINARY: usize = 4;

/// The compiler and flags every corpus program must build with, warning-free.
const CC: &str = "cc";
const CFLAGS: &[&str] = &["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"];
const LIBS: &[&str] = &["-lrt"];

#[derive(Debug, PartialEq)]
enum Expect {
    /// Every graded check passes (a skipped check counts as passed).
    Full,
    /// Each of `checks` fails, and its message contains `fragment`.
    Fail { checks: Vec<String>, fragment: String },
}

#[derive(Debug)]
struct Header {
    exercise: String,
    bin: String,
    design: String,
    checks: Option<String>,
    expect: Expect,
}

/// Read the `// key: value` lines at the top of a corpus program.
fn parse_header(text: &str) -> Result<Header, String> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.strip_prefix("// ").and_then(|l| l.split_once(": ")) else { break };
        if !matches!(key, "corpus" | "design" | "checks" | "expect") {
            break;
        }
        if fields.insert(key, value.trim()).is_some() {
            return Err(format!("`// {key}:` appears twice"));
        }
    }
    let field = |key: &str| fields.get(key).copied().ok_or_else(|| format!("no `// {key}:` line in the header"));
    let mut exercise = None;
    let mut bin = None;
    for pair in field("corpus")?.split_whitespace() {
        match pair.split_once('=') {
            Some(("exercise", v)) => exercise = Some(v.to_string()),
            Some(("bin", v)) => bin = Some(v.to_string()),
            _ => return Err(format!("`// corpus:` has `{pair}`; expected exercise=ID bin=NAME")),
        }
    }
    let expect = match field("expect")? {
        "full" => Expect::Full,
        other => {
            let rest = other.strip_prefix("fail ").ok_or_else(|| format!("`// expect: {other}`: full or fail"))?;
            let (checks, fragment) =
                rest.split_once(" | ").ok_or_else(|| "`// expect: fail CHECK[,CHECK] | FRAGMENT`".to_string())?;
            let checks: Vec<String> = checks.split(',').map(|c| c.trim().to_string()).collect();
            if checks.iter().any(String::is_empty) || fragment.trim().is_empty() {
                return Err(format!("`// expect: {other}` names an empty check or fragment"));
            }
            Expect::Fail { checks, fragment: fragment.trim().to_string() }
        }
    };
    Ok(Header {
        exercise: exercise.ok_or("`// corpus:` without exercise=")?,
        bin: bin.ok_or("`// corpus:` without bin=")?,
        design: field("design")?.to_string(),
        checks: fields.get("checks").map(|c| c.to_string()),
        expect,
    })
}

/// Why the corpus cannot be built here, if it cannot: no C compiler.
fn no_compiler() -> Option<String> {
    match Command::new(CC).arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`{CC} --version` failed: {}", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Some(format!("no C compiler `{CC}`: {e}")),
    }
}

/// Compile `source` to `dir/bin` with the corpus build line.
fn compile(source: &Path, bin: &str, dir: &Path) -> PathBuf {
    let exe = dir.join(bin);
    let out = Command::new(CC)
        .args(CFLAGS)
        .arg("-o")
        .arg(&exe)
        .arg(source)
        .args(LIBS)
        .output()
        .unwrap_or_else(|e| panic!("run {CC}: {e}"));
    let diagnostics = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && diagnostics.trim().is_empty(),
        "{} does not build warning-free with `{CC} {} -o {bin} FILE {}`:\n{diagnostics}",
        source.display(),
        CFLAGS.join(" "),
        LIBS.join(" ")
    );
    exe
}

/// Grade `exe` as the header's binary; return check id → (status, message).
fn grade(header: &Header, exe: &Path) -> BTreeMap<String, (String, String)> {
    let bin_arg = format!("{}={}", header.bin, exe.display());
    let mut args = vec![header.exercise.as_str(), "--bin", &bin_arg];
    if let Some(pattern) = &header.checks {
        args.extend(["--check", pattern]);
    }
    let (_, report) = grade_json(&args);
    // `--check` matches anywhere in an id (`server-` also picks
    // `client-server-closes-first`); the header means a prefix.
    let mut checks = report.checks(&header.exercise);
    if let Some(prefix) = &header.checks {
        checks.retain(|id, _| id.starts_with(prefix.as_str()));
    }
    assert!(!checks.is_empty(), "no check of {} matched {:?}", header.exercise, header.checks);
    checks
}

fn check_program(path: PathBuf) {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = parse_header(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Some(reason) = no_compiler() {
        eprintln!("skipped {}: {reason}", path.display());
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = compile(&path, &header.bin, dir.path());
    judge(&path, &header, &exe);
}

/// Grade the corpus program at `path`, built as `exe`, as its header says.
fn judge(path: &Path, header: &Header, exe: &Path) {
    let name = path.strip_prefix(root().join("tests")).unwrap_or(path).display().to_string();
    match &header.expect {
        Expect::Full => {
            for run in 1..=RUNS {
                let failed: Vec<String> = grade(header, exe)
                    .into_iter()
                    .filter(|(_, (status, _))| status != "passed" && status != "skipped")
                    .map(|(id, (status, message))| format!("{id} ({status}):\n{message}"))
                    .collect();
                assert!(
                    failed.is_empty(),
                    "{name} ({}) is a correct design but failed in grading run {run} of {RUNS}:\n\n{}",
                    header.design,
                    failed.join("\n\n")
                );
            }
        }
        Expect::Fail { checks: wanted, fragment } => {
            let checks = grade(header, exe);
            let mut problems = Vec::new();
            for id in wanted {
                match checks.get(id) {
                    None => problems.push(format!("names unknown check {id}")),
                    Some((status, _)) if status != "failed" => problems.push(format!("{id} {status}; it must fail")),
                    Some((_, message)) if !message.contains(fragment.as_str()) => {
                        problems.push(format!("{id} failed, but its message lacks `{fragment}`:\n{message}"))
                    }
                    Some(_) => {}
                }
            }
            assert!(
                problems.is_empty(),
                "{name} ({}) must fail {} with `{fragment}`:\n{}",
                header.design,
                wanted.join(", "),
                problems.join("\n")
            );
        }
    }
}

/// One test per corpus program, named after its file.
#[rstest]
fn corpus_program(#[files("corpus/*/*.c")] path: PathBuf) {
    check_program(path);
}

/// A program of the corpus written as another one with a few edits
/// (`tests/corpus/<exercise>/<name>.toml`: a one-bug or shortcut variant):
/// the `base` program's leading comment block replaced by `header`, then
/// each `[[edit]]`'s `find` (exactly once in the base) replaced.
#[derive(Debug, serde::Deserialize)]
struct Derived {
    base: String,
    header: String,
    edit: Vec<ipc_lab_tests::Edit>,
}

/// The source of the derived program at `path`.
fn derived_source(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let d: Derived = toml::from_str(&text).map_err(|e| e.to_string())?;
    let base_path = path.with_file_name(&d.base);
    let base = std::fs::read_to_string(&base_path).map_err(|e| format!("{}: {e}", base_path.display()))?;
    let body: String = base.split_inclusive('\n').skip_while(|l| l.starts_with("//")).collect();
    let mut source = d.header + &body;
    for (i, edit) in d.edit.iter().enumerate() {
        edit.apply(&mut source)
            .map_err(|n| format!("edit {}: its `find` occurs {n} times in {} (must be once)", i + 1, d.base))?;
    }
    Ok(source)
}

/// One test per derived corpus program, named after its file.
#[rstest]
fn derived_corpus_program(#[files("corpus/*/*.toml")] path: PathBuf) {
    let source = derived_source(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = parse_header(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Some(reason) = no_compiler() {
        eprintln!("skipped {}: {reason}", path.display());
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(path.with_extension("c").file_name().expect("a file name"));
    std::fs::write(&file, source).expect("write the derived program");
    let exe = compile(&file, &header.bin, dir.path());
    judge(&path, &header, &exe);
}

/// One test per program of the Rust corpus (`tests/corpus-rust/<crate>/
/// src/bin/<name>.rs`: exercises whose library has no C headers on this
/// machine kind, such as D-Bus), with the same header and the same runs;
/// the crate is built with Cargo instead of `cc`.
#[rstest]
fn rust_corpus_program(#[files("corpus-rust/*/src/bin/*.rs")] path: PathBuf) {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = parse_header(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let krate = path.ancestors().nth(3).and_then(|d| d.file_name()).expect("corpus-rust/<crate>/src/bin/<file>");
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let exe = ipc_lab_tests::rust_corpus_bins(&krate.to_string_lossy())
        .remove(&name)
        .unwrap_or_else(|| panic!("{}: no binary `{name}` in its crate's Cargo.toml", path.display()));
    judge(&path, &header, &exe);
}

/// Every binary that appears in the corpus has at least four correct designs
/// (issue 10), and every header parses.
#[test]
fn enough_designs_per_binary() {
    let mut designs: BTreeMap<String, usize> = BTreeMap::new();
    let corpus = root().join("tests/corpus");
    for exercise in std::fs::read_dir(&corpus).expect("tests/corpus").flatten() {
        for file in std::fs::read_dir(exercise.path()).expect("corpus dir").flatten() {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "c") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let header = parse_header(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                exercise.file_name().to_string_lossy(),
                header.exercise,
                "{} lies in the folder of another exercise",
                path.display()
            );
            let count = designs.entry(header.bin).or_default();
            if header.expect == Expect::Full {
                *count += 1;
            }
        }
    }
    assert!(!designs.is_empty(), "no corpus programs in {}", corpus.display());
    let short: Vec<String> =
        designs.iter().filter(|(_, &n)| n < DESIGNS_PER_BINARY).map(|(bin, n)| format!("{bin}: {n}")).collect();
    assert!(short.is_empty(), "binaries with fewer than {DESIGNS_PER_BINARY} correct designs: {}", short.join(", "));
}

#[test]
fn headers_parse() {
    let h = parse_header(
        "// corpus: exercise=sockets bin=tcp-server\n// design: d\n// checks: server-\n// expect: full\nint x;",
    )
    .unwrap();
    assert_eq!((h.exercise.as_str(), h.bin.as_str(), h.checks.as_deref()), ("sockets", "tcp-server", Some("server-")));
    assert_eq!(h.expect, Expect::Full);
    let h = parse_header("// corpus: exercise=shm bin=shm-handshake\n// design: d\n// expect: fail a, b | needs x y\n")
        .unwrap();
    assert_eq!(h.expect, Expect::Fail { checks: vec!["a".into(), "b".into()], fragment: "needs x y".into() });
    assert!(parse_header("// corpus: exercise=shm bin=shm-handshake\n// expect: full\n").is_err(), "no design");
    assert!(parse_header("// corpus: exercise=shm\n// design: d\n// expect: full\n").is_err(), "no bin");
    assert!(parse_header("// corpus: exercise=shm bin=x\n// design: d\n// expect: fail a\n").is_err(), "no fragment");
}

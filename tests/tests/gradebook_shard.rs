//! Grading a class in shards (`gradebook --shard I/N`, `gradebook-merge`)
//! and the steps of the `gradebook` workflow that run without GitHub:
//! the roster (`instructors/roster.py`), cloning at the deadline, and
//! `instructors/grade-class.sh`, the whole workflow on one machine.
//!
//! Folders that hold only `.gradebook-error` (a fetch that failed) are rows
//! without a build, so the tests of the split and of the merge's refusals
//! grade nothing; two tests build real submissions of `shm`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use ipc_lab_tests::{grader, grader_cmd, make_submission, root, From};
use serde_json::Value;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap()
}

/// `grader gradebook --exercise shm --out OUT [--shard S] SUBS...`.
fn gradebook(out: &Path, shard: Option<&str>, subs: &[PathBuf]) -> Command {
    let mut cmd = grader_cmd();
    cmd.args(["gradebook", "--exercise", "shm", "-j", "2", "--out"]).arg(out);
    if let Some(s) = shard {
        cmd.args(["--shard", s]);
    }
    cmd.args(subs);
    cmd
}

fn merge(out: &Path, shards: &[&Path]) -> Output {
    grader_cmd().arg("gradebook-merge").args(shards).arg("--out").arg(out).output().unwrap()
}

/// Submission folders that say why they could not be fetched.
fn unfetched(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|name| {
            let sub = dir.join(name);
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join(".gradebook-error"), format!("clone failed: {name}\n")).unwrap();
            sub
        })
        .collect()
}

fn submissions_of(dir: &Path) -> Vec<String> {
    let m = json(&dir.join("shard.json"));
    m["submissions"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

#[test]
fn shards_are_dealt_from_sorted_names_whatever_the_order() {
    let tmp = tempfile::tempdir().unwrap();
    let names = ["g", "a", "e", "c", "f", "b", "d"];
    let subs = unfetched(&tmp.path().join("subs"), &names);
    let mut reversed = subs.clone();
    reversed.reverse();
    let mut seen = Vec::new();
    for (i, expected) in [(1, vec!["a", "d", "g"]), (2, vec!["b", "e"]), (3, vec!["c", "f"])] {
        let spec = format!("{i}/3");
        let (one, two) = (tmp.path().join(format!("fwd{i}")), tmp.path().join(format!("rev{i}")));
        for (out, order) in [(&one, &subs), (&two, &reversed)] {
            let done = gradebook(out, Some(&spec), order).output().unwrap();
            // Rows with status `error`: exit 1, as for the whole gradebook.
            assert_eq!(done.status.code(), Some(1), "{}", stderr(&done));
        }
        assert_eq!(submissions_of(&one), expected, "shard {spec}");
        assert_eq!(read(&one.join("gradebook.csv")), read(&two.join("gradebook.csv")), "shard {spec}");
        assert_eq!(json(&one.join("shard.json")), json(&two.join("shard.json")), "shard {spec}");
        let rows: Vec<String> = expected.iter().map(|n| format!("{n},,0,0,error,clone failed: {n}")).collect();
        assert_eq!(
            read(&one.join("gradebook.csv")),
            format!("submission,shm,total,max,status,note\n{}\n", rows.join("\n"))
        );
        let m = json(&one.join("shard.json"));
        assert_eq!(
            (m["shard"]["index"].as_u64(), m["shard"]["count"].as_u64(), m["total"].as_u64()),
            (Some(i), Some(3), Some(7))
        );
        seen.extend(expected);
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c", "d", "e", "f", "g"], "every submission in exactly one shard");

    // The three shards merge into the unsharded gradebook.
    let whole = tmp.path().join("whole");
    assert_eq!(gradebook(&whole, None, &subs).output().unwrap().status.code(), Some(1));
    let merged = tmp.path().join("merged");
    let shards: Vec<PathBuf> = (1..=3).map(|i| tmp.path().join(format!("fwd{i}"))).collect();
    let out = merge(&merged, &shards.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(read(&merged.join("gradebook.csv")), read(&whole.join("gradebook.csv")));
    assert_eq!(json(&merged.join("shard.json")), json(&whole.join("shard.json")));
    assert!(
        stdout(&out).contains("### Gradebook: 7 submissions") && stdout(&out).contains("| error | 7 |"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn shard_usage_errors_are_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let subs = unfetched(tmp.path(), &["a"]);
    for spec in ["0/3", "4/3", "3", "x/y"] {
        let out = gradebook(&tmp.path().join("out"), Some(spec), &subs).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{spec}");
        assert_eq!(stderr(&out), format!("grader: --shard takes I/N with 1 <= I <= N (e.g. 2/10), not `{spec}`\n"));
    }
    let out = merge(&tmp.path().join("m"), &[&tmp.path().join("a")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("grader: ") && stderr(&out).contains("shard.json"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn merge_refuses_shards_that_do_not_belong_together() {
    let tmp = tempfile::tempdir().unwrap();
    let subs = unfetched(&tmp.path().join("subs"), &["a", "b", "c"]);
    let shard = |i: usize| tmp.path().join(format!("s{i}"));
    for i in 1..=2 {
        gradebook(&shard(i), Some(&format!("{i}/2")), &subs).output().unwrap();
    }
    // A copy of shard 2 with its manifest edited.
    let edited = |name: &str, edit: &dyn Fn(&mut Value)| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(shard(2)).unwrap().flatten() {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        let mut m = json(&dir.join("shard.json"));
        edit(&mut m);
        std::fs::write(dir.join("shard.json"), m.to_string()).unwrap();
        dir
    };
    let version = edited("version", &|m| m["grader"]["version"] = "9.9.9".into());
    let points = edited("points", &|m| m["exercises"][0]["max_points"] = 90.into());
    let scale = edited("scale", &|m| m["time_scale"] = 7.0.into());
    let (s1, s2) = (shard(1), shard(2));
    let cases: [(&[&Path], &str); 6] = [
        (&[&s1, &version], "was graded by grader 0.1.0"),
        (&[&s1, &points], "were graded with different checks: shm is worth 100 vs 90 points"),
        (&[&s1, &scale], "with --time-scale 2 but"),
        (&[&s1], "shard 2/2 is missing"),
        (&[&s1, &s1], "are both shard 1/2"),
        (&[&s1, &s2, &s2], "are both shard 2/2"),
    ];
    for (dirs, reason) in cases {
        let out = merge(&tmp.path().join("merged"), dirs);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{dirs:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{dirs:?}: {err}");
        assert!(err.starts_with("grader: ") && err.contains(reason), "{dirs:?}: {err}");
    }
    let out = merge(&s1, &[&s1, &s2]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is one of the shards"), "{}", stderr(&out));
    assert_eq!(merge(&tmp.path().join("ok"), &[&s2, &s1]).status.code(), Some(1));
}

/// A JSON report without what differs between two gradings of the same
/// submission: durations and pids.
fn normalised(text: &str) -> String {
    let mut v: Value = serde_json::from_str(text).unwrap();
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("duration_ms");
                map.remove("wall_ms");
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::String(s) => *s = without_pids(s),
            _ => {}
        }
    }
    walk(&mut v);
    serde_json::to_string_pretty(&v).unwrap()
}

fn without_pids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("pid ") {
        out.push_str(&rest[..at + 4]);
        rest = rest[at + 4..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('N');
    }
    out + rest
}

/// The files of a gradebook folder, by name (without the CPU lock).
fn files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != ".cpu.lock")
        .map(|e| (e.file_name().to_string_lossy().into_owned(), read(&e.path())))
        .collect()
}

#[test]
fn merged_shards_are_the_unsharded_gradebook() {
    let tmp = tempfile::tempdir().unwrap();
    let subs = tmp.path().join("subs");
    make_submission(&subs.join("sol"), &[("shm", From::Solution)]);
    make_submission(&subs.join("skel"), &[("shm", From::Skeleton)]);
    let mut dirs = vec![subs.join("sol"), subs.join("skel")];
    dirs.extend(unfetched(&subs, &["gone"]));

    let whole = tmp.path().join("whole");
    let out = gradebook(&whole, None, &dirs).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Both shards at once, as the workflow's jobs run, each given the
    // submissions in another order.
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let mut reversed = dirs.clone();
    reversed.reverse();
    let mut first = gradebook(&one, Some("1/2"), &dirs).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let second = gradebook(&two, Some("2/2"), &reversed).output().unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(1));
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(submissions_of(&one), ["gone", "sol"]);
    assert_eq!(submissions_of(&two), ["skel"]);

    let merged = tmp.path().join("merged");
    let out = merge(&merged, &[&two, &one]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let csv = read(&merged.join("gradebook.csv"));
    assert_eq!(
        csv,
        "submission,shm,total,max,status,note\ngone,,0,0,error,clone failed: gone\nskel,0,0,100,graded,\nsol,100,100,100,graded,\n"
    );
    let (merged, whole) = (files(&merged), files(&whole));
    assert_eq!(merged.keys().collect::<Vec<_>>(), whole.keys().collect::<Vec<_>>());
    for (name, text) in &merged {
        if name.ends_with(".json") {
            assert_eq!(normalised(text), normalised(&whole[name]), "{name}");
        } else {
            assert_eq!(text, &whole[name], "{name}");
        }
    }
    assert!(merged["skel.json"].contains("not implemented yet"), "the reports are the submissions' own");
    let summary = stdout(&out);
    assert!(summary.contains("| graded | 2 |\n| timeout | 0 |\n| error | 1 |"), "{summary}");
    assert!(summary.contains("| 0–9 % | 1 |") && summary.contains("| 100 % | 1 |"), "{summary}");
}

// ---- instructors/roster.py ----

fn roster_py(args: &[&OsStr], envs: &[(&str, &str)], cwd: &Path) -> Output {
    Command::new("python3")
        .arg(root().join("instructors/roster.py"))
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("GRADEBOOK_TOKEN")
        .current_dir(cwd)
        .output()
        .expect("python3")
}

fn os<'a>(args: &[&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

#[test]
fn roster_files_are_normalised_or_refused_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().canonicalize().unwrap();
    let roster = cwd.join("roster.csv");
    std::fs::write(
        &roster,
        "# ipc-lab, winter term\nname,repository,ref\n\nZoë Müller,acme/ipc-lab-zoe\n\
         bob, https://example.org/bob/ipc.git ,submit\n\"carol, jr\",./local/carol,v1.0\ndave,/srv/git/dave.git\n",
    )
    .unwrap();
    let server = [("GITHUB_SERVER_URL", "https://git.example.edu")];
    let out = roster_py(&os(&["expand", "--roster", "roster.csv"]), &server, &cwd);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "name,repository,ref\nZo__M_ller,https://git.example.edu/acme/ipc-lab-zoe.git,\n\
             bob,https://example.org/bob/ipc.git,submit\ncarol__jr,{}/local/carol,v1.0\ndave,/srv/git/dave.git,\n",
            cwd.display()
        )
    );
    // Normalised is a fixed point, and the matrix has at most a shard per student.
    std::fs::write(cwd.join("norm.csv"), stdout(&out)).unwrap();
    let again = roster_py(&os(&["expand", "--roster", "norm.csv"]), &server, &cwd);
    assert_eq!(stdout(&again), stdout(&out));
    let matrix = roster_py(&os(&["matrix", "--shards", "10", "norm.csv"]), &[], &cwd);
    assert_eq!(stdout(&matrix), "shards=[1, 2, 3, 4]\ncount=4\n");
    let matrix = roster_py(&os(&["matrix", "--shards", "3", "norm.csv"]), &[], &cwd);
    assert_eq!(stdout(&matrix), "shards=[1, 2, 3]\ncount=3\n");

    for (text, reason) in [
        ("alice,a/b\nbob,c/d\nalice,e/f\n", "roster.csv:3: alice is also on line 1"),
        ("alice\n", "roster.csv:1: expected name,repository[,ref], not `alice`"),
        ("alice,a/b,main,extra\n", "roster.csv:1: expected name,repository[,ref]"),
        ("alice,not a repository\n", "roster.csv:1: `not a repository` is not owner/repo, a URL or a path"),
        ("# nobody\n", "roster.csv: no students"),
    ] {
        std::fs::write(&roster, text).unwrap();
        let out = roster_py(&os(&["expand", "--roster", "roster.csv"]), &[], &cwd);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = stderr(&out);
        assert!(err.starts_with(&format!("roster.py: {reason}")) && err.lines().count() == 1, "{text}: {err}");
    }
    for (args, reason) in [
        (&["expand"][..], "give either --roster FILE or --org ORG --prefix PREFIX"),
        (&["expand", "--org", "acme"][..], "--org needs --prefix"),
        (&["matrix", "--shards", "0", "norm.csv"][..], "--shards takes a number from 1 to 256, not `0`"),
        (
            &["fetch", "norm.csv", "--dest", "d", "--deadline", "Friday"][..],
            "--deadline: `Friday` is not an ISO 8601 time",
        ),
    ] {
        let out = roster_py(&os(args), &[], &cwd);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).starts_with("roster.py: ") && stderr(&out).contains(reason), "{args:?}: {}", stderr(&out));
    }
}

/// A one-thread HTTP server on the loopback: answers every request with
/// `response` and records each request's first line and `Authorization`.
fn http_server(response: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut head = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                head.push(line.trim_end().to_string());
                line.clear();
            }
            let auth = head.iter().find_map(|h| h.strip_prefix("Authorization: ")).unwrap_or("none").to_string();
            log.lock().unwrap().push(format!("{} | {auth}", head.first().cloned().unwrap_or_default()));
            let _ = (&stream).write_all(response.as_bytes());
            let _ = std::io::copy(&mut reader, &mut std::io::sink()); // until the client closes
        }
    });
    (base, seen)
}

fn http_response(status: &str, body: &str, extra: &str) -> String {
    format!("HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

#[test]
fn classroom_repositories_become_the_roster() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = r#"[
        {"name": "ipc-lab-alice", "clone_url": "https://github.com/acme/ipc-lab-alice.git"},
        {"name": "ipc-lab-template", "clone_url": "https://github.com/acme/ipc-lab-template.git", "is_template": true},
        {"name": "ipc-lab-Bob.S", "clone_url": "https://github.com/acme/ipc-lab-Bob.S.git"},
        {"name": "other-carol", "clone_url": "https://github.com/acme/other-carol.git"},
        {"name": "ipc-lab-", "clone_url": "https://github.com/acme/ipc-lab-.git"}
    ]"#;
    let (api, seen) = http_server(http_response("200 OK", repos, ""));
    let envs = [("GITHUB_API_URL", api.as_str()), ("GRADEBOOK_TOKEN", "tok-api")];
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("instructors/roster.py")).args(["expand", "--org", "acme", "--prefix", "ipc-lab"]);
    let out = cmd.envs(envs).current_dir(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "name,repository,ref\nBob.S,https://github.com/acme/ipc-lab-Bob.S.git,\nalice,https://github.com/acme/ipc-lab-alice.git,\n"
    );
    assert_eq!(*seen.lock().unwrap(), ["GET /orgs/acme/repos?type=all&per_page=100&page=1 HTTP/1.1 | Bearer tok-api"]);
    assert!(!stderr(&out).contains("tok-api"));

    let (api, _) = http_server(http_response("404 Not Found", "{}", ""));
    let out =
        roster_py(&os(&["expand", "--org", "acme", "--prefix", "ipc-lab"]), &[("GITHUB_API_URL", &api)], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "roster.py: GitHub API: 404 Not Found for the repositories of acme (is the organisation right, and may GRADEBOOK_TOKEN read it?)\n"
    );
}

// ---- cloning at the deadline ----

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Student", "-c", "user.email=s@example.org", "-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// Commit everything in `dir` with these dates; returns the commit.
fn commit_at(dir: &Path, author: &str, committer: &str) -> String {
    git(dir, &["add", "-A"]);
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Student", "-c", "user.email=s@example.org", "commit", "-q", "-m", committer])
        .env("GIT_AUTHOR_DATE", author)
        .env("GIT_COMMITTER_DATE", committer)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    git(dir, &["rev-parse", "HEAD"])
}

/// A repository at `dir` with a commit per date, each writing the date
/// into `exercises/shm/when`; returns the commits.
fn dated_repo(dir: &Path, dates: &[&str]) -> Vec<String> {
    std::fs::create_dir_all(dir.join("exercises/shm")).unwrap();
    git(dir, &["init", "-q"]);
    dates
        .iter()
        .map(|when| {
            std::fs::write(dir.join("exercises/shm/when"), when).unwrap();
            commit_at(dir, when, when)
        })
        .collect()
}

fn fetched(record: &Path) -> BTreeMap<String, (String, String)> {
    let text = read(record);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("name,repository,ref,commit,committed,error"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.splitn(6, ',').collect();
            (f[0].to_string(), (f[3].to_string(), f[5].trim_matches('"').to_string()))
        })
        .collect()
}

#[test]
fn each_repository_is_graded_as_of_its_last_commit_before_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = tmp.path().join("repos");
    // The deadline is 23:59 in UTC+1; 23:30 UTC is after it.
    // A committed target/ folder is not taken along by --strip.
    std::fs::create_dir_all(repos.join("alice/exercises/shm/target")).unwrap();
    std::fs::write(repos.join("alice/exercises/shm/target/junk"), "build output").unwrap();
    let alice = dated_repo(
        &repos.join("alice"),
        &["2025-01-30T10:00:00+00:00", "2025-01-31T22:30:00+00:00", "2025-01-31T23:30:00+00:00"],
    );
    // The committer date counts, not the author date.
    let bob_dir = repos.join("bob");
    let bob = dated_repo(&bob_dir, &["2025-01-29T10:00:00+00:00"]);
    std::fs::write(bob_dir.join("exercises/shm/when"), "rebased").unwrap();
    commit_at(&bob_dir, "2025-01-30T10:00:00+00:00", "2025-02-02T10:00:00+00:00");
    git(&bob_dir, &["checkout", "-q", "-b", "submit", &bob[0]]);
    std::fs::write(bob_dir.join("exercises/shm/when"), "submitted").unwrap();
    let submitted = commit_at(&bob_dir, "2025-01-31T10:00:00+00:00", "2025-01-31T10:00:00+00:00");
    git(&bob_dir, &["checkout", "-q", "main"]);
    dated_repo(&repos.join("carol"), &["2025-02-03T10:00:00+00:00"]);
    git(&repos, &["init", "-q", "dave"]);
    std::fs::create_dir_all(repos.join("erin")).unwrap();
    git(&repos.join("erin"), &["init", "-q"]);
    std::fs::write(repos.join("erin/README.md"), "no exercises here").unwrap();
    commit_at(&repos.join("erin"), "2025-01-20T10:00:00+00:00", "2025-01-20T10:00:00+00:00");

    let r = repos.display();
    std::fs::write(
        tmp.path().join("roster.csv"),
        format!(
            "alice,{r}/alice\nbob,file://{r}/bob\nbob-submit,{r}/bob,submit\nbob-tag,{r}/bob,nosuch\ncarol,{r}/carol\n\
             dave,{r}/dave\nerin,{r}/erin\nfrank,{r}/frank\n"
        ),
    )
    .unwrap();
    let fetch = |dest: &str, deadline: &str, strip: bool| {
        let mut args = vec!["fetch", "roster.csv", "--dest", dest, "--record", "record.csv", "--deadline", deadline];
        if strip {
            args.push("--strip");
        }
        let out = roster_py(&os(&args), &[], tmp.path());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out
    };
    let out = fetch("subs", "2025-01-31T23:59+01:00", false);
    let subs = tmp.path().join("subs");
    let when = |name: &str| read(&subs.join(name).join("exercises/shm/when"));
    assert_eq!(when("alice"), "2025-01-31T22:30:00+00:00");
    assert_eq!(when("bob"), "2025-01-29T10:00:00+00:00");
    assert_eq!(when("bob-submit"), "submitted");
    let record = fetched(&tmp.path().join("record.csv"));
    assert_eq!(record["alice"], (alice[1].clone(), String::new()));
    assert_eq!(record["bob-submit"], (submitted, String::new()));
    let error = |name: &str| {
        assert!(!subs.join(name).join("exercises").exists(), "{name}");
        let why = read(&subs.join(name).join(".gradebook-error"));
        assert_eq!(record[name].1, why.trim_end(), "{name}");
        why
    };
    assert_eq!(error("bob-tag"), "no branch, tag or commit `nosuch`\n");
    assert_eq!(
        error("carol"),
        "no commit before the deadline 2025-01-31T23:59:00+01:00 (the first: 2025-02-03T10:00:00Z)\n"
    );
    assert_eq!(error("dave"), "empty repository (nothing pushed)\n");
    assert!(error("erin").starts_with("no exercises/ folder in "));
    assert!(error("frank").starts_with("clone failed: "));
    assert!(stdout(&out).contains(&format!("alice: {} of 2025-01-31T22:30:00Z", &alice[1][..12])), "{}", stdout(&out));

    // No deadline: the newest commit; --strip keeps exercises/ only.
    fetch("newest", "", true);
    let alice_dir = tmp.path().join("newest/alice");
    assert_eq!(read(&alice_dir.join("exercises/shm/when")), "2025-01-31T23:30:00+00:00");
    let left: Vec<_> = std::fs::read_dir(&alice_dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, ["exercises"]);
    assert!(!alice_dir.join("exercises/shm/target").exists());
    assert!(subs.join("alice/exercises/shm/target/junk").exists(), "without --strip the checkout is whole");
    let dave: Vec<_> =
        std::fs::read_dir(tmp.path().join("newest/dave")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(dave, [".gradebook-error"]);
    // A destination that holds something is refused, not overwritten.
    let out = roster_py(&os(&["fetch", "roster.csv", "--dest", "subs"]), &[], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("exists and is not empty"), "{}", stderr(&out));
}

#[test]
fn the_token_reaches_git_only_through_the_credential_helper() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, seen) = http_server(http_response("401 Unauthorized", "", "WWW-Authenticate: Basic realm=\"git\"\r\n"));
    std::fs::write(tmp.path().join("roster.csv"), format!("zed,{base}/acme/zed.git\n")).unwrap();
    let token = "tok-4242-secret";
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("instructors/roster.py")).args(["fetch", "roster.csv", "--dest", "subs", "--record", "r.csv"]);
    let out = cmd.env("GRADEBOOK_TOKEN", token).current_dir(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // base64("x-access-token:tok-4242-secret")
    let basic = "Basic eC1hY2Nlc3MtdG9rZW46dG9rLTQyNDItc2VjcmV0";
    assert!(seen.lock().unwrap().iter().any(|r| r.ends_with(basic)), "{:?}", seen.lock().unwrap());
    let why = read(&tmp.path().join("subs/zed/.gradebook-error"));
    assert!(why.starts_with("clone failed: ") && why.contains("Authentication failed"), "{why}");
    for text in [stdout(&out), stderr(&out), why, read(&tmp.path().join("r.csv"))] {
        assert!(!text.contains(token) && !text.contains(&basic[6..]), "{text}");
    }
}

// ---- instructors/grade-class.sh ----

#[test]
fn grade_class_runs_the_workflow_on_one_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = tmp.path().join("repos");
    // Alice's solution before the deadline, a broken commit after it.
    let alice = repos.join("alice");
    let crates = make_submission(&alice, &[("shm", From::Solution)]);
    git(&alice, &["init", "-q"]);
    commit_at(&alice, "2025-01-30T10:00:00+00:00", "2025-01-30T10:00:00+00:00");
    std::fs::write(crates["shm"].join("src/main.rs"), "fn main() { broken }").unwrap();
    commit_at(&alice, "2025-02-02T10:00:00+00:00", "2025-02-02T10:00:00+00:00");
    let bob = repos.join("bob");
    make_submission(&bob, &[("shm", From::Skeleton)]);
    git(&bob, &["init", "-q"]);
    commit_at(&bob, "2025-01-31T10:00:00+00:00", "2025-01-31T10:00:00+00:00");
    git(&repos, &["init", "-q", "carol"]);
    std::fs::write(
        tmp.path().join("roster.csv"),
        format!("name,repository\nalice,{0}/alice\nBob Builder,file://{0}/bob\nCarol,{0}/carol\n", repos.display()),
    )
    .unwrap();

    let out_dir = tmp.path().join("out");
    let out = Command::new("bash")
        .arg(root().join("instructors/grade-class.sh"))
        .args(["--shards", "2", "-j", "1", "--exercise", "shm", "--deadline", "2025-01-31T23:59Z", "roster.csv"])
        .arg(&out_dir)
        .env("GRADER", grader())
        .env("GRADER_TIME_SCALE", "2")
        .env_remove("GRADEBOOK_TOKEN")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    // Carol's empty repository is a row with status `error`: exit 1.
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        read(&out_dir.join("gradebook.csv")),
        "submission,shm,total,max,status,note\nBob_Builder,0,0,100,graded,\n\
         Carol,,0,0,error,empty repository (nothing pushed)\nalice,100,100,100,graded,\n"
    );
    let summary = read(&out_dir.join("summary.md"));
    assert!(summary.contains("| graded | 2 |") && stdout(&out).contains(&summary), "{summary}");
    assert_eq!(json(&out_dir.join("alice.json"))["score"], 100);
    let record = fetched(&out_dir.join("fetched.csv"));
    assert_eq!(record.keys().collect::<Vec<_>>(), ["Bob_Builder", "Carol", "alice"]);
    let m = json(&out_dir.join("shard.json"));
    assert_eq!((m["total"].as_u64(), m["shard"]["count"].as_u64()), (Some(3), Some(1)));
    // The two shards, side by side, each graded its part.
    assert_eq!(submissions_of(&out_dir.join("work/shards/1")), ["Bob_Builder", "alice"]);
    assert_eq!(submissions_of(&out_dir.join("work/shards/2")), ["Carol"]);
}

//! The grader's registry and the repository agree: every exercise it lists
//! has its skeleton, its solution and its README, both crates build the
//! binaries it names, and the README's table lists it. File tests, fast.

use ipc_lab_tests::{crate_bins, registry, root};

#[test]
fn every_exercise_has_its_crates_and_readme() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut problems = Vec::new();
    for ex in registry() {
        let mut want: Vec<&str> = ex.bins.to_vec();
        want.sort();
        for side in ["exercises", "solutions"] {
            let dir = root().join(side).join(ex.id);
            if !dir.join("Cargo.toml").is_file() {
                problems.push(format!("{}: no {side}/{}/Cargo.toml", ex.id, ex.id));
                continue;
            }
            let got: Vec<String> = crate_bins(&dir).into_iter().map(|(name, _)| name).collect();
            if got != want {
                problems.push(format!("{}: {side}/{} builds {got:?}, the registry names {want:?}", ex.id, ex.id));
            }
        }
        let page = format!("exercises/{}/README.md", ex.id);
        if !root().join(&page).is_file() {
            problems.push(format!("{}: no {page}", ex.id));
        }
        if !readme.contains(&format!("[`{}`]({page})", ex.id)) {
            problems
                .push(format!("{}: README.md's table of exercises has no row linking [`{}`]({page})", ex.id, ex.id));
        }
        if ex.checks.is_empty() {
            problems.push(format!("{}: no checks", ex.id));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

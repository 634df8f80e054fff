//! What a submitted crate's `Cargo.toml` may name: its own files only.
//!
//! Cargo follows a manifest wherever it points. A `[[bin]] path` of
//! `../../../solutions/signals/src/main.rs` builds the instructors'
//! reference solution as the student's program; a path or git dependency,
//! a build script elsewhere, a `[workspace]`, `[patch]` or `[replace]`
//! reach just as far. So every path a manifest names must stay inside the
//! crate's folder (judged by its words: the staged copy holds no symlinks),
//! a path dependency inside it is checked the same way, and the sections
//! that redirect Cargo are refused outright.

use std::path::Path;

use super::{inside, refusal};

/// Dependency tables, at the top and under `[target.'cfg(…)']`.
const DEPENDENCY_TABLES: [&str; 5] =
    ["dependencies", "dev-dependencies", "dev_dependencies", "build-dependencies", "build_dependencies"];

/// Target sections whose entries may name a `path`.
const TARGET_SECTIONS: [&str; 5] = ["lib", "bin", "example", "test", "bench"];

/// Path dependencies inside the crate, inside each other, at most this deep.
const MAX_NESTING: usize = 4;

/// Check the manifest of the staged crate `dir` (the exercise `id`): it
/// parses, names the package `id`, and reaches nothing outside `dir`.
/// `Err` is the one-line reason.
pub fn check(dir: &Path, id: &str) -> Result<(), String> {
    let manifest = read(dir, Path::new(""), id)?;
    let name = manifest.get("package").and_then(|p| p.get("name")).and_then(toml::Value::as_str);
    match name {
        Some(n) if n == id => {}
        Some(n) => {
            return Err(format!(
                "exercises/{id}/Cargo.toml names the package `{}`; it must stay `{id}`",
                crate::text::escape(n)
            ))
        }
        None => return Err(format!("exercises/{id}/Cargo.toml has no [package] name")),
    }
    reaches(dir, Path::new(""), &manifest, id, 0)
}

/// The manifest of the crate at `rel` inside the staged crate `dir`.
fn read(dir: &Path, rel: &Path, id: &str) -> Result<toml::Table, String> {
    let shown = format!("exercises/{id}/{}", rel.join("Cargo.toml").display());
    let text = std::fs::read_to_string(dir.join(rel).join("Cargo.toml")).map_err(|e| {
        format!("{shown}: {e} (it must be a regular file of the crate folder; symlinks are not copied)")
    })?;
    text.parse().map_err(|e: toml::de::Error| {
        let first = e.to_string().lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_string();
        format!("{shown} does not parse: {}", crate::text::escape(&first))
    })
}

/// The first thing the manifest of the crate at `rel` (inside the staged
/// crate `dir`) names outside `dir`; path dependencies are followed.
fn reaches(dir: &Path, rel: &Path, manifest: &toml::Table, id: &str, depth: usize) -> Result<(), String> {
    let file = format!("exercises/{id}/{}", rel.join("Cargo.toml").display());
    let refuse = |what: &str| Err(refusal(&file, None, what));
    for section in ["workspace", "patch", "replace"] {
        if manifest.contains_key(section) {
            return refuse(&format!(
                "has a [{section}] section, which would take the crate out of the grader's workspace"
            ));
        }
    }
    let package = manifest.get("package").and_then(toml::Value::as_table);
    if package.is_some_and(|p| p.contains_key("workspace")) {
        return refuse("names a workspace of its own (`package.workspace`)");
    }
    // Paths a manifest names, each with what it is.
    let mut paths: Vec<(String, &str)> = Vec::new();
    if let Some(build) = package.and_then(|p| p.get("build")).and_then(toml::Value::as_str) {
        paths.push(("the build script".into(), build));
    }
    for section in TARGET_SECTIONS {
        let entries: Vec<&toml::Value> = match manifest.get(section) {
            Some(toml::Value::Array(a)) => a.iter().collect(),
            Some(t @ toml::Value::Table(_)) => vec![t],
            _ => continue,
        };
        for entry in entries {
            if let Some(path) = entry.get("path").and_then(toml::Value::as_str) {
                let name = entry.get("name").and_then(toml::Value::as_str);
                let named = name.map(|n| format!(" `{}`", crate::text::escape(n))).unwrap_or_default();
                paths.push((format!("[{section}]{named}"), path));
            }
        }
    }
    for (what, path) in paths {
        if !inside(rel, path) {
            return refuse(&format!("{what} path {} lies outside the crate's folder", shown(path)));
        }
    }
    for (name, spec) in dependencies(manifest) {
        let name = crate::text::escape(name);
        if spec.get("git").is_some() {
            return refuse(&format!("the dependency `{name}` comes from git"));
        }
        let Some(path) = spec.get("path").and_then(toml::Value::as_str) else { continue };
        if !inside(rel, path) {
            return refuse(&format!(
                "the dependency `{name}` has the path {}, outside the crate's folder",
                shown(path)
            ));
        }
        if depth >= MAX_NESTING {
            return refuse(&format!("path dependencies nest deeper than {MAX_NESTING}"));
        }
        let nested = rel.join(path);
        reaches(dir, &nested, &read(dir, &nested, id)?, id, depth + 1)?;
    }
    Ok(())
}

/// Every dependency of a manifest as (name, its table); a dependency
/// given as a version string names no path.
fn dependencies(manifest: &toml::Table) -> Vec<(&str, &toml::Table)> {
    let targets = manifest.get("target").and_then(toml::Value::as_table);
    let tables =
        std::iter::once(manifest).chain(targets.into_iter().flat_map(|t| t.values().filter_map(toml::Value::as_table)));
    let mut out = Vec::new();
    for table in tables {
        for kind in DEPENDENCY_TABLES {
            for (name, spec) in table.get(kind).and_then(toml::Value::as_table).into_iter().flatten() {
                if let Some(spec) = spec.as_table() {
                    out.push((name.as_str(), spec));
                }
            }
        }
    }
    out
}

/// A path from a manifest, quoted and escaped for a one-line message.
fn shown(path: &str) -> String {
    format!("`{}`", crate::text::escape(path).replace('\n', "\\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A staged crate `signals` with `manifest` and the files `extra`.
    fn staged(manifest: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
        for (path, text) in extra {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    const HEAD: &str = "[package]\nname = \"signals\"\nversion = \"0.1.0\"\n";

    fn verdict(manifest: &str, extra: &[(&str, &str)]) -> Result<(), String> {
        let dir = staged(manifest, extra);
        check(dir.path(), "signals")
    }

    #[test]
    fn a_crate_of_its_own_files_passes() {
        let manifest = format!(
            "{HEAD}build = \"build.rs\"\n[[bin]]\nname = \"sigecho\"\npath = \"src/./bin/../main.rs\"\n\
             [dependencies]\nnix = {{ workspace = true, features = [\"signal\"] }}\nlibc = \"0.2\"\n\
             helper = {{ path = \"helper\" }}\n[lints]\nworkspace = true\n"
        );
        let helper = "[package]\nname = \"helper\"\nversion = \"0.1.0\"\n[lib]\npath = \"lib.rs\"\n";
        assert_eq!(verdict(&manifest, &[("helper/Cargo.toml", helper)]), Ok(()));
    }

    #[test]
    fn every_way_out_is_refused_with_a_one_line_reason() {
        let solution = "../../../../../../solutions/signals/src/main.rs";
        let cases = [
            (format!("{HEAD}[[bin]]\nname = \"sigecho\"\npath = \"{solution}\"\n"), "[bin] `sigecho` path"),
            (format!("{HEAD}[[bin]]\nname = \"sigecho\"\npath = \"/work/solutions/signals/src/main.rs\"\n"), "path"),
            (format!("{HEAD}[lib]\npath = \"../lib.rs\"\n"), "[lib] path `../lib.rs` lies outside"),
            (format!("{HEAD}build = \"../../build.rs\"\n"), "the build script path"),
            (format!("{HEAD}workspace = \"../..\"\n"), "names a workspace of its own"),
            (format!("{HEAD}[workspace]\n"), "has a [workspace] section"),
            (format!("{HEAD}[patch.crates-io]\nnix = {{ path = \"nix\" }}\n"), "has a [patch] section"),
            (format!("{HEAD}[replace]\n\"nix:0.32.0\" = {{ path = \"nix\" }}\n"), "has a [replace] section"),
            (format!("{HEAD}[dependencies]\nsol = {{ path = \"../../solutions/signals\" }}\n"), "`sol` has the path"),
            (format!("{HEAD}[dev-dependencies]\nsol = {{ git = \"https://example.org/x\" }}\n"), "comes from git"),
            (
                format!("{HEAD}[target.'cfg(unix)'.build-dependencies]\nsol = {{ path = \"/abs\" }}\n"),
                "`sol` has the path `/abs`",
            ),
        ];
        for (manifest, want) in cases {
            let why = verdict(&manifest, &[]).expect_err(&manifest);
            assert!(why.starts_with(super::super::REFUSED), "{why}");
            assert!(why.contains("exercises/signals/Cargo.toml") && why.contains(want), "{why}\nwanted: {want}");
            assert!(!why.contains('\n'), "{why}");
        }
    }

    #[test]
    fn a_path_dependency_inside_is_checked_like_the_crate() {
        let manifest = format!("{HEAD}[dependencies]\nhelper = {{ path = \"helper\" }}\n");
        let helper = "[package]\nname = \"helper\"\nversion = \"0.1.0\"\n[lib]\npath = \"../../x.rs\"\n";
        let why = verdict(&manifest, &[("helper/Cargo.toml", helper)]).unwrap_err();
        assert!(why.contains("exercises/signals/helper/Cargo.toml") && why.contains("`../../x.rs`"), "{why}");
    }

    #[test]
    fn name_and_syntax_as_before() {
        let why = verdict("[package]\nname = \"my-shm\"\n", &[]).unwrap_err();
        assert_eq!(why, "exercises/signals/Cargo.toml names the package `my-shm`; it must stay `signals`");
        let why = verdict("[package\n", &[]).unwrap_err();
        assert!(why.starts_with("exercises/signals/Cargo.toml does not parse: "), "{why}");
    }
}

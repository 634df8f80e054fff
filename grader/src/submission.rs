//! `--submission DIR`: a student's exercise crates, built in a private copy
//! of the instructor's workspace.

use std::path::{Path, PathBuf};

/// A staged submission; removed when dropped.
pub struct Staged {
    dir: PathBuf,
}

impl Staged {
    pub fn root(&self) -> &Path {
        &self.dir
    }
}

pub fn stage(_root: &Path, dir: &Path) -> Result<Staged, String> {
    Err(format!("--submission {}: not implemented yet", dir.display()))
}

//! A place in source code that a failure names: where a `todo!()` or a
//! panic was reached, or where the compiler found the first error.
//!
//! It is found once, where the text that names it is read (the panic
//! message on the program's stderr, the compiler's `-->` line), and then
//! carried as data: reports group failures by it and point at it without
//! reading it back out of a message.

use serde::Serialize;

/// `file:line:column` as the panic or the compiler printed it. The file is
/// as printed too: relative to the workspace Cargo built in, or absolute
/// (a staged submission, a remapped prefix), or outside the student's
/// crate altogether (std, a dependency); reports decide what it means for
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl Location {
    /// `src/main.rs:102:5` → the location; `None` for anything else.
    pub fn parse(text: &str) -> Option<Location> {
        let mut parts = text.trim().rsplitn(3, ':');
        let (column, line, file) = (parts.next()?, parts.next()?, parts.next()?);
        if file.is_empty() {
            return None;
        }
        Some(Location { file: file.to_string(), line: line.parse().ok()?, column: column.parse().ok()? })
    }

    /// The first ` --> file:line:column` of a compiler message: where its
    /// first error is.
    pub fn in_compiler_message(message: &str) -> Option<Location> {
        message.lines().find_map(|l| l.trim_start().strip_prefix("--> ")).and_then(Location::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &str, line: u32, column: u32) -> Option<Location> {
        Some(Location { file: file.into(), line, column })
    }

    #[test]
    fn parses_what_panics_and_the_compiler_print() {
        assert_eq!(Location::parse("exercises/signals/src/main.rs:102:5"), at("exercises/signals/src/main.rs", 102, 5));
        assert_eq!(
            Location::parse("/tmp/sub-1/exercises/a b/src/x.rs:7:1"),
            at("/tmp/sub-1/exercises/a b/src/x.rs", 7, 1)
        );
        assert_eq!(Location::parse("src/main.rs:3"), None);
        assert_eq!(Location::parse("src/main.rs:x:3"), None);
        assert_eq!(Location::parse(":3:4"), None);
        assert_eq!(Location::parse(""), None);
    }

    #[test]
    fn the_compiler_message_gives_its_first_arrow() {
        let message = "error[E0308]: mismatched types\n --> exercises/framing/src/main.rs:7:22\n  |\n\
                       error: another\n --> exercises/framing/src/main.rs:9:1\n";
        assert_eq!(Location::in_compiler_message(message), at("exercises/framing/src/main.rs", 7, 22));
        assert_eq!(Location::in_compiler_message("error: could not find `Cargo.toml`"), None);
    }
}

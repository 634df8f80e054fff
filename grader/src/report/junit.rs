//! `--format junit`: JUnit XML (quick-junit).

use crate::results::Report;

pub fn render(_report: &Report) -> String {
    String::from("<!-- junit: not implemented yet -->\n")
}

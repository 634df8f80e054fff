//! `--format json`: one object, `score`/`max_score` at the top, then
//! `exercises[]` with `checks[]`: the types of [`crate::results`] as they are
//! (each field is documented there; README.md, "Options", lists the formats).

use crate::results::Report;

pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("results serialise");
    s.push('\n');
    s
}

//! `--format json`: one object, `score`/`max_score` at the top, then
//! `exercises[]` with `checks[]` (SPEC §3).

use crate::results::Report;

pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("results serialise");
    s.push('\n');
    s
}

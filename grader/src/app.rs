//! One grader run: read the command line into a mode and a request, and
//! hand them to the module that does that mode. Usage errors come back as
//! `Err` (exit 2).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::cli::{Args, Command};
use crate::report::human::{self, Style};
use crate::request::{self, Mode};
use crate::{exercises, gradebook, grading, hints, listing, merge, report, status, watch};

/// The workspace the grader was built in.
fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("grader/ has a parent").to_path_buf()
}

/// Run the grader; `Ok(true)` when every graded check passed.
pub fn run(args: Args) -> Result<bool, String> {
    let scale = args.time_scale()?;
    crate::harness::runas::configure(crate::harness::runas::RunAs::parse(args.run_as.as_deref())?);
    let root = args.root.clone().unwrap_or_else(default_root);
    let root = root.canonicalize().map_err(|e| format!("workspace {}: {e}", root.display()))?;
    match &args.command {
        Some(Command::Gradebook(book)) => return gradebook::run(&root, book, scale, args.run_as.as_deref()),
        Some(Command::GradebookMerge(m)) => return merge::run(&m.shards, &m.out),
        None => {}
    }
    let (mode, request) = args.into_request()?;
    match mode {
        Mode::List => {
            let terminal = std::io::stdout().is_terminal();
            let style = Style::of(human::stdout_colour());
            print!(
                "{}",
                listing::list(&exercises::all(), status::load(&root).as_ref(), terminal, style, status::now())
            );
            Ok(true)
        }
        Mode::Hint(ask) => {
            print!("{}", hints::render(request::find(&exercises::all(), &ask.exercise)?, &ask)?);
            Ok(true)
        }
        Mode::Watch { debounce } => watch::run(&root, &request, debounce),
        Mode::Grade(output) => {
            let report = grading::grade(&root, &request)?;
            // An interrupted grading is no grading: no report.
            crate::interrupt::hold_if_interrupted();
            if request.remembered() {
                status::remember(&root, &report);
            }
            report::write(&output, &report)?;
            Ok(report.all_passed())
        }
    }
}

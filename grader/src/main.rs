use std::process::ExitCode;

use clap::Parser;

use grader::harness::{leash, pidns, reaper, signals};
use grader::interrupt::{self, Sigint};

/// Record the inherited process state before Rust's runtime changes it; see
/// `grader::probe`.
#[used]
#[link_section = ".init_array"]
static CAPTURE_STATE_AT_EXEC: extern "C" fn() = grader::probe::capture_state_at_exec;

fn main() -> ExitCode {
    // Hidden: the grader as a probe stage inside a student's pipeline.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("__probe") {
        return ExitCode::from(grader::probe::run(&argv[2..]));
    }
    // Before any thread starts, so that every thread has every signal
    // blocked (they are read in one place) and the grader may still enter a
    // user namespace.
    signals::block_all();
    let args = grader::cli::Args::parse();
    // Before the grader makes itself non-dumpable: a non-dumpable process
    // cannot write its own `uid_map` in a fresh user namespace.
    pidns::prepare();
    grader::protect::make_undumpable();
    reaper::become_subreaper();
    // In watch mode Ctrl-C is how the student stops the grader.
    interrupt::guard(if args.watch.is_some() { Sigint::Quits("watch stopped") } else { Sigint::Interrupts });
    let outcome = grader::app::run(args);
    interrupt::hold_if_interrupted();
    let code = match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("grader: {e}");
            ExitCode::from(2)
        }
    };
    leash::clean_up();
    grader::harness::ipc::sweep_at_exit(); // ipc leaks: no object outlives the grader
    code
}

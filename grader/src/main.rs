use std::process::ExitCode;

use clap::Parser;

use grader::harness::contain;

fn main() -> ExitCode {
    let args = grader::cli::Args::parse();
    contain::become_subreaper();
    contain::guard_interrupts();
    let code = match grader::app::run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("grader: {e}");
            ExitCode::from(2)
        }
    };
    contain::kill_strays();
    code
}

//! faxsend: parse the arguments, run, report.

use std::process::ExitCode;

use clap::Parser;
use faxsend::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match faxsend::run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faxsend: {e:#}");
            ExitCode::from(faxsend::exit::BAD_INPUT)
        }
    }
}

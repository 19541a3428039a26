//! faxsend: parse the arguments, run, report.

use std::process::ExitCode;

use faxsend::cli::Cli;

fn main() -> ExitCode {
    common::daemon::memory::tune_allocator();
    // Also serves the hidden --generate-completions SHELL and --generate-man.
    let cli: Cli = common::daemon::cli_docs::parse();
    match faxsend::run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faxsend: {e:#}");
            ExitCode::from(e.exit_code())
        }
    }
}

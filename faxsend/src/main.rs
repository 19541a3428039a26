//! faxsend: parse the arguments, run, report.

use std::process::ExitCode;

use faxsend::cli::Cli;

fn main() -> ExitCode {
    common::daemon::memory::tune_allocator();
    // Also serves the hidden --generate-completions SHELL and --generate-man.
    let cli: Cli = common::daemon::cli_docs::parse();
    // What the flags and environment leave open, from the device config file.
    let file = common::device::config::DeviceFile::load().map_err(|e| e.to_string());
    let cli = match file.and_then(|f| cli.with_device_file(f)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("faxsend: {e}");
            return ExitCode::from(faxsend::exit::BAD_INPUT);
        }
    };
    match faxsend::run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faxsend: {e:#}");
            ExitCode::from(e.exit_code())
        }
    }
}

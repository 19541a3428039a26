//! faxsend, the sending fax device: turns documents (PDFs, images, text)
//! into fax pages (with a cover page and tag lines when asked), then either
//! writes them to a file (`--output`) or calls a number through a gateway
//! and prints a delivery report.
//!
//! - [`cli`]: the command-line arguments.
//! - [`encode`]: encode-only mode.
//! - [`send`]: the call: log in, send, wait for every confirmation.
//! - [`queue`]: `--queue`: hand the fax to the gateway's queue instead.
//! - [`jobs_cli`]: what `--queue`, faxstat and faxrm share (login, one
//!   request to the queue, printing jobs, a job's exit code).
//! - [`exit`]: the documented exit codes.
//! - [`error`]: why faxsend stops without a call outcome: bad input (exit 2)
//!   or a failure of the machine (exit 1).

pub mod cli;
pub mod encode;
pub mod error;
pub mod exit;
pub mod jobs_cli;
pub mod queue;
pub mod send;

use std::process::ExitCode;

use cli::Cli;
pub use error::Error;

/// Runs faxsend with parsed arguments; the exit code of the call, or of
/// the [`Error`] that stopped it.
pub fn run(cli: &Cli) -> Result<ExitCode, Error> {
    let Some(output) = &cli.output else {
        let code = match cli.queue.queue {
            true => queue::run(cli)?,
            false => send::run(cli)?,
        };
        return Ok(ExitCode::from(code));
    };
    let document = encode::document_options(cli)?;
    let pages = encode::write_output(&cli.files, &document, output)?;
    let noun = if pages == 1 { "page" } else { "pages" };
    eprintln!("faxsend: wrote {pages} {noun} to {}", output.display());
    Ok(ExitCode::SUCCESS)
}

//! faxsend, the sending fax device: turns documents (PDFs, images, text)
//! into fax pages (with a cover page and tag lines when asked), then either
//! writes them to a file (`--output`) or calls a number through a gateway
//! and prints a delivery report.
//!
//! - [`cli`]: the command-line arguments.
//! - [`encode`]: encode-only mode.
//! - [`send`]: the call: log in, send, wait for every confirmation.
//! - [`exit`]: the documented exit codes.

pub mod cli;
pub mod encode;
pub mod exit;
pub mod send;

use std::process::ExitCode;

use cli::Cli;

/// Runs faxsend with parsed arguments.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let Some(output) = &cli.output else {
        let code = send::run(cli)?;
        return Ok(ExitCode::from(code));
    };
    let document = encode::document_options(cli)?;
    let pages = encode::write_output(&cli.files, &document, output)?;
    let noun = if pages == 1 { "page" } else { "pages" };
    eprintln!("faxsend: wrote {pages} {noun} to {}", output.display());
    Ok(ExitCode::SUCCESS)
}

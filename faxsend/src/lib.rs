//! faxsend, the sending fax device: turns images into fax pages and, for
//! now, writes them to a file (`--output`); sending over the network comes
//! later.
//!
//! - [`cli`]: the command-line arguments.
//! - [`encode`]: encode-only mode.

pub mod cli;
pub mod encode;

use std::process::ExitCode;

use cli::Cli;

/// Exit code when sending was asked for but is not built yet.
pub const EXIT_NOT_BUILT: u8 = 1;
/// Exit code for bad input or usage.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Runs faxsend with parsed arguments.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let Some(output) = &cli.output else {
        eprintln!("faxsend: sending is not built yet; use --output OUT.tif to encode to a file");
        return Ok(ExitCode::from(EXIT_NOT_BUILT));
    };
    let pages = encode::write_output(&cli.files, &cli.encode.options(), output)?;
    let noun = if pages == 1 { "page" } else { "pages" };
    eprintln!("faxsend: wrote {pages} {noun} to {}", output.display());
    Ok(ExitCode::SUCCESS)
}

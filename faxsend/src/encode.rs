//! Encode-only mode: images in, a TIFF Class F file out, no network.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use common::codec::tiff_write::document_bytes;
use common::codec::{EncodeOptions, load_document_with_progress};
use indicatif::{ProgressBar, ProgressStyle};

/// Encodes `files` into the fax file `output` and returns the page count.
///
/// The file is written beside `output` under a temporary name and renamed
/// at the end, so a failure (bad input included) leaves no output file and
/// never a half-written one.
pub fn write_output(
    files: &[PathBuf],
    opts: &EncodeOptions,
    output: &Path,
) -> anyhow::Result<usize> {
    let progress = progress_bar();
    let pages = load_document_with_progress(files, opts, &|done| {
        if let Some(bar) = &progress {
            bar.set_position(done as u64);
        }
    });
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let pages = pages?;
    let bytes = document_bytes(&pages)?;

    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".faxsend-")
        .suffix(".part")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    temp.write_all(&bytes)
        .and_then(|()| temp.as_file().sync_data())
        .with_context(|| format!("cannot write {}", output.display()))?;
    temp.persist(output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(pages.len())
}

/// A page counter on stderr, only when a person is watching it.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} encoding: {pos} pages done ({elapsed})")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

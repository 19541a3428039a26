//! Turning the files on the command line into fax pages: the document
//! options (cover page, tag line) the flags ask for, and encode-only mode
//! (files in, a TIFF Class F file out, no network).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use common::codec::cover::{Cover, CoverText};
use common::codec::tagline::{Parties, TagLine, now};
use common::codec::tiff_write::document_bytes;
use common::codec::{DocumentOptions, load_document_with_progress};
use common::number::Number;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::Cli;
use crate::error::{Error, Usage};

/// The document the command line describes for the (first) recipient:
/// encoding flags, and a cover page and tag line when asked for (the tag
/// line whenever the sender's number is known, unless --no-tagline).
pub fn document_options(cli: &Cli) -> Result<DocumentOptions, Usage> {
    document_options_for(cli, cli.call.to.first())
}

/// [`document_options`] for recipient `to` (each has its own cover page).
pub fn document_options_for(cli: &Cli, to: Option<&Number>) -> Result<DocumentOptions, Usage> {
    let extras = &cli.extras;
    let parties = cli.call.from.as_ref().map(|from| Parties {
        from_number: from.to_string(),
        from_name: extras.from_name.clone(),
        to_number: to.map(ToString::to_string),
        to_name: extras.to_name.clone(),
        when: now(),
    });
    let Some(parties) = parties else {
        if extras.cover {
            return Err(Usage(
                "--cover needs --from (the sender's number, printed on the cover page)".into(),
            ));
        }
        if extras.tagline.is_some() {
            return Err(Usage(
                "--tagline needs --from (the tag line names the sender)".into(),
            ));
        }
        return Ok(DocumentOptions {
            encode: cli.encode.options(),
            ..DocumentOptions::default()
        });
    };
    let cover = extras.cover.then(|| Cover {
        parties: parties.clone(),
        text: CoverText {
            subject: extras.subject.clone(),
            // Shells pass "\n" literally; it means a new line here.
            comment: extras.comment.as_ref().map(|c| c.replace("\\n", "\n")),
        },
    });
    let tagline = (!extras.no_tagline).then(|| TagLine {
        format: extras.tagline.clone().unwrap_or_default(),
        parties,
    });
    Ok(DocumentOptions {
        encode: cli.encode.options(),
        cover,
        tagline,
    })
}

/// Encodes `files` into the fax file `output` and returns the page count.
///
/// The file is written beside `output` under a temporary name and renamed
/// at the end, so a failure (bad input included) leaves no output file and
/// never a half-written one. Failing to write it is [`Error::Internal`]:
/// the documents were fine, the disk or the directory was not.
pub fn write_output(
    files: &[PathBuf],
    opts: &DocumentOptions,
    output: &Path,
) -> Result<usize, Error> {
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
    // Pages we encoded ourselves: a failure to lay them out is ours.
    let bytes = document_bytes(&pages).map_err(|e| Error::Internal(e.into()))?;

    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".faxsend-")
        .suffix(".part")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))
        .map_err(Error::Internal)?;
    temp.write_all(&bytes)
        .and_then(|()| temp.as_file().sync_data())
        .with_context(|| format!("cannot write {}", output.display()))
        .map_err(Error::Internal)?;
    temp.persist(output)
        .with_context(|| format!("cannot write {}", output.display()))
        .map_err(Error::Internal)?;
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

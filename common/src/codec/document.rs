//! Loading a whole document: every page of every file (PDF, image, TIFF,
//! text), an optional cover page first and a tag line on every page,
//! converted and encoded on all cores, in order.
//!
//! Every file is opened and its pages counted before any page is rendered,
//! so a broken or password-protected file fails before work is done and
//! "page N of M" is known. Pages then stream through rendering, conversion
//! and encoding a few at a time (as many as there are cores): only
//! encoded pages are kept, never a document's worth of bitmaps.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use super::bitmap::Bitmap;
use super::convert::to_fax_page;
use super::cover::Cover;
use super::encode::encode;
use super::error::CodecError;
use super::input::{SourcePage, input_pages, read_file};
use super::page::{EncodeOptions, EncodedPage};
use super::pdf::{PageRenderer, PdfDocument, is_pdf};
use super::tagline::TagLine;
use super::text::{decode_text, looks_like_text, paginate, render_page};
use super::tiff_read::{directory_error, is_tiff};

/// How to turn files into a fax: page encoding, and what we add.
#[derive(Clone, Debug, Default)]
pub struct DocumentOptions {
    /// Paper, resolution, compression, dithering, orientation.
    pub encode: EncodeOptions,
    /// A cover page to send first.
    pub cover: Option<Cover>,
    /// A tag line for the top of every page (the cover page's too).
    pub tagline: Option<TagLine>,
}

/// Reads `paths` in order and turns every page into an encoded fax page.
pub fn load_document(
    paths: &[PathBuf],
    opts: &EncodeOptions,
) -> Result<Vec<EncodedPage>, CodecError> {
    let opts = DocumentOptions {
        encode: *opts,
        ..DocumentOptions::default()
    };
    load_document_with_progress(paths, &opts, &|_| {})
}

/// Like [`load_document`] with a cover page and tag line as `opts` asks,
/// calling `progress` with the number of pages encoded so far each time
/// one more is done (from any thread; counts rise by one but may arrive
/// out of order).
pub fn load_document_with_progress(
    paths: &[PathBuf],
    opts: &DocumentOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<EncodedPage>, CodecError> {
    if paths.is_empty() {
        return Err(CodecError::NoInput);
    }
    let sources = paths
        .iter()
        .map(|path| Source::open(path, &opts.encode))
        .collect::<Result<Vec<_>, _>>()?;
    let cover_pages = usize::from(opts.cover.is_some());
    let total = cover_pages + sources.iter().map(Source::page_count).sum::<usize>();

    let done = AtomicUsize::new(0);
    let finish = |bitmap: Bitmap, number: usize| -> Result<EncodedPage, CodecError> {
        let bitmap = match &opts.tagline {
            Some(tagline) => tagline.stamp(&bitmap, number, total),
            None => bitmap,
        };
        let page = encode(&bitmap, opts.encode.compression)?;
        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
        Ok(page)
    };

    let mut document = Vec::with_capacity(total);
    if let Some(cover) = &opts.cover {
        document.push(finish(cover.render(total, &opts.encode), 1)?);
    }
    for source in &sources {
        let first = document.len() + 1;
        let convert = |source_page: SourcePage, i: usize| {
            to_fax_page(source_page, &opts.encode).map_err(|reason| CodecError::BadPage {
                path: source.path().to_owned(),
                page: i + 1,
                reason,
            })
        };
        let pages: Vec<EncodedPage> = match source {
            Source::Pdf(pdf) => on_workers(pdf.page_count(), PageRenderer::new, |renderer, i| {
                let page = pdf.render(renderer, i, &opts.encode)?;
                finish(convert(page, i)?, first + i)
            })?,
            Source::Text { pages, .. } => pages
                .par_iter()
                .enumerate()
                .map(|(i, lines)| finish(render_page(lines, &opts.encode), first + i))
                .collect::<Result<_, _>>()?,
            Source::Raster { path, bytes, .. } => {
                // A TIFF's pages are read in order by whichever worker is
                // free (the bridge hands them out one by one) and decoded,
                // converted and encoded on all cores meanwhile.
                let mut pages: Vec<(usize, EncodedPage)> = input_pages(path, bytes)?
                    .enumerate()
                    .par_bridge()
                    .map(|(i, pending)| {
                        let page = convert(pending?.load()?, i)?;
                        Ok((i, finish(page, first + i)?))
                    })
                    .collect::<Result<_, CodecError>>()?;
                pages.sort_unstable_by_key(|&(i, _)| i);
                pages.into_iter().map(|(_, page)| page).collect()
            }
        };
        document.extend(pages);
    }
    Ok(document)
}

/// Runs `job` for 0..count on one thread per core, each with its own state
/// from `init`, handing out numbers in order; returns the results in order,
/// or the error of the lowest number that failed (later numbers are then
/// not started).
///
/// Not rayon: its `map_init` makes a new state for every split of the
/// work, and a PDF renderer's state (parsed fonts, page-sized buffers) is
/// what makes the next page cheap.
fn on_workers<S, T: Send>(
    count: usize,
    init: impl Fn() -> S + Sync,
    job: impl Fn(&mut S, usize) -> Result<T, CodecError> + Sync,
) -> Result<Vec<T>, CodecError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count.max(1));
    let mut results: Vec<(usize, Result<T, CodecError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    let mut done = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        let result = job(&mut state, i);
                        failed.fetch_or(result.is_err(), Ordering::Relaxed);
                        done.push((i, result));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            // A worker that panicked lost its pages; its panic goes on.
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// One input file, opened and its pages counted.
enum Source {
    Pdf(PdfDocument),
    /// An image or a TIFF.
    Raster {
        path: PathBuf,
        bytes: Vec<u8>,
        pages: usize,
    },
    Text {
        path: PathBuf,
        /// The lines of every page.
        pages: Vec<Vec<String>>,
    },
}

impl Source {
    /// Reads `path` and finds what it is: a PDF, a TIFF or other image, or
    /// text. Fails (naming the file) when it is none of these, is damaged,
    /// or holds no page.
    fn open(path: &Path, opts: &EncodeOptions) -> Result<Source, CodecError> {
        let bytes = read_file(path)?;
        let source = if is_pdf(&bytes) {
            Source::Pdf(PdfDocument::open(path, bytes)?)
        } else if is_tiff(&bytes) {
            let pages = count_tiff_pages(path, &bytes)?;
            Source::Raster {
                path: path.to_owned(),
                bytes,
                pages,
            }
        } else if image::guess_format(&bytes).is_ok() {
            Source::Raster {
                path: path.to_owned(),
                bytes,
                pages: 1,
            }
        } else if has_text_extension(path) || looks_like_text(&bytes) {
            let text = decode_text(path, &bytes)?;
            Source::Text {
                path: path.to_owned(),
                pages: paginate(&text, opts),
            }
        } else {
            return Err(CodecError::NotAnImage {
                path: path.to_owned(),
                reason: "unrecognised file format".into(),
            });
        };
        if source.page_count() == 0 {
            return Err(CodecError::NoPages {
                path: path.to_owned(),
            });
        }
        Ok(source)
    }

    fn path(&self) -> &Path {
        match self {
            Source::Pdf(pdf) => pdf.path(),
            Source::Raster { path, .. } | Source::Text { path, .. } => path,
        }
    }

    fn page_count(&self) -> usize {
        match self {
            Source::Pdf(pdf) => pdf.page_count(),
            Source::Raster { pages, .. } => *pages,
            Source::Text { pages, .. } => pages.len(),
        }
    }
}

/// Text by its name, whatever its bytes look like (so a `.txt` that is not
/// UTF-8 gets a message about its encoding, not about its format).
fn has_text_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["txt", "text", "log", "asc", "csv", "md"].contains(&e.to_ascii_lowercase().as_str())
    })
}

/// How many pages (directories) a TIFF has, reading no image data.
fn count_tiff_pages(path: &Path, bytes: &[u8]) -> Result<usize, CodecError> {
    super::tiff_check::check_ifds(bytes).map_err(|reason| CodecError::NotAnImage {
        path: path.to_owned(),
        reason: format!("tiff: {reason}"),
    })?;
    let mut decoder = tiff::decoder::Decoder::new(std::io::Cursor::new(bytes))
        .map_err(|e| directory_error(path, 1, e))?;
    let mut pages = 1;
    while decoder.more_images() {
        pages += 1;
        decoder
            .next_image()
            .map_err(|e| directory_error(path, pages, e))?;
    }
    Ok(pages)
}

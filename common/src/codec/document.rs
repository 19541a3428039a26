//! Loading a whole document: every page of every file, converted and
//! encoded on all cores, in order.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::convert::to_fax_page;
use super::encode::encode;
use super::error::CodecError;
use super::input::{input_pages, read_file};
use super::page::{EncodeOptions, EncodedPage};

/// Reads `paths` in order and turns every page into an encoded fax page.
pub fn load_document(
    paths: &[PathBuf],
    opts: &EncodeOptions,
) -> Result<Vec<EncodedPage>, CodecError> {
    load_document_with_progress(paths, opts, &|_| {})
}

/// Like [`load_document`], calling `progress` with the number of pages
/// encoded so far each time one more is done (from any thread; counts rise
/// by one but may arrive out of order).
pub fn load_document_with_progress(
    paths: &[PathBuf],
    opts: &EncodeOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<EncodedPage>, CodecError> {
    if paths.is_empty() {
        return Err(CodecError::NoInput);
    }
    let done = AtomicUsize::new(0);
    let mut document = Vec::new();
    // One file at a time. Its pages are read in order by whichever worker
    // is free (the bridge hands them out one by one), and decoded, converted
    // and encoded on all cores meanwhile, so reading overlaps encoding and
    // only pages in flight are held decoded.
    for path in paths {
        let bytes = read_file(path)?;
        let mut pages: Vec<(usize, EncodedPage)> = input_pages(path, &bytes)?
            .enumerate()
            .par_bridge()
            .map(|(i, pending)| {
                let source = pending?.load()?;
                let bad = |reason: String| CodecError::BadPage {
                    path: path.clone(),
                    page: i + 1,
                    reason,
                };
                let bitmap = to_fax_page(source, opts).map_err(bad)?;
                let page = encode(&bitmap, opts.compression).map_err(|e| bad(e.to_string()))?;
                progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                Ok((i, page))
            })
            .collect::<Result<_, CodecError>>()?;
        if pages.is_empty() {
            return Err(CodecError::NoPages { path: path.clone() });
        }
        pages.sort_unstable_by_key(|&(i, _)| i);
        let pages = pages.into_iter().map(|(_, page)| page);
        document.extend(pages);
    }
    Ok(document)
}

//! Retries of one fax (same call id): what the callee already holds, and
//! where the caller picks up. Pure functions, shared by both sides, so the
//! caller and the callee cannot disagree on what "the same pages" means.

use sha2::{Digest, Sha256};

use crate::codec::EncodedPage;
use crate::link::message::HeldPages;

/// SHA-256 over pages as they are (or would be) stored: every header field
/// and the compressed data. Two lists with the same digest are the same fax
/// pages, bit for bit.
pub fn digest<'a>(pages: impl IntoIterator<Item = &'a EncodedPage>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for page in pages {
        hash.update(page.width.to_le_bytes());
        hash.update(page.height.to_le_bytes());
        hash.update(page.resolution.lines_per_inch().to_le_bytes());
        hash.update(page.compression.name().as_bytes());
        hash.update((page.data.len() as u64).to_le_bytes());
        hash.update(&page.data);
    }
    hash.finalize().into()
}

/// What the callee offers for the pages it holds.
pub fn held(pages: &[EncodedPage], complete: bool) -> HeldPages {
    HeldPages {
        pages: pages.len() as u32,
        digest: digest(pages),
        complete,
    }
}

/// The first page the caller sends: the callee's count when its pages are
/// exactly the caller's first pages (as fitted for this callee), else 0 (start
/// over: the pages differ, e.g. the callee's capabilities changed).
pub fn first_page_to_send<'a>(
    held: Option<&HeldPages>,
    fitted: impl IntoIterator<Item = &'a EncodedPage>,
) -> u32 {
    let Some(held) = held else { return 0 };
    let mine: Vec<&EncodedPage> = fitted.into_iter().take(held.pages as usize).collect();
    if mine.len() == held.pages as usize && digest(mine) == held.digest {
        held.pages
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Compression, Resolution};

    fn page(seed: u8) -> EncodedPage {
        EncodedPage {
            width: 1728,
            height: 10,
            resolution: Resolution::Fine,
            compression: Compression::G4,
            data: vec![seed; 40],
        }
    }

    #[test]
    fn a_new_fax_starts_at_page_0() {
        assert_eq!(first_page_to_send(None, &[page(1), page(2)]), 0);
    }

    #[test]
    fn the_same_first_pages_resume_after_them() {
        let mine = [page(1), page(2), page(3)];
        assert_eq!(first_page_to_send(Some(&held(&mine[..2], false)), &mine), 2);
        assert_eq!(first_page_to_send(Some(&held(&mine, true)), &mine), 3);
        assert_eq!(first_page_to_send(Some(&held(&[], false)), &mine), 0);
    }

    #[test]
    fn different_pages_start_over() {
        let mine = [page(1), page(2), page(3)];
        // Other data, another resolution, or more pages than the caller has.
        assert_eq!(first_page_to_send(Some(&held(&[page(9)], false)), &mine), 0);
        let mut standard = page(1);
        standard.resolution = Resolution::Standard;
        assert_eq!(
            first_page_to_send(Some(&held(&[standard], false)), &mine),
            0
        );
        let four = [page(1), page(2), page(3), page(4)];
        assert_eq!(first_page_to_send(Some(&held(&four, true)), &mine), 0);
    }
}

//! Fitting pages to what a callee can receive: compression, resolution,
//! width.

use serde::{Deserialize, Serialize};

use super::bitmap::Bitmap;
use super::decode::decode;
use super::encode::encode;
use super::error::CodecError;
use super::page::{Compression, EncodedPage, FAX_X_DPI, PageInfo, Paper, Resolution};

/// What a receiving fax device accepts, announced when it answers a call.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capabilities {
    /// Compressions it decodes.
    pub compressions: Vec<Compression>,
    /// Vertical resolutions it prints.
    pub resolutions: Vec<Resolution>,
    /// Page widths in pixels it prints (1728, 2048, 2432).
    pub widths: Vec<u32>,
    /// Most pages it takes in one call.
    pub max_pages: u32,
}

impl Capabilities {
    /// Everything faxmesh can produce, and no page limit.
    pub fn all() -> Capabilities {
        let mut widths: Vec<u32> = Paper::ALL.iter().map(|p| p.width_px()).collect();
        widths.dedup();
        Capabilities {
            compressions: Compression::ALL.to_vec(),
            resolutions: Resolution::ALL.to_vec(),
            widths,
            max_pages: u32::MAX,
        }
    }

    /// Whether a page can be sent as it is.
    pub fn accepts(&self, page: &PageInfo) -> bool {
        self.compressions.contains(&page.compression)
            && self.resolutions.contains(&page.resolution)
            && self.widths.contains(&page.width)
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::all()
    }
}

/// Returns `page` as the callee can take it: the very same bytes when it
/// already fits; otherwise decoded, resized to the nearest supported width
/// and resolution, and encoded with the best supported compression
/// (G4, then MR, then MH).
pub fn fit_page(page: &EncodedPage, caps: &Capabilities) -> Result<EncodedPage, CodecError> {
    let compression =
        caps.compressions
            .iter()
            .min()
            .copied()
            .ok_or(CodecError::NoCommonCapability {
                what: "compression",
            })?;
    if caps.resolutions.is_empty() {
        return Err(CodecError::NoCommonCapability { what: "resolution" });
    }
    if caps.widths.is_empty() {
        return Err(CodecError::NoCommonCapability { what: "width" });
    }
    if caps.accepts(&page.info()) {
        return Ok(page.clone());
    }
    let resolution = nearest(&caps.resolutions, page.resolution, |r| r.row_multiple());
    let width = nearest(&caps.widths, page.width, |w| *w);
    let bitmap = decode(page)?;
    let fitted = if (width, resolution) == (page.width, page.resolution) {
        bitmap
    } else {
        reshape(&bitmap, width, resolution)
    };
    encode(&fitted, compression)
}

/// The supported value equal to `want`, else the largest below it (lose
/// detail rather than invent it), else the smallest above it.
fn nearest<T: Copy + PartialEq, K: Ord>(supported: &[T], want: T, key: impl Fn(&T) -> K) -> T {
    if supported.contains(&want) {
        return want;
    }
    let below = supported
        .iter()
        .filter(|v| key(v) < key(&want))
        .max_by_key(|v| key(v));
    let above = supported.iter().min_by_key(|v| key(v));
    // `supported` is not empty (checked by the caller), so one of them is Some.
    *below.or(above).unwrap_or(&want)
}

/// Resizes a bilevel fax page to `width` pixels and `resolution`.
///
/// A narrower width scales the page down by the ratio, rows included, so the
/// aspect stays; each output pixel is black if any pixel it covers is (OR),
/// which keeps one-pixel lines. A wider width centres the page on white
/// margins, as a fax machine does with narrower paper. Lower resolutions OR
/// whole rows together (superfine to fine merges pairs), higher ones repeat
/// rows.
pub fn reshape(page: &Bitmap, width: u32, resolution: Resolution) -> Bitmap {
    let src_w = page.width();
    let src_multiple = page
        .fax_resolution()
        .map_or(f64::from(page.y_dpi()) / 98.0, |r| {
            f64::from(r.row_multiple())
        });
    let shrink = if width < src_w {
        f64::from(width) / f64::from(src_w)
    } else {
        1.0
    };
    let rows_factor = f64::from(resolution.row_multiple()) / src_multiple * shrink;
    let rows = ((f64::from(page.height()) * rows_factor).round() as u32).max(1);

    // Horizontal pass: map every source row to the new width.
    let mut across = Bitmap::new(width, page.height(), FAX_X_DPI, page.y_dpi());
    let margin = width.saturating_sub(src_w) / 2;
    for y in 0..page.height() {
        for x in 0..src_w {
            if page.get(x, y) {
                let to = if shrink < 1.0 {
                    ((f64::from(x) * shrink) as u32).min(width - 1)
                } else {
                    x + margin
                };
                across.set(to, y, true);
            }
        }
    }

    // Vertical pass: output row y takes source rows [y / f, (y + 1) / f).
    let mut out = Bitmap::new(width, rows, FAX_X_DPI, resolution.lines_per_inch());
    let last = page.height() - 1;
    for y in 0..rows {
        let from = ((f64::from(y) / rows_factor) as u32).min(last);
        let to = ((f64::from(y + 1) / rows_factor) as u32).clamp(from + 1, last + 1);
        let row = out.row_mut(y);
        for src in from..to {
            for (d, s) in row.iter_mut().zip(across.row(src)) {
                *d |= *s;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(width: u32, resolution: Resolution) -> Bitmap {
        let mut page = Bitmap::new_fax(width, 40 * resolution.row_multiple(), resolution);
        page.fill_rect(10, 5, width - 10, 6); // a one-row line
        page.fill_rect(100, 0, 101, page.height()); // a one-pixel column
        page
    }

    #[test]
    fn superfine_to_fine_ors_pairs_of_rows_and_keeps_thin_lines() {
        let page = sample(1728, Resolution::Superfine);
        let fine = reshape(&page, 1728, Resolution::Fine);
        assert_eq!(fine.height(), page.height() / 2);
        assert_eq!(fine.fax_resolution(), Some(Resolution::Fine));
        for y in 0..fine.height() {
            let expect = (page.get(500, 2 * y) || page.get(500, 2 * y + 1)) as u8;
            assert_eq!(fine.get(500, y) as u8, expect, "row {y}");
            assert!(fine.get(100, y), "the column survives in row {y}");
        }
    }

    #[test]
    fn narrower_width_scales_rows_too() {
        let page = sample(2432, Resolution::Fine);
        let a4 = reshape(&page, 1728, Resolution::Fine);
        assert_eq!(a4.width(), 1728);
        let expect = (f64::from(page.height()) * 1728.0 / 2432.0).round() as u32;
        assert_eq!(a4.height(), expect);
        assert!(a4.get(71, 0), "the column lands at 100 * 1728/2432");
    }

    #[test]
    fn wider_width_centres_the_page() {
        let page = sample(1728, Resolution::Standard);
        let b4 = reshape(&page, 2048, Resolution::Standard);
        assert_eq!((b4.width(), b4.height()), (2048, page.height()));
        assert!(b4.get(100 + 160, 3));
        assert!(!b4.get(100, 3));
    }
}

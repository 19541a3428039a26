//! Test documents made by code, and the pixels on both ends of a call.
//!
//! Pages look like text (lines of words made of glyph-like strokes), so the
//! codecs see what real faxes hold: long white runs and short black ones.
//! The same seed always gives the same page.
//!
//! To compare pixels, [`sent_pages`] encodes the input files exactly as
//! faxsend does by default (`load_document` with the default options) and
//! decodes the result; [`read_fax`] decodes a received TIFF. A delivered fax
//! must give the very same bitmaps.

use std::path::{Path, PathBuf};
use std::process::Command;

use common::codec::page::{Compression, EncodedPage};
use common::codec::{Bitmap, EncodeOptions, Resolution, decode, encode, load_document, read_pages};
use image::{GrayImage, Luma};

/// A small deterministic generator (SplitMix64): enough to vary glyphs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % u64::from(hi - lo)) as u32
    }
}

/// Paints a text-like page of `width` x `height` pixels by calling `fill`
/// with black rectangles `(x0, y0, x1, y1)`, ends exclusive.
fn paint_text(seed: u64, width: u32, height: u32, mut fill: impl FnMut(u32, u32, u32, u32)) {
    let mut rng = Rng(seed);
    // Sizes follow the page: a line of text about 1/50 of the width high.
    let x_height = (width / 80).max(6);
    let line = x_height * 2;
    let margin = width / 12;
    let stroke = (x_height / 6).max(1);
    let mut y = margin.min(height / 4);
    while y + line < height.saturating_sub(margin / 2) {
        let mut x = margin;
        let line_end = width - margin - rng.range(0, width / 4);
        while x < line_end {
            // One word of glyphs.
            let letters = rng.range(1, 9);
            for _ in 0..letters {
                let w = rng.range(x_height / 2, x_height);
                if x + w >= width - margin {
                    break;
                }
                let shape = rng.next();
                let top = if shape & 1 != 0 { y } else { y + x_height / 2 };
                let base = y + x_height + x_height / 2;
                if shape & 2 != 0 {
                    fill(x, top, x + stroke, base);
                }
                if shape & 4 != 0 {
                    fill(x + w - stroke, y + x_height / 2, x + w, base);
                }
                if shape & 8 != 0 {
                    fill(x, y + x_height / 2, x + w, y + x_height / 2 + stroke);
                }
                if shape & 16 != 0 {
                    fill(x, base - stroke, x + w, base);
                }
                if shape & 0x60 == 0 {
                    // A diagonal, step by step, so the coder sees slanted edges.
                    for i in 0..w {
                        let yy = y + x_height / 2 + i * x_height / w;
                        fill(x + i, yy, (x + i + stroke).min(x + w), yy + stroke);
                    }
                }
                x += w + stroke * 2;
            }
            x += x_height;
        }
        y += line + rng.range(0, line / 2);
    }
}

/// A text-like greyscale page (white paper, black ink).
pub fn text_image(seed: u64, width: u32, height: u32) -> GrayImage {
    let mut img = GrayImage::from_pixel(width, height, Luma([255]));
    paint_text(seed, width, height, |x0, y0, x1, y1| {
        for y in y0..y1.min(height) {
            for x in x0..x1.min(width) {
                img.put_pixel(x, y, Luma([0]));
            }
        }
    });
    img
}

/// A text-like bilevel page at fax geometry: 204 dpi across, `resolution` down.
pub fn text_bitmap(seed: u64, width: u32, rows: u32, resolution: Resolution) -> Bitmap {
    let mut page = Bitmap::new_fax(width, rows, resolution);
    paint_text(seed, width, rows, |x0, y0, x1, y1| {
        page.fill_rect(x0, y0, x1.min(width), y1.min(rows));
    });
    page
}

/// Writes a text-like PNG page at `path`.
pub fn write_text_png(path: &Path, seed: u64, width: u32, height: u32) -> PathBuf {
    text_image(seed, width, height)
        .save(path)
        .unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
    path.to_owned()
}

/// Writes `pages` as one multi-page uncompressed bilevel TIFF at `path`.
pub fn write_tiff(path: &Path, pages: &[Bitmap]) -> PathBuf {
    common::codec::tiff_write::write_uncompressed(path, pages)
        .unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
    path.to_owned()
}

/// The pages of a received fax file, decoded.
#[track_caller]
pub fn read_fax(path: &Path) -> Vec<Bitmap> {
    let pages = read_pages(path).unwrap_or_else(|e| panic!("cannot read fax {path:?}: {e}"));
    pages
        .iter()
        .enumerate()
        .map(|(i, p)| decode(p).unwrap_or_else(|e| panic!("page {} of {path:?}: {e}", i + 1)))
        .collect()
}

/// The pages faxsend sends for `files` with its default options, decoded.
#[track_caller]
pub fn sent_pages(files: &[PathBuf]) -> Vec<Bitmap> {
    let pages = load_document(files, &EncodeOptions::default())
        .unwrap_or_else(|e| panic!("cannot encode {files:?}: {e}"));
    pages
        .iter()
        .map(|p| decode(p).unwrap_or_else(|e| panic!("cannot decode what was encoded: {e}")))
        .collect()
}

/// Asserts that two documents hold the same pages, pixel for pixel.
#[track_caller]
pub fn assert_same_pages(got: &[Bitmap], want: &[Bitmap]) {
    assert_eq!(
        got.len(),
        want.len(),
        "page count: got {got:?}, want {want:?}"
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same_geometry =
            (g.width(), g.height(), g.y_dpi()) == (w.width(), w.height(), w.y_dpi());
        assert!(same_geometry, "page {}: got {g:?}, want {w:?}", i + 1);
        if g != w {
            let differ: u32 = g
                .data()
                .iter()
                .zip(w.data())
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            panic!(
                "page {}: {differ} pixels differ (got {g:?}, want {w:?})",
                i + 1
            );
        }
    }
}

/// What `tiffinfo -D` (libtiff reading every strip) prints on stderr for
/// `path`: empty for a clean file.
#[track_caller]
pub fn tiffinfo_errors(path: &Path) -> String {
    let out = Command::new("tiffinfo")
        .arg("-D")
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run tiffinfo ({e}): install libtiff-tools (apt-get install libtiff-tools)"
            )
        });
    assert!(out.status.success(), "tiffinfo -D {path:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A photograph-like greyscale image (smooth gradients and rings): dithered,
/// the worst case for fax compression.
pub fn photo_image(width: u32, height: u32) -> GrayImage {
    GrayImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (
            f64::from(x) / f64::from(width),
            f64::from(y) / f64::from(height),
        );
        let ring = ((fx - 0.3).hypot(fy - 0.6) * 55.0).cos() * 0.3;
        Luma([((fy * 0.7 + fx * 0.3 + ring).clamp(0.0, 1.0) * 255.0) as u8])
    })
}

/// A realistic one-page fax for benchmarks: the sample letter
/// (`samples/letter.png`), fine, G4.
pub fn letter_page() -> EncodedPage {
    let sample = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/letter.png");
    let mut pages =
        common::codec::load_document(&[sample], &common::codec::EncodeOptions::default())
            .expect("the sample encodes");
    pages.remove(0)
}

/// A fine A4-wide page of `rows` rows of random pixels, Group 4 encoded:
/// incompressible, so about 0.4 MB per 1,000 rows on the wire, made quickly
/// (no image decoding or dithering). For tests that need many bytes in flight.
pub fn noise_page(seed: u64, rows: u32) -> EncodedPage {
    encode(&noise_bitmap(seed, rows), Compression::G4).expect("a fax-geometry page encodes")
}

/// The bitmap of [`noise_page`].
pub fn noise_bitmap(seed: u64, rows: u32) -> Bitmap {
    const WIDTH: u32 = 1728;
    let mut rng = Rng(seed);
    let bytes = (WIDTH / 8) as usize * rows as usize;
    let packed: Vec<u8> = (0..bytes.div_ceil(8))
        .flat_map(|_| rng.next().to_le_bytes())
        .take(bytes)
        .collect();
    let fine = Resolution::Fine.lines_per_inch();
    Bitmap::from_packed(WIDTH, rows, 204, fine, packed).expect("rows of 216 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_deterministic_and_text_like() {
        let a = text_bitmap(1, 1728, 400, Resolution::Fine);
        assert_eq!(a, text_bitmap(1, 1728, 400, Resolution::Fine));
        assert_ne!(a, text_bitmap(2, 1728, 400, Resolution::Fine));
        let ink = a.count_black() as f64 / (1728.0 * 400.0);
        assert!((0.02..0.3).contains(&ink), "{ink} of the page is black");
    }

    #[test]
    #[should_panic(expected = "page 2: 1 pixels differ")]
    fn one_pixel_off_is_a_difference() {
        let page = text_bitmap(1, 1728, 200, Resolution::Fine);
        let mut off = page.clone();
        off.set(100, 100, !off.get(100, 100));
        assert_same_pages(&[page.clone(), off], &[page.clone(), page]);
    }
}

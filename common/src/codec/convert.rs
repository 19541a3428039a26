//! Turning any source page into a fax page: scale to the paper width at
//! 204 dpi and the chosen line density, then threshold (text) or
//! Floyd-Steinberg dither (photographs).

use image::GrayImage;
use image::imageops::{FilterType, resize};

use super::bitmap::Bitmap;
use super::error::MAX_SIDE;
use super::fit::reshape;
use super::input::{SourceImage, SourcePage};
use super::page::{EncodeOptions, FAX_X_DPI};

/// Luminance below which a pixel turns black when not dithering: a fixed
/// 50%. Text on white paper separates cleanly at any middle level, and a
/// fixed level (unlike Otsu) cannot turn a blank or nearly blank page into
/// noise.
pub const THRESHOLD: u8 = 128;

/// Converts one page. A bilevel page already at the target width and
/// resolution comes back unchanged; a bilevel fax page at another width or
/// resolution is resized with [`reshape`] (rows OR-ed, so thin lines stay);
/// anything else is scaled in grey levels and made bilevel.
///
/// Fails (with the reason) when the page would be longer than
/// [`MAX_SIDE`] rows once scaled.
pub fn to_fax_page(page: SourcePage, opts: &EncodeOptions) -> Result<Bitmap, String> {
    let width = opts.paper.width_px();
    let resolution = opts.resolution;
    let gray = match page.image {
        SourceImage::Bilevel(bitmap) => match bitmap.fax_resolution() {
            Some(r) if r == resolution && bitmap.width() == width => return Ok(bitmap),
            Some(_) => return Ok(reshape(&bitmap, width, resolution)),
            None => bilevel_to_gray(&bitmap),
        },
        SourceImage::Gray(gray) => gray,
    };
    let (src_w, src_h) = gray.dimensions();
    // Stretch the width to the paper; the height follows from the source's
    // pixel aspect (square unless the file says otherwise) and from 204 dpi
    // across against the chosen lines per inch down.
    let (dx, dy) = page.dpi.unwrap_or((1.0, 1.0));
    let inches_per_src_px = f64::from(width) / f64::from(FAX_X_DPI) / f64::from(src_w);
    let rows =
        f64::from(src_h) * inches_per_src_px * (dx / dy) * f64::from(resolution.lines_per_inch());
    let rows = rows.round().max(1.0);
    if rows > f64::from(MAX_SIDE) {
        return Err(format!(
            "would be {rows} rows long at {width} pixels wide, over the limit of {MAX_SIDE} rows; \
             crop or split the image"
        ));
    }
    let rows = rows as u32;
    let scaled = if (src_w, src_h) == (width, rows) {
        gray
    } else {
        resize(&gray, width, rows, FilterType::Triangle)
    };
    let mut bitmap = Bitmap::new(width, rows, FAX_X_DPI, resolution.lines_per_inch());
    if opts.dither {
        dither(&scaled, &mut bitmap);
    } else {
        threshold(&scaled, &mut bitmap);
    }
    Ok(bitmap)
}

fn bilevel_to_gray(bitmap: &Bitmap) -> GrayImage {
    GrayImage::from_fn(bitmap.width(), bitmap.height(), |x, y| {
        image::Luma([if bitmap.get(x, y) { 0 } else { 255 }])
    })
}

/// Black where luminance is below [`THRESHOLD`].
fn threshold(gray: &GrayImage, out: &mut Bitmap) {
    let width = gray.width() as usize;
    for (y, src) in gray.as_raw().chunks_exact(width).enumerate() {
        let row = out.row_mut(y as u32);
        for (byte, pixels) in row.iter_mut().zip(src.chunks(8)) {
            let mut bits = 0u8;
            for (i, &p) in pixels.iter().enumerate() {
                if p < THRESHOLD {
                    bits |= 0x80 >> i;
                }
            }
            *byte = bits;
        }
    }
}

/// Floyd-Steinberg error diffusion (7/16 right, 3/16 down-left, 5/16 down,
/// 1/16 down-right), scanning left to right.
fn dither(gray: &GrayImage, out: &mut Bitmap) {
    let width = gray.width() as usize;
    // Errors for this row and the next, with a guard cell at each end so the
    // edges need no special cases.
    let mut this = vec![0i32; width + 2];
    let mut next = vec![0i32; width + 2];
    for (y, src) in gray.as_raw().chunks_exact(width).enumerate() {
        next.fill(0);
        for (x, &p) in src.iter().enumerate() {
            let value = i32::from(p) * 16 + this[x + 1];
            let black = value < 128 * 16;
            if black {
                out.set(x as u32, y as u32, true);
            }
            let error = value - if black { 0 } else { 255 * 16 };
            this[x + 2] += error * 7 / 16;
            next[x] += error * 3 / 16;
            next[x + 1] += error * 5 / 16;
            next[x + 2] += error / 16;
        }
        std::mem::swap(&mut this, &mut next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::page::{Paper, Resolution};

    fn gray_page(w: u32, h: u32, level: impl Fn(u32, u32) -> u8) -> SourcePage {
        SourcePage {
            image: SourceImage::Gray(GrayImage::from_fn(w, h, |x, y| image::Luma([level(x, y)]))),
            dpi: None,
        }
    }

    #[test]
    fn scales_to_paper_width_keeping_aspect() {
        let opts = EncodeOptions::default(); // A4, fine
        let page = to_fax_page(gray_page(850, 1100, |_, _| 255), &opts).expect("converts");
        assert_eq!(page.width(), 1728);
        // 8.47 in wide, so 8.47 * 1100/850 = 10.96 in tall: 2148.5 rows at 196 lpi.
        assert_eq!(page.height(), 2149);
        assert_eq!(page.count_black(), 0);
    }

    #[test]
    fn source_dpi_sets_the_pixel_aspect() {
        let opts = EncodeOptions {
            resolution: Resolution::Standard,
            paper: Paper::B4,
            ..EncodeOptions::default()
        };
        let mut page = gray_page(1000, 500, |_, _| 0);
        // Pixels twice as tall as wide.
        page.dpi = Some((200.0, 100.0));
        let bitmap = to_fax_page(page, &opts).expect("converts");
        assert_eq!(bitmap.width(), 2048);
        let expect = (2048.0_f64 / 204.0 / 1000.0 * 500.0 * 2.0 * 98.0).round() as u32;
        assert_eq!(bitmap.height(), expect);
        assert_eq!(bitmap.count_black(), u64::from(2048 * expect));
    }

    #[test]
    fn fax_geometry_bilevel_passes_through_unchanged() {
        let mut bitmap = Bitmap::new_fax(1728, 40, Resolution::Fine);
        bitmap.fill_rect(3, 3, 900, 7);
        bitmap.set(1727, 39, true);
        let page = SourcePage {
            image: SourceImage::Bilevel(bitmap.clone()),
            dpi: Some((204.0, 196.0)),
        };
        let out = to_fax_page(page, &EncodeOptions::default()).expect("converts");
        assert!(out == bitmap);
    }

    #[test]
    fn dither_keeps_mid_grey_about_half_black() {
        let opts = EncodeOptions {
            dither: true,
            ..EncodeOptions::default()
        };
        let page = to_fax_page(gray_page(1728, 400, |_, _| 128), &opts).expect("converts");
        let share =
            page.count_black() as f64 / (f64::from(page.width()) * f64::from(page.height()));
        assert!((0.45..0.55).contains(&share), "{share}");
        let plain = to_fax_page(gray_page(1728, 400, |_, _| 128), &EncodeOptions::default())
            .expect("converts");
        assert_eq!(plain.count_black(), 0, "128 is not below the threshold");
    }
}

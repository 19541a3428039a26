//! Reading input files into source pages: PNG, JPEG, GIF, BMP and PNM with
//! the `image` crate, TIFF (every page, fax or not) with [`super::tiff_read`].

use std::io::Cursor;
use std::path::Path;

use image::{GrayImage, ImageReader};

use super::bitmap::Bitmap;
use super::error::{CodecError, MAX_PIXELS, MAX_SIDE};
use super::tiff_read::{TiffPage, is_tiff, over_white, read_tiff};

/// One page of an input file, before conversion to fax geometry.
#[derive(Debug)]
pub struct SourcePage {
    /// The pixels.
    pub image: SourceImage,
    /// Resolution across and down in dpi, when the file says.
    pub dpi: Option<(f64, f64)>,
}

/// Pixels of a source page.
#[derive(Debug)]
pub enum SourceImage {
    /// Grey levels, 0 black, 255 white (colour is reduced to luminance and
    /// transparency laid over white paper).
    Gray(GrayImage),
    /// Already bilevel, e.g. a page of a fax TIFF.
    Bilevel(Bitmap),
}

/// Reads every page of `path`.
pub fn read_input(path: &Path) -> Result<Vec<SourcePage>, CodecError> {
    let bytes = std::fs::read(path).map_err(|error| CodecError::Read {
        path: path.to_owned(),
        error,
    })?;
    if bytes.is_empty() {
        return Err(CodecError::EmptyFile {
            path: path.to_owned(),
        });
    }
    let pages = if is_tiff(&bytes) {
        read_tiff(path, &bytes)?
            .into_iter()
            .map(|page| match page {
                TiffPage::Bilevel { bitmap, .. } => {
                    let dpi = (bitmap.x_dpi() > 0 && bitmap.y_dpi() > 0)
                        .then(|| (f64::from(bitmap.x_dpi()), f64::from(bitmap.y_dpi())));
                    SourcePage {
                        image: SourceImage::Bilevel(bitmap),
                        dpi,
                    }
                }
                TiffPage::Gray { image, dpi } => SourcePage {
                    image: SourceImage::Gray(image),
                    dpi,
                },
            })
            .collect()
    } else {
        vec![read_other(path, &bytes)?]
    };
    if pages.is_empty() {
        return Err(CodecError::NoPages {
            path: path.to_owned(),
        });
    }
    Ok(pages)
}

/// Reads a single-page format through the `image` crate.
fn read_other(path: &Path, bytes: &[u8]) -> Result<SourcePage, CodecError> {
    let not_image = |reason: String| CodecError::NotAnImage {
        path: path.to_owned(),
        reason,
    };
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| not_image(e.to_string()))
    };
    let format = reader()?
        .format()
        .ok_or_else(|| not_image("unrecognised file format".into()))?;
    // Check the size from the header before decoding anything.
    let (width, height) = reader()?
        .into_dimensions()
        .map_err(|e| not_image(format!("{format:?}: {e}")))?;
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(CodecError::TooLarge {
            path: path.to_owned(),
            page: 1,
            width,
            height,
        });
    }
    if width == 0 || height == 0 {
        return Err(not_image(format!(
            "{format:?} image of {width}x{height} pixels"
        )));
    }
    let image = reader()?
        .decode()
        .map_err(|e| not_image(format!("{format:?}: {e}")))?;
    let gray = if image.color().has_alpha() {
        let la = image.to_luma_alpha8();
        let (w, h) = la.dimensions();
        let pixels = la.pixels().map(|p| over_white(p.0[0], p.0[1])).collect();
        GrayImage::from_raw(w, h, pixels)
            .ok_or_else(|| not_image("inconsistent pixel buffer".into()))?
    } else {
        image.to_luma8()
    };
    Ok(SourcePage {
        image: SourceImage::Gray(gray),
        // The image crate does not report resolution for these formats;
        // square pixels are the safe assumption.
        dpi: None,
    })
}

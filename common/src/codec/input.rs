//! Reading image files into source pages: PNG, JPEG, GIF, BMP and PNM with
//! the `image` crate (JPEG EXIF orientation applied), TIFF (every page, fax
//! or not) with [`super::tiff_read`]. PDFs and text files are
//! [`super::pdf`]'s and [`super::text`]'s.

use std::io::Cursor;
use std::path::Path;

use image::{GrayImage, ImageDecoder, ImageReader};

use super::bitmap::Bitmap;
use super::color::luma;
use super::error::{CodecError, MAX_PIXELS, MAX_SIDE};
use super::tiff_read::{PendingPage, TiffPage, TiffPages, is_tiff, over_white, tiff_pages};

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
    let bytes = read_file(path)?;
    let pages = input_pages(path, &bytes)?
        .map(|page| page?.load())
        .collect::<Result<Vec<_>, _>>()?;
    if pages.is_empty() {
        return Err(CodecError::NoPages {
            path: path.to_owned(),
        });
    }
    Ok(pages)
}

/// The whole of an input file; an empty one is an error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, CodecError> {
    let bytes = std::fs::read(path).map_err(|error| CodecError::Read {
        path: path.to_owned(),
        error,
    })?;
    if bytes.is_empty() {
        return Err(CodecError::EmptyFile {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// The pages of an input file held in `bytes`, one at a time and in order,
/// each still to be [`load`](PendingSource::load)ed: a TIFF's fax pages
/// are decoded there, so pages can decode on several threads while the
/// next ones are read. Ends after the first error.
pub(crate) fn input_pages<'a>(
    path: &'a Path,
    bytes: &'a [u8],
) -> Result<InputPages<'a>, CodecError> {
    Ok(if is_tiff(bytes) {
        InputPages::Tiff(Box::new(tiff_pages(path, bytes)?))
    } else {
        InputPages::One(Some(read_other(path, bytes)))
    })
}

/// See [`input_pages`].
pub(crate) enum InputPages<'a> {
    Tiff(Box<TiffPages<'a>>),
    /// A single-page format, read already.
    One(Option<Result<SourcePage, CodecError>>),
}

impl Iterator for InputPages<'_> {
    type Item = Result<PendingSource, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            InputPages::Tiff(pages) => pages.next().map(|p| p.map(PendingSource::Tiff)),
            InputPages::One(page) => page.take().map(|p| p.map(PendingSource::Ready)),
        }
    }
}

/// A page of an input file, perhaps still to decode.
pub(crate) enum PendingSource {
    Tiff(PendingPage),
    Ready(SourcePage),
}

impl PendingSource {
    /// The page, decoded.
    pub(crate) fn load(self) -> Result<SourcePage, CodecError> {
        let page = match self {
            PendingSource::Ready(page) => return Ok(page),
            PendingSource::Tiff(page) => page.finish()?,
        };
        Ok(match page {
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
    }
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
    // Photos from phones and cameras are stored as the sensor saw them, with
    // an EXIF orientation saying how to turn them; viewers apply it, so do we.
    let mut decoder = reader()?
        .into_decoder()
        .map_err(|e| not_image(format!("{format:?}: {e}")))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = image::DynamicImage::from_decoder(decoder)
        .map_err(|e| not_image(format!("{format:?}: {e}")))?;
    image.apply_orientation(orientation);
    let gray = if image.color().has_color() {
        // Luminance as Pillow and our TIFF and PDF readers compute it
        // (ITU-R 601), not the image crate's (709), so a picture turns the
        // same greys whatever format it comes in.
        let rgba = image.to_rgba8();
        let (w, h) = rgba.dimensions();
        let pixels = rgba
            .pixels()
            .map(|p| over_white(luma(p.0[0], p.0[1], p.0[2]), p.0[3]))
            .collect();
        GrayImage::from_raw(w, h, pixels)
            .ok_or_else(|| not_image("inconsistent pixel buffer".into()))?
    } else if image.color().has_alpha() {
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

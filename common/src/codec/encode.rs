//! Encoding a fax-geometry bitmap with the chosen compression.

use super::bitmap::Bitmap;
use super::error::{CodecError, MAX_SIDE};
use super::g3::{G3Options, encode_g3};
use super::g4::encode_g4;
use super::page::{Compression, EncodedPage};

/// Encodes a page. The bitmap must be at 204 dpi across and one of the fax
/// line densities down (see [`Bitmap::fax_resolution`]), non-empty, and at
/// most [`MAX_SIDE`] pixels on a side.
pub fn encode(page: &Bitmap, compression: Compression) -> Result<EncodedPage, CodecError> {
    let bad = |reason: String| CodecError::BadGeometry {
        width: page.width(),
        height: page.height(),
        reason,
    };
    let resolution = page.fax_resolution().ok_or_else(|| {
        bad(format!(
            "{}x{} dpi is not a fax resolution; convert the page first (204 dpi across, \
             98, 196 or 391 lines per inch down)",
            page.x_dpi(),
            page.y_dpi()
        ))
    })?;
    if page.width() == 0 || page.height() == 0 {
        return Err(bad("a page needs at least one pixel and one row".into()));
    }
    if page.width() > MAX_SIDE || page.height() > MAX_SIDE {
        return Err(bad(format!("a side is over {MAX_SIDE} pixels")));
    }
    let data = match compression {
        Compression::G4 => encode_g4(page),
        Compression::Mr => encode_g3(page, G3Options::mr(resolution.lines_per_inch())),
        Compression::Mh => encode_g3(page, G3Options::mh()),
    };
    Ok(EncodedPage {
        width: page.width(),
        height: page.height(),
        resolution,
        compression,
        data,
    })
}

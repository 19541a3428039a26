//! Group 4 (T.6, MMR) encoding with the `fax` crate.

use fax::encoder::Encoder;
use fax::{Color, VecWriter};

use super::bitmap::Bitmap;

/// Encodes a page as one T.6 strip ending in EOFB, padded to a whole byte.
pub fn encode_g4(page: &Bitmap) -> Vec<u8> {
    let width = page.width();
    let mut encoder = Encoder::new(VecWriter::with_capacity(page.data().len()));
    for y in 0..page.height() {
        let row = page.row(y);
        let pels = (0..width).map(|x| {
            if row[(x / 8) as usize] & (0x80 >> (x % 8)) != 0 {
                Color::Black
            } else {
                Color::White
            }
        });
        // VecWriter's error type is Infallible: writing to a Vec cannot fail.
        let Ok(()) = encoder.encode_line(pels, width);
    }
    let Ok(writer) = encoder.finish();
    writer.finish()
}

//! Group 4 (T.6, MMR) encoding.
//!
//! Why by hand when the `fax` crate encodes Group 4: speed, and because the
//! work is already done. The `fax` crate takes a row as an iterator of
//! pixels and codes it pixel by pixel; on a 1728x2200 fine text page it
//! managed 208 pages/s on one core against libtiff's 320 (`tiffcp -c g4`),
//! and `perf` put 88% of `faxsend --output` in that iterator, which left a
//! 100-page document no faster than `tiffcp` (300 ms against 299 ms). The
//! G3 MR encoder in [`super::g3`] needs a 2D row coder anyway, and T.6 codes
//! its rows exactly the same way (T.6 2.2 refers to T.4 4.2); that coder
//! works on changing elements found a 64-bit word at a time; on the same
//! page this encoder does about 1230 pages/s (libtiff 315, same machine,
//! `cargo bench -p faxmesh-common --bench codec`). The `fax` crate stays as the
//! reference implementation in the tests (`tests/g4_reference.rs`), next
//! to libtiff (`tests/interop.rs`).
//!
//! The layout is libtiff's (`tif_fax3.c`, Fax4Encode and Fax4PostEncode),
//! byte for byte:
//!
//! - no EOLs and no 1D rows: every row is 2D-coded against the one above;
//! - the reference line of the first row is an imaginary all-white row;
//! - the strip ends with EOFB (two EOLs, `0x001001`), then zero bits to a
//!   whole byte.

use super::bit_writer::BitWriter;
use super::bitmap::{Bitmap, row_changes};
use super::g3::encode_2d_row;

/// End of facsimile block: two EOLs (000000000001 000000000001).
const EOFB: u32 = 0x001001;
const EOFB_LEN: u32 = 24;

/// Encodes a page as one T.6 strip ending in EOFB, padded to a whole byte.
pub fn encode_g4(page: &Bitmap) -> Vec<u8> {
    let width = page.width();
    // Text pages compress 20x and more in G4; start with room for 1/16 of
    // the raw size (the Vec grows if a dithered page needs more).
    let mut w = BitWriter::with_capacity(page.data().len() / 16 + 64);
    let mut current = Vec::with_capacity(256);
    // The all-white row above the first one has no changing elements.
    let mut reference = Vec::with_capacity(256);
    for y in 0..page.height() {
        row_changes(page.row(y), width, &mut current);
        encode_2d_row(&mut w, &current, &reference, width);
        std::mem::swap(&mut current, &mut reference);
    }
    w.put(EOFB, EOFB_LEN);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_row_is_one_v0_then_eofb() {
        // One white row of 1728: V0 (a single 1 bit), then EOFB, then
        // padding: 1 000000000001 000000000001 0000000.
        let page = Bitmap::new(1728, 1, 204, 196);
        assert_eq!(encode_g4(&page), vec![0x80, 0x08, 0x00, 0x80]);
    }
}

//! The page model: a bilevel bitmap with its resolution.
//!
//! Rows are packed eight pixels per byte, most significant bit first, 1 =
//! black: the layout of an uncompressed min-is-white TIFF strip, so pages go
//! to and from TIFF without reshuffling bits.

use super::page::{FAX_X_DPI, Resolution};

/// A bilevel page.
///
/// Invariant: the padding bits at the end of each row are 0, so two bitmaps
/// with the same pixels compare equal.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap {
    width: u32,
    height: u32,
    x_dpi: u32,
    y_dpi: u32,
    stride: usize,
    data: Vec<u8>,
}

impl Bitmap {
    /// An all-white page.
    pub fn new(width: u32, height: u32, x_dpi: u32, y_dpi: u32) -> Bitmap {
        let stride = width.div_ceil(8) as usize;
        Bitmap {
            width,
            height,
            x_dpi,
            y_dpi,
            stride,
            data: vec![0; stride * height as usize],
        }
    }

    /// An all-white page at fax geometry: 204 dpi across, `resolution` down.
    pub fn new_fax(width: u32, height: u32, resolution: Resolution) -> Bitmap {
        Bitmap::new(width, height, FAX_X_DPI, resolution.lines_per_inch())
    }

    /// A page from packed rows (`width.div_ceil(8)` bytes each, MSB first,
    /// 1 = black). Returns `None` when `data` has the wrong length.
    pub fn from_packed(
        width: u32,
        height: u32,
        x_dpi: u32,
        y_dpi: u32,
        mut data: Vec<u8>,
    ) -> Option<Bitmap> {
        let stride = width.div_ceil(8) as usize;
        if data.len() != stride * height as usize {
            return None;
        }
        // Restore the invariant whatever the source left in the padding bits.
        let spare = (stride * 8) as u32 - width;
        if spare > 0 && stride > 0 {
            let mask = 0xffu8 << spare;
            for row in data.chunks_exact_mut(stride) {
                if let Some(last) = row.last_mut() {
                    *last &= mask;
                }
            }
        }
        Some(Bitmap {
            width,
            height,
            x_dpi,
            y_dpi,
            stride,
            data,
        })
    }

    /// This page with `rows` white rows added above it.
    pub fn with_rows_above(&self, rows: u32) -> Bitmap {
        let mut data = vec![0; self.stride * rows as usize];
        data.extend_from_slice(&self.data);
        Bitmap {
            height: self.height + rows,
            data,
            ..*self
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in rows.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Horizontal resolution in dots per inch.
    pub fn x_dpi(&self) -> u32 {
        self.x_dpi
    }

    /// Vertical resolution in lines per inch.
    pub fn y_dpi(&self) -> u32 {
        self.y_dpi
    }

    /// The fax resolution of this page, when it is at 204 dpi across and one
    /// of the three fax line densities down.
    pub fn fax_resolution(&self) -> Option<Resolution> {
        let x_ok = self.x_dpi.abs_diff(FAX_X_DPI) <= FAX_X_DPI * 3 / 100;
        if !x_ok {
            return None;
        }
        Resolution::from_lines_per_inch(f64::from(self.y_dpi))
    }

    /// Bytes per row.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// All rows, packed.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Gives the packed rows away.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// One packed row. Panics if `y` is out of range, like slice indexing.
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.data[start..start + self.stride]
    }

    /// One packed row, to change. Callers must keep the padding bits 0.
    pub fn row_mut(&mut self, y: u32) -> &mut [u8] {
        let start = y as usize * self.stride;
        &mut self.data[start..start + self.stride]
    }

    /// Whether pixel (`x`, `y`) is black. Panics when out of range.
    pub fn get(&self, x: u32, y: u32) -> bool {
        assert!(x < self.width, "x {x} out of range");
        self.row(y)[(x / 8) as usize] & (0x80 >> (x % 8)) != 0
    }

    /// Sets pixel (`x`, `y`) black or white. Panics when out of range.
    pub fn set(&mut self, x: u32, y: u32, black: bool) {
        assert!(x < self.width, "x {x} out of range");
        let byte = &mut self.row_mut(y)[(x / 8) as usize];
        let bit = 0x80 >> (x % 8);
        if black {
            *byte |= bit;
        } else {
            *byte &= !bit;
        }
    }

    /// Paints the rectangle from (`x0`, `y0`) to (`x1`, `y1`) (exclusive)
    /// black, clipped to the page.
    pub fn fill_rect(&mut self, x0: u32, y0: u32, x1: u32, y1: u32) {
        let x1 = x1.min(self.width);
        let y1 = y1.min(self.height);
        for y in y0..y1 {
            for x in x0..x1 {
                self.set(x, y, true);
            }
        }
    }

    /// Number of black pixels.
    pub fn count_black(&self) -> u64 {
        self.data.iter().map(|b| u64::from(b.count_ones())).sum()
    }
}

// By hand, so a failed assertion prints the geometry, not megabytes of pixels.
impl std::fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitmap")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("x_dpi", &self.x_dpi)
            .field("y_dpi", &self.y_dpi)
            .field("black_pixels", &self.count_black())
            .finish()
    }
}

/// Collects the changing elements of a packed row into `out`: the positions
/// where a pixel differs from the one on its left, the row starting from an
/// imaginary white pixel. This is the form every CCITT coder works on.
///
/// Works a 64-bit word at a time: XOR-ing the word with itself shifted by
/// one marks each change with a 1 bit, and `leading_zeros` finds them, so a
/// white stretch of a text page costs one comparison per 64 pixels.
pub(crate) fn row_changes(row: &[u8], width: u32, out: &mut Vec<u32>) {
    out.clear();
    let mut prev_last = 0u64;
    let mut base = 0u32;
    let mut chunks = row.chunks_exact(8);
    let mut scan = |word: u64, base: u32, out: &mut Vec<u32>| -> bool {
        let mut marks = word ^ ((word >> 1) | (prev_last << 63));
        prev_last = word & 1;
        while marks != 0 {
            let lz = marks.leading_zeros();
            let at = base + lz;
            if at >= width {
                return false;
            }
            out.push(at);
            marks &= !(1u64 << (63 - lz));
        }
        true
    };
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        if !scan(u64::from_be_bytes(bytes), base, out) {
            return;
        }
        base += 64;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut bytes = [0u8; 8];
        bytes[..rest.len()].copy_from_slice(rest);
        scan(u64::from_be_bytes(bytes), base, out);
    }
}

/// Paints a row from its changing elements (see [`row_changes`]): black
/// from `changes[0]` to `changes[1]`, from `changes[2]` to `changes[3]`, ...
/// An odd count means the row ends black.
pub(crate) fn fill_row_from_changes(row: &mut [u8], width: u32, changes: &[u32]) {
    row.fill(0);
    let mut pairs = changes.chunks(2);
    for pair in &mut pairs {
        let start = pair[0].min(width);
        let end = pair.get(1).copied().unwrap_or(width).min(width);
        fill_bits(row, start, end);
    }
}

/// Sets bits `start..end` of a packed row to 1, a byte at a time in the middle.
fn fill_bits(row: &mut [u8], start: u32, end: u32) {
    if start >= end {
        return;
    }
    let (first_byte, last_byte) = ((start / 8) as usize, ((end - 1) / 8) as usize);
    let head = 0xffu8 >> (start % 8);
    let tail = 0xffu8 << (7 - (end - 1) % 8);
    if first_byte == last_byte {
        row[first_byte] |= head & tail;
        return;
    }
    row[first_byte] |= head;
    row[first_byte + 1..last_byte].fill(0xff);
    row[last_byte] |= tail;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_changes(bitmap: &Bitmap, y: u32) -> Vec<u32> {
        let mut prev = false;
        let mut out = vec![];
        for x in 0..bitmap.width() {
            let p = bitmap.get(x, y);
            if p != prev {
                out.push(x);
                prev = p;
            }
        }
        out
    }

    #[test]
    fn changes_match_a_pixel_by_pixel_scan() {
        let mut seed = 12345u64;
        for width in [1u32, 7, 8, 9, 63, 64, 65, 127, 200, 1728] {
            let mut page = Bitmap::new(width, 4, 204, 196);
            for y in 0..4 {
                for x in 0..width {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Rows 0-1 noisy, row 2 long runs, row 3 stays white.
                    let black = match y {
                        0 | 1 => seed >> 63 == 1,
                        2 => (x / 13) % 2 == 1,
                        _ => false,
                    };
                    page.set(x, y, black);
                }
            }
            let mut out = vec![];
            for y in 0..4 {
                row_changes(page.row(y), width, &mut out);
                assert_eq!(out, naive_changes(&page, y), "width {width} row {y}");
                let mut row = vec![0u8; page.stride()];
                fill_row_from_changes(&mut row, width, &out);
                assert_eq!(row, page.row(y), "width {width} row {y} refill");
            }
        }
    }

    #[test]
    fn from_packed_clears_padding_bits() {
        let page = Bitmap::from_packed(4, 1, 204, 98, vec![0xff]).expect("right length");
        assert_eq!(page.data(), &[0xf0]);
        assert!(Bitmap::from_packed(4, 2, 204, 98, vec![0xff]).is_none());
    }
}

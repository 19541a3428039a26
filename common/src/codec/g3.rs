//! Group 3 encoders: T.4 one-dimensional (MH) and two-dimensional (MR).
//!
//! Written by hand because no Rust crate encodes Group 3 (the `fax` crate
//! encodes Group 4 only). The output is byte for byte what libtiff's
//! `tif_fax3.c` writes for the same rows and options, checked against
//! `tiffcp -c g3:1d|g3:2d[:fill]` in `tests/interop.rs`:
//!
//! - every row starts with an EOL (the first one included); in MR the EOL
//!   carries a tag bit, 1 when the next row is coded 1D, 0 for 2D;
//! - with fill bits (T4Options bit 2, our choice for stored pages, as TIFF
//!   Class F recommends) zeros go before each EOL so that its 12 bits end
//!   on a byte boundary; the MR tag bit then starts the next byte;
//! - no RTC at the end of the strip (libtiff's default "Class F" mode), just
//!   zero padding to a whole byte;
//! - MR codes a 1D row every K rows, the first row of the strip included,
//!   with K = 4 when the vertical resolution is above 150 lpi and K = 2
//!   otherwise: libtiff's own rule, which is also T.4's (K=2 standard, K=4
//!   fine and superfine).

use super::bit_writer::BitWriter;
use super::bitmap::{Bitmap, row_changes};
use super::codes::{BLACK, Code, WHITE};

/// The EOL code word: eleven 0 bits and a 1.
const EOL: u32 = 0x001;
const EOL_LEN: u32 = 12;

/// Group 3 coding options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct G3Options {
    /// Two-dimensional coding (MR) instead of one-dimensional (MH).
    pub two_d: bool,
    /// Zero fill before each EOL so it ends on a byte boundary (T4Options bit 2).
    pub fill_bits: bool,
    /// For MR: one 1D row every `k` rows. Ignored for MH.
    pub k: u32,
}

impl G3Options {
    /// MH with byte-aligned EOLs, the layout of our stored pages.
    pub fn mh() -> G3Options {
        G3Options {
            two_d: false,
            fill_bits: true,
            k: 1,
        }
    }

    /// MR with byte-aligned EOLs and libtiff's K for `y_dpi`.
    pub fn mr(y_dpi: u32) -> G3Options {
        G3Options {
            two_d: true,
            fill_bits: true,
            k: k_for_lines_per_inch(y_dpi),
        }
    }

    /// The T4Options (Group3Options) TIFF tag value for these options.
    pub fn t4_options(self) -> u32 {
        u32::from(self.two_d) | (u32::from(self.fill_bits) << 2)
    }
}

/// The K parameter of MR for a vertical resolution, as libtiff picks it:
/// 4 above 150 lines per inch, 2 otherwise.
pub fn k_for_lines_per_inch(y_dpi: u32) -> u32 {
    if y_dpi > 150 { 4 } else { 2 }
}

/// Encodes a page as one Group 3 strip.
pub fn encode_g3(page: &Bitmap, opts: G3Options) -> Vec<u8> {
    let width = page.width();
    let k = opts.k.max(1);
    // Text pages compress 10-20x; start with room for a 1/8 of the raw size.
    let mut w = BitWriter::with_capacity(page.data().len() / 8 + 64);
    let mut current = Vec::with_capacity(256);
    let mut reference = Vec::with_capacity(256);
    for y in 0..page.height() {
        let one_d = !opts.two_d || y % k == 0;
        put_eol(&mut w, opts, one_d);
        row_changes(page.row(y), width, &mut current);
        if one_d {
            encode_1d_row(&mut w, &current, width);
        } else {
            encode_2d_row(&mut w, &current, &reference, width);
        }
        std::mem::swap(&mut current, &mut reference);
    }
    w.finish()
}

/// Writes an EOL, aligned and tagged as the options say.
#[inline]
fn put_eol(w: &mut BitWriter, opts: G3Options, next_is_1d: bool) {
    if opts.fill_bits {
        // Leave 4 bits used in the current byte, so the 12-bit EOL ends on a
        // byte boundary (libtiff's Fax3PutEOL).
        let fill = (4 + 8 - w.bit_in_byte()) % 8;
        if fill > 0 {
            w.put(0, fill);
        }
    }
    if opts.two_d {
        w.put((EOL << 1) | u32::from(next_is_1d), EOL_LEN + 1);
    } else {
        w.put(EOL, EOL_LEN);
    }
}

#[inline(always)]
fn put_code(w: &mut BitWriter, code: Code) {
    w.put(u32::from(code.code), u32::from(code.len));
}

/// Writes one run: make-up codes of 2560 while the run is longer than that,
/// then a make-up code for the multiple of 64, then the terminating code.
#[inline]
pub(crate) fn put_run(w: &mut BitWriter, table: &[Code; 104], mut run: u32) {
    // libtiff loops on >= 2624 (2560 + 64) so a run of 2560..2623 still takes
    // the one-make-up path below; same bits either way.
    while run >= 2624 {
        put_code(w, table[103]);
        run -= 2560;
    }
    if run >= 64 {
        put_code(w, table[63 + (run / 64) as usize]);
        run %= 64;
    }
    put_code(w, table[run as usize]);
}

/// MH-codes a row given its changing elements: alternating white and black
/// runs, starting with a (possibly empty) white one.
pub(crate) fn encode_1d_row(w: &mut BitWriter, changes: &[u32], width: u32) {
    let mut pos = 0;
    let mut black = false;
    for &change in changes.iter().chain(std::iter::once(&width)) {
        put_run(w, if black { &BLACK } else { &WHITE }, change - pos);
        pos = change;
        black = !black;
    }
}

/// The 2D mode code words (T.4 table 4).
const PASS: Code = Code {
    code: 0b0001,
    len: 4,
};
const HORIZONTAL: Code = Code {
    code: 0b001,
    len: 3,
};
/// Vertical codes indexed by `b1 - a1 + 3`: VR3, VR2, VR1, V0, VL1, VL2, VL3.
const VERTICAL: [Code; 7] = [
    Code {
        code: 0b0000011,
        len: 7,
    },
    Code {
        code: 0b000011,
        len: 6,
    },
    Code {
        code: 0b011,
        len: 3,
    },
    Code { code: 0b1, len: 1 },
    Code {
        code: 0b010,
        len: 3,
    },
    Code {
        code: 0b000010,
        len: 6,
    },
    Code {
        code: 0b0000010,
        len: 7,
    },
];

/// 2D-codes a row against the reference (previous) row, both given as
/// changing elements (T.4 4.2; T.6 2.2 codes G4 rows the same way, and
/// [`super::g4`] uses this for them).
///
/// Follows libtiff's Fax3Encode2DRow decision for decision: pass when b2 is
/// left of a1, vertical when |a1 - b1| <= 3, horizontal otherwise.
pub(crate) fn encode_2d_row(w: &mut BitWriter, current: &[u32], reference: &[u32], width: u32) {
    // a0 starts on an imaginary white pixel left of the row; -1 makes
    // "strictly right of a0" include position 0.
    let mut a0: i64 = -1;
    // Colour of the run that starts at a0.
    let mut black = false;
    let mut ci = 0usize;
    let mut ri = 0usize;
    loop {
        while ci < current.len() && i64::from(current[ci]) <= a0 {
            ci += 1;
        }
        let a1 = current.get(ci).copied().unwrap_or(width);
        while ri < reference.len() && i64::from(reference[ri]) <= a0 {
            ri += 1;
        }
        // b1 changes to the colour opposite a0's: changes to black sit at
        // even indexes (rows start white), changes to white at odd ones.
        let bi = if (ri % 2 == 1) != black { ri + 1 } else { ri };
        let b1 = reference.get(bi).copied().unwrap_or(width);
        let b2 = if b1 >= width {
            width
        } else {
            reference.get(bi + 1).copied().unwrap_or(width)
        };

        if b2 < a1 {
            put_code(w, PASS);
            a0 = i64::from(b2);
        } else {
            let d = i64::from(b1) - i64::from(a1);
            if (-3..=3).contains(&d) {
                put_code(w, VERTICAL[(d + 3) as usize]);
                a0 = i64::from(a1);
                black = !black;
            } else {
                let a2 = if a1 >= width {
                    width
                } else {
                    current.get(ci + 1).copied().unwrap_or(width)
                };
                put_code(w, HORIZONTAL);
                let start = a0.max(0) as u32;
                let (first, second) = if black {
                    (&BLACK, &WHITE)
                } else {
                    (&WHITE, &BLACK)
                };
                put_run(w, first, a1 - start);
                put_run(w, second, a2 - a1);
                a0 = i64::from(a2);
            }
        }
        if a0 >= i64::from(width) {
            break;
        }
    }
}

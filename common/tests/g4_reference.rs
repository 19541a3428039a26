//! Our hand-written Group 4 encoder against the `fax` crate's, the
//! reference implementation (a dev-dependency kept for this): byte-identical
//! output on every kind of page. `tests/interop.rs` checks the same encoder
//! against libtiff.

use common::codec::g4::encode_g4;
use common::codec::{Bitmap, Compression, Resolution, encode};
use fax::encoder::Encoder;
use fax::{Color, VecWriter};

mod support;
use support::Lcg;

/// The `fax` crate's encoding of a page, as `g4.rs` used to produce it.
fn fax_crate_g4(page: &Bitmap) -> Vec<u8> {
    let width = page.width();
    let mut encoder = Encoder::new(VecWriter::new());
    for y in 0..page.height() {
        let pels = (0..width).map(|x| {
            if page.get(x, y) {
                Color::Black
            } else {
                Color::White
            }
        });
        let Ok(()) = encoder.encode_line(pels, width);
    }
    let Ok(writer) = encoder.finish();
    writer.finish()
}

fn page_from(width: u32, height: u32, black: impl Fn(u32, u32) -> bool) -> Bitmap {
    let mut page = Bitmap::new_fax(width, height, Resolution::Fine);
    for y in 0..height {
        for x in 0..width {
            if black(x, y) {
                page.set(x, y, true);
            }
        }
    }
    page
}

fn noise(width: u32, height: u32, seed: u64, one_in: u64) -> Bitmap {
    let mut rng = Lcg(seed);
    let mut page = Bitmap::new_fax(width, height, Resolution::Fine);
    for y in 0..height {
        for x in 0..width {
            page.set(x, y, rng.next().is_multiple_of(one_in));
        }
    }
    page
}

/// Lines of glyph-like blobs with counters, word gaps, a rule and a box.
fn text_like(width: u32, height: u32, seed: u64) -> Bitmap {
    let mut page = Bitmap::new_fax(width, height, Resolution::Fine);
    let mut rng = Lcg(seed);
    let mut y = 6;
    while y + 24 < height {
        let mut x = (rng.next() % 40) as u32;
        while x + 20 < width {
            let w = 3 + (rng.next() % 12) as u32;
            let top = y + (rng.next() % 6) as u32;
            page.fill_rect(x, top, x + w, y + 20);
            if w > 6 && rng.next().is_multiple_of(2) {
                for yy in top + 2..y + 18 {
                    for xx in x + 2..x + w - 2 {
                        page.set(xx, yy, false);
                    }
                }
            }
            x +=
                w + 1 + (rng.next() % 4) as u32 + if rng.next().is_multiple_of(5) { 15 } else { 0 };
        }
        y += 28;
    }
    page.fill_rect(0, 1, width, 2);
    page.fill_rect(width / 4, height / 2, width / 4 + 1, height);
    page
}

/// Ordered (Bayer) dither of a gradient: short runs that shift every row.
fn dithered(width: u32, height: u32) -> Bitmap {
    const BAYER: [[u32; 4]; 4] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];
    page_from(width, height, |x, y| {
        let level = (x * 16 / width.max(1) + y * 3 / height.max(1)) % 17;
        BAYER[(y % 4) as usize][(x % 4) as usize] < level
    })
}

fn pages_for_width(width: u32) -> Vec<(&'static str, Bitmap)> {
    let h = 64;
    vec![
        ("blank", Bitmap::new_fax(width, h, Resolution::Fine)),
        ("black", page_from(width, h, |_, _| true)),
        ("checkerboard", page_from(width, h, |x, y| (x + y) % 2 == 1)),
        (
            "checkerboard 8x8",
            page_from(width, h, |x, y| (x / 8 + y / 8) % 2 == 1),
        ),
        ("noise 1/2", noise(width, h, u64::from(width), 2)),
        ("noise 1/20", noise(width, h, u64::from(width) + 1, 20)),
        ("vertical lines", page_from(width, h, |x, _| x % 7 == 3)),
        ("horizontal lines", page_from(width, h, |_, y| y % 5 == 0)),
        (
            "diagonals",
            page_from(width, h, |x, y| {
                (x + 3 * y) % 23 < 2 || (x + 64 * width - y).is_multiple_of(41)
            }),
        ),
        ("text-like", text_like(width, 120, u64::from(width))),
        ("dithered", dithered(width, h)),
        ("last pixel", page_from(width, h, |x, _| x == width - 1)),
        ("first pixel", page_from(width, h, |x, _| x == 0)),
        (
            "long runs",
            page_from(width, h, |x, y| {
                x >= (y * 37) % width.max(1) && x < (y * 53) % width.max(1)
            }),
        ),
    ]
}

#[test]
fn g4_matches_the_fax_crate_byte_for_byte() {
    let widths = [
        1728, 2048, 2432, 1, 2, 7, 9, 63, 65, 100, 1727, 1729, 2431, 2561, 5000,
    ];
    for width in widths {
        for (name, page) in pages_for_width(width) {
            let ours = encode_g4(&page);
            let reference = fax_crate_g4(&page);
            let first_diff = ours.iter().zip(&reference).position(|(a, b)| a != b);
            assert!(
                ours == reference,
                "{name}, width {width}: ours {} bytes, fax crate {} bytes, first difference \
                 at byte {first_diff:?}",
                ours.len(),
                reference.len()
            );
        }
    }
}

#[test]
fn encode_uses_the_hand_written_g4_encoder() {
    let page = text_like(1728, 200, 3);
    let encoded = encode(&page, Compression::G4).expect("encodes");
    assert_eq!(encoded.data, encode_g4(&page));
    assert_eq!(encoded.data, fax_crate_g4(&page));
}

#[test]
fn single_row_and_tall_narrow_pages_match_the_fax_crate() {
    for (w, h) in [(1728, 1), (1, 1), (3, 500), (1728, 3000)] {
        let page = noise(w, h, u64::from(w * h), 3);
        assert!(encode_g4(&page) == fax_crate_g4(&page), "{w}x{h}");
    }
}

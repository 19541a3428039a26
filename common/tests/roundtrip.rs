//! Encode then decode must give back the very same pixels, for every
//! compression, resolution and fax width, on pages chosen to hit the
//! corner cases of run-length and 2D coding.

use common::codec::{Bitmap, Compression, Resolution, decode, encode};

mod support;
use support::Lcg;

const WIDTHS: [u32; 3] = [1728, 2048, 2432];

fn pages(width: u32, resolution: Resolution) -> Vec<(&'static str, Bitmap)> {
    let height = 64;
    let blank = Bitmap::new_fax(width, height, resolution);

    let mut black = blank.clone();
    black.fill_rect(0, 0, width, height);

    let mut checker = blank.clone();
    for y in 0..height {
        for x in 0..width {
            checker.set(x, y, (x + y) % 2 == 1);
        }
    }

    let mut lines = blank.clone();
    lines.fill_rect(0, 3, width, 4); // one-pixel horizontal line
    lines.fill_rect(0, 10, 1, height); // one-pixel vertical line at the left edge
    lines.fill_rect(width - 1, 0, width, height); // and at the right edge
    lines.fill_rect(width / 2, 0, width / 2 + 1, height); // and in the middle
    lines.fill_rect(5, 20, width - 5, 21);

    let mut noise = blank.clone();
    let mut rng = Lcg(u64::from(width) * 31 + resolution.lines_per_inch() as u64);
    for y in 0..height {
        for x in 0..width {
            noise.set(x, y, rng.next().is_multiple_of(2));
        }
    }

    // Runs of every length up to past the make-up codes, and shapes that
    // drive the 2D coder through pass, vertical and horizontal modes.
    let mut runs = blank.clone();
    for y in 0..height {
        let mut x = 0;
        let mut len = 1 + y;
        let mut on = y % 2 == 0;
        while x < width {
            let end = (x + len).min(width);
            if on {
                runs.fill_rect(x, y, end, y + 1);
            }
            x = end;
            on = !on;
            len = (len * 7 + 3) % 2600 + 1;
        }
    }
    let mut slopes = blank.clone();
    for y in 0..height {
        for (i, step) in [0u32, 1, 2, 3, 4, 5, 9].iter().enumerate() {
            let x = 100 + i as u32 * 200 + y * step;
            slopes.fill_rect(x, y, x + 3 + y % 5, y + 1);
        }
    }

    vec![
        ("blank", blank),
        ("all black", black),
        ("checkerboard", checker),
        ("lines", lines),
        ("noise", noise),
        ("runs", runs),
        ("slopes", slopes),
    ]
}

#[test]
fn every_compression_resolution_and_width_round_trips_pixel_identical() {
    for width in WIDTHS {
        for resolution in Resolution::ALL {
            for (name, page) in pages(width, resolution) {
                for compression in Compression::ALL {
                    let encoded = encode(&page, compression).expect("encodes");
                    assert_eq!(encoded.width, width);
                    assert_eq!(encoded.height, page.height());
                    assert_eq!(encoded.resolution, resolution);
                    let decoded = decode(&encoded).unwrap_or_else(|e| {
                        panic!("{name} {compression} {resolution} {width}: {e}")
                    });
                    assert!(
                        decoded == page,
                        "{name} page, {compression}, {resolution}, width {width}: pixels differ"
                    );
                }
            }
        }
    }
}

#[test]
fn odd_widths_round_trip() {
    for width in [1u32, 7, 9, 65, 1000] {
        let mut page = Bitmap::new_fax(width, 9, Resolution::Fine);
        let mut rng = Lcg(u64::from(width));
        for y in 0..9 {
            for x in 0..width {
                page.set(x, y, rng.next().is_multiple_of(3));
            }
        }
        for compression in Compression::ALL {
            let decoded = decode(&encode(&page, compression).expect("encodes")).expect("decodes");
            assert!(decoded == page, "width {width} {compression}");
        }
    }
}

#[test]
fn damaged_data_is_an_error_naming_the_compression() {
    let mut page = Bitmap::new_fax(1728, 50, Resolution::Fine);
    page.fill_rect(100, 10, 900, 40);
    let mut encoded = encode(&page, Compression::G4).expect("encodes");
    encoded.data.truncate(encoded.data.len() / 3);
    let err = decode(&encoded).expect_err("truncated data must not decode");
    assert!(err.to_string().contains("not valid g4"), "{err}");
}

#[test]
fn a_long_document_keeps_its_page_order() {
    // Pages are read, decoded and encoded on several threads at once; they
    // must come out in file order, from an uncompressed and a G4 file alike.
    let dir = tempfile::tempdir().expect("temp dir");
    let pages: Vec<Bitmap> = (0..40u32)
        .map(|n| {
            let mut page = Bitmap::new_fax(1728, 60, Resolution::Fine);
            // Page n has a bar at a height and length of its own.
            page.fill_rect(10, n, 20 + 40 * n, n + 3);
            page
        })
        .collect();
    let plain = dir.path().join("plain.tif");
    common::codec::tiff_write::write_uncompressed(&plain, &pages).expect("writes");
    let g4 = dir.path().join("g4.tif");
    let encoded: Vec<_> = pages
        .iter()
        .map(|p| encode(p, Compression::G4).expect("encodes"))
        .collect();
    common::codec::write_document(&g4, &encoded).expect("writes");
    let opts = common::codec::EncodeOptions::default();
    for input in [plain, g4] {
        let got = common::codec::load_document(std::slice::from_ref(&input), &opts).expect("loads");
        assert_eq!(got.len(), pages.len());
        for (n, (got, want)) in got.iter().zip(&encoded).enumerate() {
            assert!(got.data == want.data, "{}: page {}", input.display(), n + 1);
        }
    }
}

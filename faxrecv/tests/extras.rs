//! faxrecv's PNG and PDF views of a fax show exactly the pixels of the
//! pages: the PNG read back with `image`, the PDF rendered by poppler's
//! pdftoppm at the pages' own resolution.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::process::Command;

use common::codec::{Bitmap, Compression, EncodedPage, Resolution, decode, encode};
use faxrecv::extras::{self, Extras};

/// A page with text-like blocks, a diagonal and a frame: runs of every length.
fn page(resolution: Resolution, height: u32) -> Bitmap {
    let mut b = Bitmap::new_fax(1728, height, resolution);
    b.fill_rect(0, 0, 1728, 4);
    b.fill_rect(0, height - 4, 1728, height);
    for i in 0..40 {
        let x = 100 + i * 37;
        let y = 100 + (i * 53) % (height - 200);
        b.fill_rect(x, y, x + 3 + i % 17, y + 20 + i % 11);
    }
    for y in 0..height.min(1700) {
        b.set(y, y, true);
    }
    b
}

fn pages() -> Vec<EncodedPage> {
    vec![
        encode(&page(Resolution::Fine, 2200), Compression::G4).unwrap(),
        encode(&page(Resolution::Standard, 1100), Compression::Mh).unwrap(),
        encode(&page(Resolution::Fine, 2200), Compression::Mr).unwrap(),
    ]
}

/// Reads a binary PBM (P4): 1 = black, rows packed MSB first, like Bitmap.
fn read_pbm(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 3 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i] == b'#' {
            while bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
    }
    assert_eq!(fields[0], "P4");
    (
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
        bytes[i + 1..].to_vec(),
    )
}

#[test]
fn png_pages_hold_the_exact_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let pages = pages();
    let extras = Extras {
        png: true,
        pdf: false,
    };
    let files = extras::write(extras, dir.path(), "call-1", &pages).unwrap();
    assert_eq!(files.len(), 3);
    for (i, page) in pages.iter().enumerate() {
        let path = dir.path().join(format!("call-1-p{}.png", i + 1));
        let png = image::open(&path).unwrap().to_luma8();
        let want = decode(page).unwrap();
        assert_eq!((png.width(), png.height()), (want.width(), want.height()));
        for (x, y, p) in png.enumerate_pixels() {
            assert_eq!(p.0[0] == 0, want.get(x, y), "page {} pixel {x},{y}", i + 1);
        }
    }
}

#[test]
fn pdf_renders_the_exact_pixels_in_poppler() {
    if Command::new("pdftoppm").arg("-v").output().is_err() {
        panic!(
            "pdftoppm not found: install poppler-utils (apt-get install poppler-utils); \
             .ci/run installs it"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let pages = pages();
    let extras = Extras {
        png: false,
        pdf: true,
    };
    extras::write(extras, dir.path(), "call-2", &pages).unwrap();
    let pdf = dir.path().join("call-2.pdf");
    let info = Command::new("pdfinfo").arg(&pdf).output().unwrap();
    let info_text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{info:?}");
    let count = info_text
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .map(str::trim);
    assert_eq!(count, Some("3"), "{info_text}");
    for (i, page) in pages.iter().enumerate() {
        let n = (i + 1).to_string();
        // At the page's own resolution, one pixel per fax pixel; cropped to
        // the page's size.
        let lpi = page.resolution.lines_per_inch().to_string();
        let (w, h) = (page.width.to_string(), page.height.to_string());
        let out = dir.path().join(format!("page{n}"));
        let status = Command::new("pdftoppm")
            .args([
                "-mono",
                "-aa",
                "no",
                "-aaVector",
                "no",
                "-rx",
                "204",
                "-ry",
                &lpi,
                "-W",
                &w,
                "-H",
                &h,
                "-f",
                &n,
                "-l",
                &n,
                "-singlefile",
            ])
            .arg(&pdf)
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        let (w, h, data) = read_pbm(&std::fs::read(out.with_extension("pbm")).unwrap());
        let want = decode(page).unwrap();
        assert_eq!((w, h), (want.width(), want.height()), "page {n} size");
        let stride = w.div_ceil(8) as usize;
        for y in 0..h {
            let got = &data[y as usize * stride..(y as usize + 1) * stride];
            assert_eq!(got, &want.row(y)[..stride], "page {n} row {y}");
        }
    }
}

//! Encode and decode speed, against libtiff.
//!
//! `cargo bench -p faxmesh-common --bench codec` prints single-threaded
//! pages/second for G4, MR and MH encoding and decoding of a text page and
//! a dithered worst case, libtiff's `tiffcp` doing the same work on one
//! core, and the all-core figure: `faxsend FILE --output` on a 100-page
//! TIFF against `tiffcp -c g4` (build faxsend first with
//! `cargo build --release -p faxsend`). With `CODEC_BENCH_DIR=DIR` the
//! TIFFs it writes stay in DIR (`DIR/hundred.tif` is the 100-page input).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::codec::convert::to_fax_page;
use common::codec::input::{SourceImage, SourcePage};
use common::codec::tiff_write::write_uncompressed;
use common::codec::{Bitmap, Compression, EncodeOptions, Resolution, decode, encode};

const WIDTH: u32 = 1728;
const HEIGHT: u32 = 2200;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

/// A fine-resolution text page: 1-inch margins, lines of glyph-like blobs
/// (stems, bowls with counters, ascenders and descenders) in words.
fn text_page(seed: u64) -> Bitmap {
    let mut page = Bitmap::new_fax(WIDTH, HEIGHT, Resolution::Fine);
    let mut rng = Lcg(seed);
    let (left, right) = (204, WIDTH - 204);
    let mut y = 196;
    while y + 40 < HEIGHT - 196 {
        let mut x = left + rng.next() % 30;
        let line_end = right - rng.next() % 200;
        while x + 60 < line_end {
            for _ in 0..2 + rng.next() % 8 {
                let w = 10 + rng.next() % 8;
                let (top, bottom) = match rng.next() % 6 {
                    0 => (y, y + 28),      // ascender
                    1 => (y + 10, y + 38), // descender
                    _ => (y + 10, y + 28), // x-height
                };
                page.fill_rect(x, top, x + w, bottom);
                if rng.next().is_multiple_of(2) {
                    // A counter, as in 'o' or 'e'.
                    for yy in top + 3..bottom - 3 {
                        for xx in x + 3..x + w - 3 {
                            page.set(xx, yy, false);
                        }
                    }
                }
                x += w + 3;
            }
            x += 14 + rng.next() % 6;
        }
        y += 48;
    }
    page
}

/// A photograph-like page: smooth gradients and rings, Floyd-Steinberg
/// dithered; the worst case for run-length coding.
fn dithered_page() -> Bitmap {
    let gray = image::GrayImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (
            f64::from(x) / f64::from(WIDTH),
            f64::from(y) / f64::from(HEIGHT),
        );
        let ring = ((fx - 0.5).hypot(fy - 0.4) * 40.0).sin() * 0.25;
        image::Luma([((fx * 0.6 + fy * 0.4 + ring).clamp(0.0, 1.0) * 255.0) as u8])
    });
    let opts = EncodeOptions {
        dither: true,
        ..EncodeOptions::default()
    };
    let source = SourcePage {
        image: SourceImage::Gray(gray),
        dpi: Some((204.0, 196.0)),
    };
    to_fax_page(source, &opts).expect("a page-sized image converts")
}

/// Runs `f` repeatedly for about a second; returns calls per second.
fn rate(mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_millis(1000) || n < 3 {
        f();
        n += 1;
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn tool_available(tool: &str) -> bool {
    Command::new(tool).arg("-h").output().is_ok()
}

/// Wall time of one run of a command, best of `runs`.
fn time_command(program: &str, args: &[&str], runs: u32) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let status = Command::new(program).args(args).output().expect("runs");
            assert!(
                status.status.success(),
                "{program} {args:?} failed: {status:?}"
            );
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn faxsend_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/faxsend")
}

fn main() {
    // Single-threaded: everything here runs on the main thread.
    let text = text_page(1);
    let dithered = dithered_page();
    println!(
        "pages: text {WIDTH}x{HEIGHT} fine ({} black px), dithered {}x{} ({} black px)",
        text.count_black(),
        dithered.width(),
        dithered.height(),
        dithered.count_black()
    );
    println!("\nsingle thread, pages/second (ours):");
    println!(
        "{:<10} {:>6} {:>12} {:>12} {:>10}",
        "page", "codec", "encode", "decode", "bytes"
    );
    for (name, page) in [("text", &text), ("dithered", &dithered)] {
        for compression in Compression::ALL {
            let encoded = encode(page, compression).expect("encodes");
            let enc = rate(|| {
                std::hint::black_box(encode(page, compression).expect("encodes"));
            });
            let dec = rate(|| {
                std::hint::black_box(decode(&encoded).expect("decodes"));
            });
            println!(
                "{name:<10} {compression:>6} {enc:>12.1} {dec:>12.1} {:>10}",
                encoded.data.len()
            );
        }
    }

    if !tool_available("tiffcp") {
        println!("\ntiffcp not found: install libtiff-tools for the libtiff comparison");
        return;
    }
    let temp = tempfile::tempdir().expect("temp dir");
    // CODEC_BENCH_DIR=somewhere keeps the input and output files there (for
    // profiling faxsend on the same 100-page TIFF).
    let dir =
        std::env::var_os("CODEC_BENCH_DIR").map_or_else(|| temp.path().to_owned(), PathBuf::from);

    // libtiff on one core: tiffcp over a multi-page uncompressed TIFF. Its
    // time includes reading and writing the files, ours above does not.
    println!("\nlibtiff (tiffcp, one core) vs ours, single thread, pages/second:");
    println!(
        "{:<10} {:>6} {:>12} {:>12} {:>12}",
        "page", "codec", "ours enc", "tiffcp enc", "tiffcp dec"
    );
    let pages = 20;
    for (name, page) in [("text", &text), ("dithered", &dithered)] {
        let plain = dir.join(format!("{name}-plain.tif"));
        write_uncompressed(&plain, &vec![page.clone(); pages]).expect("write");
        for (compression, scheme) in [
            (Compression::G4, "g4"),
            (Compression::Mr, "g3:2d:fill"),
            (Compression::Mh, "g3:1d:fill"),
        ] {
            let coded = dir.join(format!("{name}-{compression}.tif"));
            let back = dir.join(format!("{name}-{compression}-back.tif"));
            let enc_t = time_command(
                "taskset",
                &["-c", "0", "tiffcp", "-c", scheme, s(&plain), s(&coded)],
                3,
            );
            let dec_t = time_command(
                "taskset",
                &["-c", "0", "tiffcp", "-c", "none", s(&coded), s(&back)],
                3,
            );
            let ours = rate(|| {
                std::hint::black_box(encode(page, compression).expect("encodes"));
            });
            println!(
                "{name:<10} {compression:>6} {ours:>12.1} {:>12.1} {:>12.1}",
                pages as f64 / enc_t.as_secs_f64(),
                pages as f64 / dec_t.as_secs_f64()
            );
        }
    }

    // All cores: faxsend --output on 100 text pages against tiffcp -c g4.
    let faxsend = faxsend_binary();
    if !faxsend.exists() {
        println!(
            "\n{} not found: run `cargo build --release -p faxsend` for the all-core figure",
            faxsend.display()
        );
        return;
    }
    let hundred: Vec<Bitmap> = (0..100).map(text_page).collect();
    let plain = dir.join("hundred.tif");
    write_uncompressed(&plain, &hundred).expect("write");
    let ours_out = dir.join("faxsend.tif");
    let theirs_out = dir.join("tiffcp.tif");
    let ours = time_command(s(&faxsend), &[s(&plain), "--output", s(&ours_out)], 5);
    let theirs = time_command("tiffcp", &["-c", "g4", s(&plain), s(&theirs_out)], 5);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("\n100 text pages, {cores} cores, best of 5:");
    println!(
        "  faxsend FILE --output out.tif   {:>8.1} ms",
        ours.as_secs_f64() * 1e3
    );
    println!(
        "  tiffcp -c g4 FILE out.tif       {:>8.1} ms",
        theirs.as_secs_f64() * 1e3
    );
    println!(
        "  ratio faxsend/tiffcp            {:>8.2} (target <= 0.67)",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}

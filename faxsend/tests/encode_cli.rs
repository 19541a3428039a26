//! faxsend encode-only mode (`--output`), run as the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::codec::tiff_write::write_uncompressed;
use common::codec::{Bitmap, Compression, Resolution, decode, read_pages};

fn faxsend() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faxsend"))
}

/// Runs faxsend in `dir` with `args`; returns (exit code, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = faxsend()
        .current_dir(dir)
        .env_remove("FAXMESH_SECRET")
        .args(args)
        .output()
        .expect("faxsend runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 850x1100 grey PNG with a few dark bars, like a small scan.
fn write_png(path: &Path) {
    let img = image::GrayImage::from_fn(850, 1100, |x, y| {
        let bar = (100..750).contains(&x) && (y / 20) % 3 == 0 && y > 100 && y < 1000;
        image::Luma([if bar { 20 } else { 240 }])
    });
    img.save(path).expect("write png");
}

#[test]
fn a_png_encodes_to_one_a4_page() {
    let dir = tempfile::tempdir().expect("temp");
    write_png(&dir.path().join("scan.png"));
    let (code, stderr) = run(dir.path(), &["scan.png", "--output", "out.tif"]);
    assert_eq!(code, 0, "{stderr}");
    let pages = read_pages(&dir.path().join("out.tif")).expect("a fax file");
    assert_eq!(pages.len(), 1);
    let page = &pages[0];
    assert_eq!(
        (page.width, page.compression, page.resolution),
        (1728, Compression::G4, Resolution::Fine)
    );
    // 1100/850 of 1728 pixels at 204 dpi, in 196 lpi rows.
    assert_eq!(page.height, 2149);
    assert!(
        decode(page).expect("decodes").count_black() > 100_000,
        "the bars are there"
    );
}

#[test]
fn a_multi_page_tiff_keeps_its_pages_with_the_chosen_options() {
    let dir = tempfile::tempdir().expect("temp");
    let pages: Vec<Bitmap> = (0..3)
        .map(|i| {
            let mut p = Bitmap::new_fax(1728, 1100, Resolution::Fine);
            p.fill_rect(100, 100 + 50 * i, 1600, 120 + 50 * i);
            p
        })
        .collect();
    write_uncompressed(&dir.path().join("in.tif"), &pages).expect("write tiff");
    let (code, stderr) = run(
        dir.path(),
        &[
            "in.tif",
            "--output",
            "out.tif",
            "--resolution",
            "standard",
            "--compression",
            "mr",
            "--paper",
            "b4",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let got = read_pages(&dir.path().join("out.tif")).expect("a fax file");
    assert_eq!(got.len(), 3);
    for page in &got {
        assert_eq!(
            (page.width, page.compression, page.resolution),
            (2048, Compression::Mr, Resolution::Standard)
        );
        // B4 is wider: the A4 page is centred, rows halved from fine to standard.
        assert_eq!(page.height, 550);
    }
}

/// Runs a failing case: non-zero exit, an error naming `named`, no output.
fn assert_fails_cleanly(dir: &Path, input: &str, named: &str, says: &str) {
    let (code, stderr) = run(dir, &[input, "--output", "out.tif"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.starts_with("faxsend: "), "{stderr}");
    assert!(stderr.contains(named), "the error names the file: {stderr}");
    assert!(stderr.contains(says), "expected '{says}' in: {stderr}");
    let left: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().contains("out") || n.to_string_lossy().contains(".part")
            })
        })
        .collect();
    assert!(left.is_empty(), "no output file may be left: {left:?}");
}

#[test]
fn a_missing_file_fails_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp");
    assert_fails_cleanly(dir.path(), "nosuch.png", "nosuch.png", "cannot read");
}

#[test]
fn a_file_that_is_not_a_document_fails_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp");
    // A word processor file: a zip archive, neither PDF, image nor text.
    std::fs::write(
        dir.path().join("notes.docx"),
        b"PK\x03\x04\x14\0\x06\0\0\0binary",
    )
    .expect("write");
    assert_fails_cleanly(
        dir.path(),
        "notes.docx",
        "notes.docx",
        "not a readable image",
    );
}

#[test]
fn an_empty_file_fails_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp");
    std::fs::write(dir.path().join("empty.png"), "").expect("write");
    assert_fails_cleanly(dir.path(), "empty.png", "empty.png", "is empty");
}

#[test]
fn a_bad_option_value_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp");
    write_png(&dir.path().join("scan.png"));
    let (code, stderr) = run(
        dir.path(),
        &["scan.png", "--output", "out.tif", "--compression", "jbig"],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown compression 'jbig'; use one of g4, mr, mh"),
        "{stderr}"
    );
    assert!(!dir.path().join("out.tif").exists());
}

#[test]
fn without_output_sending_needs_gateway_numbers_and_secret() {
    let dir = tempfile::tempdir().expect("temp");
    write_png(&dir.path().join("scan.png"));
    let (code, stderr) = run(dir.path(), &["scan.png"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("faxsend: to send, give --gateway, --from, --to, --secret-file"),
        "{stderr}"
    );
}

#[test]
fn an_output_that_cannot_be_written_is_an_internal_error() {
    let dir = tempfile::tempdir().expect("temp");
    write_png(&dir.path().join("scan.png"));
    // Paths under a regular file, and in a directory that does not exist:
    // no file can be made there, not even by root (CI runs as root, which
    // permission bits would not stop).
    std::fs::write(dir.path().join("plain"), "").expect("write");
    for (output, dir_named) in [("plain/out.tif", "plain"), ("nosuch/out.tif", "nosuch")] {
        let (code, stderr) = run(dir.path(), &["scan.png", "--output", output]);
        assert_eq!(code, 1, "{output}: {stderr}");
        assert!(
            stderr.starts_with(&format!("faxsend: cannot create a file in {dir_named}: ")),
            "{stderr}"
        );
    }
}

#[test]
fn bad_input_is_reported_before_the_output_is_tried() {
    let dir = tempfile::tempdir().expect("temp");
    let (code, stderr) = run(dir.path(), &["nosuch.png", "--output", "nosuch/out.tif"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot read nosuch.png"), "{stderr}");
}

#[test]
fn a_secret_file_that_cannot_be_read_is_bad_input() {
    let dir = tempfile::tempdir().expect("temp");
    write_png(&dir.path().join("scan.png"));
    let (code, stderr) = run(
        dir.path(),
        &[
            "scan.png",
            "--gateway",
            "127.0.0.1:1",
            "--from",
            "1001",
            "--to",
            "1002",
            "--secret-file",
            "nosuch.secret",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("faxsend: cannot read secret file nosuch.secret: "),
        "{stderr}"
    );
}

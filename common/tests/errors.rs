//! Error messages users see: they name the file (and page), and say what to do.

use std::path::{Path, PathBuf};

use common::codec::tiff_write::write_uncompressed;
use common::codec::{
    Bitmap, Capabilities, CodecError, Compression, EncodeOptions, Resolution, encode, fit_page,
    load_document, write_document,
};

fn load(paths: &[PathBuf]) -> String {
    load_document(paths, &EncodeOptions::default())
        .expect_err("must fail")
        .to_string()
}

fn in_dir(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

#[test]
fn a_missing_file_is_named() {
    let msg = load(&[PathBuf::from("/no/such/dir/page.png")]);
    assert!(
        msg.starts_with("cannot read /no/such/dir/page.png: "),
        "{msg}"
    );
    assert!(
        msg.ends_with("check that the file exists and is readable"),
        "{msg}"
    );
}

#[test]
fn a_file_that_is_not_an_image_is_named() {
    let dir = tempfile::tempdir().expect("temp");
    let path = in_dir(
        dir.path(),
        "letter.docx",
        b"PK\x03\x04 definitely not pixels",
    );
    let msg = load(std::slice::from_ref(&path));
    assert_eq!(
        msg,
        format!(
            "{} is not a readable image (unrecognised file format); give a PDF, an image (PNG, \
             JPEG, GIF, BMP, PNM, TIFF) or a UTF-8 text file",
            path.display()
        )
    );
}

#[test]
fn an_empty_file_is_named() {
    let dir = tempfile::tempdir().expect("temp");
    let path = in_dir(dir.path(), "blank.png", b"");
    let msg = load(std::slice::from_ref(&path));
    assert!(
        msg.starts_with(&format!("{} is empty (0 bytes)", path.display())),
        "{msg}"
    );
}

#[test]
fn an_absurdly_large_image_is_refused_before_decoding() {
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("banner.png");
    image::GrayImage::new(30_000, 2)
        .save(&path)
        .expect("write png");
    let msg = load(std::slice::from_ref(&path));
    assert!(
        msg.starts_with(&format!(
            "{} page 1 is 30000x2 pixels, over the limit",
            path.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("20000 pixels per side"), "{msg}");
}

#[test]
fn an_image_too_long_for_a_page_names_file_and_page() {
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("scroll.tif");
    let ok = Bitmap::new(100, 100, 100, 100);
    let long = Bitmap::new(100, 10_000, 100, 100);
    write_uncompressed(&path, &[ok, long]).expect("write");
    let msg = load(std::slice::from_ref(&path));
    assert!(
        msg.starts_with(&format!("{} page 2: would be", path.display())),
        "{msg}"
    );
    assert!(msg.ends_with("crop or split the image"), "{msg}");
}

#[test]
fn a_damaged_fax_page_names_file_and_page() {
    let dir = tempfile::tempdir().expect("temp");
    let mut page = Bitmap::new_fax(1728, 200, Resolution::Fine);
    page.fill_rect(10, 10, 1700, 190);
    let good = encode(&page, Compression::G4).expect("encodes");
    let mut bad = good.clone();
    bad.data.truncate(5);
    let path = dir.path().join("fax.tif");
    write_document(&path, &[good, bad]).expect("write");
    let msg = load(std::slice::from_ref(&path));
    assert!(
        msg.starts_with(&format!("{} page 2: damaged fax data", path.display())),
        "{msg}"
    );
}

#[test]
fn no_files_at_all_is_an_error() {
    assert_eq!(
        load(&[]),
        "no input files given; name at least one PDF, image or text file to send"
    );
}

#[test]
fn unknown_names_list_the_accepted_ones() {
    let e = "jbig".parse::<Compression>().expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "unknown compression 'jbig'; use one of g4, mr, mh"
    );
    let e = "ultra".parse::<Resolution>().expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "unknown resolution 'ultra'; use one of standard, fine, superfine"
    );
    let e = "a5".parse::<common::codec::Paper>().expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "unknown paper 'a5'; use one of a4, letter, b4, a3"
    );
}

#[test]
fn a_callee_without_any_compression_cannot_take_a_page() {
    let page = encode(
        &Bitmap::new_fax(1728, 10, Resolution::Fine),
        Compression::G4,
    )
    .expect("encodes");
    let caps = Capabilities {
        compressions: vec![],
        ..Capabilities::all()
    };
    let e = fit_page(&page, &caps).expect_err("nothing to encode with");
    assert!(matches!(
        e,
        CodecError::NoCommonCapability {
            what: "compression"
        }
    ));
    assert_eq!(
        e.to_string(),
        "the callee supports no compression; the page cannot be converted to fit"
    );
}

//! TIFF pages in every layout libtiff and Pillow read, compared with
//! Pillow's own rendering of the same files.
//!
//! `tests/tools/make_layouts.py` draws one picture and writes it with
//! Pillow, libtiff's `tiffcp` and, for layouts neither writes, by hand; for
//! every file it saves the reference each page must match (Pillow's reading
//! laid over white and converted to L, or, where Pillow cannot read the
//! layout or renders it wrongly, the same arithmetic on the stored samples;
//! the manifest says which). It needs Python with Pillow (interpreter from
//! `FAXMESH_PYTHON`, default `python3`) and libtiff-tools; when either is
//! missing the tests fail and say so: a silent pass would hide that nothing
//! was checked.
//!
//! Tolerances. Lossless layouts: every pixel within 1 level of the
//! reference and a mean difference under 0.05. Layouts without alpha match
//! exactly; with alpha, rounding differs by the order of operations: we lay
//! a pixel's luminance over white where Pillow composites each channel
//! first, unpremultiplying associated alpha on the way (seen: worst 1, mean
//! 0.02). JPEG layouts: our decoder (zune-jpeg, through the `tiff` crate)
//! and Pillow's libjpeg differ in IDCT rounding and chroma upsampling, so
//! the bounds are on the mean difference (0.25 levels) and the worst pixel
//! (8 levels); seen: worst 2, mean 0.02, at sharp colour edges.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::codec::CodecError;
use common::codec::input::{SourceImage, SourcePage, read_input};
use image::GrayImage;

/// One file of the manifest, held in memory.
struct Case {
    family: String,
    name: String,
    file: String,
    tiff: Vec<u8>,
    jpeg: bool,
    /// `pillow` or `source`, see the module comment.
    origin: String,
    pages: Vec<GrayImage>,
}

/// Every layout, made once per test binary. The files are read into memory
/// and their directory removed at once; each test writes the files it reads
/// into a directory of its own.
fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(make_cases)
}

fn make_cases() -> Vec<Case> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let python = std::env::var("FAXMESH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/make_layouts.py");
    let out = match Command::new(&python).arg(&script).arg(dir.path()).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run {python} ({e}); install Python 3 with Pillow, or point FAXMESH_PYTHON \
             at an interpreter that has it"
        ),
    };
    assert!(
        out.status.success(),
        "{} failed; it needs Pillow (pip install pillow) and libtiff-tools (apt-get install \
         libtiff-tools):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest =
        std::fs::read_to_string(dir.path().join("manifest.tsv")).expect("the script's manifest");
    manifest
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [family, name, file, kind, origin, refs] = fields[..] else {
                panic!("bad manifest line {line:?}");
            };
            let pages = refs
                .split(',')
                .map(|r| {
                    image::open(dir.path().join(r))
                        .unwrap_or_else(|e| panic!("reference {r}: {e}"))
                        .to_luma8()
                })
                .collect();
            Case {
                family: family.into(),
                name: name.into(),
                file: file.into(),
                tiff: std::fs::read(dir.path().join(file)).expect("a layout file"),
                jpeg: kind == "jpeg",
                origin: origin.into(),
                pages,
            }
        })
        .collect()
}

/// A page's pixels as grey levels, bilevel pages as 0 and 255.
fn levels(page: &SourcePage) -> GrayImage {
    match &page.image {
        SourceImage::Gray(image) => image.clone(),
        SourceImage::Bilevel(bitmap) => {
            GrayImage::from_fn(bitmap.width(), bitmap.height(), |x, y| {
                image::Luma([if bitmap.get(x, y) { 0 } else { 255 }])
            })
        }
    }
}

/// How far a page is from its reference: the worst pixel and the mean.
struct Difference {
    worst: u8,
    at: (u32, u32),
    got: u8,
    want: u8,
    mean: f64,
}

fn difference(got: &GrayImage, want: &GrayImage) -> Difference {
    let mut d = Difference {
        worst: 0,
        at: (0, 0),
        got: 0,
        want: 0,
        mean: 0.0,
    };
    let mut sum = 0u64;
    for (x, y, p) in got.enumerate_pixels() {
        let (g, w) = (p.0[0], want.get_pixel(x, y).0[0]);
        let diff = g.abs_diff(w);
        sum += u64::from(diff);
        if diff > d.worst {
            d = Difference {
                worst: diff,
                at: (x, y),
                got: g,
                want: w,
                ..d
            };
        }
    }
    d.mean = sum as f64 / (u64::from(got.width()) * u64::from(got.height())).max(1) as f64;
    d
}

/// Reads every layout of `family` and compares each page with its
/// reference; fails listing every layout that differs, with its worst
/// pixel.
fn check_family(family: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases().iter().filter(|c| c.family == family) {
        checked += 1;
        let path = dir.path().join(&case.file);
        std::fs::write(&path, &case.tiff).expect("writes the layout");
        let pages = match read_input(&path) {
            Ok(pages) => pages,
            Err(e) => {
                failures.push(format!("{}: not read: {e}", case.name));
                continue;
            }
        };
        if pages.len() != case.pages.len() {
            failures.push(format!(
                "{}: {} pages read, {} expected",
                case.name,
                pages.len(),
                case.pages.len()
            ));
            continue;
        }
        for (i, (page, want)) in pages.iter().zip(&case.pages).enumerate() {
            let got = levels(page);
            let label = format!("{} page {} (reference: {})", case.name, i + 1, case.origin);
            if got.dimensions() != want.dimensions() {
                failures.push(format!(
                    "{label}: {:?} pixels, {:?} expected",
                    got.dimensions(),
                    want.dimensions()
                ));
                continue;
            }
            let d = difference(&got, want);
            // Seen with --nocapture, and with a failure.
            println!(
                "{label}: worst {} at {:?}, mean {:.3}",
                d.worst, d.at, d.mean
            );
            let (max_worst, max_mean) = if case.jpeg { (8, 0.25) } else { (1, 0.05) };
            if d.worst > max_worst || d.mean > max_mean {
                failures.push(format!(
                    "{label}: worst pixel at {:?} is {} where the reference has {} \
                     (allowed {max_worst}), mean difference {:.3} (allowed {max_mean})",
                    d.at, d.got, d.want, d.mean
                ));
            }
        }
    }
    assert!(checked > 0, "the manifest has no {family} layouts");
    assert!(
        failures.is_empty(),
        "{} of {checked} {family} layouts differ from their reference:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn palettes_of_1_2_4_and_8_bits() {
    check_family("palette");
}

#[test]
fn grey_of_1_2_4_8_12_and_16_bits() {
    // 12 and 16 bits are compared with the source picture: Pillow clips
    // them to white (see `color::to_8bit`), we scale them.
    check_family("grey");
}

#[test]
fn rgb_and_grey_with_and_without_alpha() {
    check_family("rgb");
}

#[test]
fn planar_and_tiled() {
    check_family("planar_tiles");
}

#[test]
fn lzw_deflate_packbits_and_predictors() {
    check_family("compression");
}

#[test]
fn ycbcr_and_jpeg() {
    check_family("ycbcr_jpeg");
}

#[test]
fn cmyk() {
    check_family("cmyk");
}

#[test]
fn bigtiff() {
    check_family("bigtiff");
}

#[test]
fn multipage() {
    check_family("multipage");
}

#[test]
fn min_is_white_and_min_is_black() {
    // 16-bit min-is-white is compared with the source picture: Pillow
    // shows it uninverted.
    check_family("min_is_white");
    check_family("min_is_black");
}

#[test]
fn fill_order_2() {
    check_family("fill_order");
}

#[test]
fn floating_point_grey_and_rgb() {
    // Compared with the source picture: Pillow clips 0.0..1.0 to black.
    check_family("float");
}

// ---- damaged files --------------------------------------------------------

/// The bytes of a generated layout.
fn layout(file: &str) -> Vec<u8> {
    cases()
        .iter()
        .find(|c| c.file == file)
        .unwrap_or_else(|| panic!("no layout {file}"))
        .tiff
        .clone()
}

/// Reads `bytes` as a file named `name`; it must fail with a `BadPage`
/// naming the file and `page`, whose reason contains `says`.
fn assert_bad_page(name: &str, bytes: &[u8], page: usize, says: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("writes the file");
    let err = match read_input(&path) {
        Ok(pages) => panic!("{name}: read {} pages of a damaged file", pages.len()),
        Err(e) => e,
    };
    let text = err.to_string();
    println!("{text}");
    match &err {
        CodecError::BadPage {
            path: p, page: n, ..
        } => {
            assert_eq!(p, &path, "{text}");
            assert_eq!(*n, page, "{text}");
        }
        other => panic!("{name}: not a BadPage error: {other:?}"),
    }
    assert!(text.contains(name), "{text}");
    assert!(text.contains(&format!("page {page}")), "{text}");
    assert!(text.contains(says), "{name}: {text}");
}

/// A little-endian classic TIFF's first directory entry for `tag`: where
/// its values are, how many, and their size in bytes (2 for SHORT, 4 for
/// LONG).
fn entry(bytes: &[u8], tag: u16) -> (usize, usize, usize) {
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    let u32_at =
        |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes")) as usize;
    assert_eq!(&bytes[..4], b"II*\0", "a little-endian classic TIFF");
    let ifd = u32_at(4);
    let at = (0..u16_at(ifd))
        .map(|i| ifd + 2 + 12 * i)
        .find(|&at| u16_at(at) == usize::from(tag))
        .unwrap_or_else(|| panic!("no tag {tag}"));
    let (kind, count) = (u16_at(at + 2), u32_at(at + 4));
    let size = if kind == 3 { 2 } else { 4 };
    let values = if size * count <= 4 {
        at + 8
    } else {
        u32_at(at + 8)
    };
    (values, count, size)
}

/// Value `index` of a SHORT or LONG entry.
fn value(bytes: &[u8], tag: u16, index: usize) -> u32 {
    let (values, count, size) = entry(bytes, tag);
    assert!(index < count);
    let at = values + size * index;
    if size == 2 {
        u32::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
    } else {
        u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
    }
}

/// Sets value `index` of a SHORT or LONG entry.
fn set_value(bytes: &mut [u8], tag: u16, index: usize, value: u32) {
    let (values, count, size) = entry(bytes, tag);
    assert!(index < count);
    let at = values + size * index;
    if size == 2 {
        let short = u16::try_from(value).expect("a SHORT value");
        bytes[at..at + 2].copy_from_slice(&short.to_le_bytes());
    } else {
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }
}

#[test]
fn truncated_strips_fail_naming_file_and_page() {
    // Uncompressed on our own path (a palette), LZW on the tiff crate's
    // (RGB), Deflate tiles on ours (a 4-bit palette): each has one chunk
    // cut to a fifth of its length.
    for (file, tag) in [
        ("pal8.tif", 279),
        ("rgb8_cp_lzw.tif", 279),
        ("pal4_tiles.tif", 325),
        ("grey12_lzw.tif", 279),
    ] {
        let mut bytes = layout(file);
        let last = entry(&bytes, tag).1 - 1;
        let count = value(&bytes, tag, last);
        set_value(&mut bytes, tag, last, count / 5);
        assert_bad_page(file, &bytes, 1, "damaged");
    }
    // A whole file cut short: the last strip runs past its end. (The
    // directory comes first in Pillow's files, so it survives the cut.)
    let bytes = layout("grey8.tif");
    let last = entry(&bytes, 273).1 - 1;
    let end = (value(&bytes, 273, last) + value(&bytes, 279, last) / 2) as usize;
    assert_bad_page("cut.tif", &bytes[..end], 1, "past the end of the file");
}

#[test]
fn a_tile_past_the_end_fails_naming_file_and_page() {
    for file in ["rgb8_tiles.tif", "pal4_tiles.tif", "grey12_be_tiles.tif"] {
        let mut bytes = layout(file);
        if bytes.starts_with(b"MM") {
            continue;
        }
        let len = bytes.len() as u32;
        set_value(&mut bytes, 324, 2, len - 10);
        assert_bad_page(file, &bytes, 1, "tile 3");
        assert_bad_page(file, &bytes, 1, "past the end of the file");
    }
}

/// A directory entry: tag, type (3 SHORT, 4 LONG) and values.
type Entry = (u16, u16, Vec<u32>);

/// A crafted page: its entries and its data.
type Page = (Vec<Entry>, Vec<u8>);

/// A little-endian TIFF of 8x2-pixel pages, each with the given entries
/// (tag, type, values) and data. The data is one strip, or one tile when
/// the entries give a TileWidth; its entries are added here.
fn crafted(pages: &[Page]) -> Vec<u8> {
    let mut bytes = b"II*\0\0\0\0\0".to_vec();
    let mut link = 4;
    for (entries, data) in pages {
        let data_at = bytes.len() as u32;
        bytes.extend_from_slice(data);
        let mut entries = entries.clone();
        entries.push((256, 4, vec![8]));
        entries.push((257, 4, vec![2]));
        if entries.iter().any(|e| e.0 == 322) {
            entries.push((324, 4, vec![data_at]));
            entries.push((325, 4, vec![data.len() as u32]));
        } else {
            entries.push((273, 4, vec![data_at]));
            entries.push((278, 4, vec![2]));
            entries.push((279, 4, vec![data.len() as u32]));
        }
        entries.sort_by_key(|e| e.0);
        // Values that do not fit an entry go before the directory.
        let mut fields = Vec::new();
        for (_, kind, values) in &entries {
            let raw: Vec<u8> = values
                .iter()
                .flat_map(|&v| {
                    if *kind == 3 {
                        (v as u16).to_le_bytes().to_vec()
                    } else {
                        v.to_le_bytes().to_vec()
                    }
                })
                .collect();
            if raw.len() <= 4 {
                let mut field = raw;
                field.resize(4, 0);
                fields.push(field);
            } else {
                if bytes.len() % 2 == 1 {
                    bytes.push(0);
                }
                fields.push((bytes.len() as u32).to_le_bytes().to_vec());
                bytes.extend_from_slice(&raw);
            }
        }
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        let ifd = bytes.len() as u32;
        bytes[link..link + 4].copy_from_slice(&ifd.to_le_bytes());
        bytes.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for ((tag, kind, values), field) in entries.iter().zip(fields) {
            bytes.extend_from_slice(&tag.to_le_bytes());
            bytes.extend_from_slice(&kind.to_le_bytes());
            bytes.extend_from_slice(&(values.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&field);
        }
        link = bytes.len();
        bytes.extend_from_slice(&0u32.to_le_bytes());
    }
    bytes
}

/// An 8x2 page of 8-bit grey.
fn grey_page() -> Page {
    (
        vec![(258, 3, vec![8]), (259, 3, vec![1]), (262, 3, vec![1])],
        (0..16).map(|i| i * 16).collect(),
    )
}

#[test]
fn crafted_pages_read() {
    // The helper's own pages read, so the failures below are the damage.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path: PathBuf = dir.path().join("ok.tif");
    std::fs::write(&path, crafted(&[grey_page(), grey_page()])).expect("writes");
    let pages = read_input(&path).expect("reads");
    assert_eq!(pages.len(), 2);
    assert_eq!(levels(&pages[1]).get_pixel(3, 1).0[0], 11 * 16);
}

#[test]
fn a_palette_index_past_the_colour_map_fails_naming_file_and_page() {
    // Four colours in the map; a pixel of the second page uses colour 9.
    let map: Vec<u32> = (0..12).map(|i| i * 5000).collect();
    let mut strip = vec![1u8; 16];
    strip[13] = 9;
    let palette = (
        vec![
            (258, 3, vec![8]),
            (259, 3, vec![1]),
            (262, 3, vec![3]),
            (320, 3, map),
        ],
        strip,
    );
    let bytes = crafted(&[grey_page(), palette]);
    assert_bad_page("palette.tif", &bytes, 2, "colour 9");
    assert_bad_page("palette.tif", &bytes, 2, "only 4 colours");
}

#[test]
fn bogus_bits_per_sample_fails_naming_file_and_page() {
    for bits in [7, 33, 3, 0x20] {
        let bogus = (
            vec![(258, 3, vec![bits]), (259, 3, vec![1]), (262, 3, vec![1])],
            vec![0; 16 * 5],
        );
        let bytes = crafted(&[grey_page(), bogus]);
        assert_bad_page("bits.tif", &bytes, 2, &format!("{bits} bits deep"));
    }
    let mixed = (
        vec![
            (258, 3, vec![8, 8, 16]),
            (259, 3, vec![1]),
            (262, 3, vec![2]),
            (277, 3, vec![3]),
        ],
        vec![0; 16 * 4],
    );
    // The tiff crate refuses these in the directory already.
    assert_bad_page("mixed.tif", &crafted(&[mixed]), 1, "bits per sample");
}

#[test]
fn layouts_faxmesh_does_not_read_fail_saying_what_to_do() {
    let page = |entries: Vec<Entry>| (entries, vec![0u8; 16 * 8]);
    let cases = [
        (
            // Zstandard.
            page(vec![
                (258, 3, vec![8]),
                (259, 3, vec![50000]),
                (262, 3, vec![1]),
            ]),
            "Zstandard",
        ),
        (
            // CIE L*a*b*.
            page(vec![
                (258, 3, vec![8, 8, 8]),
                (259, 3, vec![1]),
                (262, 3, vec![8]),
                (277, 3, vec![3]),
            ]),
            "L*a*b*",
        ),
        (
            // 32-bit integers.
            page(vec![
                (258, 3, vec![32]),
                (259, 3, vec![1]),
                (262, 3, vec![1]),
            ]),
            "32 bits deep",
        ),
        (
            // Signed integers.
            page(vec![
                (258, 3, vec![16]),
                (259, 3, vec![1]),
                (262, 3, vec![1]),
                (339, 3, vec![2]),
            ]),
            "signed integer",
        ),
        (
            // Floats of 16 bits.
            page(vec![
                (258, 3, vec![16]),
                (259, 3, vec![1]),
                (262, 3, vec![1]),
                (339, 3, vec![3]),
            ]),
            "floating-point",
        ),
    ];
    for (page, says) in cases {
        assert_bad_page("unread.tif", &crafted(&[page]), 1, says);
    }
}

#[test]
fn a_jpeg_frame_larger_than_its_strip_is_refused_before_decoding() {
    // zune-jpeg allocates what the frame header claims; a 16000x16000
    // frame in a strip of 301x32 pixels must not get that far.
    let mut bytes = layout("ycbcr_jpeg.tif");
    let strip = value(&bytes, 273, 0) as usize;
    let sof = (strip..bytes.len() - 1)
        .find(|&at| bytes[at] == 0xff && bytes[at + 1] == 0xc0)
        .expect("a baseline frame header in the first strip");
    bytes[sof + 5..sof + 9].copy_from_slice(&[0x3e, 0x80, 0x3e, 0x80]);
    assert_bad_page("jpeg.tif", &bytes, 1, "16000x16000");
}

#[test]
fn a_tile_too_large_to_decode_is_refused_before_allocating() {
    // One 60000x60000 tile for a page of 8x2 pixels: 3.6 GB to decode.
    let (mut entries, _) = grey_page();
    entries.push((322, 4, vec![60000]));
    entries.push((323, 4, vec![60000]));
    let bytes = crafted(&[(entries, vec![0; 16])]);
    assert_bad_page("tile.tif", &bytes, 1, "too large to decode");
}

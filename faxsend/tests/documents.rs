//! Documents people fax, made by tools nobody here wrote (reportlab,
//! ghostscript's ps2pdf, libtiff's tiff2pdf, Pillow: see
//! `tools/make_documents.py`), faxed with the real faxsend binary
//! (`--output`), and each page compared with poppler's rendering of the
//! same page (`pdftoppm`) at the same size.
//!
//! Why a tolerance and which: two rasterizers never agree on every edge
//! pixel. Anti-aliasing, hinting and rounding move glyph and line edges by
//! a pixel. So a pixel that differs is *explained* when the other
//! rendering has its colour within one pixel of it, and only unexplained
//! pixels count as a real difference: content that one side drew and the
//! other did not, or drew elsewhere. Measured on these documents, the
//! unexplained share of the ink is 0.1% to 1.5% (the most on ghostscript's
//! memo at standard resolution, where a row is twice as tall); a page
//! turned the wrong way or cropped to the wrong box measured 77% to 92%.
//! The bound of 3% sits well between. Both tools draw the fonts a PDF does
//! not embed with the URW base-35 fonts (fonts-urw-base35, which
//! ghostscript brings).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::codec::input::{SourceImage, read_input};
use common::codec::{Bitmap, decode, read_pages};
use image::GrayImage;

/// Share of a page's ink that may differ from poppler's rendering with no
/// matching pixel within one pixel (see the file's comment).
const MAX_UNEXPLAINED: f64 = 0.03;

/// The documents, made once for all tests of this file.
fn docs() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let python = std::env::var("FAXMESH_PYTHON").unwrap_or_else(|_| "python3".into());
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools");
        let font = Path::new(env!("CARGO_MANIFEST_DIR")).join("../common/fonts/DejaVuSansMono.ttf");
        let out = Command::new(&python)
            .arg(tools.join("make_documents.py"))
            .arg(dir.path())
            .arg(font)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python} (install it with ./test.sh): {e}"));
        assert!(
            out.status.success(),
            "make_documents.py failed (./test.sh installs reportlab, Pillow, ghostscript, \
             libtiff-tools):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

/// Runs faxsend with `args` in `dir`: (exit code, stderr).
fn faxsend(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faxsend"))
        .current_dir(dir)
        .env_remove("FAXMESH_SECRET")
        .env("SOURCE_DATE_EPOCH", "1790000000")
        .env("TZ", "UTC")
        .args(args)
        .output()
        .expect("faxsend runs");
    (
        out.status.code().expect("an exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Faxes `files` (in the documents' folder) into a fresh file and returns
/// its pages, decoded.
fn fax(files: &[&str], extra: &[&str]) -> Vec<Bitmap> {
    let out = tempfile::tempdir().expect("temp dir");
    let target = out.path().join("out.tif");
    let mut args: Vec<&str> = files.to_vec();
    args.extend_from_slice(extra);
    let target_str = target.to_str().expect("utf-8 path");
    args.extend_from_slice(&["--output", target_str]);
    let (code, stderr) = faxsend(docs(), &args);
    assert_eq!(code, 0, "faxsend {args:?}: {stderr}");
    read_pages(&target)
        .expect("faxsend wrote a fax file")
        .iter()
        .map(|p| decode(p).expect("the page decodes"))
        .collect()
}

/// poppler's rendering of page `page` (from 1) of `pdf` in grey, scaled to
/// exactly `width` x `height` pixels as shown (CropBox and /Rotate applied,
/// as viewers and faxsend show a page).
fn poppler(pdf: &str, page: usize, width: u32, height: u32) -> GrayImage {
    let render = |x: u32, y: u32| {
        let out = tempfile::tempdir().expect("temp dir");
        let prefix = out.path().join("p");
        let n = page.to_string();
        let status = Command::new("pdftoppm")
            .args(["-gray", "-cropbox", "-singlefile", "-f", &n, "-l", &n])
            .args(["-scale-to-x", &x.to_string(), "-scale-to-y", &y.to_string()])
            .arg(docs().join(pdf))
            .arg(&prefix)
            .status()
            .expect("pdftoppm runs (./test.sh installs poppler-utils)");
        assert!(status.success(), "pdftoppm failed on {pdf} page {page}");
        image::open(prefix.with_extension("pgm"))
            .expect("pdftoppm wrote a PGM")
            .to_luma8()
    };
    let image = render(width, height);
    if image.dimensions() == (width, height) {
        return image;
    }
    // pdftoppm scales the page before turning it by /Rotate 90 or 270.
    render(height, width)
}

/// How one page compares with a reference rendering.
#[derive(Debug)]
struct Compared {
    ink: u64,
    differing: u64,
    unexplained: u64,
}

impl Compared {
    fn unexplained_share(&self) -> f64 {
        self.unexplained as f64 / self.ink.max(1) as f64
    }
}

/// Compares our page with a grey reference thresholded as faxsend
/// thresholds (black below 128).
fn compare(ours: &Bitmap, reference: &GrayImage) -> Compared {
    assert_eq!(
        (ours.width(), ours.height()),
        reference.dimensions(),
        "page size"
    );
    let theirs = |x: u32, y: u32| reference.get_pixel(x, y).0[0] < 128;
    let (w, h) = (ours.width() as i64, ours.height() as i64);
    let near = |f: &dyn Fn(u32, u32) -> bool, x: u32, y: u32, black: bool| {
        (-1..=1).any(|dy| {
            (-1..=1).any(|dx| {
                let (nx, ny) = (i64::from(x) + dx, i64::from(y) + dy);
                (0..w).contains(&nx) && (0..h).contains(&ny) && f(nx as u32, ny as u32) == black
            })
        })
    };
    let mine = |x: u32, y: u32| ours.get(x, y);
    let mut c = Compared {
        ink: 0,
        differing: 0,
        unexplained: 0,
    };
    for y in 0..ours.height() {
        for x in 0..ours.width() {
            let (a, b) = (mine(x, y), theirs(x, y));
            c.ink += u64::from(a || b);
            if a != b {
                c.differing += 1;
                // Our pixel's colour near theirs, and theirs near ours.
                if !near(&theirs, x, y, a) || !near(&mine, x, y, b) {
                    c.unexplained += 1;
                }
            }
        }
    }
    c
}

/// Asserts that our `page` looks like `reference` (see the file's comment).
fn assert_page_like(label: &str, page: &Bitmap, reference: &GrayImage, bound: f64) {
    let c = compare(page, reference);
    eprintln!("{label}: {c:?}");
    assert!(c.ink > 1000, "{label} has content: {c:?}");
    assert!(
        c.unexplained_share() <= bound,
        "{label} differs from poppler's rendering: {c:?}"
    );
}

fn assert_like_poppler(pdf: &str, pages: &[Bitmap]) {
    for (i, page) in pages.iter().enumerate() {
        let reference = poppler(pdf, i + 1, page.width(), page.height());
        assert_page_like(
            &format!("{pdf} page {}", i + 1),
            page,
            &reference,
            MAX_UNEXPLAINED,
        );
    }
}

#[test]
fn reportlab_pdf_with_standard_and_embedded_fonts_and_a_jpeg_matches_poppler() {
    let pages = fax(&["report.pdf"], &[]);
    assert_eq!(pages.len(), 3);
    for page in &pages {
        assert_eq!((page.width(), page.y_dpi()), (1728, 196));
    }
    // A4 is 1728 wide at 204 dpi once scaled: 297/210 as tall, in 196 lpi rows.
    let a4_rows = (1728.0 / 204.0 * 297.0 / 210.0 * 196.0_f64).round() as u32;
    assert!(
        pages[0].height().abs_diff(a4_rows) <= 1,
        "{}",
        pages[0].height()
    );
    let letter_rows = (1728.0 / 204.0 * 11.0 / 8.5 * 196.0_f64).round() as u32;
    assert!(
        pages[2].height().abs_diff(letter_rows) <= 1,
        "{}",
        pages[2].height()
    );
    assert_like_poppler("report.pdf", &pages);
}

#[test]
fn dither_draws_photographs_in_dots() {
    let plain = fax(&["report.pdf"], &[]);
    let dithered = fax(&["report.pdf"], &["--dither"]);
    assert_eq!(dithered.len(), 3);
    // Page 2 holds a photograph with a colour gradient that a threshold
    // turns into one black block; dithered, about half of it stays white.
    let band_black = |page: &Bitmap| {
        let rows = (300..400).map(|y| y * page.height() / 1000);
        rows.map(|y| (250..1400).filter(|&x| page.get(x, y)).count())
            .sum::<usize>()
    };
    let (p, d) = (band_black(&plain[1]), band_black(&dithered[1]));
    assert!(
        d * 10 < p * 9,
        "dithering whitens the dark photo: {d} of {p}"
    );
    assert!(d * 10 > p, "but keeps its tones: {d} of {p}");
}

#[test]
fn ghostscript_and_tiff2pdf_and_form_pdfs_match_poppler() {
    for pdf in ["memo.pdf", "scan.pdf", "form.pdf", "locked-open.pdf"] {
        assert_like_poppler(pdf, &fax(&[pdf], &[]));
    }
}

#[test]
fn standard_resolution_and_b4_paper_match_poppler_too() {
    let pages = fax(
        &["memo.pdf"],
        &["--resolution", "standard", "--paper", "b4"],
    );
    assert_eq!((pages[0].width(), pages[0].y_dpi()), (2048, 98));
    assert_like_poppler("memo.pdf", &pages);
}

#[test]
fn rotate_and_cropbox_are_honoured() {
    // layout.pdf: 1 landscape, 2 a portrait MediaBox with /Rotate 90 (so it
    // shows landscape), 3 a CropBox. With --keep-orientation every page is
    // as a viewer shows it.
    let kept = fax(&["layout.pdf"], &["--keep-orientation"]);
    assert_eq!(kept.len(), 3);
    assert!(
        kept[0].height() < kept[0].width(),
        "landscape kept landscape"
    );
    assert!(
        kept[1].height() < kept[1].width(),
        "/Rotate 90 shows landscape"
    );
    // The crop box: 523 x 606 points of the page.
    let cropped = f64::from(kept[2].height()) / f64::from(kept[2].width());
    assert!(
        (cropped - 605.89 / 523.28 * 196.0 / 204.0).abs() < 0.01,
        "{cropped}"
    );
    assert_like_poppler("layout.pdf", &kept[..1]);
    let cropped_ref = poppler("layout.pdf", 3, kept[2].width(), kept[2].height());
    assert_page_like("layout.pdf page 3", &kept[2], &cropped_ref, MAX_UNEXPLAINED);
    // pdftoppm cannot scale a turned page to non-square pixels (it swaps
    // the axes' scales), so page 2 is compared with poppler's rendering of
    // the same page unturned, turned a quarter clockwise here.
    let (w, h) = (kept[1].width(), kept[1].height());
    let unturned = poppler("layout-unturned.pdf", 2, h, w);
    let reference = image::imageops::rotate90(&unturned);
    assert_page_like("layout.pdf page 2", &kept[1], &reference, MAX_UNEXPLAINED);
}

#[test]
fn landscape_pages_turn_to_portrait_with_their_top_on_the_left() {
    let turned = fax(&["layout.pdf"], &[]);
    let kept = fax(&["layout.pdf"], &["--keep-orientation"]);
    assert_eq!(turned[2], kept[2], "a portrait page is not turned");
    for page in &turned[..2] {
        assert!(page.height() > page.width(), "portrait");
    }
    // Page 1: poppler's landscape rendering turned a quarter
    // counter-clockwise, rendered at the size that turns into ours.
    let (w, h) = (turned[0].width(), turned[0].height());
    let reference = image::imageops::rotate270(&poppler("layout.pdf", 1, h, w));
    assert_page_like(
        "layout.pdf page 1 turned",
        &turned[0],
        &reference,
        MAX_UNEXPLAINED,
    );
    // Page 2 shows landscape because /Rotate 90 turns a portrait page
    // clockwise; turning it back counter-clockwise gives the page unturned.
    let (w, h) = (turned[1].width(), turned[1].height());
    let reference = poppler("layout-unturned.pdf", 2, w, h);
    assert_page_like(
        "layout.pdf page 2 turned",
        &turned[1],
        &reference,
        MAX_UNEXPLAINED,
    );
}

#[test]
fn broken_locked_and_empty_pdfs_fail_before_anything_is_written() {
    let cases = [
        (
            "password.pdf",
            "password.pdf is a password-protected PDF; faxmesh cannot open it. Remove the password",
        ),
        (
            "damaged.pdf",
            "damaged.pdf is not a readable PDF: it is damaged or not a PDF",
        ),
        ("empty.pdf", "empty.pdf holds no pages"),
    ];
    for (file, says) in cases {
        let out = tempfile::tempdir().expect("temp dir");
        let target = out.path().join("out.tif");
        // The good report first: the bad file after it still stops it all.
        let (code, stderr) = faxsend(
            docs(),
            &[
                "report.pdf",
                file,
                "--output",
                target.to_str().expect("utf-8"),
            ],
        );
        assert_eq!(code, 2, "{file}: {stderr}");
        assert!(stderr.starts_with("faxsend: "), "{stderr}");
        assert!(
            stderr.contains(says),
            "{file}: expected '{says}' in {stderr}"
        );
        assert_eq!(
            std::fs::read_dir(out.path()).expect("list").count(),
            0,
            "{file}: nothing written"
        );
    }
}

#[test]
fn a_truncated_pdf_fails_or_faxes_what_is_there_but_never_panics() {
    let whole = std::fs::read(docs().join("report.pdf")).expect("read");
    let dir = tempfile::tempdir().expect("temp dir");
    for cut in [100, whole.len() / 3, whole.len() / 2, whole.len() - 40] {
        std::fs::write(dir.path().join("cut.pdf"), &whole[..cut]).expect("write");
        let (code, stderr) = faxsend(dir.path(), &["cut.pdf", "--output", "out.tif"]);
        assert!(
            code == 0 || code == 2,
            "cut at {cut}: exit {code}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "cut at {cut}: {stderr}");
        if code == 2 {
            assert!(stderr.contains("cut.pdf"), "names the file: {stderr}");
        }
    }
}

#[test]
fn phone_photos_are_turned_as_their_exif_orientation_says() {
    let gray = |path: PathBuf| match read_input(&path).expect("reads").remove(0).image {
        SourceImage::Gray(g) => g,
        SourceImage::Bilevel(_) => panic!("a photo reads as grey"),
    };
    let upright = gray(docs().join("photo-upright.png"));
    for tag in 2..=8 {
        let photo = gray(docs().join(format!("photo-exif{tag}.jpg")));
        assert_eq!(
            photo.dimensions(),
            upright.dimensions(),
            "orientation {tag}"
        );
        // JPEG at quality 95 keeps every pixel within a few levels except
        // at sharp edges: compare the mean.
        let total: u64 = photo
            .pixels()
            .zip(upright.pixels())
            .map(|(a, b)| u64::from(a.0[0].abs_diff(b.0[0])))
            .sum();
        let mean = total as f64 / f64::from(photo.width() * photo.height());
        assert!(mean < 4.0, "orientation {tag}: mean difference {mean}");
    }
}

#[test]
fn text_files_are_laid_out_in_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text: String = (1..=130)
        .map(|i| format!("Line {i}\tof the log: ok\n"))
        .collect();
    std::fs::write(dir.path().join("log.txt"), text).expect("write");
    let (code, stderr) = faxsend(dir.path(), &["log.txt", "--output", "out.tif"]);
    assert_eq!(code, 0, "{stderr}");
    let pages = read_pages(&dir.path().join("out.tif")).expect("a fax file");
    // 64 lines on an A4 page.
    assert_eq!(pages.len(), 3);
    let last = decode(&pages[2]).expect("decodes");
    let inked_rows = (0..last.height())
        .filter(|&y| (0..last.width()).any(|x| last.get(x, y)))
        .count();
    assert!(
        inked_rows > 20 && inked_rows < 120,
        "two lines of text: {inked_rows}"
    );

    std::fs::write(dir.path().join("latin1.txt"), b"caf\xe9\n").expect("write");
    let (code, stderr) = faxsend(dir.path(), &["latin1.txt", "--output", "out2.tif"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("latin1.txt is not UTF-8 text (invalid byte at offset 3)"),
        "{stderr}"
    );
    assert!(stderr.contains("iconv"), "{stderr}");
    assert!(!dir.path().join("out2.tif").exists());

    std::fs::write(dir.path().join("blank.txt"), "\n  \n").expect("write");
    let (code, stderr) = faxsend(dir.path(), &["blank.txt", "--output", "out3.tif"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("blank.txt holds no pages"), "{stderr}");
}

#[test]
fn a_fax_tiff_passes_unchanged_and_the_tag_line_is_its_one_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fax_tif = dir.path().join("fax.tif");
    std::fs::copy(docs().join("scan-g4.tif"), dir.path().join("scan.tif")).expect("copy");
    let (code, stderr) = faxsend(dir.path(), &["scan.tif", "--output", "fax.tif"]);
    assert_eq!(code, 0, "{stderr}");
    let original = decode(&read_pages(&fax_tif).expect("fax file")[0]).expect("decodes");

    let again = |extra: &[&str]| {
        let mut args = vec!["fax.tif", "--output", "out.tif"];
        args.extend_from_slice(extra);
        let (code, stderr) = faxsend(dir.path(), &args);
        assert_eq!(code, 0, "{stderr}");
        decode(&read_pages(&dir.path().join("out.tif")).expect("fax file")[0]).expect("decodes")
    };
    assert_eq!(again(&[]), original, "no change without --from");
    assert_eq!(again(&["--from", "1001", "--no-tagline"]), original);

    let tagged = again(&["--from", "1001", "--to", "1002"]);
    let band = tagged.height() - original.height();
    assert_eq!(
        band,
        (0.2_f64 * 196.0).round() as u32,
        "a 0.2 in band above"
    );
    let stride = original.stride();
    assert_eq!(
        &tagged.data()[stride * band as usize..],
        original.data(),
        "every row of the page is as it was"
    );
    assert!(
        tagged.data()[..stride * band as usize]
            .iter()
            .any(|&b| b != 0),
        "the band holds the tag line"
    );
    // Another format draws another band, on the same page.
    let other = again(&["--from", "1001", "--tagline", "{number}"]);
    assert_ne!(other, tagged);
    assert_eq!(&other.data()[stride * band as usize..], original.data());
}

#[test]
fn the_cover_page_comes_first_and_every_page_counts_it() {
    let pages = fax(
        &["memo.pdf"],
        &[
            "--from",
            "1001",
            "--to",
            "1002",
            "--cover",
            "--from-name",
            "Front desk",
            "--to-name",
            "Accounts",
            "--subject",
            "Invoice 42",
            "--comment",
            "Please pay by Friday.\\nThank you.",
        ],
    );
    assert_eq!(pages.len(), 3, "cover + 2 pages");
    let cover = &pages[0];
    assert!(cover.count_black() > 20_000, "the cover has text");
    // The tag line says "Page N of 3" on each page: the three bands differ
    // only where the page number is.
    let band = (0.2_f64 * 196.0).round() as usize * cover.stride();
    let bands: Vec<&[u8]> = pages.iter().map(|p| &p.data()[..band]).collect();
    assert_ne!(bands[0], bands[1]);
    assert_ne!(bands[1], bands[2]);
    // Without the cover the memo's pages are the same but for the tag line.
    let plain = fax(&["memo.pdf"], &["--from", "1001", "--to", "1002"]);
    assert_eq!(plain.len(), 2);
    assert_eq!(&plain[0].data()[band..], &pages[1].data()[band..]);
}

#[test]
fn cover_and_tag_line_flags_need_a_sender_and_a_valid_format() {
    let dir = docs();
    let (code, stderr) = faxsend(
        dir,
        &["memo.pdf", "--cover", "--output", "/nonexistent/x.tif"],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("--cover needs --from"), "{stderr}");
    let (code, stderr) = faxsend(
        dir,
        &[
            "memo.pdf",
            "--from",
            "1001",
            "--tagline",
            "{when}",
            "--output",
            "/nonexistent/x.tif",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown field {when}; use {date}"),
        "{stderr}"
    );
}

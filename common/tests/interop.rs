//! Interoperability with libtiff's own tools (tiffinfo, tiffcp, fax2tiff).
//!
//! These tests shell out to libtiff-tools. When a tool is missing they fail
//! and say to install it: a silent pass would hide that nothing was checked.

use std::path::{Path, PathBuf};
use std::process::Command;

use common::codec::g3::{G3Options, encode_g3, k_for_lines_per_inch};
use common::codec::tiff_write::write_uncompressed;
use common::codec::{Bitmap, Compression, Resolution, decode, encode, read_pages, write_document};

mod support;
use support::Lcg;

/// Runs a libtiff tool and returns (stdout, stderr); fails the test when the
/// tool is missing or exits non-zero.
fn run(tool: &str, args: &[&str]) -> (String, String) {
    let out = match Command::new(tool).args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{tool} is not installed; install libtiff-tools (apt-get install libtiff-tools) \
             to run the interop tests"
        ),
        Err(e) => panic!("cannot run {tool}: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{tool} {args:?} failed: {stderr}");
    (stdout, stderr)
}

fn s(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// A text-like page: lines of glyph-sized blobs with word gaps, a rule, a
/// box, and a patch of noise to exercise every coding mode.
fn text_page(width: u32, height: u32, resolution: Resolution, seed: u64) -> Bitmap {
    let mut page = Bitmap::new_fax(width, height, resolution);
    let mut rng = Lcg(seed);
    let line_h = 12 * resolution.row_multiple();
    let mut y = 8;
    while y + line_h < height.saturating_sub(8) {
        let mut x = 60 + (rng.next() % 40) as u32;
        while x < width - 80 {
            let word = 3 + rng.next() % 8;
            for _ in 0..word {
                let w = 4 + (rng.next() % 9) as u32;
                if x + w >= width - 40 {
                    break;
                }
                let top = y + (rng.next() % 4) as u32 * resolution.row_multiple();
                page.fill_rect(x, top, x + w, y + line_h - 2);
                if rng.next().is_multiple_of(3) {
                    // A hole, like the counter of an 'o'.
                    for yy in top + 2..y + line_h - 4 {
                        page.set(x + w / 2, yy, false);
                    }
                }
                x += w + 2;
            }
            x += 12 + (rng.next() % 10) as u32;
        }
        y += line_h + 6 * resolution.row_multiple();
    }
    page.fill_rect(40, 2, width - 40, 3);
    for y in height / 3..height / 3 + 20 {
        for x in width / 2..width / 2 + 300 {
            page.set(x, y, rng.next().is_multiple_of(2));
        }
    }
    page
}

/// The raw strips of every page of a TIFF, with the tags that matter here.
fn raw_strips(path: &Path) -> Vec<(u16, u32, Vec<Vec<u8>>)> {
    use std::io::{Read, Seek, SeekFrom};
    use tiff::tags::Tag;
    let file = std::fs::File::open(path).expect("open");
    let mut d = tiff::decoder::Decoder::new(std::io::BufReader::new(file)).expect("tiff");
    let mut pages = vec![];
    loop {
        let compression: u16 = d.get_tag_unsigned(Tag::Compression).expect("compression");
        let t4: u32 = d
            .find_tag_unsigned(Tag::Unknown(292))
            .expect("t4")
            .unwrap_or(0);
        let offsets = d.get_tag_u64_vec(Tag::StripOffsets).expect("offsets");
        let counts = d.get_tag_u64_vec(Tag::StripByteCounts).expect("counts");
        let mut strips = vec![];
        for (o, c) in offsets.iter().zip(&counts) {
            let mut buf = vec![0; *c as usize];
            let r = d.inner();
            r.seek(SeekFrom::Start(*o)).expect("seek");
            r.read_exact(&mut buf).expect("read");
            strips.push(buf);
        }
        pages.push((compression, t4, strips));
        if !d.more_images() {
            break;
        }
        d.next_image().expect("next page");
    }
    pages
}

/// Reads an uncompressed bilevel TIFF (as `tiffcp -c none` writes it) into
/// bitmaps, from the raw strips: no codec of ours involved.
fn read_uncompressed(path: &Path, resolution: Resolution) -> Vec<Bitmap> {
    use tiff::tags::Tag;
    let file = std::fs::File::open(path).expect("open");
    let mut d = tiff::decoder::Decoder::new(std::io::BufReader::new(file)).expect("tiff");
    let mut out = vec![];
    loop {
        let (w, h) = d.dimensions().expect("dims");
        assert_eq!(d.get_tag_unsigned::<u16>(Tag::Compression).expect("c"), 1);
        assert_eq!(
            d.get_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
                .expect("p"),
            0
        );
        let mut data = vec![];
        let n = d.strip_count().expect("strips");
        for i in 0..n {
            let mut chunk = match d.read_chunk(i).expect("chunk") {
                tiff::decoder::DecodingResult::U8(v) => v,
                _ => panic!("not 8-bit"),
            };
            // The tiff crate turns min-is-white into min-is-black; undo it.
            chunk.iter_mut().for_each(|b| *b = !*b);
            data.extend(chunk);
        }
        data.truncate(w.div_ceil(8) as usize * h as usize);
        out.push(Bitmap::from_packed(w, h, 204, resolution.lines_per_inch(), data).expect("size"));
        if !d.more_images() {
            break;
        }
        d.next_image().expect("next");
    }
    out
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn write_plain(dir: &Path, name: &str, pages: &[Bitmap]) -> PathBuf {
    let path = dir.join(name);
    write_uncompressed(&path, pages).expect("write uncompressed");
    path
}

#[test]
fn hand_written_mh_and_mr_match_libtiff_byte_for_byte() {
    let dir = temp();
    for resolution in Resolution::ALL {
        for width in [1728, 2048, 2432] {
            let page = text_page(width, 300, resolution, u64::from(width) + 7);
            let input = write_plain(dir.path(), "in.tif", std::slice::from_ref(&page));
            let rows = page.height().to_string();
            for (scheme, two_d, fill_bits) in [
                ("g3:1d", false, false),
                ("g3:1d:fill", false, true),
                ("g3:2d", true, false),
                ("g3:2d:fill", true, true),
            ] {
                let out = dir.path().join("out.tif");
                run("tiffcp", &["-c", scheme, "-r", &rows, s(&input), s(&out)]);
                let strips = raw_strips(&out);
                let (_, t4, strips) = &strips[0];
                assert_eq!(strips.len(), 1);
                let opts = G3Options {
                    two_d,
                    fill_bits,
                    k: k_for_lines_per_inch(resolution.lines_per_inch()),
                };
                assert_eq!(*t4, opts.t4_options(), "{scheme}: T4Options");
                let ours = encode_g3(&page, opts);
                let first_diff = ours.iter().zip(&strips[0]).position(|(a, b)| a != b);
                assert!(
                    ours == strips[0],
                    "{scheme} {resolution} width {width}: ours {} bytes, libtiff {} bytes, \
                     first difference at byte {first_diff:?}",
                    ours.len(),
                    strips[0].len()
                );
            }
        }
    }
}

#[test]
fn hand_written_g4_matches_libtiff_byte_for_byte() {
    let dir = temp();
    for resolution in Resolution::ALL {
        for width in [1728, 2048, 2432, 1001] {
            let page = text_page(width, 400, resolution, 42 + u64::from(width));
            let input = write_plain(dir.path(), "in.tif", std::slice::from_ref(&page));
            let out = dir.path().join("g4.tif");
            run("tiffcp", &["-c", "g4", "-r", "400", s(&input), s(&out)]);
            let strips = raw_strips(&out);
            let ours = encode(&page, Compression::G4).expect("encodes");
            let libtiff = &strips[0].2[0];
            let first_diff = ours.data.iter().zip(libtiff).position(|(a, b)| a != b);
            assert!(
                ours.data == *libtiff,
                "{resolution} width {width}: ours {} bytes, libtiff {} bytes, first \
                 difference at byte {first_diff:?}",
                ours.data.len(),
                libtiff.len()
            );
            // libtiff ends the strip with EOFB (two EOLs, 0x001001) and 0
            // bits to a whole byte (fewer than 8, so the last 4 bytes hold it).
            let tail = u32::from_be_bytes(libtiff[libtiff.len() - 4..].try_into().expect("4"));
            let pad = tail.trailing_zeros();
            assert!(pad < 8, "{resolution} width {width}: {pad} padding bits");
            assert_eq!((tail >> pad) & 0xff_ffff, 0x001001, "ends with EOFB");
        }
    }
}

/// Decodes every page of a fax TIFF with our reader.
fn our_bitmaps(path: &Path) -> Vec<Bitmap> {
    read_pages(path)
        .expect("our reader reads it")
        .iter()
        .map(|p| decode(p).expect("decodes"))
        .collect()
}

fn three_pages() -> Vec<Bitmap> {
    vec![
        text_page(1728, 700, Resolution::Fine, 1),
        text_page(1728, 350, Resolution::Standard, 2),
        text_page(1728, 1400, Resolution::Superfine, 3),
    ]
}

#[test]
fn our_files_pass_tiffinfo_and_tiffcp_none_gives_back_our_bitmaps() {
    let dir = temp();
    for compression in Compression::ALL {
        let pages = three_pages();
        let encoded: Vec<_> = pages
            .iter()
            .map(|p| encode(p, compression).expect("encodes"))
            .collect();
        let ours = dir.path().join(format!("ours-{compression}.tif"));
        write_document(&ours, &encoded).expect("writes");

        let (stdout, stderr) = run("tiffinfo", &["-D", s(&ours)]);
        assert_eq!(
            stderr, "",
            "tiffinfo -D complained about our {compression} file"
        );
        assert_eq!(stdout.matches("TIFF Directory").count(), 3, "{stdout}");
        assert!(stdout.contains("Page Number: 0-3"), "{stdout}");
        assert!(stdout.contains("Page Number: 2-3"), "{stdout}");

        let plain = dir.path().join("plain.tif");
        run("tiffcp", &["-c", "none", s(&ours), s(&plain)]);
        let back = read_uncompressed(&plain, Resolution::Fine);
        assert_eq!(back.len(), 3);
        for (i, (got, want)) in back.iter().zip(&pages).enumerate() {
            assert!(
                got.data() == want.data(),
                "{compression} page {}: libtiff sees other pixels",
                i + 1
            );
        }

        // And our reader hands back the very bytes we stored.
        assert_eq!(read_pages(&ours).expect("reads"), encoded);
    }
}

#[test]
fn files_libtiff_encodes_decode_to_the_same_pixels() {
    let dir = temp();
    let pages = three_pages();
    let plain = write_plain(dir.path(), "plain.tif", &pages);
    for scheme in ["g4", "g3:1d", "g3:2d", "g3:1d:fill", "g3:2d:fill"] {
        let out = dir.path().join("libtiff.tif");
        run("tiffcp", &["-c", scheme, s(&plain), s(&out)]);
        let got = our_bitmaps(&out);
        assert_eq!(got.len(), 3, "{scheme}");
        for (i, (got, want)) in got.iter().zip(&pages).enumerate() {
            assert!(
                got.data() == want.data(),
                "{scheme} page {}: pixels differ",
                i + 1
            );
        }
    }
}

#[test]
fn fill_order_2_and_many_strips_read_correctly() {
    let dir = temp();
    let pages = three_pages();
    let plain = write_plain(dir.path(), "plain.tif", &pages);
    for args in [
        &["-f", "lsb2msb", "-c", "g4"][..],
        &["-f", "lsb2msb", "-c", "g3:2d"],
        &["-r", "16", "-c", "g3:2d"],
        &["-r", "16", "-c", "g4"],
        &["-r", "7", "-f", "lsb2msb", "-c", "g3:1d"],
        &["-r", "16", "-f", "lsb2msb", "-c", "none"],
    ] {
        let out = dir.path().join("variant.tif");
        let mut all: Vec<&str> = args.to_vec();
        all.extend([s(&plain), s(&out)]);
        run("tiffcp", &all);
        let (info, _) = run("tiffinfo", &[s(&out)]);
        if args.contains(&"lsb2msb") {
            assert!(info.contains("FillOrder: lsb-to-msb"), "{info}");
        }
        // Through the general input path, which is what faxsend reads with.
        let sources = common::codec::input::read_input(&out).expect("reads");
        assert_eq!(sources.len(), 3, "{args:?}");
        for (i, (source, want)) in sources.iter().zip(&pages).enumerate() {
            let common::codec::input::SourceImage::Bilevel(got) = &source.image else {
                panic!("{args:?} page {}: not read as bilevel", i + 1);
            };
            assert!(
                got.data() == want.data(),
                "{args:?} page {}: pixels differ",
                i + 1
            );
        }
    }
}

#[test]
fn fax2tiff_files_made_from_our_raw_g3_decode_to_the_same_pixels() {
    let dir = temp();
    let page = text_page(1728, 500, Resolution::Fine, 9);
    for (two_d, flag) in [(false, "-1"), (true, "-2")] {
        let raw = dir.path().join("page.g3");
        let opts = G3Options {
            two_d,
            fill_bits: true,
            k: 4,
        };
        std::fs::write(&raw, encode_g3(&page, opts)).expect("write raw");
        for output in ["-7", "-8"] {
            let out = dir.path().join("fax2tiff.tif");
            run(
                "fax2tiff",
                &[
                    "-M",
                    flag,
                    "-A",
                    "-R",
                    "196",
                    "-X",
                    "1728",
                    output,
                    "-o",
                    s(&out),
                    s(&raw),
                ],
            );
            let got = our_bitmaps(&out);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].height(), page.height(), "{flag} {output}");
            assert!(
                got[0].data() == page.data(),
                "fax2tiff {flag} {output}: pixels differ"
            );
        }
    }
}

#[test]
fn a_document_written_page_by_page_survives_a_crash_and_resumes() {
    use common::codec::TiffFWriter;
    use std::io::Write;
    let dir = temp();
    let path = dir.path().join("incoming.tif");
    let pages: Vec<_> = three_pages()
        .iter()
        .map(|p| encode(p, Compression::G4).expect("encodes"))
        .collect();

    let mut writer =
        TiffFWriter::create(std::fs::File::create(&path).expect("create")).expect("header");
    writer.append_page(&pages[0]).expect("page 1");
    writer.append_page(&pages[1]).expect("page 2");
    // The "crash": no finish(), and half a strip of the next page on disk.
    drop(writer);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    file.write_all(&pages[2].data[..100])
        .expect("partial strip");
    drop(file);

    // Unfinished, the file is valid and its pages say "of unknown total".
    let (stdout, stderr) = run("tiffinfo", &["-D", s(&path)]);
    assert_eq!(stderr, "");
    assert!(stdout.contains("Page Number: 1-0"), "{stdout}");
    assert_eq!(read_pages(&path).expect("reads").len(), 2);

    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    let (mut writer, complete) = TiffFWriter::resume(file).expect("resumes");
    assert_eq!(complete, 2);
    writer.append_page(&pages[2]).expect("page 3");
    writer.finish().expect("finish");

    let (stdout, stderr) = run("tiffinfo", &["-D", s(&path)]);
    assert_eq!(stderr, "");
    assert!(stdout.contains("Page Number: 2-3"), "{stdout}");
    assert_eq!(read_pages(&path).expect("reads"), pages);
}

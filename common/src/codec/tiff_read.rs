//! Reading TIFF files page by page: fax pages (CCITT MH, MR, G4, RLE) through
//! `hayro-ccitt`, uncompressed 1-bit pages copied straight, everything else
//! (every layout libtiff and Pillow read) through [`super::tiff_samples`].
//!
//! The `image` crate reads only the first page of a TIFF and no CCITT data,
//! so TIFFs come here: the `tiff` crate walks the directories and hands us
//! tags and raw strips, and each CCITT strip is decoded on its own (libtiff
//! restarts the coder at every strip). FillOrder 2 strips are bit-reversed
//! first.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::GrayImage;
use tiff::TiffError;
use tiff::decoder::ifd::Value;
use tiff::decoder::{Decoder, Limits};
use tiff::tags::Tag;

use super::bitmap::Bitmap;
use super::decode::{StripCoding, decode_strip_with};
use super::error::{CodecError, MAX_PIXELS, MAX_SIDE};
use super::page::{Compression, EncodedPage};
use super::tiff_samples::{Pixels, read_pixels};

/// One page of a TIFF file.
pub(crate) enum TiffPage {
    /// A bilevel page (fax or uncompressed 1-bit).
    Bilevel {
        /// The pixels, with the file's resolution rounded to whole dpi.
        bitmap: Bitmap,
        /// The strip as stored, when it can go into a Class F file untouched:
        /// one strip, FillOrder 1, G4 or G3 with byte-aligned EOLs.
        raw: Option<(Compression, Vec<u8>)>,
    },
    /// Anything with grey levels or colour, as luminance.
    Gray {
        /// Luminance, 0 black, 255 white.
        image: GrayImage,
        /// Resolution across and down, in dpi, when the file gives it.
        dpi: Option<(f64, f64)>,
    },
}

/// Whether the bytes start like a TIFF file, classic or BigTIFF.
pub(crate) fn is_tiff(bytes: &[u8]) -> bool {
    [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|magic| bytes.starts_with(*magic))
}

/// Reads every page of a TIFF held in memory. `path` is for messages only.
pub(crate) fn read_tiff(path: &Path, bytes: &[u8]) -> Result<Vec<TiffPage>, CodecError> {
    tiff_pages(path, bytes)?
        .map(|page| page?.finish())
        .collect()
}

/// The pages of a TIFF held in memory, one at a time, each read as far as
/// it can be without decoding (see [`PendingPage`]). `path` is for
/// messages only.
pub(crate) fn tiff_pages<'a>(path: &'a Path, bytes: &'a [u8]) -> Result<TiffPages<'a>, CodecError> {
    // The tiff crate sizes buffers by what the entries claim, so their
    // counts are checked against the file first, and the decoded image may
    // not outgrow the largest page we read (MAX_PIXELS at 8 bytes a pixel,
    // 16-bit RGBA); more samples per pixel than that is refused.
    super::tiff_check::check_ifds(bytes).map_err(|reason| CodecError::NotAnImage {
        path: path.to_owned(),
        reason: format!("tiff: {reason}"),
    })?;
    // The header and the chain of directories are sound (checked above), so
    // what the decoder refuses here is the first page's directory.
    let decoder = Decoder::new(Cursor::new(bytes))
        .map_err(|e| directory_error(path, 1, e))?
        .with_limits(decoding_limits());
    Ok(TiffPages {
        path,
        decoder,
        read: 0,
        done: false,
    })
}

/// Iterator over the pages of a TIFF, see [`tiff_pages`]. It ends after the
/// first error.
pub(crate) struct TiffPages<'a> {
    path: &'a Path,
    decoder: Decoder<Cursor<&'a [u8]>>,
    /// Pages read so far.
    read: usize,
    done: bool,
}

impl Iterator for TiffPages<'_> {
    type Item = Result<PendingPage, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let number = self.read + 1;
        if number > 1 {
            if !self.decoder.more_images() {
                self.done = true;
                return None;
            }
            if let Err(e) = self.decoder.next_image() {
                self.done = true;
                return Some(Err(directory_error(self.path, number, e)));
            }
        }
        self.read = number;
        let page = read_page(self.path, number, &mut self.decoder);
        self.done = page.is_err();
        Some(
            page.map(|page| PendingPage {
                path: self.path.to_owned(),
                number,
                page,
            })
            .map_err(|e| page_error(self.path, number, e)),
        )
    }
}

/// A page read from its TIFF but, when it holds fax data, not decoded yet:
/// decoding is the costly part, and [`PendingPage::finish`] can run on any
/// thread.
pub(crate) struct PendingPage {
    path: PathBuf,
    number: usize,
    page: ReadPage,
}

impl PendingPage {
    /// Decodes the page if it still needs it.
    pub(crate) fn finish(self) -> Result<TiffPage, CodecError> {
        match self.page {
            ReadPage::Done(page) => Ok(page),
            ReadPage::Fax(strips) => strips
                .decode()
                .map_err(|e| page_error(&self.path, self.number, e)),
        }
    }
}

/// Reads and decodes every page of a TIFF file held in memory; returns each
/// page's size in pixels. `name` only labels errors. For tools and fuzzing.
pub fn decode_tiff_bytes(name: &Path, bytes: &[u8]) -> Result<Vec<(u32, u32)>, CodecError> {
    Ok(read_tiff(name, bytes)?
        .into_iter()
        .map(|page| match page {
            TiffPage::Bilevel { bitmap, .. } => (bitmap.width(), bitmap.height()),
            TiffPage::Gray { image, .. } => image.dimensions(),
        })
        .collect())
}

/// The tiff crate's limits: its image buffer no bigger than the largest page
/// we read at 8 bytes a pixel; value counts were checked by `tiff_check`.
pub(super) fn decoding_limits() -> Limits {
    let mut limits = Limits::unlimited();
    limits.decoding_buffer_size = usize::try_from(MAX_PIXELS * 8).unwrap_or(usize::MAX);
    limits.intermediate_buffer_size = limits.decoding_buffer_size;
    limits
}

fn bad_page(path: &Path, number: usize, reason: String) -> CodecError {
    CodecError::BadPage {
        path: path.to_owned(),
        page: number,
        reason,
    }
}

/// The `tiff` crate refused a page's directory: it checks the layout there
/// (sizes, strip counts, bits per sample, colour model) before any pixel.
pub(crate) fn directory_error(path: &Path, number: usize, e: TiffError) -> CodecError {
    bad_page(
        path,
        number,
        format!(
            "its directory cannot be read ({e}); the TIFF is damaged or uses a layout faxmesh cannot read"
        ),
    )
}

fn page_error(path: &Path, number: usize, e: PageError) -> CodecError {
    match e {
        PageError::Codec(e) => e,
        PageError::Tiff(e) => bad_page(
            path,
            number,
            format!("{e}; the TIFF is damaged or uses a layout faxmesh cannot read"),
        ),
        PageError::Other(reason) => bad_page(path, number, reason),
    }
}

/// Reads the pages of a fax file as encoded pages, keeping the stored strips
/// when they can be (see [`TiffPage::Bilevel`]) and re-encoding the others
/// with their own compression.
pub fn read_pages(path: &Path) -> Result<Vec<EncodedPage>, CodecError> {
    let bytes = std::fs::read(path).map_err(|error| CodecError::Read {
        path: path.to_owned(),
        error,
    })?;
    let bad = |reason: String| CodecError::BadFaxFile {
        path: path.to_owned(),
        reason,
    };
    if !is_tiff(&bytes) {
        return Err(bad("no TIFF header".into()));
    }
    let mut out = Vec::new();
    for (i, page) in read_tiff(path, &bytes)?.into_iter().enumerate() {
        let TiffPage::Bilevel { bitmap, raw } = page else {
            return Err(bad(format!("page {} is not bilevel", i + 1)));
        };
        let Some(resolution) = bitmap.fax_resolution() else {
            return Err(bad(format!(
                "page {} is {}x{} dpi, not a fax resolution",
                i + 1,
                bitmap.x_dpi(),
                bitmap.y_dpi()
            )));
        };
        match raw {
            Some((compression, data)) => out.push(EncodedPage {
                width: bitmap.width(),
                height: bitmap.height(),
                resolution,
                compression,
                data,
            }),
            None => out.push(super::encode::encode(&bitmap, Compression::G4)?),
        }
    }
    Ok(out)
}

/// Why a page could not be read; see [`page_error`] for the messages.
pub(super) enum PageError {
    Codec(CodecError),
    Tiff(TiffError),
    Other(String),
}

impl From<TiffError> for PageError {
    fn from(e: TiffError) -> Self {
        PageError::Tiff(e)
    }
}

impl From<std::io::Error> for PageError {
    fn from(e: std::io::Error) -> Self {
        PageError::Tiff(TiffError::IoError(e))
    }
}

/// A page as [`read_page`] leaves it.
enum ReadPage {
    Done(TiffPage),
    Fax(FaxStrips),
}

/// The strips of a fax page, read but not decoded.
struct FaxStrips {
    /// In FillOrder 1 (bit-reversed already when the file has FillOrder 2).
    strips: Vec<Vec<u8>>,
    coding: StripCoding,
    width: u32,
    height: u32,
    x_dpi: u32,
    y_dpi: u32,
    rows_per_strip: u32,
    /// Min-is-black: the pixels need inverting after decoding.
    invert: bool,
    /// The single strip can go into a Class F file as it is, with this
    /// compression (see [`TiffPage::Bilevel`]).
    keep_raw: Option<Compression>,
}

impl FaxStrips {
    fn decode(mut self) -> Result<TiffPage, PageError> {
        let (width, height) = (self.width, self.height);
        let mut bitmap = Bitmap::new(width, height, self.x_dpi, self.y_dpi);
        let mut row = 0;
        for strip in &self.strips {
            if row >= height {
                break;
            }
            let rows = self.rows_per_strip.min(height - row);
            let got = decode_strip_with(strip, self.coding, width, rows, &mut bitmap, row)
                .map_err(|e| PageError::Other(format!("damaged fax data ({e})")))?;
            if got < rows {
                return Err(PageError::Other(format!(
                    "damaged fax data: a strip ends after {got} of {rows} rows"
                )));
            }
            row += rows;
        }
        if row < height {
            return Err(PageError::Other(format!(
                "the strips hold {row} rows but the page has {height}"
            )));
        }
        if self.invert {
            invert(&mut bitmap);
        }
        let raw = self.keep_raw.map(|c| (c, self.strips.swap_remove(0)));
        Ok(TiffPage::Bilevel { bitmap, raw })
    }
}

fn read_page(
    path: &Path,
    number: usize,
    decoder: &mut Decoder<Cursor<&[u8]>>,
) -> Result<ReadPage, PageError> {
    let (width, height) = decoder.dimensions()?;
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(PageError::Codec(CodecError::TooLarge {
            path: path.to_owned(),
            page: number,
            width,
            height,
        }));
    }
    let compression: u16 = decoder.find_tag_unsigned(Tag::Compression)?.unwrap_or(1);
    let fill_order: u16 = decoder.find_tag_unsigned(Tag::FillOrder)?.unwrap_or(1);
    let photometric: u16 = decoder
        .find_tag_unsigned(Tag::PhotometricInterpretation)?
        .unwrap_or(0);
    let dpi = resolution(decoder)?;
    let (x_dpi, y_dpi) = dpi.map_or((0, 0), |(x, y)| (x.round() as u32, y.round() as u32));

    if matches!(compression, 2..=4) {
        let t4: u32 = decoder.find_tag_unsigned(Tag::Unknown(292))?.unwrap_or(0);
        let coding = match compression {
            2 => StripCoding::Rle,
            3 if t4 & 2 != 0 => {
                return Err(PageError::Other(
                    "uses Group 3 uncompressed mode, which faxmesh cannot read; \
                     convert it with `tiffcp -c g4`"
                        .into(),
                ));
            }
            3 if t4 & 1 != 0 => StripCoding::Fax(Compression::Mr),
            3 => StripCoding::Fax(Compression::Mh),
            _ => StripCoding::Fax(Compression::G4),
        };
        let offsets = decoder.get_tag_u64_vec(Tag::StripOffsets)?;
        let counts = decoder.get_tag_u64_vec(Tag::StripByteCounts)?;
        if offsets.len() != counts.len() || offsets.is_empty() {
            return Err(PageError::Other(
                "StripOffsets and StripByteCounts disagree".into(),
            ));
        }
        let rows_per_strip: u32 = decoder
            .find_tag_unsigned(Tag::RowsPerStrip)?
            .unwrap_or(height)
            .clamp(1, height);
        // Offsets and counts are untrusted: each strip must lie inside the
        // file before anything is allocated for it, so a lying count costs
        // an error, not memory (the file is already in memory: its length
        // bounds every strip, and the strip count bounds the Vec).
        let bytes: &[u8] = decoder.inner().get_ref();
        let mut strips = Vec::with_capacity(offsets.len().min(bytes.len()));
        for (i, (&offset, &count)) in offsets.iter().zip(&counts).enumerate() {
            let mut strip = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(count).ok())
                .and_then(|(at, len)| bytes.get(at..at.checked_add(len)?))
                .ok_or_else(|| {
                    PageError::Other(format!(
                        "strip {} ({count} bytes at offset {offset}) lies past the end of the file ({} bytes)",
                        i + 1,
                        bytes.len()
                    ))
                })?
                .to_vec();
            if fill_order == 2 {
                for byte in &mut strip {
                    *byte = byte.reverse_bits();
                }
            }
            strips.push(strip);
        }
        let keep_raw = match coding {
            StripCoding::Fax(c) if strips.len() == 1 && fill_order == 1 && photometric == 0 => {
                (c == Compression::G4 || t4 & 4 != 0).then_some(c)
            }
            _ => None,
        };
        return Ok(ReadPage::Fax(FaxStrips {
            strips,
            coding,
            width,
            height,
            x_dpi,
            y_dpi,
            rows_per_strip,
            invert: photometric == 1,
            keep_raw,
        }));
    }

    if compression == 1
        && matches!(photometric, 0 | 1)
        && let Some(mut packed) = read_bilevel_strips(decoder, width, height)?
    {
        // Min-is-white (photometric 0) with FillOrder 1 is our own layout,
        // so the common case is the strip copy alone.
        match (fill_order == 2, photometric == 1) {
            (false, false) => {}
            (true, false) => packed.iter_mut().for_each(|b| *b = b.reverse_bits()),
            (false, true) => packed.iter_mut().for_each(|b| *b = !*b),
            (true, true) => packed.iter_mut().for_each(|b| *b = !b.reverse_bits()),
        }
        let bitmap = Bitmap::from_packed(width, height, x_dpi, y_dpi, packed)
            .ok_or_else(|| PageError::Other("1-bit image data has the wrong size".into()))?;
        return Ok(ReadPage::Done(TiffPage::Bilevel { bitmap, raw: None }));
    }

    // Everything else: any depth, palette, colour model, planes, tiles and
    // compression libtiff and Pillow read (see `tiff_samples`).
    Ok(ReadPage::Done(
        match read_pixels(decoder, width, height, (x_dpi, y_dpi))? {
            Pixels::Gray(image) => TiffPage::Gray { image, dpi },
            Pixels::Bilevel(bitmap) => TiffPage::Bilevel { bitmap, raw: None },
        },
    ))
}

/// The packed rows of an uncompressed 1-bit, one-sample page stored in
/// strips, copied straight from the file: no decoder, no conversion. `None`
/// when the page is laid out otherwise (tiles, more bits or samples), for
/// the `tiff` crate's general path.
fn read_bilevel_strips(
    decoder: &mut Decoder<Cursor<&[u8]>>,
    width: u32,
    height: u32,
) -> Result<Option<Vec<u8>>, PageError> {
    let samples: u16 = decoder
        .find_tag_unsigned(Tag::SamplesPerPixel)?
        .unwrap_or(1);
    // One value per sample: read as a list (a lone value is a list of one).
    let bits: Vec<u16> = decoder
        .find_tag_unsigned_vec(Tag::BitsPerSample)?
        .unwrap_or_else(|| vec![1]);
    if bits != [1]
        || samples != 1
        || width == 0
        || height == 0
        || decoder.find_tag(Tag::StripOffsets)?.is_none()
    {
        return Ok(None);
    }
    let offsets = decoder.get_tag_u64_vec(Tag::StripOffsets)?;
    let counts = decoder.get_tag_u64_vec(Tag::StripByteCounts)?;
    let rows_per_strip: u32 = decoder
        .find_tag_unsigned(Tag::RowsPerStrip)?
        .unwrap_or(height)
        .clamp(1, height.max(1));
    let stride = width.div_ceil(8) as usize;
    let strips = height.div_ceil(rows_per_strip) as usize;
    if offsets.len() < strips || counts.len() < strips {
        return Err(PageError::Other(format!(
            "{} strips listed, {strips} needed for {height} rows",
            offsets.len().min(counts.len())
        )));
    }
    let mut packed = vec![0u8; stride * height as usize];
    let bytes: &[u8] = decoder.inner().get_ref();
    for (i, chunk) in packed
        .chunks_mut(stride * rows_per_strip as usize)
        .enumerate()
    {
        let strip = usize::try_from(offsets[i])
            .ok()
            .and_then(|at| bytes.get(at..)?.get(..chunk.len()))
            .filter(|_| counts[i] >= chunk.len() as u64)
            .ok_or_else(|| {
                PageError::Other(format!(
                    "strip {} is shorter than its {} rows or past the end of the file",
                    i + 1,
                    chunk.len() / stride.max(1)
                ))
            })?;
        chunk.copy_from_slice(strip);
    }
    Ok(Some(packed))
}

/// Resolution across and down in dpi, when both tags are there.
fn resolution(decoder: &mut Decoder<Cursor<&[u8]>>) -> Result<Option<(f64, f64)>, TiffError> {
    let x = decoder.find_tag(Tag::XResolution)?.and_then(as_f64);
    let y = decoder.find_tag(Tag::YResolution)?.and_then(as_f64);
    let unit: u16 = decoder.find_tag_unsigned(Tag::ResolutionUnit)?.unwrap_or(2);
    let scale = if unit == 3 { 2.54 } else { 1.0 };
    Ok(match (x, y) {
        // Unit 1 ("no absolute unit") still gives the aspect ratio; treat it
        // as dpi, which is what fax software that writes it means.
        (Some(x), Some(y)) if x > 0.0 && y > 0.0 => Some((x * scale, y * scale)),
        _ => None,
    })
}

pub(super) fn as_f64(value: Value) -> Option<f64> {
    match value {
        Value::Rational(n, d) if d != 0 => Some(f64::from(n) / f64::from(d)),
        Value::Short(v) => Some(f64::from(v)),
        Value::Unsigned(v) => Some(f64::from(v)),
        Value::Float(v) => Some(f64::from(v)),
        Value::Double(v) => Some(v),
        _ => None,
    }
}

fn invert(bitmap: &mut Bitmap) {
    let width = bitmap.width();
    let spare = (bitmap.stride() * 8) as u32 - width;
    for y in 0..bitmap.height() {
        let row = bitmap.row_mut(y);
        for byte in row.iter_mut() {
            *byte = !*byte;
        }
        if let Some(last) = row.last_mut() {
            *last &= 0xffu8 << spare;
        }
    }
}

/// A grey level with coverage `alpha`, laid over white paper.
pub(crate) fn over_white(gray: u8, alpha: u8) -> u8 {
    let (g, a) = (u32::from(gray), u32::from(alpha));
    ((g * a + 255 * (255 - a) + 127) / 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tiff_write::TiffFWriter;

    /// An odd-width page with a pattern that tells bit order and colour apart.
    fn sample() -> Bitmap {
        let mut page = Bitmap::new(101, 9, 204, 196);
        for y in 0..9 {
            for x in 0..101 {
                page.set(x, y, (x * 3 + y) % 7 < 2 || x == 100);
            }
        }
        page
    }

    fn uncompressed_tiff(page: &Bitmap) -> Vec<u8> {
        let mut writer = TiffFWriter::new(Cursor::new(Vec::new())).expect("writer");
        writer.append_uncompressed(page).expect("page");
        writer.finish().expect("finish").into_inner()
    }

    fn read_one(bytes: &[u8]) -> Bitmap {
        let mut pages = read_tiff(Path::new("t.tif"), bytes).expect("reads");
        assert_eq!(pages.len(), 1);
        match pages.remove(0) {
            TiffPage::Bilevel { bitmap, raw: None } => bitmap,
            _ => panic!("not read as an uncompressed bilevel page"),
        }
    }

    #[test]
    fn uncompressed_min_is_white_is_copied_as_is() {
        let page = sample();
        let got = read_one(&uncompressed_tiff(&page));
        assert!(got == page);
    }

    #[test]
    fn uncompressed_min_is_black_is_inverted() {
        let page = sample();
        let mut bytes = uncompressed_tiff(&page);
        // The strip is right after the header; invert it (padding bits too,
        // which the reader must clear) and mark the page min-is-black.
        for b in &mut bytes[8..8 + page.data().len()] {
            *b = !*b;
        }
        let ifd = 8 + page.data().len().next_multiple_of(2);
        let entries = usize::from(u16::from_le_bytes([bytes[ifd], bytes[ifd + 1]]));
        let photometric = (0..entries)
            .map(|i| ifd + 2 + 12 * i)
            .find(|&at| u16::from_le_bytes([bytes[at], bytes[at + 1]]) == 262)
            .expect("a PhotometricInterpretation entry");
        bytes[photometric + 8] = 1;
        let got = read_one(&bytes);
        assert!(got == page);
    }

    /// A one-page G4 file whose IFD entry `tag` holds `value` instead.
    fn g4_tiff_with(tag: u16, value: u32) -> Vec<u8> {
        let mut page = Bitmap::new_fax(1728, 40, crate::codec::Resolution::Fine);
        page.set(5, 5, true);
        let encoded = crate::codec::encode::encode(&page, Compression::G4).expect("encodes");
        let mut bytes = crate::codec::tiff_write::document_bytes(&[encoded]).expect("writes");
        let ifd = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let entries = usize::from(u16::from_le_bytes([bytes[ifd], bytes[ifd + 1]]));
        let at = (0..entries)
            .map(|i| ifd + 2 + 12 * i)
            .find(|&at| u16::from_le_bytes([bytes[at], bytes[at + 1]]) == tag)
            .expect("the entry");
        bytes[at + 8..at + 12].copy_from_slice(&value.to_le_bytes());
        bytes
    }

    #[test]
    fn lying_strip_counts_and_offsets_fail_without_allocating() {
        // Regression: a StripByteCounts of ~1 GiB used to allocate 1 GiB
        // before the read failed.
        for (tag, value) in [(279, 0x3fff_ffff), (279, u32::MAX), (273, u32::MAX - 3)] {
            let bytes = g4_tiff_with(tag, value);
            let err = read_tiff(Path::new("lie.tif"), &bytes)
                .err()
                .expect("a lying strip is an error");
            let text = err.to_string();
            assert!(text.contains("past the end of the file"), "{text}");
            assert!(text.contains("lie.tif"), "{text}");
        }
    }

    #[test]
    fn fuzz_found_tag_count_of_billions_is_refused_before_allocating() {
        // Found by `cargo fuzz run tiff`: an XResolution entry claiming
        // billions of values made the tiff crate allocate 39 GB and abort.
        let bytes = include_bytes!("../../tests/fuzz-regressions/tiff-resolution-count-39gb.tif");
        let err = read_tiff(Path::new("fuzzed.tif"), bytes)
            .err()
            .expect("an error, not an abort");
        assert!(
            err.to_string().contains("values, more than the file"),
            "{err}"
        );
    }

    #[test]
    fn fuzz_found_image_buffer_of_48_gb_is_refused_before_allocating() {
        // Found by `cargo fuzz run tiff`: a page within MAX_PIXELS but with
        // absurd samples per pixel made read_image allocate 48 GB and abort.
        let bytes = include_bytes!("../../tests/fuzz-regressions/tiff-image-buffer-48gb.tif");
        assert!(read_tiff(Path::new("fuzzed.tif"), bytes).is_err());
    }
}

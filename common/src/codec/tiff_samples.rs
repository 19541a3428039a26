//! The pixels of a TIFF page that is not fax data, in every layout libtiff
//! and Pillow read: grey of 1, 2, 4, 8, 12 or 16 bits (min-is-white or
//! min-is-black), palettes of 1 to 8 bits, RGB, CMYK and YCbCr of 8 or 16
//! bits with or without alpha, grey and RGB of 32- or 64-bit floating point,
//! chunky or planar, in strips or tiles, uncompressed, LZW, Deflate,
//! PackBits or JPEG, with or without Predictor 2 (or 3, for floats), either
//! FillOrder.
//!
//! The `tiff` crate (0.11) decodes part of that itself: 8- and 16-bit grey,
//! RGB(A) and CMYK, floating-point grey and RGB, chunky or planar, strips or
//! tiles, every compression above, JPEG with YCbCr included, Predictors 2
//! and 3, and 1/2/4-bit grey without alpha. Those go through it
//! ([`Path::Crate`]). It refuses palettes
//! (`colortype()` fails on them), 12-bit samples (`expand_chunk` takes only
//! 8/16/32/64 bits and, below 8, grey), YCbCr not stored as JPEG
//! ("chroma subsampling" unsupported), min-is-white with alpha (its
//! `invert_colors` refuses more than one sample), and it ignores FillOrder.
//! Those pages we read from their stored strips or tiles ourselves
//! ([`Path::Own`]): the crate's codecs still decompress each chunk (see
//! [`decompress`]), and the unpacking of samples of any depth, the
//! predictor, the planes and the YCbCr data units are done here.
//!
//! Either way a page is decoded one chunk (a strip or tile, with all its
//! planes) at a time and turned into luminance at once (see
//! [`super::color`]), so no page-sized array of samples is ever held.
//! Every chunk's offset and length is checked against the file, and every
//! chunk's decoded size against [`MAX_CHUNK_BYTES`], before anything is
//! allocated for it.

use std::io::Cursor;

use image::GrayImage;
use tiff::decoder::ifd::Value;
use tiff::decoder::{Decoder, DecodingResult, TiffCodingUnit};
use tiff::tags::Tag;

use super::bitmap::Bitmap;
use super::color::{
    YCbCr, cmyk_to_rgb, jpeg_ycbcr_to_rgb, luma, premultiplied_over_white, to_8bit,
};
use super::error::MAX_PIXELS;
use super::tiff_read::{PageError, as_f64, decoding_limits, over_white};

type TiffDecoder<'a> = Decoder<Cursor<&'a [u8]>>;

/// Samples per pixel we read at most: colour, alpha and a few channels we
/// skip (Pillow reads at most six).
const MAX_SAMPLES: u16 = 8;

/// Largest chunk, all planes, decoded at once, in bytes: the largest page
/// (MAX_PIXELS) at 8 bytes a pixel (16-bit RGBA), the bound the `tiff`
/// crate's buffers had before.
const MAX_CHUNK_BYTES: u64 = 8 * MAX_PIXELS;

/// The pixels of a page.
pub(super) enum Pixels {
    /// Luminance, 0 black, 255 white.
    Gray(GrayImage),
    /// A one-sample 1-bit grey page, which needs no grey levels.
    Bilevel(Bitmap),
}

/// Reads the current page of `decoder`, whose size is checked against the
/// limits already.
pub(super) fn read_pixels(
    decoder: &mut TiffDecoder,
    width: u32,
    height: u32,
    dpi: (u32, u32),
) -> Result<Pixels, PageError> {
    read_pixels_by(decoder, width, height, dpi, Layout::path)
}

/// [`read_pixels`] with the choice of decoder made by `choose` (the tests
/// make both read the same pages).
fn read_pixels_by<'a>(
    decoder: &mut TiffDecoder<'a>,
    width: u32,
    height: u32,
    dpi: (u32, u32),
    choose: fn(&Layout) -> Path,
) -> Result<Pixels, PageError> {
    let layout = Layout::read(decoder, width, height)?;
    let path = choose(&layout);
    if layout.float && path == Path::Own {
        return Err(PageError::Other(
            "it holds floating-point samples in a layout only our own reader reads (FillOrder 2, \
             or separate planes of tiles), which reads integers only; convert it with \
             `tiffcp -p contig`"
                .into(),
        ));
    }
    let delivered = match path {
        // The crate hands over the samples of its colour type, which drops
        // extra samples that are not alpha.
        Path::Crate => decoder.colortype()?.num_samples(),
        Path::Own => layout.samples,
    };
    let convert = Convert::new(decoder, &layout, path, delivered)?;
    if usize::from(delivered) < convert.samples_needed() {
        return Err(PageError::Other(format!(
            "its {} pixels come with {delivered} samples, fewer than they need; the TIFF is damaged",
            model_name(layout.photometric)
        )));
    }
    let grey = matches!(layout.photometric, MIN_IS_WHITE | MIN_IS_BLACK);
    let mut sink = if layout.bits == 1 && layout.samples == 1 && grey {
        // 1-bit grey stays bilevel: a threshold could only lose detail.
        // The crate inverts min-is-white itself.
        let zero_is_black = layout.photometric == MIN_IS_BLACK || path == Path::Crate;
        Sink::Bits {
            bitmap: Bitmap::new(width, height, dpi.0, dpi.1),
            black: u16::from(!zero_is_black),
        }
    } else {
        Sink::Gray(vec![255; width as usize * height as usize])
    };
    // The file's bytes, not borrowed from the decoder (the cursor holds them
    // for 'a).
    let bytes: &'a [u8] = decoder.inner().get_ref();
    let mut samples = Vec::new();
    let mut plane = Vec::new();
    for unit in 0..layout.units_per_plane() {
        let rect = layout.unit_rect(unit);
        if layout.subsampled() {
            let data = layout.own_chunk(bytes, unit, &rect)?;
            layout.ycbcr_units(&data, &rect, &convert, &mut sink)?;
            continue;
        }
        let decoded = match path {
            Path::Crate => layout.crate_unit(decoder, unit, &rect)?,
            Path::Own => layout.own_unit(bytes, unit, &rect)?,
        };
        let stride = usize::from(delivered);
        samples.resize(rect.w as usize * stride, 0);
        for y in 0..rect.h {
            decoded.row(y, &rect, stride, &mut samples, &mut plane);
            for (x, px) in samples.chunks_exact(stride).enumerate() {
                let (x, y) = (rect.x + x as u32, rect.y + y);
                match &mut sink {
                    Sink::Gray(out) => {
                        out[y as usize * width as usize + x as usize] =
                            convert.level(px).ok_or_else(|| convert.bad_index(px))?;
                    }
                    Sink::Bits { bitmap, black } => bitmap.set(x, y, px[0] == *black),
                }
            }
        }
    }
    Ok(match sink {
        Sink::Gray(levels) => {
            Pixels::Gray(GrayImage::from_raw(width, height, levels).ok_or_else(|| {
                PageError::Other("the page's pixel buffer has the wrong size".into())
            })?)
        }
        Sink::Bits { bitmap, .. } => Pixels::Bilevel(bitmap),
    })
}

/// Where the decoded pixels go.
enum Sink {
    Gray(Vec<u8>),
    Bits {
        bitmap: Bitmap,
        /// The sample value that is black.
        black: u16,
    },
}

/// Which decoder reads a page, see the module comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Crate,
    Own,
}

// TIFF codes.
const NONE: u16 = 1;
const LZW: u16 = 5;
const JPEG: u16 = 7;
const DEFLATE: u16 = 8;
const PACKBITS: u16 = 32773;
const OLD_DEFLATE: u16 = 32946;

const MIN_IS_WHITE: u16 = 0;
const MIN_IS_BLACK: u16 = 1;
const RGB: u16 = 2;
const PALETTE: u16 = 3;
const CMYK: u16 = 5;
const YCBCR: u16 = 6;

/// What the tags of a page say about its samples and where they are.
struct Layout {
    width: u32,
    height: u32,
    /// Bits per sample, the same for every sample.
    bits: u8,
    /// IEEE floating-point samples (SampleFormat 3), 0.0 black to 1.0 white.
    float: bool,
    /// Samples per pixel, extra samples included.
    samples: u16,
    photometric: u16,
    compression: u16,
    /// 1 none, 2 horizontal differencing.
    predictor: u16,
    /// Each sample in its own plane of chunks (PlanarConfiguration 2).
    planar: bool,
    /// FillOrder 2: the stored bytes are bit-reversed.
    reversed: bool,
    little_endian: bool,
    /// The first extra sample when it is alpha: its index and whether the
    /// colour is premultiplied by it (associated).
    alpha: Option<(usize, bool)>,
    /// YCbCr chroma subsampling across and down, (1, 1) for other pages.
    subsampling: (u32, u32),
    /// Chunk width and height: the tile, or the page's width and the rows
    /// per strip.
    chunk: (u32, u32),
    tiled: bool,
    offsets: Vec<u64>,
    counts: Vec<u64>,
}

/// The pixels of the page one chunk (one per plane) covers, clipped to
/// the page.
struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    /// Rows stored in the chunk: a whole tile, or a strip's rows.
    stored_rows: u32,
}

impl Layout {
    fn read(decoder: &mut TiffDecoder, width: u32, height: u32) -> Result<Layout, PageError> {
        let photometric: u16 = decoder
            .find_tag_unsigned(Tag::PhotometricInterpretation)?
            .unwrap_or(MIN_IS_WHITE);
        let compression: u16 = decoder.find_tag_unsigned(Tag::Compression)?.unwrap_or(NONE);
        let samples: u16 = decoder
            .find_tag_unsigned(Tag::SamplesPerPixel)?
            .unwrap_or(1);
        let bits_list: Vec<u16> = decoder
            .find_tag_unsigned_vec(Tag::BitsPerSample)?
            .unwrap_or_else(|| vec![1]);
        let formats: Vec<u16> = decoder
            .find_tag_unsigned_vec(Tag::SampleFormat)?
            .unwrap_or_default();
        let extra: Vec<u16> = decoder
            .find_tag_unsigned_vec(Tag::ExtraSamples)?
            .unwrap_or_default();
        let predictor: u16 = decoder.find_tag_unsigned(Tag::Predictor)?.unwrap_or(1);
        let planar = decoder
            .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)?
            .unwrap_or(1)
            == 2;
        let fill_order: u16 = decoder.find_tag_unsigned(Tag::FillOrder)?.unwrap_or(1);
        let subsampling: Vec<u16> = decoder
            .find_tag_unsigned_vec(Tag::ChromaSubsampling)?
            .unwrap_or_else(|| vec![2, 2]);

        let other = |reason: String| Err(PageError::Other(reason));
        if samples == 0 || samples > MAX_SAMPLES {
            return other(format!(
                "it has {samples} samples per pixel; faxmesh reads 1 to {MAX_SAMPLES} \
                 (save the page as grey, RGB or CMYK)"
            ));
        }
        let bits = match bits_list.as_slice() {
            [first, rest @ ..] if rest.iter().all(|b| b == first) => *first,
            _ => {
                return other(format!(
                    "its samples differ in depth ({bits_list:?} bits); save the page as \
                     8-bit grey or RGB"
                ));
            }
        };
        let float = formats.first() == Some(&3) && formats.iter().all(|&f| f == 3);
        if let Some(format) = formats.iter().find(|&&f| f != 1 && !float) {
            let what = match format {
                2 => "signed integer",
                3 => "mixed integer and floating-point",
                _ => "untyped",
            };
            return other(format!(
                "its samples are {what} numbers (SampleFormat {format}); faxmesh reads \
                 unsigned integer and floating-point samples (save the page as 8-bit grey \
                 or RGB)"
            ));
        }
        if float
            && !(matches!(bits, 32 | 64)
                && matches!(photometric, MIN_IS_WHITE | MIN_IS_BLACK | RGB))
        {
            return other(format!(
                "its samples are {bits}-bit floating-point {} numbers; faxmesh reads 32- and \
                 64-bit floating-point grey and RGB (save the page as 8-bit grey or RGB)",
                model_name(photometric)
            ));
        }
        if !float && !matches!(bits, 1 | 2 | 4 | 8 | 12 | 16) {
            return other(format!(
                "its samples are {bits} bits deep; faxmesh reads 1, 2, 4, 8, 12 and 16 bits \
                 (save the page as 8-bit grey or RGB)"
            ));
        }
        // 64 at most now, so `as u8` keeps the value.
        let bits = bits as u8;
        let colour_samples = match photometric {
            MIN_IS_WHITE | MIN_IS_BLACK | PALETTE => 1,
            RGB | YCBCR => 3,
            CMYK => 4,
            other_model => {
                return other(format!(
                    "it uses the {} colour model, which faxmesh does not read; save the page \
                     as grey, RGB or CMYK",
                    model_name(other_model)
                ));
            }
        };
        if samples < colour_samples {
            return other(format!(
                "{} pixels need {colour_samples} samples but it has {samples}; the TIFF is damaged",
                model_name(photometric)
            ));
        }
        if photometric == PALETTE && bits > 8 {
            return other(format!(
                "its palette has {bits}-bit indexes; faxmesh reads palettes of up to 8 bits \
                 (save the page as RGB)"
            ));
        }
        if photometric == YCBCR && bits != 8 {
            return other(format!(
                "its YCbCr samples are {bits} bits deep; faxmesh reads 8-bit YCbCr \
                 (save the page as RGB)"
            ));
        }
        match compression {
            NONE | LZW | DEFLATE | PACKBITS | OLD_DEFLATE => {}
            JPEG if bits == 8 && photometric != PALETTE => {}
            JPEG => {
                return other(format!(
                    "it holds JPEG data in {bits}-bit {} samples, which faxmesh cannot \
                     decode; convert it with `tiffcp -c lzw`",
                    model_name(photometric)
                ));
            }
            _ => {
                return other(format!(
                    "it is compressed with {}, which faxmesh cannot decode; convert it with \
                     `tiffcp -c lzw`",
                    compression_name(compression)
                ));
            }
        }
        match predictor {
            1 => {}
            2 if matches!(bits, 8 | 16) || float => {}
            // The floating-point predictor, which the tiff crate undoes.
            3 if float => {}
            2 => {
                return other(format!(
                    "it uses Predictor 2 on {bits}-bit samples, which TIFF readers do not \
                     support; convert it with `tiffcp -c lzw`"
                ));
            }
            _ => {
                // 3 on integer samples, or a predictor nobody defined.
                return other(format!(
                    "it uses Predictor {predictor} on {}-bit samples, which TIFF readers do \
                     not support; save the page again as 8-bit grey or RGB",
                    bits
                ));
            }
        }
        let alpha = match (extra.first(), photometric) {
            (Some(&kind @ (1 | 2)), _) => Some((usize::from(colour_samples), kind == 1)),
            // RGB or CMYK with one sample more and no ExtraSamples: Pillow
            // and the tiff crate both take it for (unassociated) alpha.
            (None, RGB | CMYK) if samples == colour_samples + 1 => {
                Some((usize::from(colour_samples), false))
            }
            _ => None,
        };
        let subsampling = match (photometric, compression, subsampling.as_slice()) {
            // JPEG data carries its own subsampling.
            (YCBCR, JPEG, _) => (1, 1),
            (YCBCR, _, &[h, v]) if matches!(h, 1 | 2 | 4) && matches!(v, 1 | 2 | 4) => {
                (u32::from(h), u32::from(v))
            }
            (YCBCR, _, _) => {
                return other(format!(
                    "its YCbCr subsampling {subsampling:?} is not one of 1, 2 or 4 across and \
                     down; the TIFF is damaged"
                ));
            }
            _ => (1, 1),
        };
        if planar && subsampling != (1, 1) {
            return other(
                "it stores subsampled YCbCr in separate planes, which faxmesh cannot read; \
                 convert it with `tiffcp -c jpeg` or save it as RGB"
                    .into(),
            );
        }
        if subsampling != (1, 1) && samples != 3 {
            return other(
                "it stores extra samples beside subsampled YCbCr, which TIFF readers do not \
                 support; save it as RGB"
                    .into(),
            );
        }
        if subsampling != (1, 1) && predictor != 1 {
            return other(
                "it uses a predictor on subsampled YCbCr, which TIFF readers do not support; \
                 save it as RGB"
                    .into(),
            );
        }

        let tiled = decoder.find_tag(Tag::TileOffsets)?.is_some();
        let (chunk, offsets, counts) = if tiled {
            let tile_width: u32 = decoder.find_tag_unsigned(Tag::TileWidth)?.unwrap_or(0);
            let tile_length: u32 = decoder.find_tag_unsigned(Tag::TileLength)?.unwrap_or(0);
            if tile_width == 0 || tile_length == 0 {
                return other(format!(
                    "its tiles are {tile_width}x{tile_length} pixels; the TIFF is damaged"
                ));
            }
            (
                (tile_width, tile_length),
                decoder.get_tag_u64_vec(Tag::TileOffsets)?,
                decoder.get_tag_u64_vec(Tag::TileByteCounts)?,
            )
        } else {
            let rows: u32 = decoder
                .find_tag_unsigned(Tag::RowsPerStrip)?
                .unwrap_or(u32::MAX);
            if rows == 0 {
                return other("its RowsPerStrip is 0; the TIFF is damaged".into());
            }
            (
                (width, rows.min(height)),
                decoder.get_tag_u64_vec(Tag::StripOffsets)?,
                decoder.get_tag_u64_vec(Tag::StripByteCounts)?,
            )
        };
        if compression == JPEG && planar && tiled && !height.is_multiple_of(chunk.1) {
            return Err(PageError::Other(
                "it stores JPEG tiles in separate planes with a partial last row of tiles, which \
                 faxmesh cannot read; convert it with `tiffcp -p contig`"
                    .into(),
            ));
        }
        let layout = Layout {
            width,
            height,
            bits,
            float,
            samples,
            photometric,
            compression,
            predictor,
            planar,
            // libtiff ignores FillOrder for JPEG data, which says its own.
            reversed: fill_order == 2 && compression != JPEG,
            little_endian: decoder.byte_order() == tiff::tags::ByteOrder::LittleEndian,
            alpha,
            subsampling,
            chunk,
            tiled,
            offsets,
            counts,
        };
        layout.check_chunks(decoder.inner().get_ref().len())?;
        Ok(layout)
    }

    /// Checks the chunk geometry and that every chunk lies inside the file,
    /// before any is read.
    fn check_chunks(&self, file_len: usize) -> Result<(), PageError> {
        let (cw, ch) = self.chunk;
        let per_plane = u64::from(self.units_across()) * u64::from(self.height.div_ceil(ch));
        let needed = per_plane * u64::from(self.planes());
        let listed = self.offsets.len().min(self.counts.len()) as u64;
        if listed < needed {
            return Err(PageError::Other(format!(
                "it lists {listed} {}s but its size needs {needed}; the TIFF is damaged",
                self.chunk_kind()
            )));
        }
        let unit_bytes = self
            .stored_row_bytes(cw)
            .saturating_mul(u64::from(ch))
            .saturating_mul(u64::from(self.planes()));
        if unit_bytes > MAX_CHUNK_BYTES {
            return Err(PageError::Other(format!(
                "its {}s of {cw}x{ch} pixels are too large to decode ({unit_bytes} bytes each); \
                 convert it with `tiffcp -r 64` or `tiffcp -t`",
                self.chunk_kind()
            )));
        }
        for index in 0..needed as usize {
            let (offset, count) = (self.offsets[index], self.counts[index]);
            if offset
                .checked_add(count)
                .is_none_or(|end| end > file_len as u64)
            {
                return Err(PageError::Other(format!(
                    "{} {} ({count} bytes at offset {offset}) lies past the end of the file \
                     ({file_len} bytes); the TIFF is truncated or damaged",
                    self.chunk_kind(),
                    index + 1
                )));
            }
        }
        Ok(())
    }

    /// Which decoder reads the page, see the module comment.
    fn path(&self) -> Path {
        let crate_depth = match self.photometric {
            MIN_IS_WHITE | MIN_IS_BLACK if self.float => {
                self.photometric == MIN_IS_BLACK || self.samples == 1
            }
            MIN_IS_WHITE | MIN_IS_BLACK => match self.bits {
                // Below 8 bits only one grey sample, and tiles whose rows
                // end on a byte.
                1 | 2 | 4 => {
                    self.samples == 1
                        && (!self.tiled
                            || (u64::from(self.chunk.0) * u64::from(self.bits)).is_multiple_of(8))
                }
                8 | 16 => self.photometric == MIN_IS_BLACK || self.samples == 1,
                _ => false,
            },
            RGB | CMYK => matches!(self.bits, 8 | 16) || self.float,
            YCBCR => self.compression == JPEG,
            _ => false,
        };
        if crate_depth && !self.reversed && !self.crate_misreads_planes()
            || self.compression == JPEG
        {
            Path::Crate
        } else {
            Path::Own
        }
    }

    /// The crate sizes a tile from its index without taking the plane off,
    /// so in every plane after the first the bottom row of tiles, when the
    /// page ends inside it, looks whole, and an assert in its
    /// `expand_chunk` fires (a panic, not an error). Such pages are ours.
    fn crate_misreads_planes(&self) -> bool {
        self.planar && self.tiled && !self.height.is_multiple_of(self.chunk.1)
    }

    /// Bits of the samples as they reach [`Convert`]: floats come as 16.
    fn sample_bits(&self) -> u8 {
        if self.float { 16 } else { self.bits }
    }

    fn planes(&self) -> u16 {
        if self.planar { self.samples } else { 1 }
    }

    /// Samples in each plane's chunks per pixel.
    fn samples_per_plane(&self) -> u16 {
        if self.planar { 1 } else { self.samples }
    }

    fn units_across(&self) -> u32 {
        self.width.div_ceil(self.chunk.0)
    }

    fn units_per_plane(&self) -> u32 {
        self.units_across() * self.height.div_ceil(self.chunk.1)
    }

    fn subsampled(&self) -> bool {
        self.subsampling != (1, 1)
    }

    fn chunk_kind(&self) -> &'static str {
        if self.tiled { "tile" } else { "strip" }
    }

    /// Bytes of one stored row of a chunk `width` pixels wide (for
    /// subsampled YCbCr, one row of data units).
    fn stored_row_bytes(&self, width: u32) -> u64 {
        if self.subsampled() {
            let (h, v) = self.subsampling;
            u64::from(width.div_ceil(h)) * u64::from(h * v + 2)
        } else {
            (u64::from(width) * u64::from(self.samples_per_plane()) * u64::from(self.bits))
                .div_ceil(8)
        }
    }

    fn unit_rect(&self, unit: u32) -> Rect {
        let (cw, ch) = self.chunk;
        let x = unit % self.units_across() * cw;
        let y = unit / self.units_across() * ch;
        let h = ch.min(self.height - y);
        Rect {
            x,
            y,
            w: cw.min(self.width - x),
            h,
            stored_rows: if self.tiled { ch } else { h },
        }
    }

    /// The stored bytes of chunk `index`, checked to lie in the file by
    /// [`Layout::check_chunks`].
    fn stored<'b>(&self, bytes: &'b [u8], index: usize) -> Result<&'b [u8], PageError> {
        let (offset, count) = (self.offsets[index], self.counts[index]);
        usize::try_from(offset)
            .ok()
            .zip(usize::try_from(count).ok())
            .and_then(|(at, len)| bytes.get(at..at.checked_add(len)?))
            .ok_or_else(|| {
                PageError::Other(format!(
                    "{} {} lies past the end of the file; the TIFF is truncated or damaged",
                    self.chunk_kind(),
                    index + 1
                ))
            })
    }

    /// Chunk `index`, decompressed by us (with the crate's codecs).
    fn own_chunk(&self, bytes: &[u8], index: u32, rect: &Rect) -> Result<Vec<u8>, PageError> {
        let stored = self.stored(bytes, index as usize)?;
        let row_bytes = self.stored_row_bytes(self.chunk.0) as usize;
        let rows = if self.subsampled() {
            rect.stored_rows.div_ceil(self.subsampling.1)
        } else {
            rect.stored_rows
        } as usize;
        decompress(stored, self.compression, self.reversed, row_bytes, rows).map_err(|reason| {
            PageError::Other(format!(
                "{} {} {reason}; the TIFF is truncated or damaged",
                self.chunk_kind(),
                index + 1
            ))
        })
    }

    /// The chunks of every plane for `unit`, read by us.
    fn own_unit(&self, bytes: &[u8], unit: u32, rect: &Rect) -> Result<Decoded, PageError> {
        let planes = (0..u32::from(self.planes()))
            .map(|plane| self.own_chunk(bytes, unit + plane * self.units_per_plane(), rect))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Decoded {
            row_stride: self.stored_row_bytes(self.chunk.0) as usize,
            plane_starts: (0..planes.len()).map(|plane| (plane, 0)).collect(),
            buffers: planes,
            row_samples: self.chunk.0 as usize * usize::from(self.samples_per_plane()),
            per_pixel: usize::from(self.samples_per_plane()),
            bits: self.bits,
            little_endian: self.little_endian,
            predictor: self.predictor == 2,
            planar: self.planar,
        })
    }

    /// The chunks of every plane for `unit`, read by the tiff crate.
    fn crate_unit(
        &self,
        decoder: &mut TiffDecoder,
        unit: u32,
        rect: &Rect,
    ) -> Result<Decoded, PageError> {
        if self.compression == JPEG {
            // The crate hands JPEG data to zune-jpeg, which allocates what
            // the frame header claims; a header larger than the chunk is a
            // lie (libtiff refuses it too) and could cost gigabytes.
            let bytes: &[u8] = decoder.inner().get_ref();
            for plane in 0..u32::from(self.planes()) {
                let index = (unit + plane * self.units_per_plane()) as usize;
                if let Some((w, h)) = jpeg_frame_size(self.stored(bytes, index)?)
                    && (u32::from(w) > self.chunk.0 || u32::from(h) > self.chunk.1)
                {
                    return Err(PageError::Other(format!(
                        "the JPEG data of {} {} claims {w}x{h} pixels, more than the {}'s \
                         {}x{}; the TIFF is damaged",
                        self.chunk_kind(),
                        index + 1,
                        self.chunk_kind(),
                        self.chunk.0,
                        self.chunk.1
                    )));
                }
            }
        }
        let layout = decoder.image_coding_unit_layout(TiffCodingUnit(unit))?;
        let mut buffer = vec![0u8; layout.complete_len];
        decoder
            .read_coding_unit_bytes(TiffCodingUnit(unit), &mut buffer)
            .map_err(|e| {
                PageError::Other(format!(
                    "{} {} cannot be decoded ({e}); the TIFF is truncated or damaged",
                    self.chunk_kind(),
                    unit + 1
                ))
            })?;
        let per_pixel = if self.planar {
            1
        } else {
            usize::from(decoder.colortype()?.num_samples())
        };
        let mut row_stride = layout.row_stride.map_or(0, |s| s.get());
        let mut plane_stride = layout.plane_stride.map_or(0, |s| s.get());
        if self.float {
            // Floating point: 0.0 is black, 1.0 white (as image editors
            // write it; Pillow clips to 0..255 and shows such a page black).
            // Scaled to 16 bits here, the rest reads them as 16-bit samples.
            let size = usize::from(self.bits / 8);
            buffer = buffer
                .chunks_exact(size)
                .flat_map(|b| {
                    let v = match *b {
                        [a, b, c, d] => f64::from(f32::from_ne_bytes([a, b, c, d])),
                        [a, b, c, d, e, f, g, h] => f64::from_ne_bytes([a, b, c, d, e, f, g, h]),
                        _ => 0.0,
                    };
                    // `as` saturates and maps NaN to 0.
                    ((v * 65535.0).round() as u16).to_ne_bytes()
                })
                .collect();
            row_stride = row_stride / size * 2;
            plane_stride = plane_stride / size * 2;
        }
        Ok(Decoded {
            row_stride,
            plane_starts: (0..layout.planes)
                .map(|plane| (0, plane * plane_stride))
                .collect(),
            buffers: vec![buffer],
            row_samples: rect.w as usize * per_pixel,
            per_pixel,
            // Below 8 bits the crate keeps samples packed as stored; 8 and
            // 16 bits it hands over in native byte order.
            bits: self.sample_bits(),
            little_endian: cfg!(target_endian = "little"),
            predictor: false,
            planar: self.planar,
        })
    }

    /// Subsampled YCbCr: each data unit of h x v pixels holds its h*v luma
    /// samples, then one Cb and one Cr, which libtiff repeats over the unit
    /// (as do we, so pages match it and Pillow exactly).
    fn ycbcr_units(
        &self,
        data: &[u8],
        rect: &Rect,
        convert: &Convert,
        sink: &mut Sink,
    ) -> Result<(), PageError> {
        let Sink::Gray(out) = sink else {
            return Err(PageError::Other("YCbCr page read as bilevel".into()));
        };
        let (h, v) = self.subsampling;
        let unit_len = (h * v + 2) as usize;
        let across = self.chunk.0.div_ceil(h) as usize;
        for (i, unit) in data.chunks_exact(unit_len).enumerate() {
            let (ux, uy) = ((i % across) as u32 * h, (i / across) as u32 * v);
            let (cb, cr) = (unit[unit_len - 2], unit[unit_len - 1]);
            for (j, &y) in unit[..unit_len - 2].iter().enumerate() {
                let (x, row) = (ux + j as u32 % h, uy + j as u32 / h);
                if x < rect.w && row < rect.h {
                    let at = (rect.y + row) as usize * self.width as usize + (rect.x + x) as usize;
                    out[at] = convert
                        .level(&[u16::from(y), u16::from(cb), u16::from(cr)])
                        .unwrap_or(255);
                }
            }
        }
        Ok(())
    }
}

/// The decoded chunks of one unit: one buffer per plane (own path) or all
/// planes in one buffer (crate path).
struct Decoded {
    /// Bytes from one row to the next.
    row_stride: usize,
    buffers: Vec<Vec<u8>>,
    /// Where each plane starts: a buffer and an offset in it.
    plane_starts: Vec<(usize, usize)>,
    /// Samples stored per row of one plane (a whole tile's width on the
    /// own path, since the predictor runs over it).
    row_samples: usize,
    /// Samples per pixel within one plane's rows.
    per_pixel: usize,
    bits: u8,
    little_endian: bool,
    /// Predictor 2 still to undo.
    predictor: bool,
    planar: bool,
}

impl Decoded {
    /// Row `y` of the unit as `stride` samples a pixel for `rect.w` pixels.
    fn row(&self, y: u32, rect: &Rect, stride: usize, out: &mut [u16], scratch: &mut Vec<u16>) {
        let y = y as usize;
        let wanted = rect.w as usize * self.per_pixel;
        for (plane, &(buffer, start)) in self.plane_starts.iter().enumerate().take(stride) {
            // Short buffers read as zeros (see `unpack`); their sizes were
            // checked when they were decoded.
            let row = self.buffers[buffer]
                .get(start + y * self.row_stride..)
                .unwrap_or_default();
            scratch.clear();
            scratch.resize(self.row_samples.max(wanted), 0);
            unpack(row, self.bits, self.little_endian, scratch);
            if self.predictor {
                undo_predictor(scratch, self.per_pixel, self.bits);
            }
            if self.planar {
                for (x, &s) in scratch[..wanted].iter().enumerate() {
                    out[x * stride + plane] = s;
                }
            } else {
                out[..wanted].copy_from_slice(&scratch[..wanted]);
            }
        }
    }
}

/// Unpacks samples of `bits` bits (MSB first below 8 bits and at 12, as
/// TIFF packs them) from `row` into `out`; missing bytes read as 0.
fn unpack(row: &[u8], bits: u8, little_endian: bool, out: &mut [u16]) {
    match bits {
        8 => {
            for (o, &b) in out.iter_mut().zip(row) {
                *o = u16::from(b);
            }
        }
        16 => {
            for (o, b) in out.iter_mut().zip(row.chunks_exact(2)) {
                let pair = [b[0], b[1]];
                *o = if little_endian {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                };
            }
        }
        _ => {
            let bits = usize::from(bits);
            let mask = (1u32 << bits) - 1;
            for (i, o) in out.iter_mut().enumerate() {
                let first = i * bits;
                let (byte, shift) = (first / 8, first % 8);
                // Two bytes hold any sample of up to 9 bits at any offset,
                // three any sample of 12 bits.
                let word = (u32::from(row.get(byte).copied().unwrap_or(0)) << 16)
                    | (u32::from(row.get(byte + 1).copied().unwrap_or(0)) << 8)
                    | u32::from(row.get(byte + 2).copied().unwrap_or(0));
                *o = ((word >> (24 - shift - bits)) & mask) as u16;
            }
        }
    }
}

/// Undoes Predictor 2 (horizontal differencing) over one stored row:
/// each sample was stored as its difference from the same sample of the
/// pixel before, modulo 2^bits.
fn undo_predictor(row: &mut [u16], per_pixel: usize, bits: u8) {
    let mask = if bits == 16 {
        u16::MAX
    } else {
        (1 << bits) - 1
    };
    for i in per_pixel..row.len() {
        row[i] = row[i].wrapping_add(row[i - per_pixel]) & mask;
    }
}

/// Decompresses one stored chunk into `rows` rows of `row_bytes` bytes.
///
/// The `tiff` crate decodes LZW, Deflate and PackBits only through its
/// image reader, which refuses the layouts we read here (palettes, 12-bit
/// samples, subsampled YCbCr…). But any chunk's bytes decompress the same
/// whatever they mean, so the chunk is wrapped in a one-strip TIFF of 8-bit
/// grey pixels, `row_bytes` across and `rows` down, and the crate reads
/// that: its codecs, unchanged, with the output size fixed by us. (With
/// `weezl` and `flate2` as direct dependencies this could call them
/// instead; they are the crate's own.) FillOrder 2 data is bit-reversed
/// first, before decompression, as libtiff does for every codec but JPEG.
fn decompress(
    stored: &[u8],
    compression: u16,
    reversed: bool,
    row_bytes: usize,
    rows: usize,
) -> Result<Vec<u8>, String> {
    let needed = row_bytes * rows;
    let reverse = |data: &mut [u8]| {
        if reversed {
            data.iter_mut().for_each(|b| *b = b.reverse_bits());
        }
    };
    if compression == NONE {
        let Some(data) = stored.get(..needed) else {
            return Err(format!(
                "holds {} bytes, {needed} needed for its {rows} rows",
                stored.len()
            ));
        };
        let mut data = data.to_vec();
        reverse(&mut data);
        return Ok(data);
    }
    if needed == 0 {
        return Ok(Vec::new());
    }
    let (Ok(width), Ok(height), Ok(len)) = (
        u32::try_from(row_bytes),
        u32::try_from(rows),
        u32::try_from(stored.len()),
    ) else {
        return Err("is too large to decode".into());
    };
    // Header, the chunk, then one directory of 9 entries.
    let data_at = 8u32;
    let ifd_at = (data_at + len).next_multiple_of(2);
    let mut file = Vec::with_capacity(ifd_at as usize + 2 + 9 * 12 + 4);
    file.extend_from_slice(b"II*\0");
    file.extend_from_slice(&ifd_at.to_le_bytes());
    file.extend_from_slice(stored);
    reverse(&mut file[data_at as usize..]);
    file.resize(ifd_at as usize, 0);
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, u32::from(compression)),
        (262, 3, u32::from(MIN_IS_BLACK)),
        (273, 4, data_at),
        (277, 3, 1),
        (278, 4, height),
        (279, 4, len),
    ];
    file.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        file.extend_from_slice(&tag.to_le_bytes());
        file.extend_from_slice(&kind.to_le_bytes());
        file.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            // A SHORT sits in the first two bytes of the value field.
            file.extend_from_slice(&(value as u16).to_le_bytes());
            file.extend_from_slice(&[0, 0]);
        } else {
            file.extend_from_slice(&value.to_le_bytes());
        }
    }
    file.extend_from_slice(&0u32.to_le_bytes());
    let decoded = Decoder::new(Cursor::new(&file[..]))
        .map(|d| d.with_limits(decoding_limits()))
        .and_then(|mut d| d.read_image());
    match decoded {
        Ok(DecodingResult::U8(data)) if data.len() >= needed => Ok(data),
        Ok(_) => Err(format!(
            "does not hold the {needed} bytes its {rows} rows need"
        )),
        Err(e) => Err(format!("cannot be decompressed ({e})")),
    }
}

/// The frame size a JPEG stream's SOF header claims, if it has one before
/// its first scan.
fn jpeg_frame_size(data: &[u8]) -> Option<(u16, u16)> {
    let mut at = 2; // past SOI
    while at + 4 <= data.len() {
        if data[at] != 0xff {
            return None;
        }
        let marker = data[at + 1];
        if marker == 0xff {
            at += 1; // fill byte
            continue;
        }
        if matches!(marker, 0x01 | 0xd0..=0xd8) {
            at += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
        if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            let sof = data.get(at + 4..at + 9)?;
            let height = u16::from_be_bytes([sof[1], sof[2]]);
            let width = u16::from_be_bytes([sof[3], sof[4]]);
            return Some((width, height));
        }
        if marker == 0xda {
            return None;
        }
        at += 2 + len;
    }
    None
}

/// Samples of a pixel to luminance, see [`super::color`].
struct Convert {
    colour: Colour,
    bits: u8,
    alpha: Option<(usize, bool)>,
}

enum Colour {
    Grey {
        /// Min-is-white still to invert (the crate inverts it itself).
        invert: bool,
    },
    /// The luminance of each colour-map entry.
    Palette(Vec<u8>),
    Rgb,
    Cmyk,
    YCbCr(YCbCr),
    /// YCbCr decoded from JPEG data.
    JpegYCbCr,
}

impl Convert {
    fn new(
        decoder: &mut TiffDecoder,
        layout: &Layout,
        path: Path,
        delivered: u16,
    ) -> Result<Convert, PageError> {
        let colour = match layout.photometric {
            MIN_IS_WHITE => Colour::Grey {
                invert: path == Path::Own,
            },
            MIN_IS_BLACK => Colour::Grey { invert: false },
            PALETTE => Colour::Palette(palette(decoder)?),
            RGB => Colour::Rgb,
            CMYK => Colour::Cmyk,
            _ if layout.compression == JPEG => Colour::JpegYCbCr,
            _ => {
                let mut floats = |tag, n| -> Result<Option<Vec<f64>>, PageError> {
                    Ok(decoder.find_tag(tag)?.and_then(|value| {
                        let values = match value {
                            Value::List(values) => values,
                            one => vec![one],
                        };
                        let values: Option<Vec<f64>> = values.into_iter().map(as_f64).collect();
                        values.filter(|v| v.len() == n)
                    }))
                };
                let coefficients = floats(Tag::Unknown(529), 3)?.map(|v| [v[0], v[1], v[2]]);
                let reference =
                    floats(Tag::Unknown(532), 6)?.map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]]);
                Colour::YCbCr(YCbCr::new(coefficients, reference))
            }
        };
        Ok(Convert {
            colour,
            bits: layout.sample_bits(),
            alpha: layout.alpha.filter(|&(at, _)| at < usize::from(delivered)),
        })
    }

    /// The luminance of one pixel over white paper; `None` for a palette
    /// index past the colour map.
    fn level(&self, px: &[u16]) -> Option<u8> {
        let bits = self.bits;
        let level = match &self.colour {
            Colour::Grey { invert: false } => to_8bit(px[0], bits),
            Colour::Grey { invert: true } => 255 - to_8bit(px[0], bits),
            Colour::Palette(map) => *map.get(usize::from(px[0]))?,
            Colour::Rgb => luma(
                to_8bit(px[0], bits),
                to_8bit(px[1], bits),
                to_8bit(px[2], bits),
            ),
            Colour::Cmyk => {
                let (r, g, b) = cmyk_to_rgb(
                    to_8bit(px[0], bits),
                    to_8bit(px[1], bits),
                    to_8bit(px[2], bits),
                    to_8bit(px[3], bits),
                );
                luma(r, g, b)
            }
            Colour::YCbCr(ycbcr) => {
                let (r, g, b) = ycbcr.rgb(px[0] as u8, px[1] as u8, px[2] as u8);
                luma(r, g, b)
            }
            Colour::JpegYCbCr => {
                let (r, g, b) = jpeg_ycbcr_to_rgb(px[0] as u8, px[1] as u8, px[2] as u8);
                luma(r, g, b)
            }
        };
        Some(match self.alpha {
            None => level,
            Some((at, associated)) => {
                let alpha = to_8bit(px[at], bits);
                if associated {
                    premultiplied_over_white(level, alpha)
                } else {
                    over_white(level, alpha)
                }
            }
        })
    }

    /// Samples a pixel must have for [`Convert::level`].
    fn samples_needed(&self) -> usize {
        let colour = match self.colour {
            Colour::Grey { .. } | Colour::Palette(_) => 1,
            Colour::Rgb | Colour::YCbCr(_) | Colour::JpegYCbCr => 3,
            Colour::Cmyk => 4,
        };
        colour.max(self.alpha.map_or(0, |(at, _)| at + 1))
    }

    /// The error for a pixel [`Convert::level`] refused.
    fn bad_index(&self, px: &[u16]) -> PageError {
        let colours = match &self.colour {
            Colour::Palette(map) => map.len(),
            _ => 0,
        };
        PageError::Other(format!(
            "a pixel uses colour {} but the colour map has only {colours} colours; \
             the TIFF is damaged",
            px[0]
        ))
    }
}

/// The luminance of each entry of the page's colour map, whose 16-bit
/// entries are all the reds, then the greens, then the blues; Pillow takes
/// the high byte of each.
fn palette(decoder: &mut TiffDecoder) -> Result<Vec<u8>, PageError> {
    let map: Vec<u16> = decoder
        .find_tag_unsigned_vec(Tag::ColorMap)?
        .unwrap_or_default();
    let n = map.len() / 3;
    if n == 0 {
        return Err(PageError::Other(
            "it is a palette page without a colour map; the TIFF is damaged".into(),
        ));
    }
    Ok((0..n)
        .map(|i| {
            let byte = |plane: usize| (map[plane * n + i] >> 8) as u8;
            luma(byte(0), byte(1), byte(2))
        })
        .collect())
}

/// A colour model's name for messages.
fn model_name(photometric: u16) -> String {
    match photometric {
        MIN_IS_WHITE | MIN_IS_BLACK => "grey".into(),
        RGB => "RGB".into(),
        PALETTE => "palette".into(),
        4 => "transparency mask".into(),
        CMYK => "CMYK".into(),
        YCBCR => "YCbCr".into(),
        8 => "CIE L*a*b*".into(),
        9 => "ICC L*a*b*".into(),
        10 => "ITU L*a*b*".into(),
        32803 => "colour filter array (raw camera)".into(),
        32844 | 32845 => "LogLuv".into(),
        other => format!("PhotometricInterpretation {other}"),
    }
}

/// A compression's name for messages.
fn compression_name(compression: u16) -> String {
    match compression {
        6 => "old-style JPEG".into(),
        9 | 34661 => "JBIG".into(),
        32771 => "CCITT RLE with word alignment".into(),
        32809 => "ThunderScan".into(),
        34676 | 34677 => "SGI LogLuv".into(),
        34712 => "JPEG 2000".into(),
        34887 => "LERC".into(),
        34925 => "LZMA".into(),
        50000 => "Zstandard".into(),
        50001 => "WebP".into(),
        other => format!("compression scheme {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tiff_read::decoding_limits;
    use tiff::encoder::{Compression, DeflateLevel, TiffEncoder, TiffValue, colortype};
    use tiff::tags::Predictor;

    const W: u32 = 37;
    const H: u32 = 23;

    /// Samples that cover the whole range, low bits included.
    fn noise<T: TryFrom<u64>>(n: usize, bits: u32) -> Vec<T> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                T::try_from((state >> 33) & ((1 << bits) - 1))
                    .ok()
                    .expect("fits")
            })
            .collect()
    }

    fn encode<C: colortype::ColorType>(
        data: &[C::Inner],
        compression: Compression,
        predictor: Predictor,
    ) -> Vec<u8>
    where
        [C::Inner]: TiffValue,
    {
        let mut out = Cursor::new(Vec::new());
        let mut encoder = TiffEncoder::new(&mut out)
            .expect("encoder")
            .with_compression(compression)
            .with_predictor(predictor);
        let mut image = encoder.new_image::<C>(W, H).expect("image");
        image.rows_per_strip(7).expect("rows per strip");
        image.write_data(data).expect("data");
        out.into_inner()
    }

    fn read_by(bytes: &[u8], choose: fn(&Layout) -> Path) -> GrayImage {
        let mut decoder = Decoder::new(Cursor::new(bytes))
            .expect("a TIFF")
            .with_limits(decoding_limits());
        match read_pixels_by(&mut decoder, W, H, (0, 0), choose) {
            Ok(Pixels::Gray(image)) => image,
            Ok(Pixels::Bilevel(_)) => panic!("read as bilevel"),
            Err(_) => panic!("not read"),
        }
    }

    /// Our own reader gives what the tiff crate gives on every layout both
    /// read: the tests against Pillow reach our reader only through the
    /// layouts the crate refuses.
    #[test]
    fn own_reader_matches_the_crate_where_both_read() {
        let compressions = [
            ("none", Compression::Uncompressed),
            ("lzw", Compression::Lzw),
            ("deflate", Compression::Deflate(DeflateLevel::Fast)),
            ("packbits", Compression::Packbits),
        ];
        let n = (W * H) as usize;
        for (scheme, compression) in compressions {
            for predictor in [Predictor::None, Predictor::Horizontal] {
                let files = [
                    (
                        "grey8",
                        encode::<colortype::Gray8>(&noise(n, 8), compression, predictor),
                    ),
                    (
                        "grey16",
                        encode::<colortype::Gray16>(&noise(n, 16), compression, predictor),
                    ),
                    (
                        "rgb8",
                        encode::<colortype::RGB8>(&noise(3 * n, 8), compression, predictor),
                    ),
                    (
                        "rgb16",
                        encode::<colortype::RGB16>(&noise(3 * n, 16), compression, predictor),
                    ),
                    (
                        "rgba8",
                        encode::<colortype::RGBA8>(&noise(4 * n, 8), compression, predictor),
                    ),
                    (
                        "rgba16",
                        encode::<colortype::RGBA16>(&noise(4 * n, 16), compression, predictor),
                    ),
                    (
                        "cmyk8",
                        encode::<colortype::CMYK8>(&noise(4 * n, 8), compression, predictor),
                    ),
                    (
                        "cmyk16",
                        encode::<colortype::CMYK16>(&noise(4 * n, 16), compression, predictor),
                    ),
                ];
                for (name, bytes) in files {
                    let ours = read_by(&bytes, |_| Path::Own);
                    let theirs = read_by(&bytes, |_| Path::Crate);
                    assert!(
                        ours == theirs,
                        "{name}, {scheme}, {predictor:?}: the readers differ"
                    );
                }
            }
        }
    }
}

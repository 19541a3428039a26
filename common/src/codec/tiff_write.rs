//! Writing TIFF Class F files, one page at a time.
//!
//! Layout: an 8-byte little-endian header, then for each page its strip
//! followed by its IFD (and the IFD's out-of-line values). Appending a page
//! writes strip and IFD past the end of the file, syncs, and only then links
//! the IFD from the previous one (or from the header) and syncs again. So a
//! crash at any moment leaves a valid file holding every page that was
//! linked, and the receiving side can confirm a page as soon as
//! [`TiffFWriter::append_page`] returns.
//!
//! PageNumber: while the total is unknown each page says (n, 0), which TIFF
//! 6.0 defines as "total number of pages not available"; [`TiffFWriter::finish`]
//! patches the total into every page. A file cut short keeps the zeros and is
//! still valid.
//!
//! The tags are those TIFF Class F (RFC 2306) requires: NewSubfileType 2,
//! ImageWidth, ImageLength, BitsPerSample 1, Compression 3 or 4,
//! PhotometricInterpretation 0 (min-is-white), FillOrder 1, StripOffsets,
//! SamplesPerPixel 1, RowsPerStrip (the whole page: one strip), StripByteCounts,
//! XResolution 204, YResolution 98/196/391, PlanarConfiguration 1,
//! T4Options (MH 4, MR 5: fill bits so EOLs end on a byte boundary, as
//! RFC 2306 recommends) or T6Options 0, ResolutionUnit 2 (inch) and
//! PageNumber. The optional BadFaxLines/CleanFaxData are left out.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::bitmap::Bitmap;
use super::error::CodecError;
use super::g3::G3Options;
use super::page::{Compression, EncodedPage, FAX_X_DPI, PageInfo};

/// Somewhere a TIFF file can be written and made durable.
pub trait FaxSink: Write + Seek {
    /// Makes everything written so far durable (a no-op in memory).
    fn sync(&mut self) -> io::Result<()>;
}

impl FaxSink for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

impl FaxSink for Cursor<Vec<u8>> {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes a multi-page TIFF Class F document incrementally.
pub struct TiffFWriter<S: FaxSink = File> {
    sink: S,
    /// Where the next page's strip goes: the end of the valid data.
    end: u64,
    /// Where the offset of the next IFD must be written: the header's first
    /// IFD pointer, then the last IFD's next pointer.
    link_at: u64,
    /// Where each page's PageNumber value sits, to patch the total in.
    page_number_at: Vec<u64>,
}

impl<S: FaxSink> std::fmt::Debug for TiffFWriter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiffFWriter")
            .field("pages", &self.page_number_at.len())
            .field("end", &self.end)
            .finish()
    }
}

impl TiffFWriter<File> {
    /// Starts a new document in `file` (which should be empty; it is
    /// truncated) and syncs the header.
    pub fn create(file: File) -> Result<Self, CodecError> {
        file.set_len(0).map_err(CodecError::Write)?;
        Self::new(file)
    }

    /// Reopens a partly written document to append more pages: walks the
    /// chain of complete pages, drops anything written after the last one
    /// (a strip whose IFD never got linked) and carries on from there.
    /// Returns the writer and the number of complete pages found.
    pub fn resume(mut file: File) -> Result<(Self, usize), CodecError> {
        let len = file.seek(SeekFrom::End(0)).map_err(CodecError::Write)?;
        if len < 8 {
            // Not even a header made it to disk: start over.
            return Ok((Self::create(file)?, 0));
        }
        let chain = walk_chain(&mut file).map_err(CodecError::Write)?;
        file.set_len(chain.end).map_err(CodecError::Write)?;
        let pages = chain.page_number_at.len();
        let writer = TiffFWriter {
            sink: file,
            end: chain.end,
            link_at: chain.link_at,
            page_number_at: chain.page_number_at,
        };
        Ok((writer, pages))
    }
}

impl<S: FaxSink> TiffFWriter<S> {
    /// Starts a new document at the start of `sink`.
    pub fn new(mut sink: S) -> Result<Self, CodecError> {
        sink.seek(SeekFrom::Start(0)).map_err(CodecError::Write)?;
        // "II", 42, first IFD at 0 (none yet).
        sink.write_all(&[b'I', b'I', 42, 0, 0, 0, 0, 0])
            .map_err(CodecError::Write)?;
        sink.sync().map_err(CodecError::Write)?;
        Ok(TiffFWriter {
            sink,
            end: 8,
            link_at: 4,
            page_number_at: Vec::new(),
        })
    }

    /// Number of pages written so far.
    pub fn pages(&self) -> usize {
        self.page_number_at.len()
    }

    /// Appends one page and syncs: when this returns, the page is on disk.
    pub fn append_page(&mut self, page: &EncodedPage) -> Result<(), CodecError> {
        self.append_data(&page.info(), &page.data)
    }

    /// [`TiffFWriter::append_page`] for a page whose data is borrowed: a
    /// receiver stores each page from one buffer it reuses for the next.
    pub fn append_data(&mut self, info: &PageInfo, data: &[u8]) -> Result<(), CodecError> {
        info.check_len(data.len())?;
        let (compression, options_tag, options) = match info.compression {
            Compression::G4 => (4, TAG_T6_OPTIONS, 0),
            Compression::Mr => (3, TAG_T4_OPTIONS, G3Options::mr(0).t4_options()),
            Compression::Mh => (3, TAG_T4_OPTIONS, G3Options::mh().t4_options()),
        };
        let layout = PageLayout {
            width: info.width,
            height: info.height,
            x_dpi: FAX_X_DPI,
            y_dpi: info.resolution.lines_per_inch(),
            compression,
            options: Some((options_tag, options)),
            page_number: u16::try_from(self.pages()).unwrap_or(u16::MAX),
        };
        self.append(&layout, data)
    }

    /// Appends an uncompressed bilevel page (min-is-white, one strip), for
    /// tools and tests that need a plain TIFF; not a Class F page.
    pub fn append_uncompressed(&mut self, page: &Bitmap) -> Result<(), CodecError> {
        let layout = PageLayout {
            width: page.width(),
            height: page.height(),
            x_dpi: page.x_dpi(),
            y_dpi: page.y_dpi(),
            compression: 1,
            options: None,
            page_number: u16::try_from(self.pages()).unwrap_or(u16::MAX),
        };
        self.append(&layout, page.data())
    }

    fn append(&mut self, layout: &PageLayout, strip: &[u8]) -> Result<(), CodecError> {
        let strip_at = self.end;
        // Word-align the IFD, as TIFF asks.
        let ifd_at = (strip_at + strip.len() as u64).next_multiple_of(2);
        let (ifd, page_number_value) = layout.ifd(strip_at, strip.len(), ifd_at)?;
        let ifd_end = ifd_at + ifd.len() as u64;
        if ifd_end > u64::from(u32::MAX) {
            return Err(CodecError::Write(io::Error::other(
                "the document would pass 4 GiB, the limit of a TIFF file",
            )));
        }
        let w = &mut self.sink;
        let io = (|| {
            w.seek(SeekFrom::Start(strip_at))?;
            w.write_all(strip)?;
            if ifd_at > strip_at + strip.len() as u64 {
                w.write_all(&[0])?;
            }
            w.write_all(&ifd)?;
            // First make strip and IFD durable, then link them in: a crash
            // in between loses this page, never the file.
            w.sync()?;
            w.seek(SeekFrom::Start(self.link_at))?;
            w.write_all(&(ifd_at as u32).to_le_bytes())?;
            w.sync()
        })();
        io.map_err(CodecError::Write)?;
        self.end = ifd_end;
        self.link_at = ifd_at + 2 + 12 * u64::from(IFD_ENTRIES);
        self.page_number_at.push(ifd_at + page_number_value);
        Ok(())
    }

    /// Writes the page total into every page's PageNumber, syncs, and gives
    /// the sink back.
    pub fn finish(mut self) -> Result<S, CodecError> {
        let total = u16::try_from(self.pages()).unwrap_or(u16::MAX);
        for &at in &self.page_number_at {
            self.sink
                .seek(SeekFrom::Start(at + 2))
                .and_then(|_| self.sink.write_all(&total.to_le_bytes()))
                .map_err(CodecError::Write)?;
        }
        self.sink.flush().map_err(CodecError::Write)?;
        self.sink.sync().map_err(CodecError::Write)?;
        Ok(self.sink)
    }
}

/// Writes a whole document to `path` at once (built in memory, one write,
/// one sync).
pub fn write_document(path: &Path, pages: &[EncodedPage]) -> Result<(), CodecError> {
    let bytes = document_bytes(pages)?;
    let mut file = File::create(path).map_err(CodecError::Write)?;
    file.write_all(&bytes).map_err(CodecError::Write)?;
    file.sync_data().map_err(CodecError::Write)
}

/// A whole TIFF Class F document as bytes.
pub fn document_bytes(pages: &[EncodedPage]) -> Result<Vec<u8>, CodecError> {
    let size = pages.iter().map(|p| p.data.len() + 256).sum::<usize>() + 8;
    let mut writer = TiffFWriter::new(Cursor::new(Vec::with_capacity(size)))?;
    for page in pages {
        writer.append_page(page)?;
    }
    Ok(writer.finish()?.into_inner())
}

/// Writes bitmaps as an uncompressed multi-page bilevel TIFF.
pub fn write_uncompressed(path: &Path, pages: &[Bitmap]) -> Result<(), CodecError> {
    let mut writer = TiffFWriter::new(Cursor::new(Vec::new()))?;
    for page in pages {
        writer.append_uncompressed(page)?;
    }
    let bytes = writer.finish()?.into_inner();
    std::fs::write(path, bytes).map_err(CodecError::Write)
}

const TAG_T4_OPTIONS: u16 = 292;
const TAG_T6_OPTIONS: u16 = 293;
const TAG_PAGE_NUMBER: u16 = 297;

/// Every IFD we write has the same number of entries (uncompressed pages
/// carry Orientation where fax pages carry T4/T6Options), so the next-IFD
/// pointer and the values sit at fixed places, which [`walk_chain`] relies on.
const IFD_ENTRIES: u16 = 17;

const SHORT: u16 = 3;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;

struct PageLayout {
    width: u32,
    height: u32,
    x_dpi: u32,
    y_dpi: u32,
    compression: u16,
    /// T4Options or T6Options tag and value; none for uncompressed pages.
    options: Option<(u16, u32)>,
    /// This page's number, from 0.
    page_number: u16,
}

impl PageLayout {
    /// The IFD bytes for a page whose strip is at `strip_at`, the IFD itself
    /// going at `ifd_at`; also where in it the PageNumber value sits.
    fn ifd(
        &self,
        strip_at: u64,
        strip_len: usize,
        ifd_at: u64,
    ) -> Result<(Vec<u8>, u64), CodecError> {
        let too_big = || CodecError::Write(io::Error::other("the document would pass 4 GiB"));
        let strip_at = u32::try_from(strip_at).map_err(|_| too_big())?;
        let strip_len = u32::try_from(strip_len).map_err(|_| too_big())?;
        // Out-of-line values (the two rationals) follow the IFD.
        let values_at = ifd_at + 2 + 12 * u64::from(IFD_ENTRIES) + 4;
        let values_at = u32::try_from(values_at).map_err(|_| too_big())?;
        let short = |v: u16| u32::from(v);
        let mut entries: Vec<(u16, u16, u32, u32)> = vec![
            (254, LONG, 1, 2),                                    // NewSubfileType: page
            (256, LONG, 1, self.width),                           // ImageWidth
            (257, LONG, 1, self.height),                          // ImageLength
            (258, SHORT, 1, 1),                                   // BitsPerSample
            (259, SHORT, 1, short(self.compression)),             // Compression
            (262, SHORT, 1, 0),                                   // Photometric: min-is-white
            (266, SHORT, 1, 1),                                   // FillOrder: MSB first
            (273, LONG, 1, strip_at),                             // StripOffsets
            (277, SHORT, 1, 1),                                   // SamplesPerPixel
            (278, LONG, 1, self.height),                          // RowsPerStrip
            (279, LONG, 1, strip_len),                            // StripByteCounts
            (282, RATIONAL, 1, values_at),                        // XResolution
            (283, RATIONAL, 1, values_at + 8),                    // YResolution
            (284, SHORT, 1, 1),                                   // PlanarConfiguration
            (296, SHORT, 1, 2),                                   // ResolutionUnit: inch
            (TAG_PAGE_NUMBER, SHORT, 2, short(self.page_number)), // PageNumber (n, 0)
        ];
        match self.options {
            Some((tag, value)) => entries.push((tag, LONG, 1, value)),
            // Uncompressed: keep the entry count fixed with Orientation 1
            // (top-left), which every reader assumes anyway.
            None => entries.push((274, SHORT, 1, 1)),
        }
        entries.sort_by_key(|e| e.0);
        debug_assert_eq!(entries.len(), usize::from(IFD_ENTRIES));

        let mut out = Vec::with_capacity(2 + 12 * entries.len() + 4 + 16);
        out.extend_from_slice(&IFD_ENTRIES.to_le_bytes());
        let mut page_number_value = 0;
        for (tag, kind, count, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            if tag == TAG_PAGE_NUMBER {
                page_number_value = out.len() as u64;
            }
            if kind == SHORT && count == 1 {
                // A single SHORT sits in the first two bytes of the field.
                out.extend_from_slice(&(value as u16).to_le_bytes());
                out.extend_from_slice(&[0, 0]);
            } else if kind == SHORT {
                // PageNumber: (n, total), total 0 until finish() patches it.
                out.extend_from_slice(&(value as u16).to_le_bytes());
                out.extend_from_slice(&0u16.to_le_bytes());
            } else {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // no next IFD yet
        for dpi in [self.x_dpi, self.y_dpi] {
            out.extend_from_slice(&dpi.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        Ok((out, page_number_value))
    }
}

/// What [`walk_chain`] learns about a file we wrote.
struct Chain {
    end: u64,
    link_at: u64,
    page_number_at: Vec<u64>,
}

/// Follows the IFD chain of a file in our own layout (each IFD right after
/// its strip, its values right after it), to resume writing it.
fn walk_chain(file: &mut File) -> io::Result<Chain> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let len = file.seek(SeekFrom::End(0))?;
    let mut header = [0u8; 8];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut header)?;
    if header[..4] != [b'I', b'I', 42, 0] {
        return Err(bad("not a little-endian TIFF written by faxmesh"));
    }
    let mut chain = Chain {
        end: 8,
        link_at: 4,
        page_number_at: vec![],
    };
    let mut next = u64::from(u32::from_le_bytes([
        header[4], header[5], header[6], header[7],
    ]));
    while next != 0 {
        let ifd_size = 2 + 12 * u64::from(IFD_ENTRIES) + 4 + 16;
        if next + ifd_size > len || chain.page_number_at.len() > usize::from(u16::MAX) {
            return Err(bad("broken IFD chain"));
        }
        let mut ifd = vec![0u8; ifd_size as usize];
        file.seek(SeekFrom::Start(next))?;
        file.read_exact(&mut ifd)?;
        if u16::from_le_bytes([ifd[0], ifd[1]]) != IFD_ENTRIES {
            return Err(bad("an IFD not in faxmesh's layout"));
        }
        let page_number = (0..usize::from(IFD_ENTRIES))
            .map(|i| 2 + 12 * i)
            .find(|&at| u16::from_le_bytes([ifd[at], ifd[at + 1]]) == TAG_PAGE_NUMBER)
            .ok_or_else(|| bad("an IFD without PageNumber"))?;
        chain.page_number_at.push(next + page_number as u64 + 8);
        chain.link_at = next + 2 + 12 * u64::from(IFD_ENTRIES);
        chain.end = next + ifd_size;
        let at = chain.link_at as usize - next as usize;
        next = u64::from(u32::from_le_bytes([
            ifd[at],
            ifd[at + 1],
            ifd[at + 2],
            ifd[at + 3],
        ]));
    }
    Ok(chain)
}

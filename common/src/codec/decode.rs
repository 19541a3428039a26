//! Decoding MH, MR and G4 strips back to bitmaps, with `hayro-ccitt`.

use hayro_ccitt::{DecodeSettings, DecoderContext, EncodingMode};

use super::bitmap::{Bitmap, fill_row_from_changes};
use super::error::{CodecError, MAX_SIDE};
use super::page::{Compression, EncodedPage};

/// Decodes a page. Fails when the data is damaged or holds fewer rows than
/// the page claims.
pub fn decode(page: &EncodedPage) -> Result<Bitmap, CodecError> {
    // The geometry may come off the wire: bound it before allocating the
    // bitmap it sizes.
    check_geometry(page.width, page.height)?;
    let mut bitmap = Bitmap::new_fax(page.width, page.height, page.resolution);
    let coding = StripCoding::Fax(page.compression);
    let rows = decode_strip_with(&page.data, coding, page.width, page.height, &mut bitmap, 0)
        .map_err(|reason| CodecError::BadData {
            compression: page.compression,
            reason,
        })?;
    if rows < page.height {
        return Err(CodecError::BadData {
            compression: page.compression,
            reason: format!("the data ends after {rows} of {} rows", page.height),
        });
    }
    Ok(bitmap)
}

/// Refuses a page geometry no fax page has (zero, or over [`MAX_SIDE`]
/// pixels on a side), before anything is sized by it.
pub fn check_geometry(width: u32, height: u32) -> Result<(), CodecError> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(CodecError::BadGeometry {
            width,
            height,
            reason: format!("a page is 1 to {MAX_SIDE} pixels on each side"),
        });
    }
    Ok(())
}

/// How a strip is coded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StripCoding {
    /// MH or MR with EOLs, or G4.
    Fax(Compression),
    /// TIFF compression 2 ("CCITT RLE"): MH without EOLs, each row starting
    /// on a byte boundary.
    Rle,
}

/// Decodes one strip of `rows` rows into `into`, starting at row `first_row`.
/// Returns how many rows the data held (at most `rows`).
pub(crate) fn decode_strip_with(
    data: &[u8],
    coding: StripCoding,
    width: u32,
    rows: u32,
    into: &mut Bitmap,
    first_row: u32,
) -> Result<u32, String> {
    let settings = DecodeSettings {
        columns: width,
        rows,
        end_of_block: coding != StripCoding::Rle,
        end_of_line: matches!(coding, StripCoding::Fax(Compression::Mh | Compression::Mr)),
        rows_are_byte_aligned: coding == StripCoding::Rle,
        encoding: match coding {
            StripCoding::Fax(Compression::G4) => EncodingMode::Group4,
            StripCoding::Fax(Compression::Mr) => EncodingMode::Group3_2D,
            StripCoding::Fax(Compression::Mh) | StripCoding::Rle => EncodingMode::Group3_1D,
        },
        // Lenient like libtiff: a damaged row in G3 data is skipped to the
        // next EOL instead of losing the rest of the page.
        strict: false,
    };
    let mut sink = RowSink {
        bitmap: into,
        next_row: first_row,
        end_row: first_row.saturating_add(rows),
    };
    let mut ctx = DecoderContext::new(settings);
    hayro_ccitt::decode(data, &mut sink, &mut ctx).map_err(|e| e.to_string())?;
    Ok(sink.next_row - first_row)
}

/// Paints decoded rows into a bitmap, ignoring any beyond its height.
struct RowSink<'a> {
    bitmap: &'a mut Bitmap,
    next_row: u32,
    end_row: u32,
}

impl hayro_ccitt::Decoder for RowSink<'_> {
    fn push_row(&mut self, changes: &[u32]) {
        if self.next_row >= self.end_row || self.next_row >= self.bitmap.height() {
            return;
        }
        let width = self.bitmap.width();
        fill_row_from_changes(self.bitmap.row_mut(self.next_row), width, changes);
        self.next_row += 1;
    }
}

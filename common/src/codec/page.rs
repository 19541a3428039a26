//! The vocabulary of fax pages that travels on the wire: compression,
//! resolution, paper size, an encoded page and its header, encode options.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::CodecError;

/// Horizontal resolution of every fax page, in dots per inch (8 pels/mm).
pub const FAX_X_DPI: u32 = 204;

/// How the rows of a page are compressed.
///
/// Ordered from best to worst compression, which is also the order of
/// preference when a callee supports several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// ITU-T T.6 (Group 4, MMR): every row coded against the previous one, no EOLs.
    G4,
    /// ITU-T T.4 two-dimensional (Group 3 MR): a 1D row every K rows, 2D rows between.
    Mr,
    /// ITU-T T.4 one-dimensional (Group 3 MH): every row run-length coded on its own.
    Mh,
}

impl Compression {
    /// All compressions, best first.
    pub const ALL: [Compression; 3] = [Compression::G4, Compression::Mr, Compression::Mh];

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::G4 => "g4",
            Compression::Mr => "mr",
            Compression::Mh => "mh",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| CodecError::UnknownName {
                kind: "compression",
                value: s.to_owned(),
                expected: "g4, mr, mh",
            })
    }
}

/// Vertical resolution of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// 98 lines per inch (3.85 lines/mm).
    Standard,
    /// 196 lines per inch (7.7 lines/mm).
    Fine,
    /// 391 lines per inch (15.4 lines/mm).
    Superfine,
}

impl Resolution {
    /// All resolutions, finest first.
    pub const ALL: [Resolution; 3] = [
        Resolution::Superfine,
        Resolution::Fine,
        Resolution::Standard,
    ];

    /// Lines per inch, as written in the TIFF YResolution tag.
    pub fn lines_per_inch(self) -> u32 {
        match self {
            Resolution::Standard => 98,
            Resolution::Fine => 196,
            Resolution::Superfine => 391,
        }
    }

    /// Rows per standard row: 1, 2 or 4. The nominal resolutions are exact
    /// multiples of each other (3.85, 7.7, 15.4 lines/mm), so converting
    /// between them merges or repeats whole rows.
    pub fn row_multiple(self) -> u32 {
        match self {
            Resolution::Standard => 1,
            Resolution::Fine => 2,
            Resolution::Superfine => 4,
        }
    }

    /// The resolution whose lines per inch are closest to `lpi`, if one is
    /// within 3% (fax files often store 3.85 lines/mm, i.e. 97.79 lpi).
    pub fn from_lines_per_inch(lpi: f64) -> Option<Resolution> {
        Resolution::ALL.into_iter().find(|r| {
            let nominal = f64::from(r.lines_per_inch());
            (lpi - nominal).abs() <= nominal * 0.03
        })
    }

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Standard => "standard",
            Resolution::Fine => "fine",
            Resolution::Superfine => "superfine",
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Resolution {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resolution::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| CodecError::UnknownName {
                kind: "resolution",
                value: s.to_owned(),
                expected: "standard, fine, superfine",
            })
    }
}

/// Paper sizes a fax page is scaled to; only the width matters to a fax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Paper {
    /// ISO A4 (215 mm scan width, 1728 pixels).
    A4,
    /// US Letter (same scan width as A4).
    Letter,
    /// ISO B4 (255 mm, 2048 pixels).
    B4,
    /// ISO A3 (303 mm, 2432 pixels).
    A3,
}

impl Paper {
    /// All paper sizes.
    pub const ALL: [Paper; 4] = [Paper::A4, Paper::Letter, Paper::B4, Paper::A3];

    /// Scan line width in pixels at 204 dpi (T.4 section 2.2).
    pub fn width_px(self) -> u32 {
        match self {
            Paper::A4 | Paper::Letter => 1728,
            Paper::B4 => 2048,
            Paper::A3 => 2432,
        }
    }

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Paper::A4 => "a4",
            Paper::Letter => "letter",
            Paper::B4 => "b4",
            Paper::A3 => "a3",
        }
    }
}

impl fmt::Display for Paper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Paper {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Paper::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| CodecError::UnknownName {
                kind: "paper",
                value: s.to_owned(),
                expected: "a4, letter, b4, a3",
            })
    }
}

/// One compressed fax page.
///
/// `data` is the strip exactly as stored in a TIFF Class F file with
/// FillOrder 1 (most significant bit first): for MH and MR with EOLs that
/// end on a byte boundary and no RTC, for G4 ending in EOFB.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedPage {
    /// Width in pixels (1728, 2048 or 2432 for a real fax).
    pub width: u32,
    /// Height in rows.
    pub height: u32,
    /// Vertical resolution; the horizontal one is always 204 dpi.
    pub resolution: Resolution,
    /// How `data` is compressed.
    pub compression: Compression,
    /// The compressed rows.
    pub data: Vec<u8>,
}

impl EncodedPage {
    /// Everything but the data, to send ahead of it.
    pub fn info(&self) -> PageInfo {
        PageInfo {
            width: self.width,
            height: self.height,
            resolution: self.resolution,
            compression: self.compression,
            data_len: self.data.len() as u64,
        }
    }

    /// Puts a header and the bytes that followed it back together.
    pub fn from_info(info: &PageInfo, data: Vec<u8>) -> Result<EncodedPage, CodecError> {
        info.check_len(data.len())?;
        Ok(EncodedPage {
            width: info.width,
            height: info.height,
            resolution: info.resolution,
            compression: info.compression,
            data,
        })
    }
}

// By hand, so a debug print of a page does not dump kilobytes of data.
impl fmt::Debug for EncodedPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedPage")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("resolution", &self.resolution)
            .field("compression", &self.compression)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// The header of an [`EncodedPage`]: everything but the data, plus its length,
/// so the network side can send the header and then stream the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in rows.
    pub height: u32,
    /// Vertical resolution.
    pub resolution: Resolution,
    /// Compression of the data.
    pub compression: Compression,
    /// Length of the data in bytes.
    pub data_len: u64,
}

impl PageInfo {
    /// Checks that `len` bytes arrived for this header.
    pub fn check_len(&self, len: usize) -> Result<(), CodecError> {
        if len as u64 == self.data_len {
            return Ok(());
        }
        Err(CodecError::BadData {
            compression: self.compression,
            reason: format!("header announced {} bytes but {len} arrived", self.data_len),
        })
    }
}

/// How to turn images into fax pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeOptions {
    /// Vertical resolution (default fine).
    pub resolution: Resolution,
    /// Compression (default G4).
    pub compression: Compression,
    /// Paper, which sets the width (default A4).
    pub paper: Paper,
    /// Floyd-Steinberg dithering for photographs instead of a plain threshold
    /// for text (default off).
    pub dither: bool,
    /// Leave landscape PDF pages as they are (scaled to the paper width)
    /// instead of turning them a quarter turn to portrait (default off).
    #[serde(default)]
    pub keep_orientation: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            resolution: Resolution::Fine,
            compression: Compression::G4,
            paper: Paper::A4,
            dither: false,
            keep_orientation: false,
        }
    }
}

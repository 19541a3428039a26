//! The one error type of the fax page codec.
//!
//! Messages are lowercase, name the file (and the page, counted from 1) or
//! the value at fault, and say what to do about it.

use std::path::PathBuf;

use super::page::Compression;

/// Largest width or height, in pixels, of an input page we agree to read.
///
/// A fax page is at most 2432 pixels wide and rarely longer than a few
/// thousand rows; anything past this is a mistake or a decompression bomb.
pub const MAX_SIDE: u32 = 20_000;

/// Largest number of pixels of an input page (100 million, about 100 MB as
/// grey levels), for the same reason as [`MAX_SIDE`].
pub const MAX_PIXELS: u64 = 100_000_000;

/// Everything that can go wrong while reading, converting, encoding,
/// decoding or storing fax pages.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// No input file was given at all.
    #[error("no input files given; name at least one PDF, image or text file to send")]
    NoInput,

    /// An input file could not be opened or read.
    // The io::Error is part of the message, not a `source`, so that error
    // chains (anyhow's `{:#}`) do not print it twice.
    #[error("cannot read {}: {error}; check that the file exists and is readable", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },

    /// An input file has no bytes at all.
    #[error("{} is empty (0 bytes); give a PDF, an image (PNG, JPEG, GIF, BMP, PNM, TIFF) or a UTF-8 text file", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },

    /// An input file is not a document we can read.
    #[error("{} is not a readable image ({reason}); give a PDF, an image (PNG, JPEG, GIF, BMP, PNM, TIFF) or a UTF-8 text file", path.display())]
    NotAnImage {
        /// The file.
        path: PathBuf,
        /// What the image decoder said.
        reason: String,
    },

    /// A PDF that needs a password to open.
    #[error(
        "{} is a password-protected PDF; faxmesh cannot open it. Remove the password \
         (for example `qpdf --decrypt --password=PASSWORD in.pdf out.pdf`) and send the result",
        path.display()
    )]
    PdfPassword {
        /// The file.
        path: PathBuf,
    },

    /// A PDF that cannot be read at all.
    #[error("{} is not a readable PDF: {reason}", path.display())]
    BadPdf {
        /// The file.
        path: PathBuf,
        /// What is wrong, with a hint.
        reason: String,
    },

    /// A text file that is not UTF-8.
    #[error(
        "{} is not UTF-8 text (invalid byte at offset {offset}); convert it first, \
         for example `iconv -f LATIN1 -t UTF-8 {name} > {name}.utf8.txt`",
        path.display(),
        name = path.display()
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where the first invalid byte is.
        offset: usize,
    },

    /// An input page is damaged or uses a TIFF layout we cannot read.
    #[error("{} page {page}: {reason}", path.display())]
    BadPage {
        /// The file.
        path: PathBuf,
        /// The page, counted from 1.
        page: usize,
        /// What is wrong with it, with a hint.
        reason: String,
    },

    /// An input page is larger than the limits [`MAX_SIDE`] and [`MAX_PIXELS`].
    #[error(
        "{} page {page} is {width}x{height} pixels, over the limit of {MAX_SIDE} pixels per side \
         and {MAX_PIXELS} pixels in all; scale the image down first",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The page, counted from 1.
        page: usize,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },

    /// An input file holds no page at all.
    #[error("{} holds no pages; give a file with at least one image", path.display())]
    NoPages {
        /// The file.
        path: PathBuf,
    },

    /// Encoded page data did not decode.
    #[error("page data is not valid {compression} ({reason}); the sender produced a damaged page")]
    BadData {
        /// The compression the data claimed to be.
        compression: Compression,
        /// What the decoder said.
        reason: String,
    },

    /// A page's geometry cannot be encoded or stored.
    #[error("invalid page geometry {width}x{height}: {reason}")]
    BadGeometry {
        /// Width in pixels.
        width: u32,
        /// Height in rows.
        height: u32,
        /// Why it is refused.
        reason: String,
    },

    /// A compression, resolution or paper name was not recognised.
    #[error("unknown {kind} '{value}'; use one of {expected}")]
    UnknownName {
        /// What was being named ("compression", "resolution", "paper").
        kind: &'static str,
        /// The name given.
        value: String,
        /// The accepted names.
        expected: &'static str,
    },

    /// The callee's capabilities leave nothing to encode a page with.
    #[error("the callee supports no {what}; the page cannot be converted to fit")]
    NoCommonCapability {
        /// Which list was empty ("compression", "resolution", "width").
        what: &'static str,
    },

    /// Writing a TIFF file failed.
    #[error("cannot write the fax file: {0}; check free space and permissions")]
    Write(std::io::Error),

    /// A stored fax file could not be read back.
    #[error("{} is not a readable fax file ({reason})", path.display())]
    BadFaxFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The encoder itself failed (should not happen; a bug).
    #[error("the {compression} encoder failed: {reason}; this is a bug in faxmesh")]
    Encoder {
        /// The encoder.
        compression: Compression,
        /// What went wrong.
        reason: String,
    },
}

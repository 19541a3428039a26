//! The fax page codec: images in, TIFF Class F pages out, and back.
//!
//! - [`page`]: the wire vocabulary ([`Compression`], [`Resolution`],
//!   [`Paper`], [`EncodedPage`], [`PageInfo`], [`EncodeOptions`]).
//! - [`bitmap`]: the page model, a bilevel [`Bitmap`] with its resolution.
//! - [`encode()`](encode::encode) picks the encoder: [`g3`] (MH and MR) or
//!   [`g4`], all by hand and byte-identical to libtiff.
//! - [`decode()`](decode::decode): MH, MR and G4 back to a bitmap
//!   (`hayro-ccitt`).
//! - [`tiff_read`]: TIFF pages in, fax (CCITT) or not, with `tiff_samples`
//!   for every sample layout (bit depths, planes, tiles, palettes, YCbCr);
//!   [`tiff_check`]: the directory walk that refuses lying value counts
//!   first; `color`: colour to luminance with Pillow's arithmetic.
//! - [`tiff_write`]: TIFF Class F files, written a page at a time.
//! - [`input`]: reading image files into source pages (JPEG EXIF
//!   orientation applied); [`pdf`]: PDF pages rendered by `hayro`
//!   (fonts a PDF does not embed from the system's URW fonts: `pdf_fonts`);
//!   [`text`]: text files laid out in pages; [`convert`]: scaling and
//!   thresholding source pages to fax geometry.
//! - [`font`]: the bundled font we draw with; [`cover`]: the cover page;
//!   [`tagline`]: the sender / date / "page N of M" line on every page.
//! - [`document`]: all of it for a list of files, cover page first, on all
//!   cores, in order.
//! - [`fit`]: [`Capabilities`] of a callee and [`fit_page`] to meet them.
//! - [`error`]: the error type, [`CodecError`].

mod bit_writer;
pub mod bitmap;
mod codes;
mod color;
pub mod convert;
pub mod cover;
pub mod decode;
pub mod document;
pub mod encode;
pub mod error;
pub mod fit;
pub mod font;
pub mod g3;
pub mod g4;
pub mod input;
pub mod page;
pub mod pdf;
mod pdf_fonts;
pub mod tagline;
pub mod text;
pub mod tiff_check;
pub mod tiff_read;
mod tiff_samples;
pub mod tiff_write;

pub use bitmap::Bitmap;
pub use decode::decode;
pub use document::{DocumentOptions, load_document, load_document_with_progress};
pub use encode::encode;
pub use error::CodecError;
pub use fit::{Capabilities, fit_page};
pub use page::{Compression, EncodeOptions, EncodedPage, PageInfo, Paper, Resolution};
pub use tiff_read::read_pages;
pub use tiff_write::{TiffFWriter, write_document};

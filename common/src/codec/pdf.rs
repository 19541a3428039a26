//! PDF input: every page rendered by `hayro` (pure Rust, no poppler or
//! ghostscript at run time) straight at fax geometry.
//!
//! A page is rendered once, at its final size: the width of the paper at
//! 204 dpi across and the fax line density down (non-square pixels, so no
//! resampling after rendering), after its CropBox and /Rotate are applied.
//! A landscape page is turned a quarter turn counter-clockwise (its top
//! edge along the paper's left edge, as printers lay out landscape pages)
//! so it fills the paper width; `keep_orientation` leaves it as it is.
//!
//! hayro's render cache holds `Rc`s, so each rendering thread keeps its own
//! ([`PageRenderer`]); the parsed document is shared.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_interpret::util::TransformExt;
use hayro::hayro_syntax::page::Page;
use hayro::hayro_syntax::{DecryptionError, LoadPdfError, Pdf};
use hayro::kurbo::Affine;
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::vello_cpu::{Pixmap, RasterizerSettings, RenderContext, Resources, TargetInit};
use hayro::{RenderCache, RenderSettings, render_into};
use image::GrayImage;

use super::bitmap::Bitmap;
use super::color::luma;
use super::convert::THRESHOLD;
use super::error::{CodecError, MAX_SIDE};
use super::input::{SourceImage, SourcePage};
use super::page::{EncodeOptions, FAX_X_DPI};

/// Whether the bytes are a PDF file: `%PDF-` within the first kilobyte, as
/// PDF readers accept it (some producers put junk before the header).
pub(crate) fn is_pdf(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(1024)]
        .windows(5)
        .any(|w| w == b"%PDF-")
}

/// A parsed PDF file.
pub(crate) struct PdfDocument {
    path: PathBuf,
    pdf: Pdf,
}

impl PdfDocument {
    /// Parses the PDF in `bytes`; an encrypted one must open with the empty
    /// password (the common "no copying" protection), else it is refused.
    pub(crate) fn open(path: &Path, bytes: Vec<u8>) -> Result<PdfDocument, CodecError> {
        let refuse = |reason: String| CodecError::BadPdf {
            path: path.to_owned(),
            reason,
        };
        let pdf = catch_unwind(|| Pdf::new(bytes))
            .map_err(|_| refuse("the PDF reader failed on it; the file is damaged".into()))?
            .map_err(|e| match e {
                LoadPdfError::Decryption(DecryptionError::PasswordProtected) => {
                    CodecError::PdfPassword {
                        path: path.to_owned(),
                    }
                }
                LoadPdfError::Decryption(DecryptionError::UnsupportedAlgorithm) => {
                    refuse("it is encrypted with a method faxmesh cannot read; print it to a new PDF first".into())
                }
                LoadPdfError::Decryption(e) => refuse(format!(
                    "its encryption is damaged ({e:?}); print it to a new PDF first"
                )),
                LoadPdfError::Invalid => {
                    refuse("it is damaged or not a PDF (no readable page tree)".into())
                }
            })?;
        Ok(PdfDocument {
            path: path.to_owned(),
            pdf,
        })
    }

    /// The file it came from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// How many pages the document has.
    pub(crate) fn page_count(&self) -> usize {
        self.pdf.pages().len()
    }

    /// Renders page `index` (from 0) as a source page already at fax
    /// geometry for `opts`: the conversion after it only thresholds or
    /// dithers.
    pub(crate) fn render<'a>(
        &'a self,
        renderer: &mut PageRenderer<'a>,
        index: usize,
        opts: &EncodeOptions,
    ) -> Result<SourcePage, CodecError> {
        let bad = |reason: String| CodecError::BadPage {
            path: self.path.clone(),
            page: index + 1,
            reason,
        };
        let page = self
            .pdf
            .pages()
            .get(index)
            .ok_or_else(|| bad("no such page".into()))?;
        let (w, h) = page.render_dimensions();
        let (w, h) = (f64::from(w), f64::from(h));
        if !(w >= 1.0 && h >= 1.0) {
            return Err(bad(format!(
                "the page is {w}x{h} points; the PDF is damaged"
            )));
        }
        let turn = h < w && !opts.keep_orientation;
        let (page_w, page_h) = if turn { (h, w) } else { (w, h) };
        let width = opts.paper.width_px();
        let lines_per_inch = opts.resolution.lines_per_inch();
        let sx = f64::from(width) / page_w;
        let sy = sx * f64::from(lines_per_inch) / f64::from(FAX_X_DPI);
        let rows = (page_h * sy).round();
        if rows > f64::from(MAX_SIDE) {
            return Err(bad(format!(
                "would be {rows} rows long at {width} pixels wide, over the limit of {MAX_SIDE} \
                 rows; the page is {page_w:.0}x{page_h:.0} points"
            )));
        }
        let rows = (rows as u32).max(1);
        // Pixel space of the page as hayro lays it (CropBox and /Rotate
        // applied, y down), then our quarter turn, then fax geometry.
        let quarter_turn = if turn {
            // (x, y) -> (y, w - x): the page's top edge along the left edge.
            Affine::new([0.0, -1.0, 1.0, 0.0, 0.0, w])
        } else {
            Affine::IDENTITY
        };
        let transform = Affine::scale_non_uniform(sx, sy)
            * quarter_turn
            * page.initial_transform(true).to_kurbo();

        // hayro is young and may panic on a malformed page: that page fails
        // with a message, the process does not.
        catch_unwind(AssertUnwindSafe(|| {
            renderer.draw(page, transform, width, rows)
        }))
        .map_err(|_| bad("the PDF reader failed on this page; the page is damaged".into()))?;
        let rgba = renderer.pixmap.data_as_u8_slice();
        let dpi = Some((f64::from(FAX_X_DPI), f64::from(lines_per_inch)));
        if !opts.dither {
            // Straight to bilevel at fax geometry: the conversion after it
            // has nothing left to do, and no page-sized grey image is made.
            let mut bitmap = Bitmap::new(width, rows, FAX_X_DPI, lines_per_inch);
            for (y, row) in rgba.chunks_exact(width as usize * 4).enumerate() {
                threshold_row(row, bitmap.row_mut(y as u32));
            }
            return Ok(SourcePage {
                image: SourceImage::Bilevel(bitmap),
                dpi,
            });
        }
        let luma = rgba
            .chunks_exact(4)
            .map(|p| luma(p[0], p[1], p[2]))
            .collect();
        let image = GrayImage::from_raw(width, rows, luma)
            .ok_or_else(|| bad("rendering gave a pixel buffer of the wrong size".into()))?;
        Ok(SourcePage {
            image: SourceImage::Gray(image),
            dpi,
        })
    }
}

// Over an opaque white background every rendered pixel is opaque, so the
// premultiplied channels are the colour itself.

/// One row of RGBA pixels to packed bilevel pixels, black where the
/// luminance is below [`THRESHOLD`] (the very rule of
/// [`convert`](super::convert)). Eight white pixels, most of a page, cost
/// one comparison.
fn threshold_row(rgba: &[u8], out: &mut [u8]) {
    for (byte, pixels) in out.iter_mut().zip(rgba.chunks(32)) {
        // Four words at once (a byte at a time this test took a third of
        // all the time to fax a PDF).
        let word = |at: usize| {
            pixels
                .get(at..at + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .map_or(0, u64::from_ne_bytes)
        };
        if word(0) & word(8) & word(16) & word(24) == u64::MAX {
            *byte = 0;
            continue;
        }
        let mut bits = 0;
        for (i, p) in pixels.chunks_exact(4).enumerate() {
            if luma(p[0], p[1], p[2]) < THRESHOLD {
                bits |= 0x80 >> i;
            }
        }
        *byte = bits;
    }
}

/// Renders at most `max_pages` pages of the PDF in `bytes` at standard
/// resolution on A4 and returns each page's size in pixels; `name` only
/// labels errors. For fuzzing and tools: the page cap bounds the work.
pub fn render_pdf_bytes(
    name: &Path,
    bytes: &[u8],
    max_pages: usize,
) -> Result<Vec<(u32, u32)>, CodecError> {
    let document = PdfDocument::open(name, bytes.to_vec())?;
    let opts = EncodeOptions {
        resolution: super::page::Resolution::Standard,
        ..EncodeOptions::default()
    };
    let mut renderer = PageRenderer::new();
    (0..document.page_count().min(max_pages))
        .map(|i| {
            let page = document.render(&mut renderer, i, &opts)?;
            Ok(match page.image {
                SourceImage::Gray(image) => image.dimensions(),
                SourceImage::Bilevel(bitmap) => (bitmap.width(), bitmap.height()),
            })
        })
        .collect()
}

/// What one rendering thread keeps from page to page: hayro's caches
/// (fonts parsed once per document, not per page; they hold `Rc`s, so one
/// per thread) and the render buffers (a page's worth of pixels each:
/// allocated afresh for every page they cost more in page faults than the
/// rendering itself).
pub(crate) struct PageRenderer<'a> {
    cache: RenderCache<'a>,
    interpreter: InterpreterSettings,
    render: RenderSettings,
    ctx: RenderContext,
    pixmap: Pixmap,
    resources: Resources,
}

impl<'a> PageRenderer<'a> {
    /// A renderer with empty caches.
    pub(crate) fn new() -> Self {
        PageRenderer {
            cache: RenderCache::new(),
            interpreter: InterpreterSettings {
                font_resolver: std::sync::Arc::new(super::pdf_fonts::resolve),
                ..InterpreterSettings::default()
            },
            render: RenderSettings::default(),
            ctx: RenderContext::new(1, 1),
            pixmap: Pixmap::new(1, 1),
            resources: Resources::default(),
        }
    }

    /// Renders `page` through `transform` into `self.pixmap`, `width` by
    /// `rows` pixels on white.
    fn draw(&mut self, page: &'a Page<'a>, transform: Affine, width: u32, rows: u32) {
        // u16 by construction: width <= 2432 and rows <= MAX_SIDE.
        let (w, h) = (width as u16, rows as u16);
        self.ctx.reset_and_resize(w, h);
        render_into(
            page,
            &self.cache,
            &self.interpreter,
            &self.render,
            &mut self.ctx,
            transform,
        );
        self.ctx.flush();
        self.pixmap.resize(w, h);
        self.ctx.render_with(
            &mut self.pixmap,
            &mut self.resources,
            RasterizerSettings {
                target_init: TargetInit::Clear(WHITE),
                ..Default::default()
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholding_a_row_matches_the_grey_rule() {
        // 10 pixels: white, black, mid greys either side of the threshold,
        // pure colours; the last byte holds two pixels and padding.
        let colours: [[u8; 3]; 10] = [
            [255, 255, 255],
            [0, 0, 0],
            [128, 128, 128],
            [127, 127, 127],
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [200, 100, 50],
            [255, 255, 255],
            [10, 10, 10],
        ];
        let rgba: Vec<u8> = colours
            .iter()
            .flat_map(|c| [c[0], c[1], c[2], 255])
            .collect();
        let mut out = [0xffu8; 2];
        threshold_row(&rgba, &mut out);
        for (i, c) in colours.iter().enumerate() {
            let black = out[i / 8] & (0x80 >> (i % 8)) != 0;
            assert_eq!(
                black,
                luma(c[0], c[1], c[2]) < THRESHOLD,
                "pixel {i}: {c:?}"
            );
        }
        assert_eq!(out[1] & 0x3f, 0, "no ink past the row");
    }

    #[test]
    fn header_within_the_first_kilobyte() {
        assert!(is_pdf(b"%PDF-1.7\n"));
        let mut junk = vec![b' '; 1000];
        junk.extend_from_slice(b"%PDF-1.4");
        assert!(is_pdf(&junk));
        junk.splice(0..0, vec![b' '; 100]);
        assert!(!is_pdf(&junk));
        assert!(!is_pdf(b"II*\0"));
    }
}

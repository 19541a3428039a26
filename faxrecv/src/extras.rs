//! Received faxes made easy to look at: each page as a PNG (`--png`) and the
//! whole fax as a PDF (`--pdf`), written once the TIFF is complete.
//!
//! The PDF passes the Group 4 data through untouched, as libtiff's tiff2pdf
//! does: each page is an image XObject with `/Filter /CCITTFaxDecode` and
//! `/DecodeParms << /K -1 /Columns W /Rows H >>` (BlackIs1 false, the
//! default: decoded black runs are 0, black in DeviceGray). MH and MR pages
//! are transcoded to Group 4 first. The writer is hand-written: a PDF of
//! image pages is a few objects and a cross-reference table, and no
//! well-kept crate embeds CCITT data without decoding it first.

use std::io::Write;
use std::path::{Path, PathBuf};

use common::codec::{Bitmap, CodecError, Compression, EncodedPage, decode, encode};

/// Horizontal resolution of every fax page.
const X_DPI: u32 = 204;

/// Which extra files to write beside each fax.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    pub png: bool,
    pub pdf: bool,
}

impl Extras {
    pub fn any(self) -> bool {
        self.png || self.pdf
    }
}

/// Writes the extras for one fax into `dir` (`<call id>-pN.png`,
/// `<call id>.pdf`), each through a temporary file and a rename. Returns the
/// files written.
pub fn write(
    extras: Extras,
    dir: &Path,
    call_id: &str,
    pages: &[EncodedPage],
) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    if extras.png {
        for (i, page) in pages.iter().enumerate() {
            let bitmap = decode(page).map_err(std::io::Error::other)?;
            let path = dir.join(format!("{call_id}-p{}.png", i + 1));
            write_atomically(&path, &png(&bitmap)?)?;
            written.push(path);
        }
    }
    if extras.pdf {
        let path = dir.join(format!("{call_id}.pdf"));
        write_atomically(&path, &pdf(pages).map_err(std::io::Error::other)?)?;
        written.push(path);
    }
    Ok(written)
}

/// A page as a 1-bit grayscale PNG with its resolution (pHYs).
pub fn png(bitmap: &Bitmap) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, bitmap.width(), bitmap.height());
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let per_metre = |dpi: u32| (f64::from(dpi) / 0.0254).round() as u32;
    encoder.set_pixel_dims(Some(png::PixelDimensions {
        xppu: per_metre(bitmap.x_dpi()),
        yppu: per_metre(bitmap.y_dpi()),
        unit: png::Unit::Meter,
    }));
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    // The bitmap's rows are packed MSB first with 1 = black; a grayscale PNG
    // has 0 = black, so every byte is inverted.
    let row_bytes = bitmap.width().div_ceil(8) as usize;
    let mut data = Vec::with_capacity(row_bytes * bitmap.height() as usize);
    for y in 0..bitmap.height() {
        data.extend(bitmap.row(y)[..row_bytes].iter().map(|b| !b));
    }
    writer
        .write_image_data(&data)
        .map_err(std::io::Error::other)?;
    writer.finish().map_err(std::io::Error::other)?;
    Ok(out)
}

/// The fax as a PDF: one page per fax page, at its real size.
pub fn pdf(pages: &[EncodedPage]) -> Result<Vec<u8>, CodecError> {
    let mut pdf = PdfWriter::default();
    // Objects 1 and 2 are the catalog and the page tree; each page then
    // takes three: the page, its content stream, its image.
    let page_ids: Vec<usize> = (0..pages.len()).map(|i| 3 + 3 * i).collect();
    pdf.object(1, b"<< /Type /Catalog /Pages 2 0 R >>");
    let kids: Vec<String> = page_ids.iter().map(|id| format!("{id} 0 R")).collect();
    pdf.object(
        2,
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        )
        .as_bytes(),
    );
    for (page, id) in pages.iter().zip(page_ids) {
        let g4;
        let data = match page.compression {
            Compression::G4 => &page.data,
            Compression::Mh | Compression::Mr => {
                g4 = encode(&decode(page)?, Compression::G4)?;
                &g4.data
            }
        };
        let lpi = page.resolution.lines_per_inch();
        // Rounded down to the 4 decimals written, so a renderer at the
        // page's own resolution gets exactly width x height pixels, not one
        // more row or column of rounding.
        let floor4 = |v: f64| (v * 10_000.0).floor() / 10_000.0;
        let w_pt = floor4(f64::from(page.width) * 72.0 / f64::from(X_DPI));
        let h_pt = floor4(f64::from(page.height) * 72.0 / f64::from(lpi));
        pdf.object(
            id,
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w_pt:.4} {h_pt:.4}] \
                 /Resources << /XObject << /Im0 {} 0 R >> >> /Contents {} 0 R >>",
                id + 2,
                id + 1
            )
            .as_bytes(),
        );
        let content = format!("q {w_pt:.4} 0 0 {h_pt:.4} 0 0 cm /Im0 Do Q\n");
        pdf.stream(id + 1, "", content.as_bytes());
        let dict = format!(
            "/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray \
             /BitsPerComponent 1 /Filter /CCITTFaxDecode \
             /DecodeParms << /K -1 /Columns {w} /Rows {h} >>",
            w = page.width,
            h = page.height
        );
        pdf.stream(id + 2, &dict, data);
    }
    Ok(pdf.finish(1))
}

/// Writes numbered objects and the cross-reference table that finds them.
#[derive(Default)]
struct PdfWriter {
    out: Vec<u8>,
    /// Byte offset of each object, by number - 1.
    offsets: Vec<usize>,
}

impl PdfWriter {
    fn start(&mut self, id: usize) {
        if self.out.is_empty() {
            // The binary comment tells transfer tools the file is binary.
            self.out.extend_from_slice(b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
        }
        if self.offsets.len() < id {
            self.offsets.resize(id, 0);
        }
        self.offsets[id - 1] = self.out.len();
        let _ = writeln!(self.out, "{id} 0 obj");
    }

    fn object(&mut self, id: usize, body: &[u8]) {
        self.start(id);
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(b"\nendobj\n");
    }

    fn stream(&mut self, id: usize, dict: &str, data: &[u8]) {
        self.start(id);
        let _ = write!(self.out, "<< {dict} /Length {} >>\nstream\n", data.len());
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\nendstream\nendobj\n");
    }

    fn finish(mut self, root: usize) -> Vec<u8> {
        let xref = self.out.len();
        let _ = write!(
            self.out,
            "xref\n0 {}\n0000000000 65535 f \n",
            self.offsets.len() + 1
        );
        for off in &self.offsets {
            // Each entry is exactly 20 bytes, end of line included.
            let _ = writeln!(self.out, "{off:010} 00000 n ");
        }
        let _ = write!(
            self.out,
            "trailer\n<< /Size {} /Root {root} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            self.offsets.len() + 1
        );
        self.out
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

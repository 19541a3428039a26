//! Text drawn by us onto fax pages (text files, cover pages, tag lines), in
//! the bundled DejaVu Sans Mono (`common/fonts/`, Bitstream Vera licence).
//!
//! Fax pixels are not square (204 dpi across, 98/196/391 lines down), so a
//! glyph is scaled on each axis by the page's own resolution: a 10 pt
//! letter is as tall on paper at standard as at superfine. Coverage is
//! thresholded at one half, which keeps strokes crisp at fax resolutions
//! (a 10 pt stem is about 3 pixels wide at 204 dpi).

use std::sync::LazyLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

use super::bitmap::Bitmap;

/// The two weights we draw with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// Body text.
    Regular,
    /// Headings and labels.
    Bold,
}

static REGULAR: LazyLock<FontRef<'static>> = LazyLock::new(|| {
    // The bytes are compiled in and `bundled_fonts_parse` proves they parse.
    FontRef::try_from_slice(include_bytes!("../../fonts/DejaVuSansMono.ttf"))
        .expect("the bundled regular font parses")
});

static BOLD: LazyLock<FontRef<'static>> = LazyLock::new(|| {
    // As above.
    FontRef::try_from_slice(include_bytes!("../../fonts/DejaVuSansMono-Bold.ttf"))
        .expect("the bundled bold font parses")
});

fn font(face: Face) -> &'static FontRef<'static> {
    match face {
        Face::Regular => &REGULAR,
        Face::Bold => &BOLD,
    }
}

/// A face at a size in points, laid on a page of some resolution.
#[derive(Clone, Copy, Debug)]
pub struct Pen {
    face: Face,
    scale: PxScale,
}

impl Pen {
    /// `face` at `size_pt` points for a page of `x_dpi` by `y_dpi`.
    pub fn new(face: Face, size_pt: f32, x_dpi: u32, y_dpi: u32) -> Pen {
        let f = font(face);
        // ab_glyph scales so that ascent - descent spans `scale` pixels; we
        // want the em square to span size_pt points on each axis.
        let em_to_height = f.height_unscaled() / f.units_per_em().unwrap_or(2048.0);
        let px = |dpi: u32| size_pt / 72.0 * dpi as f32 * em_to_height;
        Pen {
            face,
            scale: PxScale {
                x: px(x_dpi),
                y: px(y_dpi),
            },
        }
    }

    /// The same pen for `page`'s resolution.
    pub fn for_page(face: Face, size_pt: f32, page: &Bitmap) -> Pen {
        Pen::new(face, size_pt, page.x_dpi(), page.y_dpi())
    }

    /// Pixels from the baseline up to the top of the tallest letters.
    pub fn ascent(&self) -> f32 {
        font(self.face).as_scaled(self.scale).ascent()
    }

    /// Pixels from the baseline down to the bottom of descenders.
    pub fn descent(&self) -> f32 {
        -font(self.face).as_scaled(self.scale).descent()
    }

    /// Rows from one baseline to the next.
    pub fn line_height(&self) -> f32 {
        let f = font(self.face).as_scaled(self.scale);
        f.height() + f.line_gap()
    }

    /// The width of one character cell (the font is monospaced).
    pub fn advance(&self) -> f32 {
        let f = font(self.face).as_scaled(self.scale);
        f.h_advance(f.glyph_id('M'))
    }

    /// How many pixels `text` takes across.
    pub fn width(&self, text: &str) -> f32 {
        text.chars().count() as f32 * self.advance()
    }

    /// Draws `text` on `page`, starting at `x` pixels with its baseline on
    /// row `baseline`; returns where the next character would go. What falls
    /// outside the page is clipped.
    pub fn draw(&self, page: &mut Bitmap, x: f32, baseline: f32, text: &str) -> f32 {
        let f = font(self.face);
        let scaled = f.as_scaled(self.scale);
        let (width, height) = (page.width() as i64, page.height() as i64);
        let mut caret = x;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            let glyph = id.with_scale_and_position(self.scale, ab_glyph::point(caret, baseline));
            caret += scaled.h_advance(id);
            let Some(outline) = f.outline_glyph(glyph) else {
                continue; // a space, or a glyph with no ink
            };
            let bounds = outline.px_bounds();
            let (left, top) = (bounds.min.x as i64, bounds.min.y as i64);
            outline.draw(|gx, gy, coverage| {
                let (px, py) = (left + i64::from(gx), top + i64::from(gy));
                if coverage >= 0.5 && (0..width).contains(&px) && (0..height).contains(&py) {
                    page.set(px as u32, py as u32, true);
                }
            });
        }
        caret
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Resolution;

    #[test]
    fn bundled_fonts_parse() {
        assert!(REGULAR.glyph_count() > 1000);
        assert!(BOLD.glyph_count() > 1000);
    }

    #[test]
    fn letters_are_as_tall_on_paper_at_every_resolution() {
        let ink_rows = |resolution: Resolution| {
            let mut page = Bitmap::new_fax(400, 200, resolution);
            let pen = Pen::for_page(Face::Regular, 20.0, &page);
            pen.draw(&mut page, 10.0, 150.0, "H");
            let rows = (0..page.height())
                .filter(|&y| (0..page.width()).any(|x| page.get(x, y)))
                .count();
            rows as f64 / f64::from(resolution.lines_per_inch())
        };
        let standard = ink_rows(Resolution::Standard);
        let fine = ink_rows(Resolution::Fine);
        // A capital H of 20 pt is about 0.2 in tall.
        assert!((0.17..0.23).contains(&fine), "{fine}");
        assert!((standard - fine).abs() < 0.02, "{standard} vs {fine}");
    }

    #[test]
    fn monospaced_cells_and_clipping() {
        let mut page = Bitmap::new_fax(100, 40, Resolution::Fine);
        let pen = Pen::for_page(Face::Bold, 10.0, &page);
        assert!((pen.width("abcd") - 4.0 * pen.advance()).abs() < 1e-3);
        // Far past the right edge and above the top: nothing drawn, no panic.
        pen.draw(&mut page, 90.0, 5.0, "WWWWWWWW");
        pen.draw(&mut page, -500.0, 30.0, "x");
        assert!(page.count_black() > 0);
    }
}

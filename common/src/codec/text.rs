//! Text files as fax pages: UTF-8 text laid out in the bundled monospaced
//! font, 10 points at 6 lines per inch (the typewriter pitch), with
//! half-inch margins, on the chosen paper's length.
//!
//! Nothing is dropped: long lines wrap at the right margin, tabs expand to
//! every 8th column, a form feed starts a new page, and other control
//! characters (but for line ends) are left out.

use std::path::Path;

use super::bitmap::Bitmap;
use super::error::CodecError;
use super::font::{Face, Pen};
use super::page::{EncodeOptions, FAX_X_DPI, Paper};

/// Type size of text files, in points.
const SIZE_PT: f32 = 10.0;
/// Lines per inch: 12 points from baseline to baseline.
const LINES_PER_INCH: f64 = 6.0;
/// Margin on every side, in inches.
const MARGIN_IN: f64 = 0.5;
/// Tab stops every this many columns.
const TAB: usize = 8;

/// The length of a sheet of `paper`, in inches.
pub fn paper_length_inches(paper: Paper) -> f64 {
    match paper {
        Paper::A4 => 297.0 / 25.4,
        Paper::Letter => 11.0,
        Paper::B4 => 364.0 / 25.4,
        Paper::A3 => 420.0 / 25.4,
    }
}

/// The text of a file, decoded: UTF-8, with a byte-order mark dropped.
pub(crate) fn decode_text(path: &Path, bytes: &[u8]) -> Result<String, CodecError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(e) => Err(CodecError::NotUtf8 {
            path: path.to_owned(),
            offset: e.valid_up_to(),
        }),
    }
}

/// Whether `bytes` look like text rather than some binary format: valid
/// UTF-8 (after an optional byte-order mark) with no NUL and few control
/// characters besides line ends, tabs and form feeds.
pub(crate) fn looks_like_text(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let odd = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
        .count();
    !text.contains('\0') && odd * 100 <= text.len()
}

/// The lines of each page of `text` for `opts`' paper: wrapped, tabs
/// expanded. Empty when the text holds nothing but white space.
pub(crate) fn paginate(text: &str, opts: &EncodeOptions) -> Vec<Vec<String>> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let (columns, rows) = page_capacity(opts);
    let mut pages = Vec::new();
    let mut page: Vec<String> = Vec::new();
    for sheet in text.split('\x0c') {
        for line in sheet.lines() {
            for piece in wrap(&expand(line), columns) {
                if page.len() == rows {
                    pages.push(std::mem::take(&mut page));
                }
                page.push(piece);
            }
        }
        // A form feed ends the page even when it is not full.
        pages.push(std::mem::take(&mut page));
    }
    // Trailing pages with nothing on them (a final form feed, trailing
    // blank lines) are not sent.
    while pages
        .last()
        .is_some_and(|p| p.iter().all(|l| l.trim().is_empty()))
    {
        pages.pop();
    }
    pages
}

/// Columns and lines that fit on one page.
fn page_capacity(opts: &EncodeOptions) -> (usize, usize) {
    let pen = Pen::new(Face::Regular, SIZE_PT, FAX_X_DPI, FAX_X_DPI);
    let usable_px = f64::from(opts.paper.width_px()) - 2.0 * MARGIN_IN * f64::from(FAX_X_DPI);
    let columns = (usable_px / f64::from(pen.advance())).floor() as usize;
    let usable_in = paper_length_inches(opts.paper) - 2.0 * MARGIN_IN;
    let rows = (usable_in * LINES_PER_INCH).floor() as usize;
    (columns.max(1), rows.max(1))
}

/// Tabs to spaces up to the next stop; other control characters dropped.
fn expand(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut column = 0;
    for c in line.chars() {
        match c {
            '\t' => {
                let next = (column / TAB + 1) * TAB;
                out.extend(std::iter::repeat_n(' ', next - column));
                column = next;
            }
            c if c.is_control() => {}
            c => {
                out.push(c);
                column += 1;
            }
        }
    }
    out
}

/// `line` cut into pieces of at most `columns` characters (at least one
/// piece, so blank lines stay).
fn wrap(line: &str, columns: usize) -> Vec<String> {
    let chars: Vec<char> = line.trim_end().chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(columns)
        .map(|piece| piece.iter().collect())
        .collect()
}

/// Draws one page of lines at fax geometry for `opts`.
pub(crate) fn render_page(lines: &[String], opts: &EncodeOptions) -> Bitmap {
    let lines_per_inch = opts.resolution.lines_per_inch();
    let height = (paper_length_inches(opts.paper) * f64::from(lines_per_inch)).round() as u32;
    let mut page = Bitmap::new(opts.paper.width_px(), height, FAX_X_DPI, lines_per_inch);
    let pen = Pen::for_page(Face::Regular, SIZE_PT, &page);
    let left = (MARGIN_IN * f64::from(FAX_X_DPI)) as f32;
    let pitch = f64::from(lines_per_inch) / LINES_PER_INCH;
    let top = MARGIN_IN * f64::from(lines_per_inch);
    for (i, line) in lines.iter().enumerate() {
        let baseline = top + pitch * i as f64 + f64::from(pen.ascent());
        pen.draw(&mut page, left, baseline as f32, line);
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Resolution;

    #[test]
    fn a4_holds_64_lines_of_89_columns() {
        assert_eq!(page_capacity(&EncodeOptions::default()), (89, 64));
        let letter = EncodeOptions {
            paper: Paper::Letter,
            ..EncodeOptions::default()
        };
        assert_eq!(page_capacity(&letter).1, 60);
    }

    #[test]
    fn long_lines_wrap_and_nothing_is_lost() {
        let opts = EncodeOptions::default();
        let line = "x".repeat(200);
        let pages = paginate(&line, &opts);
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].concat(), line);
        assert_eq!(pages[0].len(), 3);
    }

    #[test]
    fn pages_break_when_full_and_at_form_feeds() {
        let opts = EncodeOptions::default();
        let text: String = (0..130).map(|i| format!("line {i}\n")).collect();
        let pages = paginate(&text, &opts);
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [64, 64, 2]);
        let pages = paginate("one\x0ctwo\n\x0c\n\n", &opts);
        assert_eq!(pages, [vec!["one".to_owned()], vec!["two".to_owned()]]);
        assert!(paginate(" \n\t\n", &opts).is_empty());
    }

    #[test]
    fn tabs_expand_to_stops_and_controls_go() {
        assert_eq!(expand("a\tb"), "a       b");
        assert_eq!(expand("abcdefgh\tx"), "abcdefgh        x");
        assert_eq!(expand("bell\x07!"), "bell!");
    }

    #[test]
    fn text_or_not() {
        assert!(looks_like_text(b"Dear Sir,\r\n\tplease find...\x0c"));
        assert!(looks_like_text("Grüße, 東京\n".as_bytes()));
        assert!(!looks_like_text(b"PK\x03\x04\0\0binary"));
        assert!(!looks_like_text(b"caf\xe9"));
    }

    #[test]
    fn a_page_is_paper_length_and_has_ink_inside_the_margins() {
        let opts = EncodeOptions {
            resolution: Resolution::Standard,
            ..EncodeOptions::default()
        };
        let page = render_page(&["Hello".into()], &opts);
        assert_eq!(page.width(), 1728);
        assert_eq!(page.height(), (297.0 / 25.4 * 98.0_f64).round() as u32);
        let inked: Vec<u32> = (0..page.height())
            .filter(|&y| (0..page.width()).any(|x| page.get(x, y)))
            .collect();
        assert!(!inked.is_empty());
        assert!(inked[0] >= 49, "below the top margin: {inked:?}");
        assert!((0..102).all(|x| (0..page.height()).all(|y| !page.get(x, y))));
    }
}

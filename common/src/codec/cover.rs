//! The cover page: who sends to whom, when, how many pages, a subject and a
//! comment, drawn by us in the bundled font at fax geometry.

use super::bitmap::Bitmap;
use super::font::{Face, Pen};
use super::page::{EncodeOptions, FAX_X_DPI};
use super::tagline::Parties;
use super::text::paper_length_inches;

/// Margin on every side, in inches.
const MARGIN_IN: f64 = 0.75;

/// What a cover page says besides the parties.
#[derive(Clone, Debug, Default)]
pub struct CoverText {
    /// The subject line.
    pub subject: Option<String>,
    /// A comment: free text, wrapped to the page; `\n` starts a new line.
    pub comment: Option<String>,
}

/// A cover page to send first.
#[derive(Clone, Debug)]
pub struct Cover {
    /// Who sends to whom, and when.
    pub parties: Parties,
    /// Subject and comment.
    pub text: CoverText,
}

impl Cover {
    /// Draws the cover page of a fax of `pages` pages (this one included).
    pub fn render(&self, pages: usize, opts: &EncodeOptions) -> Bitmap {
        let lines_per_inch = opts.resolution.lines_per_inch();
        let height = (paper_length_inches(opts.paper) * f64::from(lines_per_inch)).round() as u32;
        let mut page = Bitmap::new(opts.paper.width_px(), height, FAX_X_DPI, lines_per_inch);
        let left = (MARGIN_IN * f64::from(FAX_X_DPI)) as f32;
        let right = page.width() as f32 - left;
        let mut y = (MARGIN_IN * f64::from(lines_per_inch)) as f32;

        let title = Pen::for_page(Face::Bold, 40.0, &page);
        y += title.ascent();
        title.draw(&mut page, left, y, "FAX");
        y += title.descent() + 0.1 * lines_per_inch as f32;
        rule(&mut page, left, right, y, 3);
        y += 0.2 * lines_per_inch as f32;

        let label = Pen::for_page(Face::Bold, 14.0, &page);
        let value = Pen::for_page(Face::Regular, 14.0, &page);
        let value_x = left + label.width("Subject:  ");
        let columns = ((right - value_x) / value.advance()).floor().max(1.0) as usize;
        let p = &self.parties;
        let with_number = |name: &Option<String>, number: Option<&str>| match (name, number) {
            (Some(name), Some(number)) => format!("{name}, fax {number}"),
            (Some(name), None) => name.clone(),
            (None, Some(number)) => format!("fax {number}"),
            (None, None) => String::new(),
        };
        let pages_text = if pages == 1 {
            "1 (this page)".to_owned()
        } else {
            format!("{pages}, this page included")
        };
        let rows = [
            ("To:", with_number(&p.to_name, p.to_number.as_deref())),
            ("From:", with_number(&p.from_name, Some(&p.from_number))),
            ("Date:", p.date()),
            ("Pages:", pages_text),
            ("Subject:", self.text.subject.clone().unwrap_or_default()),
        ];
        for (name, text) in rows {
            y += value.line_height();
            label.draw(&mut page, left, y, name);
            for (i, piece) in wrap_words(&text, columns).iter().enumerate() {
                if i > 0 {
                    y += value.line_height();
                }
                value.draw(&mut page, value_x, y, piece);
            }
        }
        y += value.line_height() * 0.8;
        rule(&mut page, left, right, y, 2);
        y += 0.1 * lines_per_inch as f32;

        if let Some(comment) = &self.text.comment {
            let body = Pen::for_page(Face::Regular, 12.0, &page);
            let columns = ((right - left) / body.advance()).floor().max(1.0) as usize;
            let bottom = page.height() as f32 - (MARGIN_IN * f64::from(lines_per_inch)) as f32;
            for line in comment.lines().flat_map(|l| wrap_words(l, columns)) {
                y += body.line_height();
                if y > bottom {
                    break; // a cover page is one page; the rest would not fit
                }
                body.draw(&mut page, left, y, &line);
            }
        }
        page
    }
}

/// A horizontal rule `thick` points thick from `x0` to `x1` at row `y`.
fn rule(page: &mut Bitmap, x0: f32, x1: f32, y: f32, thick: u32) {
    let rows = (thick * page.y_dpi()).div_ceil(72).max(1);
    page.fill_rect(x0 as u32, y as u32, x1 as u32, y as u32 + rows);
}

/// `text` in lines of at most `columns` characters, broken between words
/// where it can be and inside a word longer than a line.
pub(crate) fn wrap_words(text: &str, columns: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        let used = line.chars().count();
        if used > 0 && used + 1 + word.len() <= columns {
            line.push(' ');
            line.extend(word);
            continue;
        }
        if used > 0 {
            lines.push(std::mem::take(&mut line));
        }
        while word.len() > columns {
            lines.push(word.drain(..columns).collect());
        }
        line.extend(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_wrap_between_words_and_long_ones_split() {
        assert_eq!(wrap_words("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap_words("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap_words("", 4), [""]);
    }

    #[test]
    fn a_cover_page_is_one_full_sheet_with_ink() {
        let cover = Cover {
            parties: Parties {
                from_number: "1001".into(),
                from_name: Some("Front desk".into()),
                to_number: Some("1002".into()),
                to_name: Some("Accounts".into()),
                when: jiff::Timestamp::UNIX_EPOCH.to_zoned_datetime(jiff::tz::TimeZone::UTC),
            },
            text: CoverText {
                subject: Some("Invoice 42".into()),
                comment: Some("Please call back.\n".repeat(200)),
            },
        };
        let opts = EncodeOptions::default();
        let page = cover.render(3, &opts);
        assert_eq!(page.width(), 1728);
        assert_eq!(page.height(), (297.0 / 25.4 * 196.0_f64).round() as u32);
        assert!(page.count_black() > 10_000);
        // The comment stops at the bottom margin.
        let bottom = (0.75 * 196.0) as u32;
        assert!(
            (page.height() - bottom + 2..page.height()).all(|y| (0..1728).all(|x| !page.get(x, y)))
        );
    }
}

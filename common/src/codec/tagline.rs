//! The tag line: a line at the top of every page naming the sender, the date
//! and time with its zone, and "page N of M", as US law requires of fax
//! senders (47 CFR 68.318(d)) and as HylaFAX's TagLineFormat draws it.
//!
//! It is drawn in a band of its own added above the page, never over the
//! page's content: every row of the page comes out as it went in, one band
//! lower.
//!
//! The format is text with fields in braces; `|` splits it into a left, a
//! centre and a right part:
//!
//! | field         | is |
//! |---------------|----|
//! | `{date}`      | date and time with zone, `2026-12-02 14:05 CET` |
//! | `{sender}`    | `NAME (NUMBER)`, or the number alone |
//! | `{name}`      | the sender's name (`--from-name`), or nothing |
//! | `{number}`    | the sender's number |
//! | `{to}`        | the callee's number, or nothing |
//! | `{to_name}`   | the callee's name, or nothing |
//! | `{page}`      | this page's number, from 1 |
//! | `{pages}`     | how many pages the fax has, cover page included |
//!
//! `{{` and `}}` stand for braces.

use super::bitmap::Bitmap;
use super::font::{Face, Pen};
use super::page::FAX_X_DPI;

/// The format used unless `--tagline` says otherwise.
pub const DEFAULT_FORMAT: &str = "{date}|From: {sender}|Page {page} of {pages}";

/// Type size of the tag line, in points.
const SIZE_PT: f32 = 9.0;
/// Height of the band the tag line is drawn in, in inches.
const BAND_IN: f64 = 0.2;
/// Left and right margin of the tag line, in inches.
const SIDE_IN: f64 = 0.25;

/// Who sends a fax to whom, and when: what cover pages and tag lines say.
#[derive(Clone, Debug)]
pub struct Parties {
    /// The sender's number.
    pub from_number: String,
    /// The sender's name, when given.
    pub from_name: Option<String>,
    /// The callee's number, when known.
    pub to_number: Option<String>,
    /// The callee's name, when given.
    pub to_name: Option<String>,
    /// When the fax is sent.
    pub when: jiff::ZonedDateTime,
}

impl Parties {
    /// `NAME (NUMBER)` or the number alone.
    pub fn sender(&self) -> String {
        match &self.from_name {
            Some(name) => format!("{name} ({})", self.from_number),
            None => self.from_number.clone(),
        }
    }

    /// The date and time as tag lines and cover pages print it.
    pub fn date(&self) -> String {
        self.when.strftime("%Y-%m-%d %H:%M %Z").to_string()
    }
}

/// The time to print as "now": the system clock in the local zone, or
/// `SOURCE_DATE_EPOCH` seconds when set (for reproducible output).
pub fn now() -> jiff::ZonedDateTime {
    let zone = jiff::tz::TimeZone::system();
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(
            || jiff::Timestamp::now().to_zoned_datetime(zone.clone()),
            |t| t.to_zoned_datetime(zone.clone()),
        )
}

/// One piece of a parsed format.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
    /// `|`: the next part.
    Split,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Date,
    Sender,
    Name,
    Number,
    To,
    ToName,
    Page,
    Pages,
}

const FIELDS: [(&str, Field); 8] = [
    ("date", Field::Date),
    ("sender", Field::Sender),
    ("name", Field::Name),
    ("number", Field::Number),
    ("to", Field::To),
    ("to_name", Field::ToName),
    ("page", Field::Page),
    ("pages", Field::Pages),
];

/// A checked tag line format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagLineFormat(Vec<Piece>);

impl Default for TagLineFormat {
    fn default() -> Self {
        // The default format is a constant that the tests parse.
        DEFAULT_FORMAT.parse().unwrap_or(TagLineFormat(Vec::new()))
    }
}

impl std::str::FromStr for TagLineFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let names = || {
            FIELDS
                .iter()
                .map(|(n, _)| format!("{{{n}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars().peekable();
        let mut parts = 1;
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    let field = FIELDS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, f)| *f)
                        .ok_or_else(|| {
                            format!(
                                "invalid tag line format '{s}': unknown field {{{name}}}; use {}",
                                names()
                            )
                        })?;
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                    pieces.push(Piece::Field(field));
                }
                '}' => {
                    return Err(format!(
                        "invalid tag line format '{s}': a lone '}}'; write '}}}}' for a brace"
                    ));
                }
                '|' => {
                    parts += 1;
                    if parts > 3 {
                        return Err(format!(
                            "invalid tag line format '{s}': at most three parts \
                             (left|centre|right)"
                        ));
                    }
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                    pieces.push(Piece::Split);
                }
                c if c.is_control() => {
                    return Err(format!(
                        "invalid tag line format '{s}': it must be one line of text"
                    ));
                }
                c => text.push(c),
            }
        }
        pieces.push(Piece::Text(text));
        pieces.retain(|p| *p != Piece::Text(String::new()));
        Ok(TagLineFormat(pieces))
    }
}

impl TagLineFormat {
    /// The left, centre and right text of page `page` of `pages`. With one
    /// part it is the left; with two, left and right.
    pub fn fill(&self, parties: &Parties, page: usize, pages: usize) -> [String; 3] {
        let mut parts = vec![String::new()];
        for piece in &self.0 {
            let value = match piece {
                Piece::Split => {
                    parts.push(String::new());
                    continue;
                }
                Piece::Text(t) => t.clone(),
                Piece::Field(Field::Date) => parties.date(),
                Piece::Field(Field::Sender) => parties.sender(),
                Piece::Field(Field::Name) => parties.from_name.clone().unwrap_or_default(),
                Piece::Field(Field::Number) => parties.from_number.clone(),
                Piece::Field(Field::To) => parties.to_number.clone().unwrap_or_default(),
                Piece::Field(Field::ToName) => parties.to_name.clone().unwrap_or_default(),
                Piece::Field(Field::Page) => page.to_string(),
                Piece::Field(Field::Pages) => pages.to_string(),
            };
            if let Some(last) = parts.last_mut() {
                last.push_str(&value);
            }
        }
        match parts.as_slice() {
            [left] => [left.clone(), String::new(), String::new()],
            [left, right] => [left.clone(), String::new(), right.clone()],
            [left, centre, right, ..] => [left.clone(), centre.clone(), right.clone()],
            [] => Default::default(),
        }
    }
}

/// A tag line to put on every page.
#[derive(Clone, Debug)]
pub struct TagLine {
    /// What it says.
    pub format: TagLineFormat,
    /// Who sends, and when.
    pub parties: Parties,
}

impl TagLine {
    /// Rows the band takes on a page of `lines_per_inch`.
    pub fn band_rows(lines_per_inch: u32) -> u32 {
        (BAND_IN * f64::from(lines_per_inch)).round() as u32
    }

    /// `page` with the tag line for page `number` of `pages` in a band above
    /// it.
    pub fn stamp(&self, page: &Bitmap, number: usize, pages: usize) -> Bitmap {
        let band = TagLine::band_rows(page.y_dpi());
        let mut out = page.with_rows_above(band);

        let pen = Pen::for_page(Face::Regular, SIZE_PT, page);
        // The text sits in the middle of the band.
        let text_height = pen.ascent() + pen.descent();
        let baseline = (band as f32 - text_height) / 2.0 + pen.ascent();
        let side = (SIDE_IN * f64::from(page.x_dpi().max(FAX_X_DPI / 2))) as f32;
        let width = page.width() as f32;
        let [left, centre, right] = self.format.fill(&self.parties, number, pages);
        let (lw, cw, rw) = (pen.width(&left), pen.width(&centre), pen.width(&right));
        let centre_x = (width - cw) / 2.0;
        let right_x = width - side - rw;
        let gap = pen.advance() * 2.0;
        let fits = (centre.is_empty()
            || (side + lw + gap <= centre_x && centre_x + cw + gap <= right_x))
            && side + lw + gap <= right_x;
        if fits {
            pen.draw(&mut out, side, baseline, &left);
            pen.draw(&mut out, centre_x, baseline, &centre);
            pen.draw(&mut out, right_x, baseline, &right);
        } else {
            // Too long for three columns: one after the other from the left,
            // cut at the page's edge.
            let joined = [left, centre, right]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("  ");
            pen.draw(&mut out, side, baseline, &joined);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Resolution;

    fn parties() -> Parties {
        Parties {
            from_number: "1001".into(),
            from_name: Some("ACME Ltd".into()),
            to_number: Some("1002".into()),
            to_name: None,
            when: jiff::Timestamp::from_second(1_790_000_000)
                .expect("in range")
                .to_zoned_datetime(jiff::tz::TimeZone::UTC),
        }
    }

    #[test]
    fn the_default_format_fills_three_parts() {
        let format = TagLineFormat::default();
        assert_eq!(format, DEFAULT_FORMAT.parse().expect("parses"));
        assert_eq!(
            format.fill(&parties(), 2, 7),
            [
                "2026-09-21 14:13 UTC".to_owned(),
                "From: ACME Ltd (1001)".to_owned(),
                "Page 2 of 7".to_owned()
            ]
        );
    }

    #[test]
    fn formats_with_one_or_two_parts_and_braces() {
        let one: TagLineFormat = "{{{number}}} to {to}{to_name}".parse().expect("parses");
        assert_eq!(one.fill(&parties(), 1, 1)[0], "{1001} to 1002");
        let two: TagLineFormat = "{name}|{page}/{pages}".parse().expect("parses");
        assert_eq!(
            two.fill(&parties(), 3, 4),
            ["ACME Ltd".to_owned(), String::new(), "3/4".to_owned()]
        );
    }

    #[test]
    fn bad_formats_say_what_is_wrong() {
        let e = "{dat}".parse::<TagLineFormat>().expect_err("unknown field");
        assert!(
            e.contains("unknown field {dat}; use {date}, {sender}"),
            "{e}"
        );
        let e = "a|b|c|d".parse::<TagLineFormat>().expect_err("four parts");
        assert!(e.contains("at most three parts"), "{e}");
        let e = "x}".parse::<TagLineFormat>().expect_err("lone brace");
        assert!(e.contains("lone '}'"), "{e}");
        let e = "a\nb".parse::<TagLineFormat>().expect_err("two lines");
        assert!(e.contains("one line"), "{e}");
    }

    #[test]
    fn the_band_goes_above_and_the_page_is_untouched() {
        for resolution in Resolution::ALL {
            let mut page = Bitmap::new_fax(1728, 300, resolution);
            page.fill_rect(0, 0, 1728, 1); // content right at the top edge
            page.fill_rect(100, 150, 900, 160);
            let tag = TagLine {
                format: TagLineFormat::default(),
                parties: parties(),
            };
            let out = tag.stamp(&page, 1, 3);
            let band = TagLine::band_rows(resolution.lines_per_inch());
            assert_eq!(out.height(), page.height() + band);
            assert_eq!(&out.data()[page.stride() * band as usize..], page.data());
            let ink: u64 = (0..band)
                .map(|y| (0..1728).filter(|&x| out.get(x, y)).count() as u64)
                .sum();
            assert!(ink > 500, "the band has text at {resolution:?}: {ink}");
        }
    }

    #[test]
    fn a_tag_line_too_long_for_columns_is_drawn_in_one_run() {
        let mut p = parties();
        p.from_name = Some("N".repeat(150));
        let tag = TagLine {
            format: TagLineFormat::default(),
            parties: p,
        };
        let page = Bitmap::new_fax(1728, 10, Resolution::Fine);
        let out = tag.stamp(&page, 1, 1);
        assert!(out.count_black() > 0);
    }
}

//! An SMTP reply: a code, an optional enhanced status code (RFC 2034, 3463)
//! and one or more text lines, with the wire form that cannot go wrong.

use std::fmt;

/// Longest text we put on one reply line. RFC 5321 4.5.3.1.5 caps a reply
/// line at 512 octets with its CRLF; the code, the separator and the longest
/// enhanced code ("5.999.999 ") take 14 of them, and we keep a margin.
const MAX_TEXT: usize = 480;

/// An SMTP reply. Its text is cleaned when it is made: CR, LF and other
/// control characters become spaces and non-ASCII characters become `?`
/// (RFC 5321 4.2: the text is printable US-ASCII), so `to_bytes` is always
/// valid wire format, whatever a policy or a client address put into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    /// "" when the reply has none.
    enhanced: String,
    /// Never empty.
    lines: Vec<String>,
}

impl Reply {
    /// A one-line reply. `enhanced` is the RFC 3463 status ("2.1.0") or ""
    /// for none. A code outside 200..=599 (a policy's mistake) becomes
    /// 451 4.3.0, so that nothing invalid reaches the client; an enhanced code
    /// that is malformed or whose class differs from the code's first digit
    /// is dropped.
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Reply {
        Reply::multiline(code, enhanced, [text.into()])
    }

    /// A reply of several lines, e.g. the EHLO reply (RFC 5321 4.2.1: every
    /// line but the last has a `-` after the code). No lines gives one empty
    /// line.
    pub fn multiline<I, S>(code: u16, enhanced: &str, lines: I) -> Reply
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let (code, enhanced) = if (200..=599).contains(&code) {
            let enhanced = if enhanced_fits(code, enhanced) {
                enhanced.to_owned()
            } else {
                String::new()
            };
            (code, enhanced)
        } else {
            (451, "4.3.0".to_owned())
        };
        let mut lines: Vec<String> = lines.into_iter().map(|l| clean(&l.into())).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        Reply {
            code,
            enhanced,
            lines,
        }
    }

    /// Adds a line at the end (a builder for multi-line replies).
    pub fn with_line(mut self, text: impl Into<String>) -> Reply {
        self.lines.push(clean(&text.into()));
        self
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code ("5.7.8"), if the reply has one.
    pub fn enhanced(&self) -> Option<&str> {
        (!self.enhanced.is_empty()).then_some(self.enhanced.as_str())
    }

    /// The text lines, already cleaned.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The lines joined by "\n", for logs.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The reply as sent: `250-first\r\n250 last\r\n`, the enhanced code
    /// repeated on every line (RFC 2034 section 4).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let last = self.lines.len() - 1;
        for (i, line) in self.lines.iter().enumerate() {
            out.extend_from_slice(self.code.to_string().as_bytes());
            out.push(if i == last { b' ' } else { b'-' });
            if !self.enhanced.is_empty() {
                out.extend_from_slice(self.enhanced.as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// `550 5.1.1 No such user`, lines after the first on their own lines.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.enhanced.is_empty() {
            write!(f, " {}", self.enhanced)?;
        }
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == 0 { " " } else { "\n" };
            write!(f, "{sep}{line}")?;
        }
        Ok(())
    }
}

/// Whether `enhanced` is `class.subject.detail` (RFC 3463 section 2: class
/// 2, 4 or 5, subject and detail of one to three digits) with the class of
/// the reply code.
fn enhanced_fits(code: u16, enhanced: &str) -> bool {
    let mut parts = enhanced.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let digits = |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    matches!(class, "2" | "4" | "5")
        && class.as_bytes()[0] - b'0' == (code / 100) as u8
        && digits(subject)
        && digits(detail)
}

/// Printable US-ASCII only, at most [`MAX_TEXT`] bytes: control characters
/// (CR and LF among them) become spaces, anything else outside ASCII `?`.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_control() => ' ',
            _ => '?',
        })
        .take(MAX_TEXT)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line() {
        let reply = Reply::new(250, "2.1.0", "Sender OK");
        assert_eq!(reply.code(), 250);
        assert_eq!(reply.enhanced(), Some("2.1.0"));
        assert_eq!(reply.text(), "Sender OK");
        assert_eq!(reply.to_bytes(), b"250 2.1.0 Sender OK\r\n");
        assert_eq!(reply.to_string(), "250 2.1.0 Sender OK");
    }

    #[test]
    fn several_lines_repeat_the_enhanced_code() {
        let reply = Reply::new(550, "5.7.1", "first").with_line("second");
        assert_eq!(reply.to_bytes(), b"550-5.7.1 first\r\n550 5.7.1 second\r\n");
        assert_eq!(reply.text(), "first\nsecond");
        let ehlo = Reply::multiline(250, "", ["gw.example", "8BITMIME", "SIZE 10"]);
        assert_eq!(
            ehlo.to_bytes(),
            b"250-gw.example\r\n250-8BITMIME\r\n250 SIZE 10\r\n"
        );
    }

    #[test]
    fn empty_texts() {
        // RFC 4954 4: a challenge is "334" SP [base64]: the space stays.
        assert_eq!(Reply::new(334, "", "").to_bytes(), b"334 \r\n");
        assert_eq!(Reply::new(250, "2.0.0", "").to_bytes(), b"250 2.0.0\r\n");
        let none: [&str; 0] = [];
        assert_eq!(Reply::multiline(250, "", none).to_bytes(), b"250 \r\n");
    }

    #[test]
    fn line_breaks_and_controls_never_reach_the_wire() {
        let reply = Reply::new(550, "5.1.1", "evil\r\n250 OK\rx\ny\0z\u{7f}");
        assert_eq!(reply.to_bytes(), b"550 5.1.1 evil  250 OK x y z \r\n");
        let reply = Reply::new(250, "", "ok").with_line("a\r\nb");
        assert_eq!(reply.to_bytes(), b"250-ok\r\n250 a  b\r\n");
        assert_eq!(Reply::new(250, "", "caf\u{e9}").text(), "caf?");
    }

    #[test]
    fn long_text_is_cut() {
        let reply = Reply::new(550, "5.1.1", "x".repeat(5000));
        assert!(reply.to_bytes().len() <= 512);
    }

    #[test]
    fn codes_and_enhanced_codes_are_checked() {
        for (code, enhanced, want_code, want_enhanced) in [
            (250, "2.1.0", 250, Some("2.1.0")),
            (550, "5.999.999", 550, Some("5.999.999")),
            (250, "", 250, None),
            (250, "5.1.1", 250, None),
            (450, "2.0.0", 450, None),
            (550, "5.1", 550, None),
            (550, "5.1.1.1", 550, None),
            (550, "5.1.1000", 550, None),
            (550, "5.a.1", 550, None),
            (550, "3.1.1", 550, None),
            (354, "3.0.0", 354, None),
            (42, "", 451, Some("4.3.0")),
            (600, "5.0.0", 451, Some("4.3.0")),
            (199, "", 451, Some("4.3.0")),
        ] {
            let reply = Reply::new(code, enhanced, "x");
            assert_eq!(reply.code(), want_code, "{code} {enhanced}");
            assert_eq!(reply.enhanced(), want_enhanced, "{code} {enhanced}");
        }
    }
}

//! What an incoming mail asks to fax: its attachments, in message order, as
//! [`Document`]s the renderer can read, and its text body. `mail-parser` does
//! the MIME parsing; this module decides which parts count and refuses what
//! it cannot fax instead of dropping it.
//!
//! The rules, which users rely on (each has a test in `inbound/tests.rs`):
//!
//! - **Documents** are the leaf parts that are not the body and not skipped
//!   (below), in message order at any multipart depth: multipart/mixed,
//!   nested mixed, every branch of a multipart/alternative (Apple Mail puts
//!   attachments inside the HTML branch), the non-root parts of a
//!   multipart/related that are attachments, and the attachments of a
//!   forwarded mail (message/rfc822, also base64-encoded, also in a
//!   multipart/digest). Of a forwarded mail only its attachments are faxed:
//!   its own text body and headers are not (the forwarding note is the
//!   [`FaxMail::body_text`]).
//! - **Kind**: by content first (`%PDF-` in the first 1024 bytes, TIFF
//!   `II*\0` / `MM\0*`, PNG, JPEG `FF D8 FF`, `GIF8`, `BM`), then by the
//!   Content-Type, then by the file name's extension. Content that sniffs as
//!   a format we know we cannot fax (ZIP and so Office files, OLE2, TNEF,
//!   RTF, gzip, 7z, RAR) is refused whatever its label says. A text/plain
//!   attachment (it has a file name, or Content-Disposition: attachment) is a
//!   [`Kind::Text`] document, decoded from its charset to UTF-8.
//! - **T.37 / RFC 3965 simple mode** (what MFPs send): the
//!   `image/tiff; application=faxbw` attachment next to a text part, or the
//!   TIFF as the whole message body, is one [`Kind::Tiff`] document either way.
//! - **The body** is never a document: text/plain and text/html parts with
//!   no file name and no attachment disposition. Only the top-level mail's
//!   body makes `body_text` (mail-parser's choice: text/plain over HTML in
//!   multipart/alternative; an HTML-only body is rendered to text). Other
//!   nameless text/* renderings in a multipart/alternative (text/calendar,
//!   text/watch-html, text/enriched) are skipped as alternatives of the body.
//! - **Skipped silently**, because they are about the mail and not for the
//!   fax: inline parts whose Content-ID the HTML references by `cid:`
//!   (signature logos), nameless non-root parts of a multipart/related (the
//!   HTML's resources), S/MIME and PGP signatures and keys, vCards, and the
//!   machine-readable parts of delivery and read reports (see
//!   [`SKIPPED_TYPES`]).
//! - **Refused** ([`ReadError::Unsupported`]): every other attachment (a
//!   .docx, a .zip, octet-stream that sniffs as nothing we know, Outlook's
//!   winmail.dat, an encrypted mail). The whole mail is refused, never one
//!   attachment silently dropped.
//! - **Malformed** ([`ReadError::Malformed`]): see [`read`].
//! - More than [`MAX_PARTS`] MIME parts, counted over the whole tree with
//!   forwarded mails: [`ReadError::TooManyParts`].

mod kind;
mod name;
mod strict_base64;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashSet;

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

pub use kind::Kind;

/// At most this many MIME parts (every entity: containers, leaves and
/// forwarded mails' parts) are read; a mail with more is refused.
pub const MAX_PARTS: usize = 100;

/// Content types that are never documents and never refused: signatures and
/// keys (they sign the mail, the fax cannot carry them), contact cards, and
/// the machine-readable parts of delivery and read reports.
pub const SKIPPED_TYPES: &[&str] = &[
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pgp-signature",
    "application/pgp-keys",
    "text/vcard",
    "text/x-vcard",
    "text/directory",
    "message/delivery-status",
    "message/global-delivery-status",
    "message/disposition-notification",
    "text/rfc822-headers",
];

/// What an incoming mail asks to fax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaxMail {
    /// The From: header's address, its domain lowercased.
    pub from: Option<String>,
    /// The Subject, decoded (RFC 2047).
    pub subject: Option<String>,
    /// The Message-ID without `<>`.
    pub message_id: Option<String>,
    /// What to fax, in message order.
    pub documents: Vec<Document>,
    /// The text body (text/plain, else HTML rendered to text), trimmed; None
    /// when empty or only whitespace.
    pub body_text: Option<String>,
}

/// One attachment to fax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// A safe file name, unique within the mail: `NN-<stem>.<ext>`, at most
    /// 100 bytes, no path separators, no leading dot, no control characters,
    /// ending in [`Kind::extension`].
    pub name: String,
    pub kind: Kind,
    /// The decoded content; UTF-8 for [`Kind::Text`].
    pub data: Vec<u8>,
}

/// Why a mail cannot be faxed. The messages go back to the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the mail cannot be read: {0}; send it again, or from another mail program")]
    Malformed(String),
    #[error("{}", unsupported_message(name, content_type))]
    Unsupported { name: String, content_type: String },
    #[error(
        "the mail has {0} MIME parts, more than the {MAX_PARTS} we read; send fewer attachments per mail"
    )]
    TooManyParts(usize),
}

fn unsupported_message(name: &str, content_type: &str) -> String {
    let hint = if content_type.contains("tnef") || name.eq_ignore_ascii_case("winmail.dat") {
        " (Outlook's rich text format: set the mail format to HTML or plain text)"
    } else {
        ""
    };
    format!(
        "cannot fax the attachment \"{name}\" ({content_type}){hint}: only PDF, TIFF, PNG, \
         JPEG, GIF, BMP and plain text files can be faxed; convert it to PDF and send again"
    )
}

/// Reads a mail as received by SMTP DATA (CRLF lines; bare LF is accepted).
///
/// The mail is `Malformed` when: it is empty; its first line is not a header
/// field (`name: value`), so there is no header section; mail-parser finds
/// nothing in it; a multipart part has no boundary parameter; a multipart's
/// boundary never occurs in its body; a forwarded message/rfc822 part has no
/// header section; a base64 part holds anything but base64 characters, white
/// space and padding, or ends in a group of one character (mail-parser
/// recovers from bad characters by keeping the part as raw text, and silently
/// drops a dangling character, so every base64 part is checked against its
/// raw bytes here); a document's Content-Transfer-Encoding is none of 7bit,
/// 8bit, binary, base64, quoted-printable (x-uuencode, say). Tolerated: a
/// missing closing boundary (the last part ends with the mail), missing
/// base64 padding, padded base64 chunks run together.
pub fn read(raw: &[u8]) -> Result<FaxMail, ReadError> {
    check_header_section(raw)?;
    let message = Parsed(
        MessageParser::default()
            .parse(raw)
            .ok_or_else(|| malformed("it has no header section"))?,
    );
    let message = &message.0;
    let parts = count_parts(message);
    if parts > MAX_PARTS {
        return Err(ReadError::TooManyParts(parts));
    }

    let mut walk = Walk {
        cid_references: cid_references(message),
        documents: Vec::new(),
    };
    walk.part(message, 0, Place::default())?;

    Ok(FaxMail {
        from: message
            .from()
            .and_then(|from| from.first())
            .and_then(|addr| addr.address())
            .map(lowercase_domain),
        subject: message.subject().map(str::to_owned),
        message_id: message.message_id().map(str::to_owned),
        documents: walk.documents,
        body_text: body_text(message),
    })
}

/// A parsed mail that drops its forwarded mails one by one: mail-parser
/// nests them as values, so the default drop recurses once per level, and a
/// few thousand levels (30 bytes each) overflow a 2 MB thread stack.
struct Parsed<'x>(Message<'x>);

impl Drop for Parsed<'_> {
    fn drop(&mut self) {
        let mut stack = vec![std::mem::take(&mut self.0)];
        while let Some(mut message) = stack.pop() {
            for part in &mut message.parts {
                if let PartType::Message(nested) = &mut part.body {
                    stack.push(std::mem::take(nested));
                }
            }
        }
    }
}

fn malformed(what: impl Into<String>) -> ReadError {
    ReadError::Malformed(what.into())
}

/// The first line must be a header field: a name of printable ASCII without
/// `:` or space, then `:`. mail-parser would read a mail without headers as
/// a body and a line of prose as a header, so this is checked first.
fn check_header_section(raw: &[u8]) -> Result<(), ReadError> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(malformed("it is empty"));
    }
    let name_len = raw
        .iter()
        .position(|&b| !(b'!'..=b'~').contains(&b) || b == b':')
        .unwrap_or(raw.len());
    if name_len == 0 || raw.get(name_len) != Some(&b':') {
        return Err(malformed(
            "it has no header section (its first line is not a header field)",
        ));
    }
    Ok(())
}

/// Every MIME entity of the mail and its forwarded mails. A stack, not
/// recursion: forwarded mails nest without limit.
fn count_parts(message: &Message<'_>) -> usize {
    let mut count = 0;
    let mut stack = vec![message];
    while let Some(message) = stack.pop() {
        count += message.parts.len();
        stack.extend(message.parts.iter().filter_map(|part| match &part.body {
            PartType::Message(nested) => Some(nested),
            _ => None,
        }));
    }
    count
}

/// Where a part sits, which decides whether a nameless part is skipped.
#[derive(Debug, Clone, Copy, Default)]
struct Place {
    /// A direct child of a multipart/alternative: a rendering of the body.
    alternative: bool,
    /// In a non-root child of a multipart/related: the HTML's resources.
    resource: bool,
}

struct Walk {
    /// The `cid:` URLs of every HTML part, percent-decoded and lowercased.
    cid_references: HashSet<String>,
    documents: Vec<Document>,
}

impl Walk {
    /// Walks the part `id` of `message` and everything under it, in order.
    /// Recursion depth is bounded: every level is a later part than its
    /// parent, and the mail has at most MAX_PARTS of them (checked before).
    fn part(&mut self, message: &Message<'_>, id: u32, place: Place) -> Result<(), ReadError> {
        let Some(part) = message.parts.get(id as usize) else {
            return Ok(());
        };
        let (ctype, subtype) = content_type(part);
        match &part.body {
            // A part mail-parser left as an empty container (its recovery
            // from a broken nesting) holds nothing to fax.
            PartType::Multipart(_) if ctype != "multipart" => Ok(()),
            PartType::Multipart(children) => {
                if subtype == "encrypted" {
                    return Err(ReadError::Unsupported {
                        name: "(the encrypted mail)".into(),
                        content_type: "multipart/encrypted".into(),
                    });
                }
                // Children come after their parent in mail-parser's list;
                // holding to that makes the walk end on any input.
                for (index, &child) in children.iter().enumerate().filter(|(_, c)| **c > id) {
                    let inner = Place {
                        alternative: subtype == "alternative",
                        resource: place.resource || (subtype == "related" && index > 0),
                    };
                    self.part(message, child, inner)?;
                }
                Ok(())
            }
            PartType::Message(nested) => {
                // mail-parser reads a body without headers as a message too.
                if nested
                    .parts
                    .first()
                    .is_none_or(|root| root.headers.is_empty())
                {
                    return Err(malformed(format!(
                        "a forwarded mail ({ctype}/{subtype}) in it has no header section"
                    )));
                }
                self.part(nested, 0, Place::default())
            }
            PartType::Text(_)
            | PartType::Html(_)
            | PartType::Binary(_)
            | PartType::InlineBinary(_) => self.leaf(message, part, &ctype, &subtype, place),
        }
    }

    fn leaf(
        &mut self,
        message: &Message<'_>,
        part: &MessagePart<'_>,
        ctype: &str,
        subtype: &str,
        place: Place,
    ) -> Result<(), ReadError> {
        let original_name = part.attachment_name().map(str::to_owned);
        let full_type = format!("{ctype}/{subtype}");

        // mail-parser keeps a multipart it could not split as text.
        if ctype == "multipart" {
            return Err(
                match part.content_type().and_then(|ct| ct.attribute("boundary")) {
                    None => malformed(format!(
                        "its {full_type} part has no boundary parameter in its Content-Type"
                    )),
                    Some(boundary) => malformed(format!(
                        "the boundary \"{boundary}\" of its {full_type} part never occurs in the body"
                    )),
                },
            );
        }
        if ctype == "message" && (subtype == "rfc822" || subtype == "global") {
            return Err(malformed(format!(
                "a forwarded mail ({full_type}) in it has no header section or is nested too deep"
            )));
        }

        // Every base64 part, skipped or not: a damaged one means a damaged mail.
        let transfer_encoding = part
            .content_transfer_encoding()
            .map(|cte| cte.trim().to_ascii_lowercase());
        let base64_data = if transfer_encoding.as_deref() == Some("base64") {
            let raw = message
                .raw_message
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or_default();
            let label = original_name.as_deref().unwrap_or(&full_type);
            Some(strict_base64::decode(raw).map_err(|why| {
                malformed(format!(
                    "the base64 content of \"{label}\" is damaged: {why}"
                ))
            })?)
        } else {
            None
        };

        let attachment_disposition = part
            .content_disposition()
            .is_some_and(|cd| cd.is_attachment());
        let named = original_name.is_some() || attachment_disposition;

        if SKIPPED_TYPES.contains(&full_type.as_str()) {
            return Ok(());
        }
        if ctype == "text" && !named {
            let is_body_type = subtype == "plain" || subtype == "html";
            // The body (of the top-level or a forwarded mail; body_text reads
            // the top-level one), or another rendering of it.
            if is_body_type || place.alternative {
                return Ok(());
            }
        }
        if let Some(cid) = part.content_id()
            && self.cid_references.contains(&cid.to_lowercase())
        {
            return Ok(());
        }
        if place.resource && !named {
            return Ok(());
        }

        // An attachment: faxed, or the mail is refused.
        if let Some(cte) = &transfer_encoding
            && !["7bit", "8bit", "binary", "base64", "quoted-printable"].contains(&cte.as_str())
        {
            return Err(malformed(format!(
                "the attachment \"{}\" has the transfer encoding \"{cte}\", which we cannot decode",
                original_name.as_deref().unwrap_or(&full_type)
            )));
        }
        let bytes: &[u8] = match (&base64_data, &part.body) {
            (Some(decoded), _) => decoded,
            (None, PartType::Binary(b) | PartType::InlineBinary(b)) => b,
            (None, PartType::Text(t) | PartType::Html(t)) => t.as_bytes(),
            (None, _) => &[],
        };
        let extension = original_name.as_deref().and_then(name::extension);
        let kind = match kind::sniff(bytes) {
            kind::Sniffed::Faxable(kind) => Some(kind),
            kind::Sniffed::NotFaxable => None,
            kind::Sniffed::Unknown => Kind::from_content_type(&full_type)
                .or_else(|| extension.as_deref().and_then(Kind::from_extension)),
        };
        let Some(kind) = kind else {
            return Err(ReadError::Unsupported {
                name: original_name
                    .as_deref()
                    .map(name::printable)
                    .unwrap_or_else(|| "(no file name)".into()),
                content_type: full_type,
            });
        };
        let data = match (kind, &part.body) {
            // mail-parser has decoded the charset to UTF-8.
            (Kind::Text, PartType::Text(text)) => text.as_bytes().to_vec(),
            (Kind::Text, _) => String::from_utf8_lossy(bytes).into_owned().into_bytes(),
            _ => bytes.to_vec(),
        };
        let number = self.documents.len() + 1;
        self.documents.push(Document {
            name: name::document_name(number, original_name.as_deref(), kind),
            kind,
            data,
        });
        Ok(())
    }
}

/// The part's type and subtype, lowercased; text/plain when it has none (or
/// message/rfc822 in a digest, which mail-parser already parsed as one).
fn content_type(part: &MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase(),
        ),
        None if matches!(part.body, PartType::Message(_)) => ("message".into(), "rfc822".into()),
        None => ("text".into(), "plain".into()),
    }
}

/// The `cid:` URLs in every HTML part of the mail and its forwarded mails.
fn cid_references(message: &Message<'_>) -> HashSet<String> {
    let mut found = HashSet::new();
    let mut stack = vec![message];
    while let Some(message) = stack.pop() {
        for part in &message.parts {
            match &part.body {
                PartType::Html(html) => found.extend(cid_urls(html)),
                PartType::Message(nested) => stack.push(nested),
                _ => {}
            }
        }
    }
    found
}

/// `cid:` URLs in HTML (RFC 2392): up to a quote, white space, `>` or `)`;
/// percent-decoded and lowercased, as Content-IDs are compared.
fn cid_urls(html: &str) -> impl Iterator<Item = String> + '_ {
    let lower = html.to_ascii_lowercase();
    let starts: Vec<usize> = lower.match_indices("cid:").map(|(at, _)| at + 4).collect();
    starts.into_iter().map(move |start| {
        let rest = &html[start..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '>' | ')' | '<'))
            .unwrap_or(rest.len());
        percent_decode(&rest[..end]).to_lowercase()
    })
}

fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return text.into();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

/// The top-level mail's body as text: mail-parser's text bodies (text/plain
/// preferred in multipart/alternative, HTML rendered to text when there is
/// no plain text), leaving out the text parts that are documents.
fn body_text(message: &Message<'_>) -> Option<String> {
    let mut text = String::new();
    for &id in &message.text_body {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        let named = part.attachment_name().is_some()
            || part
                .content_disposition()
                .is_some_and(|cd| cd.is_attachment());
        let piece = match &part.body {
            _ if named => continue,
            PartType::Text(plain) => Cow::Borrowed(plain.as_ref()),
            PartType::Html(html) => Cow::Owned(mail_parser::decoders::html::html_to_text(html)),
            _ => continue,
        };
        let piece = piece.trim();
        if !piece.is_empty() {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(piece);
        }
    }
    (!text.is_empty()).then_some(text)
}

fn lowercase_domain(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => address.to_owned(),
    }
}

//! The kinds of documents we fax, told by content first, then by label.

/// What a document is; the renderer sniffs content again, this only picks the
/// file name's extension and lets gatewayd report what it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pdf,
    Tiff,
    Png,
    Jpeg,
    Gif,
    Bmp,
    /// Plain text, UTF-8.
    Text,
}

impl Kind {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Tiff => "tif",
            Kind::Png => "png",
            Kind::Jpeg => "jpg",
            Kind::Gif => "gif",
            Kind::Bmp => "bmp",
            Kind::Text => "txt",
        }
    }

    /// By a lowercased `type/subtype`, including the unregistered names
    /// mailers still use.
    pub fn from_content_type(content_type: &str) -> Option<Kind> {
        Some(match content_type {
            "application/pdf" | "application/x-pdf" | "application/acrobat" => Kind::Pdf,
            "image/tiff" | "image/tif" | "image/x-tiff" | "application/tiff" => Kind::Tiff,
            "image/png" | "image/x-png" => Kind::Png,
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Kind::Jpeg,
            "image/gif" => Kind::Gif,
            "image/bmp" | "image/x-bmp" | "image/x-ms-bmp" => Kind::Bmp,
            "text/plain" => Kind::Text,
            _ => return None,
        })
    }

    /// By a lowercased file name extension, without the dot.
    pub fn from_extension(extension: &str) -> Option<Kind> {
        Some(match extension {
            "pdf" => Kind::Pdf,
            "tif" | "tiff" => Kind::Tiff,
            "png" => Kind::Png,
            "jpg" | "jpeg" | "jpe" => Kind::Jpeg,
            "gif" => Kind::Gif,
            "bmp" | "dib" => Kind::Bmp,
            "txt" | "text" => Kind::Text,
            _ => return None,
        })
    }
}

/// What content sniffing says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sniffed {
    Faxable(Kind),
    /// A format we recognise and cannot fax, whatever the label says: ZIP
    /// (so .docx, .xlsx, .odt), OLE2 (.doc, .xls, .msg), TNEF (winmail.dat),
    /// RTF, gzip, 7z, RAR.
    NotFaxable,
    Unknown,
}

/// Magic bytes. `%PDF-` may follow up to 1 KB of junk (PDF readers accept
/// that, and some generators write a preamble).
pub(super) fn sniff(data: &[u8]) -> Sniffed {
    let head = data.get(..1024).unwrap_or(data);
    let starts = |magic: &[u8]| data.starts_with(magic);
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Sniffed::Faxable(Kind::Pdf);
    }
    let kind = if starts(b"II*\0") || starts(b"MM\0*") {
        Kind::Tiff
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Kind::Png
    } else if starts(b"\xff\xd8\xff") {
        Kind::Jpeg
    } else if starts(b"GIF8") {
        Kind::Gif
    } else if starts(b"BM") {
        Kind::Bmp
    } else if [
        &b"PK\x03\x04"[..],
        b"PK\x05\x06",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\x78\x9f\x3e\x22",
        b"{\\rtf",
        b"\x1f\x8b",
        b"7z\xbc\xaf\x27\x1c",
        b"Rar!\x1a\x07",
    ]
    .iter()
    .any(|magic| starts(magic))
    {
        return Sniffed::NotFaxable;
    } else {
        return Sniffed::Unknown;
    };
    Sniffed::Faxable(kind)
}

#[cfg(test)]
mod tests {
    use super::{Kind, Sniffed, sniff};

    #[test]
    fn sniffs_magic_bytes() {
        let cases: &[(&[u8], Sniffed)] = &[
            (b"%PDF-1.7\n", Sniffed::Faxable(Kind::Pdf)),
            (b"II*\0\x08\0\0\0", Sniffed::Faxable(Kind::Tiff)),
            (b"MM\0*\0\0\0\x08", Sniffed::Faxable(Kind::Tiff)),
            (b"\x89PNG\r\n\x1a\n\0\0", Sniffed::Faxable(Kind::Png)),
            (b"\xff\xd8\xff\xe0", Sniffed::Faxable(Kind::Jpeg)),
            (b"GIF89a", Sniffed::Faxable(Kind::Gif)),
            (b"BM\x3e\0", Sniffed::Faxable(Kind::Bmp)),
            (b"PK\x03\x04\x14\0", Sniffed::NotFaxable),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Sniffed::NotFaxable),
            (b"\x78\x9f\x3e\x22\x01", Sniffed::NotFaxable),
            (b"{\\rtf1\\ansi", Sniffed::NotFaxable),
            (b"hello", Sniffed::Unknown),
            (b"", Sniffed::Unknown),
        ];
        for (data, expected) in cases {
            assert_eq!(sniff(data), *expected, "{data:?}");
        }
    }

    #[test]
    fn pdf_marker_within_the_first_kilobyte_only() {
        let mut late = vec![b' '; 1019];
        late.extend_from_slice(b"%PDF-1.4");
        assert_eq!(sniff(&late), Sniffed::Faxable(Kind::Pdf));
        let mut too_late = vec![b' '; 1020];
        too_late.extend_from_slice(b"%PDF-1.4");
        assert_eq!(sniff(&too_late), Sniffed::Unknown);
    }
}

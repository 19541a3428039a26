//! Safe, unique file names for documents: gatewayd writes each document to
//! a file under this name, so no sender-chosen name may climb out of its
//! directory, hide as a dotfile or collide.

use super::Kind;

/// The longest name, in bytes (well under every file system's 255).
pub(super) const MAX_NAME_LEN: usize = 100;

/// `NN-<stem>.<ext>`: the document's number (from 1) makes names unique and
/// keeps the message order in a directory listing; the stem is the sender's
/// file name without its directory and without an extension we know, with
/// every character but letters, digits and `-_.,+()` turned into `_`; the
/// extension is the kind's.
pub(super) fn document_name(number: usize, original: Option<&str>, kind: Kind) -> String {
    let prefix = format!("{number:02}-");
    let budget = MAX_NAME_LEN - prefix.len() - 1 - kind.extension().len();
    let stem = original.map(|name| stem(name, budget)).unwrap_or_default();
    let stem = if stem.is_empty() { "document" } else { &stem };
    format!("{prefix}{stem}.{}", kind.extension())
}

/// The lowercased extension of a file name, if it has one.
pub(super) fn extension(name: &str) -> Option<String> {
    let base = base_name(name);
    let (stem, extension) = base.rsplit_once('.')?;
    (!stem.is_empty() && !extension.is_empty()).then(|| extension.to_ascii_lowercase())
}

/// A name fit to show in an error message: control characters dropped.
pub(super) fn printable(name: &str) -> String {
    let shown: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    if shown.trim().is_empty() {
        "(no file name)".into()
    } else {
        shown
    }
}

/// What follows the last `/` or `\` (some mailers send a full Windows path).
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

fn stem(name: &str, budget: usize) -> String {
    let base = base_name(name);
    let without_extension = match base.rsplit_once('.') {
        Some((stem, ext)) if Kind::from_extension(&ext.to_ascii_lowercase()).is_some() => stem,
        _ => base,
    };
    let mut stem = String::new();
    for c in without_extension.chars() {
        let c = if c.is_alphanumeric() || "-_.,+()".contains(c) {
            c
        } else {
            '_'
        };
        // One `_` for a run of replaced characters.
        if c == '_' && stem.ends_with('_') {
            continue;
        }
        if stem.len() + c.len_utf8() > budget {
            break;
        }
        stem.push(c);
    }
    stem.trim_matches(['_', '.', ' ']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbered_and_get_the_kind_extension() {
        assert_eq!(document_name(1, Some("scan.PDF"), Kind::Pdf), "01-scan.pdf");
        assert_eq!(
            document_name(2, Some("photo.jpeg"), Kind::Png),
            "02-photo.png"
        );
        assert_eq!(
            document_name(3, Some("data.bin"), Kind::Pdf),
            "03-data.bin.pdf"
        );
        assert_eq!(document_name(4, None, Kind::Tiff), "04-document.tif");
        assert_eq!(document_name(100, Some("x.txt"), Kind::Text), "100-x.txt");
    }

    #[test]
    fn names_cannot_escape_hide_or_carry_control_characters() {
        for (original, expected) in [
            ("../../etc/passwd", "01-passwd.pdf"),
            (
                "C:\\Users\\Ann\\Desktop\\Brief an Bank.pdf",
                "01-Brief_an_Bank.pdf",
            ),
            (".hidden.pdf", "01-hidden.pdf"),
            ("..", "01-document.pdf"),
            ("a\r\nb\0c\u{7f}.pdf", "01-a_b_c.pdf"),
            ("résumé.pdf", "01-résumé.pdf"),
            ("a:b*c?d|e<f>\"g.pdf", "01-a_b_c_d_e_f_g.pdf"),
            ("   ", "01-document.pdf"),
        ] {
            assert_eq!(
                document_name(1, Some(original), Kind::Pdf),
                expected,
                "{original:?}"
            );
        }
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let name = document_name(7, Some(&"é".repeat(300)), Kind::Jpeg);
        assert!(name.len() <= MAX_NAME_LEN, "{}", name.len());
        assert!(
            name.starts_with("07-éé") && name.ends_with("é.jpg"),
            "{name}"
        );
        let name = document_name(7, Some(&"x".repeat(300)), Kind::Pdf);
        assert_eq!(name.len(), MAX_NAME_LEN);
    }

    #[test]
    fn extension_of_a_name() {
        assert_eq!(extension("a/b/scan.PDF").as_deref(), Some("pdf"));
        assert_eq!(extension(".profile"), None);
        assert_eq!(extension("README"), None);
    }
}

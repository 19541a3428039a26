//! Tests of the rules in `inbound.rs`, one mail shape at a time. The real
//! shapes (Outlook, Gmail, Apple Mail, MFPs, Thunderbird, a forwarded mail)
//! are files under `mail/tests/fixtures/`, written with LF and sent with
//! CRLF as SMTP DATA delivers them; the small cases are written here.

use base64::Engine as _;

use super::{Document, FaxMail, Kind, MAX_PARTS, ReadError, read};

/// The attachments of the fixtures, as their base64 there decodes.
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";
const PDF_B64: &str = "JVBERi0xLjQKMSAwIG9iajw8L1R5cGUvQ2F0YWxvZy9QYWdlcyAyIDAgUj4+ZW5kb2JqCjIgMCBvYmo8PC9UeXBlL1BhZ2VzL0tpZHNbXS9Db3VudCAwPj5lbmRvYmoKdHJhaWxlcjw8L1Jvb3QgMSAwIFI+PgolJUVPRgo=";
const PNG_B64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAsTj2FAAAAABJRU5ErkJggg==";
/// Little-endian, one 8x2 uncompressed bilevel strip.
const TIFF_B64: &str = "SUkqAAgAAAAJAAABAwABAAAACAAAAAEBAwABAAAAAgAAAAIBAwABAAAAAQAAAAMBAwABAAAAAQAAAAYBAwABAAAAAAAAABEBBAABAAAAegAAABUBAwABAAAAAQAAABYBAwABAAAAAgAAABcBBAABAAAAAgAAAAAAAACBGA==";

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// LF to CRLF, as the mail arrives by SMTP DATA.
fn crlf(lf: &str) -> Vec<u8> {
    lf.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

fn read_lf(lf: &str) -> Result<FaxMail, ReadError> {
    read(&crlf(lf))
}

/// A mail with the usual headers and the given MIME headers and body.
fn mail(mime: &str) -> Vec<u8> {
    crlf(&format!(
        "From: Ann <ann@example.org>\nTo: 1002@fax.example\nSubject: test\n\
         Message-ID: <t1@example.org>\nMIME-Version: 1.0\n{mime}"
    ))
}

/// A multipart/mixed mail of a text body and the given parts (each its
/// headers, an empty line and its body).
fn mixed(parts: &[&str]) -> Vec<u8> {
    let mut body = String::from(
        "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\n\
         Content-Type: text/plain; charset=utf-8\n\nPlease fax.\n",
    );
    for part in parts {
        body.push_str("--b1\n");
        body.push_str(part);
        body.push('\n');
    }
    body.push_str("--b1--\n");
    mail(&body)
}

fn names(mail: &FaxMail) -> Vec<&str> {
    mail.documents.iter().map(|d| d.name.as_str()).collect()
}

fn malformed(raw: &[u8]) -> String {
    match read(raw) {
        Err(ReadError::Malformed(why)) => why,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn unsupported(raw: &[u8]) -> (String, String) {
    match read(raw) {
        Err(ReadError::Unsupported { name, content_type }) => (name, content_type),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

// The real shapes.

#[test]
fn outlook_mixed_with_alternative_and_two_attachments() {
    let mail = read_lf(include_str!("../../tests/fixtures/outlook.eml")).unwrap();
    assert_eq!(mail.from.as_deref(), Some("Anna.Meier@corp.example"));
    assert_eq!(mail.subject.as_deref(), Some("Rechnung für Dezember"));
    assert_eq!(
        mail.message_id.as_deref(),
        Some("AM0PR07MB4321A1B2C3D4E5F6@AM0PR07MB4321.eurprd07.prod.outlook.com")
    );
    assert_eq!(
        mail.documents,
        vec![
            Document {
                name: "01-Rechnung_2024-12.pdf".into(),
                kind: Kind::Pdf,
                data: PDF.to_vec()
            },
            Document {
                name: "02-Lageplan.png".into(),
                kind: Kind::Png,
                data: b64(PNG_B64)
            },
        ]
    );
    // text/plain preferred over the HTML; quoted-printable ISO-8859-1 decoded.
    let body = mail.body_text.unwrap();
    assert!(body.starts_with("Sehr geehrte Damen und Herren,"), "{body}");
    assert!(
        body.ends_with("Mit freundlichen Grüßen\r\nAnna Meier"),
        "{body:?}"
    );
    assert!(!body.contains('<'), "{body}");
}

#[test]
fn gmail_inline_logo_referenced_by_cid_is_skipped() {
    let mail = read_lf(include_str!("../../tests/fixtures/gmail_inline_logo.eml")).unwrap();
    // The PDF has a Content-ID too (Gmail gives every attachment one), but
    // no HTML refers to it: it is a document.
    assert_eq!(names(&mail), ["01-contract-signed.pdf"]);
    assert_eq!(mail.documents[0].data, PDF);
    assert_eq!(mail.from.as_deref(), Some("bob.builder@gmail.com"));
    let body = mail.body_text.unwrap();
    assert!(body.starts_with("Here is the signed contract."), "{body}");
    assert!(body.contains("[image: logo.png]"), "{body}");
}

#[test]
fn apple_mail_attachment_inside_the_html_branch_of_alternative() {
    let mail = read_lf(include_str!("../../tests/fixtures/apple_mail.eml")).unwrap();
    assert_eq!(names(&mail), ["01-Scan.pdf"]);
    assert_eq!(mail.documents[0].data, PDF);
    assert_eq!(
        mail.body_text.as_deref(),
        Some("Please fax this to the bank.\r\n\r\nCarol")
    );
    assert_eq!(
        mail.message_id.as_deref(),
        Some("8F2E1D3C-4B5A-6978-8A9B-C0D1E2F3A4B5@icloud.com")
    );
}

#[test]
fn t37_mfp_multipart_gives_one_tiff() {
    let mail = read_lf(include_str!("../../tests/fixtures/t37_ricoh.eml")).unwrap();
    assert_eq!(
        mail.documents,
        vec![Document {
            name: "01-20241206112033.tif".into(),
            kind: Kind::Tiff,
            data: b64(TIFF_B64),
        }]
    );
    assert_eq!(
        mail.body_text.as_deref(),
        Some("This is an Internet fax from RICOH MP C3004.")
    );
    assert_eq!(mail.subject.as_deref(), Some("Fax Image (1 page)"));
}

#[test]
fn t37_tiff_as_the_whole_body_gives_one_tiff() {
    let mail = read_lf(include_str!("../../tests/fixtures/t37_single_part.eml")).unwrap();
    assert_eq!(
        mail.documents,
        vec![Document {
            name: "01-document.tif".into(),
            kind: Kind::Tiff,
            data: b64(TIFF_B64)
        }]
    );
    assert_eq!(mail.body_text, None);
    assert_eq!(mail.from.as_deref(), Some("mfc@office.example"));
}

#[test]
fn forwarded_mail_gives_its_attachments_but_not_its_text() {
    let mail = read_lf(include_str!("../../tests/fixtures/forwarded.eml")).unwrap();
    assert_eq!(names(&mail), ["01-lease.pdf"]);
    assert_eq!(mail.documents[0].data, PDF);
    assert_eq!(
        mail.body_text.as_deref(),
        Some("Please fax the attached lease.")
    );
    assert_eq!(mail.subject.as_deref(), Some("Fwd: Lease agreement"));
    assert_eq!(mail.message_id.as_deref(), Some("fwd-1@example.org"));
}

#[test]
fn forwarded_mail_in_base64_and_forwarded_twice() {
    let inner = "From: x@example.net\r\nSubject: inner\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=\"i\"\r\n\r\n--i\r\n\
                 Content-Type: text/plain\r\n\r\nhi\r\n--i\r\n\
                 Content-Type: image/png; name=\"a.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_owned()
        + PNG_B64
        + "\r\n--i--\r\n";
    let encoded = base64::engine::general_purpose::STANDARD.encode(inner.as_bytes());
    let once = mixed(&[&format!(
        "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{encoded}"
    )]);
    let mail = read(&once).unwrap();
    assert_eq!(names(&mail), ["01-a.png"]);
    assert_eq!(mail.documents[0].data, b64(PNG_B64));

    // Forwarded inside a forwarded mail. (Not message/rfc822 directly
    // inside message/rfc822 inside a multipart: mail-parser 0.11.9 trips a
    // debug_assert! on that shape in debug builds.)
    let twice = mixed(&[&format!(
        "Content-Type: message/rfc822\n\nFrom: y@example.net\nSubject: Fwd\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"m\"\n\n--m\n\
         Content-Type: message/rfc822\n\n{inner}\n--m--\n"
    )]);
    assert_eq!(names(&read(&twice).unwrap()), ["01-a.png"]);
}

#[test]
fn rfc2231_and_rfc2047_file_names_and_subject() {
    let mail = read_lf(include_str!("../../tests/fixtures/thunderbird_rfc2231.eml")).unwrap();
    assert_eq!(
        names(&mail),
        ["01-résumé.pdf", "02-Lettre_de_motivation_Renée_Dupont.png"]
    );
    assert_eq!(
        mail.subject.as_deref(),
        Some("CV et lettre de motivation – Renée")
    );
    assert_eq!(mail.from.as_deref(), Some("renee@example.com"));
    assert_eq!(
        mail.body_text.as_deref(),
        Some("Bonjour, voici mon CV et ma lettre.\r\nRenée")
    );
}

#[test]
fn rfc2047_encoded_name_parameter() {
    let raw = mixed(&[&format!(
        "Content-Type: application/pdf; name=\"=?UTF-8?B?w5xiZXJzaWNodC5wZGY=?=\"\n\
         Content-Transfer-Encoding: base64\n\n{PDF_B64}"
    )]);
    assert_eq!(names(&read(&raw).unwrap()), ["01-Übersicht.pdf"]);
}

#[test]
fn quoted_printable_text_with_an_encoded_subject() {
    let raw = crlf(
        "From: =?ISO-8859-1?Q?J=F6rg?= <joerg@Example.DE>\n\
         To: 1002@fax.example\n\
         Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?= =?UTF-8?B?IOKYgA==?=\n\
         Message-ID: <qp@example.de>\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=ISO-8859-1\n\
         Content-Transfer-Encoding: quoted-printable\n\n\
         Bitte an die Beh=F6rde faxen. Eine lange Zeile, die mit einem weichen Zeilen=\n\
         umbruch weitergeht.\n\n\n",
    );
    let mail = read(&raw).unwrap();
    assert_eq!(mail.subject.as_deref(), Some("Grüße aus Köln ☀"));
    assert_eq!(mail.from.as_deref(), Some("joerg@example.de"));
    assert_eq!(
        mail.body_text.as_deref(),
        Some(
            "Bitte an die Behörde faxen. Eine lange Zeile, die mit einem weichen Zeilenumbruch weitergeht."
        )
    );
    assert!(mail.documents.is_empty());
}

#[test]
fn bare_lf_line_endings_are_read_too() {
    let lf = include_str!("../../tests/fixtures/outlook.eml");
    let mail = read(lf.replace("\r\n", "\n").as_bytes()).unwrap();
    assert_eq!(names(&mail), ["01-Rechnung_2024-12.pdf", "02-Lageplan.png"]);
    assert_eq!(mail.documents[0].data, PDF);
}

#[test]
fn html_only_body_is_rendered_to_text() {
    let raw = mail(
        "Content-Type: text/html; charset=utf-8\n\n\
         <html><body><p>Hello <b>fax</b> &amp; friends</p>\n<p>  </p></body></html>\n",
    );
    let mail = read(&raw).unwrap();
    let body = mail.body_text.unwrap();
    assert!(body.contains("Hello fax & friends"), "{body:?}");
    assert!(!body.contains('<'), "{body:?}");
    assert!(mail.documents.is_empty());
}

#[test]
fn whitespace_only_body_is_none() {
    let raw = mail("Content-Type: text/plain\n\n  \n\t\n");
    assert_eq!(read(&raw).unwrap().body_text, None);
    let headers_only = crlf("From: a@example.org\nSubject: nothing\n\n");
    let mail = read(&headers_only).unwrap();
    assert_eq!(mail.body_text, None);
    assert!(mail.documents.is_empty());
}

// Which parts are documents.

#[test]
fn text_plain_attachments_are_text_documents_in_utf8() {
    let raw = mixed(&[
        "Content-Type: text/plain; charset=iso-8859-1\n\
         Content-Disposition: attachment; filename=\"Notiz.txt\"\n\
         Content-Transfer-Encoding: quoted-printable\n\nGr=FC=DFe",
        // A file name alone makes it an attachment too.
        "Content-Type: text/plain; charset=utf-8; name=\"zwei\"\n\nzwei",
        // Inline and nameless: more body, not a document.
        "Content-Type: text/plain\n\nP.S. thanks",
    ]);
    let mail = read(&raw).unwrap();
    assert_eq!(
        mail.documents,
        vec![
            Document {
                name: "01-Notiz.txt".into(),
                kind: Kind::Text,
                data: "Grüße".into()
            },
            Document {
                name: "02-zwei.txt".into(),
                kind: Kind::Text,
                data: b"zwei".to_vec()
            },
        ]
    );
    assert_eq!(
        mail.body_text.as_deref(),
        Some("Please fax.\n\nP.S. thanks")
    );
}

#[test]
fn kind_by_content_first_then_content_type_then_extension() {
    let raw = mixed(&[
        // Mislabelled: the content wins.
        &format!(
            "Content-Type: application/octet-stream; name=\"scan\"\nContent-Transfer-Encoding: base64\n\n{PDF_B64}"
        ),
        &format!(
            "Content-Type: image/jpeg; name=\"photo.jpg\"\nContent-Transfer-Encoding: base64\n\n{PNG_B64}"
        ),
        // Content we cannot tell: the Content-Type, then the extension.
        "Content-Type: image/gif; name=\"a\"\n\nnot really a gif",
        "Content-Type: application/octet-stream; name=\"Brief.TIFF\"\n\nnot really a tiff",
    ]);
    let mail = read(&raw).unwrap();
    let kinds: Vec<(&str, Kind)> = mail
        .documents
        .iter()
        .map(|d| (d.name.as_str(), d.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("01-scan.pdf", Kind::Pdf),
            ("02-photo.png", Kind::Png),
            ("03-a.gif", Kind::Gif),
            ("04-Brief.tif", Kind::Tiff),
        ]
    );
}

#[test]
fn same_file_name_twice_gets_two_names() {
    let part = format!(
        "Content-Type: application/pdf; name=\"../scan.pdf\"\nContent-Transfer-Encoding: base64\n\n{PDF_B64}"
    );
    let mail = read(&mixed(&[&part, &part])).unwrap();
    assert_eq!(names(&mail), ["01-scan.pdf", "02-scan.pdf"]);
}

#[test]
fn related_resources_are_skipped_but_named_related_attachments_are_documents() {
    let raw = mail(&format!(
        "Content-Type: multipart/related; boundary=\"r\"\n\n--r\n\
         Content-Type: text/html\n\n<p>Logo: <img src=\"cid:logo%40x\"> and <img src=\"bg.png\"></p>\n--r\n\
         Content-Type: image/png\nContent-ID: <LOGO@x>\nContent-Transfer-Encoding: base64\n\n{PNG_B64}\n--r\n\
         Content-Type: image/png\nContent-Location: bg.png\nContent-Transfer-Encoding: base64\n\n{PNG_B64}\n--r\n\
         Content-Type: application/pdf\nContent-Disposition: attachment; filename=\"plan.pdf\"\n\
         Content-Transfer-Encoding: base64\n\n{PDF_B64}\n--r--\n"
    ));
    let mail = read(&raw).unwrap();
    assert_eq!(names(&mail), ["01-plan.pdf"]);
    assert_eq!(mail.body_text.as_deref(), Some("Logo: and"));
}

#[test]
fn cid_referenced_image_with_a_file_name_is_still_skipped() {
    let raw = mail(&format!(
        "Content-Type: multipart/mixed; boundary=\"m\"\n\n--m\n\
         Content-Type: text/html\n\n<img src='cid:sig.png@01DB4A'>Regards\n--m\n\
         Content-Type: image/png; name=\"sig.png\"\nContent-Disposition: inline; filename=\"sig.png\"\n\
         Content-ID: <sig.png@01DB4A>\nContent-Transfer-Encoding: base64\n\n{PNG_B64}\n--m--\n"
    ));
    let mail = read(&raw).unwrap();
    assert!(mail.documents.is_empty(), "{:?}", names(&mail));
    assert_eq!(mail.body_text.as_deref(), Some("Regards"));
}

#[test]
fn signatures_keys_vcards_and_reports_are_skipped() {
    let raw = mail(&format!(
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
         micalg=sha-256; boundary=\"s\"\n\n--s\n\
         Content-Type: multipart/mixed; boundary=\"m\"\n\n--m\n\
         Content-Type: text/plain\n\nSigned.\n--m\n\
         Content-Type: application/pdf; name=\"a.pdf\"\nContent-Transfer-Encoding: base64\n\n{PDF_B64}\n--m\n\
         Content-Type: text/vcard; name=\"ann.vcf\"\nContent-Disposition: attachment; filename=\"ann.vcf\"\n\n\
         BEGIN:VCARD\nVERSION:4.0\nFN:Ann\nEND:VCARD\n--m\n\
         Content-Type: text/x-vcard; name=\"old.vcf\"\n\nBEGIN:VCARD\nEND:VCARD\n--m\n\
         Content-Type: application/pgp-keys; name=\"OpenPGP_0x1234.asc\"\n\n\
         -----BEGIN PGP PUBLIC KEY BLOCK-----\n--m\n\
         Content-Type: application/pgp-signature; name=\"signature.asc\"\n\n\
         -----BEGIN PGP SIGNATURE-----\n--m\n\
         Content-Type: application/x-pkcs7-signature; name=\"old.p7s\"\nContent-Transfer-Encoding: base64\n\nMIIB\n--m--\n\
         --s\n\
         Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\n\
         Content-Disposition: attachment; filename=\"smime.p7s\"\nContent-Transfer-Encoding: base64\n\n\
         MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCCAzgw\n--s--\n"
    ));
    let mail = read(&raw).unwrap();
    assert_eq!(names(&mail), ["01-a.pdf"]);
    assert_eq!(mail.body_text.as_deref(), Some("Signed."));
}

#[test]
fn a_delivery_report_has_no_documents() {
    let raw = mail(
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"d\"\n\n--d\n\
         Content-Type: text/plain\n\nYour message could not be delivered.\n--d\n\
         Content-Type: message/delivery-status\n\n\
         Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; x@example.org\n\
         Action: failed\nStatus: 5.1.1\n--d\n\
         Content-Type: text/rfc822-headers\n\nFrom: a@example.org\nSubject: hi\n--d--\n",
    );
    let mail = read(&raw).unwrap();
    assert!(mail.documents.is_empty());
    assert_eq!(
        mail.body_text.as_deref(),
        Some("Your message could not be delivered.")
    );
}

#[test]
fn other_renderings_in_alternative_are_skipped() {
    let raw = mail(
        "Content-Type: multipart/alternative; boundary=\"a\"\n\n--a\n\
         Content-Type: text/plain\n\nMeeting at 10.\n--a\n\
         Content-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\nEND:VCALENDAR\n--a\n\
         Content-Type: text/html\n\n<p>Meeting at 10.</p>\n--a--\n",
    );
    let mail = read(&raw).unwrap();
    assert!(mail.documents.is_empty());
    assert_eq!(mail.body_text.as_deref(), Some("Meeting at 10."));
}

// Refused.

#[test]
fn office_documents_and_archives_are_refused_by_name_and_type() {
    let docx = "UEsDBBQABgAIAAAAIQDfpNJsWgEAACAFAAATAAgCW0NvbnRlbnRfVHlwZXNdLnhtbCCiBAIooAAC";
    let docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    let raw = mixed(&[&format!(
        "Content-Type: {docx_type}; name=\"Angebot.docx\"\n\
         Content-Disposition: attachment; filename=\"Angebot.docx\"\n\
         Content-Transfer-Encoding: base64\n\n{docx}"
    )]);
    assert_eq!(unsupported(&raw), ("Angebot.docx".into(), docx_type.into()));

    // A ZIP labelled as a PDF is still a ZIP.
    let raw = mixed(&[&format!(
        "Content-Type: application/pdf; name=\"a.pdf\"\nContent-Transfer-Encoding: base64\n\n{docx}"
    )]);
    assert_eq!(
        unsupported(&raw),
        ("a.pdf".into(), "application/pdf".into())
    );
}

#[test]
fn winmail_dat_is_refused_with_a_hint() {
    let raw = mixed(
        &["Content-Type: application/ms-tnef; name=\"winmail.dat\"\n\
         Content-Disposition: attachment; filename=\"winmail.dat\"\n\
         Content-Transfer-Encoding: base64\n\neJ8+IhAAAQaQCAAEAAAAAAABAAEAAQeQBgAIAAAA5AQAAAAAAADoAAEIgAcAGAAAAElQTS5NaWNy"],
    );
    let err = read(&raw).unwrap_err();
    assert_eq!(
        err,
        ReadError::Unsupported {
            name: "winmail.dat".into(),
            content_type: "application/ms-tnef".into()
        }
    );
    let message = err.to_string();
    assert!(message.contains("\"winmail.dat\""), "{message}");
    assert!(message.contains("HTML or plain text"), "{message}");
}

#[test]
fn unknown_octet_stream_is_refused_not_dropped() {
    let raw = mixed(&[
        "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAECAwQF",
    ]);
    assert_eq!(
        unsupported(&raw),
        ("(no file name)".into(), "application/octet-stream".into())
    );
    // A name with control characters is shown without them.
    let raw = mixed(&["Content-Type: application/x-foo; name=\"a\u{7}b.bin\"\n\nxyz"]);
    assert_eq!(unsupported(&raw).0, "ab.bin");
}

#[test]
fn html_attachment_is_refused() {
    let raw = mixed(&["Content-Type: text/html; name=\"page.html\"\n\n<p>hi</p>"]);
    assert_eq!(unsupported(&raw), ("page.html".into(), "text/html".into()));
}

#[test]
fn encrypted_mail_is_refused() {
    let raw = mail(
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"e\"\n\n--e\n\
         Content-Type: application/pgp-encrypted\n\nVersion: 1\n--e\n\
         Content-Type: application/octet-stream; name=\"encrypted.asc\"\n\n\
         -----BEGIN PGP MESSAGE-----\n--e--\n",
    );
    assert_eq!(unsupported(&raw).1, "multipart/encrypted");
}

// Malformed.

#[test]
fn no_header_section_is_malformed() {
    for raw in [
        &b""[..],
        b"\r\n\r\n",
        b"Hello, please fax this.\r\n\r\nThanks\r\n",
        b"\r\nSubject: late\r\n\r\nbody\r\n",
        b": no name\r\n\r\nbody\r\n",
        b"\x00\x01\x02",
    ] {
        let why = malformed(raw);
        assert!(
            why.contains("header") || why.contains("empty"),
            "{raw:?}: {why}"
        );
    }
}

#[test]
fn multipart_without_boundary_is_malformed() {
    let raw = mail("Content-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\nhi\n--x--\n");
    let why = malformed(&raw);
    assert!(
        why.contains("multipart/mixed") && why.contains("no boundary"),
        "{why}"
    );
    // Nested too.
    let raw = mixed(&["Content-Type: multipart/alternative\n\nhi"]);
    assert!(malformed(&raw).contains("multipart/alternative"));
}

#[test]
fn boundary_that_never_occurs_is_malformed() {
    let raw = mail(&format!(
        "Content-Type: multipart/mixed; boundary=\"expected\"\n\n--other\n\
         Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n{PDF_B64}\n--other--\n"
    ));
    let why = malformed(&raw);
    assert!(
        why.contains("\"expected\"") && why.contains("never occurs"),
        "{why}"
    );
}

#[test]
fn bad_base64_is_malformed() {
    // A character outside base64: mail-parser keeps the part as raw text.
    let raw = mixed(&[
        "Content-Type: application/pdf; name=\"scan.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0x*LjQK",
    ]);
    let why = malformed(&raw);
    assert!(why.contains("\"scan.pdf\"") && why.contains("'*'"), "{why}");
    // A dangling last character: mail-parser drops it without a word.
    let raw = mixed(&[
        "Content-Type: application/pdf; name=\"cut.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQKJ",
    ]);
    assert!(malformed(&raw).contains("cut"));
    // The top-level part, and a skipped part: a damaged mail either way.
    let raw = mail(
        "Content-Type: image/tiff; application=faxbw\nContent-Transfer-Encoding: base64\n\nSUkq!AAA\n",
    );
    assert!(malformed(&raw).contains("image/tiff"));
    let raw = mixed(&[
        "Content-Type: application/pkcs7-signature\nContent-Transfer-Encoding: base64\n\nMII$",
    ]);
    assert!(malformed(&raw).contains("'$'"));
}

#[test]
fn unknown_transfer_encoding_of_an_attachment_is_malformed() {
    let raw = mixed(&[
        "Content-Type: application/pdf; name=\"old.pdf\"\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 old.pdf\nend",
    ]);
    let why = malformed(&raw);
    assert!(
        why.contains("x-uuencode") && why.contains("old.pdf"),
        "{why}"
    );
}

#[test]
fn forwarded_mail_without_headers_is_malformed() {
    let raw = mixed(&["Content-Type: message/rfc822\n\n\nno headers here"]);
    assert!(malformed(&raw).contains("message/rfc822"));
}

#[test]
fn missing_closing_boundary_is_tolerated() {
    let raw = mail(&format!(
        "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nhi\n--b\n\
         Content-Type: application/pdf; name=\"a.pdf\"\nContent-Transfer-Encoding: base64\n\n{PDF_B64}\n"
    ));
    let mail = read(&raw).unwrap();
    assert_eq!(names(&mail), ["01-a.pdf"]);
    assert_eq!(mail.documents[0].data, PDF);
}

// Limits.

#[test]
fn at_most_max_parts() {
    // The root, the text and 98 attachments: 100 parts.
    let part = "Content-Type: text/plain; name=\"n.txt\"\n\nx";
    let raw = mixed(&vec![part; MAX_PARTS - 2]);
    let mail = read(&raw).unwrap();
    assert_eq!(mail.documents.len(), MAX_PARTS - 2);
    assert_eq!(mail.documents[97].name, "98-n.txt");

    let raw = mixed(&vec![part; MAX_PARTS - 1]);
    assert_eq!(read(&raw), Err(ReadError::TooManyParts(MAX_PARTS + 1)));
}

#[test]
fn deeply_nested_forwarded_mails_do_not_overflow_the_stack() {
    // Run on a thread with a 2 MB stack, as tokio's workers have.
    let raw: Vec<u8> = "Content-Type: message/rfc822\r\n\r\n"
        .repeat(20_000)
        .into_bytes();
    let result = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || read(&raw))
        .unwrap()
        .join()
        .unwrap();
    assert!(
        matches!(
            result,
            Err(ReadError::TooManyParts(_) | ReadError::Malformed(_))
        ),
        "{result:?}"
    );
}

#[test]
fn error_messages_say_what_to_do() {
    let unsupported = ReadError::Unsupported {
        name: "Angebot.docx".into(),
        content_type: "application/msword".into(),
    }
    .to_string();
    assert_eq!(
        unsupported,
        "cannot fax the attachment \"Angebot.docx\" (application/msword): only PDF, TIFF, PNG, \
         JPEG, GIF, BMP and plain text files can be faxed; convert it to PDF and send again"
    );
    assert_eq!(
        ReadError::TooManyParts(140).to_string(),
        "the mail has 140 MIME parts, more than the 100 we read; send fewer attachments per mail"
    );
    assert_eq!(
        ReadError::Malformed("it is empty".into()).to_string(),
        "the mail cannot be read: it is empty; send it again, or from another mail program"
    );
}

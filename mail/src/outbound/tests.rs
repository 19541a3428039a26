//! The mails of `outbound.rs`, read back with mail-parser: attachments
//! byte-identical, content types and their parameters, the DSN fields, and
//! no header injected from outside values.

use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::{FaxStatus, ReceivedFax, fax_status, received_fax, status_code};

/// Bytes that survive no text encoding: every byte value, CR and LF alone.
fn binary(len: usize) -> Vec<u8> {
    let mut data = b"II*\0\x08\0\0\0\r\n\n\r".to_vec();
    data.extend((0..len).map(|i| (i * 7 + 3) as u8));
    data
}

fn fax<'a>(tiff: Option<&'a [u8]>, pdf: Option<&'a [u8]>) -> ReceivedFax<'a> {
    ReceivedFax {
        from: "fax@gw.example",
        to: "mfp@office.example",
        caller: "+49 30 1234567",
        callee: "1002",
        call_id: "c-7f3a",
        pages: 3,
        received: "2024-12-06T11:20:33+01:00",
        tiff,
        pdf,
        report_json: "{\"pages\":3,\"caller\":\"+49 30 1234567\",\"note\":\"grüße\"}",
        hostname: "gw.example",
    }
}

fn status<'a>(delivered: bool, reason: &'a str) -> FaxStatus<'a> {
    FaxStatus {
        from: "fax@gw.example",
        to: "ann@example.org",
        in_reply_to: Some("orig-1@example.org"),
        original_subject: Some("Contract"),
        recipient: "1002@fax.example",
        number: "1002",
        delivered,
        pages: 3,
        pages_confirmed: if delivered { 3 } else { 1 },
        tries: if delivered { 1 } else { 5 },
        reason,
        advice: if delivered {
            ""
        } else {
            "Try again later, or call them."
        },
        job_id: 42,
        report_json: "{\"job\":42}",
        reporting_host: "gw.example",
        arrival_date: Some("Fri, 6 Dec 2024 11:20:33 +0100"),
    }
}

fn parse(raw: &[u8]) -> Message<'_> {
    MessageParser::default().parse(raw).unwrap()
}

fn header<'a>(message: &'a Message<'_>, name: &str) -> Option<&'a str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
        .and_then(|h| h.value().as_text())
}

/// Every line ends in CRLF, and no line is a header that was not written on
/// purpose (an injected `Bcc:` or `X-Evil:`).
fn assert_clean(raw: &[u8]) {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    assert!(text.ends_with("\r\n"));
    assert!(
        !text.replace("\r\n", "").contains(['\r', '\n']),
        "a bare CR or LF"
    );
    for line in text.split("\r\n") {
        assert!(
            !line.starts_with("Bcc:") && !line.starts_with("X-Evil:"),
            "{line:?}"
        );
    }
}

fn binary_of<'a>(message: &'a Message<'_>, name: &str) -> &'a [u8] {
    let part = message
        .attachments()
        .find(|p| p.attachment_name() == Some(name))
        .unwrap_or_else(|| panic!("no attachment {name}"));
    part.contents()
}

#[test]
fn received_fax_attaches_tiff_pdf_and_json_byte_identical() {
    let tiff = binary(5000);
    let pdf = b"%PDF-1.4\n\x00\xff\r\n%%EOF\n".to_vec();
    let raw = received_fax(&fax(Some(&tiff), Some(&pdf)));
    assert_clean(&raw);
    let message = parse(&raw);

    assert_eq!(message.subject(), Some("Fax from +49 30 1234567: 3 pages"));
    assert_eq!(
        message.from().unwrap().first().unwrap().address(),
        Some("fax@gw.example")
    );
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("mfp@office.example")
    );
    assert!(message.date().is_some());
    let id = message.message_id().unwrap();
    assert!(
        id.starts_with("fax-c-7f3a.") && id.ends_with("@gw.example"),
        "{id}"
    );
    assert_eq!(header(&message, "X-Faxmesh-Caller"), Some("+49 30 1234567"));
    assert_eq!(header(&message, "X-Faxmesh-Callee"), Some("1002"));
    assert_eq!(header(&message, "X-Faxmesh-Call-Id"), Some("c-7f3a"));
    assert_eq!(header(&message, "X-Faxmesh-Pages"), Some("3"));
    assert_eq!(header(&message, "Auto-Submitted"), Some("auto-generated"));

    let body = message.body_text(0).unwrap();
    for expected in [
        "+49 30 1234567",
        "1002",
        "2024-12-06T11:20:33+01:00",
        "Pages:    3",
        "c-7f3a",
    ] {
        assert!(body.contains(expected), "{expected} in {body}");
    }

    // The TIFF as a T.37 device wants it (RFC 3250).
    let tiff_part = message
        .attachments()
        .find(|p| p.attachment_name() == Some("fax-c-7f3a.tif"))
        .unwrap();
    let content_type = tiff_part.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("image", Some("tiff"))
    );
    assert_eq!(content_type.attribute("application"), Some("faxbw"));
    assert_eq!(tiff_part.content_transfer_encoding(), Some("base64"));
    assert!(tiff_part.content_disposition().unwrap().is_attachment());
    assert_eq!(tiff_part.contents(), tiff);

    assert_eq!(binary_of(&message, "fax-c-7f3a.pdf"), pdf);
    let pdf_type = message
        .attachments()
        .find(|p| p.attachment_name() == Some("fax-c-7f3a.pdf"))
        .and_then(|p| p.content_type())
        .unwrap();
    assert_eq!(pdf_type.subtype(), Some("pdf"));

    let json = message
        .attachments()
        .find(|p| p.attachment_name() == Some("report.json"))
        .unwrap();
    assert_eq!(json.content_type().unwrap().subtype(), Some("json"));
    assert_eq!(
        json.text_contents().unwrap(),
        "{\"pages\":3,\"caller\":\"+49 30 1234567\",\"note\":\"grüße\"}"
    );
}

#[test]
fn received_fax_without_tiff_or_pdf_and_one_page() {
    let mut one = fax(None, None);
    one.pages = 1;
    one.caller = "";
    let raw = received_fax(&one);
    let message = parse(&raw);
    assert_eq!(message.subject(), Some("Fax from unknown: 1 page"));
    let names: Vec<_> = message
        .attachments()
        .filter_map(|p| p.attachment_name())
        .collect();
    assert_eq!(names, ["report.json"]);
}

#[test]
fn received_fax_reads_back_as_one_t37_tiff_document() {
    // What gatewayd writes, a faxmesh gateway reads: the two modules agree.
    let tiff = binary(300);
    let raw = received_fax(&fax(Some(&tiff), None));
    let err = crate::inbound::read(&raw).unwrap_err();
    // report.json is not faxable: inbound refuses it, as it should.
    assert!(err.to_string().contains("report.json"), "{err}");
}

#[test]
fn received_fax_values_cannot_inject_headers() {
    let mut evil = fax(None, None);
    evil.caller = "123\r\nBcc: victim@example.org";
    evil.call_id = "x\nX-Evil: 1";
    evil.to = "mfp@office.example\r\nBcc: victim@example.org";
    evil.hostname = "gw.example>\r\nX-Evil: 1";
    let raw = received_fax(&evil);
    assert_clean(&raw);
    let message = parse(&raw);
    assert_eq!(
        message.subject(),
        Some("Fax from 123 Bcc: victim@example.org: 3 pages")
    );
    assert!(message.bcc().is_none());
    assert!(header(&message, "X-Evil").is_none());
    let names: Vec<_> = message
        .attachments()
        .filter_map(|p| p.attachment_name())
        .collect();
    assert_eq!(names, ["report.json"]);
}

#[test]
fn fax_status_delivered_is_a_dsn() {
    let raw = fax_status(&status(true, ""));
    assert_clean(&raw);
    let message = parse(&raw);
    assert_eq!(message.subject(), Some("Fax to 1002 delivered: 3 pages"));
    assert_eq!(header(&message, "Auto-Submitted"), Some("auto-replied"));
    assert_eq!(header(&message, "X-Faxmesh-Job-Id"), Some("42"));
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Fax delivery"), Some("fax@gw.example"))
    );
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("ann@example.org")
    );
    assert_eq!(
        message.in_reply_to(),
        &HeaderValue::Text("orig-1@example.org".into())
    );
    assert_eq!(
        message.references(),
        &HeaderValue::Text("orig-1@example.org".into())
    );
    let id = message.message_id().unwrap();
    assert!(
        id.starts_with("status-42.") && id.ends_with("@gw.example"),
        "{id}"
    );

    let root = message.content_type().unwrap();
    assert_eq!(
        (root.ctype(), root.subtype()),
        ("multipart", Some("report"))
    );
    assert_eq!(root.attribute("report-type"), Some("delivery-status"));

    let human = message.body_text(0).unwrap();
    assert!(
        human.contains("Your fax \"Contract\" to 1002 (1002@fax.example) was delivered."),
        "{human}"
    );
    assert!(human.contains("Pages confirmed: 3 of 3"), "{human}");
    assert!(human.contains("Tries:           1"), "{human}");
    assert!(!human.contains("What to try"), "{human}");

    let dsn = delivery_status_of(&message);
    assert_eq!(
        dsn,
        "Reporting-MTA: dns; gw.example\r\nArrival-Date: Fri, 6 Dec 2024 11:20:33 +0100\r\n\r\n\
         Final-Recipient: rfc822; 1002@fax.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
    );
    let json = message
        .attachments()
        .find(|p| p.attachment_name() == Some("fax-status.json"))
        .unwrap();
    assert_eq!(json.content_type().unwrap().subtype(), Some("json"));
    assert_eq!(json.text_contents(), Some("{\"job\":42}"));
}

/// The message/delivery-status part's body, as it is on the wire.
fn delivery_status_of(message: &Message<'_>) -> String {
    let part = message
        .parts
        .iter()
        .find(|p| {
            p.content_type().is_some_and(|ct| {
                ct.ctype() == "message" && ct.subtype() == Some("delivery-status")
            })
        })
        .unwrap();
    assert_eq!(part.content_transfer_encoding(), Some("7bit"));
    match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8(b.to_vec()).unwrap(),
        PartType::Text(t) => t.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fax_status_failed_says_why_and_what_to_try() {
    let raw = fax_status(&status(false, "the kill time passed"));
    assert_clean(&raw);
    let message = parse(&raw);
    assert_eq!(
        message.subject(),
        Some("Fax to 1002 failed: the kill time passed")
    );
    let human = message.body_text(0).unwrap();
    for expected in [
        "could not be delivered",
        "Reason:          the kill time passed",
        "Pages confirmed: 1 of 3",
        "Tries:           5",
        "What to try: Try again later, or call them.",
        "Job:             42",
    ] {
        assert!(human.contains(expected), "{expected:?} in {human}");
    }
    let dsn = delivery_status_of(&message);
    assert!(
        dsn.contains("\r\nAction: failed\r\nStatus: 5.4.7\r\n"),
        "{dsn}"
    );
    assert!(
        dsn.ends_with("Diagnostic-Code: X-fax; the kill time passed\r\n"),
        "{dsn}"
    );
}

#[test]
fn fax_status_without_optional_fields() {
    let mut bare = status(false, "busy");
    bare.in_reply_to = None;
    bare.original_subject = None;
    bare.arrival_date = None;
    bare.pages = 1;
    let message_raw = fax_status(&bare);
    let message = parse(&message_raw);
    assert_eq!(message.in_reply_to(), &HeaderValue::Empty);
    assert!(header(&message, "References").is_none());
    let dsn = delivery_status_of(&message);
    assert!(
        dsn.starts_with("Reporting-MTA: dns; gw.example\r\n\r\n"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.0.0"), "{dsn}");
    assert!(
        message
            .body_text(0)
            .unwrap()
            .starts_with("Your fax to 1002 (1002@fax.example)")
    );
}

#[test]
fn status_codes() {
    assert_eq!(status_code(true, ""), "2.0.0");
    assert_eq!(status_code(false, "the kill time passed"), "5.4.7");
    assert_eq!(status_code(false, "secret revoked"), "5.7.1");
    assert_eq!(status_code(false, "Refused by the callee"), "5.7.1");
    assert_eq!(status_code(false, "unknown number"), "5.1.1");
    assert_eq!(status_code(false, "busy"), "5.0.0");
    assert_eq!(status_code(false, ""), "5.0.0");
}

#[test]
fn fax_status_values_cannot_inject_headers_or_dsn_fields() {
    let mut evil = status(false, "busy\r\nBcc: victim@example.org\r\n\r\nX-Evil: 1");
    evil.original_subject = Some("hi\r\nBcc: victim@example.org");
    evil.number = "1002\nX-Evil: 1";
    evil.recipient = "1002@fax.example\r\nAction: delivered";
    evil.in_reply_to = Some("<a@b>\r\nBcc: victim@example.org");
    evil.to = "ann@example.org\r\nBcc: victim@example.org";
    evil.reporting_host = "gw.example\r\nX-Evil: 1";
    evil.arrival_date = Some("today\r\nStatus: 2.0.0");
    let raw = fax_status(&evil);
    assert_clean(&raw);
    let message = parse(&raw);
    assert!(message.bcc().is_none());
    assert!(header(&message, "X-Evil").is_none());
    assert_eq!(
        message.subject(),
        Some("Fax to 1002 X-Evil: 1 failed: busy Bcc: victim@example.org X-Evil: 1")
    );
    let dsn = delivery_status_of(&message);
    // One Action and one Status field, each a single line.
    let starting = |field: &str| dsn.split("\r\n").filter(|l| l.starts_with(field)).count();
    assert_eq!(starting("Action:"), 1, "{dsn}");
    assert_eq!(starting("Status:"), 1, "{dsn}");
    assert_eq!(starting("Bcc:") + starting("X-Evil:"), 0, "{dsn}");
    assert!(dsn.contains("Final-Recipient: rfc822; 1002@fax.example Action: delivered\r\n"));
    assert!(
        dsn.contains("Arrival-Date: today Status: 2.0.0\r\n"),
        "{dsn}"
    );
}

#[test]
fn non_ascii_values_are_encoded() {
    let mut german = status(false, "Gegenstelle antwortet nicht (Zeitüberschreitung)");
    german.original_subject = Some("Kündigung");
    let raw = fax_status(&german);
    assert_clean(&raw);
    assert!(raw.is_ascii(), "headers and parts are 7bit on the wire");
    let message = parse(&raw);
    assert_eq!(
        message.subject(),
        Some("Fax to 1002 failed: Gegenstelle antwortet nicht (Zeitüberschreitung)")
    );
    assert!(message.body_text(0).unwrap().contains("\"Kündigung\""));
    let dsn = delivery_status_of(&message);
    assert!(
        dsn.contains("Diagnostic-Code: X-fax; Gegenstelle antwortet nicht (Zeit?berschreitung)")
    );
}

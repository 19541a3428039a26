//! The mails the gateway writes, with `mail-builder`: a received fax for a
//! mail device ([`received_fax`]), and the delivery status of a fax that
//! came by mail ([`fax_status`], a DSN like HylaFAX's notify).
//!
//! Header injection: every value that comes from outside (numbers, call
//! ids, subjects, reasons, addresses) goes through `one_line` first, which
//! turns control characters, CR and LF among them, into spaces. mail-builder
//! 2.0 would already keep them from starting a header (it encodes control
//! characters in unstructured text and folds at CR/LF, but an address or a
//! Message-ID is written as it is), so this is belt and braces; the tests
//! check the output either way. The delivery-status part is built here, as
//! text, so its fields are sanitized the same way and kept to ASCII.

#[cfg(test)]
mod tests;

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart, make_boundary};

/// A fax the gateway received, to mail to a mail device (an MFP that
/// prints T.37 mail, or a person's mailbox).
#[derive(Debug, Clone, Copy)]
pub struct ReceivedFax<'a> {
    /// The gateway's address, for From.
    pub from: &'a str,
    /// The mail device's address.
    pub to: &'a str,
    /// Fax numbers.
    pub caller: &'a str,
    pub callee: &'a str,
    pub call_id: &'a str,
    pub pages: u32,
    /// When the fax came in, RFC 3339.
    pub received: &'a str,
    /// TIFF-F, attached as `image/tiff; application=faxbw` (RFC 3250), base64.
    pub tiff: Option<&'a [u8]>,
    /// Attached as application/pdf.
    pub pdf: Option<&'a [u8]>,
    /// Attached as application/json, `report.json`.
    pub report_json: &'a str,
    /// The right-hand side of the Message-ID.
    pub hostname: &'a str,
}

/// The mail for a received fax: full RFC 5322 message bytes, CRLF lines.
///
/// Subject `Fax from <caller>: N page(s)`; a short text/plain body; the
/// TIFF as `fax-<call_id>.tif`, the PDF as `fax-<call_id>.pdf` and the
/// report as `report.json`, each an attachment; headers Date, Message-ID,
/// Auto-Submitted: auto-generated (RFC 3834: no vacation replies to the
/// gateway) and `X-Faxmesh-Caller`, `-Callee`, `-Call-Id`, `-Pages`.
pub fn received_fax(m: &ReceivedFax<'_>) -> Vec<u8> {
    let caller = one_line(m.caller);
    let callee = one_line(m.callee);
    let call_id = one_line(m.call_id);
    let received = one_line(m.received);
    let file_stem = format!("fax-{}", file_safe(&call_id));

    let caller_shown = if caller.is_empty() {
        "an unknown number"
    } else {
        caller.as_str()
    };
    let body = format!(
        "You have received a fax.\r\n\
         \r\n\
         From:     {caller_shown}\r\n\
         To:       {callee}\r\n\
         Received: {received}\r\n\
         Pages:    {pages}\r\n\
         Call id:  {call_id}\r\n",
        pages = m.pages,
    );
    let mut parts = vec![MimePart::new("text/plain", body)];
    if let Some(tiff) = m.tiff {
        // RFC 3250: what a T.37 device looks for to print the fax.
        let content_type = ContentType::new("image/tiff").attribute("application", "faxbw");
        parts.push(
            MimePart::new(content_type, BodyPart::Binary(tiff.into()))
                .attachment(format!("{file_stem}.tif")),
        );
    }
    if let Some(pdf) = m.pdf {
        parts.push(
            MimePart::new("application/pdf", BodyPart::Binary(pdf.into()))
                .attachment(format!("{file_stem}.pdf")),
        );
    }
    parts.push(json_attachment(m.report_json, "report.json"));

    let subject = format!(
        "Fax from {}: {}",
        if caller.is_empty() {
            "unknown"
        } else {
            caller.as_str()
        },
        pages_text(m.pages)
    );
    MessageBuilder::new()
        .from(one_line(m.from))
        .to(one_line(m.to))
        .subject(subject)
        .message_id(message_id(&file_stem, m.hostname))
        .header("Auto-Submitted", Text::new("auto-generated"))
        .header("X-Faxmesh-Caller", Text::new(caller.clone()))
        .header("X-Faxmesh-Callee", Text::new(callee))
        .header("X-Faxmesh-Call-Id", Text::new(call_id))
        .header("X-Faxmesh-Pages", Text::new(m.pages.to_string()))
        .body(MimePart::new("multipart/mixed", parts))
        .write_to_vec()
        .unwrap_or_default() // Writing to a Vec cannot fail.
}

/// How a fax sent by mail ended, to mail back to its sender.
#[derive(Debug, Clone, Copy)]
pub struct FaxStatus<'a> {
    /// The gateway's address.
    pub from: &'a str,
    /// The sender who mailed the fax.
    pub to: &'a str,
    /// The original Message-ID, without `<>`: In-Reply-To and References.
    pub in_reply_to: Option<&'a str>,
    pub original_subject: Option<&'a str>,
    /// What the sender wrote in RCPT TO, e.g. `1002@fax.example`.
    pub recipient: &'a str,
    /// The fax number, e.g. `1002`.
    pub number: &'a str,
    pub delivered: bool,
    pub pages: u32,
    pub pages_confirmed: u32,
    pub tries: u32,
    /// Why it failed; empty when delivered.
    pub reason: &'a str,
    /// What to try on failure.
    pub advice: &'a str,
    pub job_id: u64,
    /// The job's JSON status, attached as application/json.
    pub report_json: &'a str,
    /// The Reporting-MTA.
    pub reporting_host: &'a str,
    /// When the original mail arrived, RFC 5322 date.
    pub arrival_date: Option<&'a str>,
}

/// The status mail: a DSN (RFC 3464), `multipart/report;
/// report-type=delivery-status` of a text/plain part for the person, a
/// message/delivery-status part for programs, and the job's JSON as the
/// attachment `fax-status.json`. Subject `Fax to <number> delivered: N
/// page(s)` or `Fax to <number> failed: <reason>`; Auto-Submitted:
/// auto-replied (RFC 3834) so that autoresponders stay quiet.
pub fn fax_status(s: &FaxStatus<'_>) -> Vec<u8> {
    let number = one_line(s.number);
    let recipient = one_line(s.recipient);
    let reason = one_line(s.reason);
    let advice = one_line(s.advice);

    let subject = if s.delivered {
        format!("Fax to {number} delivered: {}", pages_text(s.pages))
    } else if reason.is_empty() {
        format!("Fax to {number} failed")
    } else {
        format!("Fax to {number} failed: {reason}")
    };

    let mut human = String::new();
    if let Some(original) = s.original_subject.map(one_line).filter(|o| !o.is_empty()) {
        human.push_str(&format!(
            "Your fax \"{original}\" to {number} ({recipient})"
        ));
    } else {
        human.push_str(&format!("Your fax to {number} ({recipient})"));
    }
    if s.delivered {
        human.push_str(" was delivered.\r\n\r\n");
    } else {
        human.push_str(" could not be delivered.\r\n\r\n");
        human.push_str(&format!("Reason:          {reason}\r\n"));
    }
    human.push_str(&format!(
        "Pages confirmed: {} of {}\r\nTries:           {}\r\nJob:             {}\r\n",
        s.pages_confirmed, s.pages, s.tries, s.job_id
    ));
    if !s.delivered && !advice.is_empty() {
        human.push_str(&format!("\r\nWhat to try: {advice}\r\n"));
    }

    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", human),
            // Written as it is (7bit, no charset): mail-builder has no type
            // for it, and the fields are ASCII.
            MimePart::new(
                ContentType::new("message/delivery-status"),
                BodyPart::Binary(delivery_status(s).into_bytes().into()),
            )
            .transfer_encoding("7bit"),
            json_attachment(s.report_json, "fax-status.json"),
        ],
    );

    let mut builder = MessageBuilder::new()
        .from(("Fax delivery".to_owned(), one_line(s.from)))
        .to(one_line(s.to))
        .subject(subject)
        .message_id(message_id(
            &format!("status-{}", s.job_id),
            s.reporting_host,
        ))
        .header("Auto-Submitted", Text::new("auto-replied"))
        .header("X-Faxmesh-Job-Id", Text::new(s.job_id.to_string()));
    if let Some(original) = s.in_reply_to.map(bare_id).filter(|id| !id.is_empty()) {
        builder = builder
            .in_reply_to(MessageId::new(original.clone()))
            .references(MessageId::new(original));
    }
    builder.body(report).write_to_vec().unwrap_or_default() // A Vec cannot fail.
}

/// The DSN status code (RFC 3463) for a fax job's end, from its reason:
///
/// - delivered: `2.0.0`;
/// - the kill time passed, or the job expired or timed out: `5.4.7`
///   (delivery time expired);
/// - refused, rejected, revoked, denied or not allowed (a revoked secret,
///   a number the sender may not call): `5.7.1` (delivery not authorized);
/// - an unknown, invalid or unassigned number: `5.1.1` (bad destination);
/// - anything else (busy, no answer, a line error after every try): `5.0.0`.
pub fn status_code(delivered: bool, reason: &str) -> &'static str {
    let reason = reason.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|word| reason.contains(word));
    if delivered {
        "2.0.0"
    } else if has(&["kill time", "expired", "timed out", "timeout"]) {
        "5.4.7"
    } else if has(&[
        "refused",
        "rejected",
        "revoked",
        "denied",
        "not allowed",
        "forbidden",
    ]) {
        "5.7.1"
    } else if has(&[
        "unknown number",
        "invalid number",
        "unassigned",
        "no such number",
    ]) {
        "5.1.1"
    } else {
        "5.0.0"
    }
}

/// The message/delivery-status body (RFC 3464 §2.2, §2.3): per-message
/// fields, an empty line, per-recipient fields. ASCII only, one line each.
fn delivery_status(s: &FaxStatus<'_>) -> String {
    let mut fields = format!("Reporting-MTA: dns; {}\r\n", ascii_line(s.reporting_host));
    if let Some(arrival) = s.arrival_date {
        fields.push_str(&format!("Arrival-Date: {}\r\n", ascii_line(arrival)));
    }
    fields.push_str("\r\n");
    fields.push_str(&format!(
        "Final-Recipient: rfc822; {}\r\n",
        ascii_line(s.recipient)
    ));
    let action = if s.delivered { "delivered" } else { "failed" };
    fields.push_str(&format!("Action: {action}\r\n"));
    fields.push_str(&format!(
        "Status: {}\r\n",
        status_code(s.delivered, s.reason)
    ));
    if !s.delivered {
        let reason = ascii_line(s.reason);
        let reason = if reason.is_empty() {
            "failed".into()
        } else {
            reason
        };
        fields.push_str(&format!("Diagnostic-Code: X-fax; {reason}\r\n"));
    }
    fields
}

fn json_attachment<'x>(json: &str, name: &'x str) -> MimePart<'x> {
    MimePart::new(
        ContentType::new("application/json").attribute("charset", "utf-8"),
        BodyPart::Text(json.to_owned().into()),
    )
    .attachment(name)
}

/// `<stem>.<unique>@<host>`, unique by mail-builder's boundary generator
/// (time, a per-thread counter and a per-process seed).
fn message_id(stem: &str, host: &str) -> String {
    let host = file_safe(&one_line(host));
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    format!("{stem}.{}@{host}", make_boundary("."))
}

/// `1 page`, `3 pages`.
fn pages_text(pages: u32) -> String {
    format!("{pages} page{}", if pages == 1 { "" } else { "s" })
}

/// A value from outside as one line: control characters (CR, LF, TAB, NUL,
/// ...) become spaces, runs of white space one space, ends trimmed.
fn one_line(value: &str) -> String {
    value
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `one_line`, with non-ASCII characters as `?` (the delivery-status
/// part is 7bit).
fn ascii_line(value: &str) -> String {
    one_line(value)
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// A Message-ID without `<>`, spaces or controls.
fn bare_id(id: &str) -> String {
    one_line(id)
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | ' '))
        .collect()
}

/// Letters, digits, `-`, `_` and `.` only: for file names and host names.
fn file_safe(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

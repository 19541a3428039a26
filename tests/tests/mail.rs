//! The gateway's e-mail side with real mail software (none of it ours):
//! Python's smtplib as the MFP or mail client, aiosmtpd as the site's
//! smarthost and mailbox, Python's email package, libtiff and poppler to
//! read what was mailed. Faxes go through real relayd, gatewayd and faxrecv
//! processes.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::admin::http_get;
use harness::images::{assert_same_pages, photo_image, read_fax, sent_pages};
use harness::mail::{Mailbox, SmtpRun, parts_of, read_mail, smtp_send};
use harness::pki::Pki;
use harness::status::field;
use harness::{Gateway, Relay, Testbed};
use serde_json::{Value, json};

const DOMAIN: &str = "fax.example";

/// What a mail gateway runs with besides its senders.
#[derive(Default)]
struct Options {
    smarthost: Option<String>,
    /// STARTTLS and AUTH (user alice, password "correct horse").
    auth: bool,
    /// Extra lines for gatewayd.toml.
    toml: String,
}

/// A gateway `gw` with the SMTP listener and a queue; scanner@office.example
/// (from 127.0.0.0/8) sends as 1001 without a text page, the AUTH user
/// alice as 1005 with a cover page.
fn mail_gateway(bed: &Testbed, relay: &Relay, opts: &Options) -> (Gateway, String, String) {
    let secret = |n: &str| bed.fleet().secret_file(n).display().to_string();
    let mut toml = format!(
        "smtp_allow_networks = [\"127.0.0.0/8\"]\n{}\n\
         [[mail_sender]]\naddress = \"scanner@office.example\"\nnumber = \"1001\"\nsecret_file = \"{}\"\nbody_page = false\n",
        opts.toml,
        secret("1001")
    );
    let mut extra: Vec<String> = Vec::new();
    if opts.auth {
        let pki = Pki::create(&bed.path().join("pki"));
        let (cert, key) = pki.cert("gw-smtp");
        let hash = Command::new("openssl")
            .args(["passwd", "-6", "correct horse"])
            .output()
            .expect("openssl (./test.sh installs it)");
        let users = bed.path().join("smtp-users");
        std::fs::write(
            &users,
            format!("alice:{}", String::from_utf8_lossy(&hash.stdout).trim()),
        )
        .expect("write the users file");
        toml = format!(
            "smtp_cert_file = \"{}\"\nsmtp_key_file = \"{}\"\nsmtp_users_file = \"{}\"\n{toml}\
             [[mail_sender]]\nuser = \"alice\"\nnumber = \"1005\"\nsecret_file = \"{}\"\ncover = true\n",
            cert.display(),
            key.display(),
            users.display(),
            secret("1005")
        );
    }
    let config = bed.path().join("gatewayd.toml");
    std::fs::write(&config, toml).expect("write gatewayd.toml");
    let state = bed.path().join("gw-state");
    extra.extend(
        [
            "--config",
            config.to_str().expect("a UTF-8 path"),
            "--state-dir",
            state.to_str().expect("a UTF-8 path"),
            "--admin",
            "127.0.0.1:0",
            "--smtp-listen",
            "127.0.0.1:0",
            "--mail-domain",
            DOMAIN,
        ]
        .map(str::to_owned),
    );
    if let Some(host) = &opts.smarthost {
        extra.extend(["--smarthost".to_owned(), host.clone()]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut gw = Gateway::start_with(bed.path(), "gw", &[relay.addr()], &extra);
    let status = gw.wait_linked();
    let smtp = field(&status, "smtp on ").expect("the status names the SMTP address");
    let admin = field(&status, "admin on ").expect("the status names the admin address");
    (gw, smtp, admin)
}

/// A mail from scanner@office.example to `to` with `attachments` (path,
/// content type); what smtplib saw.
fn send(
    bed: &Testbed,
    smtp: &str,
    to: &[&str],
    attachments: &[(&Path, &str)],
    body: &str,
) -> SmtpRun {
    let attachments: Vec<Value> = attachments
        .iter()
        .map(|(p, t)| json!({"path": p, "type": t, "filename": p.file_name().expect("a file name").to_str()}))
        .collect();
    smtp_send(
        bed.path(),
        &json!({
            "server": smtp, "from": "scanner@office.example", "to": to,
            "build": {"subject": "Quarterly figures", "body": body, "attachments": attachments},
        }),
    )
}

/// A PDF of two text pages (libtiff's tiff2pdf: a CCITT image per page).
fn pdf(bed: &Testbed) -> PathBuf {
    let pdf = bed.path().join("figures.pdf");
    let out = Command::new("tiff2pdf")
        .arg("-o")
        .arg(&pdf)
        .arg(bed.document(2))
        .output()
        .expect("tiff2pdf");
    assert!(out.status.success(), "tiff2pdf: {out:?}");
    pdf
}

fn jpeg(bed: &Testbed) -> PathBuf {
    let path = bed.path().join("photo.jpg");
    photo_image(640, 480).save(&path).expect("write a JPEG");
    path
}

/// A metric's value from gatewayd's /metrics (0 when absent).
fn metric(admin: &str, line_start: &str) -> u64 {
    let (_, page) = http_get(admin, "/metrics");
    page.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// relay-a, the mail gateway with aiosmtpd as its smarthost, and faxrecv
/// 1002 (with `callee_flags`) behind a second gateway.
struct MailNet {
    _relay: Relay,
    _gw: Gateway,
    _gw2: Gateway,
    smtp: String,
    admin: String,
    mailbox: Mailbox,
    callee: harness::Receiver,
}

impl MailNet {
    fn start(bed: &Testbed, callee_flags: &[&str]) -> MailNet {
        let relay = bed.relay("relay-a");
        let mailbox = Mailbox::start(&bed.path().join("mailbox"), 0);
        let opts = Options {
            smarthost: Some(mailbox.addr()),
            ..Options::default()
        };
        let (gw, smtp, admin) = mail_gateway(bed, &relay, &opts);
        let gw2 = bed.gateway("gw2", &relay);
        let callee = bed.receiver(&gw2, "1002", callee_flags);
        MailNet {
            _relay: relay,
            _gw: gw,
            _gw2: gw2,
            smtp,
            admin,
            mailbox,
            callee,
        }
    }
}

#[test]
fn a_mail_with_a_pdf_and_a_jpeg_arrives_as_one_fax_and_the_sender_is_told() {
    let bed = Testbed::new();
    let net = MailNet::start(&bed, &[]);
    let (smtp, admin, mailbox) = (&net.smtp, &net.admin, &net.mailbox);
    let mut callee = net.callee;
    let (pdf, jpeg) = (pdf(&bed), jpeg(&bed));

    let run = send(
        &bed,
        smtp,
        &["1002@fax.example"],
        &[(&pdf, "application/pdf"), (&jpeg, "image/jpeg")],
        "",
    );
    let (stage, code, text) = run.last();
    assert_eq!((stage.as_str(), code), ("data", 250), "{run:?}");
    assert!(text.contains("queued 3 pages from 1001"), "{text}");

    let faxes = callee.wait_faxes(1);
    assert_same_pages(&read_fax(&faxes[0]), &sent_pages(&[pdf, jpeg]));
    assert_eq!(callee.record(&faxes[0])["caller"], "1001");

    // The status mail goes to the envelope sender, through the smarthost.
    let mails = mailbox.wait_mails(1);
    assert_eq!(Mailbox::envelope(&mails[0])[1], "scanner@office.example");
    let report = read_mail(&mails[0], &bed.path().join("report"));
    assert!(report["defects"].as_array().unwrap().is_empty(), "{report}");
    assert_eq!(report["content_type"], "multipart/report");
    let subject = report["headers"]["Subject"].as_str().unwrap();
    assert!(
        subject.contains("1002") && subject.contains("delivered"),
        "{subject}"
    );
    let dsn = parts_of(&report, "message/delivery-status");
    let dsn = dsn
        .first()
        .and_then(|p| p["text"].as_str())
        .unwrap_or_else(|| panic!("no delivery-status part: {report}"));
    assert!(dsn.contains("Action: delivered"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; 1002@fax.example"),
        "{dsn}"
    );
    assert_eq!(metric(admin, "gatewayd_mail_faxes_queued_total"), 1);
    assert_eq!(
        metric(admin, "gatewayd_smtp_mails_total{result=\"accepted\"}"),
        1
    );
}

/// An MH TIFF-F of `pages` pages, as an MFP scans it.
fn mh_tiff(bed: &Testbed, pages: u64) -> PathBuf {
    let out_path = bed.path().join("scan0001.tif");
    let out = Command::new("tiffcp")
        .args(["-c", "g3:1d"])
        .arg(bed.document(pages))
        .arg(&out_path)
        .output()
        .expect("tiffcp");
    assert!(out.status.success(), "tiffcp: {out:?}");
    out_path
}

/// The mail an MFP's scan-to-fax sends (RFC 3965 simple mode): a
/// multipart/mixed with an empty text part and the TIFF-F as
/// image/tiff; application=faxbw, in base64 lines of 76.
fn t37_mail(tiff: &Path) -> String {
    let data = std::fs::read(tiff).expect("read the scan");
    let b64 = base64_lines(&data);
    format!(
        "Return-Path: <scanner@office.example>\r\n\
         From: \"MP C3004\" <scanner@office.example>\r\n\
         To: 1002@fax.example\r\n\
         Subject: Scanned from MP C3004\r\n\
         Date: Wed, 02 Dec 2026 09:41:00 +0100\r\n\
         Message-ID: <20261202094100.0001@mpc3004.office.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"=_RNP_0001\"\r\n\
         \r\n\
         --=_RNP_0001\r\n\
         Content-Type: text/plain; charset=US-ASCII\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         \r\n\
         \r\n\
         --=_RNP_0001\r\n\
         Content-Type: image/tiff; application=faxbw; name=\"scan0001.tif\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"scan0001.tif\"\r\n\
         \r\n\
         {b64}\
         --=_RNP_0001--\r\n"
    )
}

fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    encoded
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\r\n", String::from_utf8_lossy(line)))
        .collect()
}

#[test]
fn an_mfp_t37_mail_is_faxed_pixel_identical() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let (_gw, smtp, _admin) = mail_gateway(&bed, &relay, &Options::default());
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    let tiff = mh_tiff(&bed, 2);
    let eml = bed.path().join("t37.eml");
    std::fs::write(&eml, t37_mail(&tiff)).unwrap();

    let run = smtp_send(
        bed.path(),
        &json!({"server": smtp, "from": "scanner@office.example", "to": ["1002@fax.example"], "message": eml}),
    );
    assert_eq!(run.last().1, 250, "{run:?}");
    let faxes = callee.wait_faxes(1);
    assert_same_pages(&read_fax(&faxes[0]), &read_fax(&tiff));
}

#[test]
fn a_fax_to_a_mail_device_is_mailed_once_as_tiff_f_and_pdf_with_the_smarthost_down_and_a_sigkill() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    // A free port for the smarthost, which is down at first.
    let port = Mailbox::start(&bed.path().join("probe"), 0).port();
    let opts = Options {
        smarthost: Some(format!("127.0.0.1:{port}")),
        toml: format!(
            "[[mail_device]]\nnumber = \"1003\"\nsecret_file = \"{}\"\nmail_to = \"frontdesk@office.example\"\nattach = \"both\"\n",
            bed.fleet().secret_file("1003").display()
        ),
        ..Options::default()
    };
    let (mut gw, _smtp, admin) = mail_gateway(&bed, &relay, &opts);
    gw.wait_devices_online(1);
    let gw2 = bed.gateway("gw2", &relay);
    let document = bed.document(2);

    // Confirmed once spooled, while the smarthost is down.
    bed.faxsend(&gw2, "1001", "1003", std::slice::from_ref(&document))
        .run()
        .assert_delivered();
    assert_eq!(metric(&admin, "gatewayd_mail_spool_depth"), 1);
    // SIGKILL meanwhile: the mail is on disk, not in memory.
    gw.kill();
    gw.start_again();
    gw.wait_linked();
    let status = gw.status().unwrap_or_default().to_owned();
    let admin = field(&status, "admin on ").expect("the admin address");
    assert_eq!(metric(&admin, "gatewayd_mail_spool_depth"), 1);

    let mailbox = Mailbox::start(&bed.path().join("mailbox"), port);
    let mails = mailbox.wait_mails(1);
    assert_eq!(Mailbox::envelope(&mails[0])[1], "frontdesk@office.example");
    let mail = read_mail(&mails[0], &bed.path().join("mailed"));
    assert!(mail["defects"].as_array().unwrap().is_empty(), "{mail}");
    let subject = mail["headers"]["Subject"].as_str().unwrap();
    assert!(
        subject.contains("1001") && subject.contains("2 pages"),
        "{subject}"
    );

    // TIFF-F profile S: MH, 1728 wide, that libtiff reads cleanly.
    let tiffs = parts_of(&mail, "image/tiff");
    assert_eq!(tiffs.len(), 1, "{mail}");
    assert_eq!(tiffs[0]["params"]["application"], "faxbw");
    let tiff = PathBuf::from(tiffs[0]["file"].as_str().unwrap());
    let info = Command::new("tiffinfo")
        .arg("-D")
        .arg(&tiff)
        .output()
        .unwrap();
    let info_text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success() && info.stderr.is_empty(), "{info:?}");
    assert!(info_text.contains("CCITT Group 3"), "{info_text}");
    assert!(info_text.contains("Image Width: 1728"), "{info_text}");
    assert_same_pages(&read_fax(&tiff), &sent_pages(&[document]));
    // And a PDF that poppler opens, one page per fax page.
    let pdfs = parts_of(&mail, "application/pdf");
    assert_eq!(pdfs.len(), 1, "{mail}");
    let pdfinfo = Command::new("pdfinfo")
        .arg(pdfs[0]["file"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(pdfinfo.status.success(), "{pdfinfo:?}");
    assert!(String::from_utf8_lossy(&pdfinfo.stdout).contains("Pages:           2"));

    // Sent once: nothing left to send, and a restart sends nothing again.
    // (The smarthost has the mail a moment before the outbox marks it sent.)
    gw.wait_stderr_contains("mail handed to the smarthost");
    assert_eq!(metric(&admin, "gatewayd_mail_spool_depth"), 0);
    gw.restart();
    gw.wait_linked();
    gw.wait_devices_online(1);
    let status = gw.status().unwrap_or_default().to_owned();
    let admin = field(&status, "admin on ").unwrap();
    assert_eq!(metric(&admin, "gatewayd_mail_spool_depth"), 0);
    assert_eq!(mailbox.mails().len(), 1);
}

#[test]
fn refusals_carry_their_code_and_reason_and_disturb_no_call() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let opts = Options {
        auth: true,
        toml: "smtp_max_message_bytes = 300000\n".into(),
        ..Options::default()
    };
    let (mut gw, smtp, admin) = mail_gateway(&bed, &relay, &opts);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &["--read-rate-kib", "200"]);
    // A call in flight through the mail gateway all along.
    let document = bed.document(6);
    let call = bed
        .faxsend(&gw, "1009", "1002", std::slice::from_ref(&document))
        .spawn();
    let cafile = bed.path().join("pki/ca.pem");
    let step = |run: &SmtpRun| (run.last().1, run.last().2);

    // Not a fax address.
    let run = send(&bed, &smtp, &["1002@example.com"], &[], "hello");
    let (code, text) = run.step("rcpt");
    assert_eq!(code, 550, "{run:?}");
    assert!(
        text.contains("5.7.1") && text.contains("relays no other mail"),
        "{text}"
    );
    // A sender nobody allowed.
    let run = smtp_send(
        bed.path(),
        &json!({"server": smtp, "from": "eve@evil.example", "to": ["1002@fax.example"], "build": {"body": "x"}}),
    );
    let (code, text) = step(&run);
    assert_eq!(code, 550, "{run:?}");
    assert!(text.contains("eve@evil.example"), "{text}");
    // AUTH before STARTTLS.
    let run = smtp_send(
        bed.path(),
        &json!({"server": smtp, "from": "a@b.example", "to": ["1002@fax.example"], "login": ["alice", "correct horse"], "build": {"body": "x"}}),
    );
    let (code, text) = step(&run);
    assert_eq!(code, 538, "{run:?}");
    assert!(text.contains("5.7.11"), "{text}");
    // Over the size cap.
    let big = bed.path().join("big.pdf");
    std::fs::write(&big, vec![b'x'; 400_000]).unwrap();
    let run = send(
        &bed,
        &smtp,
        &["1002@fax.example"],
        &[(&big, "application/pdf")],
        "",
    );
    assert_eq!(step(&run).0, 552, "{run:?}");
    // Nothing usable: a Word file.
    let docx = bed.path().join("letter.docx");
    std::fs::write(&docx, b"PK\x03\x04 not really a docx").unwrap();
    let run = send(
        &bed,
        &smtp,
        &["1002@fax.example"],
        &[(
            &docx,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )],
        "see attached",
    );
    let (code, text) = step(&run);
    assert_eq!(code, 554, "{run:?}");
    assert!(text.contains("letter.docx"), "{text}");
    // Nothing at all.
    let run = send(&bed, &smtp, &["1002@fax.example"], &[], "");
    let (code, text) = step(&run);
    assert_eq!(code, 554, "{run:?}");
    assert!(text.contains("nothing to fax"), "{text}");
    // A malformed MIME message: multipart without a boundary.
    let eml = bed.path().join("broken.eml");
    std::fs::write(&eml, "From: scanner@office.example\r\nTo: 1002@fax.example\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nno parts here\r\n").unwrap();
    let run = smtp_send(
        bed.path(),
        &json!({"server": smtp, "from": "scanner@office.example", "to": ["1002@fax.example"], "message": eml}),
    );
    let (code, text) = step(&run);
    assert_eq!(code, 554, "{run:?}");
    assert!(text.contains("5.6.0"), "{text}");
    // A flood of bad passwords is cut off.
    let run = smtp_send(
        bed.path(),
        &json!({"server": smtp, "starttls": true, "cafile": cafile, "from": "a@b.example", "to": ["1002@fax.example"], "auth_flood": 20, "build": {"body": "x"}}),
    );
    let codes: Vec<u16> = run
        .steps
        .iter()
        .filter(|s| s.0 == "auth")
        .map(|s| s.1)
        .collect();
    assert_eq!(codes.last(), Some(&421), "{run:?}");
    assert!(
        codes.len() <= 7,
        "throttled only after {} tries: {run:?}",
        codes.len()
    );
    assert!(
        codes[..codes.len() - 1].iter().all(|&c| c == 535),
        "{run:?}"
    );
    assert_eq!(
        metric(&admin, "gatewayd_smtp_auth_total{result=\"throttled\"}"),
        1
    );

    // None of it queued anything, stopped the gateway or the call.
    assert!(gw.is_running());
    assert_eq!(metric(&admin, "gatewayd_mail_faxes_queued_total"), 0);
    call.wait().assert_delivered();
    assert_eq!(callee.wait_faxes(1).len(), 1);
}

#[test]
fn an_authenticated_user_faxes_after_starttls_and_users_reload_on_sighup() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let opts = Options {
        auth: true,
        ..Options::default()
    };
    let (mut gw, smtp, _admin) = mail_gateway(&bed, &relay, &opts);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    let cafile = bed.path().join("pki/ca.pem");
    let run = smtp_send(
        bed.path(),
        &json!({"server": smtp, "starttls": true, "cafile": cafile, "login": ["alice", "correct horse"],
                "from": "alice@anywhere.example", "to": ["1002@fax.example"],
                "build": {"subject": "hello", "body": "Please call me back.\nAlice"}}),
    );
    assert_eq!(run.step("auth").0, 235, "{run:?}");
    assert_eq!(run.last().1, 250, "{run:?}");
    let faxes = callee.wait_faxes(1);
    assert_eq!(callee.record(&faxes[0])["caller"], "1005");
    assert_eq!(read_fax(&faxes[0]).len(), 2, "a cover page, then the text");

    // bob is added to the users file; SIGHUP reads it again.
    let bob = |bed: &Testbed| {
        smtp_send(
            bed.path(),
            &json!({"server": smtp, "starttls": true, "cafile": cafile, "login": ["bob", "s3cret"],
                    "from": "bob@anywhere.example", "to": ["1002@fax.example"], "build": {"body": "x"}}),
        )
    };
    assert_eq!(bob(&bed).step("auth").0, 535);
    let hash = Command::new("openssl")
        .args(["passwd", "-6", "s3cret"])
        .output()
        .expect("openssl");
    let users = bed.path().join("smtp-users");
    let mut text = std::fs::read_to_string(&users).expect("the users file");
    text.push_str(&format!(
        "\nbob:{}\n",
        String::from_utf8_lossy(&hash.stdout).trim()
    ));
    std::fs::write(&users, text).expect("write the users file");
    gw.signal(libc::SIGHUP);
    gw.wait_stderr_contains("SMTP users reloaded");
    let run = bob(&bed);
    assert_eq!(run.step("auth").0, 235, "{run:?}");
    // bob may log in, but no [[mail_sender]] names him.
    let (code, text) = run.step("mail");
    assert_eq!(code, 550, "{run:?}");
    assert!(text.contains("user bob may not fax"), "{text}");
}

#[test]
fn a_refused_fax_sends_the_sender_a_failure_report_with_what_to_try() {
    let bed = Testbed::new();
    let net = MailNet::start(&bed, &["--reject"]);
    let (smtp, mailbox) = (&net.smtp, &net.mailbox);
    let jpeg = jpeg(&bed);
    let run = send(
        &bed,
        smtp,
        &["1002@fax.example"],
        &[(&jpeg, "image/jpeg")],
        "",
    );
    assert_eq!(run.last().1, 250, "{run:?}");

    let mails = mailbox.wait_mails(1);
    let report = read_mail(&mails[0], &bed.path().join("report"));
    let subject = report["headers"]["Subject"].as_str().expect("a Subject");
    assert!(
        subject.contains("1002") && subject.contains("failed"),
        "{subject}"
    );
    assert_eq!(
        report["headers"]["In-Reply-To"]
            .as_str()
            .map(|s| s.is_empty()),
        Some(false),
        "{report}"
    );
    let dsn = parts_of(&report, "message/delivery-status");
    let dsn = dsn[0]["text"].as_str().expect("the delivery-status fields");
    assert!(dsn.contains("Action: failed"), "{dsn}");
    assert!(dsn.contains("Status: 5."), "{dsn}");
    let human = parts_of(&report, "text/plain");
    let human = human[0]["text"].as_str().expect("the human part");
    assert!(human.contains("refused the call"), "the advice: {human}");
    let json = parts_of(&report, "application/json");
    let json: Value = serde_json::from_slice(
        &std::fs::read(json[0]["file"].as_str().expect("a file")).expect("the JSON part"),
    )
    .expect("JSON");
    assert_eq!(json["state"], "failed");
    assert_eq!(json["to"], "1002");
}

#[test]
fn an_idle_smtp_session_is_told_and_closed_when_the_gateway_stops() {
    use std::io::{BufRead, BufReader};
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let (mut gw, smtp, _admin) = mail_gateway(&bed, &relay, &Options::default());
    let tcp = std::net::TcpStream::connect(&smtp).expect("connect to the SMTP listener");
    let mut client = BufReader::new(tcp);
    let mut greeting = String::new();
    client.read_line(&mut greeting).expect("the greeting");
    assert!(greeting.starts_with("220 "), "{greeting}");

    let started = std::time::Instant::now();
    let status = gw.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the idle session held the stop for {:?}",
        started.elapsed()
    );
    let mut bye = String::new();
    client.read_line(&mut bye).expect("a last reply");
    assert!(bye.starts_with("421 4.3.2"), "{bye:?}");
}

#[test]
fn a_mail_the_smarthost_refuses_for_good_holds_up_no_other() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let mailbox = Mailbox::start(&bed.path().join("mailbox"), 0);
    let device = |number: &str, to: &str| {
        format!(
            "[[mail_device]]\nnumber = \"{number}\"\nsecret_file = \"{}\"\nmail_to = \"{to}\"\n",
            bed.fleet().secret_file(number).display()
        )
    };
    let opts = Options {
        smarthost: Some(mailbox.addr()),
        toml: device("1003", "refuse-me@office.example")
            + &device("1004", "frontdesk@office.example"),
        ..Options::default()
    };
    let (mut gw, _smtp, admin) = mail_gateway(&bed, &relay, &opts);
    gw.wait_devices_online(2);
    let gw2 = bed.gateway("gw2", &relay);
    let note = bed.note();
    for to in ["1003", "1004"] {
        bed.faxsend(&gw2, "1001", to, std::slice::from_ref(&note))
            .run()
            .assert_delivered();
    }
    let mails = mailbox.wait_mails(1);
    assert_eq!(Mailbox::envelope(&mails[0])[1], "frontdesk@office.example");
    gw.wait_stderr_contains("the smarthost refused the mail");
    gw.wait_stderr_contains("mail handed to the smarthost");
    // The refused one stays, to be tried again.
    assert_eq!(metric(&admin, "gatewayd_mail_spool_depth"), 1);
    assert_eq!(mailbox.mails().len(), 1);
}

//! Sessions driven line by line against a small policy. Most tests are
//! scripts: a line to feed and what must come back, summed up as
//! "code enhanced" ("250 2.1.0"), "close 221 2.0.0", "starttls 220 2.0.0",
//! "message" or "none"; a 334 shows its challenge too. Every reply written
//! is checked for valid wire format on the way.

use super::*;

/// Senders: the null sender, anyone at lan.example, anyone logged in.
/// Recipients: four-digit numbers at fax.example. Login: alice/secret,
/// unless `throttle` is set. Every question is logged in `asked`, without
/// passwords.
#[derive(Default)]
struct TestPolicy {
    throttle: Option<u64>,
    asked: Vec<String>,
}

impl TestPolicy {
    /// The verdict on a login the session handed out.
    fn authenticate(&mut self, user: &str, password: &str) -> AuthVerdict {
        self.asked.push(format!("auth {user}"));
        if let Some(retry_after_secs) = self.throttle {
            return AuthVerdict::Throttled { retry_after_secs };
        }
        if user == "alice" && password == "secret" {
            AuthVerdict::Accepted
        } else {
            AuthVerdict::Rejected
        }
    }
}

impl Policy for TestPolicy {
    fn sender(&mut self, ctx: &Ctx<'_>, reverse_path: &str) -> Result<(), Reply> {
        self.asked.push(format!(
            "sender <{reverse_path}> helo={} tls={} user={:?} sender={:?}",
            ctx.helo, ctx.tls, ctx.user, ctx.sender
        ));
        if reverse_path.is_empty() || reverse_path.ends_with("@lan.example") || ctx.user.is_some() {
            Ok(())
        } else {
            Err(Reply::new(550, "5.7.1", "Sender not allowed"))
        }
    }

    fn recipient(&mut self, ctx: &Ctx<'_>, forward_path: &str) -> Result<(), Reply> {
        self.asked.push(format!(
            "recipient <{forward_path}> sender={:?}",
            ctx.sender
        ));
        let number = forward_path.strip_suffix("@fax.example");
        if number.is_some_and(|n| n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit())) {
            Ok(())
        } else {
            Err(Reply::new(550, "5.1.1", "No such fax number"))
        }
    }
}

fn config() -> Config {
    Config {
        hostname: "gw.example".to_owned(),
        max_message_bytes: 100,
        max_recipients: 2,
        tls_available: true,
        auth_available: true,
        max_errors: 20,
    }
}

/// `\0alice\0secret` and friends in base64.
const PLAIN_ALICE: &str = "AGFsaWNlAHNlY3JldA==";
const PLAIN_WRONG: &str = "AGFsaWNlAHdyb25n";
const ALICE: &str = "YWxpY2U=";
const SECRET: &str = "c2VjcmV0";

struct Harness {
    session: Session,
    policy: TestPolicy,
    messages: Vec<Envelope>,
    last: Option<Reply>,
}

impl Harness {
    fn new(config: Config) -> Harness {
        let session = Session::new(config);
        assert_wire(&session.greeting());
        Harness {
            session,
            policy: TestPolicy::default(),
            messages: Vec::new(),
            last: None,
        }
    }

    /// A session after EHLO.
    fn ehlo() -> Harness {
        let mut h = Harness::new(config());
        h.script(&[("EHLO client.example", "250")]);
        h
    }

    /// A session after EHLO, STARTTLS, the handshake and EHLO again.
    fn tls() -> Harness {
        let mut h = Harness::ehlo();
        h.script(&[
            ("STARTTLS", "starttls 220 2.0.0"),
            ("<tls>", ""),
            ("EHLO client.example", "250"),
        ]);
        h
    }

    /// Feeds one line and sums up the action; the message of a Message
    /// lands in `messages`, the reply in `last`.
    fn step(&mut self, line: &[u8]) -> String {
        let action = self.session.feed(line, &mut self.policy);
        self.record(action)
    }

    fn record(&mut self, action: Action) -> String {
        // A login is checked as gatewayd does: the policy's verdict goes back.
        let action = match action {
            Action::Authenticate(c) => {
                assert!(!format!("{c:?}").contains(&c.password) || c.password.is_empty());
                let verdict = self.policy.authenticate(&c.user, &c.password);
                self.session.auth_verdict(verdict)
            }
            other => other,
        };
        let (kind, reply) = match action {
            Action::Reply(reply) => ("", reply),
            Action::Close(reply) => ("close ", reply),
            Action::StartTls(reply) => ("starttls ", reply),
            Action::Message(envelope) => {
                self.messages.push(envelope);
                return "message".to_owned();
            }
            Action::None => return "none".to_owned(),
            Action::Authenticate(_) => unreachable!("answered above"),
        };
        assert_wire(&reply);
        let mut summary = format!("{kind}{}", reply.code());
        if let Some(enhanced) = reply.enhanced() {
            summary = format!("{summary} {enhanced}");
        }
        if reply.code() == 334 {
            summary = format!("{summary} {}", reply.text());
        }
        self.last = Some(reply);
        summary
    }

    /// Runs a script. Two pseudo-lines: "<tls>" calls `tls_started` (and
    /// wants ""), "<overlong>" calls `overlong`.
    fn script(&mut self, steps: &[(&str, &str)]) {
        for (i, &(line, want)) in steps.iter().enumerate() {
            let got = match line {
                "<tls>" => {
                    self.session.tls_started();
                    String::new()
                }
                "<overlong>" => {
                    let action = self.session.overlong();
                    self.record(action)
                }
                _ => self.step(line.as_bytes()),
            };
            assert_eq!(got, want, "step {i}: {line:?}");
        }
    }

    fn last_text(&self) -> String {
        self.last.as_ref().map(Reply::text).unwrap_or_default()
    }

    fn last_lines(&self) -> Vec<String> {
        self.last
            .as_ref()
            .map(|r| r.lines().to_vec())
            .unwrap_or_default()
    }
}

/// Valid wire format: every line `ddd-text` or (the last) `ddd text`, the
/// same code throughout, CRLF only at line ends, at most 512 octets a line.
fn assert_wire(reply: &Reply) {
    let bytes = reply.to_bytes();
    assert!((200..=599).contains(&reply.code()), "{reply:?}");
    assert!(bytes.ends_with(b"\r\n"), "{reply:?}");
    let lines: Vec<&[u8]> = bytes[..bytes.len() - 2].split(|&b| b == b'\n').collect();
    let code = reply.code().to_string();
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "{reply:?}"
        );
        assert!(line.len() + 2 <= 512, "{reply:?}");
        assert!(line.starts_with(code.as_bytes()), "{reply:?}");
        let sep = if i + 1 == lines.len() { b' ' } else { b'-' };
        assert_eq!(line.get(3), Some(&sep), "{reply:?}");
        assert!(line.iter().all(|&b| (32..=126).contains(&b)), "{reply:?}");
    }
}

#[test]
fn greeting() {
    let session = Session::new(config());
    assert_eq!(
        session.greeting().to_bytes(),
        b"220 gw.example ESMTP faxmesh\r\n"
    );
    assert!(!session.in_data() && !session.is_tls() && session.user().is_none());
}

#[test]
fn ehlo_advertises_starttls_before_tls_and_auth_after() {
    let mut h = Harness::new(config());
    h.script(&[("EHLO client.example", "250")]);
    let before = [
        "gw.example",
        "8BITMIME",
        "SIZE 100",
        "ENHANCEDSTATUSCODES",
        "PIPELINING",
        "STARTTLS",
    ];
    assert_eq!(h.last_lines(), before);
    h.script(&[
        ("STARTTLS", "starttls 220 2.0.0"),
        ("<tls>", ""),
        ("EHLO client.example", "250"),
    ]);
    let after = [
        "gw.example",
        "8BITMIME",
        "SIZE 100",
        "ENHANCEDSTATUSCODES",
        "PIPELINING",
        "AUTH PLAIN LOGIN",
    ];
    assert_eq!(h.last_lines(), after);
    assert!(h.session.is_tls());
}

#[test]
fn ehlo_advertises_only_what_is_configured() {
    let bare = [
        "gw.example",
        "8BITMIME",
        "SIZE 100",
        "ENHANCEDSTATUSCODES",
        "PIPELINING",
    ];
    for (tls_available, auth_available, implicit_tls, extra) in [
        (false, false, false, None),
        (false, true, false, None),
        (true, false, false, Some("STARTTLS")),
        (false, false, true, None),
        (false, true, true, Some("AUTH PLAIN LOGIN")),
        (true, true, true, Some("AUTH PLAIN LOGIN")),
    ] {
        let mut h = Harness::new(Config {
            tls_available,
            auth_available,
            ..config()
        });
        if implicit_tls {
            h.session.tls_started();
        }
        h.script(&[("ehlo client.example", "250")]);
        let mut want = bare.to_vec();
        want.extend(extra);
        assert_eq!(
            h.last_lines(),
            want,
            "{tls_available} {auth_available} {implicit_tls}"
        );
    }
}

#[test]
fn helo_and_ehlo() {
    let mut h = Harness::new(config());
    h.script(&[
        ("EHLO", "501 5.5.4"),
        ("HELO   ", "501 5.5.4"),
        ("EHLO a\u{1}b", "501 5.5.4"),
        ("HELO client.example", "250"),
    ]);
    assert_eq!(h.last.as_ref().unwrap().to_bytes(), b"250 gw.example\r\n");
    h.script(&[("MAIL FROM:<a@lan.example>", "250 2.1.0")]);
    let mut h = Harness::new(config());
    assert_eq!(h.step(b"EHLO \xff\xfe"), "501 5.5.4");
    // Whatever a client calls itself (a literal, a bare word) is taken.
    h.script(&[("EHLO [192.0.2.1]", "250"), ("Helo localhost", "250")]);
}

#[test]
fn commands_out_of_sequence() {
    let mut h = Harness::new(config());
    h.script(&[
        ("MAIL FROM:<a@lan.example>", "503 5.5.1"),
        ("RCPT TO:<0123@fax.example>", "503 5.5.1"),
        ("DATA", "503 5.5.1"),
        ("EHLO client.example", "250"),
        ("RCPT TO:<0123@fax.example>", "503 5.5.1"),
        ("RCPT TO:garbage", "503 5.5.1"),
        ("DATA", "503 5.5.1"),
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("MAIL FROM:<a@lan.example>", "503 5.5.1"),
        ("DATA", "554 5.5.1"),
        ("RCPT TO:<9999@elsewhere.example>", "550 5.1.1"),
        ("DATA", "554 5.5.1"),
        ("RCPT TO:<0123@fax.example>", "250 2.1.5"),
        ("DATA now", "501 5.5.4"),
        ("DATA", "354"),
        (".", "message"),
        // The transaction ended with the message.
        ("RCPT TO:<0123@fax.example>", "503 5.5.1"),
        ("DATA", "503 5.5.1"),
    ]);
    assert_eq!(h.last_text(), "Need MAIL command");
    assert_eq!(h.messages.len(), 1);
}

#[test]
fn mail_from() {
    for (line, want) in [
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("mail from:<a@lan.example>   ", "250 2.1.0"),
        ("MAIL FROM: <a@lan.example>", "250 2.1.0"),
        ("MAIL FROM:<>", "250 2.1.0"),
        (
            "MAIL FROM:<@relay.example,@hop.example:a@lan.example>",
            "250 2.1.0",
        ),
        ("MAIL FROM:<\"a b\"@lan.example>", "250 2.1.0"),
        ("MAIL FROM:<a@lan.example> SIZE=100", "250 2.1.0"),
        ("MAIL FROM:<a@lan.example> SIZE=101", "552 5.3.4"),
        ("MAIL FROM:<a@lan.example> SIZE=lots", "501 5.5.4"),
        ("MAIL FROM:<a@lan.example> BODY=8BITMIME", "250 2.1.0"),
        ("MAIL FROM:<a@lan.example> BODY=7bit SIZE=10", "250 2.1.0"),
        ("MAIL FROM:<a@lan.example> BODY=BINARYMIME", "555 5.5.4"),
        ("MAIL FROM:<a@lan.example> AUTH=<>", "250 2.1.0"),
        ("MAIL FROM:<a@lan.example> XFOO=1", "555 5.5.4"),
        ("MAIL FROM:a@lan.example", "501 5.5.2"),
        ("MAIL FROM:<a@lan.example", "501 5.5.2"),
        ("MAIL TO:<a@lan.example>", "501 5.5.2"),
        ("MAIL", "501 5.5.2"),
        ("MAIL FROM:<a@@lan.example>", "501 5.1.7"),
        ("MAIL FROM:<lan.example>", "501 5.1.7"),
        ("MAIL FROM:<a@elsewhere.example>", "550 5.7.1"),
    ] {
        let mut h = Harness::ehlo();
        assert_eq!(h.step(line.as_bytes()), want, "{line:?}");
    }
    let mut h = Harness::ehlo();
    assert_eq!(h.step(b"MAIL FROM:<\xff@lan.example>"), "501 5.5.2");
    // The policy gets the path without brackets and route.
    h.script(&[(
        "MAIL FROM:<@relay.example:a@lan.example> SIZE=10",
        "250 2.1.0",
    )]);
    assert_eq!(
        h.policy.asked,
        ["sender <a@lan.example> helo=client.example tls=false user=None sender=None"]
    );
    // A refusing policy's reply goes out as it is.
    h.script(&[
        ("RSET", "250 2.0.0"),
        ("MAIL FROM:<x@y.example>", "550 5.7.1"),
    ]);
    assert_eq!(h.last_text(), "Sender not allowed");
}

#[test]
fn rcpt_to() {
    for (line, want) in [
        ("RCPT TO:<0123@fax.example>", "250 2.1.5"),
        ("rcpt to: <0123@fax.example>  ", "250 2.1.5"),
        ("RCPT TO:<@hop.example:0123@fax.example>", "250 2.1.5"),
        ("RCPT TO:<Postmaster>", "550 5.1.1"),
        ("RCPT TO:<12@fax.example>", "550 5.1.1"),
        ("RCPT TO:<>", "501 5.1.3"),
        ("RCPT TO:<0123@fax..example>", "501 5.1.3"),
        ("RCPT TO:0123@fax.example", "501 5.5.2"),
        ("RCPT FROM:<0123@fax.example>", "501 5.5.2"),
        ("RCPT TO:<0123@fax.example> NOTIFY=NEVER", "555 5.5.4"),
    ] {
        let mut h = Harness::ehlo();
        h.script(&[("MAIL FROM:<a@lan.example>", "250 2.1.0")]);
        assert_eq!(h.step(line.as_bytes()), want, "{line:?}");
    }
    let mut h = Harness::ehlo();
    h.script(&[
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("RCPT TO:<POSTMASTER>", "550 5.1.1"),
        ("RCPT TO:<@hop.example:0123@fax.example>", "250 2.1.5"),
    ]);
    assert_eq!(
        h.policy.asked[1..],
        [
            "recipient <postmaster> sender=Some(\"a@lan.example\")",
            "recipient <0123@fax.example> sender=Some(\"a@lan.example\")",
        ]
    );
}

#[test]
fn recipient_cap_and_duplicates() {
    let mut h = Harness::ehlo();
    h.script(&[
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("RCPT TO:<0001@fax.example>", "250 2.1.5"),
        ("RCPT TO:<0001@fax.example>", "250 2.1.5"),
        ("RCPT TO:<0002@fax.example>", "250 2.1.5"),
        ("RCPT TO:<0003@fax.example>", "452 4.5.3"),
    ]);
    assert_eq!(h.last_text(), "Too many recipients");
    h.script(&[
        ("RCPT TO:<0001@fax.example>", "250 2.1.5"),
        ("DATA", "354"),
        ("hi", "none"),
        (".", "message"),
    ]);
    assert_eq!(
        h.messages[0].recipients,
        ["0001@fax.example", "0002@fax.example"]
    );
    // The duplicate was not asked about again.
    assert_eq!(h.policy.asked.len(), 3);
}

#[test]
fn ehlo_and_rset_reset_the_transaction() {
    let mut h = Harness::ehlo();
    h.script(&[
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("RCPT TO:<0001@fax.example>", "250 2.1.5"),
        ("RSET", "250 2.0.0"),
        ("RCPT TO:<0001@fax.example>", "503 5.5.1"),
        // RSET keeps the EHLO.
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("EHLO other.example", "250"),
        ("RCPT TO:<0001@fax.example>", "503 5.5.1"),
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("HELO third.example", "250"),
        ("DATA", "503 5.5.1"),
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("RCPT TO:<0001@fax.example>", "250 2.1.5"),
        ("DATA", "354"),
        (".", "message"),
    ]);
    assert_eq!(h.messages[0].helo, "third.example");
}

#[test]
fn simple_commands() {
    for (line, want) in [
        ("NOOP", "250 2.0.0"),
        ("noop whatever", "250 2.0.0"),
        ("RSET", "250 2.0.0"),
        ("RSET now", "501 5.5.4"),
        ("VRFY alice", "252 2.5.0"),
        ("VRFY", "501 5.5.4"),
        ("EXPN staff", "502 5.5.1"),
        ("HELP", "214 2.0.0"),
        ("help MAIL", "214 2.0.0"),
        ("FOO bar", "500 5.5.1"),
        ("", "500 5.5.2"),
        ("   ", "500 5.5.2"),
        ("BDAT 100 LAST", "502 5.5.1"),
        ("TURN", "502 5.5.1"),
        ("ETRN example.com", "502 5.5.1"),
        ("QUIT", "close 221 2.0.0"),
        ("quit now", "close 221 2.0.0"),
        ("GET / HTTP/1.1", "close 421 4.7.0"),
        ("POST /form HTTP/1.1", "close 421 4.7.0"),
    ] {
        let mut h = Harness::ehlo();
        assert_eq!(h.step(line.as_bytes()), want, "{line:?}");
    }
}

#[test]
fn quit_closes_for_good() {
    let mut h = Harness::ehlo();
    h.script(&[
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("QUIT", "close 221 2.0.0"),
        ("NOOP", "close 421 4.7.0"),
        ("<overlong>", "close 421 4.7.0"),
    ]);
    h.session.tls_started();
    h.script(&[("NOOP", "close 421 4.7.0")]);
}

#[test]
fn starttls() {
    let mut h = Harness::new(Config {
        tls_available: false,
        ..config()
    });
    h.script(&[("EHLO client.example", "250"), ("STARTTLS", "502 5.5.1")]);

    let mut h = Harness::ehlo();
    h.script(&[
        ("STARTTLS now", "501 5.5.4"),
        ("starttls  ", "starttls 220 2.0.0"),
        ("<tls>", ""),
        // Back to the start: EHLO first.
        ("MAIL FROM:<a@lan.example>", "503 5.5.1"),
        ("STARTTLS", "503 5.5.1"),
        ("EHLO client.example", "250"),
        ("STARTTLS", "503 5.5.1"),
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
    ]);
    assert_eq!(h.last_text(), "Sender OK");
    assert!(h.session.is_tls());
    assert!(h.policy.asked[0].contains("tls=true"));
}

#[test]
fn starttls_forgets_the_transaction() {
    let mut h = Harness::ehlo();
    h.script(&[
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("RCPT TO:<0001@fax.example>", "250 2.1.5"),
        ("STARTTLS", "starttls 220 2.0.0"),
        ("<tls>", ""),
        ("EHLO secure.example", "250"),
        ("RCPT TO:<0001@fax.example>", "503 5.5.1"),
        ("DATA", "503 5.5.1"),
    ]);
}

#[test]
fn lines_fed_before_the_handshake_end_the_session() {
    // The caller must discard what was pipelined after STARTTLS
    // (CVE-2011-0411); if it feeds it anyway, the session refuses it.
    let mut h = Harness::ehlo();
    h.script(&[
        ("STARTTLS", "starttls 220 2.0.0"),
        ("MAIL FROM:<a@lan.example>", "close 421 4.7.0"),
    ]);
    assert!(h.policy.asked.is_empty());
}

#[test]
fn auth_needs_tls_and_configuration() {
    let mut h = Harness::ehlo();
    h.script(&[(&format!("AUTH PLAIN {PLAIN_ALICE}"), "538 5.7.11")]);
    assert_eq!(
        h.last_text(),
        "Encryption required for requested authentication mechanism"
    );
    h.script(&[("AUTH LOGIN", "538 5.7.11")]);

    let mut h = Harness::new(Config {
        auth_available: false,
        ..config()
    });
    h.session.tls_started();
    h.script(&[("EHLO client.example", "250"), ("AUTH PLAIN", "502 5.5.1")]);
    assert!(h.policy.asked.is_empty());

    // After the handshake, EHLO again before AUTH.
    let mut h = Harness::ehlo();
    h.script(&[
        ("STARTTLS", "starttls 220 2.0.0"),
        ("<tls>", ""),
        (&format!("AUTH PLAIN {PLAIN_ALICE}"), "503 5.5.1"),
    ]);
}

#[test]
fn auth_plain_with_initial_response() {
    let mut h = Harness::tls();
    h.script(&[(&format!("AUTH PLAIN {PLAIN_ALICE}"), "235 2.7.0")]);
    assert_eq!(h.session.user(), Some("alice"));
    h.script(&[
        (&format!("AUTH PLAIN {PLAIN_ALICE}"), "503 5.5.1"),
        // EHLO keeps the login (no security layer, RFC 4954 4).
        ("EHLO client.example", "250"),
        ("MAIL FROM:<alice@elsewhere.example>", "250 2.1.0"),
        ("RCPT TO:<0001@fax.example>", "250 2.1.5"),
        ("DATA", "354"),
        ("Subject: hi", "none"),
        (".", "message"),
    ]);
    assert_eq!(h.policy.asked[0], "auth alice");
    assert!(h.policy.asked[1].contains("tls=true user=Some(\"alice\")"));
    let message = &h.messages[0];
    assert_eq!(message.user.as_deref(), Some("alice"));
    assert!(message.tls);
}

#[test]
fn auth_plain_after_a_challenge() {
    let mut h = Harness::tls();
    h.script(&[("auth plain", "334 ")]);
    assert_eq!(h.last.as_ref().unwrap().to_bytes(), b"334 \r\n");
    h.script(&[(PLAIN_ALICE, "235 2.7.0")]);
    assert_eq!(h.session.user(), Some("alice"));
}

#[test]
fn auth_login() {
    let mut h = Harness::tls();
    h.script(&[
        ("AUTH LOGIN", "334 VXNlcm5hbWU6"),
        (ALICE, "334 UGFzc3dvcmQ6"),
        (SECRET, "235 2.7.0"),
    ]);
    assert_eq!(h.session.user(), Some("alice"));

    let mut h = Harness::tls();
    h.script(&[
        (&format!("AUTH LOGIN {ALICE}"), "334 UGFzc3dvcmQ6"),
        (SECRET, "235 2.7.0"),
    ]);
    assert_eq!(h.session.user(), Some("alice"));
}

#[test]
fn auth_failures() {
    let cancel = "501 5.0.0";
    let plain_alice = format!("AUTH PLAIN {PLAIN_ALICE}");
    let scripts: &[&[(&str, &str)]] = &[
        &[
            (&format!("AUTH PLAIN {PLAIN_WRONG}"), "535 5.7.8"),
            // The client may try again.
            (&plain_alice, "235 2.7.0"),
        ],
        &[("AUTH PLAIN", "334 "), ("*", cancel), ("NOOP", "250 2.0.0")],
        &[("AUTH LOGIN", "334 VXNlcm5hbWU6"), ("*", cancel)],
        &[
            ("AUTH LOGIN", "334 VXNlcm5hbWU6"),
            (ALICE, "334 UGFzc3dvcmQ6"),
            ("*", cancel),
        ],
        &[
            ("AUTH LOGIN", "334 VXNlcm5hbWU6"),
            (ALICE, "334 UGFzc3dvcmQ6"),
            ("d3Jvbmc=", "535 5.7.8"),
        ],
        &[("AUTH PLAIN !!!!", "501 5.5.2")],
        &[
            ("AUTH PLAIN", "334 "),
            ("!!!!", "501 5.5.2"),
            ("NOOP", "250 2.0.0"),
        ],
        &[("AUTH LOGIN", "334 VXNlcm5hbWU6"), ("%%%", "501 5.5.2")],
        &[("AUTH LOGIN", "334 VXNlcm5hbWU6"), ("", "501 5.5.2")],
        // "=" is an empty initial response, and PLAIN needs more than that.
        &[("AUTH PLAIN =", "501 5.5.2")],
        // bob\0alice\0secret: acting for somebody else.
        &[("AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==", "535 5.7.8")],
        // alice\0alice\0secret: acting for oneself.
        &[("AUTH PLAIN YWxpY2UAYWxpY2UAc2VjcmV0", "235 2.7.0")],
        &[("AUTH CRAM-MD5", "504 5.5.4")],
        &[("AUTH", "501 5.5.4")],
        &[
            ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
            (&plain_alice, "503 5.5.1"),
        ],
        &[
            ("AUTH LOGIN", "334 VXNlcm5hbWU6"),
            ("<overlong>", "500 5.5.2"),
            ("NOOP", "250 2.0.0"),
        ],
        // An AUTH exchange takes any line as a response, even a command.
        &[
            ("AUTH PLAIN", "334 "),
            ("QUIT", "501 5.5.2"),
            ("QUIT", "close 221 2.0.0"),
        ],
    ];
    for script in scripts {
        let mut h = Harness::tls();
        h.script(script);
    }
    // An authzid mismatch is refused before the policy sees the password.
    let mut h = Harness::tls();
    h.script(&[("AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==", "535 5.7.8")]);
    assert!(h.policy.asked.is_empty());
}

#[test]
fn wrong_password_reply_and_debug_hold_no_credentials() {
    let mut h = Harness::tls();
    h.script(&[(&format!("AUTH PLAIN {PLAIN_WRONG}"), "535 5.7.8")]);
    assert_eq!(h.last_text(), "Authentication credentials invalid");
    assert!(h.session.user().is_none());

    let mut h = Harness::tls();
    h.script(&[
        ("AUTH LOGIN", "334 VXNlcm5hbWU6"),
        (ALICE, "334 UGFzc3dvcmQ6"),
    ]);
    let debug = format!("{:?}", h.session);
    assert!(debug.contains("AuthLoginPassword"), "{debug}");
    assert!(!debug.contains("alice"), "{debug}");
    h.script(&[("d3Jvbmc=", "535 5.7.8")]);
    let debug = format!("{:?}", h.session);
    assert!(
        !debug.contains("wrong") && !debug.contains("alice"),
        "{debug}"
    );
}

#[test]
fn throttled_login_closes() {
    let mut h = Harness::tls();
    h.policy.throttle = Some(30);
    h.script(&[(&format!("AUTH PLAIN {PLAIN_ALICE}"), "close 421 4.7.0")]);
    assert_eq!(
        h.last_text(),
        "Too many failed logins; try again in 30 seconds"
    );
    assert!(h.session.user().is_none());
    h.script(&[("NOOP", "close 421 4.7.0")]);

    let mut h = Harness::tls();
    h.policy.throttle = Some(5);
    h.script(&[
        ("AUTH LOGIN", "334 VXNlcm5hbWU6"),
        (ALICE, "334 UGFzc3dvcmQ6"),
        (SECRET, "close 421 4.7.0"),
    ]);
}

/// A transaction up to the 354.
fn open_data(h: &mut Harness) {
    h.script(&[
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("RCPT TO:<0001@fax.example>", "250 2.1.5"),
        ("DATA", "354"),
    ]);
    assert!(h.session.in_data());
}

#[test]
fn message_is_dot_unstuffed_and_8bit_clean() {
    let mut h = Harness::ehlo();
    open_data(&mut h);
    for line in [
        &b"Subject: t"[..],
        b"",
        b"..",
        b"..x",
        b". y",
        b"\xff\xfe\x80 8-bit\x00",
        b"bare\rcr",
        b"QUIT",
    ] {
        assert_eq!(h.step(line), "none", "{line:?}");
    }
    assert_eq!(h.step(b"."), "message");
    assert!(!h.session.in_data());
    let message = &h.messages[0];
    assert_eq!(
        message.body,
        b"Subject: t\r\n\r\n.\r\n.x\r\n y\r\n\xff\xfe\x80 8-bit\x00\r\nbare\rcr\r\nQUIT\r\n"
    );
    assert_eq!(message.sender, "a@lan.example");
    assert_eq!(message.recipients, ["0001@fax.example"]);
    assert_eq!(message.helo, "client.example");
    assert_eq!(message.user, None);
    assert!(!message.tls);
    // Debug shows the size of the body, not the body.
    assert!(format!("{message:?}").contains("body_bytes: 52"));

    // An empty message, and a null sender.
    h.script(&[
        ("MAIL FROM:<>", "250 2.1.0"),
        ("RCPT TO:<0002@fax.example>", "250 2.1.5"),
        ("DATA", "354"),
        (".", "message"),
    ]);
    assert_eq!(h.messages[1].body, b"");
    assert_eq!(h.messages[1].sender, "");
}

#[test]
fn a_dot_next_to_a_bare_lf_does_not_end_the_message() {
    use LineEnding::{BareLf, CrLf};
    let mut h = Harness::ehlo();
    open_data(&mut h);
    for (line, ending) in [
        (&b"Subject: hi"[..], CrLf),
        (b"text", BareLf),
        (b".", CrLf),
        (b"MAIL FROM:<evil@lan.example>", CrLf),
        (b".", BareLf),
        (b"RCPT TO:<0002@fax.example>", BareLf),
        (b".", CrLf),
        (b"DATA", CrLf),
    ] {
        let action = h.session.feed_ending(line, ending, &mut h.policy);
        assert_eq!(h.record(action), "none", "{line:?} {ending:?}");
    }
    assert_eq!(h.step(b"."), "message");
    assert_eq!(
        h.messages[0].body,
        b"Subject: hi\r\ntext\r\n.\r\nMAIL FROM:<evil@lan.example>\r\n.\r\n\
          RCPT TO:<0002@fax.example>\r\n.\r\nDATA\r\n"
    );
    // Outside DATA a bare LF is just a line end.
    let action = h.session.feed_ending(b"NOOP", BareLf, &mut h.policy);
    assert_eq!(h.record(action), "250 2.0.0");
    assert_eq!(h.policy.asked.len(), 2);
}

#[test]
fn a_policy_can_be_a_trait_object() {
    let mut session = Session::new(config());
    let mut policy = TestPolicy::default();
    let policy: &mut dyn Policy = &mut policy;
    session.feed(b"EHLO client.example", policy);
    let action = session.feed(b"MAIL FROM:<a@lan.example>", policy);
    assert_eq!(action, Action::Reply(Reply::new(250, "2.1.0", "Sender OK")));
}

#[test]
fn oversize_message_then_a_good_one() {
    let mut h = Harness::ehlo();
    open_data(&mut h);
    let line = [b'x'; 48]; // 50 bytes with CRLF; the limit is 100.
    for _ in 0..5 {
        assert_eq!(h.step(&line), "none");
    }
    assert_eq!(h.step(b"."), "552 5.3.4");
    assert!(h.messages.is_empty());
    assert!(!h.session.in_data());
    // Same session: exactly at the limit is fine, and the transaction is new.
    h.script(&[("RCPT TO:<0001@fax.example>", "503 5.5.1")]);
    open_data(&mut h);
    assert_eq!(h.step(&line), "none");
    assert_eq!(h.step(&[b'.'; 49]), "none"); // dot-stuffed: 48 + CRLF
    assert_eq!(h.step(b"."), "message");
    assert_eq!(h.messages[0].body.len(), 100);
    // One byte more is too much.
    open_data(&mut h);
    h.step(&[b'y'; 99]);
    assert_eq!(h.step(b"."), "552 5.3.4");
    assert_eq!(h.messages.len(), 1);
}

#[test]
fn overlong_lines() {
    let mut h = Harness::ehlo();
    h.script(&[("<overlong>", "500 5.5.2")]);
    assert_eq!(h.last_text(), "Line too long");
    open_data(&mut h);
    h.script(&[
        ("first", "none"),
        ("<overlong>", "none"),
        ("last", "none"),
        (".", "500 5.5.2"),
    ]);
    assert!(h.messages.is_empty());
    open_data(&mut h);
    h.script(&[("fine", "none"), (".", "message")]);
    assert_eq!(h.messages[0].body, b"fine\r\n");
}

#[test]
fn too_many_errors_close() {
    let mut h = Harness::new(Config {
        max_errors: 3,
        ..config()
    });
    h.script(&[
        ("FOO", "500 5.5.1"),
        ("EHLO client.example", "250"),
        ("MAIL FROM:<a@lan.example>", "250 2.1.0"),
        ("MAIL FROM:<a@lan.example>", "503 5.5.1"),
        ("RSET", "250 2.0.0"),
        ("BAR", "close 421 4.7.0"),
    ]);
    assert_eq!(h.last_text(), "Too many errors");
    h.script(&[("NOOP", "close 421 4.7.0")]);
}

#[test]
fn what_counts_as_an_error() {
    let mut h = Harness::new(Config {
        max_errors: 2,
        ..config()
    });
    h.script(&[("EHLO client.example", "250")]);
    // Refusals by the policy, a declared size and the recipient cap are not
    // errors.
    for _ in 0..3 {
        h.script(&[
            ("MAIL FROM:<a@lan.example> SIZE=1000", "552 5.3.4"),
            ("MAIL FROM:<x@elsewhere.example>", "550 5.7.1"),
        ]);
    }
    h.script(&[("MAIL FROM:<a@lan.example>", "250 2.1.0")]);
    for _ in 0..3 {
        h.script(&[("RCPT TO:<12@fax.example>", "550 5.1.1")]);
    }
    h.script(&[
        ("RCPT TO:<0001@fax.example>", "250 2.1.5"),
        ("RCPT TO:<0002@fax.example>", "250 2.1.5"),
        ("RCPT TO:<0003@fax.example>", "452 4.5.3"),
        ("RCPT TO:<0004@fax.example>", "452 4.5.3"),
        ("RSET", "250 2.0.0"),
        ("<overlong>", "500 5.5.2"),
        ("<overlong>", "close 421 4.7.0"),
    ]);

    // A wrong password is one.
    let mut h = Harness::tls();
    h.session = Session::new(Config {
        max_errors: 2,
        ..config()
    });
    h.session.tls_started();
    h.script(&[
        ("EHLO client.example", "250"),
        (&format!("AUTH PLAIN {PLAIN_WRONG}"), "535 5.7.8"),
        (&format!("AUTH PLAIN {PLAIN_WRONG}"), "close 421 4.7.0"),
    ]);
}

#[test]
fn garbage_bytes_get_5xx() {
    for line in [
        &b"\xff\xfe\xfd"[..],
        b"\x00\x00\x00",
        b"\x1b[31mEHLO",
        b"EHLO\xff",
        b"MAIL FROM:<\xff\xfe@lan.example>",
        b"MAIL FROM:<a@lan.example> SIZE=\xff",
        b"RCPT TO:<\xc3\x28@fax.example>",
        b"RCPT TO:<0001@fax.example>\x00",
        b"AUTH \xff\xff",
        b"DATA\x00",
        b"\r\r\r",
        b"\xc0\x80",
    ] {
        let mut h = Harness::ehlo();
        h.script(&[("MAIL FROM:<a@lan.example>", "250 2.1.0")]);
        let got = h.step(line);
        assert!(got.starts_with('5'), "{line:?}: {got}");
    }
}

#[test]
fn pipelined_commands_are_just_lines() {
    let mut h = Harness::ehlo();
    let batch: &[&[u8]] = &[
        b"MAIL FROM:<a@lan.example>",
        b"RCPT TO:<0001@fax.example>",
        b"RCPT TO:<nobody@fax.example>",
        b"DATA",
    ];
    let replies: Vec<String> = batch.iter().map(|line| h.step(line)).collect();
    assert_eq!(replies, ["250 2.1.0", "250 2.1.5", "550 5.1.1", "354"]);
}

/// A small deterministic fuzzer: random sessions from real commands, AUTH
/// responses and garbage. Nothing may panic, every reply must be valid on
/// the wire, and messages must respect the limits.
#[test]
fn random_sessions_keep_the_invariants() {
    let vocabulary: &[&[u8]] = &[
        b"EHLO client.example",
        b"HELO x",
        b"MAIL FROM:<a@lan.example>",
        b"MAIL FROM:<a@elsewhere.example> SIZE=10",
        b"MAIL FROM:<>",
        b"RCPT TO:<0001@fax.example>",
        b"RCPT TO:<0002@fax.example>",
        b"RCPT TO:<0003@fax.example>",
        b"RCPT TO:<bad@fax.example>",
        b"DATA",
        b".",
        b"..",
        b"line of text",
        b"RSET",
        b"NOOP",
        b"STARTTLS",
        b"AUTH PLAIN",
        b"AUTH LOGIN",
        b"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
        b"AGFsaWNlAHNlY3JldA==",
        b"YWxpY2U=",
        b"c2VjcmV0",
        b"*",
        b"=",
        b"",
        b"VRFY x",
        b"QUIT",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let mut h = Harness::new(Config {
            max_errors: 8,
            max_message_bytes: 60,
            ..config()
        });
        h.policy.throttle = (next() % 4 == 0).then_some(9);
        for _ in 0..60 {
            let pick = next();
            let outcome = match pick % 16 {
                0 => {
                    let garbage: Vec<u8> = (0..pick % 23).map(|_| next() as u8).collect();
                    h.step(&garbage)
                }
                1 => {
                    let action = h.session.overlong();
                    h.record(action)
                }
                _ => {
                    let line = vocabulary[(pick >> 8) as usize % vocabulary.len()];
                    h.step(line)
                }
            };
            if outcome.starts_with("starttls") {
                h.session.tls_started();
            }
            if outcome.starts_with("close") {
                break;
            }
        }
        for message in &h.messages {
            assert!(!message.recipients.is_empty() && message.recipients.len() <= 2);
            assert!(message.body.len() <= 60);
            assert!(message.body.is_empty() || message.body.ends_with(b"\r\n"));
        }
    }
}

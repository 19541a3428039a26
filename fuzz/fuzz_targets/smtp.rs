//! The SMTP session: the first byte chooses the configuration and what the
//! policy says; the rest is the client's side of a session, one line per
//! LF, told whether a CR came before it (a last line without LF is never
//! complete, so it is not fed). Every reply must be valid on the wire and
//! every message within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail::smtp::{Action, AuthVerdict, Config, Ctx, LineEnding, Policy, Reply, Session};

/// Lines longer than this go to `overlong`, as gatewayd's reader does.
const LINE_LIMIT: usize = 200;
/// Small, so the fuzzer reaches "too big" as well as messages.
const MAX_MESSAGE: usize = 120;
const MAX_RECIPIENTS: usize = 3;

/// Bits of the first byte: bit 0 accepts senders, bit 1 recipients, bits
/// 2-3 choose the login verdict.
struct FuzzPolicy(u8);

impl FuzzPolicy {
    /// The verdict on a login (gatewayd checks them outside the session).
    fn authenticate(&mut self, user: &str, password: &str) -> AuthVerdict {
        match (self.0 >> 2) & 3 {
            0 => AuthVerdict::Accepted,
            1 => AuthVerdict::Rejected,
            2 => AuthVerdict::Throttled {
                retry_after_secs: 60,
            },
            _ if user == "alice" && password == "secret" => AuthVerdict::Accepted,
            _ => AuthVerdict::Rejected,
        }
    }
}

impl Policy for FuzzPolicy {
    fn sender(&mut self, ctx: &Ctx<'_>, reverse_path: &str) -> Result<(), Reply> {
        assert!(ctx.sender.is_none());
        if self.0 & 1 == 1 || reverse_path.is_empty() {
            Ok(())
        } else {
            // Echoes client text, which the reply must clean.
            Err(Reply::new(
                550,
                "5.7.1",
                format!("{reverse_path} not allowed"),
            ))
        }
    }

    fn recipient(&mut self, ctx: &Ctx<'_>, forward_path: &str) -> Result<(), Reply> {
        assert!(ctx.sender.is_some());
        if self.0 & 2 == 2 || forward_path.starts_with('0') {
            Ok(())
        } else {
            Err(Reply::new(
                550,
                "5.1.1",
                format!("{forward_path}: no such number"),
            ))
        }
    }
}

/// A reply as sent: `ddd-text` lines and a last `ddd text` line, each
/// ending in CRLF, no other CR or LF anywhere.
fn check(reply: &Reply) {
    let code = reply.code();
    assert!((200..=599).contains(&code), "{reply:?}");
    let bytes = reply.to_bytes();
    assert!(bytes.ends_with(b"\r\n"), "{reply:?}");
    let lines: Vec<&[u8]> = bytes[..bytes.len() - 2].split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "{reply:?}"
        );
        assert!(line.starts_with(code.to_string().as_bytes()), "{reply:?}");
        let sep = if i + 1 == lines.len() { b' ' } else { b'-' };
        assert_eq!(line.get(3), Some(&sep), "{reply:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, script)) = data.split_first() else {
        return;
    };
    let mut session = Session::new(Config {
        hostname: "gw.example".to_owned(),
        max_message_bytes: MAX_MESSAGE,
        max_recipients: MAX_RECIPIENTS,
        tls_available: knobs & 0x10 == 0,
        auth_available: knobs & 0x20 == 0,
        max_errors: u32::from(knobs >> 6) * 4 + 1,
    });
    let mut policy = FuzzPolicy(knobs);
    check(&session.greeting());
    for line in script.split_inclusive(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\n") else {
            break;
        };
        let (line, ending) = match line.strip_suffix(b"\r") {
            Some(line) => (line, LineEnding::CrLf),
            None => (line, LineEnding::BareLf),
        };
        let action = if line.len() > LINE_LIMIT {
            session.overlong()
        } else {
            session.feed_ending(line, ending, &mut policy)
        };
        let action = match action {
            Action::Authenticate(c) => {
                assert!(session.user().is_none());
                let verdict = policy.authenticate(&c.user, &c.password);
                session.auth_verdict(verdict)
            }
            other => other,
        };
        match action {
            Action::Reply(reply) => check(&reply),
            Action::Close(reply) => {
                check(&reply);
                return;
            }
            Action::StartTls(reply) => {
                check(&reply);
                assert_eq!(reply.code(), 220);
                session.tls_started();
                assert!(session.is_tls());
            }
            Action::Message(envelope) => {
                assert!(!session.in_data());
                assert!(!envelope.recipients.is_empty());
                assert!(envelope.recipients.len() <= MAX_RECIPIENTS);
                assert!(envelope.body.len() <= MAX_MESSAGE);
                assert!(envelope.body.is_empty() || envelope.body.ends_with(b"\r\n"));
                assert_eq!(envelope.user.as_deref(), session.user());
            }
            Action::None => assert!(session.in_data()),
            Action::Authenticate(_) => panic!("a verdict is answered, never asked again"),
        }
    }
});

//! The SASL pieces of AUTH (RFC 4954): the mechanisms we take, base64
//! responses and the PLAIN message (RFC 4616). The exchange itself (which
//! challenge comes next) is in the session.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use super::Reply;
use super::command::trim;

/// Standard base64 (RFC 4954 4 asks for it), but a client that leaves out
/// the `=` padding is not worth refusing.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The challenges of LOGIN: "Username:" and "Password:" in base64.
pub(crate) const LOGIN_USERNAME: &str = "VXNlcm5hbWU6";
pub(crate) const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

/// The SASL mechanisms we offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    /// The mechanism a client names (case-insensitive, RFC 4954 4), or 504.
    pub(crate) fn parse(name: &[u8]) -> Result<Mechanism, Reply> {
        if name.eq_ignore_ascii_case(b"PLAIN") {
            Ok(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case(b"LOGIN") {
            Ok(Mechanism::Login)
        } else {
            Err(Reply::new(504, "5.5.4", "Unrecognized authentication type"))
        }
    }
}

/// What a client's response line means.
#[derive(PartialEq, Eq)]
pub(crate) enum Response {
    /// `*`: the client gives up (RFC 4954 4).
    Cancel,
    Data(Vec<u8>),
}

/// A response line decoded. "=" is an empty response (RFC 4954 4: how an
/// empty initial response is written on the AUTH line; an empty line means
/// the same later on). Blanks around it are tolerated.
pub(crate) fn response(line: &[u8]) -> Result<Response, Reply> {
    match trim(line) {
        b"*" => Ok(Response::Cancel),
        b"=" | b"" => Ok(Response::Data(Vec::new())),
        line => BASE64
            .decode(line)
            .map(Response::Data)
            .map_err(|_| bad_base64()),
    }
}

/// 501 5.0.0, the answer to `*`.
pub(crate) fn cancelled() -> Reply {
    Reply::new(501, "5.0.0", "Authentication cancelled")
}

fn bad_base64() -> Reply {
    Reply::new(501, "5.5.2", "Cannot decode response")
}

fn malformed() -> Reply {
    Reply::new(501, "5.5.2", "Malformed authentication response")
}

/// 535 5.7.8, for wrong credentials.
pub(crate) fn invalid_credentials() -> Reply {
    Reply::new(535, "5.7.8", "Authentication credentials invalid")
}

/// A PLAIN message, `[authzid] NUL authcid NUL passwd` (RFC 4616 2), as the
/// user and the password to check. We act for nobody else: an authzid
/// other than the user's own fails like a wrong password.
pub(crate) fn plain(message: &[u8]) -> Result<(&str, &str), Reply> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let text = |bytes| std::str::from_utf8(bytes).map_err(|_| malformed());
    let (authzid, user, password) = (text(authzid)?, text(authcid)?, text(passwd)?);
    if user.is_empty() || password.is_empty() {
        return Err(malformed());
    }
    if !authzid.is_empty() && authzid != user {
        return Err(invalid_credentials());
    }
    Ok((user, password))
}

/// A LOGIN username or password: UTF-8 text, not empty.
pub(crate) fn login_text(bytes: Vec<u8>) -> Result<String, Reply> {
    match String::from_utf8(bytes) {
        Ok(text) if !text.is_empty() => Ok(text),
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        assert!(response(b"*") == Ok(Response::Cancel));
        assert!(response(b"=") == Ok(Response::Data(Vec::new())));
        assert!(response(b"") == Ok(Response::Data(Vec::new())));
        assert!(response(b"YWxpY2U=") == Ok(Response::Data(b"alice".to_vec())));
        assert!(response(b"YWxpY2U") == Ok(Response::Data(b"alice".to_vec())));
        assert!(response(b" YWxpY2U= ") == Ok(Response::Data(b"alice".to_vec())));
        assert!(response(b"* ") == Ok(Response::Cancel));
        for bad in [&b"YWxp Y2U="[..], b"!!!!", b"YWxpY2U==x", b"\xff"] {
            assert!(response(bad) == Err(bad_base64()), "{bad:?}");
        }
    }

    #[test]
    fn plain_messages() {
        let ok = |user: &str, password: &str| Ok((user.to_owned(), password.to_owned()));
        let parse = |m: &[u8]| plain(m).map(|(u, p)| (u.to_owned(), p.to_owned()));
        assert_eq!(parse(b"\0alice\0secret"), ok("alice", "secret"));
        assert_eq!(parse(b"alice\0alice\0secret"), ok("alice", "secret"));
        assert_eq!(parse(b"bob\0alice\0secret"), Err(invalid_credentials()));
        for bad in [
            &b""[..],
            b"alice",
            b"\0alice",
            b"\0alice\0",
            b"\0\0secret",
            b"\0alice\0sec\0ret",
            b"\0al\xffice\0secret",
        ] {
            assert_eq!(parse(bad), Err(malformed()), "{bad:?}");
        }
    }

    #[test]
    fn mechanisms() {
        assert_eq!(Mechanism::parse(b"plain"), Ok(Mechanism::Plain));
        assert_eq!(Mechanism::parse(b"LOGIN"), Ok(Mechanism::Login));
        assert_eq!(Mechanism::parse(b"CRAM-MD5").unwrap_err().code(), 504);
    }
}

//! Command lines taken apart: the verb, and the paths and parameters of
//! MAIL and RCPT (RFC 5321 4.1.1, 4.1.2). Bytes in, never assumed UTF-8;
//! a malformed argument comes back as the reply that refuses it.

use super::Reply;

/// The command verbs we know (RFC 5321 4.1.1 and the extensions we offer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Ehlo,
    Helo,
    Mail,
    Rcpt,
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth,
    /// Real SMTP verbs we do not implement (502, RFC 5321 4.2.4).
    Unsupported,
    /// An HTTP request sent to the SMTP port: a browser or a cross-protocol
    /// attack (a web page making the browser post to us). Postfix closes on
    /// these too (smtpd_forbidden_commands).
    Http,
    /// Anything else (500).
    Unknown,
}

/// The verb and the argument of a command line (the argument without the
/// spaces around it; empty when there is none).
pub(crate) fn split(line: &[u8]) -> (Verb, &[u8]) {
    let line = trim(line);
    let (word, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], trim(&line[i + 1..])),
        None => (line, &line[line.len()..]),
    };
    const VERBS: &[(&[u8], Verb)] = &[
        (b"EHLO", Verb::Ehlo),
        (b"HELO", Verb::Helo),
        (b"MAIL", Verb::Mail),
        (b"RCPT", Verb::Rcpt),
        (b"DATA", Verb::Data),
        (b"RSET", Verb::Rset),
        (b"NOOP", Verb::Noop),
        (b"QUIT", Verb::Quit),
        (b"VRFY", Verb::Vrfy),
        (b"EXPN", Verb::Expn),
        (b"HELP", Verb::Help),
        (b"STARTTLS", Verb::StartTls),
        (b"AUTH", Verb::Auth),
        (b"BDAT", Verb::Unsupported),
        (b"TURN", Verb::Unsupported),
        (b"ATRN", Verb::Unsupported),
        (b"ETRN", Verb::Unsupported),
        (b"BURL", Verb::Unsupported),
        (b"SEND", Verb::Unsupported),
        (b"SOML", Verb::Unsupported),
        (b"SAML", Verb::Unsupported),
        (b"GET", Verb::Http),
        (b"POST", Verb::Http),
        (b"PUT", Verb::Http),
        (b"HEAD", Verb::Http),
        (b"CONNECT", Verb::Http),
    ];
    let verb = VERBS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map_or(Verb::Unknown, |&(_, verb)| verb);
    (verb, rest)
}

/// The line without leading and trailing blanks. A stray CR counts as one:
/// it is what is left of a CR CR LF ending.
pub(crate) fn trim(line: &[u8]) -> &[u8] {
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    let start = line.iter().position(|b| !blank(b)).unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &line[start..end]
}

/// Parses the argument of MAIL (`FROM:<path> [params]`) into the reverse
/// path: without the angle brackets and any source route, "" for the null
/// sender. `max_size` is the SIZE we advertise: a larger declared size is
/// refused here, before the client sends the data (RFC 1870 section 6).
/// BODY=7BIT and 8BITMIME (RFC 6152) need nothing from us: we keep any
/// bytes.
pub(crate) fn mail_from(arg: &[u8], max_size: usize) -> Result<String, Reply> {
    let syntax = || Reply::new(501, "5.5.2", "Syntax: MAIL FROM:<address>");
    let (path, params) = path_and_params(arg, b"FROM:").ok_or_else(syntax)?;
    let reverse_path = if path.is_empty() {
        String::new()
    } else {
        mailbox(path).ok_or_else(|| Reply::new(501, "5.1.7", "Bad sender address syntax"))?
    };
    for (keyword, value) in parameters(params)? {
        if keyword.eq_ignore_ascii_case("SIZE") {
            let value = value.unwrap_or("");
            if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Reply::new(501, "5.5.4", "Bad SIZE parameter"));
            }
            // Twenty digits can overflow u64: such a size is too big anyway.
            let size = value.parse::<u64>().unwrap_or(u64::MAX);
            if size > max_size as u64 {
                return Err(too_big());
            }
        } else if keyword.eq_ignore_ascii_case("BODY") {
            let known = value.is_some_and(|v| {
                v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME")
            });
            if !known {
                return Err(Reply::new(555, "5.5.4", "Unsupported BODY type"));
            }
        } else if keyword.eq_ignore_ascii_case("AUTH") {
            // RFC 4954 section 5: the identity a relaying client vouches
            // for. We trust only our own AUTH, so the value is ignored.
        } else {
            return Err(unknown_parameter());
        }
    }
    Ok(reverse_path)
}

/// Parses the argument of RCPT (`TO:<path>`); we implement no RCPT
/// parameters. `<postmaster>` (in any case) comes back as "postmaster"
/// (RFC 5321 4.5.1).
pub(crate) fn rcpt_to(arg: &[u8]) -> Result<String, Reply> {
    let syntax = || Reply::new(501, "5.5.2", "Syntax: RCPT TO:<address>");
    let bad = || Reply::new(501, "5.1.3", "Bad recipient address syntax");
    let (path, params) = path_and_params(arg, b"TO:").ok_or_else(syntax)?;
    let forward_path = if path.eq_ignore_ascii_case("postmaster") {
        "postmaster".to_owned()
    } else if path.is_empty() {
        return Err(bad());
    } else {
        mailbox(path).ok_or_else(bad)?
    };
    if !parameters(params)?.is_empty() {
        return Err(unknown_parameter());
    }
    Ok(forward_path)
}

/// 552 5.3.4, for a declared SIZE or a body over our limit.
pub(crate) fn too_big() -> Reply {
    Reply::new(
        552,
        "5.3.4",
        "Message size exceeds fixed maximum message size",
    )
}

fn unknown_parameter() -> Reply {
    Reply::new(555, "5.5.4", "Unsupported parameter")
}

/// Splits `FROM:<path> params` into what is inside the brackets and the
/// parameter text. `None` when the prefix, the brackets or the space before
/// the parameters is missing, or the argument is not UTF-8.
fn path_and_params<'a>(arg: &'a [u8], prefix: &[u8]) -> Option<(&'a str, &'a str)> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = std::str::from_utf8(&arg[prefix.len()..]).ok()?;
    // Many clients write "FROM: <a@b>" (RFC 821 allowed nothing there, but
    // refusing it helps nobody).
    let rest = rest.trim_start_matches(' ').strip_prefix('<')?;
    let end = closing_bracket(rest)?;
    let (path, params) = (&rest[..end], &rest[end + 1..]);
    if !params.is_empty() && !params.starts_with(' ') {
        return None;
    }
    Some((path, params))
}

/// Where the `>` that closes a path is: the first one outside a quoted
/// string (a quoted local part may hold `>`).
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// The ESMTP parameters after a path (RFC 5321 4.1.2: `keyword["=" value]`,
/// separated by spaces), or 501 5.5.4 if they are malformed.
fn parameters(text: &str) -> Result<Vec<(&str, Option<&str>)>, Reply> {
    let bad = || Reply::new(501, "5.5.4", "Bad parameter syntax");
    let mut out = Vec::new();
    for param in text.split(' ').filter(|p| !p.is_empty()) {
        let (keyword, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (param, None),
        };
        let keyword_ok = keyword.starts_with(|c: char| c.is_ascii_alphanumeric())
            && keyword
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        // esmtp-value: %d33-60 / %d62-126, so no "=", no blanks, no controls.
        let value_ok = value.is_none_or(|v| {
            !v.is_empty() && v.bytes().all(|b| (33..=126).contains(&b) && b != b'=')
        });
        if !keyword_ok || !value_ok {
            return Err(bad());
        }
        out.push((keyword, value));
    }
    Ok(out)
}

/// The longest path we take (RFC 5321 4.5.3.1.3: 256 octets with the
/// brackets).
const MAX_PATH: usize = 254;

/// The mailbox in a path (`[@route,@route:]local@domain`, RFC 5321 4.1.2),
/// without the source route, which RFC 5321 4.1.1.3 says to ignore. `None`
/// if it is not a valid mailbox.
fn mailbox(path: &str) -> Option<String> {
    if path.len() > MAX_PATH {
        return None;
    }
    let mailbox = if path.starts_with('@') {
        let (route, mailbox) = path.split_once(':')?;
        let all_domains = route
            .split(',')
            .all(|hop| hop.strip_prefix('@').is_some_and(domain_ok));
        if !all_domains {
            return None;
        }
        mailbox
    } else {
        path
    };
    let at = local_part_end(mailbox)?;
    let domain = mailbox[at..].strip_prefix('@')?;
    if !(domain_ok(domain) || address_literal_ok(domain)) {
        return None;
    }
    Some(mailbox.to_owned())
}

/// Where a valid local part ends (the index of its `@`): a dot-string of
/// atoms or a quoted string (RFC 5321 4.1.2).
fn local_part_end(mailbox: &str) -> Option<usize> {
    if let Some(quoted) = mailbox.strip_prefix('"') {
        let mut escaped = false;
        for (i, b) in quoted.bytes().enumerate() {
            match b {
                // quoted-pairSMTP: a backslash and any printable ASCII.
                _ if escaped => {
                    if !(32..=126).contains(&b) {
                        return None;
                    }
                    escaped = false;
                }
                b'\\' => escaped = true,
                b'"' => return (i > 0).then_some(i + 2),
                // qtextSMTP: printable ASCII and space but `"` and `\`.
                32..=126 => {}
                _ => return None,
            }
        }
        None
    } else {
        let at = mailbox.find('@')?;
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        let dot_string = mailbox[..at]
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atext));
        dot_string.then_some(at)
    }
}

/// A domain name: dot-separated labels of letters, digits and inner hyphens
/// (RFC 5321 4.1.2 `Domain`).
fn domain_ok(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 255
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `[192.0.2.1]` or `[IPv6:...]`: we check only the brackets and that the
/// inside is printable (RFC 5321 4.1.3 `dcontent`).
fn address_literal_ok(domain: &str) -> bool {
    domain
        .strip_prefix('[')
        .and_then(|d| d.strip_suffix(']'))
        .is_some_and(|inside| {
            !inside.is_empty()
                && inside
                    .bytes()
                    .all(|b| (33..=126).contains(&b) && !matches!(b, b'[' | b']' | b'\\'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs() {
        for (line, verb, arg) in [
            (
                &b"EHLO client.example"[..],
                Verb::Ehlo,
                &b"client.example"[..],
            ),
            (b"ehlo   client.example  ", Verb::Ehlo, b"client.example"),
            (b"  NoOp", Verb::Noop, b""),
            (b"QUIT\r", Verb::Quit, b""),
            (b"MAIL FROM:<a@b>", Verb::Mail, b"FROM:<a@b>"),
            (b"StartTLS", Verb::StartTls, b""),
            (b"bdat 10 LAST", Verb::Unsupported, b"10 LAST"),
            (b"GET / HTTP/1.1", Verb::Http, b"/ HTTP/1.1"),
            (b"EHLOX", Verb::Unknown, b""),
            (b"", Verb::Unknown, b""),
            (b"\xff\xfe \x00", Verb::Unknown, b"\x00"),
            (b"MAIL\tFROM:<a@b>", Verb::Unknown, b""),
        ] {
            assert_eq!(
                split(line),
                (verb, arg),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    fn code(result: Result<impl std::fmt::Debug, Reply>) -> String {
        match result {
            Ok(v) => format!("ok {v:?}"),
            Err(r) => format!("{} {}", r.code(), r.enhanced().unwrap_or("")),
        }
    }

    #[test]
    fn mail_from_paths() {
        for (arg, want) in [
            (&b"FROM:<a@b.example>"[..], "a@b.example"),
            (b"from:<a@b.example>", "a@b.example"),
            (b"FROM: <a@b.example>", "a@b.example"),
            (b"FROM:<>", ""),
            (
                b"FROM:<@relay.example,@hop.example:a@b.example>",
                "a@b.example",
            ),
            (b"FROM:<\"a b\"@b.example>", "\"a b\"@b.example"),
            (b"FROM:<\"a>\\\"b\"@b.example>", "\"a>\\\"b\"@b.example"),
            (
                b"FROM:<first.last+tag@b.example>",
                "first.last+tag@b.example",
            ),
            (b"FROM:<a@[192.0.2.1]>", "a@[192.0.2.1]"),
            (b"FROM:<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]"),
            (b"FROM:<a@B-2.Example>", "a@B-2.Example"),
        ] {
            let got = mail_from(arg, 1000);
            assert_eq!(
                got,
                Ok(want.to_owned()),
                "{:?}",
                String::from_utf8_lossy(arg)
            );
        }
    }

    #[test]
    fn mail_from_refusals() {
        for (arg, want) in [
            (&b""[..], "501 5.5.2"),
            (b"FROM", "501 5.5.2"),
            (b"TO:<a@b.example>", "501 5.5.2"),
            (b"FROM:a@b.example", "501 5.5.2"),
            (b"FROM:<a@b.example", "501 5.5.2"),
            (b"FROM:<a@b.example>x", "501 5.5.2"),
            (b"FROM:<\xff@b.example>", "501 5.5.2"),
            (b"FROM:<a>", "501 5.1.7"),
            (b"FROM:<a@>", "501 5.1.7"),
            (b"FROM:<@b.example>", "501 5.1.7"),
            (b"FROM:<a..b@b.example>", "501 5.1.7"),
            (b"FROM:<.a@b.example>", "501 5.1.7"),
            (b"FROM:<a b@b.example>", "501 5.1.7"),
            (b"FROM:<a@b..example>", "501 5.1.7"),
            (b"FROM:<a@-b.example>", "501 5.1.7"),
            (b"FROM:<a@b_c.example>", "501 5.1.7"),
            (b"FROM:<a@b@c.example>", "501 5.1.7"),
            (b"FROM:<\"\"@b.example>", "501 5.1.7"),
            (b"FROM:<\"a\x01\"@b.example>", "501 5.1.7"),
            (b"FROM:<\"a\"b@b.example>", "501 5.1.7"),
            (b"FROM:<@relay.example:>", "501 5.1.7"),
            (b"FROM:<@:a@b.example>", "501 5.1.7"),
            (b"FROM:<relay.example:a@b.example>", "501 5.1.7"),
            (b"FROM:<a@[]>", "501 5.1.7"),
            (b"FROM:<a@[1.2.3.4>", "501 5.1.7"),
            (b"FROM:<p\xc3\xa9@b.example>", "501 5.1.7"),
        ] {
            let got = code(mail_from(arg, 1000));
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(arg));
        }
        let long = format!("FROM:<{}@b.example>", "a".repeat(250));
        assert_eq!(code(mail_from(long.as_bytes(), 1000)), "501 5.1.7");
    }

    #[test]
    fn mail_from_parameters() {
        for (arg, want) in [
            (&b"FROM:<a@b.example> SIZE=1000"[..], "ok \"a@b.example\""),
            (b"FROM:<a@b.example> size=0", "ok \"a@b.example\""),
            (b"FROM:<a@b.example>  BODY=8bitmime  ", "ok \"a@b.example\""),
            (b"FROM:<a@b.example> BODY=7BIT SIZE=5", "ok \"a@b.example\""),
            (b"FROM:<> AUTH=<>", "ok \"\""),
            (
                b"FROM:<a@b.example> AUTH=a+40b.example",
                "ok \"a@b.example\"",
            ),
            (b"FROM:<a@b.example> SIZE=1001", "552 5.3.4"),
            (b"FROM:<a@b.example> SIZE=99999999999999999999", "552 5.3.4"),
            (
                b"FROM:<a@b.example> SIZE=999999999999999999999",
                "501 5.5.4",
            ),
            (b"FROM:<a@b.example> SIZE=-1", "501 5.5.4"),
            (b"FROM:<a@b.example> SIZE=1k", "501 5.5.4"),
            (b"FROM:<a@b.example> SIZE=", "501 5.5.4"),
            (b"FROM:<a@b.example> SIZE", "501 5.5.4"),
            (b"FROM:<a@b.example> BODY=BINARYMIME", "555 5.5.4"),
            (b"FROM:<a@b.example> BODY", "555 5.5.4"),
            (b"FROM:<a@b.example> SMTPUTF8", "555 5.5.4"),
            (b"FROM:<a@b.example> RET=HDRS", "555 5.5.4"),
            (b"FROM:<a@b.example> =x", "501 5.5.4"),
            (b"FROM:<a@b.example> A=b=c", "501 5.5.4"),
            (b"FROM:<a@b.example> A_B", "501 5.5.4"),
            (b"FROM:<a@b.example> A=\x01", "501 5.5.4"),
        ] {
            let got = code(mail_from(arg, 1000));
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(arg));
        }
    }

    #[test]
    fn rcpt_to_paths() {
        for (arg, want) in [
            (&b"TO:<0123@fax.example>"[..], "ok \"0123@fax.example\""),
            (b"to: <0123@fax.example>", "ok \"0123@fax.example\""),
            (
                b"TO:<@hop.example:0123@fax.example>",
                "ok \"0123@fax.example\"",
            ),
            (b"TO:<Postmaster>", "ok \"postmaster\""),
            (
                b"TO:<postmaster@fax.example>",
                "ok \"postmaster@fax.example\"",
            ),
            (b"TO:<>", "501 5.1.3"),
            (b"TO:<bob>", "501 5.1.3"),
            (b"TO:0123@fax.example", "501 5.5.2"),
            (b"FROM:<0123@fax.example>", "501 5.5.2"),
            (b"TO:<0123@fax.example> NOTIFY=NEVER", "555 5.5.4"),
            (b"TO:<0123@fax.example> =", "501 5.5.4"),
        ] {
            let got = code(rcpt_to(arg));
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(arg));
        }
    }
}

//! Reading a daemon's STATUS= line, which is `; `-separated parts such as
//! `listening on 127.0.0.1:4710; admin on 127.0.0.1:9100; peers up: 0`.

/// The text after `prefix` in a status line, up to the next `;`; None when
/// `prefix` is not in it.
pub fn field(status: &str, prefix: &str) -> Option<String> {
    let rest = &status[status.find(prefix)? + prefix.len()..];
    Some(rest.split(';').next().unwrap_or(rest).trim().to_owned())
}

/// The address after `listening on ` in a status line, as the daemon wrote it.
///
/// # Panics
///
/// When the status has no `listening on ` part.
#[track_caller]
pub fn listen_addr(status: &str) -> String {
    field(status, "listening on ").unwrap_or_else(|| panic!("no address in STATUS {status:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_end_at_a_semicolon() {
        let s = "listening on 127.0.0.1:1; admin on 127.0.0.1:2; peers up: 0";
        assert_eq!(listen_addr(s), "127.0.0.1:1");
        assert_eq!(field(s, "admin on ").as_deref(), Some("127.0.0.1:2"));
        assert_eq!(field(s, "peers up: ").as_deref(), Some("0"));
        assert_eq!(field(s, "devices online: "), None);
    }
}

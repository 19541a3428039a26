//! Signed webhook bodies: the `Faxmesh-Signature` header.
//!
//! `Faxmesh-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." || body)>`,
//! the scheme Stripe uses: the timestamp is inside the MAC, so a receiver
//! that refuses old timestamps also refuses a captured request replayed
//! later. A receiver may find several `v1=` parts (a sender rotating its
//! key); any one that matches is enough.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header's name.
pub const SIGNATURE_HEADER: &str = "Faxmesh-Signature";

/// A key shorter than this is refused: HMAC-SHA256 with a few bytes of key
/// is guessable offline from one signed request.
pub const MIN_KEY_BYTES: usize = 16;

/// The shared secret webhook bodies are signed with. Its `Debug` never
/// shows the bytes, so it cannot leak into a log line.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} bytes)", self.0.len())
    }
}

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {}: the key has {len} bytes, at least {MIN_KEY_BYTES} are needed \
         (make one with `openssl rand -hex 32 > {}`)",
        path.display(), path.display()
    )]
    TooShort { path: PathBuf, len: usize },
}

impl SigningKey {
    /// A key from its bytes; `None` when shorter than [`MIN_KEY_BYTES`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<SigningKey> {
        let bytes = bytes.into();
        (bytes.len() >= MIN_KEY_BYTES).then_some(SigningKey(bytes))
    }

    /// Reads a key file: its bytes with surrounding whitespace trimmed (so
    /// `openssl rand -hex 32 > F` and an editor's final newline both work).
    pub fn from_file(path: &Path) -> Result<SigningKey, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let trimmed = bytes.trim_ascii();
        SigningKey::new(trimmed).ok_or_else(|| KeyError::TooShort {
            path: path.to_owned(),
            len: trimmed.len(),
        })
    }

    fn mac(&self, t: u64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length, so this cannot fail.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// The `Faxmesh-Signature` value for `body` sent at unix time `t`.
pub fn sign(key: &SigningKey, t: u64, body: &[u8]) -> String {
    let tag = key.mac(t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

/// Why a signature was refused. The messages name the problem for the
/// receiver's log; none of them helps a forger (a mismatch says only that).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header has no {0}= part (expected t=<unix seconds>,v1=<hex>)")]
    MissingPart(&'static str),
    #[error("signature header's t={0:?} is not unix seconds")]
    BadTimestamp(String),
    #[error("signature header's v1 is not hex of 32 bytes: {0:?}")]
    BadHex(String),
    #[error(
        "signature timestamp is {age_secs} s away from now, more than the {tolerance_secs} s allowed (a replay, or a clock off)"
    )]
    Stale { age_secs: u64, tolerance_secs: u64 },
    #[error("signature does not match the body (wrong key, or the body was changed)")]
    Mismatch,
}

/// Checks a `Faxmesh-Signature` value against `body`: the timestamp must be
/// within `tolerance` of `now_unix` (either way), and one `v1` must be the
/// body's MAC, compared in constant time.
pub fn verify(
    key: &SigningKey,
    header: &str,
    body: &[u8],
    now_unix: u64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => tags.push(value),
            // Other schemes (v0, a future v2) are skipped, as Stripe's are.
            _ => {}
        }
    }
    let t_text = t.ok_or(SignatureError::MissingPart("t"))?;
    if tags.is_empty() {
        return Err(SignatureError::MissingPart("v1"));
    }
    let t: u64 = t_text
        .parse()
        .map_err(|_| SignatureError::BadTimestamp(t_text.to_owned()))?;
    let tags = tags
        .into_iter()
        .map(|tag| match hex::decode(tag) {
            Ok(bytes) if bytes.len() == 32 => Ok(bytes),
            _ => Err(SignatureError::BadHex(tag.to_owned())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let age = now_unix.abs_diff(t);
    if age > tolerance.as_secs() {
        return Err(SignatureError::Stale {
            age_secs: age,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    let expected = key.mac(t, body).finalize().into_bytes();
    // Every tag is compared, so the time taken says nothing about which one
    // (or how much of one) matched.
    let matched = tags.iter().fold(subtle::Choice::from(0), |any, tag| {
        any | tag.as_slice().ct_eq(expected.as_slice())
    });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const FIVE_MIN: Duration = Duration::from_secs(300);

    fn key(text: &str) -> SigningKey {
        SigningKey::new(text.as_bytes()).expect("a long enough key")
    }

    #[test]
    fn a_signed_body_verifies_and_the_header_has_the_documented_shape() {
        let k = key("0123456789abcdef0123");
        let header = sign(&k, NOW, br#"{"call_id":"c1"}"#);
        let (t, v1) = header.split_once(",v1=").expect("t=...,v1=...");
        assert_eq!(t, format!("t={NOW}"));
        assert_eq!(v1.len(), 64, "hex of a SHA-256 MAC: {v1}");
        // The reference value, from Python:
        // hmac.new(b"0123456789abcdef0123", b"1700000000." + body, "sha256").hexdigest()
        assert_eq!(
            v1,
            "e77b99bb598e62cf06768279b9c377c8961a237181f85d0444ebc79bb983de54"
        );
        assert_eq!(
            verify(&k, &header, br#"{"call_id":"c1"}"#, NOW + 10, FIVE_MIN),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_or_another_key_is_a_mismatch() {
        let k = key("0123456789abcdef0123");
        let header = sign(&k, NOW, b"{\"pages\":3}");
        assert_eq!(
            verify(&k, &header, b"{\"pages\":4}", NOW, FIVE_MIN),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &key("another key, 16+ bytes"),
                &header,
                b"{\"pages\":3}",
                NOW,
                FIVE_MIN
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_timestamp_outside_the_tolerance_is_stale_either_way() {
        let k = key("0123456789abcdef0123");
        let header = sign(&k, NOW, b"{}");
        assert_eq!(
            verify(&k, &header, b"{}", NOW + 301, FIVE_MIN),
            Err(SignatureError::Stale {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            verify(&k, &header, b"{}", NOW - 400, FIVE_MIN),
            Err(SignatureError::Stale {
                age_secs: 400,
                tolerance_secs: 300
            })
        );
        assert_eq!(verify(&k, &header, b"{}", NOW + 300, FIVE_MIN), Ok(()));
    }

    #[test]
    fn a_malformed_header_names_what_is_wrong() {
        let k = key("0123456789abcdef0123");
        let good = sign(&k, NOW, b"{}");
        let v1 = good.split_once(",v1=").expect("two parts").1;
        let check = |header: &str| verify(&k, header, b"{}", NOW, FIVE_MIN);
        assert_eq!(
            check(&format!("v1={v1}")),
            Err(SignatureError::MissingPart("t"))
        );
        assert_eq!(
            check("t=1700000000"),
            Err(SignatureError::MissingPart("v1"))
        );
        assert_eq!(check(""), Err(SignatureError::MissingPart("t")));
        assert_eq!(
            check(&format!("t=yesterday,v1={v1}")),
            Err(SignatureError::BadTimestamp("yesterday".into()))
        );
        assert_eq!(
            check("t=1700000000,v1=xyz"),
            Err(SignatureError::BadHex("xyz".into()))
        );
        assert_eq!(
            check("t=1700000000,v1=abcd"),
            Err(SignatureError::BadHex("abcd".into()))
        );
        // A second v1 (a sender rotating keys) and spaces are fine.
        assert_eq!(
            check(&format!("t={NOW}, v1={}, v1={v1}", "00".repeat(32))),
            Ok(())
        );
        let msg = SignatureError::MissingPart("v1").to_string();
        assert!(msg.contains("no v1= part"), "{msg}");
    }

    #[test]
    fn a_key_file_is_trimmed_and_a_short_one_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("hook.key");
        std::fs::write(&path, "  0123456789abcdef\n").expect("writes");
        let k = SigningKey::from_file(&path).expect("16 bytes after trimming");
        assert_eq!(
            sign(&k, NOW, b"x"),
            sign(&key("0123456789abcdef"), NOW, b"x")
        );
        assert_eq!(format!("{k:?}"), "SigningKey(16 bytes)");

        std::fs::write(&path, "short\n").expect("writes");
        let err = SigningKey::from_file(&path)
            .expect_err("5 bytes")
            .to_string();
        assert!(
            err.starts_with(&format!(
                "key file {}: the key has 5 bytes, at least 16",
                path.display()
            )),
            "{err}"
        );
        let missing = dir.path().join("nosuch.key");
        let err = SigningKey::from_file(&missing)
            .expect_err("no file")
            .to_string();
        assert!(
            err.starts_with(&format!("cannot read key file {}: ", missing.display())),
            "{err}"
        );
    }
}

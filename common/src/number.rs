//! Fax numbers and call ids: the two identifiers that travel in every call and
//! end up in file names, so both are validated strictly where they are parsed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest number accepted (E.164 allows 15 digits; extensions need a little more).
const MAX_NUMBER_LEN: usize = 32;

/// A fax device's number: digits, optionally after a leading `+`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Number(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("invalid fax number '{0}': use 1 to 32 digits, optionally after a leading +")]
    Number(String),
    #[error("invalid call id '{0}': expected 32 lowercase hex digits")]
    CallId(String),
}

impl Number {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A number unpacked from the routing table's key, which only ever
    /// holds numbers that were valid when packed.
    pub(crate) fn from_packed(s: String) -> Number {
        debug_assert!(s.parse::<Number>().is_ok(), "{s}");
        Number(s)
    }
}

impl FromStr for Number {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let digits = s.strip_prefix('+').unwrap_or(s);
        if digits.is_empty()
            || s.len() > MAX_NUMBER_LEN
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(IdError::Number(s.to_owned()));
        }
        Ok(Number(s.to_owned()))
    }
}

impl TryFrom<String> for Number {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<Number> for String {
    fn from(n: Number) -> String {
        n.0
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one fax across every hop and every retry: 128 random bits in hex.
/// The callee names its files after it, hence the strict parse.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallId(String);

impl CallId {
    pub fn random() -> CallId {
        CallId(format!("{:032x}", rand::random::<u128>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CallId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(CallId(s.to_owned()))
        } else {
            Err(IdError::CallId(s.to_owned()))
        }
    }
}

impl TryFrom<String> for CallId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<CallId> for String {
    fn from(c: CallId) -> String {
        c.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert!("1001".parse::<Number>().is_ok());
        assert!("+4930123".parse::<Number>().is_ok());
        for bad in ["", "+", "12a", "../x", "1 2", &"9".repeat(33)] {
            let err = bad.parse::<Number>().unwrap_err();
            assert_eq!(err, IdError::Number(bad.to_owned()));
        }
    }

    #[test]
    fn call_ids() {
        let id = CallId::random();
        assert_eq!(id.as_str().parse::<CallId>(), Ok(id.clone()));
        assert_ne!(id, CallId::random());
        for bad in ["", "../../etc/passwd", &"A".repeat(32), &"0".repeat(31)] {
            assert!(bad.parse::<CallId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_rejects_bad_values() {
        let bytes = postcard::to_allocvec(&"12/3".to_owned()).unwrap();
        assert!(postcard::from_bytes::<Number>(&bytes).is_err());
    }
}

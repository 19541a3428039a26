//! Connection information: what a relay knows about one device number, and
//! the rule that decides which of two records about a number wins.
//!
//! Pure data and pure functions; relayd persists the records in sled.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::codec::Capabilities;
use crate::number::Number;

/// A version that only grows: a Lamport counter, then the name of the relay
/// that issued it to break ties deterministically.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Version {
    pub counter: u64,
    pub origin: String,
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.counter
            .cmp(&other.counter)
            .then_with(|| self.origin.cmp(&other.origin))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Everything a relay holds about one number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    pub number: Number,
    /// The relay the device is (or was last) logged in at: the authority.
    pub home_relay: String,
    /// The gateway it came through; `None` when it dialed the relay itself.
    pub gateway: Option<String>,
    pub capabilities: Option<Capabilities>,
    /// Seconds since the Unix epoch of the login this record describes.
    pub login_time: u64,
    pub version: Version,
    /// Whether the device can take calls now.
    pub online: bool,
}

impl ConnectionInfo {
    /// Whether `self` should replace `current` (the merge rule): strictly newer
    /// versions win, so applying a duplicate or a stale record changes nothing.
    pub fn supersedes(&self, current: Option<&ConnectionInfo>) -> bool {
        match current {
            None => true,
            Some(cur) => self.version > cur.version,
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(counter: u64, origin: &str, online: bool) -> ConnectionInfo {
        ConnectionInfo {
            number: "1001".parse().unwrap(),
            home_relay: origin.into(),
            gateway: None,
            capabilities: None,
            login_time: 0,
            version: Version {
                counter,
                origin: origin.into(),
            },
            online,
        }
    }

    #[test]
    fn newer_wins_duplicates_and_stale_do_not() {
        let v1 = record(1, "a", true);
        let v2 = record(2, "a", false);
        assert!(v1.supersedes(None));
        assert!(v2.supersedes(Some(&v1)));
        assert!(!v1.supersedes(Some(&v2)), "stale");
        assert!(!v2.supersedes(Some(&v2)), "duplicate");
    }

    #[test]
    fn ties_break_on_origin() {
        let a = record(5, "a", true);
        let b = record(5, "b", true);
        assert!(b.supersedes(Some(&a)));
        assert!(!a.supersedes(Some(&b)));
    }
}

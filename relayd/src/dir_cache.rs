//! Directory mode's records, and the cache of those homed at other relays:
//! what calls are routed from without asking Redis, and from while Redis is
//! away.
//!
//! It is bounded (`--directory-cache`), so a relay's memory does not grow
//! with the fleet. What comes in decides what goes out:
//! - a record a call fetched (a miss) is taken, and pushes out the record
//!   least recently used by a call when the cache is full;
//! - a renewal heard on the channel, or a record the resync reads, updates
//!   the number's entry if there is one, and is taken only while there is
//!   room: a fleet's renewals must not push out the numbers this relay's
//!   callers call.
//!
//! Pure: `redis_dir` feeds it under a lock, and tests drive it directly.

use std::num::NonZeroUsize;

use common::directory::ConnectionInfo;
use common::number::Number;
use lru::LruCache;
use serde::{Deserialize, Serialize};

/// A record as stored in Redis: the connection information plus the
/// address its home relay is dialed at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryRecord {
    #[serde(flatten)]
    pub info: ConnectionInfo,
    pub relay_addr: String,
}

/// Records kept when `--directory-cache` is not given: about 50 MB, at
/// about 500 bytes a record (a number, a gateway and relay names of 15 or so
/// characters).
pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;

/// Where a record offered to the cache came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Fetched for a call: taken, pushing out the least recently used.
    Call,
    /// Heard on the channel or read by the resync: taken while there is room.
    Heard,
}

/// What became of an offered record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// The cache holds this version (or a newer one) now.
    Taken,
    /// The cache holds the same version or a newer one already: nothing new.
    Stale,
    /// Newer than anything cached, but the cache is full of numbers in use.
    NoRoom,
}

#[derive(Debug)]
pub struct DirCache {
    records: LruCache<Number, DirectoryRecord>,
}

impl DirCache {
    pub fn new(capacity: NonZeroUsize) -> DirCache {
        DirCache {
            records: LruCache::new(capacity),
        }
    }

    /// The record of `number`, now the most recently used.
    pub fn get(&mut self, number: &Number) -> Option<DirectoryRecord> {
        self.records.get(number).cloned()
    }

    /// Offers `record` (newer versions win; see [`Source`] for room).
    pub fn offer(&mut self, record: &DirectoryRecord, source: Source) -> Offer {
        let number = &record.info.number;
        if let Some(current) = self.records.peek_mut(number) {
            if !record.info.supersedes(Some(&current.info)) {
                return Offer::Stale;
            }
            // Updated in place: hearing of a number is not using it.
            *current = record.clone();
            if source == Source::Call {
                self.records.promote(number);
            }
            return Offer::Taken;
        }
        if source == Source::Heard && self.records.len() == self.records.cap().get() {
            return Offer::NoRoom;
        }
        self.records.put(number.clone(), record.clone());
        Offer::Taken
    }

    pub fn forget(&mut self, number: &Number) {
        self.records.pop(number);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every record, most recently used first.
    pub fn records(&self) -> Vec<DirectoryRecord> {
        self.records.iter().map(|(_, r)| r.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use common::directory::Version;

    use super::*;

    fn record(number: &str, counter: u64) -> DirectoryRecord {
        DirectoryRecord {
            info: ConnectionInfo {
                number: number.parse().unwrap(),
                home_relay: "relay-b".into(),
                gateway: Some("gw-b".into()),
                capabilities: None,
                online: true,
                login_time: 0,
                version: Version {
                    counter,
                    origin: "relay-b".into(),
                },
            },
            relay_addr: "10.0.0.2:4710".into(),
        }
    }

    fn cache(capacity: usize) -> DirCache {
        DirCache::new(NonZeroUsize::new(capacity).unwrap())
    }

    fn numbers(c: &DirCache) -> Vec<String> {
        c.records()
            .iter()
            .map(|r| r.info.number.to_string())
            .collect()
    }

    #[test]
    fn a_call_pushes_out_the_least_recently_called_number() {
        let mut c = cache(2);
        assert_eq!(c.offer(&record("1001", 1), Source::Call), Offer::Taken);
        assert_eq!(c.offer(&record("1002", 1), Source::Call), Offer::Taken);
        // 1001 is called again, so 1002 is the one to go.
        assert!(c.get(&"1001".parse().unwrap()).is_some());
        assert_eq!(c.offer(&record("1003", 1), Source::Call), Offer::Taken);
        assert_eq!(numbers(&c), ["1003", "1001"]);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn renewals_fill_room_but_never_push_out_a_called_number() {
        let mut c = cache(2);
        assert_eq!(c.offer(&record("1001", 1), Source::Heard), Offer::Taken);
        assert_eq!(c.offer(&record("1002", 1), Source::Call), Offer::Taken);
        assert_eq!(c.offer(&record("1003", 1), Source::Heard), Offer::NoRoom);
        assert_eq!(numbers(&c), ["1002", "1001"]);
        // A renewal of a cached number updates it without making it recent:
        // 1001 stays the first to go when a call needs room.
        assert_eq!(c.offer(&record("1001", 2), Source::Heard), Offer::Taken);
        assert_eq!(c.offer(&record("1004", 1), Source::Call), Offer::Taken);
        assert_eq!(numbers(&c), ["1004", "1002"]);
    }

    #[test]
    fn only_newer_versions_replace_a_record() {
        let mut c = cache(4);
        c.offer(&record("1001", 5), Source::Heard);
        assert_eq!(c.offer(&record("1001", 4), Source::Call), Offer::Stale);
        assert_eq!(c.offer(&record("1001", 5), Source::Heard), Offer::Stale);
        let n = "1001".parse().unwrap();
        assert_eq!(c.get(&n).unwrap().info.version.counter, 5);
        assert_eq!(c.offer(&record("1001", 6), Source::Heard), Offer::Taken);
        assert_eq!(c.get(&n).unwrap().info.version.counter, 6);
        c.forget(&n);
        assert_eq!(c.get(&n), None);
        assert_eq!(c.len(), 0);
    }
}

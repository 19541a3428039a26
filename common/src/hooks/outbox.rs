//! The outbox in sled: one entry per undelivered event, removed once the
//! event is acknowledged.
//!
//! Key: a sequence number, 8 bytes big-endian, so sled's key order is the
//! order events were pushed in (which a restart replays). Value: the event
//! as JSON (the target, the body's exact text, the paths), readable with
//! any sled tool when an operator wonders what is stuck.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::target::Target;

/// An event waiting for delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Event {
    pub target: Target,
    /// The JSON text, byte for byte what is posted (and signed) or piped.
    pub body: String,
    /// Arguments after a hook command's own (a fax's files).
    pub args: Vec<PathBuf>,
    /// When it was pushed, unix seconds.
    pub queued: u64,
}

/// The tree, and the next sequence number.
#[derive(Debug)]
pub(crate) struct Outbox {
    tree: sled::Tree,
    next: AtomicU64,
}

impl Outbox {
    /// Opens the outbox; returns it with every event left in it, in order
    /// (sequence number and target). An entry that does not decode (written
    /// by a newer version, or damaged) is logged and left alone.
    pub fn open(tree: sled::Tree) -> sled::Result<(Outbox, Vec<(u64, Target)>)> {
        let mut left = Vec::new();
        let mut next = 0;
        for entry in tree.iter() {
            let (key, value) = entry?;
            let Some(seq) = seq_of(&key) else {
                tracing::error!(key = ?key, "notification outbox: a key that is not a sequence number; skipped");
                continue;
            };
            next = seq + 1;
            match serde_json::from_slice::<Event>(&value) {
                Ok(event) => left.push((seq, event.target)),
                Err(e) => {
                    tracing::error!(seq, error = %e, "notification outbox: an event that does not decode; skipped")
                }
            }
        }
        let outbox = Outbox {
            tree,
            next: AtomicU64::new(next),
        };
        Ok((outbox, left))
    }

    /// Stores `event` under the next sequence number (not yet flushed).
    pub fn insert(&self, event: &Event) -> Result<u64, super::NotifyError> {
        let value = serde_json::to_vec(event)?;
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        self.tree.insert(seq.to_be_bytes(), value)?;
        Ok(seq)
    }

    /// Waits until everything inserted is on disk.
    pub fn flush(&self) -> sled::Result<()> {
        self.tree.flush().map(|_| ())
    }

    /// The event `seq`; `None` when it is gone or does not decode.
    pub fn get(&self, seq: u64) -> sled::Result<Option<Event>> {
        Ok(self
            .tree
            .get(seq.to_be_bytes())?
            .and_then(|value| serde_json::from_slice(&value).ok()))
    }

    /// Removes a delivered event, on disk before it returns.
    pub async fn remove(&self, seq: u64) -> sled::Result<()> {
        self.tree.remove(seq.to_be_bytes())?;
        crate::storage::flush(&self.tree).await
    }
}

fn seq_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

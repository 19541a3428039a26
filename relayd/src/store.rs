//! Connection information on disk: one sled tree keyed by number, values are
//! postcard-encoded `ConnectionInfo`. sled flushes on its own every half
//! second and on shutdown, so a restart remembers which numbers exist.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use common::directory::{ConnectionInfo, Version};
use common::number::Number;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database in {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record for {key} is unreadable: {source}")]
    Corrupt {
        key: String,
        source: postcard::Error,
    },
}

/// The relay's persistent directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    devices: sled::Tree,
    relay: String,
    /// The Lamport counter: above every version this relay has seen.
    counter: std::sync::Arc<AtomicU64>,
}

impl Store {
    /// Opens (or creates) the store under `dir`.
    pub fn open(dir: &Path, relay: &str) -> Result<Store, StoreError> {
        let path = dir.join("directory.sled");
        let db = sled::Config::new()
            .path(&path)
            // The default 1 GiB cache would let a big directory grow the
            // daemon's memory far beyond what lookups need.
            .cache_capacity(16 << 20)
            .open()
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        let devices = db.open_tree("devices")?;
        let store = Store {
            db,
            devices,
            relay: relay.to_owned(),
            counter: Default::default(),
        };
        let max = store
            .all()?
            .iter()
            .map(|r| r.version.counter)
            .max()
            .unwrap_or(0);
        store.counter.store(max, Ordering::SeqCst);
        Ok(store)
    }

    /// A version newer than anything seen so far, issued by this relay.
    pub fn next_version(&self) -> Version {
        Version {
            counter: self.counter.fetch_add(1, Ordering::SeqCst) + 1,
            origin: self.relay.clone(),
        }
    }

    /// Keeps the Lamport counter above a version seen elsewhere (directory
    /// mode learns versions from Redis), so this relay's next renewal of that
    /// number wins.
    pub fn witness(&self, version: &Version) {
        self.counter.fetch_max(version.counter, Ordering::SeqCst);
    }

    pub fn get(&self, number: &Number) -> Result<Option<ConnectionInfo>, StoreError> {
        match self.devices.get(number.as_str())? {
            None => Ok(None),
            Some(bytes) => decode(number.as_str(), &bytes).map(Some),
        }
    }

    /// Stores `record` if it supersedes what is stored (the merge rule);
    /// returns whether it did.
    pub fn apply(&self, record: &ConnectionInfo) -> Result<bool, StoreError> {
        let current = self.get(&record.number)?;
        if !record.supersedes(current.as_ref()) {
            return Ok(false);
        }
        self.counter
            .fetch_max(record.version.counter, Ordering::SeqCst);
        // postcard cannot fail on these plain types; an error here would be a bug.
        let bytes = postcard::to_allocvec(record).map_err(|source| StoreError::Corrupt {
            key: record.number.to_string(),
            source,
        })?;
        self.devices.insert(record.number.as_str(), bytes)?;
        Ok(true)
    }

    /// Stores records the caller already merged (the routing table decided
    /// they are newer), in one batch.
    pub fn put_many(&self, records: &[ConnectionInfo]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        let mut max = 0;
        for r in records {
            let bytes = postcard::to_allocvec(r).map_err(|source| StoreError::Corrupt {
                key: r.number.to_string(),
                source,
            })?;
            batch.insert(r.number.as_str(), bytes);
            max = max.max(r.version.counter);
        }
        self.counter.fetch_max(max, Ordering::SeqCst);
        self.devices.apply_batch(batch)?;
        Ok(())
    }

    pub fn all(&self) -> Result<Vec<ConnectionInfo>, StoreError> {
        self.devices
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&String::from_utf8_lossy(&k), &v)
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<ConnectionInfo, StoreError> {
    postcard::from_bytes(bytes).map_err(|source| StoreError::Corrupt {
        key: key.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(store: &Store, number: &str, online: bool) -> ConnectionInfo {
        ConnectionInfo {
            number: number.parse().unwrap(),
            home_relay: "r1".into(),
            gateway: Some("gw".into()),
            capabilities: None,
            login_time: 1,
            version: store.next_version(),
            online,
        }
    }

    #[tokio::test]
    async fn records_survive_reopen_and_versions_keep_growing() {
        let dir = tempfile::tempdir().unwrap();
        let last_version;
        {
            let store = Store::open(dir.path(), "r1").unwrap();
            let a = record(&store, "1001", true);
            assert!(store.apply(&a).unwrap());
            let stale = ConnectionInfo {
                online: false,
                ..a.clone()
            };
            assert!(!store.apply(&stale).unwrap(), "same version must not apply");
            let b = record(&store, "1001", false);
            assert!(store.apply(&b).unwrap());
            last_version = b.version.counter;
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path(), "r1").unwrap();
        let got = store.get(&"1001".parse().unwrap()).unwrap().unwrap();
        assert!(!got.online);
        assert!(store.next_version().counter > last_version);
        assert_eq!(store.len(), 1);
    }
}

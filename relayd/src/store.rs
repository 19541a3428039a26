//! Connection information on disk: one sled tree keyed by number, values are
//! postcard-encoded `ConnectionInfo`. sled flushes on its own every half
//! second and on shutdown, so a restart remembers which numbers exist.
//!
//! Writes go through a background thread: callers queue the records the
//! routing table accepted (while still holding the table's lock, so the
//! queue follows the table's order) and move on. The queue keeps only the
//! newest record per number, so it never holds more than the directory;
//! sled's ~5 µs per insert then overlaps with decoding and routing instead
//! of adding to them (a 100,000-number snapshot). `settled` waits until
//! everything queued so far is written.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

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
    counter: Arc<AtomicU64>,
    queue: Arc<WriteQueue>,
    /// Stops and joins the writer when the last handle goes, so the
    /// database closes (and may be opened again) once the store is dropped.
    _writer: Arc<Writer>,
}

#[derive(Debug)]
struct Writer {
    queue: Arc<WriteQueue>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.lock().stop = true;
        self.queue.wake.notify_all();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// Records waiting for the writer thread.
#[derive(Debug, Default)]
struct WriteQueue {
    state: Mutex<Queued>,
    /// Wakes the writer when records arrive, and `settled` when they are written.
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Queued {
    records: HashMap<Number, ConnectionInfo>,
    /// Batches queued so far, and how many of them are written.
    queued: u64,
    written: u64,
    /// The store is gone: write what is left, then end.
    stop: bool,
}

impl WriteQueue {
    fn lock(&self) -> MutexGuard<'_, Queued> {
        // Plain records and counters: still consistent after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store {
    /// The database, for other trees (revocations).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

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
        let queue = Arc::new(WriteQueue::default());
        let (tree, q) = (devices.clone(), queue.clone());
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_loop(&tree, &q))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: sled::Error::Io(e),
            })?;
        let store = Store {
            db,
            devices,
            relay: relay.to_owned(),
            counter: Default::default(),
            _writer: Arc::new(Writer {
                queue: queue.clone(),
                thread: Mutex::new(Some(thread)),
            }),
            queue,
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

    /// Queues records the routing table accepted, for the writer thread.
    /// Call it while holding the table's lock, so that writes follow the
    /// table's order; a queued record for the same number is replaced.
    pub fn save(&self, records: impl IntoIterator<Item = ConnectionInfo>) {
        let mut q = self.queue.lock();
        let mut any = false;
        for r in records {
            self.counter.fetch_max(r.version.counter, Ordering::SeqCst);
            q.records.insert(r.number.clone(), r);
            any = true;
        }
        if any {
            q.queued += 1;
            self.queue.wake.notify_all();
        }
    }

    /// Waits (off the async threads) until everything queued so far is written.
    pub async fn settled(&self) {
        let queue = self.queue.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut q = queue.lock();
            let target = q.queued;
            while q.written < target {
                q = queue.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        })
        .await;
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

    /// Writes what is queued, then makes sled flush to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.settled().await;
        common::storage::flush(&self.db).await?;
        Ok(())
    }
}

/// The writer thread: takes every queued record and writes them as one
/// batch, until the store is dropped and nothing is left.
fn write_loop(tree: &sled::Tree, queue: &WriteQueue) {
    loop {
        let (batch, upto) = {
            let mut q = queue.lock();
            while q.records.is_empty() && !q.stop {
                q = queue.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            if q.records.is_empty() {
                return;
            }
            (std::mem::take(&mut q.records), q.queued)
        };
        let records: Vec<ConnectionInfo> = batch.into_values().collect();
        if let Err(e) = put_many(tree, &records) {
            tracing::error!(error = %e, records = records.len(), "cannot store connection information");
        }
        let mut q = queue.lock();
        q.written = q.written.max(upto);
        queue.wake.notify_all();
    }
}

/// Writes records in one batch.
fn put_many(tree: &sled::Tree, records: &[ConnectionInfo]) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for r in records {
        let bytes = postcard::to_allocvec(r).map_err(|source| StoreError::Corrupt {
            key: r.number.to_string(),
            source,
        })?;
        batch.insert(r.number.as_str(), bytes);
    }
    tree.apply_batch(batch)?;
    Ok(())
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
    async fn queued_records_are_written_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let last_version;
        {
            let store = Store::open(dir.path(), "r1").unwrap();
            let a = record(&store, "1001", true);
            let b = record(&store, "1001", false);
            last_version = b.version.counter;
            // Queued in the table's order: the newest record for a number wins.
            store.save([a]);
            store.save([b, record(&store, "1002", true)]);
            store.settled().await;
            assert!(!store.get(&"1001".parse().unwrap()).unwrap().unwrap().online);
            // Queued but not awaited: dropping the store still writes it.
            store.save([record(&store, "1003", true)]);
        }
        let store = Store::open(dir.path(), "r1").unwrap();
        let got = store.get(&"1001".parse().unwrap()).unwrap().unwrap();
        assert!(!got.online);
        assert!(store.next_version().counter > last_version);
        assert_eq!(store.len(), 3);
    }
}

//! Connection information on disk, in sled: a log of batches. Each batch
//! the writer takes is one sled value (postcard `Vec<ConnectionInfo>`,
//! keyed by a growing sequence number); loading reads the log in order and
//! merges by version, which is already the rule for every record, so a
//! newer record later in the log wins whatever came before. One key per
//! number cost sled ~5 µs per insert and 1,300 bytes of memory per number
//! (a million-number snapshot took 47 s and 2 GB); a batch of 4,096
//! records costs one insert.
//!
//! The log holds superseded records too; when it holds more than twice
//! as many records as the directory has numbers (plus some slack), the
//! writer compacts it: it rewrites the newest record of every number and
//! drops the rest, in one atomic sled batch. Compaction decodes the whole
//! log, so it briefly takes memory in proportion to the directory.
//!
//! Writes go through a background thread: callers queue the records the
//! routing table accepted (while still holding the table's lock, so the
//! queue follows the table's order) and move on. The queue keeps only the
//! newest record per number, so it never holds more than the directory.
//! `settled` waits until everything queued so far is written. sled flushes
//! on its own every half second and on shutdown, so a restart remembers
//! which numbers exist.
//!
//! A full disk: the writer asks for room before each write
//! (`common::storage::room_for`), because sled takes a write the disk has
//! no room for and then fails every write until it is opened again. While
//! there is no room, the records wait in the queue (still newest per
//! number), the status line says so, and the writer asks again every
//! second; once there is room they are written, and nothing is lost.
//!
//! A data directory from before the log (one key per number in the tree
//! `devices`) is moved into the log when it is opened.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::directory::{ConnectionInfo, Version};
use common::number::Number;
use common::storage::{RoomError, room_for};
use foldhash::fast::RandomState;

/// Records per log value: one sled insert for this many numbers, and a
/// value of about 250 KB, which sled stores as a blob of its own.
const BATCH: usize = 4096;
/// Superseded records the log may hold beyond the directory's size before
/// compaction: a small directory is not rewritten on every renewal.
const COMPACT_SLACK: usize = 100_000;
/// How often the writer asks again for room on a full disk.
const DISK_RECHECK: Duration = Duration::from_secs(1);

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
    #[error("the disk is full: {0}")]
    NoRoom(RoomError),
    #[error("{records} records of connection information not stored: the disk is full ({why})")]
    NotStored { records: usize, why: String },
}

/// The relay's persistent directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    /// The database's directory (`DIR/directory.sled`).
    dir: PathBuf,
    log: sled::Tree,
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
#[derive(Debug)]
struct WriteQueue {
    state: Mutex<Queued>,
    /// Wakes the writer when records arrive, and `flush` when they are
    /// written or wait for room.
    wake: Condvar,
    /// Batches written so far, and `u64::MAX` once the writer has ended:
    /// what `settled` awaits. A watch, not the condvar: a peer's pings
    /// wait on it while the disk is full, and must not take a thread each.
    written: tokio::sync::watch::Sender<u64>,
    /// Numbers in the directory, as the routing table last said: the
    /// measure of how much of the log is superseded.
    live: AtomicUsize,
}

#[derive(Debug, Default)]
struct Queued {
    records: HashMap<Number, ConnectionInfo, RandomState>,
    /// Batches queued so far, and how many of them are written.
    queued: u64,
    written: u64,
    /// The store is gone: write what is left, then end.
    stop: bool,
    /// Records the writer has taken and not written yet.
    taken: usize,
    /// Why the writer waits for room on the disk, while it does.
    no_room: Option<String>,
}

impl Queued {
    /// Records not written yet: queued, or being written.
    fn unwritten(&self) -> usize {
        self.records.len() + self.taken
    }
}

impl WriteQueue {
    fn new() -> WriteQueue {
        WriteQueue {
            state: Mutex::default(),
            wake: Condvar::new(),
            written: tokio::sync::watch::Sender::new(0),
            live: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queued> {
        // Plain records and counters: still consistent after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The log as the writer sees it: the next sequence number and how many
/// records it holds.
#[derive(Debug)]
struct Log {
    tree: sled::Tree,
    /// The database's directory, whose disk must have room for a write.
    dir: PathBuf,
    next: u64,
    records: usize,
}

impl Store {
    /// The database, for other trees (revocations).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The database's directory, on the disk its writes need room on.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This relay's instance id: random, made the first time the data
    /// directory is opened and kept in it (sled key `instance`), so two
    /// relays that share a `--name` by mistake differ, while a relay that
    /// restarts on its data directory is still the same relay.
    pub fn instance(&self) -> Result<u64, StoreError> {
        const KEY: &[u8] = b"instance";
        if let Some(value) = self.db.get(KEY)? {
            match <[u8; 8]>::try_from(value.as_ref()) {
                Ok(bytes) => return Ok(u64::from_be_bytes(bytes)),
                Err(_) => {
                    tracing::warn!("unreadable instance id in the data directory; making a new one")
                }
            }
        }
        let id = rand::random::<u64>();
        self.db.insert(KEY, &id.to_be_bytes())?;
        // Kept before any peer hears it: a crash now must not make a new one.
        self.db.flush()?;
        Ok(id)
    }

    /// Opens (or creates) the store under `dir`; `load` then reads what it holds.
    pub fn open(dir: &Path, relay: &str) -> Result<Store, StoreError> {
        let path = dir.join("directory.sled");
        let open_error = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let db = sled::Config::new()
            .path(&path)
            // The default 1 GiB cache would let a big directory grow the
            // daemon's memory far beyond what lookups need.
            .cache_capacity(16 << 20)
            .open()
            .map_err(open_error)?;
        let tree = db.open_tree("log")?;
        let mut log = Log::open(tree.clone(), path.clone())?;
        migrate_per_number_tree(&db, &mut log)?;
        let queue = Arc::new(WriteQueue::new());
        let q = queue.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_loop(log, &q))
            .map_err(|e| open_error(sled::Error::Io(e)))?;
        Ok(Store {
            db,
            dir: path,
            log: tree,
            relay: relay.to_owned(),
            counter: Default::default(),
            _writer: Arc::new(Writer {
                queue: queue.clone(),
                thread: Mutex::new(Some(thread)),
            }),
            queue,
        })
    }

    /// Reads every stored record, in the order they were written (so a
    /// number's newest record comes last), and keeps the Lamport counter
    /// above them all. Streams: nothing but the current batch is held.
    pub fn load(&self, mut each: impl FnMut(ConnectionInfo)) -> Result<(), StoreError> {
        for kv in self.log.iter() {
            let (key, value) = kv?;
            for r in decode(&key, &value)? {
                self.counter.fetch_max(r.version.counter, Ordering::SeqCst);
                each(r);
            }
        }
        Ok(())
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

    /// Queues records the routing table accepted, for the writer thread;
    /// `live` is how many numbers the table now holds. Call it while
    /// holding the table's lock, so that writes follow the table's order; a
    /// queued record for the same number is replaced.
    pub fn save(&self, records: impl IntoIterator<Item = ConnectionInfo>, live: usize) {
        self.queue.live.store(live, Ordering::Relaxed);
        let records = records.into_iter();
        let mut q = self.queue.lock();
        // Grown once, not doubling its way up through a snapshot's chunk.
        q.records.reserve(records.size_hint().0);
        let mut newest = None;
        for r in records {
            newest = newest.max(Some(r.version.counter));
            q.records.insert(r.number.clone(), r);
        }
        if let Some(counter) = newest {
            self.counter.fetch_max(counter, Ordering::SeqCst);
            q.queued += 1;
            self.queue.wake.notify_all();
        }
    }

    /// Waits until everything queued so far is written (or the writer ended).
    pub async fn settled(&self) {
        let target = self.queue.lock().queued;
        let mut written = self.queue.written.subscribe();
        let _ = written.wait_for(|&w| w >= target).await;
    }

    /// Writes what is queued, then makes sled flush to disk. With the disk
    /// full, says how much could not be written instead of waiting for room.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let queue = self.queue.clone();
        let full = tokio::task::spawn_blocking(move || {
            let mut q = queue.lock();
            let target = q.queued;
            loop {
                if q.written >= target || q.unwritten() == 0 {
                    return None;
                }
                if let Some(why) = &q.no_room {
                    return Some(StoreError::NotStored {
                        records: q.unwritten(),
                        why: why.clone(),
                    });
                }
                q = queue.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        })
        .await
        .ok()
        .flatten();
        if let Some(e) = full {
            return Err(e);
        }
        common::storage::flush(&self.db).await?;
        Ok(())
    }

    /// What the status line says of the store: nothing while all is well.
    pub fn status(&self) -> Option<String> {
        let q = self.queue.lock();
        let why = q.no_room.as_ref()?;
        Some(format!(
            "store: disk full, {} records wait in memory ({why})",
            q.unwritten()
        ))
    }
}

impl Log {
    /// Reads where the log ends and how many records it holds (from each
    /// value's length prefix, without decoding the records).
    fn open(tree: sled::Tree, dir: PathBuf) -> Result<Log, StoreError> {
        let next = match tree.last()? {
            Some((key, _)) => sequence(&key) + 1,
            None => 0,
        };
        let mut records = 0;
        for kv in tree.iter() {
            let (key, value) = kv?;
            records += record_count(&key, &value)?;
        }
        Ok(Log {
            tree,
            dir,
            next,
            records,
        })
    }

    /// Appends `records` in batches, in one atomic sled batch.
    fn append(&mut self, records: &[ConnectionInfo]) -> Result<(), StoreError> {
        self.write(sled::Batch::default(), records)?;
        self.records += records.len();
        Ok(())
    }

    /// Adds `records` to `batch` as log values after the last one, and
    /// applies it if the disk has room for it.
    fn write(
        &mut self,
        mut batch: sled::Batch,
        records: &[ConnectionInfo],
    ) -> Result<(), StoreError> {
        let values = records
            .chunks(BATCH)
            .map(encode)
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = values.iter().map(|v| v.len() as u64).sum();
        match room_for(&self.dir, bytes) {
            Err(e @ RoomError::Full { .. }) => return Err(StoreError::NoRoom(e)),
            // Not knowing is no reason to stop writing.
            Err(e) => tracing::debug!(error = %e, "writing without knowing the free space"),
            Ok(()) => {}
        }
        let mut next = self.next;
        for value in values {
            batch.insert(&next.to_be_bytes(), value);
            next += 1;
        }
        self.tree.apply_batch(batch)?;
        self.next = next;
        Ok(())
    }

    /// Rewrites the log with the newest record of each number only, in one
    /// atomic sled batch (a crash leaves the old log or the new one).
    fn compact(&mut self) -> Result<(), StoreError> {
        let mut newest: HashMap<Number, ConnectionInfo> = HashMap::new();
        let mut old_keys = Vec::new();
        for kv in self.tree.iter() {
            let (key, value) = kv?;
            for r in decode(&key, &value)? {
                if r.supersedes(newest.get(&r.number)) {
                    newest.insert(r.number.clone(), r);
                }
            }
            old_keys.push(key);
        }
        let records: Vec<ConnectionInfo> = newest.into_values().collect();
        let mut batch = sled::Batch::default();
        for key in old_keys {
            batch.remove(key);
        }
        self.write(batch, &records)?;
        tracing::info!(
            before = self.records,
            after = records.len(),
            "directory log compacted"
        );
        self.records = records.len();
        Ok(())
    }

    fn needs_compaction(&self, live: usize) -> bool {
        self.records > live.saturating_mul(2).saturating_add(COMPACT_SLACK)
    }
}

/// Moves the records of the tree `devices` (one key per number, the layout
/// before the log) into the log, then drops that tree.
fn migrate_per_number_tree(db: &sled::Db, log: &mut Log) -> Result<(), StoreError> {
    const OLD_TREE: &[u8] = b"devices";
    if !db.tree_names().iter().any(|n| n == OLD_TREE) {
        return Ok(());
    }
    let old = db.open_tree(OLD_TREE)?;
    let records = old
        .iter()
        .map(|kv| {
            let (k, v) = kv?;
            postcard::from_bytes(&v).map_err(|source| StoreError::Corrupt {
                key: String::from_utf8_lossy(&k).into_owned(),
                source,
            })
        })
        .collect::<Result<Vec<ConnectionInfo>, _>>()?;
    log.append(&records)?;
    db.flush()?;
    db.drop_tree(OLD_TREE)?;
    if !records.is_empty() {
        tracing::info!(records = records.len(), "directory moved to the log layout");
    }
    Ok(())
}

/// The writer thread: takes every queued record and appends them, until
/// the store is dropped and nothing is left (or what is left has no room);
/// compacts the log when most of it is superseded. Then tells whoever
/// waits that nothing more will be written.
fn write_loop(log: Log, queue: &WriteQueue) {
    write_all(log, queue);
    queue.written.send_replace(u64::MAX);
    queue.wake.notify_all();
}

fn write_all(mut log: Log, queue: &WriteQueue) {
    loop {
        let (batch, upto) = {
            let mut q = queue.lock();
            while q.records.is_empty() && !q.stop {
                q = queue.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            if q.records.is_empty() {
                return;
            }
            q.taken = q.records.len();
            (std::mem::take(&mut q.records), q.queued)
        };
        let records: Vec<ConnectionInfo> = batch.into_values().collect();
        match log.append(&records) {
            Ok(()) => {}
            Err(StoreError::NoRoom(why)) => {
                if wait_for_room(queue, records, &why) {
                    continue;
                }
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, records = records.len(), "cannot store connection information")
            }
        }
        drop(records);
        if log.needs_compaction(queue.live.load(Ordering::Relaxed)) {
            match log.compact() {
                // Compacted after a later write, when there is room.
                Ok(()) | Err(StoreError::NoRoom(_)) => {}
                Err(e) => tracing::error!(error = %e, "cannot compact the directory log"),
            }
        }
        let mut q = queue.lock();
        q.taken = 0;
        if q.no_room.take().is_some() {
            tracing::info!(
                "room on the disk again: the connection information that waited is stored"
            );
        }
        q.written = q.written.max(upto);
        queue.written.send_replace(q.written);
        queue.wake.notify_all();
    }
}

/// Puts `records` back in the queue (behind any newer record of the same
/// number), says why they wait, and waits a while for room. False when the
/// store is closing: what waits is then not stored.
fn wait_for_room(queue: &WriteQueue, records: Vec<ConnectionInfo>, why: &RoomError) -> bool {
    let mut q = queue.lock();
    q.taken = 0;
    for r in records {
        q.records.entry(r.number.clone()).or_insert(r);
    }
    if q.no_room.is_none() {
        tracing::error!(records = q.unwritten(), error = %why, "the disk is full: connection information waits in memory until there is room");
    }
    q.no_room = Some(why.to_string());
    // `flush` waits for this when the relay stops.
    queue.wake.notify_all();
    // The whole pause: records arriving meanwhile wake the condvar, but
    // asking again for each would encode the whole queue each time.
    let until = Instant::now() + DISK_RECHECK;
    loop {
        if q.stop {
            tracing::error!(records = q.unwritten(), error = %why, "stopping with connection information not stored: the disk is full");
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        q = queue
            .wake
            .wait_timeout(q, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn encode(records: &[ConnectionInfo]) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(records).map_err(|source| StoreError::Corrupt {
        key: records
            .first()
            .map(|r| r.number.to_string())
            .unwrap_or_default(),
        source,
    })
}

fn decode(key: &[u8], bytes: &[u8]) -> Result<Vec<ConnectionInfo>, StoreError> {
    postcard::from_bytes(bytes).map_err(|source| StoreError::Corrupt {
        key: format!("log entry {}", sequence(key)),
        source,
    })
}

/// How many records a log value holds: postcard writes a sequence's length
/// first, as the same varint it writes a u64 as.
fn record_count(key: &[u8], bytes: &[u8]) -> Result<usize, StoreError> {
    let (n, _) = postcard::take_from_bytes::<u64>(bytes).map_err(|source| StoreError::Corrupt {
        key: format!("log entry {}", sequence(key)),
        source,
    })?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// A log key's sequence number (8 bytes, big-endian, so sled keeps them in order).
fn sequence(key: &[u8]) -> u64 {
    key.try_into().map(u64::from_be_bytes).unwrap_or(u64::MAX)
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

    /// What `load` reads, merged by version as the routing table does.
    fn loaded(store: &Store) -> HashMap<Number, ConnectionInfo> {
        let mut all: HashMap<Number, ConnectionInfo> = HashMap::new();
        store
            .load(|r| {
                if r.supersedes(all.get(&r.number)) {
                    all.insert(r.number.clone(), r);
                }
            })
            .unwrap();
        all
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
            store.save([a], 1);
            store.settled().await;
            store.save([b, record(&store, "1002", true)], 2);
            store.settled().await;
            assert!(!loaded(&store)[&"1001".parse().unwrap()].online);
            // Queued but not awaited: dropping the store still writes it.
            store.save([record(&store, "1003", true)], 3);
        }
        let store = Store::open(dir.path(), "r1").unwrap();
        let all = loaded(&store);
        assert!(!all[&"1001".parse().unwrap()].online);
        assert!(store.next_version().counter > last_version);
        assert_eq!(all.len(), 3);
    }

    #[tokio::test]
    async fn a_log_mostly_superseded_is_compacted_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let renewals = COMPACT_SLACK + 10;
        {
            let store = Store::open(dir.path(), "r1").unwrap();
            for round in 0..renewals {
                let online = round.is_multiple_of(2);
                store.save(
                    [record(&store, "1001", online), record(&store, "1002", true)],
                    2,
                );
                if round % 1000 == 0 {
                    store.settled().await;
                }
            }
            store.settled().await;
        }
        let path = dir.path().join("directory.sled");
        let tree = sled::open(&path).unwrap().open_tree("log").unwrap();
        let log = Log::open(tree, path).unwrap();
        assert!(
            log.records < COMPACT_SLACK,
            "{} records in the log",
            log.records
        );
        drop(log);
        let store = Store::open(dir.path(), "r1").unwrap();
        let all = loaded(&store);
        assert_eq!(all.len(), 2);
        let last_online = (renewals - 1).is_multiple_of(2);
        assert_eq!(all[&"1001".parse().unwrap()].online, last_online);
    }

    #[test]
    fn a_per_number_tree_from_before_the_log_is_moved_into_it() {
        let dir = tempfile::tempdir().unwrap();
        let old = ConnectionInfo {
            number: "1001".parse().unwrap(),
            home_relay: "r1".into(),
            gateway: None,
            capabilities: None,
            login_time: 1,
            version: Version {
                counter: 41,
                origin: "r1".into(),
            },
            online: true,
        };
        {
            let db = sled::open(dir.path().join("directory.sled")).unwrap();
            let devices = db.open_tree("devices").unwrap();
            devices
                .insert("1001", postcard::to_allocvec(&old).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path(), "r1").unwrap();
        assert_eq!(loaded(&store).into_values().collect::<Vec<_>>(), vec![old]);
        assert_eq!(store.next_version().counter, 42);
        assert!(!store.db().tree_names().iter().any(|n| n == b"devices"));
    }

    #[test]
    fn the_instance_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path(), "r1").unwrap().instance().unwrap();
        let again = Store::open(dir.path(), "r1").unwrap().instance().unwrap();
        assert_eq!(first, again, "a restart is the same relay");
        let other = tempfile::tempdir().unwrap();
        let second = Store::open(other.path(), "r1").unwrap().instance().unwrap();
        assert_ne!(first, second, "another data directory is another relay");
    }
}

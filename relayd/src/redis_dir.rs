//! Directory database mode: the fleet's connection information in a Redis
//! server every relay reaches, instead of shared relay to relay. This is
//! the Redis client and its cache; the tasks that drive it (lease writer,
//! renewals follower, routing a call) are in `directory`.
//!
//! Protocol flow:
//! - Each renewal of one of this relay's devices (login, logout, lost link)
//!   is written as `PREFIX:dev:NUMBER` (the record as JSON, with the address
//!   other relays dial this one at) by a Lua script that keeps the newer
//!   version, sets a lease (PX) and PUBLISHes the record on
//!   `PREFIX:renewals`. `PREFIX:relay:NAME` holds the relay's address under
//!   the same lease.
//! - Every third of the lease, every local record and the relay key are
//!   written again (a record that did not change only has its lease
//!   extended): a crashed relay's records expire on their own, and a Redis
//!   server that lost its data gets them back.
//! - Every relay subscribes to `PREFIX:renewals` and keeps a bounded cache
//!   (`dir_cache`) of the records it hears; (re)subscribing is followed by
//!   a SCAN of `PREFIX:dev:*`, so nothing published while unsubscribed is
//!   missed. A call looks in the cache first and on a miss GETs the key.
//! - A call for a device homed elsewhere goes straight to its home relay,
//!   over a peer link (accepted or dialed on demand, authenticated with the
//!   mesh key). A dial that fails makes the relay GET the record again: gone
//!   means the home relay's lease ran out, and the cache forgets it.
//!
//! - Revocations (`relayd revoke`) go to the hash `PREFIX:revoked` (number →
//!   minimum secret generation, only ever raised, by a Lua script); every
//!   relay reads the whole hash on each full write (a third of the lease),
//!   so a revocation reaches every relay within that time.
//!
//! - The Redis may be one server, a Redis Cluster or a master watched by
//!   Sentinel (`redis_backend` hides which). Each script touches only its
//!   `KEYS[1]` (the channel is not a key: a cluster PUBLISH reaches every
//!   node), so every write goes to the one master of the key's slot.
//!   When a failover moves data to another server (a promoted replica may
//!   miss the last writes), every local record is written again at once.
//!
//! If Redis is unreachable, calls to cached records keep working, renewals
//! wait (the sled store holds them) and are all written once Redis answers
//! again; the log and the status line say what is wrong meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::directory::ConnectionInfo;
use common::link::message::Revocation;
use common::link::mux::Opener;
use common::number::Number;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::RedisSettings;
pub use crate::dir_cache::DirectoryRecord;
use crate::dir_cache::{DirCache, Offer, Source};
use crate::mesh::Mesh;
use crate::redis_backend::{Conn, Endpoint, RedisBackend};
pub(crate) use crate::redis_backend::{FIRST_BACKOFF, MAX_BACKOFF, REDIS_TIMEOUT, lock};

/// Runs the home rule on a record that took a local number to another
/// relay (the directory client knows no more of the relay than its mesh).
pub type HandOver<'a> = &'a (dyn Fn(&ConnectionInfo) + Sync);

/// Raises `ARGV[1]`'s minimum generation in the hash `KEYS[1]` to
/// `ARGV[2]`, never lowering it.
const RAISE_REVOCATION: &str = r"
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
";

/// Records written concurrently during a full write (one pipelined batch).
const WRITE_BATCH: usize = 256;
/// Keys per SCAN step (their values are then read concurrently).
const SCAN_COUNT: usize = 1000;

/// Writes `ARGV[1]` (a record) under `KEYS[1]` unless the stored record has
/// a newer version; the same version only has its lease extended (a
/// refresh), a newer one is stored and published. Versions compare as
/// `common::directory::Version` does: counter, then origin. Returns 0
/// (stale, ignored), 1 (lease extended) or 2 (stored and published).
const WRITE_RECORD: &str = r"
local cur = redis.call('GET', KEYS[1])
local counter = tonumber(ARGV[2])
if cur then
  local ok, old = pcall(cjson.decode, cur)
  if ok and type(old) == 'table' and type(old.version) == 'table' then
    local c = tonumber(old.version.counter) or 0
    local o = tostring(old.version.origin)
    if c > counter or (c == counter and o > ARGV[3]) then
      return 0
    end
    if c == counter and o == ARGV[3] then
      redis.call('PEXPIRE', KEYS[1], ARGV[4])
      return 1
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[1])
return 2
";

/// Whether Redis answers, as the log and the status line tell it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Health {
    Connecting,
    Up,
    Down(String),
}

/// The relay's handle on the Redis directory.
pub struct RedisDirectory {
    pub(crate) me: String,
    prefix: String,
    pub(crate) channel: String,
    pub(crate) lease: Duration,
    /// The address written beside every record (set once listening).
    advertise: String,
    /// One server, a cluster or Sentinel's master: where commands go.
    pub(crate) backend: RedisBackend,
    script: redis::Script,
    /// Records homed elsewhere, as last heard, at most `--directory-cache`
    /// of them. A std Mutex: nothing awaits while it is held.
    cache: Mutex<DirCache>,
    /// Local numbers renewed since the last write.
    pub(crate) dirty: Mutex<HashSet<Number>>,
    pub(crate) wake: Notify,
    /// Tells the renewals follower to subscribe again (after a failover).
    pub(crate) resubscribe: Notify,
    health: Mutex<Health>,
    /// Links dialed on demand, by relay name, and one lock per relay name
    /// so concurrent calls to a relay dial it once.
    dialed: Mutex<HashMap<String, Opener>>,
    dialing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Revocations made here, not yet written to Redis.
    revocations: Mutex<Vec<Revocation>>,
    /// Stops the lease writer, after the links have closed (so the
    /// relay's last renewals, its devices going offline, are written).
    pub stop: CancellationToken,
}

impl std::fmt::Debug for RedisDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDirectory")
            .field("backend", &self.backend)
            .field("prefix", &self.prefix)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("unreadable record for {number} in redis: {source}")]
    Unreadable {
        number: Number,
        source: serde_json::Error,
    },
    #[error("connect timed out")]
    Timeout,
    #[error("connection closed")]
    Closed,
    #[error("the redis masters changed")]
    Failover,
    #[error("cannot encode the record of {number}: {source}")]
    Encode {
        number: Number,
        source: serde_json::Error,
    },
}

impl RedisDirectory {
    /// Connects lazily: the relay starts even while Redis is away.
    pub fn new(me: &str, s: &RedisSettings, advertise: String) -> anyhow::Result<RedisDirectory> {
        let endpoint = Endpoint::parse(&s.url).map_err(anyhow::Error::msg)?;
        let backend = RedisBackend::new(&endpoint, s.ca_file.as_deref())?;
        Ok(RedisDirectory {
            me: me.to_owned(),
            prefix: s.prefix.clone(),
            channel: format!("{}:renewals", s.prefix),
            lease: Duration::from_secs(s.lease_secs),
            advertise,
            backend,
            script: redis::Script::new(WRITE_RECORD),
            cache: Mutex::new(DirCache::new(s.cache_entries)),
            dirty: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            resubscribe: Notify::new(),
            health: Mutex::new(Health::Connecting),
            dialed: Mutex::new(HashMap::new()),
            dialing: Mutex::new(HashMap::new()),
            revocations: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
        })
    }

    fn dev_key(&self, number: &Number) -> String {
        format!("{}:dev:{number}", self.prefix)
    }

    fn relay_key(&self) -> String {
        format!("{}:relay:{}", self.prefix, self.me)
    }

    /// `directory: redis ok` and the like, for the status line.
    pub fn status(&self) -> String {
        match &*lock(&self.health) {
            Health::Connecting => "directory: redis connecting".to_owned(),
            Health::Up => "directory: redis ok".to_owned(),
            Health::Down(e) => format!("directory: redis unreachable ({e}); retrying"),
        }
    }

    pub(crate) fn set_health(&self, new: Health) {
        let mut h = lock(&self.health);
        if *h == new || matches!((&*h, &new), (Health::Down(_), Health::Down(_))) {
            return;
        }
        match &new {
            Health::Up => {
                tracing::info!(redis = %self.backend.describe(), "directory: redis reachable; this relay's devices are written")
            }
            Health::Down(e) => tracing::warn!(
                redis = %self.backend.describe(), error = %e,
                "directory: redis unreachable; calls to cached numbers go on, renewals are kept and retried"
            ),
            Health::Connecting => {}
        }
        *h = new;
    }

    /// A local device's record changed: write it soon.
    pub fn renewed(&self, number: &Number) {
        lock(&self.dirty).insert(number.clone());
        self.wake.notify_one();
    }

    /// Revocations raised here: write them soon.
    pub fn revoked(&self, revs: &[Revocation]) {
        lock(&self.revocations).extend_from_slice(revs);
        self.wake.notify_one();
    }

    /// Writes pending revocations (keeping the higher minimum), and with
    /// `read_all` reads every revocation in Redis, for the caller to apply.
    pub async fn sync_revocations(
        &self,
        read_all: bool,
    ) -> Result<Vec<Revocation>, DirectoryError> {
        let key = format!("{}:revoked", self.prefix);
        let pending: Vec<Revocation> = std::mem::take(&mut *lock(&self.revocations));
        let mut conn = self.backend.conn().await?;
        for (i, r) in pending.iter().enumerate() {
            let written = redis::Script::new(RAISE_REVOCATION)
                .key(&key)
                .arg(r.number.as_str())
                .arg(r.min_generation)
                .invoke_async::<i64>(&mut conn)
                .await;
            if let Err(e) = written {
                // Kept for the next try.
                lock(&self.revocations).extend_from_slice(&pending[i..]);
                return Err(e.into());
            }
        }
        if read_all {
            let all: HashMap<String, u32> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await?;
            let revs = all
                .into_iter()
                .filter_map(|(n, g)| {
                    Some(Revocation {
                        number: n.parse().ok()?,
                        min_generation: g,
                    })
                })
                .collect();
            return Ok(revs);
        }
        Ok(Vec::new())
    }

    /// Every cached record (for `relayd directory`).
    pub fn cached(&self) -> Vec<DirectoryRecord> {
        lock(&self.cache).records()
    }

    /// How many records the cache holds (for /metrics).
    pub fn cached_count(&self) -> usize {
        lock(&self.cache).len()
    }

    /// Merges a record from Redis into the cache (newer versions win; see
    /// `dir_cache` for which records it keeps), and hands a local number
    /// over to its new home relay (`hand_over` runs the home rule on the
    /// stored record).
    pub(crate) fn learn(
        &self,
        mesh: &Mesh,
        hand_over: HandOver<'_>,
        record: &DirectoryRecord,
        source: Source,
    ) {
        mesh.store().witness(&record.info.version);
        if record.info.home_relay == self.me {
            // Our own renewal coming back; the local table is the authority.
            return;
        }
        if lock(&self.cache).offer(record, source) == Offer::Stale {
            return;
        }
        if let Some(mine) = mesh.record(&record.info.number)
            && mine.home_relay == self.me
            && mesh.learn(&record.info)
        {
            // The device logged in at another relay since: it lives there now.
            hand_over(&record.info);
        }
    }

    fn forget(&self, number: &Number) {
        lock(&self.cache).forget(number);
    }

    /// The record for `number`: the cache, else Redis.
    pub async fn lookup(
        &self,
        mesh: &Mesh,
        hand_over: HandOver<'_>,
        number: &Number,
    ) -> Result<Option<DirectoryRecord>, DirectoryError> {
        if let Some(r) = lock(&self.cache).get(number) {
            return Ok(Some(r));
        }
        self.fetch(mesh, hand_over, number).await
    }

    /// GETs the record for `number` from Redis; forgets it when gone.
    pub async fn fetch(
        &self,
        mesh: &Mesh,
        hand_over: HandOver<'_>,
        number: &Number,
    ) -> Result<Option<DirectoryRecord>, DirectoryError> {
        let mut conn = self.backend.conn().await?;
        let value: Option<String> = redis::cmd("GET")
            .arg(self.dev_key(number))
            .query_async(&mut conn)
            .await?;
        let Some(json) = value else {
            self.forget(number);
            return Ok(None);
        };
        let record: DirectoryRecord =
            serde_json::from_str(&json).map_err(|source| DirectoryError::Unreadable {
                number: number.clone(),
                source,
            })?;
        self.learn(mesh, hand_over, &record, Source::Call);
        Ok(Some(record))
    }

    /// Writes the records of `numbers` that are homed here.
    pub async fn write(
        &self,
        mesh: &Mesh,
        numbers: impl IntoIterator<Item = Number>,
    ) -> Result<(), DirectoryError> {
        let records: Vec<ConnectionInfo> = numbers
            .into_iter()
            .filter_map(|n| mesh.record(&n))
            .filter(|r| r.home_relay == self.me)
            .collect();
        self.write_records(records).await
    }

    /// Writes every record homed here and the relay key.
    pub async fn write_all(&self, mesh: &Mesh) -> Result<(), DirectoryError> {
        lock(&self.dirty).clear();
        let lease_ms = self.lease.as_millis() as u64;
        let mut conn = self.backend.conn().await?;
        redis::cmd("SET")
            .arg(self.relay_key())
            .arg(&self.advertise)
            .arg("PX")
            .arg(lease_ms)
            .query_async::<()>(&mut conn)
            .await?;
        let records: Vec<ConnectionInfo> = mesh
            .records()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| r.home_relay == self.me)
            .collect();
        self.write_records(records).await
    }

    async fn write_records(&self, records: Vec<ConnectionInfo>) -> Result<(), DirectoryError> {
        let lease_ms = self.lease.as_millis() as u64;
        if records.is_empty() {
            return Ok(());
        }
        let conn = self.backend.conn().await?;
        for batch in records.chunks(WRITE_BATCH) {
            // One multiplexed connection (per node) pipelines these
            // concurrent calls.
            let writes = batch.iter().map(|info| {
                let mut conn = conn.clone();
                let record = DirectoryRecord {
                    info: info.clone(),
                    relay_addr: self.advertise.clone(),
                };
                let key = self.dev_key(&info.number);
                async move {
                    let json = serde_json::to_string(&record).map_err(|source| {
                        DirectoryError::Encode {
                            number: info.number.clone(),
                            source,
                        }
                    })?;
                    self.script
                        .key(key)
                        .arg(json)
                        .arg(record.info.version.counter)
                        .arg(&record.info.version.origin)
                        .arg(lease_ms)
                        .arg(&self.channel)
                        .invoke_async::<i64>(&mut conn)
                        .await
                        .map_err(DirectoryError::from)
                }
            });
            futures::future::try_join_all(writes).await?;
        }
        Ok(())
    }

    /// Reads every record in Redis (into the cache while it has room, and
    /// through the home rule): SCANs every master (a cluster spreads the
    /// keys over them), then GETs the keys found.
    pub async fn resync(
        &self,
        mesh: &Mesh,
        hand_over: HandOver<'_>,
    ) -> Result<usize, DirectoryError> {
        let mut seen = 0;
        for master in self.backend.masters().await? {
            seen += self.resync_master(mesh, hand_over, master).await?;
        }
        Ok(seen)
    }

    async fn resync_master(
        &self,
        mesh: &Mesh,
        hand_over: HandOver<'_>,
        mut master: Conn,
    ) -> Result<usize, DirectoryError> {
        let pattern = format!("{}:dev:*", self.prefix);
        let mut cursor: u64 = 0;
        let mut seen = 0;
        // Where the GETs go: on a cluster, to each key's slot.
        let conn = self.backend.conn().await?;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut master)
                .await?;
            if !keys.is_empty() {
                // One GET per key, not MGET: a cluster refuses MGET across
                // slots. Concurrent calls on a multiplexed connection are
                // pipelined, so this costs about one round trip.
                let gets = keys.iter().map(|key| {
                    let mut conn = conn.clone();
                    async move {
                        redis::cmd("GET")
                            .arg(key)
                            .query_async::<Option<String>>(&mut conn)
                            .await
                    }
                });
                let values = futures::future::try_join_all(gets).await?;
                for json in values.into_iter().flatten() {
                    match serde_json::from_str::<DirectoryRecord>(&json) {
                        Ok(r) => {
                            seen += 1;
                            self.learn(mesh, hand_over, &r, Source::Heard);
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable record in redis; ignored"),
                    }
                }
            }
            if next == 0 {
                return Ok(seen);
            }
            cursor = next;
        }
    }

    /// A link to relay `name`: one that is up (either side dialed), else a
    /// new one from `dial`. Concurrent calls to one relay dial once.
    pub async fn link_to<E>(
        &self,
        mesh: &Mesh,
        name: &str,
        dial: impl AsyncFnOnce() -> Result<Opener, E>,
    ) -> Result<Opener, E> {
        if let Some(o) = self.up_link(mesh, name) {
            return Ok(o);
        }
        let gate = lock(&self.dialing)
            .entry(name.to_owned())
            .or_default()
            .clone();
        let _dialing = gate.lock().await;
        if let Some(o) = self.up_link(mesh, name) {
            return Ok(o);
        }
        let opener = dial().await?;
        lock(&self.dialed).insert(name.to_owned(), opener.clone());
        Ok(opener)
    }

    fn up_link(&self, mesh: &Mesh, name: &str) -> Option<Opener> {
        if let Some(o) = mesh.peer_opener(name) {
            return Some(o);
        }
        let mut dialed = lock(&self.dialed);
        match dialed.get(name) {
            Some(o) if !o.is_closed() => Some(o.clone()),
            Some(_) => {
                dialed.remove(name);
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::directory::Version;

    #[test]
    fn every_script_touches_only_its_one_key_so_a_cluster_runs_it_on_one_master() {
        for script in [WRITE_RECORD, RAISE_REVOCATION] {
            for call in script.split("redis.call(").skip(1) {
                let args = call.split(')').next().unwrap_or_default();
                let mut args = args.split(',').map(str::trim);
                let command = args.next().unwrap_or_default();
                let target = args.next().unwrap_or_default();
                // PUBLISH names a channel, not a key; a cluster carries it
                // to every node.
                if command != "'PUBLISH'" {
                    assert_eq!(target, "KEYS[1]", "{command} in {script}");
                }
            }
        }
    }

    #[test]
    fn records_read_plainly_in_redis_cli() {
        let record = DirectoryRecord {
            info: ConnectionInfo {
                number: "1002".parse().unwrap(),
                home_relay: "relay-b".into(),
                gateway: Some("gw2".into()),
                capabilities: None,
                login_time: 7,
                version: Version {
                    counter: 3,
                    origin: "relay-b".into(),
                },
                online: true,
            },
            relay_addr: "10.0.0.2:4710".into(),
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["number"], "1002");
        assert_eq!(json["home_relay"], "relay-b");
        assert_eq!(json["relay_addr"], "10.0.0.2:4710");
        assert_eq!(json["version"]["counter"], 3);
        let back: DirectoryRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }
}

//! The relay's share of the fleet's directory: the routing table (records
//! plus paths learned from peers), its persistence in sled, and telling every
//! peer about each renewal.
//!
//! The table sits behind a std Mutex (nothing awaits while it is held);
//! messages to peers go through each peer link's bounded outbox. A peer whose
//! outbox overflows is disconnected (the link actor's one overflow policy):
//! it resyncs from a fresh snapshot when it comes back, which is simpler and
//! safer than an unbounded queue.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use common::directory::ConnectionInfo;
use common::link::actor::LinkHandle;
use common::link::frame::{self, FrameError};
use common::link::message::Control;
use common::link::mux::Opener;
use common::number::Number;
use common::routing::{Announcement, Change, NextHop, RoutingTable, Update};

use crate::relay_core::LinkId;
use crate::relay_core::peering::{self, Admission, Instance, NameClash, PeerLinkView, Rejection};
use crate::relay_core::route::Found;
use crate::store::{Store, StoreError};

/// Announcements per snapshot frame: well under the frame size cap.
pub const SNAPSHOT_CHUNK: usize = 2000;

/// A live link to a peer relay.
#[derive(Clone, Debug)]
pub struct PeerHandle {
    pub name: String,
    /// The peer's instance id (tells two relays of one name apart).
    pub instance: Instance,
    pub link: LinkId,
    pub addr: String,
    /// Name of the relay that dialed this link (for the duplicate rule).
    pub dialer: String,
    /// The link's outbox and call-stream opener.
    pub handle: LinkHandle,
    pub since: Instant,
    /// Milliseconds after `since` when the peer was last heard from.
    pub heard_ms: Arc<AtomicU64>,
}

impl PeerHandle {
    /// The link as the peering rules see it.
    fn view(&self) -> PeerLinkView<'_> {
        PeerLinkView {
            name: &self.name,
            instance: self.instance,
            dialer: &self.dialer,
            addr: &self.addr,
        }
    }

    /// Records that the peer spoke just now.
    pub fn heard(&self) {
        self.heard_ms
            .store(self.since.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub fn last_heard_secs(&self) -> u64 {
        let heard =
            self.since + std::time::Duration::from_millis(self.heard_ms.load(Ordering::Relaxed));
        heard.elapsed().as_secs()
    }
}

/// Lock order: `peers` before `table` (registering a peer updates who the
/// table builds changes for); nothing takes `peers` while holding `table`.
#[derive(Debug)]
pub struct Mesh {
    /// This relay's name and instance id.
    me: String,
    instance: Instance,
    store: Store,
    table: Mutex<RoutingTable>,
    peers: Mutex<BTreeMap<String, PeerHandle>>,
    /// Whether renewals go to peers (mesh mode). In directory mode the peer
    /// links carry calls only: records travel through Redis instead.
    share_with_peers: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mesh {
    /// Loads the persisted records into a fresh table, and the relay's
    /// instance id (made on first use of the data directory).
    /// `share_with_peers` is false in directory mode (see the field).
    pub fn load(me: &str, store: Store, share_with_peers: bool) -> Result<Mesh, StoreError> {
        let mut table = RoutingTable::new(me);
        // No peer yet: no change needs building (see `set_audience`).
        table.set_audience(Some(Vec::new()));
        store.load(|r| table.load([r]))?;
        Ok(Mesh {
            me: me.to_owned(),
            instance: store.instance()?,
            store,
            table: Mutex::new(table),
            peers: Mutex::new(BTreeMap::new()),
            share_with_peers,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn record(&self, number: &Number) -> Option<ConnectionInfo> {
        lock(&self.table).record(number)
    }

    pub fn records(&self) -> Vec<(ConnectionInfo, Option<NextHop>)> {
        let t = lock(&self.table);
        t.records()
            .map(|r| {
                let hop = t.best(&r.number);
                (r, hop)
            })
            .collect()
    }

    pub fn known(&self) -> usize {
        lock(&self.table).len()
    }

    /// A renewal of one of this relay's devices: persist, then tell the peers.
    pub fn renew_local(&self, record: ConnectionInfo) {
        let change = {
            let mut table = lock(&self.table);
            if table.is_newer(&record) {
                self.store.save([record.clone()], table.len() + 1);
            }
            table.renew_local(record)
        };
        self.propagate(change.into_iter().collect());
    }

    /// Whether peer links exchange snapshots and renewals (mesh mode).
    pub fn shares_with_peers(&self) -> bool {
        self.share_with_peers
    }

    /// Directory mode: a newer record from the directory about a number this
    /// table holds (a device of ours that logged in at another relay).
    /// Persisted and merged by version; nothing goes to peers. Returns
    /// whether it was newer.
    pub fn learn(&self, record: &ConnectionInfo) -> bool {
        let mut table = lock(&self.table);
        if !table.is_newer(record) {
            return false;
        }
        table.load([record.clone()]);
        self.store.save([record.clone()], table.len());
        true
    }

    /// Applies announcements from `peer`; returns the records that became
    /// newer here (the caller checks them against local logins).
    pub fn apply_announcements(&self, peer: &str, anns: Vec<Announcement>) -> Vec<ConnectionInfo> {
        let mut stored = Vec::new();
        let mut changes = Vec::new();
        {
            let mut table = lock(&self.table);
            for ann in anns {
                let applied = table.announce(peer, ann);
                stored.extend(applied.stored);
                changes.extend(applied.change);
            }
            // Queued under the lock, so the writes follow the table's order.
            self.store.save(stored.iter().cloned(), table.len());
        }
        self.propagate(changes);
        stored
    }

    pub fn apply_withdrawals(&self, peer: &str, numbers: &[Number]) {
        let changes: Vec<Change> = {
            let mut table = lock(&self.table);
            numbers
                .iter()
                .filter_map(|n| table.withdraw(peer, n))
                .collect()
        };
        self.propagate(changes);
    }

    /// What a new peer receives first, encoded: `Snapshot` frames of
    /// `SNAPSHOT_CHUNK` announcements, then an empty one marked done; and
    /// how many announcements they hold. Taken whole under the table's lock
    /// (renewals queued for the peer from then on follow it), but only one
    /// chunk is ever decoded at a time: a million announcements as structs
    /// took ~550 bytes each, encoded they take ~70.
    pub fn snapshot_frames(&self) -> Result<(Vec<Vec<u8>>, usize), FrameError> {
        let table = lock(&self.table);
        let mut all = table.announcements();
        let mut frames = Vec::new();
        let mut sent = 0;
        loop {
            let chunk: Vec<Announcement> = all.by_ref().take(SNAPSHOT_CHUNK).collect();
            let done = chunk.is_empty();
            sent += chunk.len();
            frames.push(frame::encode_msg(&Control::Snapshot {
                announcements: chunk,
                done,
            })?);
            if done {
                return Ok((frames, sent));
            }
        }
    }

    /// This relay's instance id, which its peers hear in the handshake.
    pub fn instance(&self) -> Instance {
        self.instance
    }

    /// Whether relay `name` of instance `instance` may link with us now
    /// (`peering::check_name`): asked during the handshake, so that a
    /// refusal reaches the far end; [`Mesh::register_peer`] asks again.
    pub fn check_name(&self, name: &str, instance: Instance) -> Result<(), NameClash> {
        let peers = lock(&self.peers);
        let live = peers.get(name).filter(|p| !p.handle.is_closed());
        peering::check_name(
            &self.me,
            name,
            instance,
            live.map(PeerHandle::view).as_ref(),
        )
    }

    /// Registers a peer link by `peering::admit`: the name rule (a second
    /// relay of a linked name is refused), then the duplicate rule (of two
    /// links to one relay, both sides keep the one dialed by the smaller
    /// name). Returns the link that lost (to close), if any.
    pub fn register_peer(&self, handle: PeerHandle) -> Result<Option<PeerHandle>, Rejection> {
        let mut peers = lock(&self.peers);
        let live = peers.get(&handle.name).filter(|p| !p.handle.is_closed());
        match peering::admit(
            &self.me,
            &handle.view(),
            live.map(PeerHandle::view).as_ref(),
        )? {
            Admission::First => {
                peers.insert(handle.name.clone(), handle);
                self.tell(&peers);
                Ok(None)
            }
            Admission::Replaces => Ok(peers.insert(handle.name.clone(), handle)),
        }
    }

    /// Has the table build changes for `peers` (under their lock, so that
    /// two registrations cannot leave an older list behind). A change made
    /// before a new peer was told is in the snapshot that peer gets next.
    fn tell(&self, peers: &BTreeMap<String, PeerHandle>) {
        let audience = self
            .share_with_peers
            .then(|| peers.keys().cloned().collect());
        lock(&self.table).set_audience(Some(audience.unwrap_or_default()));
    }

    /// A peer link ended: withdraw what was learned through it.
    pub fn peer_down(&self, name: &str, link: LinkId) {
        {
            let mut peers = lock(&self.peers);
            if peers.get(name).is_none_or(|p| p.link != link) {
                // A newer link to the same peer replaced this one.
                return;
            }
            peers.remove(name);
            self.tell(&peers);
        }
        let changes = lock(&self.table).peer_down(name);
        tracing::info!(peer = %name, changes_for_peers = changes.len(), "routes through peer withdrawn");
        self.propagate(changes);
    }

    pub fn peers(&self) -> Vec<PeerHandle> {
        lock(&self.peers).values().cloned().collect()
    }

    pub fn routes_via(&self, peer: &str) -> usize {
        lock(&self.table).routes_via(peer)
    }

    /// The link to peer `name`, if one is up.
    pub fn peer_opener(&self, name: &str) -> Option<Opener> {
        lock(&self.peers)
            .get(name)
            .filter(|p| !p.handle.is_closed())
            .map(|p| p.handle.opener().clone())
    }

    pub fn is_peer_up(&self, name: &str) -> bool {
        lock(&self.peers)
            .get(name)
            .is_some_and(|p| !p.handle.is_closed())
    }

    /// What the table knows about `number` for routing: its record, and
    /// the peer a call goes through (the best path's first hop, if that
    /// peer's link is up).
    pub fn found(&self, number: &Number) -> Found {
        let (record, hop) = {
            let t = lock(&self.table);
            match t.record(number) {
                None => return Found::Unknown,
                Some(r) => (r.clone(), t.best(number)),
            }
        };
        let next_hop = match hop {
            Some(NextHop::Peer { name, .. }) if lock(&self.peers).contains_key(&name) => Some(name),
            _ => None,
        };
        Found::Record { record, next_hop }
    }

    /// Sends changes to every peer, batched into one message of each kind,
    /// each peer told what `Change::for_peer` says (split horizon).
    fn propagate(&self, changes: Vec<Change>) {
        if changes.is_empty() || !self.share_with_peers {
            return;
        }
        for peer in self.peers() {
            let mut announce = Vec::new();
            let mut withdraw = Vec::new();
            for c in &changes {
                match c.for_peer(&peer.name) {
                    Some(Update::Announce(a)) => announce.push(a.clone()),
                    Some(Update::Withdraw(n)) => withdraw.push(n.clone()),
                    None => {}
                }
            }
            let msgs = chunked(announce, SNAPSHOT_CHUNK)
                .map(Control::Announce)
                .chain(chunked(withdraw, SNAPSHOT_CHUNK * 4).map(Control::Withdraw));
            for msg in msgs {
                // A full outbox closes the link: the peer resyncs from a
                // fresh snapshot when it comes back.
                if peer.handle.notify(msg).is_err() {
                    break;
                }
            }
        }
    }
}

/// `items` in vectors of at most `size`, moved rather than copied.
fn chunked<T>(items: Vec<T>, size: usize) -> impl Iterator<Item = Vec<T>> {
    let mut items = items.into_iter().peekable();
    std::iter::from_fn(move || {
        items.peek()?;
        Some(items.by_ref().take(size).collect())
    })
}

/// What `relayd peers` shows for a configured peer address.
#[derive(Clone, Debug)]
pub enum PeerState {
    Connecting,
    Up(String),
    Down(String),
}

/// Status of the configured peer addresses.
#[derive(Debug, Default)]
pub struct PeerStatus {
    inner: std::sync::Mutex<std::collections::BTreeMap<String, (PeerState, Instant)>>,
}

impl PeerStatus {
    pub fn set(&self, addr: &str, state: PeerState) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(addr.to_owned(), (state, Instant::now()));
    }

    /// Forgets an address a reload removed.
    pub fn remove(&self, addr: &str) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(addr);
    }

    pub fn all(&self) -> Vec<(String, PeerState, Instant)> {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .map(|(a, (s, t))| (a.clone(), s.clone(), *t))
            .collect()
    }
}

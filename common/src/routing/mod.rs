//! The mesh routing table: for every number, the newest connection
//! information, the paths peer relays announced towards its home relay, and
//! the best next hop. Pure state, no I/O and no clock, so the merge and
//! routing rules are tested exhaustively here; relayd drives it.
//!
//! Rules:
//! - Records merge by version (`ConnectionInfo::supersedes`): duplicates and
//!   stale records change nothing, whatever order they arrive in.
//! - An announcement carries the path of relays it travelled, the announcer
//!   first and the home relay last. A path holding this relay's own name is
//!   a loop and never used (it withdraws that peer's route instead).
//! - Only paths that end at the record's home relay count; the best is the
//!   shortest, ties broken by the smaller peer name.
//! - Whenever what this relay would announce for a number changes, the
//!   change is returned so the caller tells every peer.

mod intern;
mod key;

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use serde::{Deserialize, Serialize};

use self::intern::{Id, Interner, NONE};
use self::key::NumberKey;
use crate::codec::Capabilities;
use crate::directory::{ConnectionInfo, Version};
use crate::number::Number;

/// What a relay tells its peers about one number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub record: ConnectionInfo,
    /// Relays from the announcer (first) to the number's home relay (last).
    pub path: Vec<String>,
}

/// Where a call for a number goes from here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// The number is homed at this relay.
    Local,
    /// Through the named peer, along `path` (peer first, home relay last).
    Peer { name: String, path: Vec<String> },
}

/// A change in what this relay announces, to send to every peer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "changes live in one short vector; boxing would cost an allocation each"
)]
pub enum Change {
    /// What this relay announces now, and what it announced before.
    Announce(Announcement, Before),
    /// This relay no longer has a path to the number.
    Withdraw(Number),
}

/// What this relay announced for a number before a change: which peers
/// may hold a route to it through this relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Before {
    /// Nothing: no peer holds a route through this relay.
    Unannounced,
    /// The number was homed here: every peer may hold a route through us.
    Local,
    /// A path through this peer first, which was told a withdrawal
    /// instead (split horizon); every other peer may hold a route.
    Via(Arc<str>),
}

/// What one peer is told of a [`Change`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update<'a> {
    Announce(&'a Announcement),
    Withdraw(&'a Number),
}

impl Change {
    /// What `peer` is told of this change. Split horizon: an announcement
    /// whose path runs through `peer` goes to it as a withdrawal instead
    /// (it would see its own name in the path and drop its route through
    /// us, which is all a withdrawal does, at a tenth of the bytes); and
    /// not even that when `peer` can hold no route through us. A new peer
    /// learning a snapshot would otherwise hear every number it taught us
    /// withdrawn again, one by one.
    pub fn for_peer(&self, peer: &str) -> Option<Update<'_>> {
        match self {
            Change::Withdraw(number) => Some(Update::Withdraw(number)),
            Change::Announce(a, before) => {
                match heard(a.path.get(1).map(String::as_str), before, peer)? {
                    Heard::Announcement => Some(Update::Announce(a)),
                    Heard::Withdrawal => Some(Update::Withdraw(&a.record.number)),
                }
            }
        }
    }
}

enum Heard {
    Announcement,
    Withdrawal,
}

/// The split-horizon rule of [`Change::for_peer`] for an announcement
/// whose path runs through `first` after this relay (`None`: homed here).
fn heard(first: Option<&str>, before: &Before, peer: &str) -> Option<Heard> {
    if first != Some(peer) {
        return Some(Heard::Announcement);
    }
    let holds_route = match before {
        Before::Unannounced => false,
        Before::Local => true,
        Before::Via(was) => &**was != peer,
    };
    holds_route.then_some(Heard::Withdrawal)
}

/// The outcome of applying a peer's announcement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The record, when it was newer than ours (to persist).
    pub stored: Option<ConnectionInfo>,
    pub change: Option<Change>,
}

/// One number's entry: its record and the paths peers announced, every
/// name and path interned (see `intern`): 40 bytes beside a 16-byte key,
/// where plain strings took over a kilobyte per number.
#[derive(Debug, Clone, Copy)]
struct Entry {
    login_time: u64,
    counter: u64,
    home: Id,
    origin: Id,
    gateway: Id,
    capabilities: Id,
    /// The interned set of paths learned from peers (one per peer, each
    /// path's first relay being that peer), or `NONE`.
    routes: Id,
    online: bool,
}

/// What identifies this relay's announcement for a number, compared
/// before and after a change: the record's version and the best path. Ids
/// compare like the values they stand for: a change interns its new name or
/// path before it releases the old one, so an id is never reused within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    counter: u64,
    origin: Id,
    hop: Hop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Local,
    Path(Id),
}

#[derive(Debug)]
pub struct RoutingTable {
    me: String,
    me_id: Id,
    entries: HashMap<NumberKey, Entry, RandomState>,
    names: Interner<str>,
    capabilities: Interner<Capabilities>,
    /// Paths as name ids, the announcing peer first and the home relay last.
    paths: Interner<[Id]>,
    /// Sets of path ids, sorted.
    route_sets: Interner<[Id]>,
    /// The peers told of changes, when the caller says (`set_audience`).
    audience: Option<Vec<String>>,
}

impl RoutingTable {
    pub fn new(me: &str) -> RoutingTable {
        let mut names = Interner::default();
        // Held for the table's life: `me` is compared with every home relay.
        let me_id = names.intern_with(me, || Arc::from(me));
        RoutingTable {
            me: me.to_owned(),
            me_id,
            entries: HashMap::default(),
            names,
            capabilities: Interner::default(),
            paths: Interner::default(),
            route_sets: Interner::default(),
            audience: None,
        }
    }

    /// Which peers are told of changes from now on: a change that none of
    /// them would hear (`Change::for_peer`) is then not built at all.
    /// Building the announcements took a fifth of the time a relay with one
    /// peer spent learning that peer's snapshot, to throw them all away.
    /// `None` (the default): every change is built.
    pub fn set_audience(&mut self, peers: Option<Vec<String>>) {
        self.audience = peers;
    }

    /// Whether a change is built: someone in the audience hears it.
    fn heard_by_any(&self, first: Option<&str>, before: &Before) -> bool {
        self.audience
            .as_ref()
            .is_none_or(|peers| peers.iter().any(|p| heard(first, before, p).is_some()))
    }

    /// Loads persisted records (no routes yet: those come from peers).
    pub fn load(&mut self, records: impl IntoIterator<Item = ConnectionInfo>) {
        for r in records {
            self.merge(&r);
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn record(&self, number: &Number) -> Option<ConnectionInfo> {
        let e = self.entries.get(&NumberKey::new(number))?;
        Some(self.info(number.clone(), e))
    }

    /// Whether `record` is newer than what the table holds for its number
    /// (the merge rule, `ConnectionInfo::supersedes`).
    pub fn is_newer(&self, record: &ConnectionInfo) -> bool {
        match self.entries.get(&NumberKey::new(&record.number)) {
            None => true,
            Some(e) => {
                let origin: &str = self.names.get(e.origin);
                (record.version.counter, record.version.origin.as_str()) > (e.counter, origin)
            }
        }
    }

    pub fn records(&self) -> impl Iterator<Item = ConnectionInfo> + '_ {
        self.entries.iter().map(|(k, e)| self.info(k.number(), e))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of routes learned from `peer`.
    pub fn routes_via(&self, peer: &str) -> usize {
        let Some(peer) = self.names.find(peer) else {
            return 0;
        };
        self.entries
            .values()
            .filter(|e| self.route_through(e.routes, peer).is_some())
            .count()
    }

    /// The best next hop towards `number`'s home relay.
    pub fn best(&self, number: &Number) -> Option<NextHop> {
        let e = self.entries.get(&NumberKey::new(number))?;
        match self.best_hop(e)? {
            Hop::Local => Some(NextHop::Local),
            Hop::Path(path) => {
                let path = self.path_names(path);
                Some(NextHop::Peer {
                    name: path[0].clone(),
                    path,
                })
            }
        }
    }

    /// What this relay announces for `number`, if it can reach it.
    pub fn announcement(&self, number: &Number) -> Option<Announcement> {
        let key = NumberKey::new(number);
        let e = self.entries.get(&key)?;
        self.announcement_of(number.clone(), e)
    }

    /// Everything this relay announces: what a new peer receives first.
    pub fn snapshot(&self) -> Vec<Announcement> {
        self.announcements().collect()
    }

    /// The snapshot one announcement at a time, so a big one can be
    /// encoded in chunks instead of held whole.
    pub fn announcements(&self) -> impl Iterator<Item = Announcement> + '_ {
        self.entries
            .iter()
            .filter_map(|(k, e)| self.announcement_of(k.number(), e))
    }

    /// A renewal of this relay's own device (login, logout, lost gateway).
    /// The record must be homed here and carry a fresh version.
    pub fn renew_local(&mut self, record: ConnectionInfo) -> Option<Change> {
        let key = NumberKey::new(&record.number);
        self.tracking(&record.number, key, |t| {
            t.merge(&record);
        })
        .1
    }

    /// Applies a peer's announcement.
    pub fn announce(&mut self, peer: &str, ann: Announcement) -> Applied {
        let key = NumberKey::new(&ann.record.number);
        let number = ann.record.number.clone();
        let (stored, change) = self.tracking(&number, key, |t| {
            let usable = ann.path.first().map(String::as_str) == Some(peer)
                && !ann.path.iter().any(|r| r == &t.me);
            let newer = t.merge(&ann.record);
            let peer_id = t.name(peer);
            if usable {
                let path = t.intern_path(&ann.path);
                t.set_route(key, peer_id, Some(path));
            } else {
                // The peer's own best path runs through us (or is malformed):
                // it is no route for us.
                t.set_route(key, peer_id, None);
            }
            t.release_name(peer_id);
            newer.then_some(ann.record)
        });
        Applied { stored, change }
    }

    /// A peer no longer reaches `number`.
    pub fn withdraw(&mut self, peer: &str, number: &Number) -> Option<Change> {
        let key = NumberKey::new(number);
        let peer = self.names.find(peer)?;
        self.tracking(number, key, |t| t.set_route(key, peer, None))
            .1
    }

    /// A peer link dropped: every route learned through it goes.
    pub fn peer_down(&mut self, peer: &str) -> Vec<Change> {
        let Some(peer) = self.names.find(peer) else {
            return Vec::new();
        };
        let keys: Vec<NumberKey> = self
            .entries
            .iter()
            .filter(|(_, e)| self.route_through(e.routes, peer).is_some())
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|key| {
                let number = key.number();
                self.tracking(&number, key, |t| t.set_route(key, peer, None))
                    .1
            })
            .collect()
    }

    /// Runs `f` on the table and reports how this relay's announcement for
    /// `number` changed.
    fn tracking<T>(
        &mut self,
        number: &Number,
        key: NumberKey,
        f: impl FnOnce(&mut Self) -> T,
    ) -> (T, Option<Change>) {
        let before = self.signature(key);
        // Taken before `f`, which may release the old path's names.
        let was = match before.map(|s| self.first_peer(s.hop)) {
            None => Before::Unannounced,
            Some(None) => Before::Local,
            Some(Some(peer)) => Before::Via(Arc::clone(peer)),
        };
        let out = f(self);
        let after = self.signature(key);
        let change = match (&before, &after) {
            (b, a) if b == a => None,
            (_, Some(now)) => {
                let first = self.first_peer(now.hop).map(|peer| &**peer);
                if self.heard_by_any(first, &was) {
                    self.announcement(number).map(|a| Change::Announce(a, was))
                } else {
                    None
                }
            }
            // A withdrawal goes to every peer.
            (Some(_), None) => (self.audience.as_ref())
                .is_none_or(|peers| !peers.is_empty())
                .then(|| Change::Withdraw(number.clone())),
            (None, None) => None,
        };
        (out, change)
    }

    /// The peer a hop goes through first; `None` for a local device.
    fn first_peer(&self, hop: Hop) -> Option<&Arc<str>> {
        match hop {
            Hop::Local => None,
            Hop::Path(p) => Some(self.names.get(self.paths.get(p)[0])),
        }
    }

    fn signature(&self, key: NumberKey) -> Option<Signature> {
        let e = self.entries.get(&key)?;
        Some(Signature {
            counter: e.counter,
            origin: e.origin,
            hop: self.best_hop(e)?,
        })
    }

    /// The shortest path ending at the record's home relay, ties broken by
    /// the smaller peer name.
    fn best_hop(&self, e: &Entry) -> Option<Hop> {
        if e.home == self.me_id {
            return Some(Hop::Local);
        }
        if e.routes == NONE {
            return None;
        }
        self.route_sets
            .get(e.routes)
            .iter()
            .map(|&p| (p, self.paths.get(p)))
            .filter(|(_, path)| path.last() == Some(&e.home))
            .min_by(|(_, a), (_, b)| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| self.names.get(a[0]).cmp(self.names.get(b[0])))
            })
            .map(|(p, _)| Hop::Path(p))
    }

    fn announcement_of(&self, number: Number, e: &Entry) -> Option<Announcement> {
        let path = match self.best_hop(e)? {
            Hop::Local => vec![self.me.clone()],
            Hop::Path(p) => {
                let ids = self.paths.get(p);
                let mut path = Vec::with_capacity(ids.len() + 1);
                path.push(self.me.clone());
                path.extend(ids.iter().map(|&n| self.names.get(n).to_string()));
                path
            }
        };
        Some(Announcement {
            record: self.info(number, e),
            path,
        })
    }

    fn info(&self, number: Number, e: &Entry) -> ConnectionInfo {
        let name = |id: Id| self.names.get(id).to_string();
        ConnectionInfo {
            number,
            home_relay: name(e.home),
            gateway: (e.gateway != NONE).then(|| name(e.gateway)),
            capabilities: (e.capabilities != NONE)
                .then(|| Capabilities::clone(self.capabilities.get(e.capabilities))),
            login_time: e.login_time,
            version: Version {
                counter: e.counter,
                origin: name(e.origin),
            },
            online: e.online,
        }
    }

    fn path_names(&self, path: Id) -> Vec<String> {
        self.paths
            .get(path)
            .iter()
            .map(|&n| self.names.get(n).to_string())
            .collect()
    }

    /// The path in route set `routes` that `peer` announced.
    fn route_through(&self, routes: Id, peer: Id) -> Option<Id> {
        if routes == NONE {
            return None;
        }
        self.route_sets
            .get(routes)
            .iter()
            .copied()
            .find(|&p| self.paths.get(p).first() == Some(&peer))
    }

    /// Stores `r` when it is newer than the entry's record (or there is
    /// none); returns whether it did.
    fn merge(&mut self, r: &ConnectionInfo) -> bool {
        if !self.is_newer(r) {
            return false;
        }
        let key = NumberKey::new(&r.number);
        let home = self.name(&r.home_relay);
        let origin = self.name(&r.version.origin);
        let gateway = r.gateway.as_deref().map_or(NONE, |g| self.name(g));
        let capabilities = r.capabilities.as_ref().map_or(NONE, |c| {
            self.capabilities.intern_with(c, || Arc::new(c.clone()))
        });
        let fresh = Entry {
            login_time: r.login_time,
            counter: r.version.counter,
            home,
            origin,
            gateway,
            capabilities,
            routes: NONE,
            online: r.online,
        };
        match self.entries.get_mut(&key) {
            None => {
                self.entries.insert(key, fresh);
            }
            Some(e) => {
                let old = std::mem::replace(
                    e,
                    Entry {
                        routes: e.routes,
                        ..fresh
                    },
                );
                for id in [old.home, old.origin, old.gateway] {
                    self.release_name(id);
                }
                self.capabilities.release(old.capabilities);
            }
        }
        true
    }

    /// Sets (or with `None` removes) the path `peer` announced for the
    /// number at `key`, which must have an entry; takes over the reference
    /// to `path`.
    fn set_route(&mut self, key: NumberKey, peer: Id, path: Option<Id>) {
        let Some(old) = self.entries.get(&key).map(|e| e.routes) else {
            if let Some(p) = path {
                self.release_path(p);
            }
            return;
        };
        let mut set: Vec<Id> = if old == NONE {
            Vec::new()
        } else {
            self.route_sets.get(old).to_vec()
        };
        let before = set.len();
        set.retain(|&p| self.paths.get(p).first() != Some(&peer));
        let removed = before != set.len();
        if !removed && path.is_none() {
            return;
        }
        set.extend(path);
        set.sort_unstable();
        let routes = if set.is_empty() {
            NONE
        } else {
            let live = self.route_sets.len();
            let id = self
                .route_sets
                .intern_with(&set, || Arc::from(set.as_slice()));
            if self.route_sets.len() > live {
                // A new set holds its paths; an existing one already did.
                for &p in &set {
                    self.paths.retain(p);
                }
            }
            id
        };
        // The set took its own references to its paths: the caller's goes.
        if let Some(p) = path {
            self.release_path(p);
        }
        if let Some(e) = self.entries.get_mut(&key) {
            e.routes = routes;
        }
        self.release_route_set(old);
    }

    /// The id of `name`, with one reference taken.
    fn name(&mut self, name: &str) -> Id {
        self.names.intern_with(name, || Arc::from(name))
    }

    fn release_name(&mut self, id: Id) {
        self.names.release(id);
    }

    /// The id of `path`, with one reference taken (the path holds its names).
    fn intern_path(&mut self, path: &[String]) -> Id {
        let ids: Vec<Id> = path.iter().map(|n| self.name(n)).collect();
        let before = self.paths.len();
        let id = self.paths.intern_with(&ids, || Arc::from(ids.as_slice()));
        if self.paths.len() == before {
            // Already interned: it holds its names already.
            for n in ids {
                self.release_name(n);
            }
        }
        id
    }

    fn release_path(&mut self, id: Id) {
        if let Some(names) = self.paths.release(id) {
            for &n in names.iter() {
                self.release_name(n);
            }
        }
    }

    fn release_route_set(&mut self, id: Id) {
        if let Some(paths) = self.route_sets.release(id) {
            for &p in paths.iter() {
                self.release_path(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(number: &str, home: &str, counter: u64, online: bool) -> ConnectionInfo {
        ConnectionInfo {
            number: number.parse().unwrap(),
            home_relay: home.into(),
            gateway: None,
            capabilities: None,
            login_time: 0,
            version: Version {
                counter,
                origin: home.into(),
            },
            online,
        }
    }

    fn ann(record: ConnectionInfo, path: &[&str]) -> Announcement {
        Announcement {
            record,
            path: path.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn n(s: &str) -> Number {
        s.parse().unwrap()
    }

    fn peer(name: &str, path: &[&str]) -> NextHop {
        NextHop::Peer {
            name: name.into(),
            path: path.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn local_renewal_is_announced_once() {
        let mut t = RoutingTable::new("a");
        let c = t.renew_local(rec("1", "a", 1, true));
        assert_eq!(
            c,
            Some(Change::Announce(
                ann(rec("1", "a", 1, true), &["a"]),
                Before::Unannounced
            ))
        );
        assert_eq!(t.best(&n("1")), Some(NextHop::Local));
        // The same record again (duplicate) changes nothing.
        assert_eq!(t.renew_local(rec("1", "a", 1, true)), None);
        // Logout: a newer record, announced.
        let c = t.renew_local(rec("1", "a", 2, false));
        assert_eq!(
            c,
            Some(Change::Announce(
                ann(rec("1", "a", 2, false), &["a"]),
                Before::Local
            ))
        );
    }

    #[test]
    fn multi_hop_paths_grow_and_loops_are_refused() {
        // Line a - b - c; the device is on c.
        let mut b = RoutingTable::new("b");
        let applied = b.announce("c", ann(rec("7", "c", 1, true), &["c"]));
        assert_eq!(applied.stored, Some(rec("7", "c", 1, true)));
        assert_eq!(
            applied.change,
            Some(Change::Announce(
                ann(rec("7", "c", 1, true), &["b", "c"]),
                Before::Unannounced
            ))
        );
        let mut a = RoutingTable::new("a");
        let Some(Change::Announce(from_b, _)) = applied.change else {
            panic!()
        };
        a.announce("b", from_b.clone());
        assert_eq!(a.best(&n("7")), Some(peer("b", &["b", "c"])));
        // c hears b's announcement back: its own name is in the path.
        let mut c = RoutingTable::new("c");
        c.renew_local(rec("7", "c", 1, true));
        let applied = c.announce("b", from_b);
        assert_eq!(applied.change, None);
        assert_eq!(c.best(&n("7")), Some(NextHop::Local));
        assert_eq!(c.routes_via("b"), 0);
    }

    #[test]
    fn split_horizon_withdraws_only_from_peers_that_may_route_through_us() {
        let mut a = RoutingTable::new("a");
        // Learned from b, announced for the first time: b is told nothing
        // (it holds no route through a), c hears the announcement.
        let first = a.announce("b", ann(rec("6", "c", 1, true), &["b", "c"]));
        let first = first.change.unwrap();
        assert_eq!(first.for_peer("b"), None);
        let Some(Update::Announce(to_c)) = first.for_peer("c") else {
            panic!("{first:?}")
        };
        assert_eq!(to_c.path, ["a", "b", "c"]);
        // A renewal from b: b was told the withdrawal last time already.
        let renewal = a.announce("b", ann(rec("6", "c", 2, true), &["b", "c"]));
        assert_eq!(renewal.change.unwrap().for_peer("b"), None);
        // d's path is as short and d's name larger: b's path stays best.
        // Then b goes down: the route moves to d, and d, which heard the
        // announcement through b, is told to withdraw it.
        a.announce("d", ann(rec("6", "c", 2, true), &["d", "c"]));
        let changes = a.peer_down("b");
        let [moved] = &changes[..] else {
            panic!("{changes:?}")
        };
        assert_eq!(moved.for_peer("d"), Some(Update::Withdraw(&n("6"))));
        assert!(matches!(moved.for_peer("b"), Some(Update::Announce(_))));
        // A device of a's own moving to b: every peer may route through a.
        let mut a = RoutingTable::new("a");
        a.renew_local(rec("8", "a", 1, true));
        let moved = a.announce("b", ann(rec("8", "b", 2, true), &["b"]));
        let moved = moved.change.unwrap();
        assert_eq!(moved.for_peer("b"), Some(Update::Withdraw(&n("8"))));
        // A withdrawal goes to everyone.
        let gone = a.withdraw("b", &n("8")).unwrap();
        assert_eq!(gone.for_peer("b"), Some(Update::Withdraw(&n("8"))));
    }

    #[test]
    fn changes_no_peer_hears_are_not_built() {
        let mut a = RoutingTable::new("a");
        a.set_audience(Some(vec!["b".into()]));
        // b's snapshot: nothing for b itself to hear.
        let from_b = a.announce("b", ann(rec("1", "c", 1, true), &["b", "c"]));
        assert_eq!(from_b.change, None);
        assert!(from_b.stored.is_some(), "the record is still stored");
        assert_eq!(a.best(&n("1")), Some(peer("b", &["b", "c"])));
        // With c listening too, the same kind of change is built for c.
        a.set_audience(Some(vec!["b".into(), "c".into()]));
        let from_b = a.announce("b", ann(rec("2", "c", 1, true), &["b", "c"]));
        assert!(matches!(
            from_b.change.unwrap().for_peer("c"),
            Some(Update::Announce(_))
        ));
        // Nobody listening: not even a withdrawal or a local renewal.
        a.set_audience(Some(Vec::new()));
        assert_eq!(a.withdraw("b", &n("2")), None);
        assert_eq!(a.best(&n("2")), None);
        assert_eq!(a.renew_local(rec("3", "a", 1, true)), None);
        assert_eq!(a.best(&n("3")), Some(NextHop::Local));
    }

    #[test]
    fn duplicate_stale_and_out_of_order_updates_are_harmless() {
        let mut a = RoutingTable::new("a");
        let v2 = ann(rec("5", "c", 2, false), &["b", "c"]);
        let v1 = ann(rec("5", "c", 1, true), &["b", "c"]);
        let applied = a.announce("b", v2.clone());
        assert!(applied.stored.is_some());
        // Older version arriving later: stored record stays at v2.
        let applied = a.announce("b", v1);
        assert_eq!(applied.stored, None);
        assert_eq!(applied.change, None);
        assert_eq!(a.record(&n("5")).unwrap().version.counter, 2);
        assert!(!a.record(&n("5")).unwrap().online);
        // Duplicate: nothing.
        assert_eq!(a.announce("b", v2), Applied::default());
    }

    #[test]
    fn shortest_path_wins_and_ties_break_on_peer_name() {
        // Ring a-b-c-d-a, device on c: a hears [b, c] and [d, c].
        let mut a = RoutingTable::new("a");
        a.announce("d", ann(rec("9", "c", 1, true), &["d", "c"]));
        a.announce("b", ann(rec("9", "c", 1, true), &["b", "c"]));
        assert_eq!(a.best(&n("9")), Some(peer("b", &["b", "c"])));
        // A longer path never wins.
        a.announce("e", ann(rec("9", "c", 1, true), &["e", "f", "c"]));
        assert_eq!(a.best(&n("9")), Some(peer("b", &["b", "c"])));
    }

    #[test]
    fn peer_down_withdraws_or_fails_over() {
        let mut a = RoutingTable::new("a");
        a.announce("b", ann(rec("1", "c", 1, true), &["b", "c"]));
        a.announce("d", ann(rec("1", "c", 1, true), &["d", "x", "c"]));
        a.announce("b", ann(rec("2", "c", 1, true), &["b", "c"]));
        let changes = a.peer_down("b");
        // 1 fails over to the longer path through d; 2 has no path left.
        assert!(changes.contains(&Change::Announce(
            ann(rec("1", "c", 1, true), &["a", "d", "x", "c"]),
            Before::Via("b".into())
        )));
        assert!(changes.contains(&Change::Withdraw(n("2"))));
        assert_eq!(changes.len(), 2);
        assert_eq!(a.best(&n("2")), None);
        // The number stays known (calls hear "unreachable", not "unknown").
        assert!(a.record(&n("2")).is_some());
    }

    #[test]
    fn paths_to_a_former_home_do_not_count() {
        // The device moved from c to e; b still announces the old path.
        let mut a = RoutingTable::new("a");
        a.announce("b", ann(rec("3", "c", 1, true), &["b", "c"]));
        a.announce("d", ann(rec("3", "e", 2, true), &["d", "e"]));
        assert_eq!(a.best(&n("3")), Some(peer("d", &["d", "e"])));
    }

    #[test]
    fn a_device_moving_here_makes_the_route_local() {
        let mut a = RoutingTable::new("a");
        a.announce("b", ann(rec("4", "b", 1, true), &["b"]));
        let change = a.renew_local(rec("4", "a", 2, true));
        assert_eq!(
            change,
            Some(Change::Announce(
                ann(rec("4", "a", 2, true), &["a"]),
                Before::Via("b".into())
            ))
        );
        assert_eq!(a.best(&n("4")), Some(NextHop::Local));
    }

    #[test]
    fn interned_names_and_paths_go_with_their_last_user() {
        let mut a = RoutingTable::new("a");
        for i in 0..50 {
            let number = i.to_string();
            a.announce("b", ann(rec(&number, "c", 1, true), &["b", "c"]));
            a.announce("d", ann(rec(&number, "c", 1, true), &["d", "x", "c"]));
        }
        // Fifty numbers share two paths and one set of them.
        assert_eq!((a.paths.len(), a.route_sets.len()), (2, 1));
        assert_eq!(a.best(&n("7")), Some(peer("b", &["b", "c"])));
        // b's path changes for one number: a second set appears.
        a.announce("b", ann(rec("7", "c", 1, true), &["b", "y", "c"]));
        assert_eq!((a.paths.len(), a.route_sets.len()), (3, 2));
        assert_eq!(a.best(&n("7")), Some(peer("b", &["b", "y", "c"])));
        // ... and back: the other set and path go.
        a.announce("b", ann(rec("7", "c", 1, true), &["b", "c"]));
        assert_eq!((a.paths.len(), a.route_sets.len()), (2, 1));
        a.peer_down("b");
        assert_eq!((a.paths.len(), a.route_sets.len()), (1, 1));
        assert_eq!(a.best(&n("7")), Some(peer("d", &["d", "x", "c"])));
        for i in 0..50 {
            a.withdraw("d", &n(&i.to_string()));
        }
        assert_eq!((a.paths.len(), a.route_sets.len()), (0, 0));
        // Names left: a itself and c (home and origin of every record).
        assert_eq!(a.names.len(), 2);
        // A newer record homed elsewhere releases the old names.
        for i in 0..50 {
            a.load([rec(&i.to_string(), "e", 2, false)]);
        }
        assert_eq!(a.names.len(), 2, "c went, e came");
        assert_eq!(a.record(&n("3")).unwrap(), rec("3", "e", 2, false));
        assert_eq!(a.len(), 50);
    }

    #[test]
    fn records_round_trip_through_the_table() {
        let mut a = RoutingTable::new("a");
        let mut r = rec("+4930123", "b", 9, true);
        r.gateway = Some("gw-1".into());
        r.capabilities = Some(crate::codec::Capabilities::all());
        r.login_time = 1_700_000_000;
        a.load([r.clone()]);
        assert_eq!(a.record(&r.number), Some(r.clone()));
        assert_eq!(a.records().collect::<Vec<_>>(), vec![r.clone()]);
        let mut older = r.clone();
        older.version.counter = 8;
        assert!(!a.is_newer(&older));
        older.version = Version {
            counter: 9,
            origin: "c".into(),
        };
        assert!(a.is_newer(&older), "same counter, larger origin");
    }

    #[test]
    fn withdraw_and_snapshot() {
        let mut a = RoutingTable::new("a");
        a.renew_local(rec("1", "a", 1, true));
        a.announce("b", ann(rec("2", "b", 1, true), &["b"]));
        let mut snap = a.snapshot();
        snap.sort_by(|x, y| x.record.number.cmp(&y.record.number));
        assert_eq!(snap[0].path, vec!["a"]);
        assert_eq!(snap[1].path, vec!["a", "b"]);
        assert_eq!(a.withdraw("b", &n("2")), Some(Change::Withdraw(n("2"))));
        assert_eq!(
            a.withdraw("b", &n("2")),
            None,
            "a second withdrawal changes nothing"
        );
        assert_eq!(a.snapshot().len(), 1);
    }
}

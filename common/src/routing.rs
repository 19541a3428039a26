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

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

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
pub enum Change {
    Announce(Announcement),
    /// This relay no longer has a path to the number.
    Withdraw(Number),
}

/// The outcome of applying a peer's announcement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The record, when it was newer than ours (to persist).
    pub stored: Option<ConnectionInfo>,
    pub change: Option<Change>,
}

#[derive(Debug, Clone)]
pub struct RoutingTable {
    me: String,
    records: HashMap<Number, ConnectionInfo>,
    /// Per number, per peer: the path that peer announced.
    learned: HashMap<Number, BTreeMap<String, Vec<String>>>,
}

impl RoutingTable {
    pub fn new(me: &str) -> RoutingTable {
        RoutingTable {
            me: me.to_owned(),
            records: HashMap::new(),
            learned: HashMap::new(),
        }
    }

    /// Loads persisted records (no routes yet: those come from peers).
    pub fn load(&mut self, records: impl IntoIterator<Item = ConnectionInfo>) {
        for r in records {
            if r.supersedes(self.records.get(&r.number)) {
                self.records.insert(r.number.clone(), r);
            }
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn record(&self, number: &Number) -> Option<&ConnectionInfo> {
        self.records.get(number)
    }

    pub fn records(&self) -> impl Iterator<Item = &ConnectionInfo> {
        self.records.values()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Number of routes learned from `peer`.
    pub fn routes_via(&self, peer: &str) -> usize {
        self.learned
            .values()
            .filter(|m| m.contains_key(peer))
            .count()
    }

    /// The best next hop towards `number`'s home relay.
    pub fn best(&self, number: &Number) -> Option<NextHop> {
        let record = self.records.get(number)?;
        if record.home_relay == self.me {
            return Some(NextHop::Local);
        }
        self.learned
            .get(number)?
            .iter()
            .filter(|(_, path)| path.last() == Some(&record.home_relay))
            .min_by(|(pa, a), (pb, b)| a.len().cmp(&b.len()).then_with(|| pa.cmp(pb)))
            .map(|(peer, path)| NextHop::Peer {
                name: peer.clone(),
                path: path.clone(),
            })
    }

    /// What this relay announces for `number`, if it can reach it.
    pub fn announcement(&self, number: &Number) -> Option<Announcement> {
        let record = self.records.get(number)?.clone();
        let path = match self.best(number)? {
            NextHop::Local => vec![self.me.clone()],
            NextHop::Peer { path, .. } => {
                let mut p = Vec::with_capacity(path.len() + 1);
                p.push(self.me.clone());
                p.extend(path);
                p
            }
        };
        Some(Announcement { record, path })
    }

    /// Everything this relay announces: what a new peer receives first.
    pub fn snapshot(&self) -> Vec<Announcement> {
        self.records
            .keys()
            .filter_map(|n| self.announcement(n))
            .collect()
    }

    /// What identifies this relay's announcement for `number`: the record's
    /// version and the path. Cheaper to compare than whole announcements.
    fn signature(&self, number: &Number) -> Option<(Version, Option<NextHop>)> {
        let record = self.records.get(number)?;
        match self.best(number) {
            None => None,
            hop => Some((record.version.clone(), hop)),
        }
    }

    /// Runs `f` on the table and reports how this relay's announcement for
    /// `number` changed.
    fn tracking<T>(
        &mut self,
        number: &Number,
        f: impl FnOnce(&mut Self) -> T,
    ) -> (T, Option<Change>) {
        let before = self.signature(number);
        let out = f(self);
        let after = self.signature(number);
        let change = match (&before, &after) {
            (b, a) if b == a => None,
            (_, Some(_)) => self.announcement(number).map(Change::Announce),
            (Some(_), None) => Some(Change::Withdraw(number.clone())),
            (None, None) => None,
        };
        (out, change)
    }

    /// A renewal of this relay's own device (login, logout, lost gateway).
    /// The record must be homed here and carry a fresh version.
    pub fn renew_local(&mut self, record: ConnectionInfo) -> Option<Change> {
        let number = record.number.clone();
        self.tracking(&number, |t| {
            if record.supersedes(t.records.get(&number)) {
                t.records.insert(number.clone(), record);
            }
        })
        .1
    }

    /// Applies a peer's announcement.
    pub fn announce(&mut self, peer: &str, ann: Announcement) -> Applied {
        let number = ann.record.number.clone();
        let (stored, change) = self.tracking(&number, |t| {
            let usable = ann.path.first().map(String::as_str) == Some(peer)
                && !ann.path.iter().any(|r| r == &t.me);
            let routes = t.learned.entry(number.clone()).or_default();
            if usable {
                routes.insert(peer.to_owned(), ann.path);
            } else {
                // The peer's own best path runs through us (or is malformed):
                // it is no route for us.
                routes.remove(peer);
            }
            if routes.is_empty() {
                t.learned.remove(&number);
            }
            if ann.record.supersedes(t.records.get(&number)) {
                t.records.insert(number.clone(), ann.record.clone());
                Some(ann.record)
            } else {
                None
            }
        });
        Applied { stored, change }
    }

    /// A peer no longer reaches `number`.
    pub fn withdraw(&mut self, peer: &str, number: &Number) -> Option<Change> {
        self.tracking(number, |t| t.forget_route(peer, number)).1
    }

    /// A peer link dropped: every route learned through it goes.
    pub fn peer_down(&mut self, peer: &str) -> Vec<Change> {
        let numbers: Vec<Number> = self
            .learned
            .iter()
            .filter(|(_, m)| m.contains_key(peer))
            .map(|(n, _)| n.clone())
            .collect();
        numbers
            .iter()
            .filter_map(|n| self.tracking(n, |t| t.forget_route(peer, n)).1)
            .collect()
    }

    fn forget_route(&mut self, peer: &str, number: &Number) {
        if let Some(routes) = self.learned.get_mut(number) {
            routes.remove(peer);
            if routes.is_empty() {
                self.learned.remove(number);
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
            Some(Change::Announce(ann(rec("1", "a", 1, true), &["a"])))
        );
        assert_eq!(t.best(&n("1")), Some(NextHop::Local));
        // The same record again (duplicate) changes nothing.
        assert_eq!(t.renew_local(rec("1", "a", 1, true)), None);
        // Logout: a newer record, announced.
        let c = t.renew_local(rec("1", "a", 2, false));
        assert_eq!(
            c,
            Some(Change::Announce(ann(rec("1", "a", 2, false), &["a"])))
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
            Some(Change::Announce(ann(rec("7", "c", 1, true), &["b", "c"])))
        );
        let mut a = RoutingTable::new("a");
        let Some(Change::Announce(from_b)) = applied.change else {
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
        assert!(changes.contains(&Change::Announce(ann(
            rec("1", "c", 1, true),
            &["a", "d", "x", "c"]
        ))));
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
            Some(Change::Announce(ann(rec("4", "a", 2, true), &["a"])))
        );
        assert_eq!(a.best(&n("4")), Some(NextHop::Local));
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

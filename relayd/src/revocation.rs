//! Revoked device secrets: each number's minimum secret generation
//! (`common::credential`), kept in sled (tree `revocations`, number → u32
//! big-endian), spread to every relay, and enforced on devices already
//! logged in with an older generation (they are kicked).
//!
//! Spreading: in mesh mode a relay sends all its revocations to a peer after
//! its snapshot and forwards each raise to every other peer; minimums only
//! grow (merge = maximum), so floods end and duplicates or reordering change
//! nothing. In directory mode they live in Redis (`redis_dir`).
//!
//! No secret is stored here or anywhere: only generations.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use common::link::message::{Control, Revocation};
use common::number::Number;
use tokio::sync::mpsc;

use crate::registry::LinkId;
use crate::server::Relay;
use crate::store::StoreError;

/// A device logged in here, and with which generation.
#[derive(Debug)]
struct LoginSession {
    link: LinkId,
    generation: u32,
    outbox: mpsc::Sender<Control>,
}

#[derive(Debug)]
pub struct Revocations {
    tree: sled::Tree,
    minimum: Mutex<HashMap<Number, u32>>,
    sessions: Mutex<HashMap<Number, Vec<LoginSession>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps: still consistent after a panic elsewhere.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Revocations {
    /// Loads the stored minimums. A record that does not decode is skipped
    /// with a warning rather than stopping the relay.
    pub fn open(db: &sled::Db) -> Result<Revocations, StoreError> {
        let tree = db.open_tree("revocations")?;
        let mut minimum = HashMap::new();
        for item in tree.iter() {
            let (k, v) = item?;
            let number = std::str::from_utf8(&k).ok().and_then(|s| s.parse().ok());
            let generation = <[u8; 4]>::try_from(v.as_ref()).ok().map(u32::from_be_bytes);
            match (number, generation) {
                (Some(n), Some(g)) => {
                    minimum.insert(n, g);
                }
                _ => tracing::warn!(key = ?k, "unreadable revocation record skipped"),
            }
        }
        Ok(Revocations {
            tree,
            minimum: Mutex::new(minimum),
            sessions: Mutex::default(),
        })
    }

    /// The lowest generation accepted for `number` (0 unless revoked).
    pub fn minimum(&self, number: &Number) -> u32 {
        lock(&self.minimum).get(number).copied().unwrap_or(0)
    }

    pub fn all(&self) -> Vec<Revocation> {
        let mut all: Vec<Revocation> = lock(&self.minimum)
            .iter()
            .map(|(number, &min_generation)| Revocation {
                number: number.clone(),
                min_generation,
            })
            .collect();
        all.sort_by(|a, b| a.number.cmp(&b.number));
        all
    }

    /// Raises `number`'s minimum to `min` if that is higher; returns whether
    /// it was (and stores it).
    fn raise(&self, number: &Number, min: u32) -> bool {
        let mut minimum = lock(&self.minimum);
        let current = minimum.get(number).copied().unwrap_or(0);
        if min <= current {
            return false;
        }
        minimum.insert(number.clone(), min);
        if let Err(e) = self
            .tree
            .insert(number.as_str().as_bytes(), &min.to_be_bytes())
        {
            tracing::error!(%number, error = %e, "cannot store a revocation; it holds until restart");
        }
        true
    }

    /// Remembers a login's generation, to kick it if that is revoked later.
    pub fn logged_in(
        &self,
        number: &Number,
        link: LinkId,
        generation: u32,
        outbox: mpsc::Sender<Control>,
    ) {
        let mut sessions = lock(&self.sessions);
        let list = sessions.entry(number.clone()).or_default();
        list.retain(|s| s.link != link);
        list.push(LoginSession {
            link,
            generation,
            outbox,
        });
    }

    /// Forgets every login of a link that went away.
    pub fn link_gone(&self, link: LinkId) {
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, list| {
            list.retain(|s| s.link != link);
            !list.is_empty()
        });
    }

    /// Takes the logins of `number` older than `min`.
    fn take_revoked(&self, number: &Number, min: u32) -> Vec<LoginSession> {
        let mut sessions = lock(&self.sessions);
        let Some(list) = sessions.get_mut(number) else {
            return Vec::new();
        };
        let (revoked, kept) = std::mem::take(list)
            .into_iter()
            .partition(|s| s.generation < min);
        *list = kept;
        revoked
    }
}

/// Applies revocations (from the admin socket, a peer, or Redis): raises the
/// minimums, kicks devices logged in here with a revoked secret, and passes
/// the raises on to every peer but `from`. Returns how many devices it kicked.
pub fn apply(relay: &Relay, revocations: Vec<Revocation>, from: Option<&str>) -> usize {
    let revs = &relay.revocations;
    let raised: Vec<Revocation> = revocations
        .into_iter()
        .filter(|r| revs.raise(&r.number, r.min_generation))
        .collect();
    let mut kicked = 0;
    for r in &raised {
        tracing::info!(number = %r.number, min_generation = r.min_generation, from = from.unwrap_or("operator"), "secret revoked");
        for session in revs.take_revoked(&r.number, r.min_generation) {
            let reason = format!(
                "the secret for {} was revoked (generation {} is below {}); ask the operator for a new one",
                r.number, session.generation, r.min_generation
            );
            let _ = session.outbox.try_send(Control::Kicked {
                number: r.number.clone(),
                reason,
            });
            if relay.registry.logout(session.link, &r.number) {
                crate::link_session::mark_offline(relay, &r.number);
            }
            kicked += 1;
        }
    }
    if raised.is_empty() {
        return kicked;
    }
    for peer in relay.mesh.peers() {
        if Some(peer.name.as_str()) != from
            && peer
                .outbox
                .try_send(Control::Revoke(raised.clone()))
                .is_err()
        {
            tracing::warn!(peer = %peer.name, "peer outbox full: revocation not forwarded (it goes with the next snapshot)");
        }
    }
    if let Some(dir) = relay.redis() {
        dir.revoked(&raised);
    }
    kicked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimums_only_grow_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let n: Number = "1002".parse().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let revs = Revocations::open(&db).unwrap();
            assert_eq!(revs.minimum(&n), 0);
            assert!(revs.raise(&n, 2));
            assert!(!revs.raise(&n, 1), "never lowered");
            assert!(!revs.raise(&n, 2), "idempotent");
            db.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let revs = Revocations::open(&db).unwrap();
        assert_eq!(revs.minimum(&n), 2);
        assert_eq!(revs.all().len(), 1);
    }

    #[test]
    fn only_older_logins_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let revs = Revocations::open(&db).unwrap();
        let n: Number = "1002".parse().unwrap();
        let (tx, _rx) = mpsc::channel(1);
        revs.logged_in(&n, 1, 0, tx.clone());
        revs.logged_in(&n, 2, 3, tx);
        let taken = revs.take_revoked(&n, 1);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].link, 1);
        revs.link_gone(2);
        assert!(revs.take_revoked(&n, 9).is_empty());
    }
}

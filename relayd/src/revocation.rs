//! Revoked device secrets on disk: each number's minimum secret generation
//! (`common::credential`), in the sled tree `revocations` (number → u32
//! big-endian). What a revocation does (minimums only grow, older logins
//! are kicked, raises spread to every relay) is decided in `relay_core`.
//!
//! Spreading: in mesh mode a relay sends all its revocations to a peer after
//! its snapshot and forwards each raise to every other peer; in directory
//! mode they live in Redis (`redis_dir`).
//!
//! No secret is stored here or anywhere: only generations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::link::message::Revocation;
use common::number::Number;
use common::storage::{RoomError, room_for};

use crate::store::StoreError;

#[derive(Debug)]
pub struct RevocationStore {
    tree: sled::Tree,
    /// The database's directory, whose disk must have room for a write.
    dir: PathBuf,
}

impl RevocationStore {
    /// Opens the tree and reads the stored minimums. A record that does not
    /// decode is skipped with a warning rather than stopping the relay.
    pub fn open(
        db: &sled::Db,
        dir: &Path,
    ) -> Result<(RevocationStore, HashMap<Number, u32>), StoreError> {
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
        let store = RevocationStore {
            tree,
            dir: dir.to_owned(),
        };
        Ok((store, minimum))
    }

    /// Stores raised minimums (the core only hands over raises), if the disk
    /// has room (see `store`: a write without room breaks the database).
    pub fn save(&self, raised: &[Revocation]) {
        if let Err(e @ RoomError::Full { .. }) = room_for(&self.dir, 64 * raised.len() as u64) {
            tracing::error!(error = %e, revocations = raised.len(), "cannot store revocations: the disk is full; they hold until restart (peers or Redis have them too)");
            return;
        }
        for r in raised {
            if let Err(e) = self.tree.insert(
                r.number.as_str().as_bytes(),
                &r.min_generation.to_be_bytes(),
            ) {
                tracing::error!(number = %r.number, error = %e, "cannot store a revocation; it holds until restart");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimums_persist() {
        let dir = tempfile::tempdir().unwrap();
        let n: Number = "1002".parse().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let (store, minimums) = RevocationStore::open(&db, dir.path()).unwrap();
            assert!(minimums.is_empty());
            store.save(&[Revocation {
                number: n.clone(),
                min_generation: 2,
            }]);
            db.flush().unwrap();
        }
        let db = reopen(dir.path());
        let (_, minimums) = RevocationStore::open(&db, dir.path()).unwrap();
        assert_eq!(minimums.get(&n), Some(&2));
    }

    /// Opens the database again once sled has let go of it: its I/O pool
    /// may still hold the file (and its lock) a moment after the `Db` is
    /// dropped, and a busy machine made the reopen fail.
    fn reopen(path: &std::path::Path) -> sled::Db {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match sled::open(path) {
                Ok(db) => return db,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("reopening {}: {e}; trying again", path.display());
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("cannot reopen {}: {e}", path.display()),
            }
        }
    }
}

//! Syncing a sled database from async code, and telling whether a write
//! has room on its disk.

use std::path::Path;

/// Disk a write to a sled database takes, per byte written: sled's log
/// keeps copies until it cleans its segments.
pub const SPACE_FACTOR: u64 = 3;
/// Disk a sled database keeps free besides.
pub const SPACE_RESERVE: u64 = 8 << 20;

/// Why a write may not go to the disk under a directory now.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("{dir} has {} free, {} needed", mib(*free), mib(*needed))]
    Full { dir: String, free: u64, needed: u64 },
    #[error("cannot tell the free space of {dir}: {source}")]
    Unknown { dir: String, source: std::io::Error },
}

/// Whether `bytes` more fit in the sled database under `dir`: room for
/// [`SPACE_FACTOR`] times them and [`SPACE_RESERVE`] besides. Ask before
/// writing: sled takes a write the disk has no room for and fails its next
/// flush, and from then on every write to that database fails, even once
/// the disk has room again, until it is opened anew.
pub fn room_for(dir: &Path, bytes: u64) -> Result<(), RoomError> {
    let free = fs2::available_space(dir).map_err(|source| RoomError::Unknown {
        dir: dir.display().to_string(),
        source,
    })?;
    let needed = bytes
        .saturating_mul(SPACE_FACTOR)
        .saturating_add(SPACE_RESERVE);
    if free < needed {
        return Err(RoomError::Full {
            dir: dir.display().to_string(),
            free,
            needed,
        });
    }
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1u64 << 20) as f64)
}

/// Syncs `tree`'s database to disk off the async threads. Not sled's
/// `flush_async`: that runs each flush as a task of sled's own small
/// thread pool, and a burst of them waiting on sled's lock (held back by
/// an `apply_batch` queued for it) leaves no pool thread to write the log
/// they wait for. gatewayd hung so under 20 SMTP connections, each
/// syncing its fax; tokio's blocking pool keeps sled's pool free.
pub async fn flush(tree: &sled::Tree) -> sled::Result<()> {
    let tree = tree.clone();
    tokio::task::spawn_blocking(move || tree.flush().map(|_| ()))
        .await
        .unwrap_or_else(|e| Err(sled::Error::ReportableBug(format!("flush task: {e}"))))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn room_is_the_bytes_times_the_factor_plus_the_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let free = fs2::available_space(dir.path()).unwrap();
        assert!(room_for(dir.path(), 0).is_ok(), "{free} bytes free here");
        let too_much = free / SPACE_FACTOR + 1;
        let err = room_for(dir.path(), too_much).unwrap_err();
        let RoomError::Full { needed, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(*needed, too_much * SPACE_FACTOR + SPACE_RESERVE);
        let text = err.to_string();
        assert!(
            text.starts_with(&dir.path().display().to_string()),
            "{text}"
        );
        assert!(
            text.contains(" MB free, ") && text.ends_with(" MB needed"),
            "{text}"
        );
        let gone = dir.path().join("gone");
        let err = room_for(&gone, 1).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot tell the free space of"),
            "{err}"
        );
    }

    /// Many syncs at once beside batches, as 20 SMTP sessions and the job
    /// runners make them: all must finish. With sled's `flush_async` this
    /// hung (in apply_batch) within seconds; the work runs on a thread of
    /// its own so that a hang fails the test instead of stalling it.
    #[test]
    fn syncs_beside_batches_never_hang() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            runtime.block_on(async {
                for round in 0u32..200 {
                    let mut tasks = Vec::new();
                    for i in 0u32..24 {
                        let db = db.clone();
                        tasks.push(tokio::spawn(async move {
                            db.insert((round * 100 + i).to_be_bytes(), vec![7; 4096])
                                .unwrap();
                            super::flush(&db).await.unwrap();
                        }));
                    }
                    let mut batch = sled::Batch::default();
                    batch.insert(&round.to_be_bytes(), vec![1; 512]);
                    db.apply_batch(batch).unwrap();
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
            });
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("200 rounds of syncs and batches finished within a minute");
    }
}

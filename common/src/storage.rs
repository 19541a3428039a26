//! Syncing a sled database from async code.

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

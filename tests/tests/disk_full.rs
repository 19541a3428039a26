//! A relay's own disk full: its data directory on a small disk of its own
//! (a tmpfs, so these tests need root, as the chaos tests do), filled while
//! a peer teaches it numbers and devices log in, then freed.
//!
//! sled takes a write the disk has no room for and fails its next flush,
//! and from then on fails every write until the database is opened again:
//! a relay that let that happen stored nothing more until it restarted, and
//! the restart forgot everything learned since the disk filled.

use std::time::Duration;

use common::link::control::Link;
use common::link::message::Control;
use harness::disk::SmallDisk;
use harness::load::{Secrets, number};
use harness::{Relay, Testbed, mesh_peer};

/// Numbers the peer teaches the relay while its disk is full: about 1.5 MB
/// of records, far more than sled's buffers hold.
const NUMBERS: u64 = 20_000;

/// relay-a with its data directory on a 64 MB disk of its own.
fn relay_on_small_disk(bed: &Testbed) -> (SmallDisk, Relay) {
    let disk = SmallDisk::mount(&bed.path().join("relay-a.data"), "64m")
        .unwrap_or_else(|e| panic!("cannot make relay-a's disk: {e}"));
    (disk, bed.relay("relay-a"))
}

/// One thread of its own, so the peer beats while the test waits.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The peer "bench", linked to the relay: it has sent its snapshot and a
/// ping, and goes on beating (so the link stays up) until dropped.
struct Peer {
    /// Fires when the relay answers the ping: everything is stored.
    stored: Option<tokio::sync::oneshot::Receiver<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Links to `relay` as the peer "bench" and sends it a snapshot of
/// [`NUMBERS`] numbers, then a ping, answered once they are all stored.
async fn teach(relay: &Relay, bed: &Testbed) -> Peer {
    let secrets = Secrets::load(bed.fleet().key_file());
    let mut link: Link = mesh_peer::link(relay, &secrets).await;
    for msg in mesh_peer::snapshot(NUMBERS, 2000) {
        link.writer.send(&msg).await.expect("snapshot sent");
    }
    link.writer
        .send(&Control::Ping { seq: 1 })
        .await
        .expect("ping sent");
    let (stored, pong) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut stored = Some(stored);
        let mut beat = tokio::time::interval(Duration::from_secs(1));
        let mut seq = 1;
        loop {
            tokio::select! {
                msg = link.reader.next() => match msg {
                    Ok(Some(Control::Pong { seq: 1 })) => {
                        if let Some(tx) = stored.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Some(_)) => {}
                    _ => return,
                },
                _ = beat.tick() => {
                    seq += 1;
                    if link.writer.send(&Control::Ping { seq }).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Peer {
        stored: Some(pong),
        task,
    }
}

/// Waits until the relay has answered the peer's first ping.
async fn stored(peer: &mut Peer) {
    let pong = peer.stored.take().expect("waited once");
    tokio::time::timeout(Duration::from_secs(60), pong)
        .await
        .expect("a pong within a minute: everything stored")
        .expect("the link stayed up");
}

#[test]
fn a_full_disk_keeps_connection_information_in_memory_and_stores_it_all_once_freed() {
    let bed = Testbed::new();
    let (disk, mut a) = relay_on_small_disk(&bed);
    let gw = bed.gateway("gw-a", &a);
    let _early = bed.receiver(&gw, "1002", &[]);
    a.wait_route("1002", &["relay-a"]);

    disk.fill().expect("the disk filled");
    let runtime = runtime();
    let mut peer = runtime.block_on(teach(&a, &bed));
    // The status says what waits, and why.
    let status = a.wait_status_contains("store: disk full");
    assert!(status.contains("records wait in memory"), "{status}");
    assert!(status.contains("MB free"), "{status}");
    a.wait_stderr_contains("the disk is full: connection information waits in memory");
    // Routing goes on from memory: the peer's numbers, and a device logging
    // in now, whose fax is delivered.
    let taught = number(1_000_000 + NUMBERS - 1).to_string();
    a.wait_route(&taught, &[mesh_peer::NAME]);
    let _late = bed.receiver(&gw, "1003", &[]);
    a.wait_route("1003", &["relay-a"]);
    bed.faxsend(&gw, "1001", "1003", &[bed.note()])
        .run()
        .assert_delivered();

    disk.free().expect("the disk freed");
    runtime.block_on(stored(&mut peer));
    a.wait_stderr_contains("room on the disk again");
    let status = a.wait_status(|s| !s.contains("store:"));
    assert!(status.contains("peers up: 1"), "{status}");

    // A restart remembers every number, those learned while the disk was full too.
    drop(peer);
    drop(gw);
    a.wait_offline("1003");
    a.restart();
    let directory = a.wait_query("directory", |v| v.is_array());
    let entries = directory.as_array().expect("a directory");
    let from_peer = entries
        .iter()
        .filter(|e| e["home_relay"] == mesh_peer::NAME)
        .count();
    assert_eq!(
        from_peer as u64, NUMBERS,
        "numbers the relay remembers from its peer"
    );
    for n in ["1002", "1003"] {
        assert!(
            entries.iter().any(|e| e["number"] == n),
            "{n} forgotten: {}",
            a.stderr_tail()
        );
    }
}

#[test]
fn a_relay_stopped_on_a_full_disk_says_what_it_could_not_store() {
    let bed = Testbed::new();
    let (disk, mut a) = relay_on_small_disk(&bed);
    disk.fill().expect("the disk filled");
    let runtime = runtime();
    let _peer = runtime.block_on(teach(&a, &bed));
    a.wait_status_contains(&format!(
        "store: disk full, {NUMBERS} records wait in memory"
    ));

    // SIGTERM: the relay does not wait for room that may never come.
    let exit = a.terminate();
    assert_eq!(exit.code(), Some(1), "{}", a.stderr_tail());
    let stderr = a.stderr();
    assert!(
        stderr.contains(&format!(
            "{NUMBERS} records of connection information not stored: the disk is full"
        )),
        "{stderr}"
    );
}

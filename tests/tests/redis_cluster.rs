//! Directory mode on a Redis Cluster and on a Sentinel-watched master (real
//! redis-server processes, started per test on free ports): relays without
//! peer links carry a fax, then the master holding a login is SIGKILLed
//! and calls go on once a replica is promoted, with no login lost, not even
//! one the replica never received.

use std::process::Command;

use harness::sender::via;
use harness::{RedisCluster, RedisSentinel, Relay, Testbed, bin};

/// Long enough that the every-third-of-the-lease refresh cannot be what
/// brings a record back within a test's wait: only the failover rewrite can.
const LONG_LEASE: u64 = 600;

fn relay(bed: &Testbed, flags: &[String], name: &str) -> Relay {
    let mut relay = Relay::start_with(bed.path(), bed.fleet(), name, flags);
    // The status that came with READY=1 may already say so (statuses coalesce).
    if !relay
        .status()
        .is_some_and(|s| s.contains("directory: redis ok"))
    {
        relay.wait_status_contains("directory: redis ok");
    }
    relay
}

fn online(r: Option<&serde_json::Value>) -> bool {
    r.is_some_and(|r| r["online"] == true)
}

#[test]
fn on_a_cluster_a_killed_master_loses_no_login_and_calls_go_on() {
    let bed = Testbed::new();
    let mut cluster = RedisCluster::start(bed.path());
    let flags = cluster.relay_flags(LONG_LEASE);
    let mut a = relay(&bed, &flags, "relay-a");
    let mut b = relay(&bed, &flags, "relay-b");
    let gw_a = bed.gateway("gw-a", &a);
    let gw_b = bed.gateway("gw-b", &b);
    let callee = bed.receiver(&gw_b, "2002", &[]);
    // A device on relay-a's side: its record is relay-a's to keep.
    let _local = bed.receiver(&gw_a, "1002", &[]);
    let record = cluster
        .wait_device("2002", "an online record", online)
        .expect("a record");
    assert_eq!(record["home_relay"], "relay-b");
    a.wait_route("2002", &["relay-b"]);

    let sent = bed
        .faxsend(&gw_a, "1001", "2002", &[bed.note()])
        .arg("--json")
        .run();
    sent.assert_delivered();
    assert_eq!(via(&sent), ["relay-a", "relay-b"]);
    cluster.wait_device("1002", "relay-a's device", online);

    // A login that only the master holding the callee's key receives: its
    // replica is stopped meanwhile, so the promoted replica lacks it.
    let prefix = cluster.prefix().to_owned();
    let key = |n: &str| format!("{prefix}:dev:{n}");
    let dead = cluster.master_of(&key("2002")).expect("a master for 2002");
    let late = (3000..4000)
        .map(|n| n.to_string())
        .find(|n| cluster.master_of(&key(n)) == Some(dead))
        .expect("a number on the same master");
    let replica = cluster.replica_of(dead);
    cluster.pause(replica);
    let _late = bed.receiver(&gw_b, &late, &[]);
    cluster.wait_device(&late, "an online record on the master", online);
    cluster.kill(dead);
    cluster.resume(replica);
    assert_eq!(cluster.wait_failover(&key("2002"), dead), replica);

    // No login lost: relay-b writes its records again on the new master.
    for n in ["2002", late.as_str()] {
        cluster.wait_device(n, "an online record after the failover", online);
    }
    cluster.wait_device("1002", "relay-a's device after the failover", online);
    a.wait_status_contains("directory: redis ok");
    b.wait_status_contains("directory: redis ok");
    // relay-a still hears renewals (its subscription moved if its node died).
    a.wait_route(&late, &["relay-b"]);
    bed.faxsend(&gw_a, "1001", "2002", &[bed.note()])
        .run()
        .assert_delivered();
    bed.faxsend(&gw_a, "1001", &late, &[bed.note()])
        .run()
        .assert_delivered();
    bed.faxsend(&gw_b, "2001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(callee.faxes().len(), 2);
}

#[test]
fn with_sentinel_a_killed_master_loses_no_login_and_calls_go_on() {
    let bed = Testbed::new();
    let mut sentinel = RedisSentinel::start(bed.path());
    let flags = sentinel.relay_flags(LONG_LEASE);
    let mut a = relay(&bed, &flags, "relay-a");
    let mut b = relay(&bed, &flags, "relay-b");
    let gw_a = bed.gateway("gw-a", &a);
    let gw_b = bed.gateway("gw-b", &b);
    let callee = bed.receiver(&gw_b, "2002", &[]);
    // A device on relay-a's side: its record is relay-a's to keep.
    let _local = bed.receiver(&gw_a, "1002", &[]);
    sentinel.wait_device("2002", "an online record", online);
    a.wait_route("2002", &["relay-b"]);
    let sent = bed
        .faxsend(&gw_a, "1001", "2002", &[bed.note()])
        .arg("--json")
        .run();
    sent.assert_delivered();
    assert_eq!(via(&sent), ["relay-a", "relay-b"]);
    sentinel.wait_device("1002", "relay-a's device", online);

    // A login the replica never receives (it is stopped meanwhile).
    sentinel.pause_replica();
    let _late = bed.receiver(&gw_b, "2003", &[]);
    sentinel.wait_device("2003", "an online record on the master", online);
    sentinel.kill_master();
    sentinel.resume_replica();
    sentinel.wait_failover();

    for n in ["2002", "2003"] {
        sentinel.wait_device(n, "an online record after the failover", online);
    }
    sentinel.wait_device("1002", "relay-a's device after the failover", online);
    a.wait_status_contains("directory: redis ok");
    b.wait_status_contains("directory: redis ok");
    a.wait_route("2003", &["relay-b"]);
    bed.faxsend(&gw_a, "1001", "2002", &[bed.note()])
        .run()
        .assert_delivered();
    bed.faxsend(&gw_a, "1001", "2003", &[bed.note()])
        .run()
        .assert_delivered();
    bed.faxsend(&gw_b, "2001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(callee.faxes().len(), 2);
}

#[test]
fn a_bad_directory_ca_file_stops_the_relay_with_a_clear_error() {
    let bed = Testbed::new();
    let ca = bed.path().join("not-a-ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let out = Command::new(bin("relayd"))
        .args(["--name", "relay-a", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(bed.path().join("relay-a.data"))
        .arg("--fleet-key-file")
        .arg(bed.fleet().key_file())
        .args(["--allow-plaintext", "127.0.0.0/8"])
        .args(["--directory", "rediss+cluster://127.0.0.1:1/"])
        .arg("--directory-ca-file")
        .arg(&ca)
        .output()
        .expect("relayd runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "relayd started: {err}");
    assert!(
        err.contains("directory_ca_file") && err.contains("not-a-ca.pem"),
        "{err}"
    );
}

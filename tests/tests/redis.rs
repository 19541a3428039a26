//! Directory database mode: relays keep connection information in a real
//! redis-server (started per test on a free port) and carry calls straight
//! to the callee's home relay, without configured peer links.

use harness::sender::via;
use harness::{Gateway, Pki, RedisServer, Relay, Testbed};

fn relay(bed: &Testbed, redis: &RedisServer, name: &str, lease_secs: u64) -> Relay {
    relay_with(bed, name, &redis.relay_flags(lease_secs))
}

/// relayd with directory `flags`, once it says Redis is reachable.
fn relay_with(bed: &Testbed, name: &str, flags: &[String]) -> Relay {
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

/// Waits for `number`'s online record in Redis and checks its home relay.
#[track_caller]
fn wait_online_at(redis: &RedisServer, number: &str, home: &str) -> serde_json::Value {
    let record = redis
        .wait_device(number, "an online record", |r| {
            r.is_some_and(|r| r["online"] == true)
        })
        .expect("a record");
    assert_eq!(record["home_relay"], home, "{record}");
    record
}

/// A one-page fax from 1001 at `gateway` to `to`, delivered along `path`.
#[track_caller]
fn fax_through(bed: &Testbed, gateway: &Gateway, to: &str, path: &[&str]) {
    let sent = bed
        .faxsend(gateway, "1001", to, &[bed.note()])
        .arg("--json")
        .run();
    sent.assert_delivered();
    assert_eq!(via(&sent), path);
}

#[test]
fn three_relays_without_peer_links_carry_a_fax_through_the_directory() {
    let bed = Testbed::new();
    let redis = RedisServer::start(bed.path());
    let a = relay(&bed, &redis, "relay-a", 30);
    let _b = relay(&bed, &redis, "relay-b", 30);
    let c = relay(&bed, &redis, "relay-c", 30);
    let gw_a = bed.gateway("gw-a", &a);
    let gw_c = bed.gateway("gw-c", &c);
    let callee = bed.receiver(&gw_c, "1003", &[]);

    // The record in Redis names the home relay and the address to dial it at.
    let record = wait_online_at(&redis, "1003", "relay-c");
    // Plaintext: relay-c has no certificate.
    assert_eq!(record["relay_addr"], harness::relay::plain(c.addr()));
    // relay-a hears the renewal through pub/sub: the home relay is the next hop.
    a.wait_route("1003", &["relay-c"]);
    assert_eq!(
        a.query("peers"),
        serde_json::json!([]),
        "no links before a call"
    );

    fax_through(&bed, &gw_a, "1003", &["relay-a", "relay-c"]);
    assert_eq!(callee.faxes().len(), 1);
    // relay-a dialed relay-c for the call and keeps the link for the next.
    a.wait_peer_up("relay-c");
    bed.faxsend(&gw_a, "1001", "1003", &[bed.note()])
        .run()
        .assert_delivered();
    // A number nobody logged in is unknown.
    bed.faxsend(&gw_a, "1001", "1999", &[bed.note()])
        .run()
        .assert_failed(5, &["unknown number", "1999"]);
}

/// With `--directory-cache 2`, relay-a keeps two of relay-c's three
/// numbers in memory: a call to the third asks Redis and pushes out the
/// number called least recently. Every call is delivered all the same.
#[test]
fn a_bounded_cache_keeps_the_numbers_called_last_and_asks_redis_for_the_rest() {
    let bed = Testbed::new();
    let redis = RedisServer::start(bed.path());
    let mut flags = redis.relay_flags(30);
    flags.extend(["--directory-cache".to_owned(), "2".to_owned()]);
    let a = relay_with(&bed, "relay-a", &flags);
    let c = relay(&bed, &redis, "relay-c", 30);
    let gw_a = bed.gateway("gw-a", &a);
    let gw_c = bed.gateway("gw-c", &c);
    let numbers = ["3001", "3002", "3003"];
    let _callees: Vec<_> = numbers
        .iter()
        .map(|n| bed.receiver(&gw_c, n, &[]))
        .collect();
    for n in numbers {
        wait_online_at(&redis, n, "relay-c");
    }
    for n in numbers {
        fax_through(&bed, &gw_a, n, &["relay-a", "relay-c"]);
    }
    let cached = |n: &str| a.entry(n).is_some();
    assert_eq!(
        numbers.map(cached),
        [false, true, true],
        "{}",
        a.query("directory")
    );
    // 3001 again: fetched from Redis, and now 3002 is the one to go.
    fax_through(&bed, &gw_a, "3001", &["relay-a", "relay-c"]);
    assert_eq!(
        numbers.map(cached),
        [true, false, true],
        "{}",
        a.query("directory")
    );
}

/// The directory over TLS (`rediss://` and `--directory-ca-file`, the
/// operator's own CA): two relays without a peer link carry a fax through
/// it, and a relay that does not trust the server's certificate says why
/// in its status and writes nothing.
#[test]
fn a_directory_over_tls_carries_a_fax_and_an_untrusted_server_is_named() {
    let bed = Testbed::new();
    let pki = Pki::create(&bed.path().join("pki"));
    let redis = RedisServer::start_tls(bed.path(), &pki);
    let ca = pki.ca_file();
    let flags = |trust: bool| redis.tls_relay_flags(30, trust.then_some(ca.as_path()));
    let a = relay_with(&bed, "relay-a", &flags(true));
    let c = relay_with(&bed, "relay-c", &flags(true));
    let gw_a = bed.gateway("gw-a", &a);
    let gw_c = bed.gateway("gw-c", &c);
    let callee = bed.receiver(&gw_c, "1003", &[]);
    // Written over TLS, read here on the plaintext port.
    wait_online_at(&redis, "1003", "relay-c");
    a.wait_route("1003", &["relay-c"]);
    fax_through(&bed, &gw_a, "1003", &["relay-a", "relay-c"]);
    assert_eq!(callee.faxes().len(), 1);

    // Without the CA file the system's roots do not know the server.
    let mut stranger = Relay::start_with(bed.path(), bed.fleet(), "relay-x", &flags(false));
    let status = stranger.wait_status_contains("directory: redis unreachable");
    assert!(status.contains("certificate"), "{status}");
    let gw_x = bed.gateway("gw-x", &stranger);
    let _device = bed.receiver(&gw_x, "1009", &[]);
    stranger.wait_stderr_contains("logged in number=1009");
    assert_eq!(
        redis.device("1009"),
        None,
        "relay-x wrote to a server it does not trust"
    );
}

#[test]
fn a_killed_relays_devices_leave_redis_after_the_lease() {
    let bed = Testbed::new();
    let redis = RedisServer::start(bed.path());
    let a = relay(&bed, &redis, "relay-a", 2);
    let mut b = relay(&bed, &redis, "relay-b", 2);
    let gw_a = bed.gateway("gw-a", &a);
    let gw_b = bed.gateway("gw-b", &b);
    let _callee = bed.receiver(&gw_b, "2002", &[]);
    redis.wait_device("2002", "an online record", |r| {
        r.is_some_and(|r| r["online"] == true)
    });
    let relay_key = format!("{}:relay:relay-b", redis.prefix());
    assert_eq!(redis.get(&relay_key), Some(harness::relay::plain(b.addr())));
    a.wait_route("2002", &["relay-b"]);

    b.kill();
    // Nobody refreshes the lease: the record and the relay key expire.
    redis.wait_device("2002", "no record", |r| r.is_none());
    assert_eq!(redis.get(&relay_key), None);
    // relay-a still has 2002 cached; dialing relay-b fails, the record is
    // looked up again, found gone, and the caller hears why.
    let sent = bed.faxsend(&gw_a, "1001", "2002", &[bed.note()]).run();
    sent.assert_failed(3, &["relay-b", "left the directory"]);
    let entry = a.entry("2002");
    assert!(entry.is_none(), "relay-a still lists 2002: {entry:?}");
}

#[test]
fn while_redis_is_down_cached_calls_go_on_and_devices_are_written_again_when_it_returns() {
    let bed = Testbed::new();
    let mut redis = RedisServer::start(bed.path());
    let mut a = relay(&bed, &redis, "relay-a", 3);
    let b = relay(&bed, &redis, "relay-b", 3);
    let gw_a = bed.gateway("gw-a", &a);
    let gw_b = bed.gateway("gw-b", &b);
    let _callee = bed.receiver(&gw_b, "2002", &[]);
    let _local = bed.receiver(&gw_a, "1002", &[]);
    a.wait_route("2002", &["relay-b"]);

    redis.stop();
    // The relay says what is wrong, in its status and its log.
    a.wait_status_contains("directory: redis unreachable");
    assert!(
        a.stderr().contains("directory: redis unreachable"),
        "{}",
        a.stderr_tail()
    );
    // Calls between cached devices still work: a to b (dialed from the
    // cached address), and b to a.
    let sent = bed
        .faxsend(&gw_a, "1001", "2002", &[bed.note()])
        .arg("--json")
        .run();
    sent.assert_delivered();
    assert_eq!(via(&sent), ["relay-a", "relay-b"]);
    // A device logging in meanwhile is kept, and written once Redis is back.
    let _late = bed.receiver(&gw_b, "2003", &[]);

    // The new server starts empty (no RDB, no AOF): every record found in
    // it from now on was written again by a relay. (Whether it is still
    // empty when asked is a race the relays may win, so it is not asked.)
    redis.start_again();
    a.wait_status_contains("directory: redis ok");
    for n in ["1002", "2002", "2003"] {
        redis.wait_device(n, "an online record written again", |r| {
            r.is_some_and(|r| r["online"] == true)
        });
    }
    a.wait_route("2003", &["relay-b"]);
    bed.faxsend(&gw_a, "1001", "2003", &[bed.note()])
        .run()
        .assert_delivered();
    bed.faxsend(&gw_b, "2001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
}

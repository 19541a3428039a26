//! The relay mesh: connection information shared between relays, and calls
//! carried from the caller's relay to the callee's, through chains of relays.

use harness::sender::via;
use harness::{Relay, Testbed};

#[test]
fn a_call_crosses_two_peered_relays() {
    let bed = Testbed::new();
    let a = bed.relay("relay-a");
    let b = bed.peered_relay("relay-b", &[&a]);
    let gw1 = bed.gateway("gw1", &a);
    let gw2 = bed.gateway("gw2", &b);
    let callee = bed.receiver(&gw2, "1002", &[]);
    a.wait_route("1002", &["relay-b"]);

    let sent = bed
        .faxsend(&gw1, "1001", "1002", &[bed.note()])
        .arg("--json")
        .run();
    sent.assert_delivered();
    assert_eq!(via(&sent), ["relay-a", "relay-b"]);
    let fax = &callee.faxes()[0];
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fax.with_extension("json")).expect("json beside the fax"),
    )
    .expect("valid json");
    assert_eq!(meta["relays"], serde_json::json!(["relay-a", "relay-b"]));
}

#[test]
fn a_line_of_three_relays_learns_and_carries_through_the_middle() {
    let bed = Testbed::new();
    let a = bed.relay("relay-a");
    let b = bed.peered_relay("relay-b", &[&a]);
    let c = bed.peered_relay("relay-c", &[&b]);
    let gw1 = bed.gateway("gw1", &a);
    let gw3 = bed.gateway("gw3", &c);
    let _callee = bed.receiver(&gw3, "1003", &[]);

    // A is not C's peer, yet it learns 1003 through B, with the path.
    let entry = a.wait_route("1003", &["relay-b", "relay-c"]);
    assert_eq!(entry["home_relay"], "relay-c");
    assert_eq!(entry["next_hop"], "relay-b");

    let sent = bed
        .faxsend(&gw1, "1001", "1003", &[bed.note()])
        .arg("--json")
        .run();
    sent.assert_delivered();
    assert_eq!(via(&sent), ["relay-a", "relay-b", "relay-c"]);
    assert!(
        a.stderr().contains("snapshot received"),
        "{}",
        a.stderr_tail()
    );
}

/// A ring a - b - c - d - a, with `1003` behind c and the caller behind a.
fn ring(bed: &Testbed) -> (Relay, Relay, Relay, Relay) {
    let a = bed.relay("relay-a");
    let b = bed.peered_relay("relay-b", &[&a]);
    let c = bed.peered_relay("relay-c", &[&b]);
    let d = bed.peered_relay("relay-d", &[&c, &a]);
    (a, b, c, d)
}

#[test]
fn a_ring_of_four_takes_the_shortest_path_without_loops() {
    let bed = Testbed::new();
    let (a, b, c, d) = ring(&bed);
    let gw_a = bed.gateway("gw-a", &a);
    let gw_c = bed.gateway("gw-c", &c);
    let _callee = bed.receiver(&gw_c, "1003", &[]);

    // Two paths of two hops: the tie goes to the smaller peer name.
    a.wait_route("1003", &["relay-b", "relay-c"]);
    // Every relay has a loop-free path: none holds its own name.
    for r in [&a, &b, &c, &d] {
        let dir = r.query("directory");
        for e in dir.as_array().expect("a directory") {
            let path = e["path"].as_array().expect("a path");
            let own = serde_json::Value::from(r.name());
            if e["next_hop"] != "local" {
                assert!(
                    !path.contains(&own),
                    "{} routes through itself: {e}",
                    r.name()
                );
            }
        }
    }
    let sent = bed
        .faxsend(&gw_a, "1001", "1003", &[bed.note()])
        .arg("--json")
        .run();
    sent.assert_delivered();
    assert_eq!(via(&sent), ["relay-a", "relay-b", "relay-c"]);
}

#[test]
fn when_a_middle_relay_dies_calls_take_the_other_way_round_the_ring() {
    let bed = Testbed::new();
    let (a, mut b, c, _d) = ring(&bed);
    let gw_a = bed.gateway("gw-a", &a);
    let gw_c = bed.gateway("gw-c", &c);
    let _callee = bed.receiver(&gw_c, "1003", &[]);
    a.wait_route("1003", &["relay-b", "relay-c"]);

    b.kill();
    // A withdraws the route through b and fails over to the one through d.
    a.wait_route("1003", &["relay-d", "relay-c"]);
    let sent = bed
        .faxsend(&gw_a, "1001", "1003", &[bed.note()])
        .arg("--json")
        .run();
    sent.assert_delivered();
    assert_eq!(via(&sent), ["relay-a", "relay-d", "relay-c"]);
}

#[test]
fn when_the_only_path_dies_calls_fail_clearly_and_come_back_with_it() {
    let bed = Testbed::new();
    let a = bed.relay("relay-a");
    let mut b = bed.peered_relay("relay-b", &[&a]);
    let c = bed.peered_relay("relay-c", &[&b]);
    let gw1 = bed.gateway("gw1", &a);
    let gw3 = bed.gateway("gw3", &c);
    let _callee = bed.receiver(&gw3, "1003", &[]);
    a.wait_route("1003", &["relay-b", "relay-c"]);

    b.kill();
    a.wait_no_route("1003");
    let sent = bed.faxsend(&gw1, "1001", "1003", &[bed.note()]).run();
    sent.assert_failed(3, &["unreachable", "no path to relay relay-c"]);

    // b comes back; its peers resync by snapshot and the path is whole again.
    b.start_again();
    a.wait_route("1003", &["relay-b", "relay-c"]);
    bed.faxsend(&gw1, "1001", "1003", &[bed.note()])
        .run()
        .assert_delivered();
}

#[test]
fn a_restarted_peer_knows_the_fleet_at_once_and_converges() {
    let bed = Testbed::new();
    let mut a = bed.relay("relay-a");
    let b = bed.peered_relay("relay-b", &[&a]);
    let gw_b = bed.gateway("gw-b", &b);
    let _first = bed.receiver(&gw_b, "2001", &[]);
    a.wait_route("2001", &["relay-b"]);

    assert!(a.terminate().success());
    // While a is down, another device logs in at b.
    let _second = bed.receiver(&gw_b, "2002", &[]);
    a.start_again();
    // Before any peer link, a already knows 2001 from its own store: it says
    // so when it starts listening.
    assert!(a.stderr().contains("known=1"), "{}", a.stderr_tail());
    let known = a.entry("2001").expect("2001 remembered across the restart");
    assert_eq!(known["home_relay"], "relay-b");
    // b redials; the snapshot brings 2002, which a never heard of before.
    b.wait_peer_up("relay-a");
    a.wait_route("2002", &["relay-b"]);
    a.wait_route("2001", &["relay-b"]);
    let gw_a = bed.gateway("gw-a", &a);
    bed.faxsend(&gw_a, "1001", "2002", &[bed.note()])
        .run()
        .assert_delivered();
}

#[test]
fn a_relay_with_the_wrong_mesh_key_is_refused_and_learns_nothing() {
    let bed = Testbed::new();
    let a = bed.relay("relay-a");
    let gw = bed.gateway("gw", &a);
    let _callee = bed.receiver(&gw, "1002", &[]);
    let other_key = bed.path().join("other.key");
    std::fs::write(&other_key, "a mesh key that is not the fleet's\n").expect("key written");
    let extra = [
        "--peer".to_owned(),
        harness::relay::plain(a.addr()),
        "--mesh-key-file".to_owned(),
        other_key.display().to_string(),
    ];
    let stranger = Relay::start_with(bed.path(), bed.fleet(), "stranger", &extra);

    stranger.wait_query("peers", |v| {
        v.as_array().is_some_and(|a| {
            a.iter().any(|p| {
                p["state"] == "down"
                    && p["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("wrong mesh key"))
            })
        })
    });
    assert_eq!(
        stranger.query("directory"),
        serde_json::json!([]),
        "the stranger learned numbers"
    );
    let peers = a.query("peers");
    assert_eq!(
        peers,
        serde_json::json!([]),
        "relay-a lists the stranger as a peer"
    );
    assert!(a.stderr().contains("wrong mesh key"), "{}", a.stderr_tail());
}

/// Starts relayd `name` peered with `peers`, in its own subdirectory
/// `sub` of the testbed (so a second relay of a name has its own data dir
/// and logs: another relay, not a restart of the first).
#[track_caller]
fn relay_in(bed: &Testbed, sub: &str, name: &str, peers: &[&Relay]) -> Relay {
    let dir = bed.path().join(sub);
    std::fs::create_dir_all(&dir).expect("a dir for the relay");
    let addrs: Vec<_> = peers.iter().map(|p| p.addr()).collect();
    Relay::start_peered(&dir, bed.fleet(), name, &addrs)
}

/// Waits until `relay` has logged `text` more than `seen` times.
#[track_caller]
fn wait_logged_again(relay: &Relay, text: &str, seen: usize) {
    let deadline = std::time::Instant::now() + harness::daemon::WAIT;
    while relay.stderr().matches(text).count() <= seen {
        if std::time::Instant::now() > deadline {
            relay.fail(&format!("did not log {text:?} again"));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The peers named `name` that `relay` lists.
fn peers_named(relay: &Relay, name: &str) -> Vec<serde_json::Value> {
    let peers = relay.query("peers");
    let all = peers.as_array().cloned().unwrap_or_default();
    all.into_iter().filter(|p| p["name"] == name).collect()
}

const NAME_IN_USE_THERE: &str = r#"refused this link: relay name "relay-b" is already used by another relay there; give each relay its own --name"#;

#[test]
fn a_second_relay_with_a_name_in_use_is_refused_and_the_first_keeps_its_routes() {
    let bed = Testbed::new();
    // The first relay-b, with 1001 behind it; relay-c dials it. (Before the
    // name rule, a second relay-b dialing c replaced this link, as the
    // duplicate rule keeps the link dialed by the smaller name, and c sent
    // 1001's calls to the second relay-b.)
    let first = bed.relay("relay-b");
    let gw_first = bed.gateway("gw-first", &first);
    let _callee = bed.receiver(&gw_first, "1001", &[]);
    let c = bed.peered_relay("relay-c", &[&first]);
    c.wait_route("1001", &["relay-b"]);

    // Another relay named relay-b (its own data dir), with 1002, dials c.
    let second = relay_in(&bed, "second", "relay-b", &[&c]);
    let gw_second = bed.gateway("gw-second", &second);
    let _other = bed.receiver(&gw_second, "1002", &[]);
    let seen = second.stderr().matches(NAME_IN_USE_THERE).count();
    // A refusal after 1002 is online there: the link it would have come by.
    wait_logged_again(&second, NAME_IN_USE_THERE, seen);

    // Both logs say why, naming the relay name and the addresses.
    let refused_at = format!("peer plain://{} {NAME_IN_USE_THERE}", c.addr());
    assert!(
        second.stderr().contains(&refused_at),
        "{}",
        second.stderr_tail()
    );
    let log = c.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("refusing peer link from 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no refusal in relay-c's log:\n{}", c.stderr_tail()));
    let expected = format!(
        r#"relay name "relay-b" is already used by another relay (linked to plain://{}); give each relay its own --name"#,
        first.addr()
    );
    assert!(line.contains(&expected), "{line}");
    let down = second.wait_query("peers", |v| {
        v.as_array().is_some_and(|a| {
            a.iter().any(|p| {
                p["state"] == "down"
                    && p["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("already used by another relay there"))
            })
        })
    });
    assert_eq!(down.as_array().map(Vec::len), Some(1), "{down}");

    // c kept the first: one relay-b, the one it dialed, and only its routes.
    let linked = peers_named(&c, "relay-b");
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(linked[0]["address"], harness::relay::plain(first.addr()));
    assert_eq!(linked[0]["state"], "up");
    assert!(
        c.entry("1002").is_none(),
        "c learned the second relay-b's number"
    );
    c.wait_route("1001", &["relay-b"]);
    let gw_c = bed.gateway("gw-c", &c);
    let sent = bed
        .faxsend(&gw_c, "1003", "1001", &[bed.note()])
        .arg("--json")
        .run();
    sent.assert_delivered();
    assert_eq!(via(&sent), ["relay-c", "relay-b"]);
}

#[test]
fn a_relay_dialing_two_relays_of_one_name_links_one_and_refuses_the_other() {
    let bed = Testbed::new();
    let one = relay_in(&bed, "one", "relay-b", &[]);
    let two = relay_in(&bed, "two", "relay-b", &[]);
    let gw_one = bed.gateway("gw-one", &one);
    let gw_two = bed.gateway("gw-two", &two);
    let _r1 = bed.receiver(&gw_one, "1001", &[]);
    let _r2 = bed.receiver(&gw_two, "1002", &[]);
    let c = Relay::start_peered(
        bed.path(),
        bed.fleet(),
        "relay-c",
        &[one.addr(), two.addr()],
    );

    // c dials both at once: whichever links first keeps the name.
    let peers = c.wait_query("peers", |v| {
        v.as_array().is_some_and(|a| {
            a.len() == 2
                && a.iter().any(|p| p["state"] == "up")
                && a.iter().any(|p| {
                    p["state"] == "down"
                        && p["last_error"].as_str().is_some_and(|e| {
                            e.contains(r#"relay name "relay-b" is already used by another relay"#)
                        })
                })
        })
    });
    let up = peers
        .as_array()
        .and_then(|a| a.iter().find(|p| p["state"] == "up"))
        .expect("one link up");
    let (winner, loser, number, other) = if up["address"] == harness::relay::plain(one.addr()) {
        (&one, &two, "1001", "1002")
    } else {
        (&two, &one, "1002", "1001")
    };
    assert_eq!(up["address"], harness::relay::plain(winner.addr()));
    c.wait_stderr_contains(&format!(
        r#"refusing peer link to plain://{}: relay name "relay-b" is already used by another relay (linked to plain://{})"#,
        loser.addr(),
        winner.addr()
    ));
    loser.wait_stderr_contains(NAME_IN_USE_THERE);

    // Routes come from the winner only.
    c.wait_route(number, &["relay-b"]);
    assert!(
        c.entry(other).is_none(),
        "c learned {other} from the other relay-b"
    );
    let gw_c = bed.gateway("gw-c", &c);
    bed.faxsend(&gw_c, "1003", number, &[bed.note()])
        .run()
        .assert_delivered();
}

#[test]
fn a_relay_with_our_own_name_is_refused_with_the_reason_in_both_logs() {
    let bed = Testbed::new();
    let a = bed.relay("relay-a");
    let twin = relay_in(&bed, "twin", "relay-a", &[&a]);
    let log = a.wait_stderr_contains("refusing peer link from 127.0.0.1:");
    assert!(
        log.contains(
            r#"relay name "relay-a" is this relay's own name; give each relay its own --name"#
        ),
        "{}",
        a.stderr_tail()
    );
    twin.wait_stderr_contains(&format!(
        r#"peer plain://{} refused this link: relay name "relay-a" is the name of the relay there too; give each relay its own --name"#,
        a.addr()
    ));
    assert_eq!(a.query("peers"), serde_json::json!([]));
}

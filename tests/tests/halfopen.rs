//! Half-open links: a peer that vanishes without a FIN (here: stopped with
//! SIGSTOP, so its kernel still acknowledges every segment and only the
//! heartbeats can tell) is declared dead after three silent heartbeats and
//! cleaned up, and what depended on it recovers.
//!
//! Heartbeats are short here (`--heartbeat-secs 0.5`, dead after 1.5 s);
//! every wait is on state the daemons report, never a sleep.

use std::net::SocketAddr;

use harness::{Gateway, Relay, Testbed};

const HEARTBEAT: [&str; 2] = ["--heartbeat-secs", "0.5"];

fn flags(extra: &[&str]) -> Vec<String> {
    HEARTBEAT
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

/// gatewayd `name` with short heartbeats, dialing `relays` in order; returns
/// once it is linked to one.
#[track_caller]
fn linked_gateway(bed: &Testbed, name: &str, relays: &[SocketAddr]) -> Gateway {
    let mut gw = Gateway::start_with(bed.path(), name, relays, &HEARTBEAT);
    gw.wait_linked();
    gw
}

/// Waits until `daemon` has logged that it found a `who` silent: the link
/// went for want of heartbeats, not for a FIN or a reset.
#[track_caller]
fn wait_found_silent(daemon: &harness::Daemon, who: &str) {
    daemon.wait_stderr_contains(&format!("{who} silent for"));
}

#[test]
fn a_stopped_gateway_is_declared_dead_its_devices_go_offline_and_come_back_with_it() {
    let bed = Testbed::new();
    let relay = Relay::start_with(bed.path(), bed.fleet(), "relay-a", &flags(&[]));
    let gw1 = linked_gateway(&bed, "gw1", &[relay.addr()]);
    let mut gw2 = linked_gateway(&bed, "gw2", &[relay.addr()]);
    let _callee = bed.receiver(&gw2, "1002", &HEARTBEAT);
    let _neighbour = bed.receiver(&gw1, "1003", &HEARTBEAT);
    relay.wait_route("1002", &["relay-a"]);

    gw2.signal(libc::SIGSTOP);

    relay.wait_offline("1002");
    wait_found_silent(&relay, "peer");
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_failed(6, &["offline", "1002"]);
    // The relay still carries every other call.
    bed.faxsend(&gw1, "1001", "1003", &[bed.note()])
        .run()
        .assert_delivered();

    // Back from the dead, the gateway finds its link closed, links again and
    // logs its device in again.
    gw2.signal(libc::SIGCONT);
    relay.wait_route("1002", &["relay-a"]);
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
}

#[test]
fn a_stopped_relay_is_left_for_the_next_one_and_its_devices_are_reachable_again() {
    let bed = Testbed::new();
    let relay_a = Relay::start_with(bed.path(), bed.fleet(), "relay-a", &flags(&[]));
    let peer = harness::relay::plain(relay_a.addr());
    let relay_b = Relay::start_with(
        bed.path(),
        bed.fleet(),
        "relay-b",
        &flags(&["--peer", &peer]),
    );
    relay_b.wait_peer_up("relay-a");
    let relays = [relay_a.addr(), relay_b.addr()];
    let mut gw1 = linked_gateway(&bed, "gw1", &relays);
    let gw2 = linked_gateway(&bed, "gw2", &[relay_b.addr()]);
    let _callee = bed.receiver(&gw1, "1002", &HEARTBEAT);
    relay_b.wait_route("1002", &["relay-a"]);

    let mut relay_a = relay_a;
    relay_a.signal(libc::SIGSTOP);

    gw1.wait_status_contains("linked to relay relay-b");
    wait_found_silent(&gw1, "relay");
    // The other relay drops its peer link the same way.
    wait_found_silent(&relay_b, "peer");
    relay_b.wait_route("1002", &["relay-b"]);
    let sent = bed
        .faxsend(&gw2, "1001", "1002", &[bed.note()])
        .arg("--json")
        .run();
    sent.assert_delivered();
    assert_eq!(
        sent.report()["via"],
        serde_json::json!(["relay-b"]),
        "{sent}"
    );
}

#[test]
fn a_stopped_device_is_withdrawn_by_its_gateway() {
    let bed = Testbed::new();
    let relay = Relay::start_with(bed.path(), bed.fleet(), "relay-a", &flags(&[]));
    let gw1 = linked_gateway(&bed, "gw1", &[relay.addr()]);
    let mut gw2 = linked_gateway(&bed, "gw2", &[relay.addr()]);
    let mut callee = bed.receiver(&gw2, "1002", &HEARTBEAT);
    gw2.wait_devices_online(1);
    relay.wait_route("1002", &["relay-a"]);

    callee.signal(libc::SIGSTOP);

    gw2.wait_devices_online(0);
    wait_found_silent(&gw2, "device");
    relay.wait_offline("1002");
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_failed(6, &["offline", "1002"]);
}

//! Restarts: relayd keeps what it knew, and gateways find it again.

use harness::Testbed;

#[test]
fn restarted_relay_knows_a_number_it_saw_so_callers_hear_offline() {
    let bed = Testbed::new();
    let mut relay = bed.relay("relay-a");
    let mut gw1 = bed.gateway("gw1", &relay);
    let mut gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);

    // The relay stops while 1002 is logged in, and the device is gone by
    // the time the relay is back: only the relay's data dir remembers 1002.
    assert!(relay.terminate().success(), "{}", relay.stderr_tail());
    gw1.wait_unlinked();
    callee.kill();
    gw2.wait_devices_online(0);
    relay.start_again();
    gw1.wait_linked();

    let sent = bed.faxsend(&gw1, "1001", "1002", &[bed.note()]).run();
    sent.assert_failed(6, &["offline", "1002"]);
    // And a number it never saw is still unknown.
    let sent = bed.faxsend(&gw1, "1001", "1003", &[bed.note()]).run();
    sent.assert_failed(5, &["unknown number", "1003"]);
}

#[test]
fn gateway_relinks_after_relay_restart_and_its_devices_get_calls() {
    let bed = Testbed::new();
    let mut relay = bed.relay("relay-a");
    let mut gw1 = bed.gateway("gw1", &relay);
    let mut gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    gw2.wait_devices_online(1);
    callee.take_notifications();

    relay.restart();
    for gw in [&mut gw1, &mut gw2] {
        gw.wait_unlinked();
        gw.wait_linked();
    }

    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(callee.wait_faxes(1).len(), 1);
    // The gateway logged the device in again; the device itself never had to.
    assert!(callee.is_running());
    let again: Vec<_> = callee.take_notifications();
    assert!(again.is_empty(), "faxrecv logged in again: {again:?}");
}

#[test]
fn device_logs_in_again_after_its_gateway_restarts() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let mut gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);

    gw2.restart();
    gw2.wait_linked();
    // faxrecv says so on its notify socket when it is logged in again.
    callee.wait_status_contains(&format!(
        "logged in as 1002 at relay relay-a via {}",
        gw2.addr()
    ));
    gw2.wait_devices_online(1);

    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(callee.wait_faxes(1).len(), 1);
}

//! The daemons as an operator sees them: clean stops, and resilience to a
//! peer that sends garbage.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use harness::{Testbed, WAIT};

#[test]
fn sigterm_stops_relayd_gatewayd_and_faxrecv_cleanly() {
    let bed = Testbed::new();
    let mut relay = bed.relay("relay-a");
    let mut gw = bed.gateway("gw1", &relay);
    let mut callee = bed.receiver(&gw, "1002", &[]);

    // The relay first, while a gateway is linked to it; then the gateway,
    // while a device is linked to it.
    for daemon in [&mut *relay, &mut *gw] {
        let status = daemon.terminate();
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            daemon.name(),
            daemon.stderr_tail()
        );
        assert!(
            daemon.stopping_seen(),
            "{} sent no STOPPING=1",
            daemon.name()
        );
    }
    let status = callee.terminate();
    assert!(
        status.success(),
        "faxrecv exited with {status}:\n{}",
        callee.stderr_tail()
    );
}

/// Sends `garbage` on a raw connection to `addr` and waits for the peer to
/// close it (end of stream or reset), failing if it stays open.
fn send_garbage_and_see_it_closed(addr: std::net::SocketAddr, garbage: &[u8]) {
    let closed =
        |e: &std::io::Error| matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe);
    let mut raw = TcpStream::connect(addr).expect("the relay accepts connections");
    match raw.write_all(garbage) {
        Ok(()) => {}
        // Closed before it read everything: that is what we wait for.
        Err(e) if closed(&e) => return,
        Err(e) => panic!("sending garbage to the relay: {e}"),
    }
    raw.set_read_timeout(Some(WAIT)).expect("a read timeout");
    let mut buf = [0u8; 4096];
    loop {
        match raw.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if closed(&e) => return,
            Err(e) => panic!("the relay kept a link with garbage open ({e})"),
        }
    }
}

#[test]
fn garbage_on_one_link_closes_that_link_not_the_relay() {
    let bed = Testbed::new();
    let mut relay = bed.relay("relay-a");
    let mut gw1 = bed.gateway("gw1", &relay);
    let mut gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);

    send_garbage_and_see_it_closed(relay.addr(), b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n");
    // A multiplexer header (version 0, data, SYN, stream 1) claiming 4 GiB.
    let mut huge = vec![0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
    huge.extend(std::iter::repeat_n(0xa5, 64 * 1024));
    send_garbage_and_see_it_closed(relay.addr(), &huge);
    // The gateway's device side reads the same links.
    send_garbage_and_see_it_closed(gw1.addr(), b"GET / HTTP/1.1\r\n\r\n");
    send_garbage_and_see_it_closed(gw1.addr(), &huge);

    assert!(relay.is_running(), "relayd died:\n{}", relay.stderr_tail());
    assert!(gw1.is_running(), "gatewayd died:\n{}", gw1.stderr_tail());
    for gw in [&mut gw1, &mut gw2] {
        let lost = gw.take_notifications().into_iter().filter_map(|n| n.status);
        let lost: Vec<String> = lost.filter(|s| s.contains("no relay link")).collect();
        assert!(
            lost.is_empty(),
            "{} lost its relay link: {lost:?}",
            gw.name()
        );
    }
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(callee.wait_faxes(1).len(), 1);
}

#[test]
fn relayd_without_a_stderr_still_works_and_stops_on_sigterm() {
    // As when the journal it logs to goes away: every log line fails to write.
    let bed = Testbed::new();
    let mut relay = harness::Relay::start_with_stderr_closed(bed.path(), bed.fleet(), "relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let _callee = bed.receiver(&gw2, "1002", &[]);
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();

    let status = relay.terminate();
    assert!(status.success(), "relayd exited with {status}");
}

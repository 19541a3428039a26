//! Calls that do not go through, each with its documented faxsend exit code
//! and a message that says why.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::PathBuf;

use common::codec::Resolution;
use harness::images::{read_fax, sent_pages, text_bitmap, write_tiff};
use harness::{FaxSend, Gateway, Receiver, Relay, Testbed};

/// relay-a with a gateway for callers (gw1) and one for callees (gw2).
fn network(bed: &Testbed) -> (Relay, Gateway, Gateway) {
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    (relay, gw1, gw2)
}

/// A short three-page document.
fn three_pages(bed: &Testbed) -> PathBuf {
    let pages: Vec<_> = (1..=3)
        .map(|seed| text_bitmap(seed, 1728, 300, Resolution::Fine))
        .collect();
    write_tiff(&bed.path().join("three.tif"), &pages)
}

#[test]
fn unknown_number_exits_5() {
    let bed = Testbed::new();
    let (_relay, gw1, _gw2) = network(&bed);
    let sent = bed.faxsend(&gw1, "1001", "1999", &[bed.note()]).run();
    sent.assert_failed(5, &["unknown number", "1999"]);
}

#[test]
fn number_whose_device_stopped_is_offline_exit_6() {
    let bed = Testbed::new();
    let (_relay, gw1, mut gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    gw2.wait_devices_online(1);
    assert!(callee.terminate().success(), "{}", callee.stderr_tail());
    gw2.wait_devices_online(0);

    let sent = bed.faxsend(&gw1, "1001", "1002", &[bed.note()]).run();

    sent.assert_failed(6, &["offline", "1002"]);
}

#[test]
fn busy_device_exits_7() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let callee = bed.receiver(&gw2, "1002", &["--busy"]);
    let sent = bed.faxsend(&gw1, "1001", "1002", &[bed.note()]).run();
    sent.assert_failed(7, &["busy"]);
    assert_eq!(
        callee.files_ending(""),
        Vec::<PathBuf>::new(),
        "a busy device stores nothing"
    );
}

#[test]
fn rejecting_device_exits_8() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let callee = bed.receiver(&gw2, "1002", &["--reject"]);
    let sent = bed.faxsend(&gw1, "1001", "1002", &[bed.note()]).run();
    sent.assert_failed(8, &["rejected", "refuses"]);
    assert_eq!(callee.files_ending(""), Vec::<PathBuf>::new());
}

#[test]
fn hangup_after_first_page_is_a_partial_delivery_exit_9() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let callee = bed.receiver(&gw2, "1002", &["--hangup-after-page", "1"]);
    let document = three_pages(&bed);

    let sent = bed
        .faxsend(&gw1, "1001", "1002", &[document])
        .arg("--json")
        .run();

    sent.assert_failed(9, &["partial delivery"]);
    let report = sent.report();
    assert_eq!(report["result"], "partial", "{sent}");
    assert_eq!(report["pages_confirmed"], 1, "{sent}");
    assert_eq!(report["pages_total"], 3, "{sent}");
    assert_eq!(
        callee.faxes(),
        Vec::<PathBuf>::new(),
        "no complete fax may be stored"
    );
}

#[test]
fn device_taking_fewer_pages_gets_them_and_the_caller_hears_partial_exit_9() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &["--max-pages", "2"]);
    let document = three_pages(&bed);

    let sent = bed
        .faxsend(&gw1, "1001", "1002", std::slice::from_ref(&document))
        .arg("--json")
        .run();

    sent.assert_failed(9, &["partial delivery", "at most 2 pages"]);
    let report = sent.report();
    assert_eq!(report["pages_confirmed"], 2, "{sent}");
    assert_eq!(report["pages_total"], 3, "{sent}");
    let faxes = callee.wait_faxes(1);
    let mut want = sent_pages(&[document]);
    want.truncate(2);
    harness::images::assert_same_pages(&read_fax(&faxes[0]), &want);
}

#[test]
fn wrong_secret_exits_4() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let _callee = bed.receiver(&gw2, "1002", &[]);
    let wrong = bed.fleet().wrong_secret_file("1001");

    let sent = FaxSend::new(
        bed.path(),
        gw1.addr(),
        "1001",
        &wrong,
        "1002",
        &[bed.note()],
    )
    .run();

    sent.assert_failed(4, &["not authorized", "1001"]);
}

#[test]
fn faxrecv_with_a_wrong_secret_exits_4() {
    let bed = Testbed::new();
    let (_relay, _gw1, gw2) = network(&bed);
    let wrong = bed.fleet().wrong_secret_file("1002");

    let mut callee = Receiver::spawn(bed.path(), &wrong, gw2.addr(), "1002", &[]);

    assert_eq!(
        callee.wait_exit().code(),
        Some(4),
        "{}",
        callee.stderr_tail()
    );
    let said = callee.stderr();
    assert!(said.contains("wrong secret"), "faxrecv said:\n{said}");
}

#[test]
fn closed_gateway_port_exits_3() {
    let bed = Testbed::new();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let secret = bed.fleet().secret_file("1001");

    let sent = FaxSend::new(bed.path(), closed, "1001", &secret, "1002", &[bed.note()]).run();

    sent.assert_failed(3, &["cannot reach gateway", &closed.to_string()]);
}

#[test]
fn missing_input_file_exits_2_without_dialing() {
    let bed = Testbed::new();
    // The "gateway" is a socket the test holds: any dial would be queued on it.
    let gateway = TcpListener::bind("127.0.0.1:0").unwrap();
    let missing = bed.path().join("no-such-page.png");
    let secret = bed.fleet().secret_file("1001");

    let sent = FaxSend::new(
        bed.path(),
        gateway.local_addr().unwrap(),
        "1001",
        &secret,
        "1002",
        &[bed.note(), missing.clone()],
    )
    .run();

    sent.assert_failed(2, &[&missing.display().to_string()]);
    gateway.set_nonblocking(true).unwrap();
    let dialed = gateway.accept();
    assert!(
        matches!(&dialed, Err(e) if e.kind() == ErrorKind::WouldBlock),
        "faxsend dialed the gateway despite bad input: {dialed:?}"
    );
}

#[test]
fn callee_that_never_answers_times_out_exit_10() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    // A frozen device: logged in, its link open, but it reads nothing.
    callee.signal(libc::SIGSTOP);

    let sent = bed
        .faxsend(&gw1, "1001", "1002", &[bed.note()])
        .args(["--answer-timeout", "1"])
        .run();

    callee.signal(libc::SIGCONT);
    sent.assert_failed(10, &["timeout", "no answer within 1 s"]);
}

//! Operating the daemons: the admin listener's /metrics counts a call, and
//! SIGTERM during a call lets that call finish before relayd exits 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::codec::Bitmap;
use harness::images::{assert_same_pages, noise_bitmap, read_fax, write_tiff};
use harness::{Daemon, Gateway, Receiver, Testbed, bin};

/// relayd with `--admin 127.0.0.1:0`; returns it, its address and the admin
/// address (from the READY status: `listening on A; admin on B; ...`).
fn relay_with_admin(bed: &Testbed, name: &str) -> (Daemon, SocketAddr, String) {
    let mut cmd = Command::new(bin("relayd"));
    cmd.args([
        "--name",
        name,
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
    ])
    .arg("--data-dir")
    .arg(bed.path().join(format!("{name}.data")))
    .arg("--fleet-key-file")
    .arg(bed.fleet().key_file())
    .args(harness::relay::PLAINTEXT_LOOPBACK);
    let mut daemon = Daemon::spawn(name, cmd, bed.path());
    let status = daemon.wait_ready();
    let addr = daemon.listen_addr(&status);
    let admin = status
        .split("; ")
        .find_map(|part| part.strip_prefix("admin on "))
        .unwrap_or_else(|| daemon.fail(&format!("no admin address in {status:?}")))
        .to_owned();
    (daemon, addr, admin)
}

/// GET `path` from the admin listener; the body of a 200 answer.
fn get(admin: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(admin).expect("the admin listener accepts");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {admin}\r\n\r\n").expect("the request is sent");
    let mut response = String::new();
    tcp.read_to_string(&mut response).expect("a response");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// The value of the sample `series` (name and labels exactly) in a scrape.
fn sample(metrics: &str, series: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls /metrics until `series` reaches `at_least` (counters move when the
/// relay's half of the call ends, a moment after faxsend's).
fn wait_sample(admin: &str, series: &str, at_least: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = get(admin, "/metrics");
        if sample(&metrics, series).is_some_and(|v| v >= at_least) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {at_least}:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_count_a_delivered_call() {
    let bed = Testbed::new();
    let (mut relay, relay_addr, admin) = relay_with_admin(&bed, "relay-a");
    assert!(get(&admin, "/healthz").starts_with("ok"));
    let mut gw1 = Gateway::start(bed.path(), "gw1", &[relay_addr]);
    gw1.wait_linked();
    let mut gw2 = Gateway::start(bed.path(), "gw2", &[relay_addr]);
    gw2.wait_linked();
    let _callee = Receiver::start(bed.path(), bed.fleet(), gw2.addr(), "1002", &[]);

    let before = get(&admin, "/metrics");
    assert_eq!(
        sample(&before, "relayd_calls_total{result=\"relayed\"}"),
        None
    );
    assert_eq!(sample(&before, "relayd_devices_online"), Some(1));

    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    let metrics = wait_sample(&admin, "relayd_calls_total{result=\"relayed\"}", 1);
    assert_eq!(
        sample(&metrics, "relayd_calls_total{result=\"relayed\"}"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "relayd_call_pages_total"),
        Some(1),
        "{metrics}"
    );
    let to_callee = sample(&metrics, "relayd_call_bytes_total{direction=\"to_callee\"}");
    assert!(to_callee.is_some_and(|b| b > 1000), "{metrics}");
    assert!(
        sample(&metrics, "relayd_call_bytes_total{direction=\"to_caller\"}").is_some_and(|b| b > 0),
        "{metrics}"
    );
    // The two gateways (devices link to their gateway).
    assert_eq!(sample(&metrics, "relayd_links"), Some(2), "{metrics}");
    assert_eq!(
        sample(&metrics, "relayd_calls_in_flight"),
        Some(0),
        "{metrics}"
    );

    // A refused call is counted with its reason.
    bed.faxsend(&gw1, "1001", "1009", &[bed.note()]).run();
    let metrics = wait_sample(
        &admin,
        "relayd_calls_total{result=\"refused\",reason=\"unknown_number\"}",
        1,
    );
    assert_eq!(
        sample(&metrics, "relayd_calls_total{result=\"relayed\"}"),
        Some(1)
    );
    assert!(relay.terminate().success());
}

/// Three pages of random pixels (0.8 MB each on the wire) as one bilevel
/// TIFF: faxsend only has to encode them (no image decoding or dithering,
/// which an unoptimised build does slowly), and read by a slow line they
/// keep the call in flight for seconds.
fn noise_document(dir: &Path) -> (PathBuf, Vec<Bitmap>) {
    let pages: Vec<_> = (1..=3).map(|seed| noise_bitmap(seed, 2000)).collect();
    let path = write_tiff(&dir.join("noise.tif"), &pages);
    (path, pages)
}

#[test]
fn sigterm_during_a_call_still_delivers_it() {
    let bed = Testbed::new();
    let (mut relay, relay_addr, admin) = relay_with_admin(&bed, "relay-a");
    let mut gw1 = Gateway::start(bed.path(), "gw1", &[relay_addr]);
    gw1.wait_linked();
    let mut gw2 = Gateway::start(bed.path(), "gw2", &[relay_addr]);
    gw2.wait_linked();
    // About ten seconds for the call: 2.4 MB read at 256 KiB/s.
    let mut callee = Receiver::start(
        bed.path(),
        bed.fleet(),
        gw2.addr(),
        "1002",
        &["--read-rate-kib", "256"],
    );
    let (document, pages) = noise_document(bed.path());

    let send = bed.faxsend(&gw1, "1001", "1002", &[document]).arg("--json");
    let sender = std::thread::spawn(move || send.run());
    // The call is in flight at the relay: then SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = get(&admin, "/metrics");
        if sample(&metrics, "relayd_calls_in_flight") == Some(1) {
            break;
        }
        assert!(
            !sender.is_finished() && Instant::now() < deadline,
            "the call was never seen in flight:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    relay.signal(libc::SIGTERM);
    let sent = sender.join().expect("the faxsend thread");
    sent.assert_delivered();
    assert_eq!(sent.report()["pages_confirmed"], 3, "{}", sent.stdout);
    let exit = relay.wait_exit();
    assert!(exit.success(), "relayd: {exit}\n{}", relay.stderr_tail());
    assert!(relay.stopping_seen(), "no STOPPING=1 from relayd");
    assert!(
        relay.stderr().contains("waiting for calls in flight"),
        "{}",
        relay.stderr_tail()
    );
    let faxes = callee.wait_faxes(1);
    assert_eq!(faxes.len(), 1);
    assert_same_pages(&read_fax(&faxes[0]), &pages);
}

//! TLS on the links that leave the LAN: a fax through two relays over TLS,
//! a gateway that does not trust a relay, plaintext refused unless allowed,
//! certificates reloaded on SIGHUP, and the CA command's files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use harness::images::{assert_same_pages, read_fax, sent_pages};
use harness::pki::tls_command;
use harness::relay::plain;
use harness::{FaxSend, Gateway, Pki, Relay, Testbed, bin};

/// A relay serving TLS only (no plaintext allowed), certificate from `pki`.
#[track_caller]
fn tls_relay(bed: &Testbed, pki: &Pki, name: &str, extra: &[String]) -> Relay {
    let mut flags = pki.relay_flags(name);
    flags.extend_from_slice(extra);
    Relay::start_with(bed.path(), bed.fleet(), name, &flags)
}

/// A gateway dialing `relay` over TLS, trusting the CA file `ca_file`.
#[track_caller]
fn tls_gateway(bed: &Testbed, name: &str, relay: &Relay, ca_file: &Path) -> Gateway {
    let extra = ["--ca-file".to_owned(), ca_file.display().to_string()];
    Gateway::start_dialing(bed.path(), name, &[relay.addr().to_string()], &extra)
}

/// faxsend from 1001 (with its right secret) to 1002, a device dialing a
/// relay directly at `gateway` (`tls://HOST:PORT`), trusting `ca_file`.
fn faxsend_direct(bed: &Testbed, gateway: &str, ca_file: &Path) -> FaxSend {
    FaxSend::with_args(bed.path(), &["--gateway", gateway])
        .arg("--ca-file")
        .arg(ca_file)
        .args(["--from", "1001", "--secret-file"])
        .arg(bed.fleet().secret_file("1001"))
        .args(["--to", "1002"])
        .arg(bed.note())
}

#[test]
fn a_fax_crosses_two_relays_over_tls_pixel_identical() {
    let bed = Testbed::new();
    let pki = Pki::create(&bed.path().join("pki"));
    let a = tls_relay(&bed, &pki, "relay-a", &[]);
    let b = tls_relay(
        &bed,
        &pki,
        "relay-b",
        &["--peer".to_owned(), a.addr().to_string()],
    );
    b.wait_peer_up("relay-a");
    let mut gw1 = tls_gateway(&bed, "gw1", &a, &pki.ca_file());
    let mut gw2 = tls_gateway(&bed, "gw2", &b, &pki.ca_file());
    gw1.wait_linked();
    gw2.wait_linked();
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    a.wait_route("1002", &["relay-b"]);

    let document = [bed.note()];
    let sent = bed.faxsend(&gw1, "1001", "1002", &document).run();
    sent.assert_delivered();
    let faxes = callee.wait_faxes(1);
    assert_same_pages(&read_fax(&faxes[0]), &sent_pages(&document));
    // Every link that left a LAN was TLS: the relays say so per link.
    a.wait_stderr_contains("scheme=tls");
    for relay in [&a, &b] {
        assert!(
            !relay.stderr().contains("scheme=plain"),
            "{} took a plaintext link:\n{}",
            relay.name(),
            relay.stderr_tail()
        );
    }
}

#[test]
fn a_gateway_that_does_not_trust_the_relay_refuses_it() {
    let bed = Testbed::new();
    let pki = Pki::create(&bed.path().join("pki"));
    let stranger = Pki::create(&bed.path().join("other-pki"));
    let relay = tls_relay(&bed, &pki, "relay-a", &[]);
    let gw = tls_gateway(&bed, "gw", &relay, &stranger.ca_file());

    // The operator reads why in the gateway's log and status.
    let log = gw.wait_stderr_contains("relay unreachable");
    assert!(
        log.contains(&format!("TLS with {} failed", relay.addr())),
        "{log}"
    );
    assert!(log.contains("check --ca-file"), "{log}");
    assert!(gw.status().unwrap_or_default().contains("no relay link"));
    // A device behind it cannot log in, and hears that there is no relay.
    bed.faxsend(&gw, "1001", "1002", &[bed.note()])
        .run()
        .assert_failed(3, &["the gateway cannot reach any relay"]);
    assert!(
        !gw.stderr().contains("linked to relay"),
        "{}",
        gw.stderr_tail()
    );
}

#[test]
fn plaintext_is_refused_unless_allowed_for_the_address() {
    let bed = Testbed::new();
    let pki = Pki::create(&bed.path().join("pki"));
    // TLS only; then TLS plus plaintext from another network than loopback.
    let strict = tls_relay(&bed, &pki, "strict", &[]);
    let elsewhere = tls_relay(
        &bed,
        &pki,
        "elsewhere",
        &["--allow-plaintext".to_owned(), "10.0.0.0/8".to_owned()],
    );
    for relay in [&strict, &elsewhere] {
        let gw = Gateway::start_dialing(bed.path(), relay.name(), &[plain(relay.addr())], &[]);
        let log = gw.wait_stderr_contains("refused the link");
        assert!(
            log.contains("plaintext links from 127.0.0.1 are not allowed"),
            "{log}"
        );
        relay.wait_stderr_contains("link refused");
        assert!(relay.stderr().contains("plaintext links from 127.0.0.1"));
    }
    // A device dialing the relay directly in plaintext is refused too,
    // and over TLS it gets through.
    FaxSend::new(
        bed.path(),
        strict.addr(),
        "1001",
        &bed.fleet().secret_file("1001"),
        "1002",
        &[bed.note()],
    )
    .run()
    .assert_failed(3, &["plaintext links from 127.0.0.1 are not allowed"]);

    // Allowed for loopback: the same plaintext gateway links, and a device
    // dialing the relay directly over TLS reaches a device behind it.
    let open = tls_relay(
        &bed,
        &pki,
        "open",
        &["--allow-plaintext".to_owned(), "127.0.0.0/8".to_owned()],
    );
    let mut gw = Gateway::start_dialing(bed.path(), "gw-plain", &[plain(open.addr())], &[]);
    gw.wait_linked();
    let _callee = bed.receiver(&gw, "1002", &[]);
    let direct = format!("tls://{}", open.addr());
    faxsend_direct(&bed, &direct, &pki.ca_file())
        .run()
        .assert_delivered();
    open.wait_stderr_contains("scheme=plain");
}

#[test]
fn sighup_reloads_the_certificate_and_a_bad_one_is_refused() {
    let bed = Testbed::new();
    let old_ca = Pki::create(&bed.path().join("old"));
    let new_ca = Pki::create(&bed.path().join("new"));
    let (cert, key) = old_ca.cert("relay-a");
    let flags = [
        "--tls-cert".to_owned(),
        cert.display().to_string(),
        "--tls-key".to_owned(),
        key.display().to_string(),
    ];
    let mut relay = Relay::start_with(bed.path(), bed.fleet(), "relay-a", &flags);
    let mut gw = tls_gateway(&bed, "gw-new", &relay, &new_ca.ca_file());
    gw.wait_stderr_contains("not signed by a CA this side trusts");

    // A broken file: refused with the file's name, the old certificate stays.
    std::fs::write(&cert, "not a certificate\n").expect("cert overwritten");
    relay.signal(libc::SIGHUP);
    let log = relay.wait_stderr_contains("TLS certificate not reloaded");
    assert!(
        log.contains(&format!("{}: no PEM certificate", cert.display())),
        "{log}"
    );
    let mut old_gw = tls_gateway(&bed, "gw-old", &relay, &old_ca.ca_file());
    old_gw.wait_linked();

    // The new CA's certificate under the same names: new links see it.
    let (new_cert, new_key) = new_ca.cert("relay-a");
    std::fs::copy(&new_cert, &cert).expect("cert replaced");
    std::fs::copy(&new_key, &key).expect("key replaced");
    relay.signal(libc::SIGHUP);
    relay.wait_stderr_contains("TLS certificate reloaded");
    gw.wait_linked();
    assert!(relay.is_running());
}

#[test]
fn the_ca_command_writes_private_keys_0600_and_never_overwrites() {
    let bed = Testbed::new();
    let dir = bed.path().join("pki");
    let pki = Pki::create(&dir);
    let (_, key) = pki.cert("relay-a");
    for file in [dir.join("ca.key"), key.clone()] {
        let mode = std::fs::metadata(&file)
            .expect("key written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    let ca_before = std::fs::read(pki.ca_file()).expect("ca.pem");

    let again = tls_command(&["ca", "--dir"], &dir, &[]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already exists; not overwriting it"),
        "{stderr}"
    );
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read(pki.ca_file()).expect("ca.pem"), ca_before);
    let cert_again = tls_command(
        &["cert", "--dir"],
        &dir,
        &["--name", "relay-a", "--san", "127.0.0.1"],
    );
    assert_eq!(cert_again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cert_again.stderr).contains("relay-a.pem already exists"));

    let forced = tls_command(&["ca", "--dir"], &dir, &["--force"]);
    assert!(forced.status.success());
    assert_ne!(std::fs::read(pki.ca_file()).expect("ca.pem"), ca_before);

    // Without a CA there is nothing to sign with: the error says what to run.
    let empty = bed.path().join("empty");
    let out = tls_command(
        &["cert", "--dir"],
        &empty,
        &["--name", "relay-a", "--san", "127.0.0.1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("relayd tls ca --dir"), "{stderr}");
}

#[test]
fn a_relay_without_a_certificate_or_an_allowed_network_does_not_start() {
    let bed = Testbed::new();
    let out = Command::new(bin("relayd"))
        .args(["--name", "relay-a", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(bed.path().join("data"))
        .env_remove("NOTIFY_SOCKET")
        .output()
        .expect("relayd runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("relayd: no TLS certificate"), "{stderr}");
    assert!(
        stderr.contains("--tls-cert") && stderr.contains("--allow-plaintext"),
        "{stderr}"
    );
}

#[test]
fn a_ca_file_that_cannot_be_read_is_named_before_anything_is_dialed() {
    let bed = Testbed::new();
    let missing = bed.path().join("missing-ca.pem");
    let gatewayd = Command::new(bin("gatewayd"))
        .args(["--listen", "127.0.0.1:0", "--relay", "127.0.0.1:1"])
        .arg("--ca-file")
        .arg(&missing)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .expect("gatewayd runs");
    assert_eq!(gatewayd.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&gatewayd.stderr);
    let named = format!("gatewayd: cannot read {}", missing.display());
    assert!(stderr.starts_with(&named), "{stderr}");

    // faxsend: bad usage (2), nothing sent.
    faxsend_direct(&bed, "tls://127.0.0.1:1", &missing)
        .run()
        .assert_failed(2, &["cannot read", "missing-ca.pem"]);
}

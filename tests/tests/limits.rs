//! Limits and revocation against live daemons: a revoked secret is refused
//! at every relay of a chain, a flood of bad logins is throttled while a
//! good device logs in, and a device over a link or page limit hears why
//! while everything else goes on.

use std::path::PathBuf;
use std::process::Command;

use common::link::message::{CallAnswer, CallRefusal};
use harness::load::Secrets;
use harness::{FaxSend, Receiver, Testbed, bin, rogue};

/// Runs a relayd subcommand to the end; returns its stdout.
#[track_caller]
fn relayd(args: &[&str]) -> String {
    let out = Command::new(bin("relayd"))
        .args(args)
        .output()
        .expect("relayd runs");
    assert!(
        out.status.success(),
        "relayd {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The secret of `number` at `generation`, written to a file.
fn secret_file(bed: &Testbed, number: &str, generation: u32) -> PathBuf {
    let key = bed.fleet().key_file().to_str().expect("utf-8").to_owned();
    let g = generation.to_string();
    let secret = relayd(&[
        "credential",
        "--fleet-key-file",
        &key,
        "--generation",
        &g,
        number,
    ]);
    let path = bed.path().join(format!("{number}.g{generation}.secret"));
    std::fs::write(&path, secret).expect("secret written");
    path
}

#[track_caller]
fn assert_exit(receiver: &mut Receiver, code: i32, words: &[&str]) {
    let status = receiver.wait_exit();
    let err = receiver.stderr();
    assert_eq!(status.code(), Some(code), "faxrecv: {status}\n{err}");
    for w in words {
        assert!(err.contains(w), "faxrecv stderr lacks {w:?}:\n{err}");
    }
}

#[test]
fn a_revoked_secret_is_refused_at_every_relay_and_its_device_is_disconnected() {
    let bed = Testbed::new();
    let a = bed.relay("relay-a");
    let b = bed.peered_relay("relay-b", &[&a]);
    let c = bed.peered_relay("relay-c", &[&b]);
    let gw_a = bed.gateway("gw-a", &a);
    let gw_c = bed.gateway("gw-c", &c);
    let mut old = bed.receiver(&gw_c, "1002", &[]);
    a.wait_route("1002", &["relay-b", "relay-c"]);

    // Revoked at relay A; the device is logged in at relay C, two hops away.
    let data = a.data_dir().to_str().expect("utf-8").to_owned();
    let said = relayd(&["revoke", "--data-dir", &data, "1002"]);
    assert!(said.contains("below generation 1"), "{said}");
    assert!(said.contains("--generation 1"), "{said}");
    assert_exit(&mut old, 5, &["revoked"]);

    // C applied it, so B (which passed it on) did too: the old secret is
    // refused at every relay, straight or through a gateway.
    let old_secret = bed.fleet().secret_file("1002");
    for addr in [a.addr(), b.addr(), c.addr(), gw_a.addr()] {
        let mut again = Receiver::spawn(bed.path(), &old_secret, addr, "1002", &[]);
        assert_exit(&mut again, 4, &["secret revoked", "generation 0"]);
    }
    for relay in [&a, &b, &c] {
        assert!(
            relay.stderr().contains("login refused: revoked secret"),
            "{} logged no refusal:\n{}",
            relay.name(),
            relay.stderr_tail()
        );
    }

    // The next generation works, and receives a fax across the chain.
    let new_secret = secret_file(&bed, "1002", 1);
    let mut new = Receiver::spawn(bed.path(), &new_secret, gw_c.addr(), "1002", &[]);
    new.wait_ready();
    a.wait_query("directory", |dir| {
        dir.as_array().is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e["number"] == "1002" && e["online"] == true)
        })
    });
    bed.faxsend(&gw_a, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(new.wait_faxes(1).len(), 1);
}

#[test]
fn a_flood_of_bad_logins_is_throttled_while_a_good_device_logs_in() {
    let bed = Testbed::new();
    let extra = ["--login-attempts-per-min".to_owned(), "3".to_owned()];
    let relay = harness::Relay::start_with(bed.path(), bed.fleet(), "relay-a", &extra);
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);

    // Devices dialing the relay straight from one address, wrong secrets.
    let wrong = bed.fleet().wrong_secret_file("1001");
    let right = bed.fleet().secret_file("1001");
    let straight = |secret: &PathBuf| {
        FaxSend::new(
            bed.path(),
            relay.addr(),
            "1001",
            secret,
            "1002",
            &[bed.note()],
        )
        .run()
    };
    for _ in 0..3 {
        straight(&wrong).assert_failed(4, &["wrong secret"]);
    }
    // Now even the right secret from that address hears why it must wait.
    straight(&right).assert_failed(4, &["too many attempts", "retry in"]);
    let mut recv = Receiver::spawn(
        bed.path(),
        &bed.fleet().secret_file("1003"),
        relay.addr(),
        "1003",
        &[],
    );
    assert_exit(&mut recv, 4, &["too many attempts"]);
    relay.wait_stderr_contains("login refused: too many attempts");
    // Secrets, right or wrong, never reach a log.
    for file in [&wrong, &right] {
        let secret = std::fs::read_to_string(file).expect("a secret");
        for log in [relay.stderr(), gw1.stderr()] {
            assert!(!log.contains(secret.trim()), "a secret was logged:\n{log}");
        }
    }

    // Through a gateway, failures count per number: 1001 logs in and sends.
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(callee.wait_faxes(1).len(), 1);
}

#[test]
fn a_device_over_the_links_per_address_limit_hears_why() {
    let bed = Testbed::new();
    let extra = ["--max-links-per-address".to_owned(), "2".to_owned()];
    let relay = harness::Relay::start_with(bed.path(), bed.fleet(), "relay-a", &extra);
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);

    // Two gateways from 127.0.0.1 use the two links; a third is refused.
    let right = bed.fleet().secret_file("1001");
    FaxSend::new(
        bed.path(),
        relay.addr(),
        "1001",
        &right,
        "1002",
        &[bed.note()],
    )
    .run()
    .assert_failed(
        3,
        &["too many links from 127.0.0.1", "at most 2 per address"],
    );
    // The gateways' links are untouched.
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(callee.wait_faxes(1).len(), 1);
}

#[test]
fn a_call_over_the_pages_per_call_limit_is_refused_with_the_limit() {
    let bed = Testbed::new();
    let extra = ["--max-pages-per-call".to_owned(), "1".to_owned()];
    let relay = harness::Relay::start_with(bed.path(), bed.fleet(), "relay-a", &extra);
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);

    let note = bed.note();
    bed.faxsend(&gw1, "1001", "1002", &[note.clone(), note.clone()])
        .run()
        .assert_failed(
            8,
            &["2 pages is over this relay's limit of 1 pages per call"],
        );
    bed.faxsend(&gw1, "1001", "1002", &[note])
        .run()
        .assert_delivered();
    assert_eq!(callee.wait_faxes(1).len(), 1);
}

#[test]
fn a_revocation_reaches_every_relay_through_redis() {
    let bed = Testbed::new();
    let redis = harness::RedisServer::start(bed.path());
    // A short lease: relays read the revocations every third of it.
    let start = |name: &str| {
        let mut relay =
            harness::Relay::start_with(bed.path(), bed.fleet(), name, &redis.relay_flags(3));
        if !relay
            .status()
            .is_some_and(|s| s.contains("directory: redis ok"))
        {
            relay.wait_status_contains("directory: redis ok");
        }
        relay
    };
    let a = start("relay-a");
    let c = start("relay-c");
    let gw_c = bed.gateway("gw-c", &c);
    let mut old = bed.receiver(&gw_c, "1002", &[]);

    let data = a.data_dir().to_str().expect("utf-8").to_owned();
    relayd(&["revoke", "--data-dir", &data, "1002"]);
    // Relay C, which shares no link with A, learns it from Redis and kicks.
    assert_exit(&mut old, 5, &["revoked"]);
    let mut conn = redis.connection().expect("redis answers");
    let stored: u32 = redis::cmd("HGET")
        .arg(format!("{}:revoked", redis.prefix()))
        .arg("1002")
        .query(&mut conn)
        .expect("the revocation is in redis");
    assert_eq!(stored, 1);
    let old_secret = bed.fleet().secret_file("1002");
    for addr in [a.addr(), c.addr()] {
        let mut again = Receiver::spawn(bed.path(), &old_secret, addr, "1002", &[]);
        assert_exit(&mut again, 4, &["secret revoked"]);
    }
}

#[test]
fn a_device_over_its_calls_in_flight_hears_why_while_others_call_on() {
    let bed = Testbed::new();
    let extra = ["--max-calls-per-device".to_owned(), "1".to_owned()];
    let relay = harness::Relay::start_with(bed.path(), bed.fleet(), "relay-a", &extra);
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let _c1002 = bed.receiver(&gw2, "1002", &[]);
    let mut c1003 = bed.receiver(&gw2, "1003", &[]);
    let secret = Secrets::load(bed.fleet().key_file()).of(&"1001".parse().expect("a number"));

    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(async {
            let session = rogue::device(gw1.addr(), "1001", &secret).await;
            // One call held open (accepted, no pages yet) ...
            let (_held, answer) =
                rogue::call(&session, &rogue::request("1001", "1002", 1, 100)).await;
            assert!(matches!(answer, CallAnswer::Accepted { .. }), "{answer:?}");
            // ... so a second one from the same number is over the limit.
            let (_, answer) = rogue::call(&session, &rogue::request("1001", "1003", 1, 100)).await;
            match answer {
                CallAnswer::Refused {
                    reason: CallRefusal::OverLimit,
                    detail,
                    ..
                } => assert!(detail.contains("1001 has 1 calls in flight"), "{detail}"),
                other => panic!("expected a refusal over the limit, got {other:?}"),
            }
            // Another device on the same gateway calls on meanwhile.
            bed.faxsend(&gw1, "1004", "1003", &[bed.note()])
                .run()
                .assert_delivered();
        });
    assert_eq!(c1003.wait_faxes(1).len(), 1);
}

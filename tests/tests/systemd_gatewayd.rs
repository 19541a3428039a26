//! gatewayd under systemd's eyes: readiness and status on a notify socket
//! the test owns, SIGTERM, SIGHUP reloading the relay list, the config file,
//! /metrics.

use std::process::Command;

use common::link::control::{self, LinkConfig};
use common::link::message::{Control, Hello, PROTOCOL_VERSION, Role};
use harness::admin::http_get;
use harness::status::{field, listen_addr};
use harness::{Daemon, Testbed, bin};

/// gatewayd with `args`, logging as under systemd without a journal: at its
/// configured level (RUST_LOG unset), in plain text on stderr.
fn gatewayd(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("gatewayd"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM");
    cmd
}

/// A stand-in relay: answers the link handshake and keeps each link open
/// (answering pings) on a thread of its own. Returns its address, plain://HOST:PORT.
fn fake_relay() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a loopback port");
            let addr = listener.local_addr().expect("a bound address");
            tx.send(addr.to_string())
                .expect("the test waits for the address");
            loop {
                let (tcp, _) = listener.accept().await.expect("a connection");
                tokio::spawn(async move {
                    let cfg = LinkConfig::default();
                    let Ok(mut link) = control::accept(tcp, &cfg, |_| {
                        Ok(Hello {
                            version: PROTOCOL_VERSION,
                            role: Role::Relay,
                            name: "fake-relay".into(),
                        })
                    })
                    .await
                    else {
                        return;
                    };
                    while let Ok(Some(msg)) = link.reader.next().await {
                        if let Control::Ping { seq } = msg {
                            let _ = link.writer.send(&Control::Pong { seq }).await;
                        }
                    }
                });
            }
        });
    });
    // Plain TCP: dialed as plain://, which the gateway does only when told.
    format!("plain://{}", rx.recv().expect("the fake relay's address"))
}

#[test]
fn ready_status_and_stopping_on_sigterm() {
    let bed = Testbed::new();
    let cmd = gatewayd(&["--listen", "127.0.0.1:0", "--relay", "127.0.0.1:1"]);
    let mut gw = Daemon::spawn("gatewayd", cmd, bed.path());
    let status = gw.wait_ready();
    assert!(status.starts_with("listening on 127.0.0.1:"), "{status}");
    assert!(
        status.contains("; no relay link; calls in flight: 0"),
        "{status}"
    );
    assert!(status.ends_with("devices online: 0"), "{status}");
    std::net::TcpStream::connect(listen_addr(&status)).unwrap();
    gw.signal(libc::SIGTERM);
    gw.wait_for("STOPPING=1", |n| n.stopping);
    let exit = gw.wait_exit();
    let stderr = gw.stderr();
    assert!(exit.success(), "{exit:?}\n{stderr}");
}

#[test]
fn sighup_changes_the_relay_list_without_restart() {
    let relay = fake_relay();
    let bed = Testbed::new();
    let config = bed.path().join("gatewayd.toml");
    let base = "listen = \"127.0.0.1:0\"\nname = \"gw-test\"\nmax_backoff_secs = 0.5\n";
    std::fs::write(&config, format!("{base}relays = [\"127.0.0.1:1\"]\n")).unwrap();
    let cmd = gatewayd(&[
        "--config",
        config.to_str().unwrap(),
        "--admin",
        "127.0.0.1:0",
    ]);
    let mut gw = Daemon::spawn("gatewayd", cmd, bed.path());
    let status = gw.wait_ready();
    let addr = listen_addr(&status);
    assert!(status.contains("no relay link"), "{status}");
    std::fs::write(&config, format!("{base}relays = [\"{relay}\"]\n")).unwrap();
    gw.signal(libc::SIGHUP);
    let status = gw.wait_status_contains(&format!("linked to relay fake-relay at {relay}"));
    assert_eq!(listen_addr(&status), addr, "the gateway restarted");
    // The admin listener sees the link too.
    let admin = field(&status, "admin on ").unwrap();
    let (code, body) = http_get(&admin, "/metrics");
    assert_eq!(code, 200);
    assert!(body.contains("gatewayd_relay_link_up 1"), "{body}");
    assert!(
        body.contains("gatewayd_reloads_total{result=\"applied\"} 1"),
        "{body}"
    );
    assert_eq!(http_get(&admin, "/healthz").0, 200);
    gw.signal(libc::SIGTERM);
    let exit = gw.wait_exit();
    let stderr = gw.stderr();
    assert!(exit.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("relays: 127.0.0.1:1 -> {relay}")),
        "{stderr}"
    );
}

#[test]
fn config_file_with_unknown_key_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatewayd.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nrelay = [\"a:1\"]\n").unwrap();
    let out = Command::new(bin("gatewayd"))
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field `relay`"), "{stderr}");
    assert!(stderr.contains(config.to_str().unwrap()), "{stderr}");
}

#[test]
fn missing_relay_names_the_flag_and_the_key() {
    let out = Command::new(bin("gatewayd"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("GATEWAYD_RELAYS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--relay") && stderr.contains("relays = "),
        "{stderr}"
    );
}

#[test]
fn help_has_examples_and_man_and_completions_generate() {
    let help = Command::new(bin("gatewayd"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Examples:"));
    let man = Command::new(bin("gatewayd"))
        .arg("--generate-man")
        .output()
        .unwrap();
    assert!(man.status.success());
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH gatewayd"));
    let fish = Command::new(bin("gatewayd"))
        .args(["--generate-completions", "fish"])
        .output()
        .unwrap();
    assert!(fish.status.success());
    assert!(String::from_utf8_lossy(&fish.stdout).contains("complete -c gatewayd"));
}

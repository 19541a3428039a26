//! gatewayd under systemd's eyes: readiness and status on a notify socket
//! the test owns, SIGTERM, SIGHUP reloading the relay list, the config file,
//! /metrics.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

// One notify-socket and process helper for both daemons' systemd tests:
// relayd's, not a copy of it.
#[path = "../../relayd/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use ::common::link::control::{self, LinkConfig};
use ::common::link::message::{Hello, PROTOCOL_VERSION, Role};
use common::{Daemon, NotifySocket, field, http_get, listen_addr};

const GATEWAYD: &str = env!("CARGO_BIN_EXE_gatewayd");

/// A stand-in relay: answers the link handshake and keeps each link open
/// (answering pings) on a thread of its own. Returns its address, plain://HOST:PORT.
fn fake_relay() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
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
                        if let ::common::link::message::Control::Ping { seq } = msg {
                            let pong = ::common::link::message::Control::Pong { seq };
                            let _ = link.writer.send(&pong).await;
                        }
                    }
                });
            }
        });
    });
    // Plain TCP: dialed as plain://, which the gateway does only when told.
    format!("plain://{}", rx.recv().unwrap())
}

#[test]
fn ready_status_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let gw = Daemon::start(
        GATEWAYD,
        "gatewayd",
        &["--listen", "127.0.0.1:0", "--relay", "127.0.0.1:1"],
        &notify.path,
    );
    let status = notify.ready();
    assert!(status.starts_with("listening on 127.0.0.1:"), "{status}");
    assert!(
        status.contains("; no relay link; calls in flight: 0"),
        "{status}"
    );
    assert!(status.ends_with("devices online: 0"), "{status}");
    std::net::TcpStream::connect(listen_addr(&status)).unwrap();
    gw.signal("TERM");
    notify.wait_for("STOPPING=1", Duration::from_secs(10), |m| {
        m.get("STOPPING").is_some_and(|v| v == "1")
    });
    let (exit, stderr) = gw.wait(Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}\n{stderr}");
}

#[test]
fn sighup_changes_the_relay_list_without_restart() {
    let relay = fake_relay();
    let dir = tempfile::tempdir().unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let config = dir.path().join("gatewayd.toml");
    let base = "listen = \"127.0.0.1:0\"\nname = \"gw-test\"\nmax_backoff_secs = 0.5\n";
    std::fs::write(&config, format!("{base}relays = [\"127.0.0.1:1\"]\n")).unwrap();
    let gw = Daemon::start(
        GATEWAYD,
        "gatewayd",
        &[
            "--config",
            config.to_str().unwrap(),
            "--admin",
            "127.0.0.1:0",
        ],
        &notify.path,
    );
    let status = notify.ready();
    let addr = listen_addr(&status);
    assert!(status.contains("no relay link"), "{status}");
    std::fs::write(&config, format!("{base}relays = [\"{relay}\"]\n")).unwrap();
    gw.signal("HUP");
    let status = notify.status_containing(
        &format!("linked to relay fake-relay at {relay}"),
        Duration::from_secs(20),
    );
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
    gw.signal("TERM");
    let (exit, stderr) = gw.wait(Duration::from_secs(20));
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
    let out = std::process::Command::new(GATEWAYD)
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
    let out = std::process::Command::new(GATEWAYD)
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
    let help = std::process::Command::new(GATEWAYD)
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Examples:"));
    let man = std::process::Command::new(GATEWAYD)
        .arg("--generate-man")
        .output()
        .unwrap();
    assert!(man.status.success());
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH gatewayd"));
    let fish = std::process::Command::new(GATEWAYD)
        .args(["--generate-completions", "fish"])
        .output()
        .unwrap();
    assert!(fish.status.success());
    assert!(String::from_utf8_lossy(&fish.stdout).contains("complete -c gatewayd"));
}

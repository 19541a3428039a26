//! relayd under systemd's eyes: readiness and status on a notify socket the
//! test owns, SIGTERM, SIGHUP reloading peers, the config file, /metrics.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, NotifySocket, field, http_get, listen_addr};

const RELAYD: &str = env!("CARGO_BIN_EXE_relayd");

fn fleet_key(dir: &std::path::Path) -> String {
    let path = dir.join("fleet.key");
    std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
    path.display().to_string()
}

#[test]
fn ready_status_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let data = dir.path().join("data");
    let relay = Daemon::start(
        RELAYD,
        "relayd",
        &[
            "--name",
            "relay-a",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--allow-plaintext",
            "127.0.0.0/8",
        ],
        &notify.path,
    );
    let status = notify.ready();
    assert!(status.starts_with("listening on 127.0.0.1:"), "{status}");
    assert!(status.contains("peers up: 0"), "{status}");
    assert!(status.contains("devices online: 0"), "{status}");
    assert!(status.contains("calls in flight: 0"), "{status}");
    // The address is real: a TCP connection is accepted.
    std::net::TcpStream::connect(listen_addr(&status)).unwrap();
    relay.signal("TERM");
    notify.wait_for("STOPPING=1", Duration::from_secs(10), |m| {
        m.get("STOPPING").is_some_and(|v| v == "1")
    });
    let (exit, stderr) = relay.wait(Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}\n{stderr}");
}

#[test]
fn watchdog_is_petted_when_systemd_asks_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let data = dir.path().join("data");
    let key = fleet_key(dir.path());
    // WatchdogSec=0.4 as systemd passes it; the relay must ping every 0.2 s.
    let relay = Daemon::start_with_env(
        RELAYD,
        "relayd",
        &[
            "--name",
            "relay-w",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--fleet-key-file",
            &key,
            "--allow-plaintext",
            "127.0.0.0/8",
        ],
        &notify.path,
        &[("WATCHDOG_USEC", "400000")],
    );
    notify.ready();
    for _ in 0..3 {
        notify.wait_for("WATCHDOG=1", Duration::from_secs(5), |m| {
            m.get("WATCHDOG").is_some_and(|v| v == "1")
        });
    }
    relay.signal("TERM");
    let (exit, stderr) = relay.wait(Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}\n{stderr}");
}

#[test]
fn sighup_adds_a_peer_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = fleet_key(dir.path());
    // Relay A, from flags.
    let a_dir = dir.path().join("a");
    std::fs::create_dir_all(&a_dir).unwrap();
    let mut a_notify = NotifySocket::bind(&a_dir);
    let a_data = a_dir.join("data");
    let _a = Daemon::start(
        RELAYD,
        "relayd A",
        &[
            "--name",
            "relay-a",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            a_data.to_str().unwrap(),
            "--fleet-key-file",
            &key,
            "--allow-plaintext",
            "127.0.0.0/8",
        ],
        &a_notify.path,
    );
    let a_addr = listen_addr(&a_notify.ready());
    // Relay B, from a config file without peers.
    let b_dir = dir.path().join("b");
    std::fs::create_dir_all(&b_dir).unwrap();
    let mut b_notify = NotifySocket::bind(&b_dir);
    let b_data = b_dir.join("data");
    let config = b_dir.join("relayd.toml");
    let base = format!(
        "name = \"relay-b\"\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nfleet_key_file = {key:?}\nallow_plaintext = [\"127.0.0.0/8\"]\n",
        b_data.display().to_string()
    );
    std::fs::write(&config, &base).unwrap();
    let b = Daemon::start(
        RELAYD,
        "relayd B",
        &["--config", config.to_str().unwrap()],
        &b_notify.path,
    );
    let b_status = b_notify.ready();
    let b_port = listen_addr(&b_status);
    assert!(b_status.contains("peers up: 0"), "{b_status}");

    std::fs::write(&config, format!("{base}peers = [\"plain://{a_addr}\"]\n")).unwrap();
    b.signal("HUP");
    // The reload is announced (RELOADING=1), then READY=1 again.
    b_notify.wait_for("RELOADING=1", Duration::from_secs(10), |m| {
        m.get("RELOADING").is_some_and(|v| v == "1")
    });
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::process::Command::new(RELAYD)
            .args(["peers", "--data-dir", b_data.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let peers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let up = peers.as_array().unwrap().iter().any(|p| {
            p["address"] == format!("plain://{a_addr}").as_str()
                && p["state"] == "up"
                && p["name"] == "relay-a"
        });
        if up {
            break;
        }
        assert!(Instant::now() < end, "relay-a never came up at B: {peers}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // B kept running: same address, and its status counts the peer.
    let status = b_notify.status_containing("peers up: 1", Duration::from_secs(10));
    assert_eq!(listen_addr(&status), b_port);
    b.signal("TERM");
    let (exit, stderr) = b.wait(Duration::from_secs(20));
    assert!(exit.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("peer added: plain://{a_addr}")),
        "{stderr}"
    );
}

#[test]
fn config_file_with_unknown_key_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relayd.toml");
    std::fs::write(
        &config,
        "name = \"relay-a\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\npeerz = [\"x:1\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(RELAYD)
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("peerz"), "{stderr}");
    assert!(stderr.contains(config.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
}

#[test]
fn missing_setting_names_the_flag_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relayd.toml");
    std::fs::write(&config, "name = \"relay-a\"\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let out = std::process::Command::new(RELAYD)
        .args(["--config", config.to_str().unwrap()])
        .env_remove("RELAYD_DATA_DIR")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--data-dir"), "{stderr}");
    assert!(stderr.contains("data_dir ="), "{stderr}");
}

#[test]
fn flag_beats_environment_beats_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let config = dir.path().join("relayd.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "name = \"from-file\"\nlisten = \"127.0.0.1:1\"\ndata_dir = {:?}\nallow_plaintext = [\"127.0.0.0/8\"]\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let relay = std::process::Command::new(RELAYD)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RELAYD_LISTEN", "127.0.0.1:2")
        .env("RELAYD_ADMIN", "127.0.0.1:0")
        .env("NOTIFY_SOCKET", &notify.path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let relay = Daemon {
        child: relay,
        name: "relayd",
    };
    let status = notify.ready();
    // --listen (port 0) won over RELAYD_LISTEN and the file; RELAYD_ADMIN applied.
    let listen = listen_addr(&status);
    assert!(listen.starts_with("127.0.0.1:") && listen != "127.0.0.1:1" && listen != "127.0.0.1:2");
    assert!(field(&status, "admin on ").is_some(), "{status}");
    relay.signal("TERM");
    assert!(relay.wait(Duration::from_secs(20)).0.success());
}

#[test]
fn admin_serves_metrics_and_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let data = dir.path().join("data");
    let relay = Daemon::start(
        RELAYD,
        "relayd",
        &[
            "--name",
            "relay-a",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--admin",
            "127.0.0.1:0",
            "--allow-plaintext",
            "127.0.0.0/8",
        ],
        &notify.path,
    );
    let status = notify.ready();
    let admin = field(&status, "admin on ").unwrap_or_else(|| panic!("{status}"));
    // The admin part comes after the listening part.
    assert!(status.find("listening on").unwrap() < status.find("admin on").unwrap());
    let (code, body) = http_get(&admin, "/healthz");
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_get(&admin, "/metrics");
    assert_eq!(code, 200);
    for name in [
        "relayd_links 0",
        "relayd_devices_online 0",
        "relayd_peers_up 0",
        "# TYPE relayd_calls_total counter",
        "# TYPE relayd_call_bytes_total counter",
        "# TYPE relayd_sync_messages_total counter",
        "# TYPE relayd_errors_total counter",
    ] {
        assert!(body.contains(name), "{name} missing from\n{body}");
    }
    assert_eq!(http_get(&admin, "/nope").0, 404);
    relay.signal("TERM");
    assert!(relay.wait(Duration::from_secs(20)).0.success());
}

#[test]
fn help_has_examples_and_man_and_completions_generate() {
    let help = std::process::Command::new(RELAYD)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Examples:"), "{help}");
    let man = std::process::Command::new(RELAYD)
        .arg("--generate-man")
        .output()
        .unwrap();
    assert!(man.status.success());
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH relayd"));
    let bash = std::process::Command::new(RELAYD)
        .args(["--generate-completions", "bash"])
        .output()
        .unwrap();
    assert!(bash.status.success());
    assert!(String::from_utf8_lossy(&bash.stdout).contains("_relayd"));
}

//! relayd under systemd's eyes: readiness and status on a notify socket the
//! test owns, SIGTERM, SIGHUP reloading peers, the config file, /metrics.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::admin::http_get;
use harness::status::{field, listen_addr};
use harness::{Daemon, Testbed, bin};

/// relayd with `args`, logging as under systemd without a journal: at its
/// configured level (RUST_LOG unset), in plain text on stderr.
fn relayd(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("relayd"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM");
    cmd
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// relayd `name` on any loopback port, its data in `data`, plaintext
/// allowed from loopback, and `extra` flags.
fn relayd_named(name: &str, data: &Path, extra: &[&str]) -> Command {
    let mut cmd = relayd(&["--name", name, "--listen", "127.0.0.1:0"]);
    cmd.arg("--data-dir")
        .arg(data)
        .args(["--allow-plaintext", "127.0.0.0/8"])
        .args(extra);
    cmd
}

#[test]
fn ready_status_and_stopping_on_sigterm() {
    let bed = Testbed::new();
    let data = bed.path().join("data");
    let cmd = relayd_named("relay-a", &data, &[]);
    let mut relay = Daemon::spawn("relayd", cmd, bed.path());
    let status = relay.wait_ready();
    assert!(status.starts_with("listening on 127.0.0.1:"), "{status}");
    assert!(status.contains("peers up: 0"), "{status}");
    assert!(status.contains("devices online: 0"), "{status}");
    assert!(status.contains("calls in flight: 0"), "{status}");
    // The address is real: a TCP connection is accepted.
    std::net::TcpStream::connect(listen_addr(&status)).unwrap();
    relay.signal(libc::SIGTERM);
    relay.wait_for("STOPPING=1", |n| n.stopping);
    let exit = relay.wait_exit();
    let stderr = relay.stderr();
    assert!(exit.success(), "{exit:?}\n{stderr}");
}

#[test]
fn watchdog_is_petted_when_systemd_asks_for_one() {
    let bed = Testbed::new();
    let data = bed.path().join("data");
    let key = path_str(bed.fleet().key_file());
    let mut cmd = relayd_named("relay-w", &data, &["--fleet-key-file", key]);
    // WatchdogSec=0.4 as systemd passes it; the relay must ping every 0.2 s.
    cmd.env("WATCHDOG_USEC", "400000");
    let mut relay = Daemon::spawn("relayd", cmd, bed.path());
    relay.wait_ready();
    for _ in 0..3 {
        relay.wait_for("WATCHDOG=1", |n| n.watchdog);
    }
    relay.signal(libc::SIGTERM);
    let exit = relay.wait_exit();
    let stderr = relay.stderr();
    assert!(exit.success(), "{exit:?}\n{stderr}");
}

#[test]
fn sighup_adds_a_peer_without_restart() {
    let bed = Testbed::new();
    let key = path_str(bed.fleet().key_file());
    // Relay A, from flags.
    let a_data = bed.path().join("a.data");
    let cmd = relayd_named("relay-a", &a_data, &["--fleet-key-file", key]);
    let mut _a = Daemon::spawn("relayd-a", cmd, bed.path());
    let a_addr = listen_addr(&_a.wait_ready());
    // Relay B, from a config file without peers.
    let b_data = bed.path().join("b.data");
    let config = bed.path().join("relayd.toml");
    let base = format!(
        "name = \"relay-b\"\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nfleet_key_file = {key:?}\nallow_plaintext = [\"127.0.0.0/8\"]\n",
        b_data.display().to_string()
    );
    std::fs::write(&config, &base).unwrap();
    let mut b = Daemon::spawn(
        "relayd-b",
        relayd(&["--config", path_str(&config)]),
        bed.path(),
    );
    let b_status = b.wait_ready();
    let b_port = listen_addr(&b_status);
    assert!(b_status.contains("peers up: 0"), "{b_status}");

    std::fs::write(&config, format!("{base}peers = [\"plain://{a_addr}\"]\n")).unwrap();
    b.signal(libc::SIGHUP);
    // The reload is announced (RELOADING=1), then READY=1 again.
    b.wait_for("RELOADING=1", |n| n.reloading);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(bin("relayd"))
            .args(["peers", "--data-dir", path_str(&b_data), "--json"])
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
    let status = b.wait_status_contains("peers up: 1");
    assert_eq!(listen_addr(&status), b_port);
    b.signal(libc::SIGTERM);
    let exit = b.wait_exit();
    let stderr = b.stderr();
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
    let out = Command::new(bin("relayd"))
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
    let out = Command::new(bin("relayd"))
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
    let bed = Testbed::new();
    let config = bed.path().join("relayd.toml");
    let data = bed.path().join("data");
    std::fs::write(
        &config,
        format!(
            "name = \"from-file\"\nlisten = \"127.0.0.1:1\"\ndata_dir = {:?}\nallow_plaintext = [\"127.0.0.0/8\"]\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let mut cmd = relayd(&["--config", path_str(&config), "--listen", "127.0.0.1:0"]);
    cmd.env("RELAYD_LISTEN", "127.0.0.1:2")
        .env("RELAYD_ADMIN", "127.0.0.1:0");
    let mut relay = Daemon::spawn("relayd", cmd, bed.path());
    let status = relay.wait_ready();
    // --listen (port 0) won over RELAYD_LISTEN and the file; RELAYD_ADMIN applied.
    let listen = listen_addr(&status);
    assert!(listen.starts_with("127.0.0.1:") && listen != "127.0.0.1:1" && listen != "127.0.0.1:2");
    assert!(field(&status, "admin on ").is_some(), "{status}");
    relay.signal(libc::SIGTERM);
    assert!(relay.wait_exit().success());
}

#[test]
fn admin_serves_metrics_and_healthz() {
    let bed = Testbed::new();
    let data = bed.path().join("data");
    let cmd = relayd_named("relay-a", &data, &["--admin", "127.0.0.1:0"]);
    let mut relay = Daemon::spawn("relayd", cmd, bed.path());
    let status = relay.wait_ready();
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
    relay.signal(libc::SIGTERM);
    assert!(relay.wait_exit().success());
}

#[test]
fn help_has_examples_and_man_and_completions_generate() {
    let help = Command::new(bin("relayd")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Examples:"), "{help}");
    let man = Command::new(bin("relayd"))
        .arg("--generate-man")
        .output()
        .unwrap();
    assert!(man.status.success());
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH relayd"));
    let bash = Command::new(bin("relayd"))
        .args(["--generate-completions", "bash"])
        .output()
        .unwrap();
    assert!(bash.status.success());
    assert!(String::from_utf8_lossy(&bash.stdout).contains("_relayd"));
}

//! relayd under test.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::bins::bin;
use crate::daemon::{Daemon, WAIT};

/// How often the directory and peer queries are repeated while waiting.
const POLL: Duration = Duration::from_millis(20);
use crate::fleet::Fleet;

/// The flags that let a relay without a certificate accept plaintext links
/// from loopback.
pub const PLAINTEXT_LOOPBACK: [&str; 2] = ["--allow-plaintext", "127.0.0.0/8"];

/// `addr` as a dialer must write it to link in plaintext.
pub fn plain(addr: SocketAddr) -> String {
    format!("plain://{addr}")
}

/// A running relayd: its name, the address it bound and its data dir.
#[derive(Debug)]
pub struct Relay {
    daemon: Daemon,
    name: String,
    addr: SocketAddr,
    dir: PathBuf,
    data_dir: PathBuf,
    key_file: PathBuf,
    /// Flags beyond the basics (e.g. `--peer ADDR`), kept for restarts.
    extra: Vec<String>,
}

impl Relay {
    /// Starts relayd `name` on 127.0.0.1 with a port of its choosing, its data
    /// in `dir/<name>.data`; returns once it is ready.
    #[track_caller]
    pub fn start(dir: &Path, fleet: &Fleet, name: &str) -> Relay {
        Relay::start_with(dir, fleet, name, &[])
    }

    /// Starts relayd `name` peered with the relays at `peers` (`--peer
    /// plain://ADDR`: plaintext on loopback, see [`Relay::start_with`]).
    #[track_caller]
    pub fn start_peered(dir: &Path, fleet: &Fleet, name: &str, peers: &[SocketAddr]) -> Relay {
        let extra: Vec<String> = peers
            .iter()
            .flat_map(|p| ["--peer".to_owned(), plain(*p)])
            .collect();
        Relay::start_with(dir, fleet, name, &extra)
    }

    /// Starts relayd `name` with `extra` flags; returns once it is ready.
    /// Without `--tls-cert` among them the relay runs in plaintext, allowed
    /// from loopback only ([`PLAINTEXT_LOOPBACK`]): the tests of everything
    /// but TLS run so, as fast as before; `tests/tls.rs` runs TLS.
    #[track_caller]
    pub fn start_with(dir: &Path, fleet: &Fleet, name: &str, extra: &[String]) -> Relay {
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
        Relay::start_on(dir, fleet.key_file(), name, any_port, extra, false)
    }

    /// Like [`Relay::start`], with relayd's stderr closed (see
    /// [`Daemon::spawn_with_stderr_closed`]).
    #[track_caller]
    pub fn start_with_stderr_closed(dir: &Path, fleet: &Fleet, name: &str) -> Relay {
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
        Relay::start_on(dir, fleet.key_file(), name, any_port, &[], true)
    }

    #[track_caller]
    fn start_on(
        dir: &Path,
        key_file: &Path,
        name: &str,
        listen: SocketAddr,
        extra: &[String],
        close_stderr: bool,
    ) -> Relay {
        let data_dir = dir.join(format!("{name}.data"));
        let mut cmd = Command::new(bin("relayd"));
        cmd.args(["--name", name])
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--fleet-key-file")
            .arg(key_file)
            .args(extra);
        if !extra.iter().any(|a| a == "--tls-cert") {
            cmd.args(PLAINTEXT_LOOPBACK);
        }
        let mut daemon = match close_stderr {
            true => Daemon::spawn_with_stderr_closed(name, cmd, dir),
            false => Daemon::spawn(name, cmd, dir),
        };
        let status = daemon.wait_ready();
        let addr = daemon.listen_addr(&status);
        Relay {
            daemon,
            name: name.to_owned(),
            addr,
            dir: dir.to_owned(),
            data_dir,
            key_file: key_file.to_owned(),
            extra: extra.to_vec(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops relayd with SIGTERM (asserting a clean exit) and starts it
    /// again with the same name, data dir and address; returns once ready.
    #[track_caller]
    pub fn restart(&mut self) {
        self.daemon.stop_cleanly();
        self.start_again();
    }

    /// Starts relayd again after it stopped (or was killed), with the same
    /// name, data dir and address.
    #[track_caller]
    pub fn start_again(&mut self) {
        assert!(!self.daemon.is_running(), "{} is still running", self.name);
        let again = Relay::start_on(
            &self.dir,
            &self.key_file,
            &self.name,
            self.addr,
            &self.extra,
            false,
        );
        assert_eq!(
            again.addr, self.addr,
            "{} came back on another address",
            self.name
        );
        *self = again;
    }
}

/// `relayd QUERY --json --data-dir DATA_DIR` (`peers`, `directory`) against
/// the relay running there; `Null` while it cannot answer.
pub fn query(data_dir: &Path, what: &str) -> serde_json::Value {
    let out = Command::new(bin("relayd"))
        .args([what, "--json", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap_or_else(|e| panic!("relayd {what} does not run: {e}"));
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// What a running relay shows its operator (`relayd peers` / `relayd directory`).
impl Relay {
    /// `relayd QUERY --json` against this relay; `Null` while it cannot answer.
    pub fn query(&self, what: &str) -> serde_json::Value {
        query(&self.data_dir, what)
    }

    /// The directory entry for `number`, if the relay knows it.
    pub fn entry(&self, number: &str) -> Option<serde_json::Value> {
        let dir = self.query("directory");
        dir.as_array()?
            .iter()
            .find(|e| e["number"] == number)
            .cloned()
    }

    /// Polls `relayd QUERY` until `pred` holds; fails the test after [`WAIT`].
    #[track_caller]
    pub fn wait_query(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.query(what);
            if pred(&v) {
                return v;
            }
            if Instant::now() > deadline {
                self.daemon.fail(&format!(
                    "`relayd {what}` never showed what was expected; last: {v}"
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the peer relay `name` is linked.
    #[track_caller]
    pub fn wait_peer_up(&self, name: &str) {
        self.wait_query("peers", |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|p| p["name"] == name && p["state"] == "up"))
        });
    }

    /// Waits until `number` is online here with a next hop along `path`
    /// (relay names, the next hop first); returns its entry.
    #[track_caller]
    pub fn wait_route(&self, number: &str, path: &[&str]) -> serde_json::Value {
        let v = self.wait_query("directory", |v| {
            v.as_array().is_some_and(|a| {
                a.iter().any(|e| {
                    e["number"] == number
                        && e["online"] == true
                        && e["path"] == serde_json::json!(path)
                })
            })
        });
        v.as_array()
            .and_then(|a| a.iter().find(|e| e["number"] == number).cloned())
            .unwrap_or_default()
    }

    /// Waits until this relay knows `number` and holds it offline; returns
    /// its entry.
    #[track_caller]
    pub fn wait_offline(&self, number: &str) -> serde_json::Value {
        let v = self.wait_query("directory", |v| {
            v.as_array().is_some_and(|a| {
                a.iter()
                    .any(|e| e["number"] == number && e["online"] == false)
            })
        });
        v.as_array()
            .and_then(|a| a.iter().find(|e| e["number"] == number).cloned())
            .unwrap_or_default()
    }

    /// Waits until this relay has no path to `number` (it may still know it).
    #[track_caller]
    pub fn wait_no_route(&self, number: &str) {
        self.wait_query("directory", |v| {
            v.as_array().is_some_and(|a| {
                a.iter()
                    .all(|e| e["number"] != number || e["next_hop"].is_null())
            })
        });
    }
}

/// A relay is a daemon with a known role: waits, signals and logs are the daemon's.
impl Deref for Relay {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl DerefMut for Relay {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

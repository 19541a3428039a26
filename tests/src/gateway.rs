//! gatewayd under test.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bins::bin;
use crate::daemon::Daemon;
use crate::relay::plain;

/// Longest pause between a gateway's attempts to reach a relay, in seconds.
/// Lower than the default so that a test restarting a relay does not wait
/// out a long backoff; the reconnect itself is the product's.
const MAX_BACKOFF_SECS: &str = "0.5";

/// A running gatewayd.
#[derive(Debug)]
pub struct Gateway {
    daemon: Daemon,
    name: String,
    addr: SocketAddr,
    dir: PathBuf,
    /// `--relay` values, as given.
    relays: Vec<String>,
    /// Flags beyond the basics (e.g. `--ca-file F`), kept for restarts.
    extra: Vec<String>,
}

impl Gateway {
    /// Starts gatewayd `name` on 127.0.0.1 (any port), linking in
    /// plaintext (`plain://`) to `relays` in order of preference; returns
    /// once it is ready (which does not mean linked: see
    /// [`Gateway::wait_linked`]).
    #[track_caller]
    pub fn start(dir: &Path, name: &str, relays: &[SocketAddr]) -> Gateway {
        Gateway::start_with(dir, name, relays, &[])
    }

    /// [`Gateway::start`] with `extra` flags (`--heartbeat-secs 0.5`, ...).
    #[track_caller]
    pub fn start_with(dir: &Path, name: &str, relays: &[SocketAddr], extra: &[&str]) -> Gateway {
        let relays: Vec<String> = relays.iter().map(|r| plain(*r)).collect();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Gateway::start_dialing(dir, name, &relays, &extra)
    }

    /// Starts gatewayd `name` with `--relay` values as given (`HOST:PORT` is
    /// TLS) and `extra` flags (`--ca-file F`).
    #[track_caller]
    pub fn start_dialing(dir: &Path, name: &str, relays: &[String], extra: &[String]) -> Gateway {
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
        Gateway::start_on(dir, name, relays, extra, any_port, &[])
    }

    /// [`Gateway::start_with`] run through `launcher` (a command that
    /// prepares something, then runs the gatewayd command line it is given
    /// after its own arguments, e.g. in a mount namespace). A restart
    /// starts gatewayd without it.
    #[track_caller]
    pub fn start_launched(
        dir: &Path,
        name: &str,
        relays: &[SocketAddr],
        extra: &[&str],
        launcher: &[&str],
    ) -> Gateway {
        let relays: Vec<String> = relays.iter().map(|r| plain(*r)).collect();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let launcher: Vec<String> = launcher.iter().map(|s| s.to_string()).collect();
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
        Gateway::start_on(dir, name, &relays, &extra, any_port, &launcher)
    }

    #[track_caller]
    fn start_on(
        dir: &Path,
        name: &str,
        relays: &[String],
        extra: &[String],
        listen: SocketAddr,
        launcher: &[String],
    ) -> Gateway {
        let mut cmd = match launcher.split_first() {
            None => Command::new(bin("gatewayd")),
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(bin("gatewayd"));
                cmd
            }
        };
        cmd.args(["--name", name])
            .arg("--listen")
            .arg(listen.to_string())
            .args(["--max-backoff-secs", MAX_BACKOFF_SECS])
            .args(extra);
        for relay in relays {
            cmd.arg("--relay").arg(relay);
        }
        let mut daemon = Daemon::spawn(name, cmd, dir);
        let status = daemon.wait_ready();
        let addr = daemon.listen_addr(&status);
        Gateway {
            daemon,
            name: name.to_owned(),
            addr,
            dir: dir.to_owned(),
            relays: relays.to_vec(),
            extra: extra.to_vec(),
        }
    }

    /// Stops gatewayd with SIGTERM (asserting a clean exit) and starts it
    /// again with the same name, relays and address; returns once ready.
    #[track_caller]
    pub fn restart(&mut self) {
        self.daemon.stop_cleanly();
        self.start_again();
    }

    /// Starts gatewayd again after it stopped (or was killed), with the same
    /// name, relays and address; returns once ready.
    #[track_caller]
    pub fn start_again(&mut self) {
        assert!(!self.daemon.is_running(), "{} is still running", self.name);
        let again = Gateway::start_on(
            &self.dir,
            &self.name,
            &self.relays,
            &self.extra,
            self.addr,
            &[],
        );
        assert_eq!(
            again.addr, self.addr,
            "{} came back on another address",
            self.name
        );
        *self = again;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address devices dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the gateway reports a relay link; returns the status.
    #[track_caller]
    pub fn wait_linked(&mut self) -> String {
        // gatewayd coalesces status lines it has not sent yet, so the one
        // that came with READY=1 may already say linked: no later one will.
        if let Some(s) = self.daemon.status()
            && s.contains("linked to relay")
        {
            return s.to_owned();
        }
        self.daemon.wait_status_contains("linked to relay")
    }

    /// Waits until the gateway reports that it has no relay link.
    #[track_caller]
    pub fn wait_unlinked(&mut self) -> String {
        self.daemon.wait_status_contains("no relay link")
    }

    /// Waits until the gateway reports `n` devices online (that answer calls).
    #[track_caller]
    pub fn wait_devices_online(&mut self, n: usize) -> String {
        // The count ends the status, so "1" does not match "devices online: 12".
        let tail = format!("devices online: {n}");
        self.daemon.wait_status(|s| s.ends_with(&tail))
    }
}

/// A gateway is a daemon with a known role: waits, signals and logs are the daemon's.
impl Deref for Gateway {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl DerefMut for Gateway {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

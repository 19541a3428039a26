//! relayd under test.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bins::bin;
use crate::daemon::Daemon;
use crate::fleet::Fleet;

/// A running relayd: its name, the address it bound and its data dir.
#[derive(Debug)]
pub struct Relay {
    daemon: Daemon,
    name: String,
    addr: SocketAddr,
    dir: PathBuf,
    data_dir: PathBuf,
    key_file: PathBuf,
}

impl Relay {
    /// Starts relayd `name` on 127.0.0.1 with a port of its choosing, its data
    /// in `dir/<name>.data`; returns once it is ready.
    #[track_caller]
    pub fn start(dir: &Path, fleet: &Fleet, name: &str) -> Relay {
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
        Relay::start_on(dir, fleet.key_file(), name, any_port, false)
    }

    /// Like [`Relay::start`], with relayd's stderr closed (see
    /// [`Daemon::spawn_with_stderr_closed`]).
    #[track_caller]
    pub fn start_with_stderr_closed(dir: &Path, fleet: &Fleet, name: &str) -> Relay {
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
        Relay::start_on(dir, fleet.key_file(), name, any_port, true)
    }

    #[track_caller]
    fn start_on(
        dir: &Path,
        key_file: &Path,
        name: &str,
        listen: SocketAddr,
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
            .arg(key_file);
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
        let status = self.daemon.terminate();
        assert!(
            status.success(),
            "{} exited with {status} on SIGTERM",
            self.name
        );
        self.start_again();
    }

    /// Starts relayd again after it stopped (or was killed), with the same
    /// name, data dir and address.
    #[track_caller]
    pub fn start_again(&mut self) {
        assert!(!self.daemon.is_running(), "{} is still running", self.name);
        let again = Relay::start_on(&self.dir, &self.key_file, &self.name, self.addr, false);
        assert_eq!(
            again.addr, self.addr,
            "{} came back on another address",
            self.name
        );
        *self = again;
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

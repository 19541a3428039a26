//! faxrecv under test: a receiving fax device with its own inbox directory.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::bins::bin;
use crate::daemon::{Daemon, WAIT};
use crate::fleet::Fleet;
use crate::images::{assert_same_pages, read_fax, sent_pages, tiffinfo_errors};

/// A running faxrecv.
#[derive(Debug)]
pub struct Receiver {
    daemon: Daemon,
    number: String,
    inbox: PathBuf,
}

impl Receiver {
    /// Starts faxrecv for `number` through `gateway`, with its own inbox in
    /// `dir` and any `extra` flags (`--busy`, `--max-pages 2`, ...); returns
    /// once it is logged in (READY=1).
    #[track_caller]
    pub fn start(
        dir: &Path,
        fleet: &Fleet,
        gateway: SocketAddr,
        number: &str,
        extra: &[&str],
    ) -> Receiver {
        let inbox = new_dir(dir, &format!("inbox-{number}"));
        Receiver::start_in(dir, fleet, gateway, number, inbox, extra)
    }

    /// Stops this faxrecv (SIGTERM) and starts another for the same number
    /// and inbox with `extra` flags (e.g. other capabilities); returns once
    /// it is logged in.
    #[track_caller]
    pub fn restart_with(&mut self, dir: &Path, fleet: &Fleet, gateway: SocketAddr, extra: &[&str]) {
        self.daemon.stop_cleanly();
        let again =
            Receiver::start_in(dir, fleet, gateway, &self.number, self.inbox.clone(), extra);
        *self = again;
    }

    /// Starts faxrecv again for the same number and inbox after it stopped
    /// (or was killed); returns once it is logged in.
    #[track_caller]
    pub fn start_again(&mut self, dir: &Path, fleet: &Fleet, gateway: SocketAddr, extra: &[&str]) {
        assert!(
            !self.daemon.is_running(),
            "faxrecv {} still runs",
            self.number
        );
        let again =
            Receiver::start_in(dir, fleet, gateway, &self.number, self.inbox.clone(), extra);
        *self = again;
    }

    /// [`Receiver::start`] with the inbox at `inbox` (e.g. on tmpfs).
    #[track_caller]
    pub fn start_in(
        dir: &Path,
        fleet: &Fleet,
        gateway: SocketAddr,
        number: &str,
        inbox: PathBuf,
        extra: &[&str],
    ) -> Receiver {
        let secret = fleet.secret_file(number);
        let mut receiver = Receiver::spawn_in(dir, &secret, gateway, number, inbox, extra);
        let status = receiver.daemon.wait_ready();
        let expected = format!("logged in as {number} at relay ");
        if !status.starts_with(&expected) {
            receiver.daemon.fail(&format!(
                "reported {status:?} when ready, expected {expected:?}..."
            ));
        }
        receiver
    }

    /// Starts faxrecv without waiting for it to log in (e.g. to see it refused).
    pub fn spawn(
        dir: &Path,
        secret_file: &Path,
        gateway: SocketAddr,
        number: &str,
        extra: &[&str],
    ) -> Receiver {
        let inbox = new_dir(dir, &format!("inbox-{number}"));
        Receiver::spawn_in(dir, secret_file, gateway, number, inbox, extra)
    }

    fn spawn_in(
        dir: &Path,
        secret_file: &Path,
        gateway: SocketAddr,
        number: &str,
        inbox: PathBuf,
        extra: &[&str],
    ) -> Receiver {
        let mut cmd = Command::new(bin("faxrecv"));
        cmd.arg("--gateway")
            .arg(gateway.to_string())
            .args(["--number", number])
            .arg("--secret-file")
            .arg(secret_file)
            .arg("--dir")
            .arg(&inbox)
            .args(extra);
        let daemon = Daemon::spawn(&format!("faxrecv-{number}"), cmd, dir);
        Receiver {
            daemon,
            number: number.to_owned(),
            inbox,
        }
    }

    pub fn number(&self) -> &str {
        &self.number
    }

    /// The directory faxes are stored in.
    pub fn inbox(&self) -> &Path {
        &self.inbox
    }

    /// Files in the inbox whose name ends with `suffix`, sorted.
    pub fn files_ending(&self, suffix: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.inbox)
            .unwrap_or_else(|e| panic!("cannot list {:?}: {e}", self.inbox))
            .map(|e| e.expect("a readable directory entry").path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        files.sort();
        files
    }

    /// Waits until faxrecv (started with `--pause-at-page N`) holds the
    /// confirmation of page N; returns the status, which names the call.
    #[track_caller]
    pub fn wait_paused(&mut self, page: u32) -> String {
        let text = format!("paused before confirming page {page} ");
        self.daemon.wait_status_contains(&text)
    }

    /// Lets a paused call go on (SIGUSR1).
    pub fn release(&mut self) {
        self.daemon.signal(libc::SIGUSR1);
    }

    /// Asserts that the inbox holds no complete fax, only `<call id>.tif.part`
    /// files (named so), and returns those.
    #[track_caller]
    pub fn assert_only_part_files(&self) -> Vec<PathBuf> {
        let all = self.files_ending("");
        let part = self.files_ending(".tif.part");
        assert_eq!(all, part, "{} holds more than .part files", self.number);
        part
    }

    /// Asserts that the inbox holds exactly one fax, call `call_id`, with the
    /// pages of `document`, complete (.tif and .json, nothing else) and
    /// clean in libtiff; returns the .tif.
    #[track_caller]
    pub fn assert_one_fax(&mut self, call_id: &str, document: &Path) -> PathBuf {
        let faxes = self.wait_faxes(1);
        let tif = self.inbox.join(format!("{call_id}.tif"));
        assert_eq!(
            faxes,
            std::slice::from_ref(&tif),
            "one fax, named after the call id"
        );
        assert_eq!(
            self.files_ending(""),
            [tif.with_extension("json"), tif.clone()],
            "exactly one .tif and its .json, nothing else"
        );
        assert_same_pages(&read_fax(&tif), &sent_pages(&[document.to_owned()]));
        assert_eq!(tiffinfo_errors(&tif), "", "libtiff reads {tif:?} cleanly");
        tif
    }

    /// The JSON description written beside the fax `tif`.
    #[track_caller]
    pub fn record(&self, tif: &Path) -> serde_json::Value {
        let json = tif.with_extension("json");
        let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{json:?}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{json:?}: {e}"))
    }

    /// The complete faxes: `<call id>.tif` files.
    pub fn faxes(&self) -> Vec<PathBuf> {
        self.files_ending(".tif")
    }

    /// Waits until `n` faxes are complete, i.e. their `.json` (written last)
    /// is there, and returns the `.tif` paths. A short polling loop with a
    /// deadline: a file appearing gives no signal to wait on.
    #[track_caller]
    pub fn wait_faxes(&mut self, n: usize) -> Vec<PathBuf> {
        let deadline = Instant::now() + WAIT;
        loop {
            let done = self.files_ending(".json").len();
            if done >= n {
                return self.faxes();
            }
            if Instant::now() >= deadline {
                let have = self.files_ending("");
                self.daemon.fail(&format!(
                    "has {done} complete faxes, not {n}; inbox holds {have:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Creates `dir/<stem>`, or `dir/<stem>-2`, `-3`... when taken.
fn new_dir(dir: &Path, stem: &str) -> PathBuf {
    for i in 1.. {
        let path = match i {
            1 => dir.join(stem),
            _ => dir.join(format!("{stem}-{i}")),
        };
        match std::fs::create_dir(&path) {
            Ok(()) => return path,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {path:?}: {e}"),
        }
    }
    unreachable!("the loop returns or panics")
}

/// A receiver is a daemon with a known role: waits, signals and logs are the daemon's.
impl Deref for Receiver {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl DerefMut for Receiver {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

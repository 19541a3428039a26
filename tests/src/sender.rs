//! Running faxsend and reading what it tells the user: exit code, report, message.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::bins::bin;
use crate::daemon::WAIT;

/// Longest a faxsend run may take: a whole call, so more than one wait.
const RUN_LIMIT: Duration = Duration::from_secs(3 * WAIT.as_secs());

/// A faxsend command line being put together.
#[derive(Debug)]
pub struct FaxSend {
    cmd: Command,
    dir: PathBuf,
}

/// How a faxsend run ended.
#[derive(Debug)]
pub struct Sent {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// From start to exit.
    pub elapsed: Duration,
}

/// The time faxsend prints on cover pages and tag lines in tests (seconds
/// since 1970: 2026-09-21 14:13 UTC).
pub const SEND_TIME: u64 = 1_790_000_000;

impl FaxSend {
    /// `faxsend --gateway GW --from FROM --secret-file SECRET --to TO FILES...`;
    /// its output goes to files in `dir`.
    pub fn new(
        dir: &Path,
        gateway: SocketAddr,
        from: &str,
        secret_file: &Path,
        to: &str,
        files: &[PathBuf],
    ) -> FaxSend {
        let mut cmd = Command::new(bin("faxsend"));
        cmd.arg("--gateway")
            .arg(gateway.to_string())
            .args(["--from", from, "--to", to])
            .arg("--secret-file")
            .arg(secret_file)
            .args(files);
        FaxSend::from_command(dir, cmd)
    }

    /// faxsend with exactly `args`.
    pub fn with_args(dir: &Path, args: &[&str]) -> FaxSend {
        let mut cmd = Command::new(bin("faxsend"));
        cmd.args(args);
        FaxSend::from_command(dir, cmd)
    }

    fn from_command(dir: &Path, mut cmd: Command) -> FaxSend {
        // faxsend is no daemon, and the secret comes from the command line.
        // Cover pages and tag lines print the time: a fixed one, in UTC, so
        // two runs draw the same pages.
        // Nor does a device config file or variable of the machine's count.
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("FAXMESH_SECRET")
            .env_remove("FAXMESH_GATEWAY")
            .env_remove("FAXMESH_FROM")
            .env_remove("FAXMESH_CA_FILE")
            .env("FAXMESH_DEVICE_CONFIG", "")
            .env("SOURCE_DATE_EPOCH", SEND_TIME.to_string())
            .env("TZ", "UTC");
        FaxSend {
            cmd,
            dir: dir.to_owned(),
        }
    }

    /// Adds an argument (`--json`, `--answer-timeout`, ...).
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> FaxSend {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> FaxSend
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Runs faxsend to the end (failing the test if it takes over a minute).
    #[track_caller]
    pub fn run(self) -> Sent {
        self.spawn().wait()
    }

    /// Starts faxsend and returns at once, so a test can break something
    /// while the call is under way; [`Running::wait`] collects the result.
    pub fn spawn(mut self) -> Running {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.join(format!("faxsend.{seq}.stdout"));
        let err_path = self.dir.join(format!("faxsend.{seq}.stderr"));
        let create = |p: &Path| {
            std::fs::File::create(p).unwrap_or_else(|e| panic!("cannot create {p:?}: {e}"))
        };
        // Files, not pipes: nothing to drain while waiting.
        let child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(create(&out_path))
            .stderr(create(&err_path))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run faxsend: {e}"));
        Running {
            child,
            cmd: format!("{:?}", self.cmd),
            out_path,
            err_path,
            started: Instant::now(),
        }
    }
}

/// A faxsend run under way; killed if dropped before [`Running::wait`].
#[derive(Debug)]
pub struct Running {
    child: Child,
    cmd: String,
    out_path: PathBuf,
    err_path: PathBuf,
    started: Instant,
}

impl Running {
    /// Waits for faxsend to exit (failing the test if the whole run takes
    /// over [`RUN_LIMIT`]: a hang is a failure) and reads what it said.
    #[track_caller]
    pub fn wait(mut self) -> Sent {
        let deadline = self.started + RUN_LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waitpid on our own child") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "faxsend ran for over {} s: {}\nstderr:\n{}",
                    RUN_LIMIT.as_secs(),
                    self.cmd,
                    std::fs::read_to_string(&self.err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Sent {
            code: status.code(),
            status,
            stdout: std::fs::read_to_string(&self.out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err_path).unwrap_or_default(),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Sent {
    /// Asserts that a call cut by a fault was reported as such: exit 9
    /// "partial delivery" when a confirmation had made it back before the
    /// cut, else exit 11 "link lost" (which one depends on where the
    /// confirmation was when a hop died).
    #[track_caller]
    pub fn assert_cut_short(&self) -> &Sent {
        match self.code {
            Some(9) => self.assert_failed(9, &["partial delivery"]),
            _ => self.assert_failed(11, &["link lost"]),
        }
    }

    /// Asserts the exit code, and that stderr says every one of `words`.
    #[track_caller]
    pub fn assert_failed(&self, code: i32, words: &[&str]) -> &Sent {
        assert_eq!(self.code, Some(code), "faxsend exit code; {self}");
        for word in words {
            assert!(
                self.stderr.contains(word),
                "faxsend stderr lacks {word:?}; {self}"
            );
        }
        self
    }

    /// Asserts exit 0 (every page confirmed).
    #[track_caller]
    pub fn assert_delivered(&self) -> &Sent {
        assert_eq!(self.code, Some(0), "faxsend did not deliver; {self}");
        self
    }

    /// The `--json` report.
    #[track_caller]
    pub fn report(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("faxsend's report is not one JSON object ({e}); {self}"))
    }

    /// The `--json` report's attempts, first to last.
    #[track_caller]
    pub fn attempts(&self) -> Vec<serde_json::Value> {
        match self.report()["attempts"].as_array() {
            Some(a) if !a.is_empty() => a.clone(),
            _ => panic!("faxsend's report lists no attempts; {self}"),
        }
    }

    /// The value of a `name:` line of the plain report.
    #[track_caller]
    pub fn report_line(&self, name: &str) -> &str {
        let prefix = format!("{name}:");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(str::trim)
            .unwrap_or_else(|| panic!("faxsend's report has no {name:?} line; {self}"))
    }
}

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "faxsend exited with {}\n--- stdout:\n{}--- stderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// The relays a delivered call went through, in order, from its `--json`
/// report (`via`).
#[track_caller]
pub fn via(sent: &Sent) -> Vec<String> {
    sent.report()["via"]
        .as_array()
        .unwrap_or_else(|| panic!("faxsend's report has no via list; {sent}"))
        .iter()
        .map(|v| v.as_str().expect("a relay name").to_owned())
        .collect()
}

//! Running faxsend and reading what it tells the user: exit code, report, message.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
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
}

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
        cmd.env_remove("NOTIFY_SOCKET").env_remove("FAXMESH_SECRET");
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
    pub fn run(mut self) -> Sent {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.join(format!("faxsend.{seq}.stdout"));
        let err_path = self.dir.join(format!("faxsend.{seq}.stderr"));
        let create = |p: &Path| {
            std::fs::File::create(p).unwrap_or_else(|e| panic!("cannot create {p:?}: {e}"))
        };
        // Files, not pipes: nothing to drain while waiting.
        let mut child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(create(&out_path))
            .stderr(create(&err_path))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run faxsend: {e}"));
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waitpid on our own child") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "faxsend ran for over {} s: {:?}\nstderr:\n{}",
                    RUN_LIMIT.as_secs(),
                    self.cmd,
                    std::fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Sent {
            code: status.code(),
            status,
            stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }
}

impl Sent {
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

//! A child process that speaks the notify protocol: relayd, gatewayd or
//! faxrecv. It runs with its stdout and stderr in files in the test's temp
//! dir, so a failing test can show what the process said.
//!
//! Waiting is never a sleep: every wait reads the notify socket (or the
//! process's exit) against a deadline of [`WAIT`], and on timeout fails the
//! test with the process's name, its last status and the tail of its stderr.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::notify::{Notification, NotifySocket};

/// The longest any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// How often a wait looks at whether the process is still alive.
const POLL: Duration = Duration::from_millis(20);

/// Lines of stderr shown when a wait fails.
const TAIL_LINES: usize = 40;

/// A running (or exited) child process with a notify socket.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    notify: NotifySocket,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    /// The last STATUS= read from the socket, and whether READY=1 and
    /// STOPPING=1 were seen.
    status: Option<String>,
    ready: bool,
    stopping: bool,
    exit: Option<ExitStatus>,
}

impl Daemon {
    /// Starts `cmd` with NOTIFY_SOCKET pointing at a fresh socket in `dir`,
    /// stdout and stderr going to files there. `name` names the process in
    /// messages and files ("relay-a", "faxrecv-1002").
    pub fn spawn(name: &str, cmd: Command, dir: &Path) -> Daemon {
        Daemon::spawn_with(name, cmd, dir, false)
    }

    /// Like [`Daemon::spawn`], but the process's stderr is a pipe that
    /// nobody reads, closed at once: every write to it fails (EPIPE), as when
    /// the journal a daemon logs to has gone away.
    pub fn spawn_with_stderr_closed(name: &str, cmd: Command, dir: &Path) -> Daemon {
        Daemon::spawn_with(name, cmd, dir, true)
    }

    fn spawn_with(name: &str, mut cmd: Command, dir: &Path, close_stderr: bool) -> Daemon {
        // Restarts reuse a name; a sequence number keeps every instance's files.
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let with_ext = |ext: &str| dir.join(format!("{name}.{seq}.{ext}"));
        let notify = NotifySocket::bind(&with_ext("notify"))
            .unwrap_or_else(|e| panic!("cannot bind a notify socket for {name} in {dir:?}: {e}"));
        let stdout_path = with_ext("stdout");
        let stderr_path = with_ext("stderr");
        let open = |p: &Path| {
            std::fs::File::create(p).unwrap_or_else(|e| panic!("cannot create {p:?}: {e}"))
        };
        cmd.env("NOTIFY_SOCKET", notify.path())
            // Logs go to files that people read in failure messages: no colour codes.
            .env("NO_COLOR", "1")
            // A device config file of the machine's never counts (faxrecv).
            .env("FAXMESH_DEVICE_CONFIG", "")
            .stdin(Stdio::null())
            .stdout(open(&stdout_path));
        if close_stderr {
            cmd.stderr(Stdio::piped());
        } else {
            cmd.stderr(open(&stderr_path));
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        // Dropping our end of the pipe closes it.
        drop(child.stderr.take());
        Daemon {
            name: name.to_owned(),
            child,
            notify,
            stdout_path,
            stderr_path,
            status: None,
            ready: false,
            stopping: false,
            exit: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last status read from the notify socket.
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    /// Whether STOPPING=1 has been read from the notify socket.
    pub fn stopping_seen(&self) -> bool {
        self.stopping
    }

    /// Waits for READY=1 and returns the status that came with it.
    #[track_caller]
    pub fn wait_ready(&mut self) -> String {
        self.wait("READY=1", |d| {
            d.ready.then(|| d.status.clone().unwrap_or_default())
        })
    }

    /// Waits for the next status that satisfies `pred` and returns it.
    ///
    /// Statuses are taken in the order the process sent them, each once: a
    /// wait reads (consumes) every status up to the one it returns, and a
    /// status read before the wait never counts. So a state the process
    /// passed through is not missed, and a wait for a state it reported
    /// before the action under test cannot pass on that old report: at
    /// worst it fails loudly after [`WAIT`].
    #[track_caller]
    pub fn wait_status(&mut self, pred: impl Fn(&str) -> bool) -> String {
        self.wait("a status matching the test's condition", |n| {
            n.status.clone().filter(|s| pred(s))
        })
    }

    /// Waits for the next status containing `text` (see [`Daemon::wait_status`]).
    #[track_caller]
    pub fn wait_status_contains(&mut self, text: &str) -> String {
        self.wait(&format!("a status containing {text:?}"), |n| {
            n.status.clone().filter(|s| s.contains(text))
        })
    }

    /// Waits for the next notification that satisfies `pred` (STOPPING=1,
    /// RELOADING=1, WATCHDOG=1, ...) and returns it; `what` names it in the
    /// failure message. Notifications are consumed in order, as in
    /// [`Daemon::wait_status`].
    #[track_caller]
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Notification) -> bool) -> Notification {
        self.wait(what, |n| pred(n).then(|| n.clone()))
    }

    /// Reads notifications until `found` returns something for one; fails
    /// the test when the deadline passes or the process exits first.
    #[track_caller]
    fn wait<T>(&mut self, what: &str, found: impl Fn(&Notification) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(n) = self.notify.recv_until(deadline.min(Instant::now() + POLL)) {
                let hit = found(&n);
                self.note(n);
                if let Some(t) = hit {
                    return t;
                }
                continue;
            }
            if let Some(status) = self.try_exit() {
                // Datagrams sent just before exiting are still queued.
                for n in self.notify.drain() {
                    let hit = found(&n);
                    self.note(n);
                    if let Some(t) = hit {
                        return t;
                    }
                }
                self.fail(&format!("exited ({status}) before {what}"));
            }
            if Instant::now() >= deadline {
                self.fail(&format!("sent no {what} within {} s", WAIT.as_secs()));
            }
        }
    }

    /// The notifications queued since the last read, without waiting
    /// (they also update [`Daemon::status`]).
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        let queued = self.notify.drain();
        for n in &queued {
            self.note(n.clone());
        }
        queued
    }

    fn note(&mut self, n: Notification) {
        self.ready |= n.ready;
        self.stopping |= n.stopping;
        if n.status.is_some() {
            self.status = n.status;
        }
    }

    /// Fails the test with what is known about the process.
    #[track_caller]
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{} {what}\n  last status: {}\n  stderr ({}), last lines:\n{}",
            self.name,
            self.status.as_deref().unwrap_or("(none)"),
            self.stderr_path.display(),
            self.stderr_tail()
        )
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("waitpid on our own child");
        }
        self.exit
    }

    pub fn is_running(&mut self) -> bool {
        self.try_exit().is_none()
    }

    /// Waits for the process to exit on its own, then reads what it still
    /// sent to the notify socket.
    #[track_caller]
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.try_exit() {
                for n in self.notify.drain() {
                    self.note(n);
                }
                return status;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("did not exit within {} s", WAIT.as_secs()));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends a signal to the process (while it has not been reaped).
    pub fn signal(&mut self, signal: libc::c_int) {
        if self.try_exit().is_some() {
            return;
        }
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) with the pid of our own child, which has not been
        // reaped yet (try_exit above), so the pid cannot have been reused.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}) of {}: {}",
            self.name,
            std::io::Error::last_os_error()
        );
    }

    /// Sends SIGTERM and waits (up to [`WAIT`]) for the process to exit.
    #[track_caller]
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    /// Sends SIGTERM and fails the test unless the process exits cleanly.
    #[track_caller]
    pub fn stop_cleanly(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "{} exited with {status} on SIGTERM",
            self.name()
        );
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.try_exit() {
            return status;
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("waitpid on our own child");
        self.exit = Some(status);
        status
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Waits until the process has written `text` to stdout; returns all of
    /// stdout. A short polling loop with a deadline: output gives no signal.
    #[track_caller]
    pub fn wait_stdout_contains(&self, text: &str) -> String {
        self.wait_output_contains("stdout", &[text], Daemon::stdout)
    }

    /// Waits until the process has logged `text` (to stderr); returns all
    /// of stderr. Polls like [`Daemon::wait_stdout_contains`].
    #[track_caller]
    pub fn wait_stderr_contains(&self, text: &str) -> String {
        self.wait_output_contains("stderr", &[text], Daemon::stderr)
    }

    /// Waits until the process has logged any of `texts` (stderr); returns all of it.
    #[track_caller]
    pub fn wait_stderr_contains_any(&self, texts: &[&str]) -> String {
        self.wait_output_contains("stderr", texts, Daemon::stderr)
    }

    #[track_caller]
    fn wait_output_contains(
        &self,
        which: &str,
        text: &[&str],
        read: fn(&Daemon) -> String,
    ) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let out = read(self);
            if text.iter().any(|t| out.contains(t)) {
                return out;
            }
            if Instant::now() >= deadline {
                let shown = if which == "stdout" {
                    format!("; stdout: {out:?}")
                } else {
                    String::new()
                };
                self.fail(&format!(
                    "did not write {text:?} to {which} within {} s{shown}",
                    WAIT.as_secs()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The last lines of stderr, indented, for failure messages.
    pub fn stderr_tail(&self) -> String {
        let all = self.stderr();
        let lines: Vec<&str> = all.lines().collect();
        let start = lines.len().saturating_sub(TAIL_LINES);
        lines[start..]
            .iter()
            .map(|l| format!("    {l}\n"))
            .collect()
    }

    /// The address in a `listening on ADDR` status (up to a `;`).
    #[track_caller]
    pub fn listen_addr(&self, status: &str) -> SocketAddr {
        status
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split(';').next())
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| self.fail(&format!("sent a status without an address: {status:?}")))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let was_running = self.try_exit().is_none();
        // A stopped (SIGSTOP) process still dies of SIGKILL.
        self.kill();
        if std::thread::panicking() {
            let state = if was_running { "killed" } else { "had exited" };
            eprintln!(
                "--- {} ({state}; last status: {}) stderr, last lines:\n{}",
                self.name,
                self.status.as_deref().unwrap_or("(none)"),
                self.stderr_tail()
            );
        }
    }
}

//! What the daemon tests share: a notify socket the test owns (so it hears
//! READY=1, STATUS= and STOPPING=1 as systemd would), a daemon process that
//! is killed if a test fails, and signals sent with kill(1).
//!
//! Copied verbatim into each daemon crate's tests (relayd, gatewayd): a test
//! file of a crate cannot share code with another crate's tests.

#![allow(dead_code)]
// Test helpers: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A datagram socket standing in for systemd's notify socket.
pub struct NotifySocket {
    socket: UnixDatagram,
    pub path: std::path::PathBuf,
    /// Every message heard so far, in order.
    pub heard: Vec<HashMap<String, String>>,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket {
            socket,
            path,
            heard: Vec::new(),
        }
    }

    /// Waits for a message that satisfies `want`, returning it.
    pub fn wait_for(
        &mut self,
        what: &str,
        deadline: Duration,
        want: impl Fn(&HashMap<String, String>) -> bool,
    ) -> HashMap<String, String> {
        let end = Instant::now() + deadline;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("no {what} within {deadline:?}; heard {:#?}", self.heard);
            }
            self.socket.set_read_timeout(Some(left)).unwrap();
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    continue;
                }
                Err(e) => panic!("notify socket: {e}"),
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let msg: HashMap<String, String> = text
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            self.heard.push(msg.clone());
            if want(&msg) {
                return msg;
            }
        }
    }

    /// Waits for READY=1 and returns its STATUS.
    pub fn ready(&mut self) -> String {
        let msg = self.wait_for("READY=1", Duration::from_secs(20), |m| {
            m.get("READY").is_some_and(|v| v == "1")
        });
        msg.get("STATUS").cloned().unwrap_or_default()
    }

    /// Waits for a STATUS containing `needle`.
    pub fn status_containing(&mut self, needle: &str, deadline: Duration) -> String {
        let msg = self.wait_for(&format!("STATUS with '{needle}'"), deadline, |m| {
            m.get("STATUS").is_some_and(|s| s.contains(needle))
        });
        msg["STATUS"].clone()
    }
}

/// A daemon under test; killed on drop unless it was waited for.
pub struct Daemon {
    pub child: Child,
    pub name: &'static str,
}

impl Daemon {
    /// Starts `bin` with `args`, its notify socket at `notify`, stderr
    /// captured (see [`Daemon::wait`]).
    pub fn start(bin: &str, name: &'static str, args: &[&str], notify: &Path) -> Daemon {
        Daemon::start_with_env(bin, name, args, notify, &[])
    }

    /// Like [`Daemon::start`], with extra environment variables.
    pub fn start_with_env(
        bin: &str,
        name: &'static str,
        args: &[&str],
        notify: &Path,
        env: &[(&str, &str)],
    ) -> Daemon {
        let child = Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .env("NOTIFY_SOCKET", notify)
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        Daemon { child, name }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {} failed", self.child.id());
    }

    /// Waits for the exit (at most `deadline`); returns status and stderr.
    pub fn wait(mut self, deadline: Duration) -> (ExitStatus, String) {
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut err).unwrap();
                }
                return (status, err);
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("{} did not exit within {deadline:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The first address after `listening on ` in a status line.
pub fn listen_addr(status: &str) -> String {
    field(status, "listening on ").unwrap_or_else(|| panic!("no address in STATUS {status:?}"))
}

/// The word after `prefix` in a status line (up to `;`).
pub fn field(status: &str, prefix: &str) -> Option<String> {
    let rest = &status[status.find(prefix)? + prefix.len()..];
    Some(rest.split(';').next().unwrap_or(rest).trim().to_owned())
}

/// GET over plain HTTP/1.1; returns (status code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad response {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

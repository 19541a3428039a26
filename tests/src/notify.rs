//! The test's end of systemd's notify protocol: a datagram socket whose path
//! goes to the child as NOTIFY_SOCKET, and the notifications read from it.
//!
//! This is how tests wait for a daemon without sleeping: READY=1 says it is
//! up, STATUS= says what it is doing (and which address it bound), and
//! STOPPING=1 says it heard SIGTERM.

use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One datagram: `KEY=value` lines, of which we keep the ones tests use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notification {
    pub ready: bool,
    pub stopping: bool,
    /// RELOADING=1: the daemon heard SIGHUP and is applying its config.
    pub reloading: bool,
    /// WATCHDOG=1: a keep-alive ping for systemd's watchdog.
    pub watchdog: bool,
    pub status: Option<String>,
}

impl Notification {
    pub fn parse(datagram: &str) -> Notification {
        let mut n = Notification::default();
        for line in datagram.lines() {
            match line.split_once('=') {
                Some(("READY", "1")) => n.ready = true,
                Some(("STOPPING", "1")) => n.stopping = true,
                Some(("RELOADING", "1")) => n.reloading = true,
                Some(("WATCHDOG", "1")) => n.watchdog = true,
                Some(("STATUS", s)) => n.status = Some(s.to_owned()),
                _ => {}
            }
        }
        n
    }
}

/// A bound notify socket.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds a socket at `path` (which must not exist; a unix socket path
    /// must stay under about 100 bytes, which a temp dir does).
    pub fn bind(path: &Path) -> std::io::Result<NotifySocket> {
        let socket = UnixDatagram::bind(path)?;
        Ok(NotifySocket {
            socket,
            path: path.to_owned(),
        })
    }

    /// The value for NOTIFY_SOCKET.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next notification, waiting until `deadline` at most.
    pub fn recv_until(&self, deadline: Instant) -> Option<Notification> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            // A zero timeout would mean "block forever", hence the floor.
            let wait = left.max(Duration::from_millis(1));
            self.socket
                .set_read_timeout(Some(wait))
                .expect("a non-zero read timeout is accepted");
            match self.socket.recv(&mut buf) {
                Ok(n) => return Some(Notification::parse(&String::from_utf8_lossy(&buf[..n]))),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("reading notify socket {}: {e}", self.path.display()),
            }
        }
    }

    /// Every notification already queued, without waiting.
    pub fn drain(&self) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        self.socket
            .set_nonblocking(true)
            .expect("a socket can be made non-blocking");
        while let Ok(n) = self.socket.recv(&mut buf) {
            out.push(Notification::parse(&String::from_utf8_lossy(&buf[..n])));
        }
        self.socket
            .set_nonblocking(false)
            .expect("a socket can be made blocking");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_sd_notify_sends() {
        let n = Notification::parse("READY=1\nSTATUS=listening on 127.0.0.1:4710\n");
        assert!(n.ready && !n.stopping);
        assert_eq!(n.status.as_deref(), Some("listening on 127.0.0.1:4710"));
        let n = Notification::parse("STOPPING=1\nSTATUS=stopping");
        assert!(n.stopping && !n.ready);
        let n = Notification::parse("RELOADING=1\nMONOTONIC_USEC=1");
        assert!(n.reloading && !n.watchdog);
        assert!(Notification::parse("WATCHDOG=1").watchdog);
    }

    #[test]
    fn receives_datagrams_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let sock = NotifySocket::bind(&dir.path().join("n.sock")).unwrap();
        let tx = UnixDatagram::unbound().unwrap();
        tx.send_to(b"READY=1\nSTATUS=hi", sock.path()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let n = sock.recv_until(deadline).unwrap();
        assert!(n.ready);
        assert_eq!(n.status.as_deref(), Some("hi"));
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(sock.recv_until(soon), None);
        tx.send_to(b"STATUS=a", sock.path()).unwrap();
        tx.send_to(b"STATUS=b", sock.path()).unwrap();
        assert_eq!(sock.drain().len(), 2);
    }
}

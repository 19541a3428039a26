//! A real `redis-server` for a test: on a free loopback port, no
//! persistence (a restart starts empty, like a lost server), killed on drop.
//! Ready means it answers PING; waits poll that with a deadline.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::WAIT;

const POLL: Duration = Duration::from_millis(20);

/// A running redis-server.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// A prefix no other test uses, for `--directory-prefix`.
    prefix: String,
}

impl RedisServer {
    /// Starts redis-server with its log in `dir/redis.log`; returns once it
    /// answers PING. Fails the test with a hint when it is not installed.
    #[track_caller]
    pub fn start(dir: &Path) -> RedisServer {
        // redis-server cannot pick its own port (0 means "no TCP"): take one
        // the kernel hands out and release it just before.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer {
            child: None,
            port,
            dir: dir.to_owned(),
            prefix: format!("t{}", std::process::id()),
        };
        server.start_again();
        server
    }

    /// Starts the server again on the same port, empty.
    #[track_caller]
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server is still running");
        let log = self.dir.join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): install it (Debian: apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(mut c) = self.connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "redis-server exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server never answered PING on port {}",
                self.port
            );
            std::thread::sleep(POLL);
        }
    }

    /// Stops the server at once (SIGKILL): its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The relayd flags for directory mode on this server, with `lease_secs`.
    pub fn relay_flags(&self, lease_secs: u64) -> Vec<String> {
        vec![
            "--directory".into(),
            self.url(),
            "--directory-prefix".into(),
            self.prefix.clone(),
            "--lease-secs".into(),
            lease_secs.to_string(),
        ]
    }

    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(self.url())?;
        client.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// GET `key` (None when absent or the server does not answer).
    pub fn get(&self, key: &str) -> Option<String> {
        let mut c = self.connection().ok()?;
        redis::cmd("GET").arg(key).query(&mut c).ok().flatten()
    }

    /// The record of device `number` as JSON, if present.
    pub fn device(&self, number: &str) -> Option<serde_json::Value> {
        let json = self.get(&format!("{}:dev:{number}", self.prefix))?;
        serde_json::from_str(&json).ok()
    }

    /// Polls until `pred` holds on the device's record (or its absence);
    /// fails the test after [`WAIT`].
    #[track_caller]
    pub fn wait_device(
        &self,
        number: &str,
        what: &str,
        pred: impl Fn(Option<&serde_json::Value>) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.device(number);
            if pred(v.as_ref()) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "redis never showed {what} for {number}; last: {v:?}"
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

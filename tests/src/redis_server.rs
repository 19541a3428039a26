//! A real `redis-server` for a test: on a free loopback port, no
//! persistence (a restart starts empty, like a lost server), killed on drop.
//! Ready means it answers PING; waits poll that with a deadline.
//!
//! Also a Redis Cluster ([`RedisCluster`]: three masters with a replica
//! each) and a master watched by Sentinel ([`RedisSentinel`]: a master, a
//! replica, three sentinels), whose masters a test can SIGKILL to watch a
//! failover.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::WAIT;

const POLL: Duration = Duration::from_millis(20);

/// A free loopback port: redis-server cannot pick its own (0 means "no
/// TCP"), so take one the kernel hands out and release it just before.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Where redis-server processes run: on loopback, or in a network
/// namespace on an address of their own that this process reaches.
#[derive(Clone, Debug)]
pub struct Host {
    /// The command line that runs a program there (`ip netns exec NS`).
    launcher: Vec<String>,
    ip: IpAddr,
}

impl Host {
    /// This namespace's loopback, on free ports.
    pub fn loopback() -> Host {
        Host {
            launcher: Vec::new(),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// Inside network namespace `ns`, listening on `ip` (which must be
    /// routed to from here), on fixed ports: the namespace has them all.
    pub fn namespace(ns: &str, ip: Ipv4Addr) -> Host {
        Host {
            launcher: ["ip", "netns", "exec", ns].map(str::to_owned).to_vec(),
            ip: IpAddr::V4(ip),
        }
    }

    /// The `n`th port for a server: a free one on loopback, 6379 + `n` in a
    /// namespace.
    fn port(&self, n: u16) -> u16 {
        match self.launcher.is_empty() {
            true => free_port(),
            false => 6379 + n,
        }
    }

    /// `redis-server`, run there; `args` come first (a sentinel's config file).
    fn command(&self, args: &[String]) -> Command {
        match self.launcher.split_first() {
            None => {
                let mut cmd = Command::new("redis-server");
                cmd.args(args);
                cmd
            }
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                // Clients come from other namespaces, not loopback: protected
                // mode (no password, no loopback) would turn them away.
                cmd.args(rest)
                    .arg("redis-server")
                    .args(args)
                    .args(["--protected-mode", "no"]);
                cmd
            }
        }
    }
}

/// A running redis-server.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// A prefix no other test uses, for `--directory-prefix`.
    prefix: String,
    /// Also serving TLS ([`RedisServer::start_tls`]).
    tls: Option<TlsPort>,
}

/// The TLS side of a [`RedisServer`]: its port and the certificate it shows.
#[derive(Debug)]
struct TlsPort {
    port: u16,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl RedisServer {
    /// Starts redis-server with its log in `dir/redis.log`; returns once it
    /// answers PING. Fails the test with a hint when it is not installed.
    #[track_caller]
    pub fn start(dir: &Path) -> RedisServer {
        RedisServer::launch(dir, None)
    }

    /// Starts redis-server serving TLS too, with a certificate for
    /// 127.0.0.1 from `pki` (what `relayd tls cert` writes, as an operator
    /// would hand it to Redis): relays use [`RedisServer::tls_url`]; the
    /// test's own reads keep the plaintext port.
    #[track_caller]
    pub fn start_tls(dir: &Path, pki: &crate::Pki) -> RedisServer {
        let (cert, key) = pki.cert("redis");
        let tls = TlsPort {
            port: free_port(),
            cert,
            key,
            ca: pki.ca_file(),
        };
        RedisServer::launch(dir, Some(tls))
    }

    #[track_caller]
    fn launch(dir: &Path, tls: Option<TlsPort>) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir: dir.to_owned(),
            prefix: format!("t{}", std::process::id()),
            tls,
        };
        server.start_again();
        server
    }

    /// Starts the server again on the same port, empty.
    #[track_caller]
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server is still running");
        let log = self.dir.join("redis.log");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()]).args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        if let Some(t) = &self.tls {
            cmd.args([
                "--tls-port",
                &t.port.to_string(),
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(&t.cert)
            .arg("--tls-key-file")
            .arg(&t.key)
            .arg("--tls-ca-cert-file")
            .arg(&t.ca);
        }
        let child = cmd
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

    /// `rediss://127.0.0.1:TLSPORT/` of a server from
    /// [`RedisServer::start_tls`].
    #[track_caller]
    pub fn tls_url(&self) -> String {
        let tls = self.tls.as_ref().expect("a server started with start_tls");
        format!("rediss://127.0.0.1:{}/", tls.port)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The relayd flags for directory mode on this server, with `lease_secs`.
    pub fn relay_flags(&self, lease_secs: u64) -> Vec<String> {
        directory_flags(&self.url(), &self.prefix, lease_secs)
    }

    /// The relayd flags for directory mode over TLS ([`RedisServer::tls_url`]),
    /// trusting `ca_file` when given (else the system's roots).
    #[track_caller]
    pub fn tls_relay_flags(&self, lease_secs: u64, ca_file: Option<&Path>) -> Vec<String> {
        let mut flags = directory_flags(&self.tls_url(), &self.prefix, lease_secs);
        if let Some(ca) = ca_file {
            flags.push("--directory-ca-file".into());
            flags.push(ca.display().to_string());
        }
        flags
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
        device(|k| self.get(k), &self.prefix, number)
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
        wait_device(|n| self.device(n), number, what, pred)
    }
}

fn device(
    get: impl Fn(&str) -> Option<String>,
    prefix: &str,
    number: &str,
) -> Option<serde_json::Value> {
    let json = get(&format!("{prefix}:dev:{number}"))?;
    serde_json::from_str(&json).ok()
}

#[track_caller]
fn wait_device(
    device: impl Fn(&str) -> Option<serde_json::Value>,
    number: &str,
    what: &str,
    pred: impl Fn(Option<&serde_json::Value>) -> bool,
) -> Option<serde_json::Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = device(number);
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

/// Polls `what` until it returns Some, failing the test after `limit`.
#[track_caller]
fn poll<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// A connection to the redis-server (or sentinel) at `ip`:`port`.
fn connect_at(ip: IpAddr, port: u16) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://{}", SocketAddr::new(ip, port)))?;
    client.get_connection_with_timeout(Duration::from_secs(2))
}

/// `redis-cli -p PORT ARGS...` through the crate; None if it fails.
fn query<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> Option<T> {
    query_at(IpAddr::V4(Ipv4Addr::LOCALHOST), port, args)
}

/// `redis-cli -h IP -p PORT ARGS...` through the crate; None if it fails.
fn query_at<T: redis::FromRedisValue>(ip: IpAddr, port: u16, args: &[&str]) -> Option<T> {
    let mut c = connect_at(ip, port).ok()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c).ok()
}

/// One redis-server process (a cluster node, a sentinel), killed on drop.
#[derive(Debug)]
struct Process {
    child: Option<Child>,
    port: u16,
    /// SIGSTOPped: it would not answer.
    paused: bool,
    host: Host,
    dir: PathBuf,
    args: Vec<String>,
}

impl Process {
    /// Starts `redis-server ARGS` with its files in `dir` (created) and
    /// waits until it answers PING.
    #[track_caller]
    fn start(dir: &Path, port: u16, args: &[String]) -> Process {
        Process::start_on(&Host::loopback(), dir, port, args)
    }

    /// [`Process::start`] on `host`.
    #[track_caller]
    fn start_on(host: &Host, dir: &Path, port: u16, args: &[String]) -> Process {
        let mut p = Process {
            child: None,
            port,
            paused: false,
            host: host.clone(),
            dir: dir.to_owned(),
            args: args.to_vec(),
        };
        p.start_again();
        p
    }

    /// Starts the process again after [`Process::kill`], as it was first
    /// started (empty: nothing is saved).
    #[track_caller]
    fn start_again(&mut self) {
        let (dir, port) = (self.dir.clone(), self.port);
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let log = dir.join("redis.log");
        let child = self
            .host
            .command(&self.args)
            .args(["--port", &port.to_string(), "--bind", &self.host.ip.to_string()])
            .arg("--dir")
            .arg(&dir)
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
        self.paused = false;
        let ip = self.host.ip;
        poll(
            WAIT,
            &format!("redis-server on port {port} to answer PING"),
            || {
                if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                    panic!(
                        "redis-server exited with {status}: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                query_at::<String>(ip, port, &["PING"])
            },
        );
    }

    /// `query` to this process.
    fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> Option<T> {
        query_at(self.host.ip, self.port, args)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn alive(&self) -> bool {
        self.child.is_some() && !self.paused
    }

    /// SIGSTOP (`stop`) or SIGCONT: a paused server neither answers nor
    /// replicates, as if its network were cut.
    fn signal(&mut self, stop: bool) {
        self.paused = stop;
        let child = self.child.as_ref().expect("a running redis-server");
        let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
        let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) with the pid of our own child, which is only
        // reaped by kill() above (that takes `child`), so the pid cannot
        // have been reused.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {sig}): {}",
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How long a test waits for a failover: seconds of detection and election.
pub const FAILOVER_WAIT: Duration = Duration::from_secs(30);

/// A Redis Cluster on loopback: three masters with one replica each,
/// nodes time out after a second (so a failover takes seconds).
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Process>,
    prefix: String,
}

impl RedisCluster {
    /// Starts six nodes, joins them with `redis-cli --cluster create`, and
    /// returns once every node says `cluster_state:ok` and every replica
    /// is in sync.
    #[track_caller]
    pub fn start(dir: &Path) -> RedisCluster {
        let nodes: Vec<Process> = (0..6)
            .map(|i| {
                // The bus port is given too: PORT+10000 may not be free (or exist).
                let (port, bus) = (free_port(), free_port());
                let dir = dir.join(format!("cluster-node-{i}"));
                let args: Vec<String> = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus.to_string(),
                    "--cluster-node-timeout",
                    "1000",
                    // A replica paused for a moment may still take over.
                    "--cluster-replica-validity-factor",
                    "0",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]
                .iter()
                .map(ToString::to_string)
                .collect();
                Process::start(&dir, port, &args)
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-cli ({e}): install it (Debian: apt-get install redis-tools)"
                )
            });
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster {
            nodes,
            prefix: format!("t{}", std::process::id()),
        };
        for n in &cluster.nodes {
            poll(
                WAIT,
                &format!("node {} to see the cluster ok", n.port),
                || {
                    let info: String = query(n.port, &["CLUSTER", "INFO"])?;
                    (info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6"))
                        .then_some(())
                },
            );
            poll(WAIT, &format!("node {} in sync", n.port), || {
                let info: String = query(n.port, &["INFO", "replication"])?;
                (info.contains("role:master") || info.contains("master_link_status:up"))
                    .then_some(())
            });
        }
        cluster
    }

    /// `redis+cluster://` with the first three nodes as seeds.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.nodes[..3]
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}/", seeds.join(","))
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The relayd flags for directory mode on this cluster.
    pub fn relay_flags(&self, lease_secs: u64) -> Vec<String> {
        directory_flags(&self.url(), &self.prefix, lease_secs)
    }

    fn live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.alive())
            .map(|n| n.port)
            .expect("a live cluster node")
    }

    /// The port of the master serving `key`'s slot, as a live node sees it.
    pub fn master_of(&self, key: &str) -> Option<u16> {
        let port = self.live_port();
        let slot: i64 = query(port, &["CLUSTER", "KEYSLOT", key])?;
        // CLUSTER SLOTS: [[start, end, [host, port, id], replicas...]...]
        let slots: Vec<redis::Value> = query(port, &["CLUSTER", "SLOTS"])?;
        slots.into_iter().find_map(|range| {
            let redis::Value::Array(fields) = range else {
                return None;
            };
            let start: i64 = redis::from_redis_value_ref(fields.first()?).ok()?;
            let end: i64 = redis::from_redis_value_ref(fields.get(1)?).ok()?;
            // [host, port, id, metadata]: Redis 7 added the metadata.
            let redis::Value::Array(master) = fields.get(2)? else {
                return None;
            };
            let master_port: u16 = redis::from_redis_value_ref(master.get(1)?).ok()?;
            (start <= slot && slot <= end).then_some(master_port)
        })
    }

    fn node(&mut self, port: u16) -> &mut Process {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster")
    }

    /// SIGKILLs the node on `port`.
    pub fn kill(&mut self, port: u16) {
        self.node(port).kill();
    }

    /// Pauses the node on `port` (SIGSTOP): it stops replicating.
    pub fn pause(&mut self, port: u16) {
        self.node(port).signal(true);
    }

    /// Resumes a paused node (SIGCONT).
    pub fn resume(&mut self, port: u16) {
        self.node(port).signal(false);
    }

    /// The port of the replica of the master on `master`.
    pub fn replica_of(&self, master: u16) -> u16 {
        let text: String = query(self.live_port(), &["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        // ID HOST:PORT@BUS FLAGS MASTER-ID ...
        let port_of = |addr: &str| -> Option<u16> {
            addr.split('@').next()?.rsplit_once(':')?.1.parse().ok()
        };
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let id = lines
            .iter()
            .find(|f| port_of(f[1]) == Some(master))
            .map(|f| f[0])
            .expect("the master in CLUSTER NODES");
        lines
            .iter()
            .find(|f| f[3] == id)
            .and_then(|f| port_of(f[1]))
            .expect("a replica of the master")
    }

    /// Waits until a replica took over `key`'s slot from the master on
    /// `dead`, and answers as a master in a cluster that is ok again.
    #[track_caller]
    pub fn wait_failover(&self, key: &str, dead: u16) -> u16 {
        poll(
            FAILOVER_WAIT,
            &format!("a replica to take over from {dead}"),
            || {
                let new = self.master_of(key).filter(|p| *p != dead)?;
                let info: String = query(new, &["CLUSTER", "INFO"])?;
                let role: Vec<redis::Value> = query(new, &["ROLE"])?;
                let is_master =
                    matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master");
                (info.contains("cluster_state:ok") && is_master).then_some(new)
            },
        )
    }

    /// GET `key` from the master serving it (None when absent or down).
    pub fn get(&self, key: &str) -> Option<String> {
        let port = self.master_of(key)?;
        query::<Option<String>>(port, &["GET", key]).flatten()
    }

    /// The record of device `number` as JSON, if present.
    pub fn device(&self, number: &str) -> Option<serde_json::Value> {
        device(|k| self.get(k), &self.prefix, number)
    }

    /// Polls until `pred` holds on the device's record; fails after [`WAIT`].
    #[track_caller]
    pub fn wait_device(
        &self,
        number: &str,
        what: &str,
        pred: impl Fn(Option<&serde_json::Value>) -> bool,
    ) -> Option<serde_json::Value> {
        wait_device(|n| self.device(n), number, what, pred)
    }
}

/// The master name the sentinels watch.
pub const SENTINEL_MASTER: &str = "faxmain";

/// A master, its replica and three sentinels on loopback; the sentinels
/// call the master down after a second and fail over in seconds.
#[derive(Debug)]
pub struct RedisSentinel {
    master: Process,
    replica: Process,
    sentinels: Vec<Process>,
    prefix: String,
    host: Host,
}

impl RedisSentinel {
    /// Starts the master, the replica and the sentinels; returns once the
    /// replica is in sync and every sentinel knows it and the others.
    #[track_caller]
    pub fn start(dir: &Path) -> RedisSentinel {
        RedisSentinel::start_on(dir, &Host::loopback())
    }

    /// [`RedisSentinel::start`] with every process on `host`.
    #[track_caller]
    pub fn start_on(dir: &Path, host: &Host) -> RedisSentinel {
        let plain: Vec<String> = ["--save", "", "--appendonly", "no"]
            .iter()
            .map(ToString::to_string)
            .collect();
        let master = Process::start_on(host, &dir.join("sentinel-master"), host.port(0), &plain);
        let mut replica_args = plain.clone();
        replica_args.extend([
            "--replicaof".into(),
            host.ip.to_string(),
            master.port.to_string(),
        ]);
        let replica = Process::start_on(
            host,
            &dir.join("sentinel-replica"),
            host.port(1),
            &replica_args,
        );
        poll(WAIT, "the replica in sync", || {
            let info: String = replica.query(&["INFO", "replication"])?;
            info.contains("master_link_status:up").then_some(())
        });
        let sentinels = (0..3)
            .map(|i| {
                let dir = dir.join(format!("sentinel-{i}"));
                std::fs::create_dir_all(&dir).expect("a sentinel directory");
                // A sentinel rewrites its config file, so each has its own.
                let conf = dir.join("sentinel.conf");
                let m = SENTINEL_MASTER;
                std::fs::write(
                    &conf,
                    format!(
                        "sentinel monitor {m} {} {} 2
                         sentinel down-after-milliseconds {m} 1000
                         sentinel failover-timeout {m} 5000
                         sentinel parallel-syncs {m} 1
",
                        host.ip, master.port
                    ),
                )
                .expect("a sentinel config file");
                let args = vec![conf.display().to_string(), "--sentinel".into()];
                Process::start_on(host, &dir, host.port(20_000 + i), &args)
            })
            .collect::<Vec<_>>();
        for s in &sentinels {
            poll(
                WAIT,
                &format!("sentinel {} to know its peers", s.port),
                || {
                    let fields: HashMap<String, String> =
                        s.query(&["SENTINEL", "MASTER", SENTINEL_MASTER])?;
                    (fields.get("num-slaves")? == "1" && fields.get("num-other-sentinels")? == "2")
                        .then_some(())
                },
            );
        }
        RedisSentinel {
            master,
            replica,
            sentinels,
            prefix: format!("t{}", std::process::id()),
            host: host.clone(),
        }
    }

    /// `redis+sentinel://S1,S2,S3/faxmain`.
    pub fn url(&self) -> String {
        let list: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| SocketAddr::new(self.host.ip, s.port).to_string())
            .collect();
        format!("redis+sentinel://{}/{SENTINEL_MASTER}", list.join(","))
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The relayd flags for directory mode through these sentinels.
    pub fn relay_flags(&self, lease_secs: u64) -> Vec<String> {
        directory_flags(&self.url(), &self.prefix, lease_secs)
    }

    /// The master's port as a sentinel names it.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let (_, port): (String, u16) =
                s.query(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER])?;
            Some(port)
        })
    }

    /// SIGKILLs the master.
    pub fn kill_master(&mut self) {
        self.master.kill();
    }

    /// SIGKILLs whichever server the sentinels name as the master now (the
    /// first one, or the replica after a failover); returns its port.
    pub fn kill_current_master(&mut self) -> Option<u16> {
        let port = self.master_port()?;
        let p = [&mut self.master, &mut self.replica]
            .into_iter()
            .find(|p| p.port == port)?;
        p.kill();
        Some(port)
    }

    /// Starts the server on `port` again after [`RedisSentinel::kill_current_master`],
    /// empty, as what its config file would say once the sentinels rewrote
    /// it: a replica of the master they name now (a plain master while they
    /// name none, or name this one). Started with its first command line
    /// instead, the first replica would come back as a replica of the
    /// master it replaced: two replicas of each other, and no failover.
    #[track_caller]
    pub fn start_again(&mut self, port: u16) {
        let master = self.master_port().filter(|&m| m != port);
        let ip = self.host.ip.to_string();
        for p in [&mut self.master, &mut self.replica] {
            if p.port == port && p.child.is_none() {
                if let Some(i) = p.args.iter().position(|a| a == "--replicaof") {
                    p.args.drain(i..i + 3);
                }
                if let Some(m) = master {
                    p.args
                        .extend(["--replicaof".to_owned(), ip.clone(), m.to_string()]);
                }
                p.start_again();
            }
        }
    }

    /// Pauses the replica (SIGSTOP): it stops replicating.
    pub fn pause_replica(&mut self) {
        self.replica.signal(true);
    }

    /// Resumes the replica (SIGCONT).
    pub fn resume_replica(&mut self) {
        self.replica.signal(false);
    }

    /// Waits until the sentinels name the replica as the master and it
    /// answers as one.
    #[track_caller]
    pub fn wait_failover(&self) {
        poll(
            FAILOVER_WAIT,
            "the sentinels to promote the replica",
            || {
                let named = self.master_port()? == self.replica.port;
                let info: String = self.replica.query(&["INFO", "replication"])?;
                (named && info.contains("role:master")).then_some(())
            },
        );
    }

    /// GET `key` from the master the sentinels name.
    pub fn get(&self, key: &str) -> Option<String> {
        query_at::<Option<String>>(self.host.ip, self.master_port()?, &["GET", key]).flatten()
    }

    /// The record of device `number` as JSON, if present.
    pub fn device(&self, number: &str) -> Option<serde_json::Value> {
        device(|k| self.get(k), &self.prefix, number)
    }

    /// Polls until `pred` holds on the device's record; fails after [`WAIT`].
    #[track_caller]
    pub fn wait_device(
        &self,
        number: &str,
        what: &str,
        pred: impl Fn(Option<&serde_json::Value>) -> bool,
    ) -> Option<serde_json::Value> {
        wait_device(|n| self.device(n), number, what, pred)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// relayd's flags for directory mode at `url`.
fn directory_flags(url: &str, prefix: &str, lease_secs: u64) -> Vec<String> {
    vec![
        "--directory".into(),
        url.into(),
        "--directory-prefix".into(),
        prefix.into(),
        "--lease-secs".into(),
        lease_secs.to_string(),
    ]
}

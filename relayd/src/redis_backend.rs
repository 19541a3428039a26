//! The three Redis deployments a directory can live in (one server, a Redis
//! Cluster, a master watched by Sentinel), parsed from the `directory` URL,
//! behind one client, so `redis_dir` holds the directory logic once.
//!
//! What differs between them, and so what this module answers:
//! - where commands go ([`RedisBackend::conn`]): a reconnecting connection
//!   to the one server; a cluster connection that routes each key to the
//!   master of its slot and follows failovers; the master Sentinel names,
//!   asked again after an error;
//! - where to subscribe ([`RedisBackend::subscriber`]): a cluster PUBLISH
//!   reaches every node, so any node will do, and each new subscription
//!   moves on to the next known node (a dead node is left behind);
//! - what to SCAN ([`RedisBackend::masters`]): every master, since each
//!   holds its own slots' keys;
//! - who the masters are ([`RedisBackend::topology`]): a fingerprint that
//!   changes when a failover moves data to another server, which is when
//!   the relay writes all its records again (a promoted replica may miss
//!   the last writes of the master it replaces).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ErrorKind, Pipeline, RedisError,
    RedisFuture, RedisResult, Value,
};

/// Longest wait for a connection or an answer from Redis.
pub(crate) const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often the lease writer asks who the masters are.
pub(crate) const TOPOLOGY_CHECK: Duration = Duration::from_secs(1);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `fut`, or an error once `limit` has passed.
async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(RedisError::from((
            ErrorKind::Io,
            "timed out",
            format!("{what} took over {limit:?}"),
        ))),
    }
}

/// The forms a directory URL takes, for error messages.
pub const FORMS: &str = "redis://HOST:PORT[/DB], redis+cluster://HOST:PORT,HOST:PORT/ or redis+sentinel://HOST:PORT,HOST:PORT/MASTER[/DB] (rediss... for TLS; USER:PASSWORD@ may precede the hosts)";

/// `HOST:PORT` of a Redis node or sentinel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where the directory lives, as the `directory` URL says.
#[derive(Clone, Debug, PartialEq)]
pub enum Endpoint {
    /// `redis://` or `rediss://`: one server (the redis crate reads the URL).
    Single { url: String },
    /// `redis+cluster://` or `rediss+cluster://`: seed nodes of a cluster.
    Cluster {
        nodes: Vec<Node>,
        tls: bool,
        /// `USER:PASSWORD` as written (still percent-encoded).
        userinfo: Option<String>,
    },
    /// `redis+sentinel://` or `rediss+sentinel://`: the sentinels and the
    /// name of the master they watch.
    Sentinel {
        sentinels: Vec<Node>,
        master: String,
        db: i64,
        tls: bool,
        userinfo: Option<String>,
    },
}

impl Endpoint {
    /// Parses a directory URL; the error names the bad part and the forms.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let bad = |why: &str| format!("invalid directory '{url}': {why}; use {FORMS}");
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let (tls, kind) = match scheme {
            "redis" | "rediss" => {
                return match Client::open(url) {
                    Ok(_) => Ok(Endpoint::Single {
                        url: url.to_owned(),
                    }),
                    Err(e) => Err(bad(&e.to_string())),
                };
            }
            "redis+cluster" => (false, "cluster"),
            "rediss+cluster" => (true, "cluster"),
            "redis+sentinel" => (false, "sentinel"),
            "rediss+sentinel" => (true, "sentinel"),
            other => return Err(bad(&format!("unknown scheme '{other}'"))),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()), h),
            None => (None, authority),
        };
        let nodes = hosts
            .split(',')
            .map(|h| parse_node(h).map_err(|e| bad(&e)))
            .collect::<Result<Vec<Node>, String>>()?;
        if kind == "cluster" {
            if !path.is_empty() {
                return Err(bad(
                    "a cluster URL ends after its nodes (a cluster has database 0 only)",
                ));
            }
            return Ok(Endpoint::Cluster {
                nodes,
                tls,
                userinfo,
            });
        }
        let (master, db) = path.split_once('/').unwrap_or((path, ""));
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if master.is_empty() || !master.chars().all(plain) {
            return Err(bad(&format!(
                "'{master}' is not a master name (after the sentinels: /MASTER, letters, digits, '-', '_' or '.')"
            )));
        }
        let db = match db {
            "" => 0,
            d => d
                .parse::<i64>()
                .ok()
                .filter(|d| *d >= 0)
                .ok_or_else(|| bad(&format!("'{d}' is not a database number")))?,
        };
        Ok(Endpoint::Sentinel {
            sentinels: nodes,
            master: master.to_owned(),
            db,
            tls,
            userinfo,
        })
    }

    /// `USER:PASSWORD` of a cluster or Sentinel URL, as written (a single
    /// server's URL goes to the redis crate whole).
    pub fn userinfo(&self) -> Option<&str> {
        match self {
            Endpoint::Single { .. } => None,
            Endpoint::Cluster { userinfo, .. } | Endpoint::Sentinel { userinfo, .. } => {
                userinfo.as_deref()
            }
        }
    }

    /// Whether the connections use TLS.
    pub fn tls(&self) -> bool {
        match self {
            Endpoint::Single { url } => url.starts_with("rediss://"),
            Endpoint::Cluster { tls, .. } | Endpoint::Sentinel { tls, .. } => *tls,
        }
    }

    /// The URL without its password, for logs.
    pub fn redacted(&self) -> String {
        let list = |nodes: &[Node]| {
            nodes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let s = if self.tls() { "s" } else { "" };
        match self {
            Endpoint::Single { url } => match Client::open(url.as_str()) {
                Ok(c) => format!(
                    "redis{s}://{}/{}",
                    c.get_connection_info().addr(),
                    c.get_connection_info().redis_settings().db()
                ),
                Err(_) => "redis (bad URL)".to_owned(),
            },
            Endpoint::Cluster { nodes, .. } => format!("redis{s}+cluster://{}/", list(nodes)),
            Endpoint::Sentinel {
                sentinels, master, ..
            } => format!("redis{s}+sentinel://{}/{master}", list(sentinels)),
        }
    }
}

fn parse_node(s: &str) -> Result<Node, String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}' is not HOST:PORT"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("'{s}' has no valid port"))?;
    if host.is_empty() || host.contains(['/', '@', ',']) {
        return Err(format!("'{s}' is not HOST:PORT"));
    }
    Ok(Node {
        host: host.to_owned(),
        port,
    })
}

/// A connection to whichever backend: commands go where the backend says.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Node(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Node(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Node(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Node(c) => c.get_db(),
        }
    }
}

/// A master as Sentinel named it, and the connection to it.
struct Master {
    addr: String,
    client: Client,
    conn: MultiplexedConnection,
}

enum Kind {
    Single {
        client: Client,
        /// Reconnects on its own; commands fail (after REDIS_TIMEOUT at
        /// most) while Redis is away.
        conn: ConnectionManager,
    },
    Cluster {
        client: ClusterClient,
        /// Made on first use, so the relay starts while the cluster is
        /// away; then it reconnects and follows the slots on its own.
        conn: tokio::sync::Mutex<Option<ClusterConnection>>,
        /// Nodes to subscribe at, in turn: the seeds, then every node the
        /// cluster last listed as alive.
        nodes: Mutex<Vec<Node>>,
        next: AtomicUsize,
    },
    Sentinel {
        /// A tokio Mutex: asking the sentinels awaits, and needs `&mut`.
        sentinel: tokio::sync::Mutex<SentinelClient>,
        /// The master last named; dropped after an error, so the next
        /// command asks the sentinels again.
        master: Mutex<Option<Master>>,
    },
}

/// The client over one of the three deployments.
pub(crate) struct RedisBackend {
    kind: Kind,
    endpoint: Endpoint,
    /// The CA certificates (PEM) of `directory_ca_file`, if given.
    root_pem: Option<Vec<u8>>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.endpoint.redacted())
    }
}

fn node_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
}

/// A multiplexed connection to the one node `client` names; `what` says
/// which, should it time out.
async fn connect_node(client: &Client, what: &str) -> RedisResult<MultiplexedConnection> {
    within(
        REDIS_TIMEOUT,
        what,
        client.get_multiplexed_async_connection_with_config(&node_config()),
    )
    .await
}

/// The CA certificates a TLS connection trusts: `directory_ca_file`'s, or
/// the system's when none is given.
fn certificates(root_pem: Option<&[u8]>) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: root_pem.map(<[u8]>::to_vec),
    }
}

/// Reads `directory_ca_file`; the error names the file.
pub fn read_ca_file(path: &Path) -> Result<Vec<u8>, String> {
    // Parsed here for a clear error: the redis crate would only fail at
    // the first connection, and say less.
    common::link::tls::load_certs(path).map_err(|e| format!("invalid directory_ca_file: {e}"))?;
    std::fs::read(path).map_err(|e| {
        format!(
            "invalid directory_ca_file: cannot read {}: {e}",
            path.display()
        )
    })
}

impl RedisBackend {
    /// Builds the client; connects lazily, so the relay starts while
    /// Redis is away.
    pub fn new(endpoint: &Endpoint, ca_file: Option<&Path>) -> anyhow::Result<RedisBackend> {
        let root_pem = ca_file
            .map(read_ca_file)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let certs = || certificates(root_pem.as_deref());
        let kind = match endpoint {
            Endpoint::Single { url } => {
                let client = match &root_pem {
                    Some(_) => Client::build_with_tls(url.as_str(), certs())?,
                    None => Client::open(url.as_str())?,
                };
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(MAX_BACKOFF);
                let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
                Kind::Single { client, conn }
            }
            Endpoint::Cluster {
                nodes,
                tls,
                userinfo,
            } => {
                let urls: Vec<String> = nodes
                    .iter()
                    .map(|n| node_url(*tls, userinfo.as_deref(), n, 0))
                    .collect();
                let mut builder = ClusterClient::builder(urls)
                    .connection_timeout(REDIS_TIMEOUT)
                    .response_timeout(REDIS_TIMEOUT)
                    // A failover takes seconds; the lease writer retries
                    // with its own backoff, so a command gives up early.
                    .retries(2)
                    .max_retry_wait(MAX_BACKOFF.as_millis() as u64);
                if root_pem.is_some() {
                    builder = builder.certs(certs());
                }
                Kind::Cluster {
                    client: builder.build()?,
                    conn: tokio::sync::Mutex::new(None),
                    nodes: Mutex::new(nodes.clone()),
                    next: AtomicUsize::new(0),
                }
            }
            Endpoint::Sentinel {
                sentinels,
                master,
                db,
                tls,
                userinfo,
            } => {
                let addrs = sentinels.iter().map(|n| match tls {
                    true => ConnectionAddr::TcpTls {
                        host: n.host.clone(),
                        port: n.port,
                        insecure: false,
                        tls_params: None,
                    },
                    false => ConnectionAddr::Tcp(n.host.clone(), n.port),
                });
                let mut builder =
                    SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)?
                        .set_client_to_redis_db(*db);
                if let Some(u) = userinfo {
                    // The redis crate decodes USER:PASSWORD as it does in a URL.
                    let info = redis::IntoConnectionInfo::into_connection_info(format!(
                        "redis://{u}@localhost:1"
                    ))?;
                    let settings = info.redis_settings();
                    if let Some(user) = settings.username() {
                        builder = builder.set_client_to_redis_username(user);
                    }
                    if let Some(password) = settings.password() {
                        builder = builder.set_client_to_redis_password(password);
                    }
                }
                if *tls {
                    builder = builder
                        .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
                    if root_pem.is_some() {
                        builder = builder
                            .set_client_to_redis_certificates(certs())
                            .set_client_to_sentinel_certificates(certs());
                    }
                }
                Kind::Sentinel {
                    sentinel: tokio::sync::Mutex::new(builder.build()?),
                    master: Mutex::new(None),
                }
            }
        };
        Ok(RedisBackend {
            kind,
            endpoint: endpoint.clone(),
            root_pem,
        })
    }

    /// The URL without its password, for logs.
    pub fn describe(&self) -> String {
        self.endpoint.redacted()
    }

    /// A client for one node, with the backend's TLS and credentials.
    fn node_client(&self, node: &Node, db: i64) -> RedisResult<Client> {
        let url = node_url(self.endpoint.tls(), self.endpoint.userinfo(), node, db);
        match &self.root_pem {
            Some(pem) => Client::build_with_tls(url, certificates(Some(pem))),
            None => Client::open(url),
        }
    }

    /// Where commands go now.
    pub async fn conn(&self) -> RedisResult<Conn> {
        match &self.kind {
            Kind::Single { conn, .. } => Ok(Conn::Single(conn.clone())),
            Kind::Cluster { client, conn, .. } => {
                let mut slot = conn.lock().await;
                if let Some(c) = &*slot {
                    return Ok(Conn::Cluster(c.clone()));
                }
                let c = within(
                    REDIS_TIMEOUT * 2,
                    "connecting to the cluster",
                    client.get_async_connection(),
                )
                .await?;
                *slot = Some(c.clone());
                Ok(Conn::Cluster(c))
            }
            Kind::Sentinel { sentinel, master } => {
                Ok(Conn::Node(Self::master(sentinel, master).await?.1))
            }
        }
    }

    /// The master Sentinel names (its client and a connection to it),
    /// asking the sentinels when none is known.
    async fn master(
        sentinel: &tokio::sync::Mutex<SentinelClient>,
        master: &Mutex<Option<Master>>,
    ) -> RedisResult<(Client, MultiplexedConnection)> {
        if let Some(m) = &*lock(master) {
            return Ok((m.client.clone(), m.conn.clone()));
        }
        let client = ask_sentinels(sentinel).await?;
        let conn = connect_node(&client, "connecting to the master").await?;
        let addr = client.get_connection_info().addr().to_string();
        tracing::info!(master = %addr, "directory: sentinel names the redis master");
        *lock(master) = Some(Master {
            addr,
            client: client.clone(),
            conn: conn.clone(),
        });
        Ok((client, conn))
    }

    /// A command failed: with Sentinel, ask for the master again next time
    /// (a failover may have moved it). The other backends reconnect on
    /// their own.
    pub fn failed(&self) {
        if let Kind::Sentinel { master, .. } = &self.kind {
            lock(master).take();
        }
    }

    /// A client to subscribe with; each call on a cluster moves on to the
    /// next node, so a dead node is left behind.
    pub async fn subscriber(&self) -> RedisResult<Client> {
        match &self.kind {
            Kind::Single { client, .. } => Ok(client.clone()),
            Kind::Cluster { nodes, next, .. } => {
                let node = {
                    let nodes = lock(nodes);
                    // Never empty: it starts with the seeds and is only
                    // replaced by a non-empty list.
                    nodes[next.fetch_add(1, Ordering::Relaxed) % nodes.len()].clone()
                };
                tracing::debug!(node = %node, "directory: subscribing at cluster node");
                self.node_client(&node, 0)
            }
            Kind::Sentinel { sentinel, master } => Ok(Self::master(sentinel, master).await?.0),
        }
    }

    /// A connection to every master, to SCAN each one's keys.
    pub async fn masters(&self) -> RedisResult<Vec<Conn>> {
        match &self.kind {
            Kind::Cluster { nodes, .. } => {
                let view = self.cluster_view(nodes).await?;
                let mut conns = Vec::with_capacity(view.masters.len());
                for node in &view.masters {
                    let client = self.node_client(node, 0)?;
                    let conn = connect_node(&client, "connecting to a cluster master").await?;
                    conns.push(Conn::Node(conn));
                }
                Ok(conns)
            }
            _ => Ok(vec![self.conn().await?]),
        }
    }

    /// Who holds the data now: the masters of a cluster (with their
    /// slots), the master Sentinel names; None for a single server. A
    /// change means a failover.
    pub async fn topology(&self) -> RedisResult<Option<String>> {
        match &self.kind {
            Kind::Single { .. } => Ok(None),
            Kind::Cluster { nodes, .. } => Ok(Some(self.cluster_view(nodes).await?.fingerprint)),
            Kind::Sentinel { sentinel, master } => {
                let named = ask_sentinels(sentinel).await?;
                let addr = named.get_connection_info().addr().to_string();
                let mut known = lock(master);
                if known.as_ref().is_some_and(|m| m.addr != addr) {
                    // Commands go to the new master from now on.
                    known.take();
                }
                Ok(Some(addr))
            }
        }
    }

    /// The cluster as one of its nodes lists it (CLUSTER NODES); also
    /// refreshes the nodes to subscribe at.
    async fn cluster_view(&self, nodes: &Mutex<Vec<Node>>) -> RedisResult<ClusterView> {
        let mut conn = self.conn().await?;
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await?;
        let view = ClusterView::parse(&text);
        if view.masters.is_empty() {
            return Err(RedisError::from((
                ErrorKind::Io,
                "the cluster lists no master with slots",
            )));
        }
        if !view.alive.is_empty() {
            *lock(nodes) = view.alive.clone();
        }
        Ok(view)
    }
}

/// `redis[s]://[USERINFO@]HOST:PORT/DB`.
fn node_url(tls: bool, userinfo: Option<&str>, node: &Node, db: i64) -> String {
    let scheme = if tls { "rediss" } else { "redis" };
    match userinfo {
        Some(u) => format!("{scheme}://{u}@{node}/{db}"),
        None => format!("{scheme}://{node}/{db}"),
    }
}

/// What CLUSTER NODES says, as far as the directory cares.
#[derive(Debug, PartialEq)]
struct ClusterView {
    /// Masters that serve slots and are not marked failed, in order.
    masters: Vec<Node>,
    /// Every node not marked failed (masters and replicas).
    alive: Vec<Node>,
    /// The masters with their slots, in a stable order.
    fingerprint: String,
}

impl ClusterView {
    /// Reads CLUSTER NODES: `ID HOST:PORT@CPORT[,HOSTNAME] FLAGS MASTER
    /// PING PONG EPOCH LINK [SLOT...]`, one node per line.
    fn parse(text: &str) -> ClusterView {
        let mut masters = Vec::new();
        let mut alive = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                continue;
            }
            let addr = fields[1].split(['@', ',']).next().unwrap_or_default();
            let Ok(node) = parse_node(addr) else {
                continue;
            };
            let flags: Vec<&str> = fields[2].split(',').collect();
            if flags
                .iter()
                .any(|f| matches!(*f, "fail" | "noaddr" | "handshake"))
            {
                continue;
            }
            alive.push(node.clone());
            // Slot ranges only: `[SLOT->-ID]` (a migration in progress) is
            // listed by the migrating node alone.
            let slots: Vec<&str> = fields[8..]
                .iter()
                .copied()
                .filter(|f| !f.starts_with('['))
                .collect();
            if flags.contains(&"master") && !slots.is_empty() {
                lines.push(format!("{node} {}", slots.join(" ")));
                masters.push(node);
            }
        }
        lines.sort();
        masters.sort_by_key(ToString::to_string);
        ClusterView {
            masters,
            alive,
            fingerprint: lines.join("; "),
        }
    }
}

/// A client for the master the sentinels name now.
async fn ask_sentinels(sentinel: &tokio::sync::Mutex<SentinelClient>) -> RedisResult<Client> {
    let mut s = sentinel.lock().await;
    within(
        REDIS_TIMEOUT * 2,
        "asking the sentinels",
        s.async_get_client(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: u16) -> Node {
        Node {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn directory_urls_name_one_server_a_cluster_or_sentinels() {
        assert_eq!(
            Endpoint::parse("redis://r:6379/2").unwrap(),
            Endpoint::Single {
                url: "redis://r:6379/2".into()
            }
        );
        assert_eq!(
            Endpoint::parse("rediss+cluster://a:7000,b:7001/").unwrap(),
            Endpoint::Cluster {
                nodes: vec![node("a", 7000), node("b", 7001)],
                tls: true,
                userinfo: None,
            }
        );
        assert_eq!(
            Endpoint::parse("redis+cluster://u:p%40ss@[::1]:7000").unwrap(),
            Endpoint::Cluster {
                nodes: vec![node("::1", 7000)],
                tls: false,
                userinfo: Some("u:p%40ss".into()),
            }
        );
        assert_eq!(
            Endpoint::parse("redis+sentinel://s1:26379,s2:26379/fax-main/3").unwrap(),
            Endpoint::Sentinel {
                sentinels: vec![node("s1", 26379), node("s2", 26379)],
                master: "fax-main".into(),
                db: 3,
                tls: false,
                userinfo: None,
            }
        );
        let s = Endpoint::parse("rediss+sentinel://:secret@s1:26379/m").unwrap();
        assert!(s.tls());
        assert_eq!(s.redacted(), "rediss+sentinel://s1:26379/m");
        assert_eq!(
            Endpoint::parse("redis://:secret@r:6379/1")
                .unwrap()
                .redacted(),
            "redis://r:6379/1"
        );
    }

    #[test]
    fn bad_directory_urls_say_what_is_wrong() {
        for (url, why) in [
            ("redis+cluster://a:7000/2", "ends after its nodes"),
            ("redis+cluster://a", "'a' is not HOST:PORT"),
            ("redis+cluster://a:0", "no valid port"),
            ("redis+cluster://a:1,,b:2/", "'' is not HOST:PORT"),
            ("redis+sentinel://s:26379", "is not a master name"),
            ("redis+sentinel://s:26379/", "is not a master name"),
            (
                "redis+sentinel://s:26379/m/x",
                "'x' is not a database number",
            ),
            ("rediss+mesh://a:1/", "unknown scheme 'rediss+mesh'"),
        ] {
            let e = Endpoint::parse(url).unwrap_err();
            assert!(e.contains(url) && e.contains(why), "{url}: {e}");
            assert!(e.contains("redis+sentinel://HOST:PORT"), "{e}");
        }
    }

    #[test]
    fn cluster_nodes_tell_the_live_masters_and_their_slots() {
        let text = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
a2 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922
a3 127.0.0.1:7003@17003 master,fail - 0 0 3 connected
b3 127.0.0.1:7006@17006 master - 0 0 7 connected 10923-16383
b1 127.0.0.1:7004@17004,host4 slave a1 0 0 1 connected
";
        let v = ClusterView::parse(text);
        assert_eq!(
            v.masters,
            vec![
                node("127.0.0.1", 7001),
                node("127.0.0.1", 7002),
                node("127.0.0.1", 7006)
            ]
        );
        assert_eq!(v.alive.len(), 4);
        assert!(v.fingerprint.contains("127.0.0.1:7006 10923-16383"));
        assert!(!v.fingerprint.contains("7003"));
    }
}

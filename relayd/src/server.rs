//! The relay's accept loop, readiness, status, watchdog, configuration
//! reload (SIGHUP) and graceful shutdown (SIGTERM).

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use common::daemon::lifecycle::{self, Lifecycle, Listeners, Reload, Service};
use common::daemon::memory::Activity;
use common::daemon::metrics::DaemonMetrics;
use common::directory::ConnectionInfo;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin;
use crate::config::{self, Directory, RelayConfig, Settings};
use crate::limits::LimitState;
use crate::link_session;
use crate::mesh::Mesh;
use crate::metrics::RelayMetrics;
use crate::peer::{self, PeerState, PeerStatus};
use crate::redis_dir::{self, RedisDirectory};
use crate::registry::Registry;
use crate::revocation::Revocations;
use crate::store::Store;

/// Re-reads the configuration on SIGHUP.
pub type Reloader = lifecycle::Reloader<Settings>;

/// State every task of the relay shares. The stop signals and trackers
/// every daemon has (`draining`, `closing`, `calls`, `tasks`) are in its
/// [`Lifecycle`], reached through `Deref` as if they were fields here.
#[derive(Debug)]
pub struct Relay {
    pub life: Lifecycle,
    pub config: RelayConfig,
    pub mesh: Mesh,
    /// Directory mode only: the records in Redis and their cache.
    pub redis: Option<RedisDirectory>,
    pub registry: Registry,
    /// Limits and their live counters.
    pub limits: LimitState,
    /// Revoked secret generations (shared with the fleet).
    pub revocations: Revocations,
    pub peer_status: PeerStatus,
    pub metrics: RelayMetrics,
    /// Peer links dialed on demand (directory mode).
    pub dialed_links: TaskTracker,
    /// The configured peers' dialers, each stopped by its own token (a
    /// child of `closing`) when a reload removes the peer.
    dialers: Mutex<BTreeMap<String, CancellationToken>>,
    /// Device and gateway links up.
    links_up: AtomicU64,
    /// Directory mode: the lease writer, which stops after the links (their
    /// last renewals are written), so it is owned apart from them.
    lease_writer: Mutex<Option<JoinHandle<()>>>,
}

impl Deref for Relay {
    type Target = Lifecycle;

    fn deref(&self) -> &Lifecycle {
        &self.life
    }
}

impl Relay {
    /// The Redis directory, in directory mode.
    pub fn redis(&self) -> Option<&RedisDirectory> {
        self.redis.as_ref()
    }

    /// A renewal of one of this relay's devices (login, logout, lost link):
    /// into the local table and store, then to the peers (mesh mode) or to
    /// Redis (directory mode).
    pub fn renew_local(&self, record: ConnectionInfo) {
        let number = record.number.clone();
        self.mesh.renew_local(record);
        if let Some(dir) = &self.redis {
            dir.renewed(&number);
        }
    }

    /// Device and gateway links up now.
    pub fn links_up(&self) -> u64 {
        self.links_up.load(Ordering::Relaxed)
    }

    /// Counts a link as up until the guard drops.
    pub fn link_up(&self) -> LinkUpGuard<'_> {
        self.links_up.fetch_add(1, Ordering::Relaxed);
        self.metrics.links_accepted.inc();
        LinkUpGuard(&self.links_up)
    }

    /// What systemd shows: `listening on ADDR; [admin on ADDR; ]peers up: N;
    /// devices online: N; calls in flight: N`. Tests parse the first parts.
    pub fn status_line(&self) -> String {
        Service::status_line(self)
    }

    /// Starts keeping a link to the peer at `addr` (no-op if already).
    fn start_peer(self: &Arc<Self>, addr: &str) {
        let mut dialers = self.dialers.lock().unwrap_or_else(|p| p.into_inner());
        if dialers.contains_key(addr) {
            return;
        }
        let stop = self.closing.child_token();
        dialers.insert(addr.to_owned(), stop.clone());
        self.peer_status.set(addr, PeerState::Connecting);
        self.tasks
            .spawn(peer::maintain(self.clone(), addr.to_owned(), stop));
    }

    /// Stops dialing `addr` and closes the link it keeps.
    fn stop_peer(&self, addr: &str) {
        let stop = {
            let mut dialers = self.dialers.lock().unwrap_or_else(|p| p.into_inner());
            dialers.remove(addr)
        };
        if let Some(stop) = stop {
            stop.cancel();
        }
        self.peer_status.remove(addr);
    }
}

/// Decrements the links-up count when a link task ends.
#[derive(Debug)]
pub struct LinkUpGuard<'a>(&'a AtomicU64);

impl Drop for LinkUpGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Service for Relay {
    const NOUN: &'static str = "relay";
    type Settings = Settings;
    type Error = anyhow::Error;

    fn lifecycle(&self) -> &Lifecycle {
        &self.life
    }

    fn status(&self) -> String {
        let mut s = format!(
            "peers up: {}; devices online: {}; calls in flight: {}",
            self.mesh.peers().len(),
            self.registry.online_count(),
            self.calls.len()
        );
        if let Some(dir) = &self.redis {
            s.push_str("; ");
            s.push_str(&dir.status());
        }
        s
    }

    fn activity(&self) -> Activity {
        Activity {
            calls_in_flight: self.calls.len(),
            devices_online: self.registry.online_count(),
        }
    }

    fn log_listening(&self) {
        let addr = self.listen_addr();
        tracing::info!(relay = %self.config.name, %addr, known = self.mesh.known(), "listening");
    }

    fn serve(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        link_session::serve(self, tcp, peer)
    }

    /// The operator's socket, the directory's lease writer and renewals, and
    /// the configured peers.
    fn started(self: &Arc<Self>) {
        let admin_relay = self.clone();
        self.tasks.spawn(async move {
            if let Err(e) = admin::serve(admin_relay).await {
                tracing::warn!(error = %e, "admin socket unavailable; `relayd peers` will not answer");
            }
        });
        if self.redis().is_some() {
            let writer = tokio::spawn(redis_dir::keep_leases(self.clone()));
            *self.lease_writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(writer);
            self.tasks.spawn(redis_dir::follow_renewals(self.clone()));
        }
        for peer in self.config.peers.clone() {
            self.start_peer(&peer);
        }
    }

    fn reload(self: &Arc<Self>, old: &Settings, new: Settings) -> Reload<Settings> {
        let c = config::changes(old, &new);
        for p in &c.peers_added {
            tracing::info!(peer = %p, "peer added: {p}");
            self.start_peer(p);
        }
        for p in &c.peers_removed {
            tracing::info!(peer = %p, "peer removed: {p}");
            self.stop_peer(p);
        }
        // Certificate files are read again on every reload: they may have been
        // replaced under the same names.
        self.config.inbound.reload(&new.tls);
        let unchanged = c == config::Changes::default();
        let (log_level, drain_secs) = (c.log_level.map(|(_, b)| b), c.drain_secs);
        Reload::new(
            config::applied(old, new),
            log_level,
            drain_secs,
            c.need_restart,
            unchanged,
        )
    }

    fn metrics_page(&self) -> String {
        self.metrics.render(self)
    }

    fn metrics(&self) -> &dyn DaemonMetrics {
        &self.metrics
    }

    /// Links dialed on demand end, then the lease writer writes their last
    /// renewals, then the store is flushed.
    async fn stopped(&self) -> anyhow::Result<()> {
        self.dialed_links.close();
        self.dialed_links.wait().await;
        let writer = self
            .lease_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let (Some(dir), Some(writer)) = (self.redis(), writer) {
            dir.stop.cancel();
            let _ = writer.await;
        }
        self.mesh.store().flush().await?;
        Ok(())
    }
}

/// Runs the relay until `shutdown` fires, then lets calls in flight finish
/// (up to the drain timeout), flushes the store and returns.
pub async fn run(config: RelayConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with(config, shutdown, None).await
}

/// [`run`], reloading the configuration on each SIGHUP the reloader hears.
pub async fn run_with(
    config: RelayConfig,
    shutdown: CancellationToken,
    reloader: Option<Reloader>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = Store::open(&config.data_dir, &config.name)?;
    let revocations = Revocations::open(store.db())?;
    common::link::frame::set_max_frame_len(config.limits.max_frame_bytes);
    let mesh = Mesh::load(
        &config.name,
        store,
        matches!(config.directory, Directory::Mesh),
    )?;
    mark_local_devices_offline(&mesh, &config.name);
    let listeners = Listeners::bind(config.listen, config.admin).await?;
    let addr = listeners.addr();
    let redis = match &config.directory {
        Directory::Mesh => None,
        Directory::Redis(r) => {
            // A relay without a certificate can only be dialed in plaintext.
            let advertise =
                r.advertise
                    .clone()
                    .unwrap_or_else(|| match config.inbound.has_certificate() {
                        true => addr.to_string(),
                        false => format!("plain://{addr}"),
                    });
            Some(RedisDirectory::new(&config.name, r, advertise)?)
        }
    };
    let settings = config.settings.clone();
    let relay = Arc::new(Relay {
        life: Lifecycle::new(&listeners, config.drain_timeout),
        limits: LimitState::new(config.limits.clone()),
        config,
        mesh,
        redis,
        registry: Registry::default(),
        revocations,
        peer_status: PeerStatus::default(),
        metrics: RelayMetrics::default(),
        dialed_links: TaskTracker::new(),
        dialers: Mutex::new(BTreeMap::new()),
        links_up: AtomicU64::new(0),
        lease_writer: Mutex::new(None),
    });
    lifecycle::run(relay, listeners, shutdown, reloader, settings).await
}

/// After a restart no device is logged in here yet: records that say
/// otherwise are from before and become "offline" under a new version.
fn mark_local_devices_offline(mesh: &Mesh, name: &str) {
    for (mut record, _) in mesh.records() {
        if record.online && record.home_relay == name {
            record.online = false;
            record.version = mesh.store().next_version();
            mesh.renew_local(record);
        }
    }
}

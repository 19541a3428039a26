//! relayd as a daemon: what it plugs into the shared skeleton
//! (`common::daemon::lifecycle`): its status line, what it does with an
//! accepted link, its own steps once ready (operator socket, peers, the
//! directory's tasks) and once stopped (dialed links, last leases, store
//! flush), what a reload changes; and `run`, which opens the store, builds
//! the relay's state and starts it.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use common::daemon::lifecycle::{self, Lifecycle, Listeners, Reload, Service};
use common::daemon::metrics::DaemonMetrics;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{self, Directory, RelayConfig, Settings};
use crate::mesh::{Mesh, PeerState, PeerStatus};
use crate::metrics::{RelayGauges, RelayMetrics};
use crate::redis_dir::RedisDirectory;
use crate::relay::Relay;
use crate::relay_core::RelayCore;
use crate::relay_core::limits::LimitState;
use crate::revocation::RevocationStore;
use crate::store::Store;
use crate::{admin, call, directory, link_session, peer};

/// Re-reads the configuration on SIGHUP.
pub type Reloader = lifecycle::Reloader<Settings>;

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
            self.online_count(),
            self.calls.len()
        );
        if let Some(dir) = &self.redis {
            s.push_str("; ");
            s.push_str(&dir.status());
        }
        if let Some(store) = self.mesh.store().status() {
            s.push_str("; ");
            s.push_str(&store);
        }
        s
    }

    fn devices_online(&self) -> usize {
        self.online_count()
    }

    /// Counted for the idle trim too: memory is given back once a peer's
    /// snapshot has been learned.
    fn numbers_known(&self) -> usize {
        self.mesh.known()
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

    /// The directory's lease writer and renewals, and the configured peers.
    fn started(self: &Arc<Self>) {
        if self.redis().is_some() {
            let writer = tokio::spawn(directory::keep_leases(self.clone()));
            *self.lease_writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(writer);
            self.tasks.spawn(directory::follow_renewals(self.clone()));
        }
        for peer in self.config.peers.clone() {
            start_peer(self, &peer);
        }
    }

    fn reload(self: &Arc<Self>, old: &Settings, new: Settings) -> Reload<Settings> {
        let c = config::changes(old, &new);
        for p in &c.peers_added {
            tracing::info!(peer = %p, "peer added: {p}");
            start_peer(self, p);
        }
        for p in &c.peers_removed {
            tracing::info!(peer = %p, "peer removed: {p}");
            stop_peer(self, p);
        }
        // Certificate files are read again on every reload: they may have been
        // replaced under the same names.
        self.config.inbound.reload(&new.tls);
        c.into_reload(config::applied(old, new))
    }

    fn metrics_page(&self) -> String {
        self.metrics.render(&RelayGauges {
            links: self.links_up(),
            peers_up: self.mesh.peers().len() as u64,
            devices_online: self.online_count() as u64,
            known_numbers: self.mesh.known() as u64,
            directory_cached: self.redis().map_or(0, |d| d.cached_count() as u64),
            calls_in_flight: self.calls.len() as u64,
        })
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

/// Starts keeping a link to the peer at `addr` (no-op if already).
fn start_peer(relay: &Arc<Relay>, addr: &str) {
    let mut dialers = relay.dialers.lock().unwrap_or_else(|p| p.into_inner());
    if dialers.contains_key(addr) {
        return;
    }
    let stop = relay.closing.child_token();
    dialers.insert(addr.to_owned(), stop.clone());
    relay.peer_status.set(addr, PeerState::Connecting);
    relay.tasks.spawn(peer::maintain(
        relay.clone(),
        addr.to_owned(),
        stop,
        call::spawn,
    ));
}

/// Stops dialing `addr` and closes the link it keeps.
fn stop_peer(relay: &Relay, addr: &str) {
    let stop = {
        let mut dialers = relay.dialers.lock().unwrap_or_else(|p| p.into_inner());
        dialers.remove(addr)
    };
    if let Some(stop) = stop {
        stop.cancel();
    }
    relay.peer_status.remove(addr);
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
    let (revocation_store, minimums) = RevocationStore::open(store.db(), store.dir())?;
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
    let core = RelayCore::new(
        &config.name,
        config.fleet_key.clone(),
        config.limits.login_attempts_per_min,
        minimums,
    );
    let relay = Arc::new(Relay {
        life: Lifecycle::new(&listeners, config.drain_timeout),
        limits: LimitState::new(config.limits.clone()),
        config,
        mesh,
        redis,
        core: Mutex::new(core),
        revocation_store,
        peer_status: PeerStatus::default(),
        metrics: RelayMetrics::default(),
        dialed_links: TaskTracker::new(),
        dialers: Mutex::new(BTreeMap::new()),
        links_up: AtomicU64::new(0),
        lease_writer: Mutex::new(None),
    });
    // The operator's socket, bound before the relay says it is ready, so
    // that `relayd directory` right after a start finds it.
    match admin::bind(&relay.config.data_dir) {
        Ok(listener) => {
            relay.tasks.spawn(admin::serve(relay.clone(), listener));
        }
        Err(e) => {
            tracing::warn!(error = %e, "admin socket unavailable; `relayd peers` will not answer")
        }
    }
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

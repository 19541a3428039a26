//! The relay's accept loop, readiness, status, watchdog, configuration
//! reload (SIGHUP) and graceful shutdown (SIGTERM).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use common::daemon::admin_http::{self, AdminPages};
use common::daemon::logging::LogControl;
use common::daemon::memory::{Activity, IdleTrim};
use common::daemon::notify;
use common::directory::ConnectionInfo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin;
use crate::config::{self, Directory, RelayConfig, Settings};
use crate::link_session;
use crate::mesh::Mesh;
use crate::metrics::RelayMetrics;
use crate::peer::{self, PeerState, PeerStatus};
use crate::redis_dir::RedisDirectory;
use crate::relay_core::limits::LimitState;
use crate::relay_core::{self, Effect, RelayCore, Renewal};
use crate::revocation::RevocationStore;
use crate::store::Store;
use common::directory::unix_now;
use common::link::actor::LinkHandle;
use common::link::message::{Control, Revocation};
use common::number::Number;

/// How often the status line is recomputed (systemd hears only changes).
const STATUS_REFRESH: Duration = Duration::from_secs(1);

/// State every task of the relay shares.
#[derive(Debug)]
pub struct Relay {
    pub config: RelayConfig,
    pub mesh: Mesh,
    /// Directory mode only: the records in Redis and their cache.
    pub redis: Option<RedisDirectory>,
    /// Who is logged in where, and the login, revocation and home rules.
    /// A std Mutex: nothing awaits while it is held.
    core: Mutex<RelayCore<LinkHandle>>,
    /// Call and link limits and their live counters.
    pub limits: LimitState,
    /// Revoked secret generations on disk.
    revocation_store: RevocationStore,
    pub peer_status: PeerStatus,
    pub metrics: RelayMetrics,
    /// Cancelled on SIGTERM: refuse new links and calls.
    pub draining: CancellationToken,
    /// Cancelled once calls have drained: close every link.
    pub closing: CancellationToken,
    /// Calls in flight.
    pub calls: TaskTracker,
    /// Peer links dialed on demand (directory mode).
    pub dialed_links: TaskTracker,
    /// The configured peers' dialers, each stopped by its own token (a
    /// child of `closing`) when a reload removes the peer.
    dialers: Mutex<BTreeMap<String, CancellationToken>>,
    /// Device and gateway links up.
    links_up: AtomicU64,
    /// Seconds calls may take to finish after SIGTERM (a reload may change it).
    drain_secs: AtomicU64,
    /// The settings in force, to tell what a reload changes.
    settings: Mutex<Option<Settings>>,
    listen_addr: OnceLock<SocketAddr>,
    admin_addr: OnceLock<SocketAddr>,
}

/// Re-reads the configuration on SIGHUP.
pub struct Reloader {
    /// Loads the settings afresh (file, then environment and flags on top).
    pub load: Box<dyn Fn() -> anyhow::Result<Settings> + Send + Sync>,
    /// Applies a new log level.
    pub log: LogControl,
    /// One message per SIGHUP.
    pub signals: mpsc::Receiver<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Relay {
    /// The relay's state and rules, locked.
    pub fn core(&self) -> std::sync::MutexGuard<'_, RelayCore<LinkHandle>> {
        // Plain maps: still consistent after a panic elsewhere.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Carries out what the core decided (the core's lock released).
    pub fn apply(&self, effects: Vec<Effect<LinkHandle>>) {
        for effect in effects {
            match effect {
                // A full outbox closes that link: the device is gone either way.
                Effect::Tell(link, msg) => {
                    let _ = link.notify(msg);
                }
                Effect::Renew(Renewal::Online {
                    number,
                    gateway,
                    capabilities,
                }) => self.renew_local(ConnectionInfo {
                    number,
                    home_relay: self.config.name.clone(),
                    gateway,
                    capabilities: Some(capabilities),
                    login_time: unix_now(),
                    version: self.mesh.store().next_version(),
                    online: true,
                }),
                Effect::Renew(Renewal::Offline(number)) => self.mark_offline(&number),
                Effect::Revoked { raised, from } => {
                    self.revocation_store.save(&raised);
                    for peer in self.mesh.peers() {
                        // A peer whose outbox is full is relinked, and gets
                        // every revocation again after its snapshot.
                        if Some(peer.name.as_str()) != from.as_deref() {
                            let _ = peer.handle.notify(Control::Revoke(raised.clone()));
                        }
                    }
                    if let Some(dir) = &self.redis {
                        dir.revoked(&raised);
                    }
                }
            }
        }
    }

    /// Applies revocations (from the operator, a peer or Redis); returns
    /// how many devices were kicked.
    pub fn revoke(&self, revocations: Vec<Revocation>, from: Option<&str>) -> usize {
        let (effects, kicked) = self.core().revoke(revocations, from);
        self.apply(effects);
        kicked
    }

    /// The number's receiving device is gone: keep the record, mark it offline.
    pub fn mark_offline(&self, number: &Number) {
        if let Some(mut record) =
            relay_core::offline_record(self.mesh.record(number), &self.config.name)
        {
            record.version = self.mesh.store().next_version();
            self.renew_local(record);
        }
    }

    /// Receiving devices logged in here.
    pub fn online_count(&self) -> usize {
        self.core().online_count()
    }

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
        let mut s = String::new();
        if let Some(a) = self.listen_addr.get() {
            s.push_str(&format!("listening on {a}; "));
        }
        if let Some(a) = self.admin_addr.get() {
            s.push_str(&format!("admin on {a}; "));
        }
        s.push_str(&format!(
            "peers up: {}; devices online: {}; calls in flight: {}",
            self.mesh.peers().len(),
            self.online_count(),
            self.calls.len()
        ));
        if let Some(dir) = &self.redis {
            s.push_str("; ");
            s.push_str(&dir.status());
        }
        s
    }

    /// Starts keeping a link to the peer at `addr` (no-op if already).
    fn start_peer(self: &Arc<Self>, tasks: &TaskTracker, addr: &str) {
        let mut dialers = self.dialers.lock().unwrap_or_else(|p| p.into_inner());
        if dialers.contains_key(addr) {
            return;
        }
        let stop = self.closing.child_token();
        dialers.insert(addr.to_owned(), stop.clone());
        self.peer_status.set(addr, PeerState::Connecting);
        tasks.spawn(peer::maintain(
            self.clone(),
            addr.to_owned(),
            stop,
            crate::call::spawn,
        ));
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

/// The admin listener's pages.
struct Pages(Arc<Relay>);

impl AdminPages for Pages {
    fn metrics(&self) -> String {
        self.0.metrics.render(&self.0)
    }

    fn health(&self) -> Result<String, String> {
        if self.0.draining.is_cancelled() {
            Err("stopping".into())
        } else {
            Ok(format!("ok: {}", self.0.status_line()))
        }
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
    mut reloader: Option<Reloader>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = Store::open(&config.data_dir, &config.name)?;
    let (revocation_store, minimums) = RevocationStore::open(store.db())?;
    common::link::frame::set_max_frame_len(config.limits.max_frame_bytes);
    let mesh = Mesh::load(
        &config.name,
        store,
        matches!(config.directory, Directory::Mesh),
    )?;
    mark_local_devices_offline(&mesh, &config.name);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let admin_listener = match config.admin {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on admin address {a}"))?,
        ),
        None => None,
    };
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
    let limits = LimitState::new(config.limits.clone());
    let core = RelayCore::new(
        &config.name,
        config.fleet_key.clone(),
        config.limits.login_attempts_per_min,
        minimums,
    );
    let relay = Arc::new(Relay {
        drain_secs: AtomicU64::new(config.drain_timeout.as_secs()),
        settings: Mutex::new(config.settings.clone()),
        config,
        mesh,
        redis,
        core: Mutex::new(core),
        limits,
        revocation_store,
        peer_status: PeerStatus::default(),
        metrics: RelayMetrics::default(),
        draining: CancellationToken::new(),
        closing: CancellationToken::new(),
        calls: TaskTracker::new(),
        dialed_links: TaskTracker::new(),
        dialers: Mutex::new(BTreeMap::new()),
        links_up: AtomicU64::new(0),
        listen_addr: OnceLock::new(),
        admin_addr: OnceLock::new(),
    });
    let _ = relay.listen_addr.set(addr);

    let links = TaskTracker::new();
    if let Some(admin_listener) = admin_listener {
        let admin_addr = admin_listener.local_addr()?;
        let _ = relay.admin_addr.set(admin_addr);
        tracing::info!(%admin_addr, "admin on http://{admin_addr}/metrics and /healthz");
        let pages: Arc<dyn AdminPages> = Arc::new(Pages(relay.clone()));
        links.spawn(admin_http::serve(
            admin_listener,
            pages,
            relay.closing.clone(),
        ));
    }
    tracing::info!(relay = %relay.config.name, %addr, known = relay.mesh.known(), "listening");
    let mut status = relay.status_line();
    // What starting up allocated and freed goes back before the first call.
    common::daemon::memory::release_free_memory();
    notify::ready(&status);

    let admin_relay = relay.clone();
    links.spawn(async move {
        if let Err(e) = admin::serve(admin_relay).await {
            tracing::warn!(error = %e, "admin socket unavailable; `relayd peers` will not answer");
        }
    });
    // Directory mode: the lease writer stops after the links (their last
    // renewals are written), so it is owned apart from them.
    let lease_writer = relay
        .redis()
        .is_some()
        .then(|| tokio::spawn(crate::directory::keep_leases(relay.clone())));
    if relay.redis().is_some() {
        links.spawn(crate::directory::follow_renewals(relay.clone()));
    }
    for peer in relay.config.peers.clone() {
        relay.start_peer(&links, &peer);
    }
    let mut refresh = tokio::time::interval(STATUS_REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_trim = IdleTrim::default();
    // Petted from this loop, so a wedged accept loop stops the petting.
    let mut watchdog = notify::watchdog_interval();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = async {
                match reloader.as_mut() {
                    Some(r) => r.signals.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(r) = &reloader {
                    reload(&relay, &links, r);
                }
                status = relay.status_line();
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    links.spawn(link_session::serve(relay.clone(), tcp, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    relay.metrics.error("accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = refresh.tick() => {
                idle_trim.tick(Activity {
                    calls_in_flight: relay.calls.len(),
                    devices_online: relay.online_count(),
                });
                let now = relay.status_line();
                if now != status {
                    notify::status(&now);
                    status = now;
                }
            }
            _ = notify::tick(&mut watchdog) => notify::watchdog(),
        }
    }
    drop(listener);
    notify::stopping();
    relay.draining.cancel();
    relay.calls.close();
    let in_flight = relay.calls.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "waiting for calls in flight");
    }
    let drain = Duration::from_secs(relay.drain_secs.load(Ordering::Relaxed));
    if tokio::time::timeout(drain, async {
        // Keep petting the watchdog while calls finish.
        loop {
            tokio::select! {
                _ = relay.calls.wait() => break,
                _ = notify::tick(&mut watchdog) => notify::watchdog(),
            }
        }
    })
    .await
    .is_err()
    {
        tracing::warn!(
            left = relay.calls.len(),
            "drain timeout: cutting calls still in flight"
        );
    }
    relay.closing.cancel();
    links.close();
    relay.dialed_links.close();
    links.wait().await;
    relay.dialed_links.wait().await;
    if let (Some(dir), Some(writer)) = (relay.redis(), lease_writer) {
        dir.stop.cancel();
        let _ = writer.await;
    }
    relay.mesh.store().flush().await?;
    tracing::info!("stopped");
    notify::flush(std::time::Duration::from_secs(1));
    Ok(())
}

/// Applies what a reload changed; logs each change, and what needs a restart.
fn reload(relay: &Arc<Relay>, links: &TaskTracker, reloader: &Reloader) {
    notify::reloading();
    let new = match (reloader.load)() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("reload failed; the running configuration stays: {e:#}");
            relay.metrics.reloads.inc(&[("result", "failed")]);
            notify::ready(&relay.status_line());
            return;
        }
    };
    let mut current = relay.settings.lock().unwrap_or_else(|p| p.into_inner());
    let Some(old) = current.clone() else {
        tracing::warn!("this relay was not started from settings; reload ignored");
        drop(current);
        notify::ready(&relay.status_line());
        return;
    };
    let c = config::changes(&old, &new);
    for p in &c.peers_added {
        tracing::info!(peer = %p, "peer added: {p}");
        relay.start_peer(links, p);
    }
    for p in &c.peers_removed {
        tracing::info!(peer = %p, "peer removed: {p}");
        relay.stop_peer(p);
    }
    if c.log_level.is_some() {
        reloader.log.reload_level(&new.log_level);
    }
    // Certificate files are read again on every reload: they may have been
    // replaced under the same names.
    relay.config.inbound.reload(&new.tls);
    if let Some((a, b)) = c.drain_secs {
        relay.drain_secs.store(b, Ordering::Relaxed);
        tracing::info!("drain_secs: {a} -> {b}");
    }
    for what in &c.need_restart {
        tracing::warn!("{what}: needs a restart; not applied");
    }
    if c == config::Changes::default() {
        tracing::info!("configuration reloaded: nothing changed");
    }
    // What was applied becomes current; restart-only settings stay as they
    // run, so the next reload reports them again.
    *current = Some(Settings {
        peers: new.peers,
        log_level: new.log_level,
        drain_secs: new.drain_secs,
        tls: crate::tls_settings::TlsSettings {
            ca_file: old.tls.ca_file.clone(),
            ..new.tls
        },
        ..old
    });
    drop(current);
    relay.metrics.reloads.inc(&[("result", "applied")]);
    notify::ready(&relay.status_line());
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

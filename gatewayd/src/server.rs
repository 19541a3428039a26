//! The gateway's accept loop, status line, watchdog, configuration reload
//! (SIGHUP) and graceful shutdown (SIGTERM).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use common::daemon::admin_http::{self, AdminPages};
use common::daemon::logging::LogControl;
use common::daemon::memory::{Activity, IdleTrim};
use common::daemon::notify;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{self, GatewayConfig, Settings, default_name};
use crate::gateway_core::{Effect, GatewayCore};
use crate::metrics::GatewayMetrics;
use crate::{device_link, uplink};
use common::link::actor::LinkHandle;

/// How often the status line is recomputed (systemd hears only changes).
const STATUS_REFRESH: Duration = Duration::from_secs(1);

/// State every task of the gateway shares.
#[derive(Debug)]
pub struct Gateway {
    pub config: GatewayConfig,
    pub name: String,
    /// The LAN's devices and the login and call rules. A std Mutex:
    /// nothing awaits while it is held.
    core: Mutex<GatewayCore<LinkHandle>>,
    pub uplink: uplink::Uplink,
    pub metrics: GatewayMetrics,
    /// Cancelled on SIGTERM: refuse new device links and calls.
    pub draining: CancellationToken,
    /// Cancelled once calls have drained: close every link.
    pub closing: CancellationToken,
    pub calls: TaskTracker,
    /// Relays in order of preference; a reload may change them.
    relays: Mutex<Vec<String>>,
    drain_secs: AtomicU64,
    settings: Mutex<Option<Settings>>,
    listen_addr: OnceLock<SocketAddr>,
    admin_addr: OnceLock<SocketAddr>,
}

/// Re-reads the configuration on SIGHUP.
pub struct Reloader {
    /// Loads the settings afresh (file, then environment and flags on top).
    pub load: Box<dyn Fn() -> anyhow::Result<Settings> + Send + Sync>,
    pub log: LogControl,
    /// One message per SIGHUP.
    pub signals: mpsc::Receiver<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Gateway {
    /// The gateway's state and rules, locked.
    pub fn core(&self) -> std::sync::MutexGuard<'_, GatewayCore<LinkHandle>> {
        // Plain maps: still consistent after a panic elsewhere.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Carries out what the core decided (the core's lock released).
    /// Messages to the relay wait for room in its outbox; an error means the
    /// relay link just went down: the relay forgets this gateway's devices
    /// then, and only live ones are replayed.
    pub async fn apply(&self, effects: Vec<Effect<LinkHandle>>) {
        for effect in effects {
            match effect {
                Effect::Tell(device, msg) => {
                    let _ = device.notify(msg);
                }
                Effect::ToRelay(msg) => {
                    if let Some(relay) = self.uplink.current() {
                        let _ = relay.link.send(msg).await;
                    }
                }
            }
        }
    }

    /// Receiving devices logged in through this gateway.
    pub fn online_count(&self) -> usize {
        self.core().online_count()
    }

    /// The relays to try, in order of preference.
    pub fn relays(&self) -> Vec<String> {
        self.relays
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What systemd shows: `listening on ADDR; [admin on ADDR; ]linked to
    /// relay NAME at ADDR|no relay link; calls in flight: N; devices online: N`.
    /// Tests parse the first parts, and the device count that ends it.
    pub fn status_line(&self) -> String {
        let relay = match self.uplink.current() {
            Some(r) => format!("linked to relay {} at {}", r.name, r.addr),
            None => "no relay link".to_owned(),
        };
        let listen = self
            .listen_addr
            .get()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let admin = self
            .admin_addr
            .get()
            .map(|a| format!("admin on {a}; "))
            .unwrap_or_default();
        format!(
            "listening on {listen}; {admin}{relay}; calls in flight: {}; devices online: {}",
            self.calls.len(),
            self.online_count()
        )
    }

    /// Tells systemd (and tests) what the gateway is doing.
    pub fn update_status(&self) {
        notify::status(&self.status_line());
    }
}

struct Pages(Arc<Gateway>);

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

/// Runs the gateway until `shutdown` fires, then lets calls in flight finish
/// (up to the drain timeout) and returns.
pub async fn run(config: GatewayConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with(config, shutdown, None).await
}

/// [`run`], reloading the configuration on each SIGHUP the reloader hears.
pub async fn run_with(
    config: GatewayConfig,
    shutdown: CancellationToken,
    mut reloader: Option<Reloader>,
) -> anyhow::Result<()> {
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
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| default_name(addr.port()));
    common::link::frame::set_max_frame_len(config.max_frame_bytes);
    let gw = Arc::new(Gateway {
        core: Mutex::new(GatewayCore::new(&name, config.login_attempts_per_min)),
        relays: Mutex::new(config.relays.clone()),
        drain_secs: AtomicU64::new(config.drain_timeout.as_secs()),
        settings: Mutex::new(config.settings.clone()),
        config,
        name,
        uplink: uplink::Uplink::default(),
        metrics: GatewayMetrics::default(),
        draining: CancellationToken::new(),
        closing: CancellationToken::new(),
        calls: TaskTracker::new(),
        listen_addr: OnceLock::new(),
        admin_addr: OnceLock::new(),
    });
    let _ = gw.listen_addr.set(addr);
    let tasks = TaskTracker::new();
    if let Some(admin_listener) = admin_listener {
        let admin_addr = admin_listener.local_addr()?;
        let _ = gw.admin_addr.set(admin_addr);
        tracing::info!(%admin_addr, "admin on http://{admin_addr}/metrics and /healthz");
        let pages: Arc<dyn AdminPages> = Arc::new(Pages(gw.clone()));
        tasks.spawn(admin_http::serve(admin_listener, pages, gw.closing.clone()));
    }
    tracing::info!(gateway = %gw.name, %addr, relays = ?gw.relays(), "listening");
    let mut status = gw.status_line();
    // What starting up allocated and freed goes back before the first call.
    common::daemon::memory::release_free_memory();
    notify::ready(&status);

    tasks.spawn(uplink::maintain(gw.clone()));
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
                    reload(&gw, r);
                }
                status = gw.status_line();
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(device_link::serve(gw.clone(), tcp, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    gw.metrics.error("accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = refresh.tick() => {
                idle_trim.tick(Activity {
                    calls_in_flight: gw.calls.len(),
                    devices_online: gw.online_count(),
                });
                let now = gw.status_line();
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
    gw.draining.cancel();
    gw.calls.close();
    let drain = Duration::from_secs(gw.drain_secs.load(Ordering::Relaxed));
    if tokio::time::timeout(drain, async {
        // Keep petting the watchdog while calls finish.
        loop {
            tokio::select! {
                _ = gw.calls.wait() => break,
                _ = notify::tick(&mut watchdog) => notify::watchdog(),
            }
        }
    })
    .await
    .is_err()
    {
        tracing::warn!(
            left = gw.calls.len(),
            "drain timeout: cutting calls still in flight"
        );
    }
    gw.closing.cancel();
    tasks.close();
    tasks.wait().await;
    tracing::info!("stopped");
    notify::flush(std::time::Duration::from_secs(1));
    Ok(())
}

/// Applies what a reload changed; logs each change, and what needs a restart.
fn reload(gw: &Arc<Gateway>, reloader: &Reloader) {
    notify::reloading();
    let new = match (reloader.load)() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("reload failed; the running configuration stays: {e:#}");
            gw.metrics.reloads.inc(&[("result", "failed")]);
            notify::ready(&gw.status_line());
            return;
        }
    };
    let mut current = gw.settings.lock().unwrap_or_else(|p| p.into_inner());
    let Some(old) = current.clone() else {
        tracing::warn!("this gateway was not started from settings; reload ignored");
        drop(current);
        notify::ready(&gw.status_line());
        return;
    };
    let c = config::changes(&old, &new);
    if let Some((a, b)) = &c.relays {
        tracing::info!("relays: {} -> {}", a.join(", "), b.join(", "));
        *gw.relays.lock().unwrap_or_else(|p| p.into_inner()) = b.clone();
        // A link to a relay no longer listed is closed; the uplink then
        // starts over from the new list.
        if let Some(r) = gw.uplink.current()
            && !b.contains(&r.addr)
        {
            tracing::info!(relay = %r.name, addr = %r.addr, "closing the link to a relay no longer listed");
            r.link.close();
        }
        gw.uplink.relays_changed();
    }
    if c.log_level.is_some() {
        reloader.log.reload_level(&new.log_level);
    }
    if let Some((a, b)) = c.drain_secs {
        gw.drain_secs.store(b, Ordering::Relaxed);
        tracing::info!("drain_secs: {a} -> {b}");
    }
    for what in &c.need_restart {
        tracing::warn!("{what}: needs a restart; not applied");
    }
    if c == config::Changes::default() {
        tracing::info!("configuration reloaded: nothing changed");
    }
    *current = Some(Settings {
        relays: new.relays,
        log_level: new.log_level,
        drain_secs: new.drain_secs,
        ..old
    });
    drop(current);
    gw.metrics.reloads.inc(&[("result", "applied")]);
    notify::ready(&gw.status_line());
}

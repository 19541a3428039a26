//! One daemon's life, written once for relayd and gatewayd: bind, signal
//! ready, accept links, keep the status line, the watchdog and the idle
//! memory trim going, reload on SIGHUP, and on SIGTERM stop accepting, let
//! the calls in flight finish (up to the drain timeout), close every link and
//! wait for its task.
//!
//! A daemon plugs in through [`Service`]: its status, what it does with an
//! accepted connection, what a reload changes, its metrics page, and hooks
//! for its own steps once ready ([`Service::started`]) and once every task
//! has ended ([`Service::stopped`]). Its shared state embeds a [`Lifecycle`]:
//! the stop signals, the task trackers and the drain timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::daemon::admin_http::{self, AdminPages};
use crate::daemon::logging::LogControl;
use crate::daemon::memory::{self, Activity, IdleTrim};
use crate::daemon::metrics::DaemonMetrics;
use crate::daemon::notify;

/// How often the status line is recomputed (systemd hears only changes).
const STATUS_REFRESH: Duration = Duration::from_secs(1);

/// How long a failed accept (out of file descriptors and the like) pauses
/// the loop, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binding the daemon's ports failed.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on admin address {addr}")]
    Admin {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot tell the bound address")]
    LocalAddr(#[source] std::io::Error),
}

/// The daemon's listening port and, with `--admin ADDR`, its admin port.
/// Bound before the daemon's state is built: the bound address (port 0
/// picks one) goes into the status line and, for a relay, its advertised
/// address.
#[derive(Debug)]
pub struct Listeners {
    listener: TcpListener,
    admin: Option<TcpListener>,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
}

impl Listeners {
    pub async fn bind(listen: SocketAddr, admin: Option<SocketAddr>) -> Result<Self, BindError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| BindError::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(BindError::LocalAddr)?;
        let admin = match admin {
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .map_err(|source| BindError::Admin { addr: a, source })?,
            ),
            None => None,
        };
        let admin_addr = match &admin {
            Some(l) => Some(l.local_addr().map_err(BindError::LocalAddr)?),
            None => None,
        };
        Ok(Listeners {
            listener,
            admin,
            addr,
            admin_addr,
        })
    }

    /// The address links are accepted on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// What every daemon's shared state holds for its life: the stop signals,
/// the tasks to wait for, the drain timeout and its bound addresses.
#[derive(Debug)]
pub struct Lifecycle {
    /// Cancelled on SIGTERM: refuse new links and calls.
    pub draining: CancellationToken,
    /// Cancelled once calls have drained: close every link.
    pub closing: CancellationToken,
    /// Calls in flight.
    pub calls: TaskTracker,
    /// Every other task (links, the admin listener, dialers), waited for
    /// after `closing`.
    pub tasks: TaskTracker,
    /// Seconds calls may take to finish after SIGTERM (a reload may change it).
    drain_secs: AtomicU64,
    listen_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
}

impl Lifecycle {
    pub fn new(listeners: &Listeners, drain_timeout: Duration) -> Self {
        Lifecycle {
            draining: CancellationToken::new(),
            closing: CancellationToken::new(),
            calls: TaskTracker::new(),
            tasks: TaskTracker::new(),
            drain_secs: AtomicU64::new(drain_timeout.as_secs()),
            listen_addr: listeners.addr,
            admin_addr: listeners.admin_addr,
        }
    }

    /// The bound listening address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// `listening on ADDR; [admin on ADDR; ]` then the daemon's `status`:
    /// what systemd shows. Tests parse the addresses.
    pub fn status_line(&self, status: &str) -> String {
        let admin = self
            .admin_addr
            .map(|a| format!("admin on {a}; "))
            .unwrap_or_default();
        format!("listening on {}; {admin}{status}", self.listen_addr)
    }

    fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_secs.load(Ordering::Relaxed))
    }
}

/// What a daemon made of a reload, for the skeleton to apply and report.
#[derive(Debug)]
pub struct Reload<S> {
    /// The settings now in force: the new value of each live key, the old
    /// one of each restart-only key (so the next reload reports it again).
    pub applied: S,
    /// The new log level, when it changed.
    pub log_level: Option<String>,
    /// The drain time, old and new, when it changed.
    pub drain_secs: Option<(u64, u64)>,
    /// "listen: A -> B" and the like: changed, not applied.
    pub need_restart: Vec<String>,
    /// Nothing at all changed.
    pub unchanged: bool,
}

impl<S> Reload<S> {
    pub fn new(
        applied: S,
        log_level: Option<String>,
        drain_secs: Option<(u64, u64)>,
        need_restart: Vec<String>,
        unchanged: bool,
    ) -> Self {
        Reload {
            applied,
            log_level,
            drain_secs,
            need_restart,
            unchanged,
        }
    }
}

/// Re-reads the configuration on SIGHUP.
pub struct Reloader<S> {
    /// Loads the settings afresh (file, then environment and flags on top).
    pub load: Box<dyn Fn() -> anyhow::Result<S> + Send + Sync>,
    /// Applies a new log level.
    pub log: LogControl,
    /// One message per SIGHUP.
    pub signals: mpsc::Receiver<()>,
    /// The settings in force, to tell what a reload changes (`None`: the
    /// daemon was not started from settings, and reloads are ignored).
    current: Option<S>,
}

impl<S> Reloader<S> {
    pub fn new(
        load: impl Fn() -> anyhow::Result<S> + Send + Sync + 'static,
        log: LogControl,
        signals: mpsc::Receiver<()>,
    ) -> Self {
        Reloader {
            load: Box::new(load),
            log,
            signals,
            current: None,
        }
    }
}

impl<S> std::fmt::Debug for Reloader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

/// A daemon as the skeleton drives it.
pub trait Service: Send + Sync + Sized + 'static {
    /// What the daemon calls itself in logs ("relay", "gateway").
    const NOUN: &'static str;
    type Settings: Send + 'static;
    /// What [`Service::stopped`] may fail with.
    type Error;

    fn lifecycle(&self) -> &Lifecycle;

    /// The status line after the addresses, e.g. `peers up: N; ...`.
    fn status(&self) -> String;

    /// Receiving devices logged in through this daemon.
    fn devices_online(&self) -> usize;

    /// Numbers whose connection information the daemon holds (a relay's
    /// directory); none by default.
    fn numbers_known(&self) -> usize {
        0
    }

    /// Calls, devices and numbers, for the idle memory trim.
    fn activity(&self) -> Activity {
        Activity {
            calls_in_flight: self.lifecycle().calls.len(),
            devices_online: self.devices_online(),
            numbers_known: self.numbers_known(),
        }
    }

    /// Logs that the daemon listens, with what it knows at start.
    fn log_listening(&self);

    /// Serves one accepted connection until it ends (a task of its own).
    fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static;

    /// Starts the daemon's own tasks once it has signalled ready.
    fn started(self: &Arc<Self>);

    /// Applies what changed between `old` and `new` that only this daemon
    /// knows about (peers, relays, certificates) and reports the rest.
    fn reload(
        self: &Arc<Self>,
        old: &Self::Settings,
        new: Self::Settings,
    ) -> Reload<Self::Settings>;

    /// The Prometheus text for `/metrics`.
    fn metrics_page(&self) -> String;

    /// A JSON page of the daemon's own at `path` on the admin listener
    /// (gatewayd: `/jobs`); `None` for a path it does not serve.
    fn json_page(&self, _path: &str) -> Option<String> {
        None
    }

    /// Where failed accepts and reloads are counted.
    fn metrics(&self) -> &dyn DaemonMetrics;

    /// The daemon's last steps once every task has ended (flushing a store).
    fn stopped(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// The whole status line systemd shows.
    fn status_line(&self) -> String {
        self.lifecycle().status_line(&self.status())
    }
}

/// The admin listener's pages of a daemon.
struct Pages<D>(Arc<D>);

impl<D: Service> AdminPages for Pages<D> {
    fn metrics(&self) -> String {
        self.0.metrics_page()
    }

    fn json(&self, path: &str) -> Option<String> {
        self.0.json_page(path)
    }

    fn health(&self) -> Result<String, String> {
        if self.0.lifecycle().draining.is_cancelled() {
            Err("stopping".into())
        } else {
            Ok(format!("ok: {}", self.0.status_line()))
        }
    }
}

/// Runs `daemon` until `shutdown` fires, then drains, closes and waits for
/// every task, and returns once [`Service::stopped`] has. `settings` are
/// those the daemon started with, which the reloader compares new ones to.
pub async fn run<D: Service>(
    daemon: Arc<D>,
    listeners: Listeners,
    shutdown: CancellationToken,
    mut reloader: Option<Reloader<D::Settings>>,
    settings: Option<D::Settings>,
) -> Result<(), D::Error> {
    if let Some(r) = &mut reloader {
        r.current = settings;
    }
    let life = daemon.lifecycle();
    let Listeners {
        listener, admin, ..
    } = listeners;
    if let (Some(admin), Some(admin_addr)) = (admin, life.admin_addr) {
        tracing::info!(%admin_addr, "admin on http://{admin_addr}/metrics and /healthz");
        let pages: Arc<dyn AdminPages> = Arc::new(Pages(daemon.clone()));
        life.tasks
            .spawn(admin_http::serve(admin, pages, life.closing.clone()));
    }
    daemon.log_listening();
    let mut status = daemon.status_line();
    // What starting up allocated and freed goes back before the first call.
    memory::release_free_memory();
    notify::ready(&status);
    daemon.started();

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
                if let Some(r) = &mut reloader {
                    reload(&daemon, r);
                }
                status = daemon.status_line();
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    life.tasks.spawn(daemon.clone().serve(tcp, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    daemon.metrics().error("accept");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            _ = refresh.tick() => {
                idle_trim.tick(daemon.activity());
                let now = daemon.status_line();
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
    drain(life, &mut watchdog).await;
    life.closing.cancel();
    life.tasks.close();
    life.tasks.wait().await;
    daemon.stopped().await?;
    tracing::info!("stopped");
    notify::flush(Duration::from_secs(1));
    Ok(())
}

/// Refuses new calls and waits for those in flight, up to the drain timeout.
async fn drain(life: &Lifecycle, watchdog: &mut Option<tokio::time::Interval>) {
    life.draining.cancel();
    life.calls.close();
    let in_flight = life.calls.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "waiting for calls in flight");
    }
    if tokio::time::timeout(life.drain_timeout(), async {
        // Keep petting the watchdog while calls finish.
        loop {
            tokio::select! {
                _ = life.calls.wait() => break,
                _ = notify::tick(watchdog) => notify::watchdog(),
            }
        }
    })
    .await
    .is_err()
    {
        tracing::warn!(
            left = life.calls.len(),
            "drain timeout: cutting calls still in flight"
        );
    }
}

/// Loads the settings afresh and applies what changed; logs each change,
/// and what needs a restart.
fn reload<D: Service>(daemon: &Arc<D>, reloader: &mut Reloader<D::Settings>) {
    notify::reloading();
    let new = match (reloader.load)() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("reload failed; the running configuration stays: {e:#}");
            daemon.metrics().reloaded("failed");
            notify::ready(&daemon.status_line());
            return;
        }
    };
    let Some(old) = reloader.current.take() else {
        tracing::warn!(
            "this {} was not started from settings; reload ignored",
            D::NOUN
        );
        notify::ready(&daemon.status_line());
        return;
    };
    let r = daemon.reload(&old, new);
    if let Some(level) = &r.log_level {
        reloader.log.reload_level(level);
    }
    if let Some((a, b)) = r.drain_secs {
        daemon.lifecycle().drain_secs.store(b, Ordering::Relaxed);
        tracing::info!("drain_secs: {a} -> {b}");
    }
    for what in &r.need_restart {
        tracing::warn!("{what}: needs a restart; not applied");
    }
    if r.unchanged {
        tracing::info!("configuration reloaded: nothing changed");
    }
    reloader.current = Some(r.applied);
    daemon.metrics().reloaded("applied");
    notify::ready(&daemon.status_line());
}

//! The gateway's accept loop, status line, watchdog, configuration reload
//! (SIGHUP) and graceful shutdown (SIGTERM).

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use common::daemon::lifecycle::{self, Lifecycle, Listeners, Reload, Service};
use common::daemon::memory::Activity;
use common::daemon::metrics::DaemonMetrics;
use common::daemon::notify;
use common::throttle::LoginThrottle;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::config::{self, GatewayConfig, Settings, default_name};
use crate::devices::Devices;
use crate::metrics::GatewayMetrics;
use crate::{device_link, uplink};

/// Re-reads the configuration on SIGHUP.
pub type Reloader = lifecycle::Reloader<Settings>;

/// State every task of the gateway shares. The stop signals and trackers
/// every daemon has (`draining`, `closing`, `calls`, `tasks`) are in its
/// [`Lifecycle`], reached through `Deref` as if they were fields here.
#[derive(Debug)]
pub struct Gateway {
    pub life: Lifecycle,
    pub config: GatewayConfig,
    pub name: String,
    pub devices: Devices,
    pub uplink: uplink::Uplink,
    pub metrics: GatewayMetrics,
    /// Refused logins per device address (a std Mutex: never held across
    /// an await).
    pub login_throttle: Mutex<LoginThrottle<IpAddr>>,
    /// Relays in order of preference; a reload may change them.
    relays: Mutex<Vec<String>>,
}

impl Deref for Gateway {
    type Target = Lifecycle;

    fn deref(&self) -> &Lifecycle {
        &self.life
    }
}

impl Gateway {
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
        Service::status_line(self)
    }

    /// Tells systemd (and tests) what the gateway is doing.
    pub fn update_status(&self) {
        notify::status(&self.status_line());
    }
}

impl Service for Gateway {
    const NOUN: &'static str = "gateway";
    type Settings = Settings;
    type Error = std::convert::Infallible;

    fn lifecycle(&self) -> &Lifecycle {
        &self.life
    }

    fn status(&self) -> String {
        let relay = match self.uplink.current() {
            Some(r) => format!("linked to relay {} at {}", r.name, r.addr),
            None => "no relay link".to_owned(),
        };
        format!(
            "{relay}; calls in flight: {}; devices online: {}",
            self.calls.len(),
            self.devices.count()
        )
    }

    fn activity(&self) -> Activity {
        Activity {
            calls_in_flight: self.calls.len(),
            devices_online: self.devices.count(),
        }
    }

    fn log_listening(&self) {
        let addr = self.listen_addr();
        tracing::info!(gateway = %self.name, %addr, relays = ?self.relays(), "listening");
    }

    fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        device_link::serve(self, tcp, peer)
    }

    /// The link to a relay.
    fn started(self: &Arc<Self>) {
        self.tasks.spawn(uplink::maintain(self.clone()));
    }

    fn reload(self: &Arc<Self>, old: &Settings, new: Settings) -> Reload<Settings> {
        let c = config::changes(old, &new);
        if let Some((a, b)) = &c.relays {
            tracing::info!("relays: {} -> {}", a.join(", "), b.join(", "));
            *self.relays.lock().unwrap_or_else(|p| p.into_inner()) = b.clone();
            // A link to a relay no longer listed is closed; the uplink then
            // starts over from the new list.
            if let Some(r) = self.uplink.current()
                && !b.contains(&r.addr)
            {
                tracing::info!(relay = %r.name, addr = %r.addr, "closing the link to a relay no longer listed");
                r.opener.close();
            }
            self.uplink.relays_changed();
        }
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
    reloader: Option<Reloader>,
) -> anyhow::Result<()> {
    let listeners = Listeners::bind(config.listen, config.admin).await?;
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| default_name(listeners.addr().port()));
    common::link::frame::set_max_frame_len(config.max_frame_bytes);
    let settings = config.settings.clone();
    let gw = Arc::new(Gateway {
        life: Lifecycle::new(&listeners, config.drain_timeout),
        login_throttle: Mutex::new(LoginThrottle::new(config.login_attempts_per_min)),
        relays: Mutex::new(config.relays.clone()),
        config,
        name,
        devices: Devices::default(),
        uplink: uplink::Uplink::default(),
        metrics: GatewayMetrics::default(),
    });
    lifecycle::run(gw, listeners, shutdown, reloader, settings).await?;
    Ok(())
}

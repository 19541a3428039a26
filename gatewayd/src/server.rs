//! gatewayd as a daemon: what it plugs into the shared skeleton
//! (`common::daemon::lifecycle`): its status line, what it does with an
//! accepted device link, its relay link, what a reload changes, its metrics
//! page; and `run`, which builds the gateway's state and starts it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use common::daemon::lifecycle::{self, Lifecycle, Listeners, Reload, Service};
use common::daemon::metrics::DaemonMetrics;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::config::{self, GatewayConfig, Settings, default_name};
use crate::gateway::Gateway;
use crate::gateway_core::GatewayCore;
use crate::metrics::{GatewayGauges, GatewayMetrics};
use crate::queue::Queue;
use crate::{device_link, job_runner, relay_link, uplink};

/// Re-reads the configuration on SIGHUP.
pub type Reloader = lifecycle::Reloader<Settings>;

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
            self.online_count()
        )
    }

    fn devices_online(&self) -> usize {
        self.online_count()
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
        self.tasks.spawn(relay_link::maintain(self.clone()));
        job_runner::resume_all(self);
    }

    fn reload(self: &Arc<Self>, old: &Settings, new: Settings) -> Reload<Settings> {
        let c = config::changes(old, &new);
        if let Some((a, b)) = &c.relays {
            tracing::info!("relays: {} -> {}", a.join(", "), b.join(", "));
            self.set_relays(b.clone());
            // A link to a relay no longer listed is closed; the uplink then
            // starts over from the new list.
            if let Some(r) = self.uplink.current()
                && !b.contains(&r.addr)
            {
                tracing::info!(relay = %r.name, addr = %r.addr, "closing the link to a relay no longer listed");
                r.link.close();
            }
            self.uplink.relays_changed();
        }
        c.into_reload(config::applied(old, new))
    }

    fn metrics_page(&self) -> String {
        self.metrics.render(&GatewayGauges {
            relay_link_up: self.uplink.current().is_some(),
            devices_online: self.online_count() as u64,
            calls_in_flight: self.calls.len() as u64,
        })
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
    let queue = match &config.state_dir {
        Some(dir) => Some(
            Queue::open(dir)
                .with_context(|| format!("cannot open the fax queue in {}", dir.display()))?,
        ),
        None => None,
    };
    let gw = Arc::new(Gateway {
        queue,
        life: Lifecycle::new(&listeners, config.drain_timeout),
        core: Mutex::new(GatewayCore::new(&name, config.login_attempts_per_min)),
        relays: Mutex::new(config.relays.clone()),
        config,
        name,
        uplink: uplink::Uplink::default(),
        metrics: GatewayMetrics::default(),
    });
    lifecycle::run(gw, listeners, shutdown, reloader, settings).await?;
    Ok(())
}

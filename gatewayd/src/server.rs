//! gatewayd as a daemon: what it plugs into the shared skeleton
//! (`common::daemon::lifecycle`): its status line, what it does with an
//! accepted device link, its relay link, what a reload changes, its metrics
//! page; and `run`, which builds the gateway's state and starts it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;

use common::daemon::lifecycle::{self, Lifecycle, Listeners, Reload, Service};
use common::daemon::memory::Activity;
use common::daemon::metrics::DaemonMetrics;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::config::{self, GatewayConfig, Settings, default_name};
use crate::gateway::Gateway;
use crate::gateway_core::GatewayCore;
use crate::metrics::{GatewayGauges, GatewayMetrics};
use crate::queue::{Events, Queue};
use crate::{device_link, email, job_runner, relay_link, uplink};
use common::hooks::{Notifier, Settings as HookSettings};
use common::jobs::JobState;

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
        let smtp = match self.mail.as_ref().and_then(|m| m.smtp_addr) {
            Some(addr) => format!("smtp on {addr}; "),
            None => String::new(),
        };
        format!(
            "{smtp}{relay}; calls in flight: {}; devices online: {}",
            self.calls.len(),
            self.online_count()
        )
    }

    fn devices_online(&self) -> usize {
        self.online_count()
    }

    /// Queue requests count as calls: memory is given back once a burst of
    /// submissions is over too.
    fn activity(&self) -> Activity {
        Activity {
            calls_in_flight: self.calls.len() + self.queue_requests.load(Ordering::Relaxed),
            devices_online: self.online_count(),
            numbers_known: self.numbers_known(),
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
        self.tasks.spawn(relay_link::maintain(self.clone()));
        if let Some(events) = self.queue.as_ref().and_then(|q| q.events.as_ref()) {
            self.tasks
                .spawn(events.notifier.clone().run(self.closing.clone()));
        }
        job_runner::resume_all(self);
        if let Some(mail) = &self.mail {
            if let Some(listener) = mail.take_listener() {
                self.tasks.spawn(email::smtp_server::serve(
                    self.clone(),
                    mail.clone(),
                    listener,
                ));
            }
            if let (Some(outbox), Some(host)) = (&mail.outbox, &mail.settings.smarthost) {
                match email::outbox::Smarthost::parse(host, mail.settings.smarthost_ca_file.clone())
                {
                    Ok(smarthost) => {
                        self.tasks
                            .spawn(outbox.clone().run(smarthost, self.clone()));
                    }
                    Err(e) => tracing::error!(error = %e, "no mail will be sent"),
                }
            }
            self.tasks
                .spawn(email::status::run(self.clone(), mail.clone()));
            email::devices::start(self, mail, self.listen_addr());
        }
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
        if let Some(mail) = &self.mail {
            mail.reload();
        }
        c.into_reload(config::applied(old, new))
    }

    fn metrics_page(&self) -> String {
        let mut gauges = GatewayGauges {
            relay_link_up: self.uplink.current().is_some(),
            devices_online: self.online_count() as u64,
            calls_in_flight: self.calls.len() as u64,
            ..GatewayGauges::default()
        };
        if let Some(queue) = &self.queue {
            let (by_state, oldest_ms) = queue.depth();
            let n = |s| by_state.get(&s).copied().unwrap_or(0);
            gauges.jobs_queued = n(JobState::Queued);
            gauges.jobs_scheduled = n(JobState::Scheduled);
            gauges.jobs_sending = n(JobState::Sending);
            gauges.jobs_waiting = n(JobState::Waiting);
            gauges.oldest_job_secs = oldest_ms / 1000;
            if let Some(outbox) = self.mail.as_ref().and_then(|m| m.outbox.as_ref()) {
                gauges.mail_spool_depth = outbox.depth();
            }
            if let Some(events) = &queue.events {
                let stats = events.notifier.stats();
                gauges.notifications_delivered = stats.delivered;
                gauges.notifications_failed = stats.failed_attempts;
                gauges.notifications_pending = stats.pending;
            }
        }
        self.metrics.render(&gauges)
    }

    /// `/jobs`: every job in the queue, oldest first, as faxstat --json
    /// shows a number's (`{"jobs": [...]}`).
    fn json_page(&self, path: &str) -> Option<String> {
        let queue = self.queue.as_ref().filter(|_| path == "/jobs")?;
        let jobs: Vec<_> = match queue.store.all(None) {
            Ok(jobs) => jobs.into_iter().map(|j| j.status).collect(),
            Err(e) => return Some(serde_json::json!({ "error": e.to_string() }).to_string()),
        };
        Some(serde_json::json!({ "jobs": jobs }).to_string())
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
        Some(dir) => {
            let events = |tree| {
                let any = !config.job_targets.is_empty() || config.notify_key.is_some();
                any.then(|| {
                    let notifier =
                        Notifier::open(tree, config.notify_key.clone(), HookSettings::default())?;
                    Ok(Events {
                        notifier,
                        targets: config.job_targets.clone(),
                        gateway: name.clone(),
                    })
                })
                .transpose()
            };
            let queue = Queue::open(dir, events)
                .with_context(|| format!("cannot open the fax queue in {}", dir.display()))?;
            Some(queue)
        }
        None => None,
    };
    let mail = match (
        config.settings.as_ref().and_then(|s| s.mail.clone()),
        &queue,
    ) {
        (Some(settings), Some(queue)) => Some(Arc::new(email::Mail::open(settings, queue).await?)),
        _ => None,
    };
    let gw = Arc::new(Gateway {
        mail,
        queue,
        queue_requests: AtomicUsize::new(0),
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

//! The state every task of the gateway shares, and how the effects the
//! gateway core decides are carried out.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};

use common::daemon::lifecycle::{Lifecycle, Service};
use common::daemon::notify;
use common::link::actor::LinkHandle;

use crate::config::GatewayConfig;
use crate::email::Mail;
use crate::gateway_core::{Effect, GatewayCore};
use crate::metrics::GatewayMetrics;
use crate::queue::Queue;
use crate::uplink::Uplink;

/// State every task of the gateway shares. The stop signals and trackers
/// every daemon has (`draining`, `closing`, `calls`, `tasks`) are in its
/// [`Lifecycle`], reached through `Deref` as if they were fields here.
#[derive(Debug)]
pub struct Gateway {
    pub life: Lifecycle,
    pub config: GatewayConfig,
    pub name: String,
    /// The LAN's devices and the login and call rules. A std Mutex:
    /// nothing awaits while it is held.
    pub(crate) core: Mutex<GatewayCore<LinkHandle>>,
    pub uplink: Uplink,
    /// The fax queue, when the gateway has a state directory.
    pub queue: Option<Queue>,
    /// The e-mail side, when configured.
    pub mail: Option<Arc<Mail>>,
    /// Requests to the queue being served (submissions, lists, waits).
    pub queue_requests: AtomicUsize,
    pub metrics: GatewayMetrics,
    /// Relays in order of preference; a reload may change them.
    pub(crate) relays: Mutex<Vec<String>>,
}

impl Deref for Gateway {
    type Target = Lifecycle;

    fn deref(&self) -> &Lifecycle {
        &self.life
    }
}

impl Gateway {
    /// The gateway's state and rules, locked.
    pub fn core(&self) -> MutexGuard<'_, GatewayCore<LinkHandle>> {
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
                // A full outbox closes that device's link: it is gone either way.
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

    /// A reload changed the relay list.
    pub fn set_relays(&self, relays: Vec<String>) {
        *self.relays.lock().unwrap_or_else(|p| p.into_inner()) = relays;
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
        Service::status_line(self)
    }

    /// Tells systemd (and tests) what the gateway is doing.
    pub fn update_status(&self) {
        notify::status(&self.status_line());
    }
}

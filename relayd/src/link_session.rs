//! One task per accepted connection: TLS or plaintext, the hello, then either
//! a peer relay's link (`peer`), or a device or gateway link run by the link
//! actor in a task of its own, whose logins and logouts the relay core
//! decides.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use common::link::actor::{self, LinkHandle, LinkRole, Reply};
use common::link::control::{self, Link};
use common::link::message::{Hello, PROTOCOL_VERSION, Role};
use common::link::mux::MuxStream;
use common::link::roles::FromDevice;
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::relay::Relay;
use crate::relay_core::LinkId;
use crate::relay_core::limits::Slot;
use crate::relay_core::peering::NameClash;
use crate::relay_core::route::Caller;
use crate::{call, peer};

/// Control messages waiting to go out on one link.
const OUTBOX: usize = 64;

/// Serves one accepted TCP connection until it ends or the relay closes.
pub async fn serve(relay: Arc<Relay>, tcp: TcpStream, peer: SocketAddr) {
    if relay.draining.is_cancelled() {
        return;
    }
    // The handshake's futures (TLS, hello) and a peer link's are boxed: a
    // task is as large as its largest state, and a peer link, which runs
    // in this task, would keep room for the handshake's. A device or
    // gateway link runs in a task of its own (below).
    let opened = match Box::pin(relay.config.inbound.open(tcp, peer, &relay.config.link)).await {
        Ok(opened) => opened,
        Err(e) => {
            tracing::info!(%peer, error = %e, "link refused");
            relay.metrics.error("link_refused");
            return;
        }
    };
    let scheme = opened.scheme;
    let name = relay.config.name.clone();
    let me = name.clone();
    // Held for the link's life; over the limit, the link is refused with the
    // reason once the hello arrives (so the dialer hears why).
    let slot = relay.limits.link_slot(peer.ip());
    // A relay of our own name is refused at its hello (no instance id is
    // needed to tell); kept to be logged in words below.
    let mut own_name = None;
    let link = Box::pin(control::accept(
        opened.inbound,
        &relay.config.link,
        |hello| {
            if let Some(reason) = opened.refusal {
                return Err(reason);
            }
            if let Err(reason) = &slot {
                return Err(reason.to_string());
            }
            if hello.role == Role::Relay && hello.name == me {
                let clash = NameClash::OwnName { name: me };
                let reason = clash.reason();
                own_name = Some(clash);
                return Err(reason);
            }
            Ok(Hello {
                version: PROTOCOL_VERSION,
                role: Role::Relay,
                name,
            })
        },
    ))
    .await;
    if let (Err(_), Some(clash)) = (&link, own_name) {
        tracing::warn!("refusing peer link from {peer}: {clash}");
        relay.metrics.error("peer_name_clash");
        return;
    }
    let mut link = match link {
        Ok(link) => link,
        Err(e) => {
            tracing::info!(%peer, error = %e, "link refused");
            relay.metrics.error("link_refused");
            return;
        }
    };
    if link.peer.role == Role::Relay {
        let span = tracing::info_span!("peer", %peer, name = %link.peer.name, %scheme);
        Box::pin(peer::accept(relay, &mut link, call::spawn).instrument(span)).await;
        return;
    }
    let span =
        tracing::info_span!("link", %peer, role = %link.peer.role, name = %link.peer.name, %scheme);
    // The run goes on in a task of its own, tracked like this one, and
    // this task ends: a task is as large as its future's largest state,
    // which here is the handshake's, and every idle link held it for its
    // whole life (1.3 KB per link, heaptrack). The run's task holds the
    // link once and its actor inline.
    let tasks = relay.tasks.clone();
    tasks.spawn(run_link(relay, link, peer.ip(), slot.ok()).instrument(span));
}

/// A device or gateway link: logins and logouts go to the core, calls to
/// [`call`]; the link actor does the rest. `slot` is the link's place
/// under the per-address limit, held until the link is down.
///
/// Every idle link keeps this task, so its future is kept small: not an
/// `async fn`, which stores its arguments twice (as passed, and again as
/// the locals they are moved into), and the actor borrows the link
/// instead of taking a copy of it.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
fn run_link(
    relay: Arc<Relay>,
    mut link: Link,
    ip: IpAddr,
    slot: Option<Slot>,
) -> impl Future<Output = ()> {
    async move {
        let _slot = slot;
        let (handle, mailbox) = LinkHandle::new(link.opener.clone(), OUTBOX);
        let gateway = (link.peer.role == Role::Gateway).then(|| link.peer.name.clone());
        let id = relay.core().link_up(handle, ip, gateway);
        let _up = relay.link_up();
        tracing::info!("link up");
        let settings = actor::Settings {
            heartbeat: relay.config.link.heartbeat,
            far_end: "peer",
            stop: relay.closing.clone(),
            stop_reason: "relay stopping",
        };
        let mut role = DeviceLink {
            relay: relay.clone(),
            id,
        };
        let reason = actor::run(&mut link, mailbox, &mut role, &settings).await;
        let effects = relay.core().link_lost(id);
        let offline = effects.len();
        relay.apply(effects);
        tracing::info!(%reason, offline, "link down");
    }
}

/// The relay's end of a device or gateway link.
struct DeviceLink {
    relay: Arc<Relay>,
    id: LinkId,
}

impl LinkRole for DeviceLink {
    type Inbound = FromDevice;

    fn on_message(&mut self, msg: FromDevice) -> Reply {
        let relay = &self.relay;
        match msg {
            FromDevice::Login(login) => {
                let answer = relay
                    .core()
                    .login(self.id, &login, Instant::now(), unix_now());
                relay.metrics.logins.inc(&[("result", answer.result)]);
                relay.apply(answer.effects);
                Reply::Now(answer.reply)
            }
            FromDevice::Logout { number } => {
                let effects = relay.core().logout(self.id, &number);
                relay.apply(effects);
                Reply::None
            }
            FromDevice::IssueJobCredential {
                number,
                call_id,
                expires_unix,
            } => {
                let reply = relay.core().issue_job_credential(
                    self.id,
                    &number,
                    &call_id,
                    expires_unix,
                    unix_now(),
                );
                tracing::info!(%number, job = %call_id, "job credential asked for");
                Reply::Now(reply)
            }
        }
    }

    fn on_stream(&mut self, stream: MuxStream) {
        call::spawn(&self.relay, Caller::Link(self.id), stream);
    }
}

/// Seconds since 1970 (a job credential's expiry is in these).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

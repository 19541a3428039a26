//! One task per device connection on the LAN side: the hello, then the link
//! actor with the device role: logins (forwarded to the relay), and the
//! calls the device places.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use common::link::actor::{self, LinkHandle, LinkRole, Reply};
use common::link::control::{self, Link};
use common::link::message::{Control, Hello, Login, LoginOutcome, PROTOCOL_VERSION, Role};
use common::link::mux::MuxStream;
use common::link::roles::FromDevice;
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::call;
use crate::gateway::Gateway;
use crate::gateway_core::DeviceLinkId;

const OUTBOX: usize = 16;

pub async fn serve(gw: Arc<Gateway>, tcp: TcpStream, peer: SocketAddr) {
    if gw.draining.is_cancelled() {
        return;
    }
    let name = gw.name.clone();
    let link = control::accept(tcp, &gw.config.link, |hello| match hello.role {
        Role::Device => Ok(Hello {
            version: PROTOCOL_VERSION,
            role: Role::Gateway,
            name,
        }),
        other => Err(format!(
            "this is a gateway for fax devices; a {other} cannot link here"
        )),
    })
    .await;
    let mut link = match link {
        Ok(link) => link,
        Err(e) => {
            tracing::info!(%peer, error = %e, "device link refused");
            gw.metrics.error("device_link_refused");
            return;
        }
    };
    let span = tracing::info_span!("device", %peer, name = %link.peer.name);
    run(gw, &mut link, peer.ip()).instrument(span).await;
}

/// Runs a device's link. It borrows the link, which this task holds once:
/// an `async fn` stores what it is passed twice.
async fn run(gw: Arc<Gateway>, link: &mut Link, ip: IpAddr) {
    let (handle, mailbox) = LinkHandle::new(link.opener.clone(), OUTBOX);
    let id = gw.core().link_up(handle, ip);
    gw.metrics.device_links.inc();
    let settings = actor::Settings {
        heartbeat: gw.config.link.heartbeat,
        far_end: "device",
        stop: gw.closing.clone(),
        stop_reason: "gateway stopping",
    };
    let mut role = DeviceLink { gw: gw.clone(), id };
    let reason = actor::run(link, mailbox, &mut role, &settings).await;
    let effects = gw.core().link_lost(id);
    gw.apply(effects).await;
    gw.update_status();
    tracing::info!(%reason, "device link down");
}

/// The gateway's end of a device link: logins go up to the relay (the
/// answer comes back later, while the link is served), calls go up too.
struct DeviceLink {
    gw: Arc<Gateway>,
    id: DeviceLinkId,
}

impl LinkRole for DeviceLink {
    type Inbound = FromDevice;

    fn on_message(&mut self, msg: FromDevice) -> Reply {
        match msg {
            FromDevice::Login(login) => {
                Reply::Later(Box::pin(login_device(self.gw.clone(), self.id, login)))
            }
            FromDevice::Logout { number } => {
                tracing::info!(%number, "device logged out");
                Reply::None
            }
            // A relay issues job credentials; a device cannot ask for one.
            FromDevice::IssueJobCredential { number, .. } => {
                tracing::warn!(%number, "a device asked for a job credential; ignored");
                Reply::None
            }
        }
    }

    fn on_stream(&mut self, stream: MuxStream) {
        call::spawn_from_device(&self.gw, self.id, stream);
    }

    fn on_sent(&mut self, msg: &Control) {
        if matches!(msg, Control::Kicked { .. }) {
            tracing::info!("device replaced by a newer login");
        }
    }
}

/// Forwards a device's login to the relay (unless the device's address is
/// throttled) and answers with the relay's outcome.
async fn login_device(gw: Arc<Gateway>, id: DeviceLinkId, login: Login) -> Option<Control> {
    let number = login.number.clone();
    let allowed = gw.core().may_try_login(id, Instant::now());
    let outcome = match allowed {
        Err(refused) => refused,
        Ok(()) => {
            gw.uplink
                .login(login.clone(), gw.config.link.handshake_timeout)
                .await
        }
    };
    let effects = gw
        .core()
        .login_answered(id, login, &outcome, Instant::now());
    gw.apply(effects).await;
    match &outcome {
        LoginOutcome::Accepted { relay } => {
            tracing::info!(%number, %relay, "device logged in");
            gw.metrics.logins.inc(&[("result", "accepted")]);
            gw.update_status();
        }
        LoginOutcome::Refused(reason) => {
            tracing::warn!(%number, %reason, "device login refused");
            gw.metrics.logins.inc(&[("result", "refused")]);
        }
    }
    Some(Control::LoginResult { number, outcome })
}

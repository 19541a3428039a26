//! One task per accepted link: the hello, then the control stream (logins,
//! logouts, heartbeats) and the call streams the peer opens.

use std::net::SocketAddr;
use std::sync::Arc;

use common::directory::{ConnectionInfo, unix_now};
use common::link::control::{self, Heartbeat, Link};
use common::link::message::{
    Control, Hello, Login, LoginOutcome, LoginRefusal, PROTOCOL_VERSION, Role,
};
use common::number::Number;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::call;
use crate::registry::{LinkId, Route};
use crate::server::Relay;

/// Control messages waiting to go out on one link.
const OUTBOX: usize = 64;

/// Serves one accepted TCP connection until it ends or the relay closes.
pub async fn serve(relay: Arc<Relay>, tcp: TcpStream, peer: SocketAddr) {
    if relay.draining.is_cancelled() {
        return;
    }
    let name = relay.config.name.clone();
    let link = control::accept(tcp, &relay.config.link, |hello| match hello.role {
        Role::Device | Role::Gateway => Ok(Hello {
            version: PROTOCOL_VERSION,
            role: Role::Relay,
            name,
        }),
        Role::Relay => Err("relay peering is not enabled on this relay".to_owned()),
    })
    .await;
    let link = match link {
        Ok(link) => link,
        Err(e) => {
            tracing::info!(%peer, error = %e, "link refused");
            return;
        }
    };
    let span = tracing::info_span!("link", %peer, role = %link.peer.role, name = %link.peer.name);
    run_link(relay, link).instrument(span).await;
}

async fn run_link(relay: Arc<Relay>, mut link: Link) {
    let id = relay.registry.new_link();
    let (outbox, mut outbox_rx) = mpsc::channel::<Control>(OUTBOX);
    let gateway = (link.peer.role == Role::Gateway).then(|| link.peer.name.clone());
    let mut heartbeat = Heartbeat::new(relay.config.link.heartbeat);
    tracing::info!("link up");
    let reason = loop {
        tokio::select! {
            // Priorities: closing first, then control traffic (logins, pings)
            // so heartbeats are never starved by calls, then new calls.
            biased;
            _ = relay.closing.cancelled() => break "relay stopping".to_owned(),
            _ = link.opener.closed() => break "link closed".to_owned(),
            msg = link.reader.next() => {
                heartbeat.heard();
                match msg {
                    Ok(Some(msg)) => {
                        let ctx = LinkCtx { relay: &relay, id, gateway: &gateway, outbox: &outbox, link: &link };
                        if let Some(reply) = handle_control(ctx, msg)
                            && let Err(e) = link.writer.send(&reply).await
                        {
                            break format!("cannot write: {e}");
                        }
                    }
                    Ok(None) => break "peer closed the control stream".to_owned(),
                    Err(e) => break format!("bad control frame: {e}"),
                }
            }
            Some(msg) = outbox_rx.recv() => {
                if let Err(e) = link.writer.send(&msg).await {
                    break format!("cannot write: {e}");
                }
            }
            ping = heartbeat.beat() => match ping {
                Some(ping) => {
                    if let Err(e) = link.writer.send(&ping).await {
                        break format!("cannot write: {e}");
                    }
                }
                None => break format!("peer silent for {:?}", heartbeat.deadline()),
            },
            Some(stream) = link.inbound.recv() => {
                call::spawn(&relay, id, stream);
            }
        }
    };
    link.opener.close();
    let gone = relay.registry.drop_link(id);
    for number in &gone {
        mark_offline(&relay, number);
    }
    tracing::info!(%reason, offline = gone.len(), "link down");
}

struct LinkCtx<'a> {
    relay: &'a Relay,
    id: LinkId,
    gateway: &'a Option<String>,
    outbox: &'a mpsc::Sender<Control>,
    link: &'a Link,
}

/// Handles one control message; returns the reply to send, if any.
fn handle_control(ctx: LinkCtx<'_>, msg: Control) -> Option<Control> {
    match msg {
        Control::Ping { seq } => Some(Control::Pong { seq }),
        Control::Pong { .. } => None,
        Control::Login(login) => Some(login_device(ctx, login)),
        Control::Logout { number } => {
            if ctx.relay.registry.logout(ctx.id, &number) {
                mark_offline(ctx.relay, &number);
            }
            tracing::info!(%number, "logged out");
            None
        }
        other => {
            tracing::debug!(?other, "ignored control message");
            None
        }
    }
}

fn login_device(ctx: LinkCtx<'_>, login: Login) -> Control {
    let relay = ctx.relay;
    let number = login.number.clone();
    if !relay.config.fleet_key.verify_device(&number, &login.secret) {
        // Never log the secret itself.
        tracing::warn!(%number, "login refused: wrong secret");
        return Control::LoginResult {
            number,
            outcome: LoginOutcome::Refused(LoginRefusal::BadSecret),
        };
    }
    let receives = login.receive.is_some();
    let route = receives.then(|| Route {
        link: ctx.id,
        opener: ctx.link.opener.clone(),
        outbox: ctx.outbox.clone(),
        gateway: ctx.gateway.clone(),
    });
    if let Some(old) = relay.registry.login(ctx.id, &number, route) {
        // Newest login wins: the older device is told why and stops receiving.
        let kicked = Control::Kicked {
            number: number.clone(),
            reason: format!(
                "number {number} logged in again{}",
                ctx.gateway
                    .as_ref()
                    .map(|g| format!(" via gateway {g}"))
                    .unwrap_or_default()
            ),
        };
        if old.outbox.try_send(kicked).is_err() {
            tracing::warn!(%number, "could not tell the previous login it was replaced");
        }
    }
    if receives {
        let record = ConnectionInfo {
            number: number.clone(),
            home_relay: relay.config.name.clone(),
            gateway: ctx.gateway.clone(),
            capabilities: login.receive,
            login_time: unix_now(),
            version: relay.store.next_version(),
            online: true,
        };
        if let Err(e) = relay.store.apply(&record) {
            tracing::error!(%number, error = %e, "cannot store connection information");
        }
    }
    tracing::info!(%number, receives, "logged in");
    Control::LoginResult {
        number,
        outcome: LoginOutcome::Accepted {
            relay: relay.config.name.clone(),
        },
    }
}

/// The number's receiving device is gone: keep the record, mark it offline.
fn mark_offline(relay: &Relay, number: &Number) {
    match relay.store.get(number) {
        Ok(Some(mut record)) if record.online => {
            record.online = false;
            record.version = relay.store.next_version();
            if let Err(e) = relay.store.apply(&record) {
                tracing::error!(%number, error = %e, "cannot store connection information");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(%number, error = %e, "cannot read connection information"),
    }
}

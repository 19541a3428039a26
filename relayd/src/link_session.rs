//! One task per accepted link: the hello, then the control stream (logins,
//! logouts, heartbeats) and the call streams the peer opens.

use std::net::{IpAddr, SocketAddr};
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

use crate::registry::{LinkId, Route};
use crate::server::Relay;
use crate::{call, peer};

/// Control messages waiting to go out on one link.
const OUTBOX: usize = 64;

/// Serves one accepted TCP connection until it ends or the relay closes.
pub async fn serve(relay: Arc<Relay>, tcp: TcpStream, peer: SocketAddr) {
    if relay.draining.is_cancelled() {
        return;
    }
    let opened = match relay
        .config
        .inbound
        .open(tcp, peer, &relay.config.link)
        .await
    {
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
    let link = control::accept(opened.inbound, &relay.config.link, |hello| {
        if let Some(reason) = opened.refusal {
            return Err(reason);
        }
        if let Err(reason) = &slot {
            return Err(reason.clone());
        }
        if hello.role == Role::Relay && hello.name == me {
            return Err(format!("relay name {me} is already taken by this relay"));
        }
        Ok(Hello {
            version: PROTOCOL_VERSION,
            role: Role::Relay,
            name,
        })
    })
    .await;
    let link = match link {
        Ok(link) => link,
        Err(e) => {
            tracing::info!(%peer, error = %e, "link refused");
            relay.metrics.error("link_refused");
            return;
        }
    };
    if link.peer.role == Role::Relay {
        let span = tracing::info_span!("peer", %peer, name = %link.peer.name, %scheme);
        peer::accept(relay, link).instrument(span).await;
        return;
    }
    let span =
        tracing::info_span!("link", %peer, role = %link.peer.role, name = %link.peer.name, %scheme);
    run_link(relay, link, peer.ip()).instrument(span).await;
}

async fn run_link(relay: Arc<Relay>, mut link: Link, ip: IpAddr) {
    let id = relay.registry.new_link();
    let _up = relay.link_up();
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
                        let ctx = LinkCtx { relay: &relay, id, ip, gateway: &gateway, outbox: &outbox, link: &link };
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
                call::spawn(&relay, call::From::Link(id), stream);
            }
        }
    };
    link.opener.close();
    relay.revocations.link_gone(id);
    let gone = relay.registry.drop_link(id);
    for number in &gone {
        mark_offline(&relay, number);
    }
    tracing::info!(%reason, offline = gone.len(), "link down");
}

struct LinkCtx<'a> {
    relay: &'a Relay,
    id: LinkId,
    ip: IpAddr,
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
    let refused = |reason: LoginRefusal, result: &str| {
        relay.metrics.logins.inc(&[("result", result)]);
        Control::LoginResult {
            number: number.clone(),
            outcome: LoginOutcome::Refused(reason),
        }
    };
    // Failed logins count per address; behind a gateway (many devices, one
    // address) per address and number.
    let key = (ctx.ip, ctx.gateway.is_some().then(|| number.clone()));
    if let Err(retry_after_secs) = relay.limits.login_allowed(&key) {
        tracing::warn!(%number, ip = %ctx.ip, "login refused: too many attempts");
        return refused(
            LoginRefusal::TooManyAttempts { retry_after_secs },
            "throttled",
        );
    }
    // Never log the secret itself.
    let Some(generation) = relay
        .config
        .fleet_key
        .verify_device_gen(&number, &login.secret)
    else {
        relay.limits.login_failed(&key);
        tracing::warn!(%number, ip = %ctx.ip, "login refused: wrong secret");
        return refused(LoginRefusal::BadSecret, "refused");
    };
    let minimum = relay.revocations.minimum(&number);
    if generation < minimum {
        relay.limits.login_failed(&key);
        tracing::warn!(%number, generation, minimum, "login refused: revoked secret");
        return refused(
            LoginRefusal::Revoked {
                generation,
                minimum,
            },
            "revoked",
        );
    }
    relay
        .revocations
        .logged_in(&number, ctx.id, generation, ctx.outbox.clone());
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
        relay.renew_local(ConnectionInfo {
            number: number.clone(),
            home_relay: relay.config.name.clone(),
            gateway: ctx.gateway.clone(),
            capabilities: login.receive,
            login_time: unix_now(),
            version: relay.mesh.store().next_version(),
            online: true,
        });
    }
    tracing::info!(%number, receives, "logged in");
    relay.metrics.logins.inc(&[("result", "accepted")]);
    Control::LoginResult {
        number,
        outcome: LoginOutcome::Accepted {
            relay: relay.config.name.clone(),
        },
    }
}

/// The number's receiving device is gone: keep the record, mark it offline.
pub(crate) fn mark_offline(relay: &Relay, number: &Number) {
    if let Some(mut record) = relay.mesh.record(number)
        && record.online
        && record.home_relay == relay.config.name
    {
        record.online = false;
        record.version = relay.mesh.store().next_version();
        relay.renew_local(record);
    }
}

/// Keeps this relay the authority for its own devices after peers' records
/// arrive: a newer record naming this relay as home while no such device is
/// logged in here (e.g. writes lost in a crash) is corrected to offline; a
/// newer login at another relay takes the number from a local device.
pub fn enforce_home_rule(relay: &Relay, stored: &[ConnectionInfo]) {
    for record in stored {
        let local = relay.registry.receiver(&record.number);
        if record.home_relay == relay.config.name {
            if record.online && local.is_none() {
                let mut fixed = record.clone();
                fixed.online = false;
                fixed.version = relay.mesh.store().next_version();
                relay.renew_local(fixed);
            }
        } else if let Some(route) = local
            && record.online
        {
            let kicked = Control::Kicked {
                number: record.number.clone(),
                reason: format!(
                    "number {} logged in again at relay {}",
                    record.number, record.home_relay
                ),
            };
            let _ = route.outbox.try_send(kicked);
            relay.registry.forget_receiver(&record.number, route.link);
        }
    }
}

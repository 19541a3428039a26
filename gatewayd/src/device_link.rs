//! One task per device connection on the LAN side: hello, logins (forwarded
//! to the relay), heartbeats, and the calls the device places.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use common::link::control::{self, Heartbeat, Link};
use common::link::message::{
    Control, Hello, Login, LoginOutcome, LoginRefusal, PROTOCOL_VERSION, Role,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::call;
use crate::devices::{DeviceLinkId, Receiver};
use crate::server::Gateway;
use crate::uplink;

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
    let link = match link {
        Ok(link) => link,
        Err(e) => {
            tracing::info!(%peer, error = %e, "device link refused");
            gw.metrics.error("device_link_refused");
            return;
        }
    };
    let span = tracing::info_span!("device", %peer, name = %link.peer.name);
    run(gw, link, peer.ip()).instrument(span).await;
}

async fn run(gw: Arc<Gateway>, mut link: Link, ip: IpAddr) {
    let id = gw.devices.new_link();
    gw.metrics.device_links.inc();
    let (outbox, mut outbox_rx) = mpsc::channel::<Control>(OUTBOX);
    let mut heartbeat = Heartbeat::new(gw.config.link.heartbeat);
    let reason = loop {
        tokio::select! {
            biased;
            _ = gw.closing.cancelled() => break "gateway stopping".to_owned(),
            _ = link.opener.closed() => break "link closed".to_owned(),
            msg = link.reader.next() => {
                heartbeat.heard();
                let reply = match msg {
                    Ok(Some(Control::Ping { seq })) => Some(Control::Pong { seq }),
                    Ok(Some(Control::Login(login))) => Some(login_device(&gw, id, ip, &link, &outbox, login).await),
                    Ok(Some(Control::Logout { number })) => {
                        tracing::info!(%number, "device logged out");
                        None
                    }
                    Ok(Some(other)) => {
                        tracing::debug!(?other, "ignored control message");
                        None
                    }
                    Ok(None) => break "device closed the link".to_owned(),
                    Err(e) => break format!("bad control frame: {e}"),
                };
                if let Some(reply) = reply
                    && let Err(e) = link.writer.send(&reply).await
                {
                    break format!("cannot write: {e}");
                }
            }
            Some(msg) = outbox_rx.recv() => {
                let kicked = matches!(msg, Control::Kicked { .. });
                if let Err(e) = link.writer.send(&msg).await {
                    break format!("cannot write: {e}");
                }
                if kicked {
                    tracing::info!("device replaced by a newer login");
                }
            }
            ping = heartbeat.beat() => match ping {
                Some(ping) => {
                    if let Err(e) = link.writer.send(&ping).await {
                        break format!("cannot write: {e}");
                    }
                }
                None => break format!("device silent for {:?}", heartbeat.deadline()),
            },
            Some(stream) = link.inbound.recv() => call::spawn_from_device(&gw, id, stream),
        }
    };
    link.opener.close();
    let departures = gw.devices.remove_link(id);
    uplink::report_departures(&gw, departures).await;
    gw.update_status();
    tracing::info!(%reason, "device link down");
}

async fn login_device(
    gw: &Gateway,
    id: DeviceLinkId,
    ip: IpAddr,
    link: &Link,
    outbox: &mpsc::Sender<Control>,
    login: Login,
) -> Control {
    let number = login.number.clone();
    let throttle = || gw.login_throttle.lock().unwrap_or_else(|p| p.into_inner());
    let allowed = throttle().check(&ip, Instant::now());
    let outcome = match allowed {
        Err(retry_after_secs) => {
            LoginOutcome::Refused(LoginRefusal::TooManyAttempts { retry_after_secs })
        }
        Ok(()) => {
            gw.uplink
                .login(login.clone(), gw.config.link.handshake_timeout)
                .await
        }
    };
    // Failed logins count against the device's address: a refused secret
    // (wrong or revoked), not a relay that is away.
    if let LoginOutcome::Refused(LoginRefusal::BadSecret | LoginRefusal::Revoked { .. }) = &outcome
    {
        throttle().failed(&ip, Instant::now());
    }
    match &outcome {
        LoginOutcome::Accepted { relay } => {
            let receiver = login.receive.is_some().then(|| Receiver {
                link: id,
                opener: link.opener.clone(),
                outbox: outbox.clone(),
            });
            if let Some(old) = gw.devices.add(id, login, receiver) {
                let _ = old.outbox.try_send(Control::Kicked {
                    number: number.clone(),
                    reason: format!("number {number} logged in again on this gateway"),
                });
            }
            tracing::info!(%number, %relay, "device logged in");
            gw.metrics.logins.inc(&[("result", "accepted")]);
            gw.update_status();
        }
        LoginOutcome::Refused(reason) => {
            tracing::warn!(%number, %reason, "device login refused");
            gw.metrics.logins.inc(&[("result", "refused")]);
        }
    }
    Control::LoginResult { number, outcome }
}

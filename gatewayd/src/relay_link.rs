//! The gateway's one link to a relay: dial the first relay of the list that
//! answers, log every device in again, then run the link actor with the
//! relay role (login answers, kicks, calls for the LAN's devices); when the
//! link drops, start over with capped exponential backoff and jitter.

use std::sync::Arc;
use std::time::Duration;

use common::backoff::Backoff;
use common::link::actor::{self, LinkHandle, LinkRole, Reply};
use common::link::control::{self, Link};
use common::link::message::{Control, Hello, LoginOutcome, PROTOCOL_VERSION, Role};
use common::link::mux::MuxStream;
use common::link::roles::FromUpstream;
use tracing::Instrument;

use crate::call;
use crate::gateway::Gateway;
use crate::gateway_core::Effect;
use crate::uplink::RelayHandle;

/// Control messages waiting to go to the relay.
const OUTBOX: usize = 1024;
/// First pause after every relay of the list failed.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Keeps a relay link up until the gateway closes.
pub async fn maintain(gw: Arc<Gateway>) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, gw.config.max_backoff);
    loop {
        for addr in &gw.relays() {
            if gw.closing.is_cancelled() {
                return;
            }
            let hello = Hello {
                version: PROTOCOL_VERSION,
                role: Role::Gateway,
                name: gw.name.clone(),
            };
            let link = tokio::select! {
                _ = gw.closing.cancelled() => return,
                link = control::dial(addr.as_str(), hello, &gw.config.link) => link,
            };
            match link {
                Ok(link) => {
                    backoff.reset();
                    gw.metrics.relay_links.inc();
                    let span = tracing::info_span!("relay", relay = %link.peer.name, %addr);
                    serve_relay_link(&gw, addr, link).instrument(span).await;
                    gw.update_status();
                    // Start over from the most preferred relay.
                    break;
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "relay unreachable");
                    gw.metrics.error("relay_unreachable");
                }
            }
        }
        if gw.uplink.current().is_none() {
            let pause = backoff.next_pause();
            tracing::info!(
                pause_ms = pause.as_millis() as u64,
                "no relay reachable; retrying"
            );
            tokio::select! {
                _ = gw.closing.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
                _ = gw.uplink.relays_changed.notified() => backoff.reset(),
            }
        }
    }
}

async fn serve_relay_link(gw: &Arc<Gateway>, addr: &str, mut link: Link) {
    let (handle, mailbox) = LinkHandle::new(link.opener.clone(), OUTBOX);
    let handle = RelayHandle {
        name: link.peer.name.clone(),
        addr: addr.to_owned(),
        link: handle,
    };
    // Replay every login before the link is announced, so calls only flow
    // once the relay knows the devices again.
    let replay = gw.core().logins_to_replay();
    let replayed = replay.len();
    for login in replay {
        if let Err(e) = link.writer.send(&Control::Login(login)).await {
            tracing::warn!(error = %e, "relay link failed during login replay");
            return;
        }
    }
    gw.uplink.current.send_replace(Some(handle));
    gw.update_status();
    tracing::info!(replayed, "relay link up");
    let settings = actor::Settings {
        heartbeat: gw.config.link.heartbeat,
        far_end: "relay",
        stop: gw.closing.clone(),
        stop_reason: "gateway stopping",
    };
    let mut role = RelayLink { gw: gw.clone() };
    let reason = actor::run(&mut link, mailbox, &mut role, &settings).await;
    gw.uplink.current.send_replace(None);
    tracing::warn!(%reason, "relay link down");
}

/// The gateway's end of its relay link: login answers and kicks come down,
/// calls for the LAN's devices come in.
struct RelayLink {
    gw: Arc<Gateway>,
}

impl LinkRole for RelayLink {
    type Inbound = FromUpstream;

    fn on_message(&mut self, msg: FromUpstream) -> Reply {
        let gw = &self.gw;
        let effects = match msg {
            FromUpstream::LoginResult { number, outcome } => {
                if gw.uplink.resolve(&number, &outcome) {
                    return Reply::None;
                }
                // A replayed login: nobody waits for its answer.
                match &outcome {
                    LoginOutcome::Refused(reason) => gw.core().replay_refused(&number, reason),
                    LoginOutcome::Accepted { .. } => return Reply::None,
                }
            }
            FromUpstream::Kicked { number, reason } => gw.core().kicked(&number, reason),
            FromUpstream::JobCredential { call_id, outcome } => {
                gw.uplink.credential_answered(&call_id, outcome);
                return Reply::None;
            }
        };
        // Kicks only: they go to device outboxes without waiting.
        for effect in effects {
            if let Effect::Tell(device, msg) = effect {
                let _ = device.notify(msg);
            }
        }
        gw.update_status();
        Reply::None
    }

    fn on_stream(&mut self, stream: MuxStream) {
        call::spawn_from_relay(&self.gw, stream);
    }
}

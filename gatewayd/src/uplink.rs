//! The gateway's one link to a relay: dial the first relay of the list that
//! answers, log every device in again, carry logins and calls, and when the
//! link drops, start over with capped exponential backoff and jitter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::backoff::Backoff;
use common::link::actor::{self, LinkHandle, LinkRole, Reply};
use common::link::control::{self, Link};
use common::link::message::{
    Control, Hello, Login, LoginOutcome, LoginRefusal, PROTOCOL_VERSION, Role,
};
use common::link::mux::MuxStream;
use common::link::roles::FromUpstream;
use common::number::Number;
use tokio::sync::{Notify, oneshot, watch};
use tracing::Instrument;

use crate::call;
use crate::gateway_core::Effect;
use crate::server::Gateway;

/// Control messages waiting to go to the relay.
const OUTBOX: usize = 1024;
/// First pause after every relay of the list failed.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The relay link in use.
#[derive(Clone, Debug)]
pub struct RelayHandle {
    pub name: String,
    pub addr: String,
    /// The link's outbox and call-stream opener.
    pub link: LinkHandle,
}

/// Shared view of the relay link and the logins waiting for an answer.
#[derive(Debug)]
pub struct Uplink {
    current: watch::Sender<Option<RelayHandle>>,
    pending: Mutex<HashMap<Number, Vec<oneshot::Sender<LoginOutcome>>>>,
    /// Wakes a backoff pause when a reload changed the relay list.
    relays_changed: Notify,
}

impl Default for Uplink {
    fn default() -> Self {
        Uplink {
            current: watch::channel(None).0,
            pending: Mutex::new(HashMap::new()),
            relays_changed: Notify::new(),
        }
    }
}

impl Uplink {
    /// A reload changed the relay list: try the new list without waiting
    /// out the backoff.
    pub fn relays_changed(&self) {
        self.relays_changed.notify_one();
    }

    pub fn current(&self) -> Option<RelayHandle> {
        self.current.borrow().clone()
    }

    /// Forwards a device's login to the relay and waits for the answer,
    /// waiting up to `wait` for a relay link if there is none yet.
    pub async fn login(&self, login: Login, wait: Duration) -> LoginOutcome {
        let no_relay = LoginOutcome::Refused(LoginRefusal::NoRelay);
        let mut rx = self.current.subscribe();
        let Ok(Ok(handle)) = tokio::time::timeout(wait, async {
            rx.wait_for(|h| h.is_some())
                .await
                .map(|h| h.clone().unwrap_or_else(|| unreachable!("waited for Some")))
        })
        .await
        else {
            return no_relay;
        };
        let (tx, result) = oneshot::channel();
        self.pending_lock()
            .entry(login.number.clone())
            .or_default()
            .push(tx);
        let number = login.number.clone();
        let sent = handle.link.send(Control::Login(login)).await.is_ok();
        let outcome = if sent {
            tokio::time::timeout(wait, result)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            drop(result);
            None
        };
        outcome.unwrap_or_else(|| {
            // Nobody waits on this login any more: forget it, so that a relay
            // that never answers cannot make the waiting list grow.
            self.forget_abandoned(&number);
            no_relay
        })
    }

    /// Drops the waiters of `number` that gave up.
    fn forget_abandoned(&self, number: &Number) {
        let mut pending = self.pending_lock();
        if let Some(waiters) = pending.get_mut(number) {
            waiters.retain(|w| !w.is_closed());
            if waiters.is_empty() {
                pending.remove(number);
            }
        }
    }

    fn pending_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Number, Vec<oneshot::Sender<LoginOutcome>>>> {
        // Plain map: still consistent after a panic elsewhere.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delivers a relay's answer; returns false when nobody was waiting (a
    /// replayed login after a reconnect).
    fn resolve(&self, number: &Number, outcome: &LoginOutcome) -> bool {
        let waiters = self.pending_lock().remove(number).unwrap_or_default();
        let any = !waiters.is_empty();
        for w in waiters {
            let _ = w.send(outcome.clone());
        }
        any
    }
}

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
    let reason = actor::run(link, mailbox, &mut role, &settings).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use common::link::mux::{self, Side};
    use tokio_util::compat::TokioAsyncReadCompatExt;

    #[tokio::test]
    async fn a_login_the_relay_never_answers_is_not_kept_waiting() {
        let uplink = Uplink::default();
        let (io, _far) = tokio::io::duplex(1024);
        let (opener, _inbound) = mux::start(io.compat(), Side::Dialer, 8);
        let (link, mut relay_hears) = LinkHandle::new(opener, 4);
        uplink.current.send_replace(Some(RelayHandle {
            name: "relay-a".into(),
            addr: "relay-a:4710".into(),
            link,
        }));
        let login = Login {
            number: "1002".parse().expect("a number"),
            secret: "secret".into(),
            receive: None,
        };

        let outcome = uplink.login(login, Duration::from_millis(20)).await;

        assert!(
            matches!(outcome, LoginOutcome::Refused(LoginRefusal::NoRelay)),
            "{outcome:?}"
        );
        assert!(matches!(relay_hears.recv().await, Some(Control::Login(_))));
        assert!(uplink.pending_lock().is_empty(), "a waiter was kept");
    }
}

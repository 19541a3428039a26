//! Links between relays: dialing the configured peers (with backoff), the
//! mesh-key handshake, the snapshot, and the renewals that follow. In
//! directory mode the links are dialed on demand and carry calls only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::backoff::Backoff;
use common::credential::nonce;
use common::link::control::{self, Heartbeat, Link};
use common::link::message::{Control, Hello, PROTOCOL_VERSION, Role};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::call;
use crate::link_session::enforce_home_rule;
use crate::mesh::{PeerHandle, SNAPSHOT_CHUNK};
use crate::server::Relay;

/// Renewal messages waiting for one peer.
const OUTBOX: usize = 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Keeps a link to the peer at `addr` up until `stop` fires (the relay
/// closes, or a reload removed the peer).
pub async fn maintain(relay: Arc<Relay>, addr: String, stop: CancellationToken) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        let hello = Hello {
            version: PROTOCOL_VERSION,
            role: Role::Relay,
            name: relay.config.name.clone(),
        };
        let dialed = tokio::select! {
            _ = stop.cancelled() => return,
            l = control::dial(addr.as_str(), hello, &relay.config.link) => l,
        };
        let outcome = match dialed {
            Ok(link) => {
                let span = tracing::info_span!("peer", peer = %link.peer.name, %addr);
                async {
                    match authenticate_as_dialer(&relay, link).await {
                        Ok(link) => {
                            let name = link.peer.name.clone();
                            relay.peer_status.set(&addr, PeerState::Up(name.clone()));
                            backoff.reset();
                            run_peer(&relay, link, relay.config.name.clone(), addr.clone(), &stop)
                                .await;
                            Ok(name)
                        }
                        Err(e) => Err(e),
                    }
                }
                .instrument(span)
                .await
            }
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(name) => {
                // If the peer's own link to us won the duplicate rule, wait
                // while it is up instead of redialing in a loop.
                while relay.mesh.is_peer_up(&name) && !stop.is_cancelled() {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
                if !stop.is_cancelled() {
                    relay
                        .peer_status
                        .set(&addr, PeerState::Down("link closed".into()));
                }
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "peer unreachable");
                relay.metrics.error("peer_unreachable");
                if !stop.is_cancelled() {
                    relay.peer_status.set(&addr, PeerState::Down(e));
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_pause()) => {}
        }
    }
}

/// Directory mode: dials relay `name` at `addr` for a call, authenticates
/// (both sides prove fleet membership with the mesh key) and runs the link
/// as a tracked task; returns the way to open call streams on it.
pub async fn dial_on_demand(
    relay: &Arc<Relay>,
    name: &str,
    addr: &str,
) -> Result<common::link::mux::Opener, String> {
    let hello = Hello {
        version: PROTOCOL_VERSION,
        role: Role::Relay,
        name: relay.config.name.clone(),
    };
    let link = control::dial(addr, hello, &relay.config.link)
        .await
        .map_err(|e| e.to_string())?;
    if link.peer.name != name {
        link.opener.close();
        return Err(format!(
            "{addr} answers as relay {}, not {name}",
            link.peer.name
        ));
    }
    let link = authenticate_as_dialer(relay, link).await?;
    let opener = link.opener.clone();
    tracing::info!(peer = %name, %addr, "dialed relay for a call");
    let span = tracing::info_span!("peer", peer = %name, %addr);
    let relay2 = relay.clone();
    let addr = addr.to_owned();
    relay.dialed_links.spawn(
        async move {
            let stop = relay2.closing.clone();
            let me = relay2.config.name.clone();
            run_peer(&relay2, link, me, addr, &stop).await;
        }
        .instrument(span),
    );
    Ok(opener)
}

/// Dialer side of the mesh-key handshake.
async fn authenticate_as_dialer(relay: &Relay, mut link: Link) -> Result<Link, String> {
    let me = relay.config.name.clone();
    let peer = link.peer.name.clone();
    let key = &relay.config.mesh_key;
    let result = tokio::time::timeout(relay.config.link.handshake_timeout, async {
        let their_nonce = match link.reader.next().await {
            Ok(Some(Control::PeerChallenge { nonce })) => nonce,
            Ok(Some(Control::Refused { reason })) => return Err(format!("refused: {reason}")),
            Ok(other) => return Err(format!("expected a challenge, got {other:?}")),
            Err(e) => return Err(e.to_string()),
        };
        let ours = nonce();
        let proof = key.peer_proof(&their_nonce, &me, &peer);
        link.writer
            .send(&Control::PeerProof {
                proof,
                nonce: ours.clone(),
            })
            .await
            .map_err(|e| e.to_string())?;
        match link.reader.next().await {
            Ok(Some(Control::PeerProof { proof, .. }))
                if key.verify_peer(&ours, &peer, &me, &proof) =>
            {
                Ok(())
            }
            Ok(Some(Control::PeerProof { .. })) => {
                Err(format!("relay {peer} failed the mesh key check"))
            }
            Ok(Some(Control::Refused { reason })) => Err(format!("refused: {reason}")),
            Ok(other) => Err(format!("expected a proof, got {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .unwrap_or_else(|_| Err("mesh handshake timed out".into()));
    match result {
        Ok(()) => Ok(link),
        Err(e) => {
            link.opener.close();
            Err(e)
        }
    }
}

/// Acceptor side: challenge the dialing relay, then run the peer link.
pub async fn accept(relay: Arc<Relay>, mut link: Link) {
    let me = relay.config.name.clone();
    let peer = link.peer.name.clone();
    let key = &relay.config.mesh_key;
    let ours = nonce();
    let result: Result<(), String> =
        tokio::time::timeout(relay.config.link.handshake_timeout, async {
            link.writer
                .send(&Control::PeerChallenge {
                    nonce: ours.clone(),
                })
                .await
                .map_err(|e| e.to_string())?;
            match link.reader.next().await {
                Ok(Some(Control::PeerProof { proof, nonce }))
                    if key.verify_peer(&ours, &peer, &me, &proof) =>
                {
                    let answer = key.peer_proof(&nonce, &me, &peer);
                    link.writer
                        .send(&Control::PeerProof {
                            proof: answer,
                            nonce: Vec::new(),
                        })
                        .await
                        .map_err(|e| e.to_string())
                }
                Ok(Some(Control::PeerProof { .. })) => {
                    let _ = link
                        .writer
                        .send(&Control::Refused {
                            reason: "wrong mesh key".into(),
                        })
                        .await;
                    Err("wrong mesh key".into())
                }
                Ok(other) => Err(format!("expected a proof, got {other:?}")),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .unwrap_or_else(|_| Err("mesh handshake timed out".into()));
    if let Err(e) = result {
        tracing::warn!(peer = %peer, addr = %link.peer_addr, error = %e, "peer refused");
        relay.metrics.error("peer_refused");
        link.opener.close();
        return;
    }
    let addr = link.peer_addr.clone();
    let stop = relay.closing.clone();
    run_peer(&relay, link, peer, addr, &stop).await;
}

/// Runs an authenticated peer link: snapshot out, then renewals both ways,
/// heartbeats, and the calls the peer relays to us, until the link drops or
/// `stop` fires.
async fn run_peer(
    relay: &Arc<Relay>,
    mut link: Link,
    dialer: String,
    addr: String,
    stop: &CancellationToken,
) {
    let name = link.peer.name.clone();
    let id = relay.registry.new_link();
    let (outbox, mut outbox_rx) = mpsc::channel::<Control>(OUTBOX);
    let handle = PeerHandle {
        name: name.clone(),
        link: id,
        addr,
        dialer,
        opener: link.opener.clone(),
        outbox,
        since: Instant::now(),
        heard_ms: Default::default(),
    };
    let heard = handle.clone();
    match relay.mesh.register_peer(handle) {
        Ok(Some(old)) => {
            tracing::info!(peer = %name, "replacing a duplicate peer link");
            old.opener.close();
        }
        Ok(None) => {}
        Err(_) => {
            tracing::info!(peer = %name, "already linked to this peer; closing the duplicate");
            link.opener.close();
            return;
        }
    }
    // Registered before the snapshot is taken, so no renewal falls between.
    // Directory mode sends none: records travel through the directory.
    let sharing = relay.mesh.shares_with_peers();
    let snapshot = if sharing {
        relay.mesh.snapshot()
    } else {
        Vec::new()
    };
    let sent = snapshot.len();
    let mut chunks = snapshot.chunks(SNAPSHOT_CHUNK).peekable();
    let mut failed = None;
    if sharing && chunks.peek().is_none() {
        failed = link
            .writer
            .send(&Control::Snapshot {
                announcements: Vec::new(),
                done: true,
            })
            .await
            .err();
    }
    while let Some(chunk) = chunks.next() {
        let msg = Control::Snapshot {
            announcements: chunk.to_vec(),
            done: chunks.peek().is_none(),
        };
        if let Err(e) = link.writer.send(&msg).await {
            failed = Some(e);
            break;
        }
        relay
            .metrics
            .sync_messages
            .inc(&[("direction", "sent"), ("kind", "snapshot")]);
    }
    // Revoked generations travel with the snapshot (in directory mode too:
    // they are few, and merging them is idempotent).
    let revoked = relay.revocations.all();
    if failed.is_none() && !revoked.is_empty() {
        failed = link.writer.send(&Control::Revoke(revoked)).await.err();
    }
    if sharing {
        tracing::info!(peer = %name, sent, "peer link up; snapshot sent");
    } else {
        tracing::info!(peer = %name, "peer link up (directory mode: calls only)");
    }
    let mut heartbeat = Heartbeat::new(relay.config.link.heartbeat);
    let reason = if let Some(e) = failed {
        format!("cannot send the snapshot: {e}")
    } else {
        loop {
            tokio::select! {
                // Closing first, then control traffic (renewals, heartbeats),
                // then outgoing renewals, then new calls.
                biased;
                _ = stop.cancelled() => break "relay stopping, or the peer was removed".to_owned(),
                _ = link.opener.closed() => break "link closed".to_owned(),
                msg = link.reader.next() => {
                    heartbeat.heard();
                    heard.heard();
                    if let Ok(Some(m)) = &msg {
                        count_sync(relay, "received", m);
                    }
                    match msg {
                        Ok(Some(Control::Ping { seq })) => {
                            // A pong says that everything received before the
                            // ping is applied and stored.
                            relay.mesh.store().settled().await;
                            if let Err(e) = link.writer.send(&Control::Pong { seq }).await {
                                break format!("cannot write: {e}");
                            }
                        }
                        Ok(Some(Control::Snapshot { .. } | Control::Announce(_) | Control::Withdraw(_))) if !sharing => {
                            tracing::debug!("directory mode: mesh sync from a peer ignored");
                        }
                        Ok(Some(Control::Snapshot { announcements, done })) => {
                            let n = announcements.len();
                            let stored = relay.mesh.apply_announcements(&name, announcements);
                            enforce_home_rule(relay, &stored);
                            if done {
                                tracing::info!(peer = %name, last_chunk = n, known = relay.mesh.known(), "snapshot received");
                            }
                        }
                        Ok(Some(Control::Announce(anns))) => {
                            let stored = relay.mesh.apply_announcements(&name, anns);
                            enforce_home_rule(relay, &stored);
                        }
                        Ok(Some(Control::Withdraw(numbers))) => relay.mesh.apply_withdrawals(&name, &numbers),
                        Ok(Some(Control::Revoke(revs))) => {
                            crate::revocation::apply(relay, revs, Some(&name));
                        }
                        Ok(Some(Control::Pong { .. })) => {}
                        Ok(Some(other)) => tracing::debug!(?other, "ignored control message"),
                        Ok(None) => break "peer closed the control stream".to_owned(),
                        Err(e) => break format!("bad control frame: {e}"),
                    }
                }
                Some(msg) = outbox_rx.recv() => {
                    if let Err(e) = link.writer.send(&msg).await {
                        break format!("cannot write: {e}");
                    }
                    count_sync(relay, "sent", &msg);
                }
                ping = heartbeat.beat() => match ping {
                    Some(ping) => {
                        if let Err(e) = link.writer.send(&ping).await {
                            break format!("cannot write: {e}");
                        }
                    }
                    None => break format!("peer silent for {:?}", heartbeat.deadline()),
                },
                Some(stream) = link.inbound.recv() => call::spawn(relay, call::From::Peer, stream),
            }
        }
    };
    link.opener.close();
    relay.mesh.peer_down(&name, id);
    tracing::info!(peer = %name, %reason, "peer link down");
}

/// Counts a directory sync message for the metrics.
fn count_sync(relay: &Relay, direction: &str, msg: &Control) {
    let kind = match msg {
        Control::Snapshot { .. } => "snapshot",
        Control::Announce(_) => "announce",
        Control::Withdraw(_) => "withdraw",
        _ => return,
    };
    relay
        .metrics
        .sync_messages
        .inc(&[("direction", direction), ("kind", kind)]);
}

/// What `relayd peers` shows for a configured peer address.
#[derive(Clone, Debug)]
pub enum PeerState {
    Connecting,
    Up(String),
    Down(String),
}

/// Status of the configured peer addresses.
#[derive(Debug, Default)]
pub struct PeerStatus {
    inner: std::sync::Mutex<std::collections::BTreeMap<String, (PeerState, Instant)>>,
}

impl PeerStatus {
    pub fn set(&self, addr: &str, state: PeerState) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(addr.to_owned(), (state, Instant::now()));
    }

    /// Forgets an address a reload removed.
    pub fn remove(&self, addr: &str) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(addr);
    }

    pub fn all(&self) -> Vec<(String, PeerState, Instant)> {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .map(|(a, (s, t))| (a.clone(), s.clone(), *t))
            .collect()
    }
}

//! Links between relays: dialing the configured peers (with backoff), the
//! mesh-key handshake, the snapshot, and the renewals that follow. In
//! directory mode the links are dialed on demand and carry calls only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::backoff::Backoff;
use common::credential::nonce;
use common::link::actor::{self, LinkEnd, LinkHandle, LinkRole, Reply};
use common::link::control::{self, Link, LinkError};
use common::link::frame::FrameError;
use common::link::message::{Control, Hello, PROTOCOL_VERSION, Role};
use common::link::mux::MuxStream;
use common::link::roles::FromPeer;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::mesh::{PeerHandle, PeerState};
use crate::relay::Relay;
use crate::relay_core::peering::{Instance, NameClash, Rejection};
use crate::relay_core::route::Caller;

/// Takes a call stream a link delivers (`call::spawn`). Passed in rather
/// than imported: routing a call may dial a peer, so `call` depends on this
/// module, not the other way round.
pub type CallSpawner = fn(&Arc<Relay>, Caller, MuxStream);

/// Why a link to a peer relay was not made.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("{addr} answers as relay {answered}, not {expected}")]
    WrongRelay {
        addr: String,
        answered: String,
        expected: String,
    },
    /// The far end refused the link, for this reason.
    #[error("refused: {0}")]
    Refused(String),
    /// This relay refused the link: the peer's name is ours, or another
    /// relay's that is linked here.
    #[error(transparent)]
    NameClash(#[from] NameClash),
    #[error("expected a {expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
    #[error("relay {0} failed the mesh key check")]
    FailedKeyCheck(String),
    #[error("wrong mesh key")]
    WrongKey,
    #[error("mesh handshake timed out")]
    Timeout,
}

/// Renewal messages waiting for one peer.
const OUTBOX: usize = 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Keeps a link to the peer at `addr` up until `stop` fires (the relay
/// closes, or a reload removed the peer).
pub async fn maintain(
    relay: Arc<Relay>,
    addr: String,
    stop: CancellationToken,
    calls: CallSpawner,
) {
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
                    let (mut link, instance) = authenticate_as_dialer(&relay, link).await?;
                    let name = link.peer.name.clone();
                    relay.peer_status.set(&addr, PeerState::Up(name.clone()));
                    backoff.reset();
                    let me = relay.config.name.clone();
                    run_peer(&relay, &mut link, instance, me, addr.clone(), &stop, calls).await?;
                    Ok::<_, PeerError>(name)
                }
                .instrument(span)
                .await
            }
            Err(e) => Err(PeerError::from(e)),
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
                if !log_refusal(&relay, &e, "to", &addr) {
                    tracing::warn!(%addr, error = %e, "peer unreachable");
                    relay.metrics.error("peer_unreachable");
                }
                if !stop.is_cancelled() {
                    relay.peer_status.set(&addr, PeerState::Down(e.to_string()));
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
    calls: CallSpawner,
) -> Result<common::link::mux::Opener, PeerError> {
    let hello = Hello {
        version: PROTOCOL_VERSION,
        role: Role::Relay,
        name: relay.config.name.clone(),
    };
    let link = control::dial(addr, hello, &relay.config.link).await?;
    if link.peer.name != name {
        link.opener.close();
        return Err(PeerError::WrongRelay {
            addr: addr.to_owned(),
            answered: link.peer.name.clone(),
            expected: name.to_owned(),
        });
    }
    let (mut link, instance) = authenticate_as_dialer(relay, link).await?;
    let opener = link.opener.clone();
    tracing::info!(peer = %name, %addr, "dialed relay for a call");
    let span = tracing::info_span!("peer", peer = %name, %addr);
    let relay2 = relay.clone();
    let addr = addr.to_owned();
    relay.dialed_links.spawn(
        async move {
            let stop = relay2.closing.clone();
            let me = relay2.config.name.clone();
            if let Err(e) =
                run_peer(&relay2, &mut link, instance, me, addr.clone(), &stop, calls).await
            {
                log_refusal(&relay2, &e, "to", &addr);
            }
        }
        .instrument(span),
    );
    Ok(opener)
}

/// Dialer side of the mesh-key handshake; returns the link and the peer's
/// instance id.
async fn authenticate_as_dialer(
    relay: &Relay,
    mut link: Link,
) -> Result<(Link, Instance), PeerError> {
    let me = relay.config.name.clone();
    let peer = link.peer.name.clone();
    let key = &relay.config.mesh_key;
    let result = tokio::time::timeout(relay.config.link.handshake_timeout, async {
        let (their_nonce, instance) = match link.reader.next().await? {
            Some(Control::PeerChallenge { nonce, instance }) => (nonce, instance),
            Some(Control::Refused { reason }) => return Err(PeerError::Refused(reason)),
            other => return Err(unexpected("challenge", other)),
        };
        // The name rule before our proof, so a refusal goes in its place.
        if let Err(clash) = relay.mesh.check_name(&peer, instance) {
            return Err(refuse(&mut link, clash).await);
        }
        let ours = nonce();
        let proof = key.peer_proof(&their_nonce, &me, &peer);
        link.writer
            .send(&Control::PeerProof {
                proof,
                nonce: ours.clone(),
                instance: relay.mesh.instance(),
            })
            .await?;
        match link.reader.next().await? {
            Some(Control::PeerProof { proof, .. })
                if key.verify_peer(&ours, &peer, &me, &proof) =>
            {
                Ok(instance)
            }
            Some(Control::PeerProof { .. }) => Err(PeerError::FailedKeyCheck(peer.clone())),
            Some(Control::Refused { reason }) => Err(PeerError::Refused(reason)),
            other => Err(unexpected("proof", other)),
        }
    })
    .await
    .unwrap_or(Err(PeerError::Timeout));
    match result {
        Ok(instance) => Ok((link, instance)),
        Err(e) => {
            link.opener.close();
            Err(e)
        }
    }
}

/// Tells the far end why its link is refused (best effort: the link is
/// closed next either way); returns the error to log.
async fn refuse(link: &mut Link, clash: NameClash) -> PeerError {
    let refusal = Control::Refused {
        reason: clash.reason(),
    };
    let _ = link.writer.send(&refusal).await;
    PeerError::NameClash(clash)
}

/// Logs a refusal of a peer link, ours or the far end's, in words an
/// operator can act on; `direction` is "to" for a link this relay dialed,
/// "from" for one it accepted. Returns false for any other error (the
/// caller logs it its own way).
fn log_refusal(relay: &Relay, e: &PeerError, direction: &str, addr: &str) -> bool {
    match e {
        PeerError::NameClash(clash) => {
            tracing::warn!("refusing peer link {direction} {addr}: {clash}");
            relay.metrics.error("peer_name_clash");
        }
        PeerError::Refused(reason) | PeerError::Link(LinkError::Refused { reason, .. }) => {
            tracing::warn!("peer {addr} refused this link: {reason}");
            relay.metrics.error("peer_refused");
        }
        _ => return false,
    }
    true
}

/// A handshake message that is not the one expected (its kind only: a
/// peer's message is not worth quoting whole in a log line).
fn unexpected(expected: &'static str, got: Option<Control>) -> PeerError {
    let got = match got {
        None => "the end of the control stream".to_owned(),
        Some(msg) => format!("{msg:?}").chars().take(80).collect(),
    };
    PeerError::Unexpected { expected, got }
}

/// Acceptor side: challenge the dialing relay, then run the peer link.
pub async fn accept(relay: Arc<Relay>, link: &mut Link, calls: CallSpawner) {
    let me = relay.config.name.clone();
    let peer = link.peer.name.clone();
    let key = &relay.config.mesh_key;
    let ours = nonce();
    let result: Result<Instance, PeerError> =
        tokio::time::timeout(relay.config.link.handshake_timeout, async {
            link.writer
                .send(&Control::PeerChallenge {
                    nonce: ours.clone(),
                    instance: relay.mesh.instance(),
                })
                .await?;
            match link.reader.next().await? {
                Some(Control::PeerProof {
                    proof,
                    nonce,
                    instance,
                }) if key.verify_peer(&ours, &peer, &me, &proof) => {
                    // The name rule once the peer is proven one of the
                    // fleet; a refusal goes in place of our proof.
                    if let Err(clash) = relay.mesh.check_name(&peer, instance) {
                        return Err(refuse(link, clash).await);
                    }
                    let answer = key.peer_proof(&nonce, &me, &peer);
                    link.writer
                        .send(&Control::PeerProof {
                            proof: answer,
                            nonce: Vec::new(),
                            instance: relay.mesh.instance(),
                        })
                        .await?;
                    Ok(instance)
                }
                Some(Control::PeerProof { .. }) => {
                    let refusal = Control::Refused {
                        reason: PeerError::WrongKey.to_string(),
                    };
                    let _ = link.writer.send(&refusal).await;
                    Err(PeerError::WrongKey)
                }
                Some(Control::Refused { reason }) => Err(PeerError::Refused(reason)),
                other => Err(unexpected("proof", other)),
            }
        })
        .await
        .unwrap_or(Err(PeerError::Timeout));
    let addr = link.peer_addr.clone();
    let instance = match result {
        Ok(instance) => instance,
        Err(e) => {
            if !log_refusal(&relay, &e, "from", &addr) {
                tracing::warn!(peer = %peer, %addr, error = %e, "peer refused");
                relay.metrics.error("peer_refused");
            }
            link.opener.close();
            return;
        }
    };
    let stop = relay.closing.clone();
    if let Err(e) = run_peer(&relay, link, instance, peer, addr.clone(), &stop, calls).await {
        log_refusal(&relay, &e, "from", &addr);
    }
}

/// Runs an authenticated peer link: snapshot out, then renewals both ways,
/// heartbeats, and the calls the peer relays to us, until the link drops or
/// `stop` fires. An error is a refusal (ours or the far end's) for the
/// caller to log: the handshake checked the name rule, but another relay of
/// the same name may have registered since.
async fn run_peer(
    relay: &Arc<Relay>,
    link: &mut Link,
    instance: Instance,
    dialer: String,
    addr: String,
    stop: &CancellationToken,
    calls: CallSpawner,
) -> Result<(), PeerError> {
    let name = link.peer.name.clone();
    let id = relay.core().new_link_id();
    let (link_handle, mailbox) = LinkHandle::new(link.opener.clone(), OUTBOX);
    let handle = PeerHandle {
        name: name.clone(),
        instance,
        link: id,
        addr,
        dialer,
        handle: link_handle,
        since: Instant::now(),
        heard_ms: Default::default(),
    };
    let heard = handle.clone();
    match relay.mesh.register_peer(handle) {
        Ok(Some(old)) => {
            tracing::info!(peer = %name, "replacing a duplicate peer link");
            old.handle.close();
        }
        Ok(None) => {}
        Err(Rejection::Duplicate) => {
            tracing::info!(peer = %name, "already linked to this peer; closing the duplicate");
            link.opener.close();
            return Ok(());
        }
        Err(Rejection::NameClash(clash)) => {
            let e = refuse(link, clash).await;
            link.opener.close();
            return Err(e);
        }
    }
    let sharing = relay.mesh.shares_with_peers();
    let end = match send_snapshot(relay, link, sharing).await {
        Err(e) => Err(format!("cannot send the snapshot: {e}")),
        Ok(()) => {
            let settings = actor::Settings {
                heartbeat: relay.config.link.heartbeat,
                far_end: "peer",
                stop: stop.clone(),
                stop_reason: "relay stopping, or the peer was removed",
            };
            let mut role = PeerLink {
                relay: relay.clone(),
                name: name.clone(),
                sharing,
                heard,
                calls,
            };
            Ok(actor::run(link, mailbox, &mut role, &settings).await)
        }
    };
    relay.mesh.peer_down(&name, id);
    let reason = match &end {
        Ok(end) => end.to_string(),
        Err(e) => e.clone(),
    };
    tracing::info!(peer = %name, %reason, "peer link down");
    match end {
        Ok(LinkEnd::Refused { reason, .. }) => Err(PeerError::Refused(reason)),
        _ => Ok(()),
    }
}

/// What a new peer gets first: the snapshot of the directory (mesh mode),
/// then every revoked generation (in directory mode too: they are few, and
/// merging them is idempotent). The peer is registered before the snapshot
/// is taken, so no renewal falls between the two.
async fn send_snapshot(relay: &Relay, link: &mut Link, sharing: bool) -> Result<(), FrameError> {
    let name = &link.peer.name;
    if sharing {
        let (frames, sent) = relay.mesh.snapshot_frames()?;
        for frame in &frames {
            link.writer.send_encoded(frame).await?;
            relay
                .metrics
                .sync_messages
                .inc(&[("direction", "sent"), ("kind", "snapshot")]);
        }
        drop(frames);
        let revoked = relay.core().revocations();
        if !revoked.is_empty() {
            link.writer.send(&Control::Revoke(revoked)).await?;
        }
        tracing::info!(peer = %name, sent, "peer link up; snapshot sent");
    } else {
        let revoked = relay.core().revocations();
        if !revoked.is_empty() {
            link.writer.send(&Control::Revoke(revoked)).await?;
        }
        tracing::info!(peer = %name, "peer link up (directory mode: calls only)");
    }
    Ok(())
}

/// The relay's end of a peer link once the mesh key is proven.
struct PeerLink {
    relay: Arc<Relay>,
    name: String,
    /// Mesh mode: records travel on this link (directory mode: calls only).
    sharing: bool,
    /// The peer's entry in the mesh, for `relayd peers`' "heard".
    heard: PeerHandle,
    calls: CallSpawner,
}

impl LinkRole for PeerLink {
    type Inbound = FromPeer;

    fn on_message(&mut self, msg: FromPeer) -> Reply {
        let relay = &self.relay;
        count_sync(relay, "received", &msg);
        match msg {
            FromPeer::Snapshot { .. } | FromPeer::Announce(_) | FromPeer::Withdraw(_)
                if !self.sharing =>
            {
                tracing::debug!("directory mode: mesh sync from a peer ignored");
            }
            FromPeer::Snapshot {
                announcements,
                done,
            } => {
                let n = announcements.len();
                let stored = relay.mesh.apply_announcements(&self.name, announcements);
                let effects = relay.core().records_stored(&stored);
                relay.apply(effects);
                if done {
                    tracing::info!(peer = %self.name, last_chunk = n, known = relay.mesh.known(), "snapshot received");
                }
            }
            FromPeer::Announce(anns) => {
                let stored = relay.mesh.apply_announcements(&self.name, anns);
                let effects = relay.core().records_stored(&stored);
                relay.apply(effects);
            }
            FromPeer::Withdraw(numbers) => relay.mesh.apply_withdrawals(&self.name, &numbers),
            FromPeer::Revoke(revs) => {
                relay.revoke(revs, Some(&self.name));
            }
        }
        Reply::None
    }

    /// A pong says that everything received before the ping is applied and
    /// stored: it waits for the store's writer, without holding up the link.
    fn on_ping(&mut self, seq: u64) -> Reply {
        let store = self.relay.mesh.store().clone();
        Reply::Later(Box::pin(async move {
            store.settled().await;
            Some(Control::Pong { seq })
        }))
    }

    fn on_heard(&mut self) {
        self.heard.heard();
    }

    fn on_sent(&mut self, msg: &Control) {
        let kind = match msg {
            Control::Snapshot { .. } => "snapshot",
            Control::Announce(_) => "announce",
            Control::Withdraw(_) => "withdraw",
            _ => return,
        };
        self.relay
            .metrics
            .sync_messages
            .inc(&[("direction", "sent"), ("kind", kind)]);
    }

    fn on_stream(&mut self, stream: MuxStream) {
        (self.calls)(&self.relay, Caller::Peer, stream);
    }
}

/// Counts a directory sync message from a peer for the metrics.
fn count_sync(relay: &Relay, direction: &str, msg: &FromPeer) {
    let kind = match msg {
        FromPeer::Snapshot { .. } => "snapshot",
        FromPeer::Announce(_) => "announce",
        FromPeer::Withdraw(_) => "withdraw",
        FromPeer::Revoke(_) => return,
    };
    relay
        .metrics
        .sync_messages
        .inc(&[("direction", direction), ("kind", kind)]);
}

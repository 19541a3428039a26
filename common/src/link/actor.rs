//! The link actor: one task per link owns its control stream, its
//! heartbeats, its outbox and the call streams the peer opens, and hands
//! what its role must decide to a small role handler ([`LinkRole`]). Every
//! link of every program runs this one loop: relayd's device, gateway and
//! peer links, gatewayd's uplink and device links, and a device's session.
//!
//! Rules the loop keeps:
//! - Its `select!` is `biased;`, in this order: the owner's stop, the link
//!   closing, control messages from the peer (so pings are answered and the
//!   peer is heard even while calls pour in), replies the role finished,
//!   the outbox, the heartbeat, and new call streams last.
//! - Nothing inside an arm waits on another party. A role that needs time
//!   to answer (a login forwarded to the relay, a write to disk) returns a
//!   [`Reply::Later`]; the actor keeps serving the link meanwhile and sends
//!   the answers in the order of the requests. Writes to the control stream
//!   are the actor's own I/O, bounded by the heartbeat deadline: a peer that
//!   stops reading is as dead as one that stops talking.
//! - The outbox is bounded, and there is one overflow policy: a sender that
//!   can wait ([`LinkHandle::send`]) waits for room; a message that cannot
//!   wait ([`LinkHandle::notify`]: a kick, a renewal, a revocation) and finds
//!   the outbox full closes the link. A control message is never dropped
//!   while the link stays up: the peer would be wrong until it reconnected,
//!   whereas a closed link makes it reconnect and resync now.
//! - Dropping the actor's future closes the link.

use std::fmt;
use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use tokio_util::sync::CancellationToken;

use super::control::{Heartbeat, Link};
use super::frame::FrameError;
use super::message::Control;
use super::mux::{MuxStream, Opener};
pub use super::outbox::Mailbox;
use super::outbox::{self, TrySendError};

/// The way other tasks reach a link: its outbox and its call-stream opener.
/// Cheap to clone; registries keep one per logged-in number or peer.
#[derive(Clone, Debug)]
pub struct LinkHandle {
    outbox: outbox::Sender,
    opener: Opener,
}

/// The link is gone (or was closed because its outbox overflowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the link is closed")]
pub struct LinkGone;

impl LinkHandle {
    /// A handle on the link behind `opener`, and the mailbox its actor
    /// reads; the outbox holds `capacity` messages.
    pub fn new(opener: Opener, capacity: usize) -> (LinkHandle, Mailbox) {
        let (outbox, mailbox) = outbox::bounded(capacity);
        (LinkHandle { outbox, opener }, mailbox)
    }

    /// Queues `msg`, waiting for room in the outbox (backpressure for
    /// senders that can wait: forwarded logins and logouts).
    pub async fn send(&self, msg: Control) -> Result<(), LinkGone> {
        self.outbox.send(Box::new(msg)).await.map_err(|_| LinkGone)
    }

    /// Queues `msg` without waiting. An outbox that is full closes the link
    /// (see the module's overflow policy) and the message goes nowhere.
    pub fn notify(&self, msg: Control) -> Result<(), LinkGone> {
        match self.outbox.try_send(Box::new(msg)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(msg)) => {
                tracing::warn!(
                    message = kind(&msg),
                    "link too slow for its control messages; closing it so the far end resyncs"
                );
                self.opener.close();
                Err(LinkGone)
            }
            Err(TrySendError::Closed) => Err(LinkGone),
        }
    }

    /// Opens call streams on the link.
    pub fn opener(&self) -> &Opener {
        &self.opener
    }

    pub fn close(&self) {
        self.opener.close();
    }

    pub fn is_closed(&self) -> bool {
        self.opener.is_closed()
    }
}

/// What a role does about one message from the peer.
pub enum Reply {
    /// Nothing to send back.
    None,
    /// Send this now.
    Now(Control),
    /// Send what this resolves to, once it does, in request order; the link
    /// is served meanwhile.
    Later(BoxFuture<'static, Option<Control>>),
    /// Close the link, for this reason.
    Close(String),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::None => f.write_str("None"),
            Reply::Now(c) => f.debug_tuple("Now").field(c).finish(),
            Reply::Later(_) => f.write_str("Later(..)"),
            Reply::Close(r) => f.debug_tuple("Close").field(r).finish(),
        }
    }
}

/// What one kind of link decides; the actor does the rest.
pub trait LinkRole: Send {
    /// The control messages this role takes from its peer.
    type Inbound: TryFrom<Control, Error = Control> + Send;

    /// One message from the peer.
    fn on_message(&mut self, msg: Self::Inbound) -> Reply;

    /// A call stream the peer opened.
    fn on_stream(&mut self, stream: MuxStream);

    /// The peer's ping. The default answers at once.
    fn on_ping(&mut self, seq: u64) -> Reply {
        Reply::Now(Control::Pong { seq })
    }

    /// Anything arrived from the peer (before it is handled).
    fn on_heard(&mut self) {}

    /// A message from the outbox went out.
    fn on_sent(&mut self, _msg: &Control) {}
}

/// How one link is run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often to ping; silence for three periods ends the link.
    pub heartbeat: Duration,
    /// What the far end is called in the reasons a link ends: "peer",
    /// "relay", "device", "gateway".
    pub far_end: &'static str,
    /// The owner's stop (the daemon closing, a peer removed by a reload).
    pub stop: CancellationToken,
    /// Why the link ends when `stop` fires: "relay stopping".
    pub stop_reason: &'static str,
}

/// Why a link ended. Displayed in the "link down" log lines.
#[derive(Debug)]
pub enum LinkEnd {
    /// The owner stopped it.
    Stopped(&'static str),
    /// Closed from this side (by another task, or an outbox overflow) or
    /// the connection under it broke.
    Closed,
    /// The peer closed its control stream.
    PeerClosed { far_end: &'static str },
    /// Nothing heard for the heartbeat deadline.
    Silent {
        far_end: &'static str,
        after: Duration,
    },
    /// The peer sent something that is not a control message.
    BadFrame(FrameError),
    /// Writing to the control stream failed or took too long.
    WriteFailed(String),
    /// The role closed it.
    Role(String),
    /// The peer refused the link after the handshake (a relay that found
    /// the name of this end already in use there), with its reason.
    Refused {
        far_end: &'static str,
        reason: String,
    },
}

impl fmt::Display for LinkEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkEnd::Stopped(why) => f.write_str(why),
            LinkEnd::Closed => f.write_str("link closed"),
            LinkEnd::PeerClosed { far_end } => write!(f, "{far_end} closed the control stream"),
            LinkEnd::Silent { far_end, after } => write!(f, "{far_end} silent for {after:?}"),
            LinkEnd::BadFrame(e) => write!(f, "bad control frame: {e}"),
            LinkEnd::WriteFailed(e) => write!(f, "cannot write: {e}"),
            LinkEnd::Role(why) => f.write_str(why),
            LinkEnd::Refused { far_end, reason } => {
                write!(f, "the {far_end} refused this link: {reason}")
            }
        }
    }
}

/// Closes the link when the actor's future ends or is dropped.
struct CloseOnDrop(Opener);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Runs `link` for `role` until it ends; returns why. The link is closed
/// when this returns (or when its future is dropped).
///
/// Every idle link keeps this future, so the link is borrowed, not moved
/// in: its owner's task holds it once. (An `async fn` stores what it is
/// passed twice, as passed and again as the locals it is moved into; for
/// a `Link` that was 224 bytes more per link.)
pub async fn run<R: LinkRole>(
    link: &mut Link,
    mut outbox: Mailbox,
    role: &mut R,
    settings: &Settings,
) -> LinkEnd {
    let Link {
        opener,
        inbound,
        reader,
        writer,
        ..
    } = link;
    let _close = CloseOnDrop(opener.clone());
    let mut heartbeat = Heartbeat::new(settings.heartbeat);
    let deadline = heartbeat.deadline();
    let mut later = Answers::default();
    let far_end = settings.far_end;
    loop {
        // Each arm decides without waiting and hands back what to send;
        // the one write below is the only other wait. So no message is held
        // inline across a wait, which kept room for several in every idle
        // link's future.
        let next = tokio::select! {
            biased;
            // 1. The owner stops the link (shutdown, a peer removed).
            _ = settings.stop.cancelled() => break LinkEnd::Stopped(settings.stop_reason),
            // 2. The link closed under us, or another task closed it.
            _ = opener.closed() => break LinkEnd::Closed,
            // 3. Control traffic from the peer: before our own, so pings are
            //    answered and logins handled even while calls pour in.
            msg = reader.next() => {
                heartbeat.heard();
                role.on_heard();
                let reply = match msg {
                    Ok(Some(Control::Ping { seq })) => role.on_ping(seq),
                    Ok(Some(Control::Pong { .. })) => Reply::None,
                    Ok(Some(Control::Refused { reason })) => {
                        break LinkEnd::Refused { far_end, reason };
                    }
                    Ok(Some(msg)) => match R::Inbound::try_from(msg) {
                        Ok(msg) => role.on_message(msg),
                        Err(other) => {
                            tracing::debug!(?other, "ignored control message");
                            Reply::None
                        }
                    },
                    Ok(None) => break LinkEnd::PeerClosed { far_end },
                    Err(e) => break LinkEnd::BadFrame(e),
                };
                match reply {
                    Reply::None => Next::Nothing,
                    // Behind any answer still being worked out, to keep order.
                    Reply::Now(msg) if !later.is_empty() => {
                        later.push(Box::pin(async move { Some(msg) }));
                        Next::Nothing
                    }
                    Reply::Now(msg) => Next::Answer(Box::new(msg)),
                    Reply::Later(answer) => {
                        later.push(answer);
                        Next::Nothing
                    }
                    Reply::Close(why) => break LinkEnd::Role(why),
                }
            }
            // 4. Answers the role finished.
            Some(answer) = poll_fn(|cx| later.poll_next(cx)), if !later.is_empty() => match answer {
                Some(msg) => Next::Answer(Box::new(msg)),
                None => Next::Nothing,
            },
            // 5. What other tasks queued for the peer.
            Some(msg) = outbox.recv_boxed() => Next::Queued(msg),
            // 6. Our heartbeat, or the peer's silence.
            ping = heartbeat.beat() => match ping {
                Some(ping) => Next::Answer(Box::new(ping)),
                None => break LinkEnd::Silent { far_end, after: deadline },
            },
            // 7. New calls last: they never starve the control traffic.
            Some(stream) = inbound.recv() => {
                role.on_stream(stream);
                Next::Nothing
            }
        };
        let (msg, queued) = match next {
            Next::Nothing => continue,
            Next::Answer(msg) => (msg, false),
            Next::Queued(msg) => (msg, true),
        };
        // One write, bounded by the heartbeat deadline.
        match tokio::time::timeout(deadline, writer.send(&msg)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => break LinkEnd::WriteFailed(e.to_string()),
            Err(_) => {
                break LinkEnd::WriteFailed(format!("the {far_end} took nothing for {deadline:?}"));
            }
        }
        if queued {
            role.on_sent(&msg);
        }
    }
}

/// Answers the role is still working out ([`Reply::Later`]), in request
/// order. The queue exists only while an answer waits: `FuturesOrdered`
/// allocates its ready queue when it is made, 150 bytes that every idle
/// link held, and is 72 bytes itself.
#[derive(Default)]
struct Answers(Option<Box<FuturesOrdered<BoxFuture<'static, Option<Control>>>>>);

impl Answers {
    fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|queue| queue.is_empty())
    }

    fn push(&mut self, answer: BoxFuture<'static, Option<Control>>) {
        self.0.get_or_insert_default().push_back(answer);
    }

    /// The next answer, once those before it are out; `None` when none
    /// waits. Polled in place, so it takes no room in the actor's future.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Option<Control>>> {
        let Some(queue) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        let answer = std::task::ready!(queue.poll_next_unpin(cx));
        if queue.is_empty() {
            self.0 = None;
        }
        Poll::Ready(answer)
    }
}

/// What one turn of the actor's loop sends.
enum Next {
    Nothing,
    /// A reply or a ping of the actor's own.
    Answer(Box<Control>),
    /// A message from the outbox (the role hears when it went).
    Queued(Box<Control>),
}

/// A message's kind, for logs (never its contents: a login holds a secret).
fn kind(msg: &Control) -> &'static str {
    match msg {
        Control::Hello(_) => "hello",
        Control::Refused { .. } => "refused",
        Control::Login(_) => "login",
        Control::LoginResult { .. } => "login_result",
        Control::Logout { .. } => "logout",
        Control::Kicked { .. } => "kicked",
        Control::Ping { .. } => "ping",
        Control::Pong { .. } => "pong",
        Control::PeerChallenge { .. } => "peer_challenge",
        Control::PeerProof { .. } => "peer_proof",
        Control::Snapshot { .. } => "snapshot",
        Control::Announce(_) => "announce",
        Control::Withdraw(_) => "withdraw",
        Control::Revoke(_) => "revoke",
        Control::IssueJobCredential { .. } => "issue_job_credential",
        Control::JobCredential { .. } => "job_credential",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::control::loopback_pair;
    use crate::link::roles::FromDevice;

    #[tokio::test]
    async fn answers_come_in_request_order_and_their_queue_goes_once_drained() {
        let mut answers = Answers::default();
        assert!(answers.is_empty());
        assert!(answers.0.is_none());
        let (slow_tx, slow) = tokio::sync::oneshot::channel::<()>();
        answers.push(Box::pin(async move {
            slow.await.unwrap();
            Some(Control::Pong { seq: 1 })
        }));
        answers.push(Box::pin(async { Some(Control::Pong { seq: 2 }) }));
        let mut next = std::pin::pin!(poll_fn(|cx| answers.poll_next(cx)));
        assert!(
            futures::poll!(next.as_mut()).is_pending(),
            "the first waits"
        );
        slow_tx.send(()).unwrap();
        assert_eq!(next.await, Some(Some(Control::Pong { seq: 1 })));
        assert!(!answers.is_empty());
        let second = poll_fn(|cx| answers.poll_next(cx)).await;
        assert_eq!(second, Some(Some(Control::Pong { seq: 2 })));
        assert!(answers.is_empty());
        assert!(answers.0.is_none(), "a drained queue is freed");
        assert_eq!(poll_fn(|cx| answers.poll_next(cx)).await, None);
    }

    /// Answers logins only after a gate opens; records logouts.
    struct SlowLogins {
        gate: Option<tokio::sync::oneshot::Receiver<()>>,
        logouts: usize,
    }

    impl LinkRole for SlowLogins {
        type Inbound = FromDevice;

        fn on_message(&mut self, msg: FromDevice) -> Reply {
            match msg {
                FromDevice::Login(login) => {
                    let gate = self.gate.take();
                    Reply::Later(Box::pin(async move {
                        if let Some(gate) = gate {
                            let _ = gate.await;
                        }
                        Some(Control::Kicked {
                            number: login.number,
                            reason: "answered".into(),
                        })
                    }))
                }
                FromDevice::Logout { .. } => {
                    self.logouts += 1;
                    Reply::None
                }
                FromDevice::IssueJobCredential { .. } => Reply::None,
            }
        }

        fn on_stream(&mut self, _stream: MuxStream) {}
    }

    fn settings(stop: &CancellationToken) -> Settings {
        Settings {
            heartbeat: Duration::from_secs(5),
            far_end: "device",
            stop: stop.clone(),
            stop_reason: "test over",
        }
    }

    #[tokio::test]
    async fn pings_are_answered_while_a_login_waits_and_answers_keep_order() {
        let (mut near, mut far) = loopback_pair().await;
        let (gate_tx, gate) = tokio::sync::oneshot::channel();
        let stop = CancellationToken::new();
        let (_handle, mailbox) = LinkHandle::new(far.opener.clone(), 4);
        let actor = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut role = SlowLogins {
                    gate: Some(gate),
                    logouts: 0,
                };
                let end = run(&mut far, mailbox, &mut role, &settings(&stop)).await;
                (end, role.logouts)
            }
        });
        let number: crate::number::Number = "1002".parse().unwrap();
        let login = Control::Login(crate::link::message::Login {
            number: number.clone(),
            secret: "s".into(),
            receive: None,
        });
        near.writer.send(&login).await.unwrap();
        near.writer.send(&Control::Ping { seq: 7 }).await.unwrap();
        near.writer
            .send(&Control::Logout {
                number: number.clone(),
            })
            .await
            .unwrap();
        // The pong is queued behind the login's answer, which waits: the
        // logout after it is still handled meanwhile.
        let waited = tokio::time::timeout(Duration::from_millis(200), near.reader.next()).await;
        assert!(waited.is_err(), "nothing may overtake the login's answer");
        gate_tx.send(()).unwrap();
        assert!(matches!(
            near.reader.next().await.unwrap(),
            Some(Control::Kicked { .. })
        ));
        assert_eq!(
            near.reader.next().await.unwrap(),
            Some(Control::Pong { seq: 7 })
        );
        stop.cancel();
        let (end, logouts) = actor.await.unwrap();
        assert_eq!(end.to_string(), "test over");
        assert_eq!(logouts, 1);
    }

    #[tokio::test]
    async fn a_full_outbox_closes_the_link_instead_of_dropping_a_message() {
        let (near, _far) = loopback_pair().await;
        let (handle, _mailbox) = LinkHandle::new(near.opener.clone(), 1);
        let kick = || Control::Kicked {
            number: "1002".parse().unwrap(),
            reason: "x".into(),
        };
        assert_eq!(handle.notify(kick()), Ok(()));
        assert_eq!(handle.notify(kick()), Err(LinkGone));
        assert!(handle.is_closed(), "the overflow closed the link");
    }

    #[tokio::test]
    async fn the_peer_closing_ends_the_link_with_its_name() {
        let (near, mut far) = loopback_pair().await;
        let stop = CancellationToken::new();
        let (_handle, mailbox) = LinkHandle::new(far.opener.clone(), 4);
        let mut role = SlowLogins {
            gate: None,
            logouts: 0,
        };
        near.opener.close();
        let end = run(&mut far, mailbox, &mut role, &settings(&stop)).await;
        assert!(
            matches!(end, LinkEnd::PeerClosed { .. } | LinkEnd::Closed),
            "{end}"
        );
    }
}

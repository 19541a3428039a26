//! A logged-in device: the link to its gateway, kept alive by a control task
//! that answers pings and reports why the session ended.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::codec::Capabilities;
use crate::link::actor::{self, LinkHandle, LinkRole, Reply};
use crate::link::control::{self, LinkConfig, LinkError};
use crate::link::message::{
    Control, Hello, Login, LoginOutcome, LoginRefusal, PROTOCOL_VERSION, Role,
};
use crate::link::mux::{Incoming, MuxStream, Opener};
use crate::link::roles::FromUpstream;
use crate::number::Number;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot reach gateway: {0}")]
    Unreachable(#[from] LinkError),
    #[error("login as {number} refused: {reason}")]
    Refused {
        number: Number,
        reason: LoginRefusal,
    },
    #[error("gateway closed the link during login")]
    Closed,
    #[error("no answer to the login within {0:?}")]
    Timeout(Duration),
}

/// Why a session is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Another device logged in with the same number and took over.
    Kicked(String),
    /// The link dropped or the gateway went silent.
    LinkLost(String),
}

/// A logged-in device.
pub struct Session {
    pub number: Number,
    /// The relay that accepted the login.
    pub relay: String,
    pub opener: Opener,
    /// Calls the relay delivers to this device (receiving sessions only).
    pub inbound: Incoming,
    ended: watch::Receiver<Option<SessionEnd>>,
    control: JoinHandle<()>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("number", &self.number)
            .field("relay", &self.relay)
            .finish()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.control.abort();
        self.opener.close();
    }
}

impl Session {
    /// Dials `addr` (a gateway, or a relay directly) and logs in as `number`.
    /// `receive` carries the capabilities of a device that answers calls.
    pub async fn login(
        addr: &str,
        number: &Number,
        secret: &str,
        receive: Option<Capabilities>,
        cfg: &LinkConfig,
    ) -> Result<Session, SessionError> {
        let hello = Hello {
            version: PROTOCOL_VERSION,
            role: Role::Device,
            name: number.to_string(),
        };
        let mut link = control::dial(addr, hello, cfg).await?;
        let login = Control::Login(Login {
            number: number.clone(),
            secret: secret.to_owned(),
            receive,
        });
        link.writer
            .send(&login)
            .await
            .map_err(|_| SessionError::Closed)?;
        // The gateway may be waiting for its own relay link, so allow the
        // handshake time twice over.
        let wait = cfg.handshake_timeout * 2;
        let relay = tokio::time::timeout(wait, async {
            loop {
                match link.reader.next().await {
                    Ok(Some(Control::LoginResult { number: n, outcome })) if &n == number => {
                        return match outcome {
                            LoginOutcome::Accepted { relay } => Ok(relay),
                            LoginOutcome::Refused(reason) => Err(SessionError::Refused {
                                number: number.clone(),
                                reason,
                            }),
                        };
                    }
                    Ok(Some(Control::Ping { seq })) => {
                        let _ = link.writer.send(&Control::Pong { seq }).await;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return Err(SessionError::Closed),
                }
            }
        })
        .await
        .map_err(|_| SessionError::Timeout(wait))??;

        let (end_tx, ended) = watch::channel(None);
        let inbound = link.take_inbound();
        let opener = link.opener.clone();
        let settings = actor::Settings {
            heartbeat: cfg.heartbeat,
            far_end: "gateway",
            // The session stops when it is dropped (the task is aborted).
            stop: CancellationToken::new(),
            stop_reason: "session over",
        };
        let (_handle, mailbox) = LinkHandle::new(opener.clone(), 1);
        let control = tokio::spawn(async move {
            let mut role = SessionRole::default();
            let end = actor::run(&mut link, mailbox, &mut role, &settings).await;
            let reason = match role.kicked {
                Some(reason) => SessionEnd::Kicked(reason),
                None => SessionEnd::LinkLost(end.to_string()),
            };
            let _ = end_tx.send(Some(reason));
        });
        Ok(Session {
            number: number.clone(),
            relay,
            opener,
            inbound,
            ended,
            control,
        })
    }

    /// Resolves when the session ends, with the reason.
    pub async fn ended(&self) -> SessionEnd {
        self.end_signal().wait().await
    }

    /// A handle that waits for the end of the session without borrowing it.
    pub fn end_signal(&self) -> EndSignal {
        EndSignal(self.ended.clone())
    }
}

/// Waits for a session's end; see [`Session::end_signal`].
#[derive(Debug)]
pub struct EndSignal(watch::Receiver<Option<SessionEnd>>);

impl EndSignal {
    /// Resolves when the session ends, with the reason (cancel-safe).
    pub async fn wait(&mut self) -> SessionEnd {
        loop {
            if let Some(end) = self.0.borrow_and_update().clone() {
                return end;
            }
            if self.0.changed().await.is_err() {
                return SessionEnd::LinkLost("control task stopped".into());
            }
        }
    }
}

/// A logged-in device's end of the link: the actor answers pings; the only
/// thing the gateway can tell a device afterwards is that it was kicked.
#[derive(Debug, Default)]
struct SessionRole {
    kicked: Option<String>,
}

impl LinkRole for SessionRole {
    type Inbound = FromUpstream;

    fn on_message(&mut self, msg: FromUpstream) -> Reply {
        match msg {
            FromUpstream::Kicked { reason, .. } => {
                self.kicked = Some(reason.clone());
                Reply::Close(reason)
            }
            // A late answer to a login this session no longer waits for;
            // credentials are for gateways.
            FromUpstream::LoginResult { .. } | FromUpstream::JobCredential { .. } => Reply::None,
        }
    }

    /// Calls for this device were taken off the link before the actor
    /// started ([`Session::inbound`]); nothing reaches here.
    fn on_stream(&mut self, _stream: MuxStream) {}
}

//! A logged-in device: the link to its gateway, kept alive by a control task
//! that answers pings and reports why the session ended.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::codec::Capabilities;
use crate::link::control::{self, Heartbeat, LinkConfig, LinkError};
use crate::link::message::{
    Control, Hello, Login, LoginOutcome, LoginRefusal, PROTOCOL_VERSION, Role,
};
use crate::link::mux::{MuxStream, Opener};
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
    pub inbound: mpsc::Receiver<MuxStream>,
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
        let heartbeat = Heartbeat::new(cfg.heartbeat);
        let control = tokio::spawn(run_control(
            link.reader,
            link.writer,
            heartbeat,
            end_tx,
            link.opener.clone(),
        ));
        Ok(Session {
            number: number.clone(),
            relay,
            opener: link.opener,
            inbound: link.inbound,
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

/// Keeps the control stream alive: pongs, pings, and the session's end.
async fn run_control(
    mut reader: control::ControlReader,
    mut writer: control::ControlWriter,
    mut heartbeat: Heartbeat,
    end: watch::Sender<Option<SessionEnd>>,
    opener: Opener,
) {
    let reason = loop {
        tokio::select! {
            biased;
            _ = opener.closed() => break SessionEnd::LinkLost("link closed".into()),
            msg = reader.next() => {
                heartbeat.heard();
                match msg {
                    Ok(Some(Control::Ping { seq })) => {
                        if writer.send(&Control::Pong { seq }).await.is_err() {
                            break SessionEnd::LinkLost("cannot write to gateway".into());
                        }
                    }
                    Ok(Some(Control::Kicked { reason, .. })) => break SessionEnd::Kicked(reason),
                    Ok(Some(_)) => {}
                    Ok(None) => break SessionEnd::LinkLost("gateway closed the link".into()),
                    Err(e) => break SessionEnd::LinkLost(format!("gateway link failed: {e}")),
                }
            }
            ping = heartbeat.beat() => match ping {
                Some(ping) => {
                    if writer.send(&ping).await.is_err() {
                        break SessionEnd::LinkLost("cannot write to gateway".into());
                    }
                }
                None => break SessionEnd::LinkLost(format!(
                    "gateway silent for {:?}", heartbeat.deadline()
                )),
            },
        }
    };
    let _ = end.send(Some(reason));
    opener.close();
}

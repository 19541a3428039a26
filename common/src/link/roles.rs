//! What each end of a link takes from the other on the control stream, as
//! one type per role. The wire carries [`Control`]; a link actor turns each
//! message into its role's type, so a handler matches only what its role
//! can hear, and everything else is logged once, in the actor, as ignored.
//!
//! Pings, pongs and the handshake messages (hello, refusal, mesh-key
//! challenge and proofs) never reach a handler: the actor answers pings,
//! and the handshake is over before the actor starts.

use super::message::{Control, CredentialOutcome, Login, LoginOutcome, Revocation};
use crate::number::{CallId, Number};
use crate::routing::Announcement;

/// What a relay or gateway hears from the devices (or gateway) below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromDevice {
    Login(Login),
    Logout {
        number: Number,
    },
    /// From a gateway: a credential for a queued fax.
    IssueJobCredential {
        number: Number,
        call_id: CallId,
        expires_unix: u64,
    },
}

/// What a gateway or device hears from the hop above it (its relay, or
/// for a device its gateway, which forwards what the relay says).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromUpstream {
    LoginResult {
        number: Number,
        outcome: LoginOutcome,
    },
    Kicked {
        number: Number,
        reason: String,
    },
    /// To a gateway: the credential it asked for.
    JobCredential {
        call_id: CallId,
        outcome: CredentialOutcome,
    },
}

/// What a relay hears from a peer relay once the mesh key is proven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromPeer {
    Snapshot {
        announcements: Vec<Announcement>,
        done: bool,
    },
    Announce(Vec<Announcement>),
    Withdraw(Vec<Number>),
    Revoke(Vec<Revocation>),
}

impl TryFrom<Control> for FromDevice {
    type Error = Control;

    fn try_from(msg: Control) -> Result<Self, Control> {
        match msg {
            Control::Login(login) => Ok(FromDevice::Login(login)),
            Control::Logout { number } => Ok(FromDevice::Logout { number }),
            Control::IssueJobCredential {
                number,
                call_id,
                expires_unix,
            } => Ok(FromDevice::IssueJobCredential {
                number,
                call_id,
                expires_unix,
            }),
            other => Err(other),
        }
    }
}

impl TryFrom<Control> for FromUpstream {
    type Error = Control;

    fn try_from(msg: Control) -> Result<Self, Control> {
        match msg {
            Control::LoginResult { number, outcome } => {
                Ok(FromUpstream::LoginResult { number, outcome })
            }
            Control::Kicked { number, reason } => Ok(FromUpstream::Kicked { number, reason }),
            Control::JobCredential { call_id, outcome } => {
                Ok(FromUpstream::JobCredential { call_id, outcome })
            }
            other => Err(other),
        }
    }
}

impl TryFrom<Control> for FromPeer {
    type Error = Control;

    fn try_from(msg: Control) -> Result<Self, Control> {
        match msg {
            Control::Snapshot {
                announcements,
                done,
            } => Ok(FromPeer::Snapshot {
                announcements,
                done,
            }),
            Control::Announce(a) => Ok(FromPeer::Announce(a)),
            Control::Withdraw(n) => Ok(FromPeer::Withdraw(n)),
            Control::Revoke(r) => Ok(FromPeer::Revoke(r)),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_takes_only_its_messages() {
        let n: Number = "1002".parse().unwrap();
        let logout = Control::Logout { number: n.clone() };
        assert_eq!(
            FromDevice::try_from(logout.clone()),
            Ok(FromDevice::Logout { number: n.clone() })
        );
        assert_eq!(FromUpstream::try_from(logout.clone()), Err(logout.clone()));
        assert_eq!(FromPeer::try_from(logout.clone()), Err(logout));
        let kicked = Control::Kicked {
            number: n.clone(),
            reason: "again".into(),
        };
        assert!(FromUpstream::try_from(kicked.clone()).is_ok());
        assert_eq!(FromDevice::try_from(kicked.clone()), Err(kicked));
        assert!(FromPeer::try_from(Control::Withdraw(vec![n])).is_ok());
        let ping = Control::Ping { seq: 1 };
        assert_eq!(FromPeer::try_from(ping.clone()), Err(ping));
    }
}

//! Where a call goes from this relay, or why it cannot go on: one decision
//! for both directory modes. In mesh mode the record comes from the routing
//! table and the next relay is the best path's first hop (if that peer's
//! link is up); in directory mode the record comes from the Redis cache (or
//! a GET) and the next relay is the callee's home relay itself, dialed on
//! demand. Pure: the shell looks things up, this decides.

use common::directory::ConnectionInfo;
use common::link::message::{CallRefusal, CallRequest, Refusal};
use common::number::Number;

/// Where a call stream came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A gateway or device link.
    Link(super::LinkId),
    /// A peer relay.
    Peer,
}

/// What the relay found about the callee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// The callee's record, and the relay a call to it would go to next
    /// (`None`: no path to its home relay right now).
    Record {
        record: ConnectionInfo,
        next_hop: Option<String>,
    },
    /// No such number.
    Unknown,
    /// Directory mode: not cached, and Redis did not answer.
    DirectoryDown(String),
}

/// Where a call goes next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination<H> {
    /// Down the link of the device (or gateway) that receives for it here.
    Local(H),
    /// To this relay: the next hop (mesh) or the home relay (directory).
    Relay { name: String, home: String },
}

/// Why this relay does not take a call on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("relay {relay} is shutting down")]
    ShuttingDown { relay: String },
    /// Paths are loop-free by construction; this guards against a bug or a
    /// peer with a stale view.
    #[error("routing loop: the call came back to relay {relay}")]
    Loop { relay: String },
    #[error("{number} is not logged in on this link")]
    NotLoggedIn { number: Number },
    #[error("{number} is not a known number")]
    Unknown { number: Number },
    #[error("{number} is offline")]
    OfflineHere { number: Number },
    #[error("{number} is offline (home relay {home})")]
    Offline { number: Number, home: String },
    #[error("no path to relay {home}, where {number} is logged in")]
    NoPath { number: Number, home: String },
    #[error("{number} is not cached here and the directory is unreachable ({error})")]
    DirectoryDown { number: Number, error: String },
    /// Directory mode: the home relay did not answer the dial, and a fresh
    /// read of the directory says the number is gone (its lease ran out).
    #[error(
        "relay {home}, where {number} was logged in, is unreachable ({error}) and {number} left the directory"
    )]
    HomeGone {
        number: Number,
        home: String,
        error: String,
    },
    #[error("cannot reach relay {home} at {addr}, where {number} is logged in: {error}")]
    HomeUnreachable {
        number: Number,
        home: String,
        addr: String,
        error: String,
    },
}

impl RouteError {
    /// What the caller's device hears (and turns into its exit code).
    pub fn reason(&self) -> CallRefusal {
        match self {
            RouteError::NotLoggedIn { .. } => CallRefusal::NotAuthorized,
            RouteError::Unknown { .. } => CallRefusal::UnknownNumber,
            RouteError::OfflineHere { .. } | RouteError::Offline { .. } => CallRefusal::Offline,
            RouteError::ShuttingDown { .. }
            | RouteError::Loop { .. }
            | RouteError::NoPath { .. }
            | RouteError::DirectoryDown { .. }
            | RouteError::HomeGone { .. }
            | RouteError::HomeUnreachable { .. } => CallRefusal::Unreachable,
        }
    }
}

impl From<RouteError> for Refusal {
    fn from(e: RouteError) -> Refusal {
        Refusal::new(e.reason(), e.to_string())
    }
}

/// Whether this relay takes the call at all: not while draining, not twice
/// (a loop), and from a device or gateway link only as a number logged in
/// on that link (`logged_in`; `None` for a peer relay, a trusted fleet
/// member whose first relay checked it).
pub fn admit(
    me: &str,
    draining: bool,
    request: &CallRequest,
    logged_in: Option<bool>,
) -> Result<(), RouteError> {
    if draining {
        return Err(RouteError::ShuttingDown { relay: me.into() });
    }
    if request.via.iter().any(|r| r == me) {
        return Err(RouteError::Loop { relay: me.into() });
    }
    if logged_in == Some(false) {
        return Err(RouteError::NotLoggedIn {
            number: request.from.clone(),
        });
    }
    Ok(())
}

/// Where a call to `to` goes: `local` is the link that receives for it
/// here, if any.
pub fn route<H>(
    me: &str,
    to: &Number,
    found: Found,
    local: Option<H>,
) -> Result<Destination<H>, RouteError> {
    let number = to.clone();
    let (record, next_hop) = match found {
        Found::Unknown => return Err(RouteError::Unknown { number }),
        Found::DirectoryDown(error) => return Err(RouteError::DirectoryDown { number, error }),
        Found::Record { record, next_hop } => (record, next_hop),
    };
    let home = record.home_relay;
    if home == me {
        // Homed here: whether it is online is what this relay's links say.
        return local
            .map(Destination::Local)
            .ok_or(RouteError::OfflineHere { number });
    }
    if !record.online {
        return Err(RouteError::Offline { number, home });
    }
    match next_hop {
        Some(name) => Ok(Destination::Relay { name, home }),
        None => Err(RouteError::NoPath { number, home }),
    }
}

//! The messages of the link protocol, as serde types. Every hop speaks these.
//!
//! Protocol flow:
//! 1. The dialer opens the control stream and sends `Control::Hello`; the
//!    acceptor answers with its own `Hello` (or `Refused`) on the same stream.
//! 2. Devices log in with `Control::Login` (a gateway forwards it to its relay
//!    and relays the `LoginResult` back). Either side pings; `Pong` answers.
//! 3. A call is a new stream: `CallRequest` from the caller, forwarded hop by
//!    hop, then `CallAnswer` from the callee (or from the hop that refuses).
//! 4. After `Accepted`, the caller sends `SenderFrame`s (a page header, the
//!    page's bytes as raw frames, ..., end of document) and the callee answers each page with a
//!    `ReceiverFrame::PageConfirmed` once it is on disk, then `Complete`.
//!    Hops splice the stream and never parse step 3's answer or step 4.
//!    A retry (same call id) may be answered with `HeldPages`: the caller
//!    then sends only the pages the callee lacks (see `HeldPages`).
//! 5. Between relays, after the hellos: `PeerChallenge` (acceptor),
//!    `PeerProof` with a nonce (dialer), `PeerProof` (acceptor); then each
//!    side sends its `Snapshot` and, from then on, `Announce` / `Withdraw`
//!    for every renewal. The challenge and the dialer's proof carry the
//!    sender's instance id, so each side can tell a second relay of a name
//!    it already links with from the same relay coming back; either side
//!    may answer `Refused` in place of its next message (the dialer in place
//!    of its proof, the acceptor in place of its own).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{Capabilities, PageInfo};
use crate::number::{CallId, Number};
use crate::routing::Announcement;

/// Bumped on any incompatible change; a peer with another version is refused.
/// 2: CallAnswer::Accepted says which pages the callee holds (resume),
/// Control::Revoke, the TooManyAttempts/Revoked login refusals and the
/// OverLimit call refusal.
/// 3: the gateway's queue: Control::IssueJobCredential / JobCredential, and
/// job streams between a device and its gateway (`crate::jobs`).
/// 4: the relay's instance id in `PeerChallenge` and `PeerProof`.
pub const PROTOCOL_VERSION: u16 = 4;

/// What sits at the other end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Device,
    Gateway,
    Relay,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Device => "device",
            Role::Gateway => "gateway",
            Role::Relay => "relay",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    pub role: Role,
    pub name: String,
}

/// A device proving it owns `number`. Debug leaves the secret out, so no
/// log line (e.g. "expected hello, got Login(..)") can carry it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub number: Number,
    pub secret: String,
    /// `Some` when the device answers calls (faxrecv); `None` for a send-only
    /// session (faxsend), which never takes calls away from the receiver.
    pub receive: Option<Capabilities>,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("number", &self.number)
            .field("secret", &"<redacted>")
            .field("receive", &self.receive)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginOutcome {
    /// Logged in at the named relay.
    Accepted {
        relay: String,
    },
    Refused(LoginRefusal),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginRefusal {
    /// The secret does not belong to the number (or none was given).
    BadSecret,
    /// The gateway has no working link to any relay right now.
    NoRelay,
    /// Anything else, in words.
    Other(String),
    /// Too many failed logins from this address lately; wait and retry.
    TooManyAttempts { retry_after_secs: u32 },
    /// The secret's generation was revoked (`relayd revoke`); ask for a new one.
    Revoked { generation: u32, minimum: u32 },
}

impl fmt::Display for LoginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginRefusal::BadSecret => f.write_str("wrong secret for this number"),
            LoginRefusal::NoRelay => f.write_str("the gateway cannot reach any relay"),
            LoginRefusal::Other(s) => f.write_str(s),
            LoginRefusal::TooManyAttempts { retry_after_secs } => write!(
                f,
                "too many attempts: too many failed logins from this address; retry in {retry_after_secs} s"
            ),
            LoginRefusal::Revoked {
                generation,
                minimum,
            } => write!(
                f,
                "secret revoked: generation {generation} is revoked (the relay wants generation {minimum} or later); ask the operator for a new secret"
            ),
        }
    }
}

/// Messages of a link's control stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    Hello(Hello),
    /// The link is refused, with the reason; the sender closes it next.
    Refused {
        reason: String,
    },
    Login(Login),
    LoginResult {
        number: Number,
        outcome: LoginOutcome,
    },
    /// The device behind this link is gone.
    Logout {
        number: Number,
    },
    /// A newer login for the number took over; this one no longer receives calls.
    Kicked {
        number: Number,
        reason: String,
    },
    Ping {
        seq: u64,
    },
    Pong {
        seq: u64,
    },
    /// Relay peering, acceptor first: prove you hold the mesh key.
    /// `instance` is the acceptor's instance id (see `PeerProof`).
    PeerChallenge {
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
        instance: u64,
    },
    /// The proof for the other side's nonce, and a nonce for the other side
    /// (empty in the acceptor's final answer). `instance` is the sender's
    /// instance id: random, made once per data directory, so two relays
    /// configured with one name differ and a restarted relay does not. It is
    /// not covered by the proof: it catches a configuration mistake, and a
    /// fleet member could claim any name anyway.
    PeerProof {
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
        instance: u64,
    },
    /// Part of the full directory a relay sends a new peer; `done` on the last.
    Snapshot {
        announcements: Vec<Announcement>,
        done: bool,
    },
    /// Renewals: what this relay now announces for these numbers.
    Announce(Vec<Announcement>),
    /// This relay no longer has a path to these numbers.
    Withdraw(Vec<Number>),
    /// Secrets below these generations are revoked. Sent after the snapshot
    /// and on every `relayd revoke`; merged by taking the maximum, so
    /// duplicates and reordering are harmless.
    Revoke(Vec<Revocation>),
    /// Gateway to relay: `number`, logged in on this link with its device
    /// secret, queued a fax as job `call_id`; issue the credential the
    /// gateway will place that job's calls with (see
    /// `crate::credential::JobCredential`), valid until `expires_unix`.
    IssueJobCredential {
        number: Number,
        call_id: CallId,
        expires_unix: u64,
    },
    /// Relay to gateway: the answer to `IssueJobCredential`.
    JobCredential {
        call_id: CallId,
        outcome: CredentialOutcome,
    },
}

/// A relay's answer to a gateway asking for a job credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialOutcome {
    Issued { credential: String },
    Refused { reason: String },
}

impl fmt::Debug for CredentialOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialOutcome::Issued { .. } => f.write_str("Issued(<redacted>)"),
            CredentialOutcome::Refused { reason } => write!(f, "Refused({reason:?})"),
        }
    }
}

/// A number's minimum secret generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub number: Number,
    pub min_generation: u32,
}

/// The first frame of every call stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRequest {
    pub call_id: CallId,
    pub from: Number,
    pub to: Number,
    pub pages: u32,
    pub bytes: u64,
    /// Relays the call went through so far, in order; each relay appends itself.
    pub via: Vec<String>,
}

/// Why a call did not go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallRefusal {
    UnknownNumber,
    Offline,
    Busy,
    Rejected,
    NotAuthorized,
    /// No working path towards the callee (relay link down, no route).
    Unreachable,
    /// The call is over one of a hop's limits (the detail names it).
    OverLimit,
}

impl fmt::Display for CallRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallRefusal::UnknownNumber => "unknown number",
            CallRefusal::Offline => "offline",
            CallRefusal::Busy => "busy",
            CallRefusal::Rejected => "rejected",
            CallRefusal::NotAuthorized => "not authorized",
            CallRefusal::Unreachable => "unreachable",
            CallRefusal::OverLimit => "over a limit",
        })
    }
}

/// One hop's refusal of a call: the reason, which the caller's device
/// turns into its exit code, and the words for people (which name the
/// number, relay or limit).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Refusal {
    pub reason: CallRefusal,
    pub detail: String,
}

impl Refusal {
    pub fn new(reason: CallRefusal, detail: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            detail: detail.into(),
        }
    }
}

/// The callee's (or a refusing hop's) answer to a `CallRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallAnswer {
    Accepted {
        capabilities: Capabilities,
        via: Vec<String>,
        /// What the callee already holds of this call id from an earlier
        /// attempt; `None` for a fax it has never seen.
        held: Option<HeldPages>,
    },
    Refused {
        reason: CallRefusal,
        detail: String,
        via: Vec<String>,
    },
}

/// The pages of a call id the callee already has on disk (confirmed on an
/// earlier attempt). The caller compares `digest` with its own first
/// `pages` pages as fitted for this callee: if they match it sends from page
/// `pages` on (just `EndOfDocument` when nothing is missing); if not, it
/// starts over at page 0 and the callee drops what it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldPages {
    pub pages: u32,
    /// SHA-256 over those pages, see `device::resume::digest`.
    pub digest: [u8; 32],
    /// The fax is complete on the callee's disk: a retry of a delivered fax.
    pub complete: bool,
}

/// Caller to callee, after `Accepted`. After a `Page` header, the page's
/// `info.data_len` bytes follow as raw frames (no message encoding) of at
/// most `CHUNK_LEN` bytes each, so page data is copied once into the frame
/// by the caller and read straight into the page by the callee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SenderFrame {
    /// A page begins; its data follows in raw frames.
    Page {
        index: u32,
        info: PageInfo,
    },
    EndOfDocument,
}

/// Callee to caller, after `Accepted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiverFrame {
    /// Page `index` is written and synced on the callee's disk.
    PageConfirmed { index: u32 },
    /// The callee stops the call, keeping the pages confirmed so far.
    Hangup { reason: String },
    /// Every page is stored; the fax is complete.
    Complete { pages: u32, file: String },
}

/// A chunk of page data as it travels: the frame's 4-byte length, then the
/// chunk, sent as one multiplexer frame and handed on whole by every hop.
/// Half of yamux's 256 KiB stream window: two chunks fill a window exactly,
/// and the window update the receiver sends once half of it is read lets
/// the next whole chunk go. (A chunk frame 4 bytes over a quarter window
/// went out split, its last bytes as a frame of their own that every hop
/// then carried: the bulk benchmark ran 11% slower.) Half a window, not a
/// quarter: every frame costs each hop a wake-up and three system calls,
/// and quarter-window chunks took 8% longer and 10% more CPU per byte.
pub const CHUNK_FRAME_LEN: usize = 128 * 1024;

/// Largest raw frame of page data: what fits in a [`CHUNK_FRAME_LEN`] frame.
pub const CHUNK_LEN: usize = CHUNK_FRAME_LEN - 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_never_prints_its_secret() {
        let login = Control::Login(Login {
            number: "1001".parse().unwrap(),
            secret: "s3cr3t-value".into(),
            receive: None,
        });
        let shown = format!("{login:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}

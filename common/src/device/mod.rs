//! The fax device's side of the protocol: logging in through a gateway (or
//! straight to a relay), sending a fax, and answering calls. faxsend and
//! faxrecv are thin shells around this; the benchmarks drive it directly.
//! A retried fax (same call id) resumes where the callee's pages end
//! ([`resume`]); [`retry`] says when to redial, [`report`] what happened.
//! [`config`] is the device config file the command-line devices share.

pub mod answer;
pub mod config;
pub mod report;
pub mod resume;
pub mod retry;
pub mod send;
pub mod session;

pub use session::{Session, SessionEnd, SessionError};

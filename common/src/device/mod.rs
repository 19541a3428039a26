//! The fax device's side of the protocol: logging in through a gateway (or
//! straight to a relay), sending a fax, and answering calls. faxsend and
//! faxrecv are thin shells around this; the benchmarks drive it directly.

pub mod answer;
pub mod resume;
pub mod retry;
pub mod send;
pub mod session;

pub use session::{Session, SessionEnd, SessionError};

//! E-mail for faxmesh's gateway (gatewayd's SMTP side), without I/O:
//!
//! - [`smtp`]: the ESMTP server as a state machine that tests drive line by
//!   line (gatewayd does the sockets, TLS and timeouts).
//! - [`inbound`]: what a mail asks to fax: its attachments in order and its
//!   text body, read with `mail-parser`.
//! - [`outbound`]: the mails the gateway writes with `mail-builder`: a
//!   received fax for a mail device, and the status report for a fax sent
//!   by mail.

pub mod inbound;
pub mod outbound;
pub mod smtp;

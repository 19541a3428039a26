//! Plumbing every long-running program shares: systemd notifications,
//! shutdown on signals, logging.

pub mod logging;
pub mod notify;
pub mod shutdown;

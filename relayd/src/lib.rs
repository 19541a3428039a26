//! relayd: the relay daemon.
//!
//! - [`config`]: what the relay runs with.
//! - [`store`]: connection information in sled.
//! - [`registry`]: which numbers are online on which link.
//! - [`link_session`]: one task per accepted link (hello, logins, heartbeats).
//! - [`call`]: routing a call stream and splicing it to the callee's link.
//! - [`server`]: the accept loop, readiness and graceful shutdown.

pub mod call;
pub mod cli;
pub mod config;
pub mod link_session;
pub mod registry;
pub mod server;
pub mod store;

pub use config::RelayConfig;
pub use server::run;

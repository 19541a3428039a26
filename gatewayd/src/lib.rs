//! gatewayd: the gateway daemon at the LAN edge.
//!
//! - [`config`]: what the gateway runs with: command line, environment and config file merged.
//! - [`gateway_core`]: the gateway's decisions without I/O: the LAN's
//!   logged-in devices and their logins (kept in memory to log them in again
//!   after a relay reconnect), the login throttle, kicks, whether a call goes on.
//! - [`uplink`]: the one link to a relay, with failover and backoff.
//! - [`device_link`]: one task per device connection.
//! - [`call`]: carrying call streams between devices and the relay.
//! - [`server`]: accept loop, status, reload and shutdown.
//! - [`metrics`]: the counters served on `--admin ADDR` at /metrics.

pub mod call;
pub mod config;
pub mod device_link;
pub mod gateway_core;
pub mod metrics;
pub mod server;
pub mod uplink;

pub use config::GatewayConfig;
pub use server::run;

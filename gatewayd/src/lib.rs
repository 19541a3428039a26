//! gatewayd: the gateway daemon at the LAN edge.
//!
//! Leaves first; each module imports only those above it in this list:
//!
//! - [`config`]: what the gateway runs with: command line, environment and config file merged.
//! - [`gateway_core`]: the gateway's decisions without I/O: the LAN's
//!   logged-in devices and their logins (kept in memory to log them in again
//!   after a relay reconnect), the login throttle, kicks, whether a call goes on.
//! - [`metrics`]: the counters served on `--admin ADDR` at /metrics.
//! - [`queue`]: the fax queue on disk (sled) and each job's rules without I/O.
//! - [`uplink`]: the relay link in use, and the logins and job credentials
//!   waiting for its answer.
//! - [`gateway`]: the state every task shares, and carrying out the core's effects.
//! - [`job_runner`]: one task per queued job, placing its calls.
//! - [`jobs_stream`]: a device's requests to the queue (submit, list, wait, cancel, alter).
//! - [`email`]: SMTP (email-to-fax, T.37), status mails and mail devices
//!   (fax-to-email); its settings (`email::config`) come before [`config`].
//! - [`call`]: carrying call streams between devices and the relay.
//! - [`relay_link`]: the one link to a relay, with failover and backoff.
//! - [`device_link`]: one task per device connection.
//! - [`server`]: gatewayd on the shared daemon skeleton (status, reload, run).

pub mod call;
pub mod config;
pub mod device_link;
pub mod email;
pub mod gateway;
pub mod gateway_core;
pub mod job_runner;
pub mod jobs_stream;
pub mod metrics;
pub mod queue;
pub mod relay_link;
pub mod server;
pub mod uplink;

pub use config::GatewayConfig;
pub use server::run;

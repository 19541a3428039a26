//! relayd: the relay daemon.
//!
//! - [`config`]: what the relay runs with: flags, environment and config file merged.
//! - [`store`]: connection information in sled.
//! - [`relay_core`]: the relay's decisions without I/O: logins, revocations,
//!   the home rule, where a call goes, and the limits' counters.
//! - [`mesh`]: the routing table shared with peer relays, and renewals.
//! - [`redis_dir`]: directory database mode: the Redis client and its cache.
//! - [`directory`]: directory mode's tasks: leases, renewals, routing a call.
//! - [`peer`]: links to peer relays (dial, mesh key, snapshot, renewals).
//! - [`tls_settings`], [`inbound`]: TLS and the plaintext allow-list; telling
//!   TLS from plaintext on the listening port.
//! - [`tls_cmd`]: `relayd tls ca|cert`, a private CA and certificates for a fleet.
//! - [`link_session`]: one task per accepted link (hello, logins, heartbeats).
//! - [`call`]: routing a call stream and splicing it to the callee's link.
//! - [`server`]: the accept loop, readiness, status, reload and graceful shutdown.
//! - [`metrics`]: the counters served on `--admin ADDR` at /metrics.
//! - [`admin`]: the operator's socket behind `relayd peers` / `relayd directory` / `relayd revoke`.
//! - [`revocation`]: revoked secret generations, stored, spread and enforced.

pub mod admin;
pub mod call;
pub mod cli;
pub mod config;
pub mod directory;
pub mod inbound;
pub mod link_session;
pub mod mesh;
pub mod metrics;
pub mod peer;
pub mod redis_dir;
pub mod relay_core;
pub mod revocation;
pub mod server;
pub mod store;
pub mod tls_cmd;
pub mod tls_settings;

pub use config::RelayConfig;
// The limits are settings as well as rules: `config` names them here.
pub use relay_core::limits;
pub use server::run;

//! relayd: the relay daemon.
//!
//! Leaves first; each module imports only those above it in this list
//! (`call` reaches `peer` only through the spawner it is handed):
//!
//! - [`allocator`]: tuning the allocator relayd runs on (mimalloc).
//! - [`tls_settings`], [`inbound`]: TLS and the plaintext allow-list; telling
//!   TLS from plaintext on the listening port.
//! - [`relay_core`]: the relay's decisions without I/O: logins, revocations,
//!   the home rule, where a call goes, and the limits and their counters.
//! - [`redis_backend`]: the Redis a directory lives in (one server, a
//!   cluster, Sentinel), from its URL, behind one client.
//! - [`dir_cache`]: directory mode's records and the bounded cache of them.
//! - [`config`], [`cli`]: what the relay runs with: flags, environment and
//!   config file merged.
//! - [`store`]: connection information in sled.
//! - [`revocation`]: revoked secret generations on disk.
//! - [`mesh`]: the routing table shared with peer relays, renewals, peer links' status.
//! - [`redis_dir`]: directory database mode: the Redis client.
//! - [`metrics`]: the counters served on `--admin ADDR` at /metrics.
//! - [`relay`]: the state every task shares, and carrying out the core's effects.
//! - [`peer`]: links to peer relays (dial, mesh key, snapshot, the peer role).
//! - [`directory`]: directory mode's tasks: leases, renewals, routing a call.
//! - [`call`]: routing a call stream and splicing it to the next link.
//! - [`link_session`]: one task per accepted link (TLS, hello, the device role).
//! - [`admin`]: the operator's socket behind `relayd peers` / `relayd directory` / `relayd revoke`.
//! - [`server`]: relayd on the shared daemon skeleton (status, reload, run).
//! - [`tls_cmd`]: `relayd tls ca|cert`, a private CA and certificates for a fleet.

pub mod admin;
pub mod allocator;
pub mod call;
pub mod cli;
pub mod config;
pub mod dir_cache;
pub mod directory;
pub mod inbound;
pub mod link_session;
pub mod mesh;
pub mod metrics;
pub mod peer;
pub mod redis_backend;
pub mod redis_dir;
pub mod relay;
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

//! The end-to-end test harness: runs the real faxmesh binaries as separate
//! processes, on loopback, each test in its own temp dir. Used by the tests
//! in `tests/` and by benchmarks.
//!
//! - [`admin`]: GET from a daemon's admin listener (/metrics, /healthz).
//! - [`bins`]: finding (and first building) relayd, gatewayd, faxsend, faxrecv.
//! - [`notify`]: the test's end of systemd's notify protocol.
//! - [`daemon`]: a child process with a notify socket and its logs; waits
//!   with deadlines, SIGTERM, SIGKILL, kill on drop.
//! - [`relay`], [`gateway`], [`receiver`]: relayd, gatewayd and faxrecv
//!   started and ready.
//! - [`rogue`]: a misbehaving device in process, for hostile-input tests.
//! - [`sender`]: running faxsend and reading its exit code and report.
//! - [`fleet`]: the fleet key and device secrets.
//! - [`pki`]: a private CA and relay certificates (`relayd tls`), for TLS tests.
//! - [`http_receiver`]: a real HTTP server that takes webhooks (down for a while, then up).
//! - [`images`]: text-like test pages, and decoded pixels to compare.
//! - [`mail`]: aiosmtpd, smtplib and Python's email package, for the e-mail tests.
//! - [`mesh_peer`]: a peer relay in process that feeds a relay announcements.
//! - [`load`]: fax devices driven in process, for benchmarks and load tests.
//! - [`redis_server`]: a real redis-server on a free port (directory mode),
//!   a Redis Cluster and a Sentinel-watched master to fail over.
//! - [`disk`]: a small disk (tmpfs) for a daemon's data, to fill and free.
//! - [`sys`]: running the system's tools (ip, mount, fallocate) to the end.
//! - [`status`]: the parts of a STATUS= line (`listening on A; admin on B`).
//! - [`testbed`]: one test's temp dir and fleet, with shortcuts to start it all.
//!
//! A typical test:
//!
//! ```no_run
//! use harness::Testbed;
//! let bed = Testbed::new();
//! let relay = bed.relay("relay-a");
//! let (gw1, gw2) = (bed.gateway("gw1", &relay), bed.gateway("gw2", &relay));
//! let _callee = bed.receiver(&gw2, "1002", &[]);
//! bed.faxsend(&gw1, "1001", "1002", &[bed.note()]).run().assert_delivered();
//! ```

pub mod admin;
pub mod bins;
pub mod chaos;
pub mod daemon;
pub mod disk;
pub mod fleet;
pub mod gateway;
pub mod http_receiver;
pub mod images;
pub mod load;
pub mod mail;
pub mod mesh_peer;
pub mod notify;
pub mod pki;
pub mod receiver;
pub mod redis_server;
pub mod relay;
pub mod rogue;
pub mod sender;
pub mod status;
pub mod sys;
pub mod testbed;

pub use bins::bin;
pub use daemon::{Daemon, WAIT};
pub use fleet::Fleet;
pub use gateway::Gateway;
pub use pki::Pki;
pub use receiver::Receiver;
pub use redis_server::{RedisCluster, RedisSentinel, RedisServer};
pub use relay::Relay;
pub use sender::{FaxSend, Running, Sent};
pub use testbed::Testbed;

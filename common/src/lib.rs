//! What relayd, gatewayd, faxsend and faxrecv share.
//!
//! - [`link`]: the one link protocol of every hop: frames, messages, the
//!   yamux multiplexer, handshake, control stream and heartbeats.
//! - [`number`]: fax numbers and call ids.
//! - [`credential`]: device secrets derived from the fleet key.
//! - [`directory`]: connection information records and their merge rule.
//! - [`routing`]: the mesh routing table (paths announced by peers, best next hop).
//! - [`device`]: the fax device's side of a call (used by faxsend, faxrecv and
//!   the benchmarks).
//! - [`codec`]: fax pages: images in, TIFF Class F out, Group 3 and 4.
//! - [`hooks`]: durable, signed webhooks and hook commands (faxrecv
//!   --on-receive, --notify-url).
//! - [`jobs`]: the gateway's fax queue as devices see it (jobs streams, job status).
//! - [`daemon`]: systemd notifications, signals, logging.
//! - [`storage`]: syncing a sled database from async code.
//! - [`throttle`]: failed-login counting per address, per minute.
//! - [`backoff`]: capped exponential backoff with jitter for reconnects.

pub mod backoff;
pub mod codec;
pub mod credential;
pub mod daemon;
pub mod device;
pub mod directory;
pub mod hooks;
pub mod jobs;
pub mod link;
pub mod number;
pub mod routing;
pub mod storage;
pub mod throttle;

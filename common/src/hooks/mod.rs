//! Notifications that must not be lost: signed webhooks and hook commands,
//! queued durably in sled and delivered in the background with retries.
//! faxrecv calls it for every fax received; the gateway's queue for every
//! job state change.
//!
//! - [`signature`]: the `Faxmesh-Signature` header ([`sign`], [`verify`])
//!   and the [`SigningKey`] read from a key file.
//! - [`target`]: where an event goes, a webhook URL or a hook command.
//! - `outbox`: the events in sled, in push order, until acknowledged.
//! - [`notifier`]: [`Notifier`], the handle that pushes and the task that
//!   delivers, with [`Settings`] and [`Stats`].
//! - [`delivery`]: one attempt, through `webhook` (an HTTP POST, and why
//!   hyper) or `command` (`sh -c`, JSON on stdin).
//!
//! # Use
//!
//! ```no_run
//! # async fn example(db: sled::Db, key: common::hooks::SigningKey) -> anyhow::Result<()> {
//! use common::hooks::{Notifier, Settings, Target};
//! use tokio_util::sync::CancellationToken;
//!
//! let notifier = Notifier::open(db.open_tree("notifications")?, Some(key), Settings::default())?;
//! let stop = CancellationToken::new();
//! let delivering = tokio::spawn(notifier.clone().run(stop.clone()));
//! // Returns once the event is on disk; delivery is the task's job.
//! notifier.push(
//!     &Target::url("https://hooks.example.net/fax")?,
//!     &serde_json::json!({"job": 7, "state": "sent"}),
//!     &[],
//! )?;
//! let counts = notifier.stats(); // delivered, failed_attempts, pending
//! stop.cancel();
//! delivering.await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - `push` returns after the event is flushed to disk; a process that
//!   stops (or crashes) later delivers it after its restart.
//! - Events for one target arrive in push order: the oldest is retried
//!   (backoff from [`Settings::first_retry`] doubling to
//!   [`Settings::max_retry`], with jitter) until it is acknowledged, and only
//!   then the next. Targets do not wait for each other.
//! - An acknowledgement is a 2xx answer or a command's exit 0. Delivery is
//!   at least once: an attempt cut by a stop or a crash is made again, so a
//!   receiver that cares deduplicates (faxrecv's bodies carry the call id).
//! - Webhook bodies are signed at each attempt (a fresh timestamp), with
//!   `Content-Type: application/json`. Without a key they go unsigned.
//! - Each failed attempt is logged at WARN with the target and the reason
//!   (the status and the start of the answer, or the command's exit and the
//!   end of its stderr); the key never appears in a log.

mod command;
pub mod delivery;
pub mod notifier;
mod outbox;
pub mod signature;
pub mod target;
mod webhook;

pub use delivery::DeliveryError;
pub use notifier::{Notifier, NotifyError, Settings, Stats};
pub use signature::{KeyError, SIGNATURE_HEADER, SignatureError, SigningKey, sign, verify};
pub use target::{BadUrl, Target};

//! faxrecv, the receiving fax device: logs in with its number through a
//! gateway, answers calls and stores each fax as a TIFF Class F file with a
//! JSON description beside it.
//!
//! - [`cli`]: the command line and exit codes.
//! - [`store`]: writing a fax page by page, synced before each confirmation.
//! - [`device`]: the login, answer and reconnect loop.
//! - [`extras`]: PNG pages and a PDF of each fax (`--png`, `--pdf`).
//! - [`hooks`]: a command and a signed webhook for each fax received
//!   (`--on-receive`, `--notify-url`), through a durable outbox.
//! - [`pause`]: holding a page's confirmation until SIGUSR1 (`--pause-at-page`).
//! - [`slow_line`]: reading calls at a set rate (`--read-rate-kib`, for tests).

pub mod cli;
pub mod device;
pub mod extras;
pub mod hooks;
pub mod pause;
pub mod slow_line;
pub mod store;

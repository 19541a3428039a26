//! Logging to stderr with `tracing`. The level comes from RUST_LOG (default
//! `info`); under journald (JOURNAL_STREAM set) lines carry no timestamp,
//! because the journal adds its own.

use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A line that cannot be written is dropped. By default the subscriber
        // reports the failure with eprintln!, which panics when stderr itself
        // is what failed (EPIPE: the journal or the pipe went away), so every
        // task that logged died: startup panicked, and the SIGTERM task
        // died before it could cancel, leaving the daemon deaf to SIGTERM.
        .log_internal_errors(false)
        .with_target(false);
    // A second init (tests calling run twice) is harmless, so its error is ignored.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        let _ = builder.without_time().with_ansi(false).try_init();
    } else {
        let _ = builder.try_init();
    }
}

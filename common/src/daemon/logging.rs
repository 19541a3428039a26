//! Logging to stderr with `tracing`. The level comes from RUST_LOG, else from
//! the daemon's configuration, else `info`; under journald (JOURNAL_STREAM
//! set) lines carry no timestamp, because the journal adds its own.
//!
//! The filter sits behind a reload layer, so a daemon can change its level on
//! SIGHUP without restarting ([`LogControl::set_level`]).

use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

/// Changes the log level of a running process.
#[derive(Debug)]
pub struct LogControl {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    /// RUST_LOG, when set: it wins over the configuration, now and on reload.
    from_env: Option<String>,
    /// The level from the configuration in force (or the default).
    level: Mutex<String>,
}

/// What [`LogControl::set_level`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum LevelChange {
    Unchanged,
    /// The configured level changed from the first to the second.
    Changed(String, String),
    /// The configured level changed, but RUST_LOG is set and keeps winning.
    OverriddenByEnv(String),
}

/// Sets up logging; `level` is the configured level (None: `default_level`).
pub fn init(default_level: &str) -> LogControl {
    init_with(None, default_level)
}

/// Sets up logging with the configured level (`None`: `default_level`),
/// which RUST_LOG overrides.
pub fn init_with(level: Option<&str>, default_level: &str) -> LogControl {
    let from_env = std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty());
    let level = level.unwrap_or(default_level).to_owned();
    let filter = from_env
        .as_deref()
        .and_then(|s| EnvFilter::try_new(s).ok())
        .or_else(|| EnvFilter::try_new(&level).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    // Colour only for a person at a terminal, never in files or the journal.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        // A line that cannot be written is dropped. By default the subscriber
        // reports the failure with eprintln!, which panics when stderr itself
        // is what failed (EPIPE: the journal or the pipe went away), so every
        // task that logged died: startup panicked, and the SIGTERM task
        // died before it could cancel, leaving the daemon deaf to SIGTERM.
        .log_internal_errors(false)
        .with_target(false)
        .with_ansi(colour);
    // A second init (tests calling run twice) is harmless, so its error is
    // ignored; the handle then points at a filter nobody uses.
    let installed = if std::env::var_os("JOURNAL_STREAM").is_some() {
        registry
            .with(layer.without_time().with_ansi(false))
            .try_init()
    } else {
        registry.with(layer).try_init()
    };
    LogControl {
        handle: installed.is_ok().then_some(handle),
        from_env,
        level: Mutex::new(level),
    }
}

/// Checks a level or filter directive (`info`, `relayd=debug,warn`).
pub fn validate_level(level: &str) -> Result<(), String> {
    EnvFilter::try_new(level).map(|_| ()).map_err(|e| {
        format!("invalid log level '{level}': {e} (use error, warn, info, debug or trace)")
    })
}

impl LogControl {
    /// Applies a newly configured level (RUST_LOG still wins when set).
    pub fn set_level(&self, level: &str) -> Result<LevelChange, String> {
        let filter =
            EnvFilter::try_new(level).map_err(|e| format!("invalid log level '{level}': {e}"))?;
        // Plain string: still valid after a panic elsewhere.
        let mut current = self.level.lock().unwrap_or_else(|p| p.into_inner());
        if *current == level {
            return Ok(LevelChange::Unchanged);
        }
        let old = std::mem::replace(&mut *current, level.to_owned());
        if let Some(env) = &self.from_env {
            return Ok(LevelChange::OverriddenByEnv(env.clone()));
        }
        if let Some(handle) = &self.handle {
            handle.reload(filter).map_err(|e| e.to_string())?;
        }
        Ok(LevelChange::Changed(old, level.to_owned()))
    }

    /// [`LogControl::set_level`] on a reload, saying in the log what it did.
    pub fn reload_level(&self, level: &str) {
        match self.set_level(level) {
            Ok(LevelChange::Changed(a, b)) => tracing::info!("log level: {a} -> {b}"),
            Ok(LevelChange::OverriddenByEnv(env)) => {
                tracing::info!("log level: {level} (RUST_LOG={env} still wins)")
            }
            Ok(LevelChange::Unchanged) => {}
            Err(e) => tracing::warn!("log level not changed: {e}"),
        }
    }
}

//! Plumbing every long-running program shares: systemd notifications,
//! shutdown and reload on signals, logging, configuration files and settings
//! layers, metrics and the admin listener, completions and man pages, and
//! giving memory back after a burst of calls. [`lifecycle`] puts them
//! together: one daemon's accept loop, reload and graceful stop.

pub mod admin_http;
pub mod cli_docs;
pub mod config_file;
pub mod lifecycle;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod settings;
pub mod shutdown;

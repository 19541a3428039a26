//! Settings declared once per key. A daemon's [`settings_layer!`](crate::settings_layer)
//! names each key once, with its flag, environment variable and help; the
//! same struct is the command line (clap) and the config file (TOML, unknown
//! keys refused), and [`over`](crate::settings_layer) merges two of them key
//! by key (flag > environment > file; clap reads the first two).
//!
//! What a reload changes is told by [`Changed`]: a live key's old and new
//! value, or "key: OLD -> NEW" for a key that needs a restart.

use std::fmt::Display;

/// Declares a daemon's layer of settings: every key optional, with the clap
/// attributes of its flag (`long`, `env`, `value_name`) and its help as doc
/// comments. The TOML key is the field's name. The keys every daemon has
/// (`heartbeat_secs`, `drain_secs`, `admin`, `log_level`, `max_frame_bytes`)
/// are declared here once, their environment variables named with the
/// daemon's prefix (`env "RELAYD_"`) and the admin help's example address
/// given (`admin "127.0.0.1:9710"`). Generates the struct
/// (`clap::Args`, `serde::Deserialize` refusing unknown keys, `Default`)
/// and `over`, which keeps a key from `self` and takes the rest from `lower`.
///
/// The calling crate depends on `clap` and `serde`, as their derives need.
#[macro_export]
macro_rules! settings_layer {
    (
        $(#[$meta:meta])*
        $vis:vis struct $layer:ident (env $prefix:literal, admin $admin_example:literal) {
            $(
                $(#[$field_meta:meta])*
                $field:ident: $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, ::clap::Args, ::serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $layer {
            $(
                $(#[$field_meta])*
                pub $field: Option<$ty>,
            )*
            // The keys every daemon has, their environment variables under
            // the daemon's prefix. Help without a final period, as clap
            // shows a one-line doc comment.
            #[arg(
                long,
                value_name = "SECS",
                env = concat!($prefix, "HEARTBEAT_SECS"),
                help = "Seconds between heartbeats on every link; a peer silent for three is dead [default: 5]"
            )]
            pub heartbeat_secs: Option<f64>,
            #[arg(
                long,
                value_name = "SECS",
                env = concat!($prefix, "DRAIN_SECS"),
                help = "Seconds calls in flight may take to finish after SIGTERM [default: 30]"
            )]
            pub drain_secs: Option<u64>,
            #[arg(
                long,
                value_name = "ADDR",
                env = concat!($prefix, "ADMIN"),
                help = concat!(
                    "Serve Prometheus /metrics and /healthz over HTTP on ADDR, e.g. ",
                    $admin_example,
                    " [default: off]"
                )
            )]
            pub admin: Option<::std::net::SocketAddr>,
            #[arg(
                long,
                value_name = "LEVEL",
                env = concat!($prefix, "LOG_LEVEL"),
                help = "Log level or filter (error, warn, info, debug, trace); RUST_LOG wins [default: info]"
            )]
            pub log_level: Option<String>,
            #[arg(
                long,
                value_name = "BYTES",
                env = concat!($prefix, "MAX_FRAME_BYTES"),
                help = "Largest frame accepted on any link (132096 to 67108864) [default: 1048576]"
            )]
            pub max_frame_bytes: Option<usize>,
        }

        impl $layer {
            /// `self` wins over `lower`, key by key.
            pub fn over(self, lower: $layer) -> $layer {
                $layer {
                    $($field: self.$field.or(lower.$field),)*
                    heartbeat_secs: self.heartbeat_secs.or(lower.heartbeat_secs),
                    drain_secs: self.drain_secs.or(lower.drain_secs),
                    admin: self.admin.or(lower.admin),
                    log_level: self.log_level.or(lower.log_level),
                    max_frame_bytes: self.max_frame_bytes.or(lower.max_frame_bytes),
                }
            }
        }
    };
}

/// What changed between the settings in force and those just loaded.
#[derive(Debug, Default, PartialEq)]
pub struct Changed {
    /// "listen: A -> B" and the like: keys that need a restart.
    pub need_restart: Vec<String>,
}

impl Changed {
    /// A live key: its old and new value when they differ.
    pub fn live<T: PartialEq + Clone>(old: &T, new: &T) -> Option<(T, T)> {
        (old != new).then(|| (old.clone(), new.clone()))
    }

    /// A restart-only key, compared as shown: "key: OLD -> NEW" when the two
    /// differ.
    pub fn restart(&mut self, key: &str, old: impl Display, new: impl Display) -> &mut Self {
        let (old, new) = (old.to_string(), new.to_string());
        if old != new {
            self.need_restart.push(format!("{key}: {old} -> {new}"));
        }
        self
    }

    /// A group of restart-only keys reported as one line (`what`) when any
    /// of them changed.
    pub fn restart_group<T: PartialEq>(&mut self, what: &str, old: &T, new: &T) -> &mut Self {
        if old != new {
            self.need_restart.push(what.to_owned());
        }
        self
    }
}

/// An optional setting as a reload reports it: its value, or `unset` (the
/// word for what not giving it means: `(default)`, `(none)`).
pub fn shown<T: Display>(value: Option<T>, unset: &str) -> String {
    value.map_or_else(|| unset.to_owned(), |v| v.to_string())
}

/// Adds the restart-only keys every daemon has (`heartbeat_secs`, `admin`)
/// to a [`Changed`], from two settings structs that hold them under those
/// names. A macro, not a function: each daemon has its own settings type.
#[macro_export]
macro_rules! restart_shared_keys {
    ($changed:expr, $old:expr, $new:expr) => {
        $changed
            .restart("heartbeat_secs", $old.heartbeat_secs, $new.heartbeat_secs)
            .restart(
                "admin",
                $crate::daemon::settings::shown($old.admin, "(none)"),
                $crate::daemon::settings::shown($new.admin, "(none)"),
            )
    };
}

/// Gives a daemon's `Changes` (a struct with the live `log_level` and
/// `drain_secs` and the `need_restart` list, `Default + PartialEq`) the
/// [`Reload`](crate::daemon::lifecycle::Reload) the daemon skeleton applies.
#[macro_export]
macro_rules! reload_changes {
    ($changes:ty) => {
        impl $changes {
            /// What the skeleton applies and reports, with `applied`, the
            /// settings now in force.
            pub fn into_reload<S>(self, applied: S) -> $crate::daemon::lifecycle::Reload<S> {
                let unchanged = self == <$changes>::default();
                $crate::daemon::lifecycle::Reload::new(
                    applied,
                    self.log_level.map(|(_, level)| level),
                    self.drain_secs,
                    self.need_restart,
                    unchanged,
                )
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_keys_are_reported_as_shown() {
        let mut c = Changed::default();
        c.restart("listen", "a:1", "a:2")
            .restart("name", "x", "x")
            .restart(
                "admin",
                shown(None::<u16>, "(none)"),
                shown(Some(9), "(none)"),
            )
            .restart_group("limits changed", &1, &2);
        assert_eq!(
            c.need_restart,
            ["listen: a:1 -> a:2", "admin: (none) -> 9", "limits changed"]
        );
        assert_eq!(Changed::live(&1, &1), None);
        assert_eq!(Changed::live(&1, &2), Some((1, 2)));
    }
}

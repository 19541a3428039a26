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
/// comments. The TOML key is the field's name. Generates the struct
/// (`clap::Args`, `serde::Deserialize` refusing unknown keys, `Default`)
/// and `over`, which keeps a key from `self` and takes the rest from `lower`.
///
/// The calling crate depends on `clap` and `serde`, as their derives need.
#[macro_export]
macro_rules! settings_layer {
    (
        $(#[$meta:meta])*
        $vis:vis struct $layer:ident {
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
        }

        impl $layer {
            /// `self` wins over `lower`, key by key.
            pub fn over(self, lower: $layer) -> $layer {
                $layer {
                    $($field: self.$field.or(lower.$field),)*
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

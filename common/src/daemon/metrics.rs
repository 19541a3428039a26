//! Counters and gauges with help strings, written in Prometheus' text format
//! (version 0.0.4). Each daemon keeps one struct of these (iroh-relay's
//! style), declared with [`metrics_table!`](crate::metrics_table) so each
//! counter's name and help sit beside its field, and renders it on
//! `GET /metrics` of its admin listener. [`CallCounters`] counts a call's
//! end the same way in every daemon.
//!
//! Atomics for the plain counters: the hot paths only add. Labelled families
//! (calls by result, errors by kind) take a std Mutex, held for one map
//! update and never across an await; they change once per call or error.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::link::splice::HopEnd;

/// A number that only grows.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters told apart by labels, e.g. `calls_total{result="relayed"}`.
#[derive(Debug, Default)]
pub struct Family {
    values: Mutex<BTreeMap<Vec<(&'static str, String)>, u64>>,
}

impl Family {
    pub fn inc(&self, labels: &[(&'static str, &str)]) {
        self.add(labels, 1);
    }

    pub fn add(&self, labels: &[(&'static str, &str)], n: u64) {
        let key = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        // A plain map: still consistent after a panic elsewhere.
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        *values.entry(key).or_default() += n;
    }

    /// The value for exactly these labels (0 if never counted).
    pub fn get(&self, labels: &[(&'static str, &str)]) -> u64 {
        let key: Vec<_> = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values.get(&key).copied().unwrap_or(0)
    }

    fn snapshot(&self) -> Vec<(Vec<(&'static str, String)>, u64)> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Builds the text a scrape returns.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn counter(&mut self, name: &str, help: &str, counter: &Counter) -> &mut Self {
        self.header(name, help, "counter");
        let _ = writeln!(self.text, "{name} {}", counter.get());
        self
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        self.header(name, help, "gauge");
        let _ = writeln!(self.text, "{name} {value}");
        self
    }

    /// A labelled family of counters; families never counted show no samples.
    pub fn family(&mut self, name: &str, help: &str, family: &Family) -> &mut Self {
        self.header(name, help, "counter");
        for (labels, value) in family.snapshot() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(self.text, "{name}{{{}}} {value}", labels.join(","));
        }
        self
    }

    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.text)
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }
}

/// A counter or family a [`metrics_table!`](crate::metrics_table) serves.
pub trait Metric {
    /// Writes this metric under `name` with its `help`.
    fn expose(&self, out: &mut Exposition, name: &str, help: &str);
}

impl Metric for Counter {
    fn expose(&self, out: &mut Exposition, name: &str, help: &str) {
        out.counter(name, help, self);
    }
}

impl Metric for Family {
    fn expose(&self, out: &mut Exposition, name: &str, help: &str) {
        out.family(name, help, self);
    }
}

/// Declares a daemon's table of counters: each field with the metric name
/// and help text it is served under, so the two never drift apart, and the
/// gauges read from the daemon's state (`for Daemon as d`: each value an
/// expression of `d`). The struct gets `Default`; `render`, the whole page;
/// `expose`, which writes every counter in the order declared; `error(kind)`; `call_counters()`; and [`DaemonMetrics`], which
/// the daemon skeleton counts failed accepts and reloads with. So every
/// table has the fields `calls`, `call_pages`, `call_bytes`, `errors` and
/// `reloads`.
///
/// ```
/// common::metrics_table! {
///     /// What a toy daemon counts.
///     pub struct ToyMetrics for u64 as up {
///         gauges {
///             "toy_up", "Links up." => *up,
///         }
///         /// Links accepted.
///         links: Counter = ("toy_links_total", "Links accepted."),
///         calls: Family = ("toy_calls_total", "Calls by result."),
///         call_pages: Counter = ("toy_call_pages_total", "Pages."),
///         call_bytes: Family = ("toy_call_bytes_total", "Bytes."),
///         errors: Family = ("toy_errors_total", "Errors by kind."),
///         reloads: Family = ("toy_reloads_total", "Reloads by result."),
///     }
/// }
/// let m = ToyMetrics::default();
/// m.links.inc();
/// let page = m.render(&3);
/// assert!(page.contains("toy_up 3\n") && page.contains("toy_links_total 1\n"));
/// ```
#[macro_export]
macro_rules! metrics_table {
    (
        $(#[$meta:meta])*
        $vis:vis struct $table:ident for $daemon:ty as $d:ident {
            gauges {
                $($gauge:literal, $gauge_help:literal => $value:expr,)*
            }
            $(
                $(#[$field_meta:meta])*
                $field:ident: $kind:ident = ($name:literal, $help:literal),
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        $vis struct $table {
            $(
                $(#[$field_meta])*
                pub $field: $crate::daemon::metrics::$kind,
            )*
        }

        impl $table {
            /// The gauges read from the daemon, then every counter, in the
            /// order declared.
            pub fn render(&self, $d: &$daemon) -> String {
                let mut out = $crate::daemon::metrics::Exposition::default();
                $(out.gauge($gauge, $gauge_help, $value);)*
                self.expose(&mut out);
                out.finish()
            }

            /// Writes every counter of the table, in the order declared.
            pub fn expose(&self, out: &mut $crate::daemon::metrics::Exposition) {
                $(
                    $crate::daemon::metrics::Metric::expose(&self.$field, out, $name, $help);
                )*
            }

            /// Counts an error by kind.
            pub fn error(&self, kind: &'static str) {
                self.errors.inc(&[("kind", kind)]);
            }

            /// The counters a call's end moves.
            pub fn call_counters(&self) -> $crate::daemon::metrics::CallCounters<'_> {
                $crate::daemon::metrics::CallCounters {
                    calls: &self.calls,
                    pages: &self.call_pages,
                    bytes: &self.call_bytes,
                    errors: &self.errors,
                }
            }
        }

        impl $crate::daemon::metrics::DaemonMetrics for $table {
            fn error(&self, kind: &'static str) {
                $table::error(self, kind);
            }

            fn reloaded(&self, result: &'static str) {
                self.reloads.inc(&[("result", result)]);
            }
        }
    };
}

/// What the daemon skeleton counts in any daemon's table.
pub trait DaemonMetrics: Send + Sync {
    /// Counts an error by kind (`accept`).
    fn error(&self, kind: &'static str);
    /// Counts a reload by result (`applied`, `failed`).
    fn reloaded(&self, result: &'static str);
}

/// The counters a call's end moves, borrowed from a daemon's table.
#[derive(Clone, Copy, Debug)]
pub struct CallCounters<'a> {
    /// Calls by result (and refusal reason).
    pub calls: &'a Family,
    /// Pages the relayed calls announced in their requests.
    pub pages: &'a Counter,
    /// Bytes relayed, by direction (to_callee, to_caller).
    pub bytes: &'a Family,
    /// Errors by kind (call_cut, call_no_request).
    pub errors: &'a Family,
}

impl CallCounters<'_> {
    /// Counts how a call ended; `labels` come before its result (the
    /// gateway's direction), `pages` from its request.
    pub fn ended(&self, labels: &[(&'static str, &str)], end: &HopEnd, pages: Option<u32>) {
        let calls = |result: &[(&'static str, &str)]| {
            let all: Vec<(&'static str, &str)> = labels.iter().chain(result).copied().collect();
            self.calls.inc(&all);
        };
        match end {
            HopEnd::Relayed {
                to_callee,
                to_caller,
            } => {
                calls(&[("result", "relayed")]);
                self.pages.add(u64::from(pages.unwrap_or(0)));
                self.bytes.add(&[("direction", "to_callee")], *to_callee);
                self.bytes.add(&[("direction", "to_caller")], *to_caller);
            }
            HopEnd::Refused(reason) => {
                let reason = reason.to_string().replace(' ', "_");
                calls(&[("result", "refused"), ("reason", &reason)]);
            }
            HopEnd::Cut(_) => {
                calls(&[("result", "cut")]);
                self.errors.inc(&[("kind", "call_cut")]);
            }
            HopEnd::NoRequest(_) => {
                calls(&[("result", "no_request")]);
                self.errors.inc(&[("kind", "call_no_request")]);
            }
        }
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        let calls = Family::default();
        calls.inc(&[("result", "relayed")]);
        calls.add(&[("result", "refused"), ("reason", "busy \"x\"")], 2);
        let bytes = Counter::default();
        bytes.add(10);
        let text = Exposition::default()
            .counter("x_bytes_total", "Bytes.", &bytes)
            .gauge("x_links", "Links up.", 3)
            .family("x_calls_total", "Calls by result.", &calls)
            .finish();
        assert_eq!(
            text,
            "# HELP x_bytes_total Bytes.\n# TYPE x_bytes_total counter\nx_bytes_total 10\n\
             # HELP x_links Links up.\n# TYPE x_links gauge\nx_links 3\n\
             # HELP x_calls_total Calls by result.\n# TYPE x_calls_total counter\n\
             x_calls_total{result=\"refused\",reason=\"busy \\\"x\\\"\"} 2\n\
             x_calls_total{result=\"relayed\"} 1\n"
        );
        assert_eq!(calls.get(&[("result", "relayed")]), 1);
    }
}

//! Counters and gauges with help strings, written in Prometheus' text format
//! (version 0.0.4). Each daemon keeps one struct of these (iroh-relay's
//! style) and renders it on `GET /metrics` of its admin listener.
//!
//! Atomics for the plain counters: the hot paths only add. Labelled families
//! (calls by result, errors by kind) take a std Mutex, held for one map
//! update and never across an await; they change once per call or error.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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

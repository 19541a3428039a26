//! What a relay counts, served as Prometheus text on `--admin ADDR`.
//!
//! A relay splices call streams without parsing them, so it counts calls
//! and bytes, and the pages each relayed call announced in its request (the
//! caller's summary; how many of them the callee confirmed only the devices
//! know).

use common::daemon::metrics::{Counter, Exposition, Family};
use common::link::splice::HopEnd;

use crate::server::Relay;

#[derive(Debug, Default)]
pub struct RelayMetrics {
    /// Calls by result: relayed, refused (with reason), cut, no_request.
    pub calls: Family,
    pub call_pages: Counter,
    /// Bytes relayed, by direction (to_callee, to_caller).
    pub call_bytes: Family,
    /// Device and gateway links accepted.
    pub links_accepted: Counter,
    pub logins: Family,
    /// Directory sync messages by direction (sent, received) and kind.
    pub sync_messages: Family,
    /// Errors by kind.
    pub errors: Family,
    pub reloads: Family,
}

impl RelayMetrics {
    /// Counts how a call ended at this relay; `pages` from its request.
    pub fn call_ended(&self, end: &HopEnd, pages: Option<u32>) {
        match end {
            HopEnd::Relayed {
                to_callee,
                to_caller,
            } => {
                self.calls.inc(&[("result", "relayed")]);
                self.call_pages.add(u64::from(pages.unwrap_or(0)));
                self.call_bytes
                    .add(&[("direction", "to_callee")], *to_callee);
                self.call_bytes
                    .add(&[("direction", "to_caller")], *to_caller);
            }
            HopEnd::Refused(reason) => {
                let reason = reason.to_string().replace(' ', "_");
                self.calls
                    .inc(&[("result", "refused"), ("reason", &reason)]);
            }
            HopEnd::Cut(_) => {
                self.calls.inc(&[("result", "cut")]);
                self.errors.inc(&[("kind", "call_cut")]);
            }
            HopEnd::NoRequest(_) => {
                self.calls.inc(&[("result", "no_request")]);
                self.errors.inc(&[("kind", "call_no_request")]);
            }
        }
    }

    pub fn error(&self, kind: &'static str) {
        self.errors.inc(&[("kind", kind)]);
    }

    pub fn render(&self, relay: &Relay) -> String {
        Exposition::default()
            .gauge(
                "relayd_links",
                "Device and gateway links up at this relay.",
                relay.links_up(),
            )
            .gauge(
                "relayd_peers_up",
                "Peer relays linked to this relay.",
                relay.mesh.peers().len() as u64,
            )
            .gauge(
                "relayd_devices_online",
                "Receiving devices logged in at this relay.",
                relay.online_count() as u64,
            )
            .gauge(
                "relayd_known_numbers",
                "Numbers in the directory (local and learned).",
                relay.mesh.known() as u64,
            )
            .gauge(
                "relayd_calls_in_flight",
                "Calls being relayed now.",
                relay.calls.len() as u64,
            )
            .counter(
                "relayd_links_accepted_total",
                "Device and gateway links accepted.",
                &self.links_accepted,
            )
            .family(
                "relayd_logins_total",
                "Device logins by result (accepted, refused).",
                &self.logins,
            )
            .family(
                "relayd_calls_total",
                "Calls that reached this relay, by result (relayed, refused with reason, cut, no_request).",
                &self.calls,
            )
            .counter(
                "relayd_call_pages_total",
                "Pages announced by the calls this relay relayed (from each call's request).",
                &self.call_pages,
            )
            .family(
                "relayd_call_bytes_total",
                "Bytes of call streams relayed, by direction (to_callee, to_caller).",
                &self.call_bytes,
            )
            .family(
                "relayd_sync_messages_total",
                "Directory sync messages with peer relays, by direction (sent, received) and kind (snapshot, announce, withdraw).",
                &self.sync_messages,
            )
            .family("relayd_errors_total", "Errors by kind.", &self.errors)
            .family(
                "relayd_reloads_total",
                "Configuration reloads (SIGHUP) by result (applied, failed).",
                &self.reloads,
            )
            .finish()
    }
}

//! What a relay counts, served as Prometheus text on `--admin ADDR`.
//!
//! A relay splices call streams without parsing them, so it counts calls
//! and bytes, and the pages each relayed call announced in its request (the
//! caller's summary; how many of them the callee confirmed only the devices
//! know).

use common::link::splice::HopEnd;

/// The relay's state as the gauges show it, read when the page is served.
#[derive(Clone, Copy, Debug, Default)]
pub struct RelayGauges {
    pub links: u64,
    pub peers_up: u64,
    pub devices_online: u64,
    pub known_numbers: u64,
    pub directory_cached: u64,
    pub calls_in_flight: u64,
}

common::metrics_table! {
    /// The relay's counters, each with the name and help it is served under.
    pub struct RelayMetrics for RelayGauges as g {
        gauges {
            "relayd_links",
            "Device and gateway links up at this relay."
                => g.links,
            "relayd_peers_up",
            "Peer relays linked to this relay."
                => g.peers_up,
            "relayd_devices_online",
            "Receiving devices logged in at this relay."
                => g.devices_online,
            "relayd_known_numbers",
            "Numbers in the directory (local and learned)."
                => g.known_numbers,
            "relayd_directory_cached",
            "Records of numbers homed at other relays in the directory-mode cache (at most --directory-cache)."
                => g.directory_cached,
            "relayd_calls_in_flight",
            "Calls being relayed now."
                => g.calls_in_flight,
        }
        /// Device and gateway links accepted.
        links_accepted: Counter = (
            "relayd_links_accepted_total",
            "Device and gateway links accepted."
        ),
        logins: Family = (
            "relayd_logins_total",
            "Device logins by result (accepted, refused)."
        ),
        /// Calls by result: relayed, refused (with reason), cut, no_request.
        calls: Family = (
            "relayd_calls_total",
            "Calls that reached this relay, by result (relayed, refused with reason, cut, no_request)."
        ),
        call_pages: Counter = (
            "relayd_call_pages_total",
            "Pages announced by the calls this relay relayed (from each call's request)."
        ),
        /// Bytes relayed, by direction (to_callee, to_caller).
        call_bytes: Family = (
            "relayd_call_bytes_total",
            "Bytes of call streams relayed, by direction (to_callee, to_caller)."
        ),
        /// Directory sync messages by direction (sent, received) and kind.
        sync_messages: Family = (
            "relayd_sync_messages_total",
            "Directory sync messages with peer relays, by direction (sent, received) and kind (snapshot, announce, withdraw)."
        ),
        /// Errors by kind.
        errors: Family = ("relayd_errors_total", "Errors by kind."),
        reloads: Family = (
            "relayd_reloads_total",
            "Configuration reloads (SIGHUP) by result (applied, failed)."
        ),
    }
}

impl RelayMetrics {
    /// Counts how a call ended at this relay; `pages` from its request.
    pub fn call_ended(&self, end: &HopEnd, pages: Option<u32>) {
        self.call_counters().ended(&[], end, pages);
    }
}

//! What a gateway counts, served as Prometheus text on `--admin ADDR`.
//!
//! The gateway splices call streams without parsing them: it counts calls,
//! the pages each call's request announced, and bytes.

use common::daemon::metrics::{Counter, Exposition, Family};
use common::link::splice::HopEnd;

use crate::server::Gateway;

#[derive(Debug, Default)]
pub struct GatewayMetrics {
    /// Calls by direction (up: from a LAN device; down: from the relay) and result.
    pub calls: Family,
    pub call_pages: Counter,
    pub call_bytes: Family,
    /// Relay links established.
    pub relay_links: Counter,
    pub device_links: Counter,
    pub logins: Family,
    pub errors: Family,
    pub reloads: Family,
}

impl GatewayMetrics {
    pub fn call_ended(&self, direction: &str, end: &HopEnd, pages: Option<u32>) {
        match end {
            HopEnd::Relayed {
                to_callee,
                to_caller,
            } => {
                self.calls
                    .inc(&[("direction", direction), ("result", "relayed")]);
                self.call_pages.add(u64::from(pages.unwrap_or(0)));
                self.call_bytes
                    .add(&[("direction", "to_callee")], *to_callee);
                self.call_bytes
                    .add(&[("direction", "to_caller")], *to_caller);
            }
            HopEnd::Refused(reason) => {
                let reason = reason.to_string().replace(' ', "_");
                self.calls.inc(&[
                    ("direction", direction),
                    ("result", "refused"),
                    ("reason", &reason),
                ]);
            }
            HopEnd::Cut(_) => {
                self.calls
                    .inc(&[("direction", direction), ("result", "cut")]);
                self.error("call_cut");
            }
            HopEnd::NoRequest(_) => {
                self.calls
                    .inc(&[("direction", direction), ("result", "no_request")]);
                self.error("call_no_request");
            }
        }
    }

    pub fn error(&self, kind: &'static str) {
        self.errors.inc(&[("kind", kind)]);
    }

    pub fn render(&self, gw: &Gateway) -> String {
        Exposition::default()
            .gauge(
                "gatewayd_relay_link_up",
                "1 while the gateway is linked to a relay.",
                u64::from(gw.uplink.current().is_some()),
            )
            .gauge(
                "gatewayd_devices_online",
                "Receiving devices logged in through this gateway.",
                gw.online_count() as u64,
            )
            .gauge(
                "gatewayd_calls_in_flight",
                "Calls being carried now.",
                gw.calls.len() as u64,
            )
            .counter(
                "gatewayd_relay_links_total",
                "Relay links established (1 plus reconnects and failovers).",
                &self.relay_links,
            )
            .counter(
                "gatewayd_device_links_total",
                "Device links accepted.",
                &self.device_links,
            )
            .family(
                "gatewayd_logins_total",
                "Device logins by result (accepted, refused).",
                &self.logins,
            )
            .family(
                "gatewayd_calls_total",
                "Calls by direction (up: from a LAN device, down: to one) and result (relayed, refused with reason, cut, no_request).",
                &self.calls,
            )
            .counter(
                "gatewayd_call_pages_total",
                "Pages announced by the calls carried (from each call's request).",
                &self.call_pages,
            )
            .family(
                "gatewayd_call_bytes_total",
                "Bytes of call streams carried, by direction (to_callee, to_caller).",
                &self.call_bytes,
            )
            .family("gatewayd_errors_total", "Errors by kind.", &self.errors)
            .family(
                "gatewayd_reloads_total",
                "Configuration reloads (SIGHUP) by result (applied, failed).",
                &self.reloads,
            )
            .finish()
    }
}

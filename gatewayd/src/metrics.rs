//! What a gateway counts, served as Prometheus text on `--admin ADDR`.
//!
//! The gateway splices call streams without parsing them: it counts calls,
//! the pages each call's request announced, and bytes.

use common::link::splice::HopEnd;

/// The gateway's state as the gauges show it, read when the page is served.
#[derive(Clone, Copy, Debug, Default)]
pub struct GatewayGauges {
    pub relay_link_up: bool,
    pub devices_online: u64,
    pub calls_in_flight: u64,
    /// Jobs in the queue by state (not ended).
    pub jobs_queued: u64,
    pub jobs_scheduled: u64,
    pub jobs_sending: u64,
    pub jobs_waiting: u64,
    /// Age of the oldest job not ended, in seconds.
    pub oldest_job_secs: u64,
    /// Job events (webhooks, hook command).
    pub notifications_delivered: u64,
    pub notifications_failed: u64,
    pub notifications_pending: u64,
    /// Mails waiting in the outbox for the smarthost.
    pub mail_spool_depth: u64,
}

common::metrics_table! {
    /// The gateway's counters, each with the name and help it is served under.
    pub struct GatewayMetrics for GatewayGauges as g {
        gauges {
            "gatewayd_relay_link_up",
            "1 while the gateway is linked to a relay."
                => u64::from(g.relay_link_up),
            "gatewayd_devices_online",
            "Receiving devices logged in through this gateway."
                => g.devices_online,
            "gatewayd_calls_in_flight",
            "Calls being carried now."
                => g.calls_in_flight,
            "gatewayd_jobs_queued", "Queued jobs to be tried at once." => g.jobs_queued,
            "gatewayd_jobs_scheduled", "Queued jobs waiting for their send time." => g.jobs_scheduled,
            "gatewayd_jobs_sending", "Queued jobs with a call under way." => g.jobs_sending,
            "gatewayd_jobs_waiting", "Queued jobs waiting for their next try." => g.jobs_waiting,
            "gatewayd_oldest_job_seconds",
            "Age of the oldest queued job that has not ended."
                => g.oldest_job_secs,
            "gatewayd_notifications_delivered",
            "Job events delivered (webhook answered 2xx, hook exited 0) since start."
                => g.notifications_delivered,
            "gatewayd_notifications_failed",
            "Failed deliveries of job events since start (each is retried)."
                => g.notifications_failed,
            "gatewayd_notifications_pending",
            "Job events not delivered yet."
                => g.notifications_pending,
            "gatewayd_mail_spool_depth",
            "Mails (faxes of mail devices, status mails) waiting for the smarthost."
                => g.mail_spool_depth,
        }
        jobs_ended: Family = (
            "gatewayd_jobs_ended_total",
            "Queued jobs ended, by state (done, failed, canceled)."
        ),
        /// Relay links established.
        relay_links: Counter = (
            "gatewayd_relay_links_total",
            "Relay links established (1 plus reconnects and failovers)."
        ),
        device_links: Counter = ("gatewayd_device_links_total", "Device links accepted."),
        logins: Family = (
            "gatewayd_logins_total",
            "Device logins by result (accepted, refused)."
        ),
        /// Calls by direction (up: from a LAN device; down: from the relay) and result.
        calls: Family = (
            "gatewayd_calls_total",
            "Calls by direction (up: from a LAN device, down: to one) and result (relayed, refused with reason, cut, no_request)."
        ),
        call_pages: Counter = (
            "gatewayd_call_pages_total",
            "Pages announced by the calls carried (from each call's request)."
        ),
        call_bytes: Family = (
            "gatewayd_call_bytes_total",
            "Bytes of call streams carried, by direction (to_callee, to_caller)."
        ),
        errors: Family = ("gatewayd_errors_total", "Errors by kind."),
        smtp_mails: Family = (
            "gatewayd_smtp_mails_total",
            "Mails received by SMTP, by result (accepted, or the reason it was refused)."
        ),
        smtp_auth: Family = (
            "gatewayd_smtp_auth_total",
            "SMTP AUTH attempts by result (accepted, rejected, throttled)."
        ),
        mail_faxes_queued: Counter = (
            "gatewayd_mail_faxes_queued_total",
            "Faxes (one per recipient) queued from mail."
        ),
        mails_sent: Family = (
            "gatewayd_mails_sent_total",
            "Mails the smarthost accepted, by kind (fax, status)."
        ),
        mail_retries: Counter = (
            "gatewayd_mail_retries_total",
            "Failed tries to hand a mail to the smarthost (each is retried)."
        ),
        reloads: Family = (
            "gatewayd_reloads_total",
            "Configuration reloads (SIGHUP) by result (applied, failed)."
        ),
    }
}

impl GatewayMetrics {
    /// Counts how a call ended; `direction` is up (from a LAN device) or
    /// down (from the relay), `pages` from its request.
    pub fn call_ended(&self, direction: &str, end: &HopEnd, pages: Option<u32>) {
        self.call_counters()
            .ended(&[("direction", direction)], end, pages);
    }
}

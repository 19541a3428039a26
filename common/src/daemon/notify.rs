//! systemd's notify protocol (READY=1, STATUS=, RELOADING=1, STOPPING=1,
//! WATCHDOG=1). Without NOTIFY_SOCKET these do nothing, so they are safe to
//! call anywhere.
//!
//! Tests rely on the STATUS line that accompanies READY=1: it names the
//! address the daemon bound, which is how they learn a port chosen with `:0`.

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells systemd the daemon is ready, with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Updates the status line (`systemctl status` shows it).
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Says a configuration reload started; follow with [`ready`] once applied.
/// systemd wants the monotonic time with RELOADING=1 (Type=notify-reload).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading configuration"),
        ]),
        Err(_) => send(&[
            NotifyState::Reloading,
            NotifyState::Status("reloading configuration"),
        ]),
    }
}

/// Says the daemon is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Pets the watchdog.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// The watchdog period systemd asked for (WatchdogSec=), if any.
pub fn watchdog_period() -> Option<Duration> {
    // Without a socket to pet there is no watchdog, whatever WATCHDOG_USEC says.
    std::env::var_os("NOTIFY_SOCKET")?;
    sd_notify::watchdog_enabled()
}

/// How often to pet the watchdog: half its period, as sd_watchdog_enabled(3)
/// advises; `None` when systemd asked for no watchdog.
pub fn watchdog_interval() -> Option<tokio::time::Interval> {
    let period = watchdog_period()?;
    let mut interval = tokio::time::interval(period / 2);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Some(interval)
}

/// Ticks of an optional interval; never fires for `None`. For `select!`.
pub async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

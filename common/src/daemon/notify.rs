//! systemd's notify protocol (READY=1, STATUS=, RELOADING=1, STOPPING=1,
//! WATCHDOG=1). Without NOTIFY_SOCKET these do nothing, so they are safe to
//! call anywhere.
//!
//! Sending a datagram blocks when the receiver's queue is full (a busy or
//! stuck service manager, a test that is not reading). A daemon must never
//! stall on that, so callers only record what to say; one thread of our own
//! sends it, coalescing status lines while it waits (the newest one wins).
//! `flush` waits, briefly, until everything said has gone out (at exit).
//!
//! Tests rely on the STATUS line that accompanies READY=1: it names the
//! address the daemon bound, which is how they learn a port chosen with `:0`.

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Tells systemd the daemon is ready, with a status line.
pub fn ready(status: &str) {
    post(|p| {
        p.ready = true;
        p.status = Some(status.to_owned());
    });
}

/// Updates the status line (`systemctl status` shows it).
pub fn status(status: &str) {
    post(|p| p.status = Some(status.to_owned()));
}

/// Says a configuration reload started; follow with [`ready`] once applied.
/// systemd wants the monotonic time with RELOADING=1 (Type=notify-reload).
pub fn reloading() {
    post(|p| {
        p.reloading = true;
        p.status = Some("reloading configuration".to_owned());
    });
}

/// Says the daemon is stopping.
pub fn stopping() {
    post(|p| {
        p.stopping = true;
        p.status = Some("stopping".to_owned());
    });
}

/// Pets the watchdog.
pub fn watchdog() {
    post(|p| p.watchdog = true);
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

/// Waits up to `limit` until every notification said so far has been sent.
pub fn flush(limit: Duration) {
    let Some(n) = NOTIFIER.get() else { return };
    let deadline = Instant::now() + limit;
    let mut st = n.lock();
    while st.sent < st.posted {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        st = n
            .wake
            .wait_timeout(st, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

#[derive(Default)]
struct State {
    reloading: bool,
    ready: bool,
    stopping: bool,
    watchdog: bool,
    status: Option<String>,
    /// Notifications recorded, and how many of them have been sent.
    posted: u64,
    sent: u64,
}

impl State {
    fn is_empty(&self) -> bool {
        !self.reloading && !self.ready && !self.stopping && !self.watchdog && self.status.is_none()
    }
}

struct Notifier {
    state: Mutex<State>,
    /// Wakes the sender when there is something to say, and `flush` when it is said.
    wake: Condvar,
}

impl Notifier {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain flags: still meaningful after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

static NOTIFIER: OnceLock<Notifier> = OnceLock::new();

fn post(f: impl FnOnce(&mut State)) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let n = NOTIFIER.get_or_init(|| {
        std::thread::Builder::new()
            .name("sd-notify".into())
            .spawn(send_loop)
            .map_err(|e| tracing::warn!(error = %e, "cannot start the notify thread"))
            .ok();
        Notifier {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        }
    });
    let mut st = n.lock();
    f(&mut st);
    st.posted += 1;
    n.wake.notify_all();
}

fn send_loop() {
    // The notifier is set right after this thread is spawned; wait for it.
    let n = loop {
        if let Some(n) = NOTIFIER.get() {
            break n;
        }
        std::thread::yield_now();
    };
    loop {
        let (taken, upto) = {
            let mut st = n.lock();
            while st.is_empty() {
                st = n.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            let taken = State {
                reloading: std::mem::take(&mut st.reloading),
                ready: std::mem::take(&mut st.ready),
                stopping: std::mem::take(&mut st.stopping),
                watchdog: std::mem::take(&mut st.watchdog),
                status: st.status.take(),
                ..State::default()
            };
            (taken, st.posted)
        };
        if taken.reloading {
            // Its own datagram, before a READY=1 that may be pending too.
            let mut reload = vec![NotifyState::Reloading];
            if let Ok(now) = NotifyState::monotonic_usec_now() {
                reload.push(now);
            }
            if let Err(e) = sd_notify::notify(&reload) {
                tracing::warn!(error = %e, "cannot notify systemd");
            }
        }
        let mut states = Vec::new();
        if taken.ready {
            states.push(NotifyState::Ready);
        }
        if let Some(s) = &taken.status {
            states.push(NotifyState::Status(s));
        }
        if taken.stopping {
            states.push(NotifyState::Stopping);
        }
        if taken.watchdog {
            states.push(NotifyState::Watchdog);
        }
        if !states.is_empty()
            && let Err(e) = sd_notify::notify(&states)
        {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
        let mut st = n.lock();
        st.sent = st.sent.max(upto);
        n.wake.notify_all();
    }
}

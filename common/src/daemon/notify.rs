//! systemd's notify protocol (READY=1, STATUS=, RELOADING=1, STOPPING=1,
//! WATCHDOG=1). Without NOTIFY_SOCKET these do nothing, so they are safe to
//! call anywhere.
//!
//! Sending a datagram blocks when the receiver's queue is full (a busy or
//! stuck service manager, a test that is not reading). A daemon must never
//! stall on that, so callers only queue what to say, in order, and one
//! thread of our own sends it. The queue is bounded: when it overflows, the
//! oldest plain status line (or watchdog ping) goes, never a READY, RELOADING
//! or STOPPING. `flush` waits, briefly, until everything queued is sent (at
//! exit).
//!
//! Tests rely on the STATUS line that accompanies READY=1: it names the
//! address the daemon bound, which is how they learn a port chosen with `:0`.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Tells systemd the daemon is ready, with a status line.
pub fn ready(status: &str) {
    post(Message {
        ready: true,
        status: Some(status.to_owned()),
        ..Message::default()
    });
}

/// Updates the status line (`systemctl status` shows it).
pub fn status(status: &str) {
    post(Message {
        status: Some(status.to_owned()),
        ..Message::default()
    });
}

/// Says a configuration reload started; follow with [`ready`] once applied.
/// systemd wants the monotonic time with RELOADING=1 (Type=notify-reload).
pub fn reloading() {
    post(Message {
        reloading: true,
        status: Some("reloading configuration".to_owned()),
        ..Message::default()
    });
}

/// Says the daemon is stopping.
pub fn stopping() {
    post(Message {
        stopping: true,
        status: Some("stopping".to_owned()),
        ..Message::default()
    });
}

/// Pets the watchdog.
pub fn watchdog() {
    post(Message {
        watchdog: true,
        ..Message::default()
    });
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
    while !st.queue.is_empty() || st.sending {
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

/// Messages waiting at most; beyond, the oldest plain status goes.
const QUEUE: usize = 256;

/// One datagram.
#[derive(Default, Debug)]
struct Message {
    reloading: bool,
    ready: bool,
    stopping: bool,
    watchdog: bool,
    status: Option<String>,
}

impl Message {
    /// A status line or watchdog ping alone: superseded by later ones.
    fn is_plain(&self) -> bool {
        !self.reloading && !self.ready && !self.stopping
    }

    fn states(&self) -> Vec<NotifyState<'_>> {
        let mut states = Vec::new();
        if self.reloading {
            states.push(NotifyState::Reloading);
            if let Ok(now) = NotifyState::monotonic_usec_now() {
                states.push(now);
            }
        }
        if self.ready {
            states.push(NotifyState::Ready);
        }
        if let Some(s) = &self.status {
            states.push(NotifyState::Status(s));
        }
        if self.stopping {
            states.push(NotifyState::Stopping);
        }
        if self.watchdog {
            states.push(NotifyState::Watchdog);
        }
        states
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Message>,
    /// The sender holds a message it has not finished sending.
    sending: bool,
}

struct Notifier {
    state: Mutex<State>,
    /// Wakes the sender when there is something to say, and `flush` when it is said.
    wake: Condvar,
}

impl Notifier {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A queue of plain messages: still meaningful after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

static NOTIFIER: OnceLock<Notifier> = OnceLock::new();

fn post(message: Message) {
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
    push_bounded(&mut st.queue, message, QUEUE);
    n.wake.notify_all();
}

/// Queues `message`; past `cap`, the oldest plain message makes room.
fn push_bounded(queue: &mut VecDeque<Message>, message: Message, cap: usize) {
    queue.push_back(message);
    if queue.len() > cap
        && let Some(i) = queue.iter().position(Message::is_plain)
    {
        queue.remove(i);
    }
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
        let message = {
            let mut st = n.lock();
            st.sending = false;
            n.wake.notify_all();
            loop {
                if let Some(m) = st.queue.pop_front() {
                    st.sending = true;
                    break m;
                }
                st = n.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        if let Err(e) = sd_notify::notify(&message.states()) {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: &str) -> Message {
        Message {
            status: Some(s.into()),
            ..Message::default()
        }
    }

    #[test]
    fn overflow_drops_the_oldest_plain_status_never_ready_or_stopping() {
        let mut q = VecDeque::new();
        push_bounded(
            &mut q,
            Message {
                ready: true,
                ..status("listening on a")
            },
            3,
        );
        push_bounded(&mut q, status("one"), 3);
        push_bounded(&mut q, status("two"), 3);
        push_bounded(
            &mut q,
            Message {
                stopping: true,
                ..status("stopping")
            },
            3,
        );
        let kept: Vec<_> = q
            .iter()
            .map(|m| m.status.clone().unwrap_or_default())
            .collect();
        assert_eq!(kept, ["listening on a", "two", "stopping"]);
        assert!(q[0].ready && q[2].stopping);
    }

    #[test]
    fn a_message_says_reloading_before_ready() {
        let m = Message {
            reloading: true,
            ready: true,
            ..status("x")
        };
        let states: Vec<String> = m.states().iter().map(|s| s.to_string()).collect();
        assert_eq!(states.first().map(String::as_str), Some("RELOADING=1"));
        assert!(states.contains(&"READY=1".to_owned()));
    }
}

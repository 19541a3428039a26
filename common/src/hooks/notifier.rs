//! The notifier: a handle that persists events ([`Notifier::push`]) and the
//! task that delivers them ([`Notifier::run`]), one worker per target with
//! events waiting.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::delivery::{deliver, unix_now};
use super::outbox::{Event, Outbox};
use super::signature::SigningKey;
use super::target::{BadUrl, Target};
use crate::backoff::Backoff;
use crate::link::tls::ClientTls;

/// How deliveries are retried and timed out.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The pause after a first failure; it doubles (with jitter) up to
    /// `max_retry` while the same event keeps failing.
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// A webhook's whole exchange: connect, TLS, request, answer.
    pub http_timeout: Duration,
    /// A hook command's run; then its process group is killed.
    pub command_timeout: Duration,
    /// What https:// receivers' certificates are checked against (the
    /// system's roots by default).
    pub tls: ClientTls,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(5 * 60),
            http_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(60),
            tls: ClientTls::default(),
        }
    }
}

/// Counters for a metrics page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events acknowledged (a 2xx answer, a command's exit 0).
    pub delivered: u64,
    /// Attempts that failed (each retry of an event counts).
    pub failed_attempts: u64,
    /// Events waiting in the outbox.
    pub pending: u64,
}

/// Why an event could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification outbox: {0}")]
    Storage(#[from] sled::Error),
    #[error(transparent)]
    BadUrl(#[from] BadUrl),
    #[error("notification body: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The durable notifier. Cheap to clone: every clone is the same outbox.
#[derive(Clone, Debug)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    outbox: Outbox,
    key: Option<SigningKey>,
    settings: Settings,
    /// A std Mutex, not a tokio one: it is held for a few map operations
    /// and an in-memory sled insert, never across an `.await`.
    queues: Mutex<HashMap<Target, Queue>>,
    /// Tells the delivery task that a target may need a worker.
    wake: Notify,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    pending: AtomicU64,
    stats: watch::Sender<Stats>,
}

/// One target's events, oldest first, and whether a worker delivers them.
#[derive(Debug, Default)]
struct Queue {
    seqs: VecDeque<u64>,
    worker: bool,
}

impl Notifier {
    /// A notifier over `tree`, which it owns alone (one notifier per tree).
    /// Events left by an earlier run are queued again, in their order.
    /// Webhook bodies are signed with `key` when there is one.
    pub fn open(
        tree: sled::Tree,
        key: Option<SigningKey>,
        settings: Settings,
    ) -> Result<Notifier, NotifyError> {
        let (outbox, left) = Outbox::open(tree)?;
        let mut queues: HashMap<Target, Queue> = HashMap::new();
        let pending = left.len() as u64;
        for (seq, target) in left {
            queues.entry(target).or_default().seqs.push_back(seq);
        }
        if pending > 0 {
            tracing::info!(pending, "notification outbox: resuming undelivered events");
        }
        let stats = Stats {
            pending,
            ..Stats::default()
        };
        Ok(Notifier {
            inner: Arc::new(Inner {
                outbox,
                key,
                settings,
                queues: Mutex::new(queues),
                wake: Notify::new(),
                delivered: AtomicU64::new(0),
                failed_attempts: AtomicU64::new(0),
                pending: AtomicU64::new(pending),
                stats: watch::Sender::new(stats),
            }),
        })
    }

    /// Queues `body` for `target` (with `args` after a hook command's own
    /// arguments; ignored for a URL). Returns once the event is on disk:
    /// it blocks for sled's flush, a few milliseconds, so async callers
    /// with many events may want `spawn_blocking`. Delivery happens in
    /// [`Notifier::run`]; a receiver that is down delays it, never the
    /// caller.
    pub fn push(
        &self,
        target: &Target,
        body: &serde_json::Value,
        args: &[PathBuf],
    ) -> Result<(), NotifyError> {
        if let Target::Url(url) = target {
            Target::url(url)?;
        }
        let event = Event {
            target: target.clone(),
            body: serde_json::to_string(body)?,
            args: args.to_vec(),
            queued: unix_now(),
        };
        {
            // The number is taken and queued under the lock, so a target's
            // queue is in sequence order, the order a restart replays.
            let mut queues = self.queues();
            let seq = self.inner.outbox.insert(&event)?;
            queues
                .entry(target.clone())
                .or_default()
                .seqs
                .push_back(seq);
            self.inner.pending.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.outbox.flush()?;
        self.publish();
        self.inner.wake.notify_one();
        Ok(())
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        Stats {
            delivered: self.inner.delivered.load(Ordering::SeqCst),
            failed_attempts: self.inner.failed_attempts.load(Ordering::SeqCst),
            pending: self.inner.pending.load(Ordering::SeqCst),
        }
    }

    /// The counters, updated after every push and every attempt: to wait
    /// for a delivery (`wait_for(|s| s.pending == 0)`) without polling.
    pub fn subscribe(&self) -> watch::Receiver<Stats> {
        self.inner.stats.subscribe()
    }

    /// Delivers events until `stop`: one worker per target with events
    /// waiting, each delivering its target's events in order, retrying the
    /// oldest until it is acknowledged. On `stop`, attempts in flight are
    /// abandoned (a hook command is killed) and their events stay in the
    /// outbox for the next run: delivery is at least once.
    pub async fn run(self, stop: CancellationToken) {
        let mut workers = JoinSet::new();
        loop {
            for target in self.claim_idle_targets() {
                workers.spawn(self.clone().work(target, stop.clone()));
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                // notify_one keeps a permit when nobody waits, so a push
                // between the claim above and this wait is not missed.
                _ = self.inner.wake.notified() => {}
                Some(done) = workers.join_next(), if !workers.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "notification worker failed");
                    }
                }
            }
        }
        // Each worker sees the same token and returns at its next step.
        while workers.join_next().await.is_some() {}
        // A later run starts workers afresh.
        for queue in self.queues().values_mut() {
            queue.worker = false;
        }
    }

    fn queues(&self) -> MutexGuard<'_, HashMap<Target, Queue>> {
        // A panic while holding the lock leaves the map consistent (every
        // change is one statement), so a poisoned lock is still usable.
        self.inner
            .queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Targets with events and no worker; they are marked as having one.
    fn claim_idle_targets(&self) -> Vec<Target> {
        let mut claimed = Vec::new();
        for (target, queue) in self.queues().iter_mut() {
            if !queue.worker && !queue.seqs.is_empty() {
                queue.worker = true;
                claimed.push(target.clone());
            }
        }
        claimed
    }

    /// The oldest event for `target`; `None` (and the worker is released)
    /// when there is none left.
    fn head(&self, target: &Target) -> Option<u64> {
        let mut queues = self.queues();
        let seq = queues.get(target).and_then(|q| q.seqs.front().copied());
        if seq.is_none() {
            queues.remove(target);
        }
        seq
    }

    /// Drops the head of `target`'s queue: delivered, or gone.
    fn pop(&self, target: &Target, seq: u64) {
        if let Some(queue) = self.queues().get_mut(target)
            && queue.seqs.front() == Some(&seq)
        {
            queue.seqs.pop_front();
            self.inner.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn publish(&self) {
        self.inner.stats.send_replace(self.stats());
    }

    /// Delivers `target`'s events in order until none is left or `stop`.
    async fn work(self, target: Target, stop: CancellationToken) {
        let settings = &self.inner.settings;
        let mut backoff = Backoff::new(settings.first_retry, settings.max_retry);
        let mut attempt = 0u32;
        while let Some(seq) = self.head(&target) {
            let event = match self.inner.outbox.get(seq) {
                Ok(Some(event)) => event,
                Ok(None) => {
                    tracing::error!(to = %target, seq, "notification outbox: event gone or unreadable; skipped");
                    self.pop(&target, seq);
                    continue;
                }
                Err(e) => {
                    tracing::error!(to = %target, seq, error = %e, "notification outbox: cannot read event");
                    if !pause(&stop, backoff.next_pause()).await {
                        return;
                    }
                    continue;
                }
            };
            attempt += 1;
            let result = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                r = deliver(&target, &event.body, &event.args, self.inner.key.as_ref(), settings) => r,
            };
            match result {
                Ok(()) => {
                    if let Err(e) = self.inner.outbox.remove(seq).await {
                        // Delivered all the same; a restart delivers it again.
                        tracing::error!(to = %target, seq, error = %e, "notification outbox: cannot remove a delivered event");
                    }
                    self.pop(&target, seq);
                    self.inner.delivered.fetch_add(1, Ordering::SeqCst);
                    self.publish();
                    tracing::info!(to = %target, seq, attempt, "notification delivered");
                    backoff.reset();
                    attempt = 0;
                }
                Err(reason) => {
                    self.inner.failed_attempts.fetch_add(1, Ordering::SeqCst);
                    self.publish();
                    let retry = backoff.next_pause();
                    tracing::warn!(
                        to = %target,
                        seq,
                        attempt,
                        retry_in = %humantime::format_duration(round_ms(retry)),
                        "notification not delivered: {reason}"
                    );
                    if !pause(&stop, retry).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Sleeps `how_long`; false when `stop` came first.
async fn pause(stop: &CancellationToken, how_long: Duration) -> bool {
    tokio::select! {
        biased;
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(how_long) => true,
    }
}

/// Milliseconds are enough in a log line.
fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_retries_start_at_a_second_and_stop_growing_at_five_minutes() {
        let s = Settings::default();
        let mut backoff = Backoff::new(s.first_retry, s.max_retry);
        let pauses: Vec<Duration> = (0..12).map(|_| backoff.next_pause()).collect();
        let steps = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300];
        for (pause, step) in pauses.iter().zip(steps) {
            let step = Duration::from_secs(step);
            assert!(
                *pause >= step / 2 && *pause <= step,
                "{pause:?} not in [{:?}, {step:?}]; all: {pauses:?}",
                step / 2
            );
        }
        assert_eq!(s.http_timeout, Duration::from_secs(10));
        assert_eq!(s.command_timeout, Duration::from_secs(60));
    }
}

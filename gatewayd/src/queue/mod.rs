//! The gateway's fax queue (`faxsend --queue`): jobs on disk ([`store`]),
//! their rules ([`job`]), and here what ties them together (one task per
//! live job places its calls: `crate::job_runner`): every change to a job
//! goes through [`Queue::update`], which stores it (synced) before anyone
//! hears of it, queues an event for every notification target (webhooks
//! and the hook command, delivered by `common::hooks`), and wakes whoever
//! waits for jobs to end. [`Queue::line`] keeps one call at a time per
//! callee, as a fax server does, so jobs to one number take turns instead
//! of finding it busy.

pub mod job;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::hooks::{Notifier, Target};
use common::jobs::{JobId, JobState, JobStatus};
use common::number::Number;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use self::job::Job;
use self::store::{Store, StoreError};

/// Calls a gateway's queue places at once as one number: under a relay's
/// default limit of calls in flight per device (8), leaving room for the
/// device's own calls.
pub const CALLS_PER_SENDER: usize = 4;

/// Permission to place a queued call: held for the call.
#[derive(Debug)]
pub struct Line {
    _sender: OwnedSemaphorePermit,
    _callee: OwnedSemaphorePermit,
}

/// Semaphores by number, made on first use and dropped when unused.
#[derive(Debug, Default)]
struct Slots(Mutex<HashMap<Number, Arc<Semaphore>>>);

impl Slots {
    async fn take(&self, key: &Number, permits: usize) -> OwnedSemaphorePermit {
        let slot = {
            let mut slots = self.0.lock().unwrap_or_else(|p| p.into_inner());
            // Slots nobody holds or waits for go, so the map stays small.
            slots.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < permits);
            slots
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(permits)))
                .clone()
        };
        // The semaphore is never closed.
        slot.acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("a slot is never closed"))
    }
}

/// Milliseconds since 1970, the queue's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How the queue reaches a live job's task.
#[derive(Debug, Default)]
pub struct JobControl {
    /// Cancel asked while a call is under way: stop at a page boundary.
    pub cancel: CancellationToken,
    /// The job changed (altered, canceled): look at it again.
    pub wake: Notify,
}

/// Where the queue's events go.
#[derive(Debug, Clone)]
pub struct Events {
    pub notifier: Notifier,
    /// Every job's events go to these (the gateway's `notify_url`, `job_hook`).
    pub targets: Vec<Target>,
    /// The gateway's name, in every event.
    pub gateway: String,
}

#[derive(Debug)]
pub struct Queue {
    pub store: Store,
    /// `None`: no notification target is configured (per-job webhooks too
    /// need the gateway's signing key, and so an outbox).
    pub events: Option<Events>,
    /// One call at a time per callee.
    lines: Slots,
    /// At most [`CALLS_PER_SENDER`] calls at a time per sending number.
    senders: Slots,
    /// Live jobs' tasks.
    live: Mutex<HashMap<JobId, Arc<JobControl>>>,
    /// One change at a time: read, change, store.
    write: tokio::sync::Mutex<()>,
    /// The id of every job that ended, once stored.
    ended: broadcast::Sender<JobId>,
}

impl Queue {
    /// Opens the queue in `dir`; `events` makes its notifier (over the
    /// database's outbox tree) when notifications are configured.
    pub fn open(
        dir: &std::path::Path,
        events: impl FnOnce(sled::Tree) -> Result<Option<Events>, common::hooks::NotifyError>,
    ) -> anyhow::Result<Queue> {
        let store = Store::open(dir)?;
        let events = events(store.tree("notifications")?)?;
        Ok(Queue {
            store,
            events,
            lines: Slots::default(),
            senders: Slots::default(),
            live: Mutex::new(HashMap::new()),
            write: tokio::sync::Mutex::new(()),
            ended: broadcast::channel(1024).0,
        })
    }

    fn live_lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Arc<JobControl>>> {
        // A plain map: consistent after a panic elsewhere.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a live job's task; its control.
    pub fn track(&self, id: JobId) -> Arc<JobControl> {
        self.live_lock().entry(id).or_default().clone()
    }

    pub fn untrack(&self, id: JobId) {
        self.live_lock().remove(&id);
    }

    pub fn control(&self, id: JobId) -> Option<Arc<JobControl>> {
        self.live_lock().get(&id).cloned()
    }

    /// Waits for the line from `from` to `to`: one call at a time per
    /// callee, and at most [`CALLS_PER_SENDER`] per sending number.
    pub async fn line(&self, from: &Number, to: &Number) -> Line {
        // The callee's line first: a sender's slots held while waiting for
        // one busy callee would keep every other callee waiting too.
        let callee = self.lines.take(to, 1).await;
        let sender = self.senders.take(from, CALLS_PER_SENDER).await;
        Line {
            _sender: sender,
            _callee: callee,
        }
    }

    /// Stores new jobs (their pages are stored already), synced; then
    /// their events.
    pub async fn add(&self, jobs: &[Job]) -> Result<(), StoreError> {
        {
            let _one = self.write.lock().await;
            self.store.put(&jobs.iter().collect::<Vec<_>>())?;
            self.announce(jobs).await;
        }
        // Synced outside the lock: concurrent changes share one sync.
        self.store.sync().await?;
        Ok(())
    }

    /// Queues an event per target for each job (under the write lock, so
    /// each target hears a job's changes in order).
    async fn announce(&self, jobs: &[Job]) {
        let Some(events) = &self.events else { return };
        let now = now_ms();
        let pushes: Vec<(Target, serde_json::Value)> = jobs
            .iter()
            .flat_map(|job| {
                let body = serde_json::json!({
                    "event": job.state(),
                    "gateway": events.gateway,
                    "time_ms": now,
                    "job": job.status,
                });
                let own = job.notify_url.as_deref().and_then(|u| Target::url(u).ok());
                events
                    .targets
                    .iter()
                    .cloned()
                    .chain(own)
                    .map(move |t| (t, body.clone()))
            })
            .collect();
        if pushes.is_empty() {
            return;
        }
        let notifier = events.notifier.clone();
        // push syncs the outbox: off the async threads.
        let pushed = tokio::task::spawn_blocking(move || {
            for (target, body) in &pushes {
                if let Err(e) = notifier.push(target, body, &[]) {
                    tracing::error!(%target, error = %e, "cannot queue a job event");
                }
            }
        })
        .await;
        if let Err(e) = pushed {
            tracing::error!(error = %e, "queueing job events failed");
        }
    }

    /// Changes job `id` with `f` and stores it (synced) before returning
    /// what `f` said and the job as stored; `None` for an unknown job.
    pub async fn update<R>(
        &self,
        id: JobId,
        f: impl FnOnce(&mut Job) -> R,
    ) -> Result<Option<(R, Job)>, StoreError> {
        self.update_with(id, true, f).await
    }

    /// [`Queue::update`], synced only when `sync` says: a change that a
    /// crash may lose (a call starting: after a restart the job is tried
    /// again with the same call id either way) spares the disk a sync.
    pub async fn update_with<R>(
        &self,
        id: JobId,
        sync: bool,
        f: impl FnOnce(&mut Job) -> R,
    ) -> Result<Option<(R, Job)>, StoreError> {
        let (said, job, changed, ended) = {
            let _one = self.write.lock().await;
            let Some(mut job) = self.store.get(id)? else {
                return Ok(None);
            };
            let before = job.clone();
            let said = f(&mut job);
            let changed = job != before;
            if changed {
                self.store.put(&[&job])?;
                if job.state().ended() && !before.state().ended() {
                    // Its pages are no longer needed; the record stays.
                    self.store.drop_pages(id)?;
                }
                log_change(&before, &job);
                if job.state() != before.state() {
                    self.announce(std::slice::from_ref(&job)).await;
                }
            }
            let ended = job.state().ended() && !before.state().ended();
            (said, job, changed, ended)
        };
        if changed && sync {
            // Synced outside the lock: concurrent changes share one sync.
            self.store.sync().await?;
        }
        if ended {
            // Nobody may be waiting: no receiver is fine.
            let _ = self.ended.send(id);
        }
        Ok(Some((said, job)))
    }

    /// The id of each job as it ends, from now on.
    pub fn subscribe_ended(&self) -> broadcast::Receiver<JobId> {
        self.ended.subscribe()
    }

    /// Waits until each of `ids` has ended (or is unknown). Each job is
    /// read once, then crossed off as the queue says it ended (read again
    /// only if this waiter fell behind).
    pub async fn wait_ended(&self, ids: &[JobId]) -> Result<(), StoreError> {
        let mut ended = self.ended.subscribe();
        let mut open = self.still_open(ids.iter().copied())?;
        while !open.is_empty() {
            match ended.recv().await {
                Ok(id) => {
                    open.remove(&id);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    open = self.still_open(open.iter().copied())?;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        Ok(())
    }

    fn still_open(
        &self,
        ids: impl Iterator<Item = JobId>,
    ) -> Result<std::collections::HashSet<JobId>, StoreError> {
        let mut open = std::collections::HashSet::new();
        for id in ids {
            if self.store.get(id)?.is_some_and(|j| !j.state().ended()) {
                open.insert(id);
            }
        }
        Ok(open)
    }

    /// Jobs by state, and the oldest waiting one's age, for metrics.
    pub fn depth(&self) -> (HashMap<JobState, u64>, u64) {
        let now = now_ms();
        let mut by_state = HashMap::new();
        let mut oldest = 0;
        for job in self.store.all(None).unwrap_or_default() {
            let s = &job.status;
            *by_state.entry(s.state).or_insert(0) += 1;
            if !s.state.ended() {
                oldest = oldest.max(now.saturating_sub(s.created_ms));
            }
        }
        (by_state, oldest)
    }
}

fn log_change(before: &Job, after: &Job) {
    let s: &JobStatus = &after.status;
    if before.state() != s.state {
        tracing::info!(
            job = s.id,
            from = %s.from,
            to = %s.to,
            state = %s.state,
            reason = %s.reason,
            tries = s.tries,
            pages_confirmed = s.pages_confirmed,
            "job {}",
            s.state
        );
    }
}

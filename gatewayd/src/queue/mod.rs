//! The gateway's fax queue (`faxsend --queue`): jobs on disk ([`store`]),
//! their rules ([`job`]), and here what ties them together (one task per
//! live job places its calls: `crate::job_runner`): every change to a job
//! goes through [`Queue::update`], which stores it (synced) before anyone
//! hears of it, and wakes whoever waits for jobs to end.

pub mod job;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::jobs::{JobId, JobState, JobStatus};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use self::job::Job;
use self::store::{Store, StoreError};

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

#[derive(Debug)]
pub struct Queue {
    pub store: Store,
    /// Live jobs' tasks.
    live: Mutex<HashMap<JobId, Arc<JobControl>>>,
    /// One change at a time: read, change, store.
    write: tokio::sync::Mutex<()>,
    /// Bumped after every stored change.
    changed: watch::Sender<u64>,
}

impl Queue {
    pub fn open(dir: &std::path::Path) -> Result<Queue, StoreError> {
        Ok(Queue {
            store: Store::open(dir)?,
            live: Mutex::new(HashMap::new()),
            write: tokio::sync::Mutex::new(()),
            changed: watch::channel(0).0,
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

    /// Stores new jobs (their pages are stored already), synced.
    pub async fn add(&self, jobs: &[Job]) -> Result<(), StoreError> {
        let _one = self.write.lock().await;
        self.store.commit(&jobs.iter().collect::<Vec<_>>()).await?;
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Changes job `id` with `f` and stores it (synced) before returning
    /// what `f` said and the job as stored; `None` for an unknown job.
    pub async fn update<R>(
        &self,
        id: JobId,
        f: impl FnOnce(&mut Job) -> R,
    ) -> Result<Option<(R, Job)>, StoreError> {
        let _one = self.write.lock().await;
        let Some(mut job) = self.store.get(id)? else {
            return Ok(None);
        };
        let before = job.clone();
        let said = f(&mut job);
        if job != before {
            self.store.commit(&[&job]).await?;
            if job.state().ended() && !before.state().ended() {
                // Its pages are no longer needed; the record stays.
                self.store.drop_pages(id)?;
            }
            self.changed.send_modify(|n| *n += 1);
            log_change(&before, &job);
        }
        Ok(Some((said, job)))
    }

    /// Waits until each of `ids` has ended (or is unknown).
    pub async fn wait_ended(&self, ids: &[JobId]) -> Result<(), StoreError> {
        let mut changed = self.changed.subscribe();
        loop {
            let mut open = false;
            for &id in ids {
                if let Some(job) = self.store.get(id)? {
                    open |= !job.state().ended();
                }
            }
            if !open || changed.changed().await.is_err() {
                return Ok(());
            }
        }
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

//! A device's requests to the gateway's queue, one per jobs stream (see
//! `common::jobs`): submit a fax (its pages are stored as they arrive, the
//! relay issues each job's credential, then the jobs are stored and synced
//! before the answer), list, wait for, cancel or alter the number's jobs.
//! A request acts only for a number logged in on the same device link.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::codec::EncodedPage;
use common::device::answer::MAX_PAGE_BYTES;
use common::jobs::{
    JobChange, JobId, JobRequest, JobResponse, JobStatus, Recipient, Schedule, Submission,
};
use common::link::frame;
use common::link::mux::MuxStream;
use common::link::pages;
use common::number::Number;
use tokio::io::AsyncWriteExt;

use crate::gateway::Gateway;
use crate::gateway_core::DeviceLinkId;
use crate::job_runner;
use crate::metrics::GatewayMetrics;
use crate::queue::job::{Cancel, Job};
use crate::queue::{Queue, now_ms};

/// Most recipients of one submission.
pub const MAX_RECIPIENTS: usize = 100;
/// Most pages of one job.
pub const MAX_PAGES: u32 = 1000;
/// Most tries of one job.
pub const MAX_TRIES: u32 = 1000;
/// Longest wait for the next page of a submission.
const PAGE_WAIT: Duration = Duration::from_secs(60);

pub async fn serve(
    gw: Arc<Gateway>,
    link: DeviceLinkId,
    mut stream: MuxStream,
    request: JobRequest,
) {
    let kind = match &request {
        JobRequest::Submit(_) => "submit",
        JobRequest::List { .. } => "list",
        JobRequest::Wait { .. } => "wait",
        JobRequest::Cancel { .. } => "cancel",
        JobRequest::Alter { .. } => "alter",
    };
    let from = request.from().clone();
    // A wait may last hours: it is no activity for the idle memory trim.
    let _counted = (kind != "wait").then(|| InFlight::new(&gw.queue_requests));
    let response = match answer(&gw, link, &mut stream, request).await {
        Ok(response) => response,
        Err(reason) => {
            tracing::info!(%from, request = kind, %reason, "queue request refused");
            JobResponse::Refused { reason }
        }
    };
    if let Err(e) = frame::write_msg(&mut stream, &response).await {
        tracing::info!(%from, request = kind, error = %e, "could not answer a queue request");
    }
    let _ = stream.shutdown().await;
}

/// Counts a request while it is served.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(n: &'a AtomicUsize) -> InFlight<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn answer(
    gw: &Arc<Gateway>,
    link: DeviceLinkId,
    stream: &mut MuxStream,
    request: JobRequest,
) -> Result<JobResponse, String> {
    let queue = gw
        .queue
        .as_ref()
        .ok_or("this gateway keeps no queue (gatewayd runs without --state-dir)")?;
    let from = request.from().clone();
    if !gw.core().logged_in(link, &from) {
        return Err(format!("{from} is not logged in on this connection"));
    }
    let now = now_ms();
    match request {
        JobRequest::Submit(submission) => submit(gw, queue, stream, submission).await,
        JobRequest::List { jobs, .. } => Ok(JobResponse::Jobs(list(queue, &from, &jobs)?)),
        JobRequest::Wait { jobs, .. } => {
            list(queue, &from, &jobs)?;
            tokio::select! {
                waited = queue.wait_ended(&jobs) => waited.map_err(|e| e.to_string())?,
                _ = gw.closing.cancelled() => return Err("the gateway is stopping".into()),
            }
            Ok(JobResponse::Jobs(list(queue, &from, &jobs)?))
        }
        JobRequest::Cancel { jobs, .. } => {
            let mut changes = Vec::new();
            for id in jobs {
                changes.push(cancel(queue, &gw.metrics, &from, id, now).await?);
            }
            Ok(JobResponse::Changed(changes))
        }
        JobRequest::Alter {
            jobs,
            send_at_ms,
            kill_at_ms,
            ..
        } => {
            let mut changes = Vec::new();
            for id in jobs {
                let change = alter(queue, &from, id, send_at_ms, kill_at_ms, now).await?;
                changes.push(change);
            }
            Ok(JobResponse::Changed(changes))
        }
    }
}

/// The jobs of `from` named in `ids` (all of them when none are named).
fn list(queue: &Queue, from: &Number, ids: &[JobId]) -> Result<Vec<JobStatus>, String> {
    if ids.is_empty() {
        let all = queue.store.all(Some(from)).map_err(|e| e.to_string())?;
        return Ok(all.into_iter().map(|j| j.status).collect());
    }
    ids.iter()
        .map(|&id| match queue.store.get(id) {
            Ok(Some(job)) if job.status.from == *from => Ok(job.status),
            Ok(_) => Err(format!("no job {id} of {from} on this gateway")),
            Err(e) => Err(e.to_string()),
        })
        .collect()
}

fn unknown(id: JobId) -> JobChange {
    JobChange {
        id,
        changed: false,
        message: "no such job".into(),
    }
}

async fn cancel(
    queue: &Queue,
    gw_metrics: &GatewayMetrics,
    from: &Number,
    id: JobId,
    now: u64,
) -> Result<JobChange, String> {
    if list(queue, from, &[id]).is_err() {
        return Ok(unknown(id));
    }
    let done = queue
        .update(id, |job| job.cancel(now))
        .await
        .map_err(|e| e.to_string())?;
    let Some((cancel, _)) = done else {
        return Ok(unknown(id));
    };
    let control = queue.control(id);
    let (changed, message) = match cancel {
        Cancel::Now => {
            if let Some(c) = control {
                c.wake.notify_one();
            }
            gw_metrics.jobs_ended.inc(&[("state", "canceled")]);
            (true, "canceled".to_owned())
        }
        Cancel::AtPageBoundary => {
            if let Some(c) = control {
                c.cancel.cancel();
            }
            (
                true,
                "canceled at the next page boundary (the callee keeps the pages it confirmed)"
                    .to_owned(),
            )
        }
        Cancel::Ended(state) => (false, format!("already {state}; nothing changed")),
    };
    Ok(JobChange {
        id,
        changed,
        message,
    })
}

async fn alter(
    queue: &Queue,
    from: &Number,
    id: JobId,
    send_at: Option<u64>,
    kill_at: Option<u64>,
    now: u64,
) -> Result<JobChange, String> {
    if list(queue, from, &[id]).is_err() {
        return Ok(unknown(id));
    }
    let done = queue
        .update(id, |job| job.alter(send_at, kill_at, now))
        .await
        .map_err(|e| e.to_string())?;
    let Some((result, _)) = done else {
        return Ok(unknown(id));
    };
    if let Some(c) = queue.control(id) {
        c.wake.notify_one();
    }
    Ok(match result {
        Ok(()) => JobChange {
            id,
            changed: true,
            message: "altered".into(),
        },
        Err(message) => JobChange {
            id,
            changed: false,
            message,
        },
    })
}

/// Checks a submission's schedule at `now`.
pub fn check_schedule(s: &Submission, now: u64) -> Result<(), String> {
    let sched: &Schedule = &s.schedule;
    if s.recipients.is_empty() || s.recipients.len() > MAX_RECIPIENTS {
        return Err(format!(
            "a queued fax needs 1 to {MAX_RECIPIENTS} recipients, not {}",
            s.recipients.len()
        ));
    }
    if let Some(r) = s
        .recipients
        .iter()
        .find(|r| r.pages == 0 || r.pages > MAX_PAGES)
    {
        return Err(format!(
            "the fax to {} has {} pages; a job takes 1 to {MAX_PAGES}",
            r.to, r.pages
        ));
    }
    if sched.kill_at_ms <= now {
        return Err("the kill time has passed".into());
    }
    if sched.send_at_ms.is_some_and(|at| at >= sched.kill_at_ms) {
        return Err("the send time is not before the kill time".into());
    }
    if !(1..=MAX_TRIES).contains(&sched.max_tries) {
        return Err(format!(
            "max tries {} is not 1 to {MAX_TRIES}",
            sched.max_tries
        ));
    }
    if !(1.0..=10.0).contains(&sched.retry_backoff) {
        return Err(format!(
            "retry backoff {} is not 1 to 10",
            sched.retry_backoff
        ));
    }
    Ok(())
}

async fn submit(
    gw: &Arc<Gateway>,
    queue: &Queue,
    stream: &mut MuxStream,
    submission: Submission,
) -> Result<JobResponse, String> {
    let jobs = queue_fax(gw, queue, &submission, StreamPages(stream), |_| Ok(())).await?;
    Ok(JobResponse::Queued(jobs))
}

/// Where a submission's pages come from, recipient by recipient, page by
/// page in order.
pub trait PageSource: Send {
    fn page(
        &mut self,
        recipient: &Recipient,
        index: u32,
    ) -> impl Future<Output = Result<EncodedPage, String>> + Send;
}

/// Pages a device sends on its jobs stream.
struct StreamPages<'a>(&'a mut MuxStream);

impl PageSource for StreamPages<'_> {
    async fn page(&mut self, recipient: &Recipient, index: u32) -> Result<EncodedPage, String> {
        tokio::time::timeout(PAGE_WAIT, pages::read_page(self.0, index, MAX_PAGE_BYTES))
            .await
            .map_err(|_| {
                format!(
                    "page {index} for {} did not arrive within {PAGE_WAIT:?}",
                    recipient.to
                )
            })?
            .map_err(|e| format!("bad page for {}: {e}", recipient.to))
    }
}

/// The same pages for every recipient.
impl PageSource for &[EncodedPage] {
    async fn page(&mut self, _: &Recipient, index: u32) -> Result<EncodedPage, String> {
        self.get(index as usize)
            .cloned()
            .ok_or_else(|| format!("no page {index}"))
    }
}

/// Queues a fax to each of `submission`'s recipients: checks it, stores
/// each recipient's pages as `next_page` gives them, gets each job's
/// credential, calls `on_stored` with the jobs (before they are stored:
/// whatever it records is there before a job can end), stores and syncs the
/// jobs, and starts them. On any failure nothing of it stays queued.
pub async fn queue_fax(
    gw: &Arc<Gateway>,
    queue: &Queue,
    submission: &Submission,
    next_page: impl PageSource,
    on_stored: impl FnOnce(&[Job]) -> Result<(), String> + Send,
) -> Result<Vec<JobStatus>, String> {
    let now = now_ms();
    check_schedule(submission, now)?;
    if let Some(dir) = &gw.config.state_dir {
        let bytes = submission.recipients.iter().map(|r| r.bytes).sum();
        queue.store.room_for(dir, bytes)?;
    }
    if let Some(url) = &submission.schedule.notify_url {
        common::hooks::Target::url(url).map_err(|e| format!("bad notify URL: {e}"))?;
        if gw.config.notify_key.is_none() {
            return Err("this gateway signs no webhooks (it has no notify_key_file): leave out --notify-url, or ask its operator".into());
        }
    }
    let mut ids = Vec::new();
    let stored = store_submission(gw, queue, submission, &mut ids, now, next_page, on_stored).await;
    match stored {
        Ok(jobs) => {
            let from = &submission.from;
            for job in &jobs {
                let s = &job.status;
                tracing::info!(job = s.id, %from, to = %s.to, pages = s.pages, call = %s.call_id, "job queued");
                job_runner::spawn(gw, s.id);
            }
            Ok(jobs.into_iter().map(|j| j.status).collect())
        }
        Err(reason) => {
            // Nothing half-queued stays behind.
            if let Err(e) = queue.store.discard(&ids).await {
                tracing::error!(error = %e, "could not remove a refused submission");
            }
            Err(reason)
        }
    }
}

/// Stores the pages as they arrive, gets each job's credential, then
/// stores the jobs; `ids` collects every id used, to discard on failure.
async fn store_submission(
    gw: &Arc<Gateway>,
    queue: &Queue,
    submission: &Submission,
    ids: &mut Vec<JobId>,
    now: u64,
    mut next_page: impl PageSource,
    on_stored: impl FnOnce(&[Job]) -> Result<(), String> + Send,
) -> Result<Vec<Job>, String> {
    let cannot_store =
        |e: crate::queue::store::StoreError| format!("the gateway cannot store the fax: {e}");
    for recipient in &submission.recipients {
        let id = queue.store.new_id().map_err(cannot_store)?;
        ids.push(id);
        for index in 0..recipient.pages {
            let page = next_page.page(recipient, index).await?;
            if page.data.len() as u64 > recipient.bytes {
                return Err(format!(
                    "the pages for {} are larger than the {} bytes announced",
                    recipient.to, recipient.bytes
                ));
            }
            // Off the async threads: a write may wait for the disk.
            let store = queue.store.clone();
            tokio::task::spawn_blocking(move || store.put_page(id, index, &page))
                .await
                .map_err(|e| format!("storing a page failed: {e}"))?
                .map_err(cannot_store)?;
        }
    }
    let schedule = &submission.schedule;
    // The credential outlives the job by at most a second.
    let expires_unix = schedule.kill_at_ms.div_ceil(1000);
    let mut jobs = Vec::new();
    for (&id, recipient) in ids.iter().zip(&submission.recipients) {
        let mut job = Job::new(
            id,
            &submission.from,
            recipient,
            schedule,
            String::new(),
            now,
        );
        job.credential = gw
            .uplink
            .job_credential(
                &submission.from,
                &job.status.call_id,
                expires_unix,
                gw.config.link.handshake_timeout,
            )
            .await?;
        jobs.push(job);
    }
    on_stored(&jobs)?;
    queue.add(&jobs).await.map_err(cannot_store)?;
    Ok(jobs)
}

//! One task per live job: sleeps until the job is due, logs its number in at
//! the relay with the job's credential, places the call with the job's call
//! id (so a retry resumes at the callee), and records how it went. What to
//! do when is [`Job::next`]; this only waits and moves bytes.

use std::sync::Arc;
use std::time::Duration;

use common::device::report::{Attempt, Outcome};
use common::device::send::{self, Caller, NoProgress, SendOptions, SendProgress};
use common::jobs::JobId;
use common::link::message::{Login, LoginOutcome, LoginRefusal};

use crate::gateway::Gateway;
use crate::queue::job::{Job, Next};
use crate::queue::{JobControl, now_ms};

/// Starts the task of every job that has not ended (at start-up).
pub fn resume_all(gw: &Arc<Gateway>) {
    let Some(queue) = &gw.queue else { return };
    let jobs = match queue.store.all(None) {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the queue");
            return;
        }
    };
    let live: Vec<JobId> = jobs
        .iter()
        .filter(|j| !j.state().ended())
        .map(Job::id)
        .collect();
    if !live.is_empty() {
        tracing::info!(jobs = live.len(), "resuming queued jobs");
    }
    for id in live {
        spawn(gw, id);
    }
}

/// Starts job `id`'s task.
pub fn spawn(gw: &Arc<Gateway>, id: JobId) {
    let Some(queue) = &gw.queue else { return };
    let control = queue.track(id);
    let gw2 = gw.clone();
    gw.tasks.spawn(async move {
        run(&gw2, id, &control).await;
        if let Some(q) = &gw2.queue {
            q.untrack(id);
        }
    });
}

/// Whether a job's task goes on.
enum Flow {
    Again,
    Stop,
}

/// The job's task. Between calls only a few numbers live here: whatever a
/// call or a change needs is boxed, so thousands of waiting jobs cost
/// little memory (a task of a few hundred bytes each).
async fn run(gw: &Arc<Gateway>, id: JobId, control: &JobControl) {
    let Some(queue) = &gw.queue else { return };
    loop {
        let (next, kill_at) = match queue.store.get(id) {
            Ok(Some(job)) => (job.next(now_ms()), job.status.kill_at_ms),
            Ok(None) => return,
            Err(e) => {
                tracing::error!(job = id, error = %e, "cannot read the job");
                return;
            }
        };
        match next {
            Next::Ended => return,
            Next::Expire => {
                let expired = Box::pin(queue.update(id, |j| j.expire(now_ms()))).await;
                recorded(gw, id, expired);
            }
            Next::At(at) => {
                let pause = Duration::from_millis(at.saturating_sub(now_ms()));
                tokio::select! {
                    _ = gw.draining.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                    _ = control.wake.notified() => {}
                }
            }
            Next::Attempt => {
                if gw.draining.is_cancelled() {
                    return;
                }
                if let Flow::Stop = Box::pin(try_once(gw, id, kill_at, control)).await {
                    return;
                }
            }
        }
    }
}

/// One try of a due job: waits for its line, places the call, records how
/// it went.
async fn try_once(gw: &Arc<Gateway>, id: JobId, kill_at: u64, control: &JobControl) -> Flow {
    let Some(queue) = &gw.queue else {
        return Flow::Stop;
    };
    let Ok(Some(job)) = queue.store.get(id) else {
        return Flow::Stop;
    };
    // One call at a time per callee: wait for the line (or a change to the
    // job, or its kill time).
    let kill_in = Duration::from_millis(kill_at.saturating_sub(now_ms()));
    let _line = tokio::select! {
        line = queue.line(&job.status.from, &job.status.to) => line,
        _ = control.wake.notified() => return Flow::Again,
        _ = tokio::time::sleep(kill_in) => return Flow::Again,
        _ = gw.draining.cancelled() => return Flow::Stop,
    };
    // Unless a cancel or alter came in meanwhile.
    let started = queue
        .update_with(id, false, |j| {
            let go = j.next(now_ms()) == Next::Attempt;
            if go {
                j.start(now_ms());
            }
            go
        })
        .await;
    let job = match started {
        Ok(Some((true, job))) => job,
        Ok(Some((false, _))) => return Flow::Again,
        _ => return Flow::Stop,
    };
    let attempt = attempt(gw, &job, control).await;
    // A cancel that came too late (every page had gone out) leaves a
    // delivered job done.
    let canceled = control.cancel.is_cancelled();
    let ended = queue
        .update(id, |j| match &attempt {
            Tried::Failed(reason) => j.fail(reason.clone(), now_ms()),
            Tried::Called(a) if canceled && a.result != Outcome::Delivered => {
                j.canceled_during_call(a.clone(), now_ms())
            }
            Tried::Called(a) => j.attempt_ended(a.clone(), now_ms()),
        })
        .await;
    recorded(gw, id, ended);
    Flow::Again
}

/// After a job that had not ended changed: counts it when it ended now;
/// a job that could not be stored is tried again (and logged).
fn recorded<R>(
    gw: &Gateway,
    id: JobId,
    update: Result<Option<(R, Job)>, crate::queue::store::StoreError>,
) {
    match update {
        Ok(Some((_, job))) if job.state().ended() => {
            let state = job.state().to_string();
            gw.metrics.jobs_ended.inc(&[("state", &state)]);
        }
        Ok(_) => {}
        Err(e) => tracing::error!(job = id, error = %e, "cannot store the job's change"),
    }
}

/// How an attempt went.
enum Tried {
    /// A call was placed (or could not be, for a reason worth a retry).
    Called(Attempt),
    /// The job cannot go on (e.g. its credential was revoked).
    Failed(String),
}

async fn attempt(gw: &Arc<Gateway>, job: &Job, control: &JobControl) -> Tried {
    let s = &job.status;
    let unreachable = |detail: &str| {
        Tried::Called(Attempt::failed(
            Outcome::Unreachable,
            detail.to_owned(),
            Duration::ZERO,
        ))
    };
    let Some(relay) = gw.uplink.current() else {
        return unreachable("the gateway has no relay link");
    };
    let login = Login {
        number: s.from.clone(),
        secret: job.credential.clone(),
        receive: None,
    };
    match gw
        .uplink
        .login(login, gw.config.link.handshake_timeout)
        .await
    {
        LoginOutcome::Accepted { .. } => {}
        LoginOutcome::Refused(LoginRefusal::NoRelay) => {
            return unreachable("the relay did not answer the job's login");
        }
        LoginOutcome::Refused(LoginRefusal::TooManyAttempts { .. }) => {
            return unreachable("the relay throttles logins from this gateway");
        }
        // A relay refuses a job credential with its own words, never as a
        // wrong secret: this answer was a device's login of the same
        // number, crossing the job's (the uplink hands a number's answer to
        // every login waiting for one). Try again.
        LoginOutcome::Refused(LoginRefusal::BadSecret) => {
            return unreachable("the job's login crossed a device's refused login");
        }
        LoginOutcome::Refused(r @ LoginRefusal::Revoked { .. }) => {
            return Tried::Failed(r.to_string());
        }
        LoginOutcome::Refused(r) => {
            return Tried::Failed(format!("the relay refused the job's credential: {r}"));
        }
    }
    let pages = match gw.queue.as_ref().map(|q| q.store.pages(s.id)) {
        Some(Ok(pages)) if pages.len() == s.pages as usize => Arc::new(pages),
        Some(Ok(pages)) => {
            return Tried::Failed(format!(
                "the queue holds {} of the job's {} pages",
                pages.len(),
                s.pages
            ));
        }
        Some(Err(e)) => return Tried::Failed(format!("cannot read the job's pages: {e}")),
        None => return Tried::Failed("the gateway has no queue".into()),
    };
    // A cancel stops the call at the next page boundary: no further page
    // goes out, and the callee keeps what it confirmed.
    let options = SendOptions {
        stop: Some(control.cancel.clone()),
        ..SendOptions::default()
    };
    let caller = Caller {
        number: &s.from,
        opener: relay.link.opener(),
    };
    let progress: Arc<dyn SendProgress> = Arc::new(NoProgress);
    Tried::Called(send::attempt(caller, &s.call_id, &s.to, &pages, &options, progress).await)
}

//! One queued fax to one recipient, and its rules, without I/O: when it is
//! tried next, what an attempt's end, the kill time, a cancel or an alter
//! make of it. Times are Unix milliseconds passed in, so the tests below
//! drive every rule without a clock. `runner` carries the decisions out.

use std::time::Duration;

use common::device::report::{Attempt, Outcome};
use common::device::retry::RetryPolicy;
use common::jobs::{JobId, JobState, JobStatus, Recipient, Schedule};
use common::number::{CallId, Number};
use serde::{Deserialize, Serialize};

/// A job as the gateway stores it: what faxstat shows, plus how to retry
/// and the credential its calls are placed with.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub status: JobStatus,
    pub retry_interval_ms: u64,
    pub retry_backoff: f64,
    pub notify_url: Option<String>,
    /// Issued by the relay at submission, bound to the number, this job's
    /// call id and the kill time; never the device's secret.
    pub credential: String,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("status", &self.status)
            .field("credential", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// What the runner does next with a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Place a call now.
    Attempt,
    /// Nothing before this time.
    At(u64),
    /// The kill time passed: fail it.
    Expire,
    /// It has ended.
    Ended,
}

/// What a cancel did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// The job is canceled.
    Now,
    /// A call is under way: it stops at the next page boundary.
    AtPageBoundary,
    /// It had ended already; nothing changed.
    Ended(JobState),
}

impl Job {
    pub fn new(
        id: JobId,
        from: &Number,
        recipient: &Recipient,
        schedule: &Schedule,
        credential: String,
        now: u64,
    ) -> Job {
        let scheduled = schedule.send_at_ms.filter(|&at| at > now);
        Job {
            status: JobStatus {
                id,
                from: from.clone(),
                to: recipient.to.clone(),
                call_id: CallId::random(),
                state: match scheduled {
                    Some(_) => JobState::Scheduled,
                    None => JobState::Queued,
                },
                reason: String::new(),
                outcome: None,
                pages: recipient.pages,
                pages_confirmed: 0,
                tries: 0,
                max_tries: schedule.max_tries.max(1),
                created_ms: now,
                send_at_ms: schedule.send_at_ms,
                kill_at_ms: schedule.kill_at_ms,
                next_try_ms: scheduled,
                ended_ms: None,
                attempts: Vec::new(),
            },
            retry_interval_ms: schedule.retry_interval_ms,
            retry_backoff: schedule.retry_backoff,
            notify_url: schedule.notify_url.clone(),
            credential,
        }
    }

    pub fn id(&self) -> JobId {
        self.status.id
    }

    pub fn state(&self) -> JobState {
        self.status.state
    }

    /// What to do with the job at `now`. A job found `Sending` (the gateway
    /// stopped during a call) is tried again at once: same call id, so the
    /// callee resumes it.
    pub fn next(&self, now: u64) -> Next {
        let s = &self.status;
        if s.state.ended() {
            return Next::Ended;
        }
        if now >= s.kill_at_ms {
            return Next::Expire;
        }
        let at = match s.state {
            JobState::Scheduled | JobState::Waiting => s.next_try_ms.unwrap_or(now),
            _ => now,
        };
        if at <= now {
            Next::Attempt
        } else {
            Next::At(at.min(s.kill_at_ms))
        }
    }

    /// A call starts.
    pub fn start(&mut self, _now: u64) {
        self.status.state = JobState::Sending;
        self.status.tries += 1;
        self.status.next_try_ms = None;
        self.status.reason.clear();
    }

    /// An attempt ended: done, waiting for the next try, or failed.
    pub fn attempt_ended(&mut self, attempt: Attempt, now: u64) {
        let s = &mut self.status;
        if let Some(on_callee) = attempt.pages_on_callee() {
            s.pages_confirmed = on_callee;
        }
        s.outcome = Some(attempt.result);
        let said = match attempt.detail.is_empty() {
            true => attempt.result.to_string(),
            false => format!("{}: {}", attempt.result, attempt.detail),
        };
        let retryable = attempt.retryable;
        s.attempts.push(attempt);
        if s.outcome == Some(Outcome::Delivered) {
            s.pages_confirmed = s.pages;
            return self.end(JobState::Done, String::new(), now);
        }
        if !retryable {
            return self.end(JobState::Failed, said, now);
        }
        let policy = RetryPolicy {
            retries: s.max_tries.saturating_sub(1),
            interval: Duration::from_millis(self.retry_interval_ms),
            backoff: self.retry_backoff,
        };
        match policy.pause_before_retry(s.tries) {
            None => {
                let reason = format!(
                    "tries used up ({} of {}); last: {said}",
                    s.tries, s.max_tries
                );
                self.end(JobState::Failed, reason, now)
            }
            Some(pause) => {
                s.state = JobState::Waiting;
                s.next_try_ms = Some(now + pause.as_millis() as u64);
                s.reason = said;
            }
        }
    }

    /// The kill time passed before the job got through.
    pub fn expire(&mut self, now: u64) {
        let last = match self.status.attempts.last() {
            Some(a) => format!("; last try: {}", a.result),
            None => String::new(),
        };
        let reason = format!("kill time passed after {} tries{last}", self.status.tries);
        self.end(JobState::Failed, reason, now);
    }

    /// Ends the job without another try (e.g. "secret revoked").
    pub fn fail(&mut self, reason: String, now: u64) {
        self.end(JobState::Failed, reason, now);
    }

    /// The sender or the operator cancels the job.
    pub fn cancel(&mut self, now: u64) -> Cancel {
        match self.status.state {
            s if s.ended() => Cancel::Ended(s),
            JobState::Sending => Cancel::AtPageBoundary,
            _ => {
                self.end(JobState::Canceled, "canceled".into(), now);
                Cancel::Now
            }
        }
    }

    /// The call a cancel waited for stopped: `attempt` is how far it got.
    pub fn canceled_during_call(&mut self, attempt: Attempt, now: u64) {
        if let Some(on_callee) = attempt.pages_on_callee() {
            self.status.pages_confirmed = on_callee;
        }
        self.status.outcome = Some(attempt.result);
        self.status.attempts.push(attempt);
        let reason = format!(
            "canceled during a call; the callee keeps {} of {} pages",
            self.status.pages_confirmed, self.status.pages
        );
        self.end(JobState::Canceled, reason, now);
    }

    /// Changes a job's send time or kill time; only before it ends and
    /// while no call is under way.
    pub fn alter(
        &mut self,
        send_at: Option<u64>,
        kill_at: Option<u64>,
        now: u64,
    ) -> Result<(), String> {
        let s = &mut self.status;
        if s.state.ended() || s.state == JobState::Sending {
            return Err(format!("it is {}; nothing changed", s.state));
        }
        let kill = kill_at.unwrap_or(s.kill_at_ms);
        let send = send_at.or(s.next_try_ms).unwrap_or(now);
        if kill <= now {
            return Err("the new kill time has passed; nothing changed".into());
        }
        if send >= kill {
            return Err("the send time is not before the kill time; nothing changed".into());
        }
        s.kill_at_ms = kill;
        if let Some(at) = send_at {
            s.send_at_ms = Some(at);
            s.next_try_ms = Some(at);
            if s.state == JobState::Queued && at > now {
                s.state = JobState::Scheduled;
            }
        }
        Ok(())
    }

    fn end(&mut self, state: JobState, reason: String, now: u64) {
        let s = &mut self.status;
        s.state = state;
        s.reason = reason;
        s.next_try_ms = None;
        s.ended_ms = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;
    const MIN: u64 = 60_000;

    fn job(send_at: Option<u64>, max_tries: u32) -> Job {
        let schedule = Schedule {
            send_at_ms: send_at,
            kill_at_ms: T0 + 180 * MIN,
            max_tries,
            retry_interval_ms: MIN,
            retry_backoff: 2.0,
            notify_url: None,
        };
        let to = Recipient {
            to: "1002".parse().unwrap(),
            pages: 3,
            bytes: 3000,
        };
        Job::new(
            7,
            &"1001".parse().unwrap(),
            &to,
            &schedule,
            "job-cred".into(),
            T0,
        )
    }

    fn attempt(result: Outcome, held: Option<u32>, confirmed: u32) -> Attempt {
        Attempt {
            pages_held: held,
            pages_confirmed: confirmed,
            ..Attempt::failed(result, "detail".into(), Duration::ZERO)
        }
    }

    #[test]
    fn busy_then_delivered_waits_with_growing_pauses_and_ends_once() {
        let mut j = job(None, 5);
        assert_eq!((j.state(), j.next(T0)), (JobState::Queued, Next::Attempt));
        j.start(T0);
        j.attempt_ended(attempt(Outcome::Busy, None, 0), T0);
        assert_eq!(j.state(), JobState::Waiting);
        assert_eq!(j.status.reason, "busy: detail");
        assert_eq!(j.next(T0), Next::At(T0 + MIN));
        assert_eq!(j.next(T0 + MIN), Next::Attempt);
        j.start(T0 + MIN);
        // Cut after 2 of 3 pages: the next try resumes, twice the pause later.
        j.attempt_ended(attempt(Outcome::Partial, Some(0), 2), T0 + MIN);
        assert_eq!(j.status.pages_confirmed, 2);
        assert_eq!(j.next(T0 + MIN), Next::At(T0 + 3 * MIN));
        j.start(T0 + 3 * MIN);
        let mut ok = attempt(Outcome::Delivered, Some(2), 1);
        ok.retryable = false;
        j.attempt_ended(ok, T0 + 3 * MIN);
        assert_eq!(j.state(), JobState::Done);
        assert_eq!((j.status.tries, j.status.pages_confirmed), (3, 3));
        assert_eq!(j.next(T0 + 4 * MIN), Next::Ended);
        assert_eq!(j.cancel(T0 + 4 * MIN), Cancel::Ended(JobState::Done));
        assert_eq!(j.state(), JobState::Done, "a cancel changes nothing");
    }

    #[test]
    fn final_outcomes_tries_and_the_kill_time_fail_the_job() {
        let mut j = job(None, 5);
        j.start(T0);
        j.attempt_ended(attempt(Outcome::UnknownNumber, None, 0), T0);
        assert_eq!(j.state(), JobState::Failed);
        assert_eq!(j.status.reason, "unknown number: detail");

        let mut j = job(None, 2);
        for _ in 0..2 {
            j.start(T0);
            j.attempt_ended(attempt(Outcome::Offline, None, 0), T0);
        }
        assert_eq!(j.state(), JobState::Failed);
        assert_eq!(
            j.status.reason,
            "tries used up (2 of 2); last: offline: detail"
        );

        let mut j = job(None, 50);
        j.start(T0);
        j.attempt_ended(attempt(Outcome::Offline, None, 0), T0);
        assert_eq!(j.next(T0 + 180 * MIN), Next::Expire);
        j.expire(T0 + 180 * MIN);
        assert_eq!(j.state(), JobState::Failed);
        assert_eq!(
            j.status.reason,
            "kill time passed after 1 tries; last try: offline"
        );
    }

    #[test]
    fn scheduled_jobs_wait_for_their_send_time_and_may_be_altered() {
        let mut j = job(Some(T0 + 10 * MIN), 3);
        assert_eq!(j.state(), JobState::Scheduled);
        assert_eq!(j.next(T0), Next::At(T0 + 10 * MIN));
        assert_eq!(
            j.alter(Some(T0 + 200 * MIN), None, T0),
            Err("the send time is not before the kill time; nothing changed".into())
        );
        assert_eq!(j.next(T0), Next::At(T0 + 10 * MIN), "unchanged");
        j.alter(Some(T0 + 5 * MIN), Some(T0 + 300 * MIN), T0)
            .unwrap();
        assert_eq!(j.next(T0), Next::At(T0 + 5 * MIN));
        assert_eq!(j.status.kill_at_ms, T0 + 300 * MIN);
        assert_eq!(j.cancel(T0), Cancel::Now);
        assert_eq!(j.state(), JobState::Canceled);
        assert!(j.alter(None, Some(T0 + 400 * MIN), T0).is_err());
    }

    #[test]
    fn a_sending_job_is_canceled_at_a_page_boundary_and_resumed_after_a_crash() {
        let mut j = job(None, 3);
        j.start(T0);
        assert_eq!(j.next(T0), Next::Attempt, "found sending: try again");
        assert_eq!(j.cancel(T0), Cancel::AtPageBoundary);
        assert_eq!(j.state(), JobState::Sending);
        j.canceled_during_call(attempt(Outcome::LinkLost, Some(0), 1), T0);
        assert_eq!(j.state(), JobState::Canceled);
        assert_eq!(
            j.status.reason,
            "canceled during a call; the callee keeps 1 of 3 pages"
        );
    }

    #[test]
    fn debug_never_shows_the_credential() {
        assert!(!format!("{:?}", job(None, 1)).contains("job-cred"));
    }
}

//! The gateway's fax queue as its devices see it: the messages of a jobs
//! stream (submit a fax, list, wait for, cancel or alter jobs) and what a
//! job looks like from outside ([`JobStatus`]), which faxsend, faxstat and
//! faxrm print and gatewayd stores.
//!
//! A jobs stream is a stream a device opens on its link to its gateway,
//! like a call stream. Its first frame is [`JOBS_MAGIC`] followed by a
//! [`JobRequest`]; the gateway tells the two kinds apart by that first byte:
//! a call stream's first frame is a `CallRequest`, whose first field (the
//! call id, a 32-character string) postcard writes as its length, 0x20, so
//! no call stream begins with [`JOBS_MAGIC`].
//!
//! A `Submit` is followed, for each recipient in order, by that
//! recipient's pages as in a call (`SenderFrame::Page` and its raw data
//! frames, see [`crate::link::pages`]); the gateway answers with one
//! [`JobResponse`] once the jobs are on its disk (synced), or refuses.

use std::fmt;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::device::report::{Attempt, Outcome};
use crate::link::frame::{self, FrameError};
use crate::number::{CallId, Number};

/// The first byte of a jobs stream (see the module docs).
pub const JOBS_MAGIC: u8 = b'J';

/// A job's number on its gateway (HylaFAX's job id): unique there, never
/// reused, shown in decimal.
pub type JobId = u64;

/// What a device asks of its gateway's queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum JobRequest {
    /// Queue a fax; each recipient's pages follow (see the module docs).
    Submit(Submission),
    /// The jobs of `from`: the listed ones, or all when `jobs` is empty.
    List { from: Number, jobs: Vec<JobId> },
    /// Answers, as `List`, once every listed job has ended.
    Wait { from: Number, jobs: Vec<JobId> },
    /// Cancel the listed jobs: a waiting one at once, a sending one at its
    /// next page boundary.
    Cancel { from: Number, jobs: Vec<JobId> },
    /// Change the listed waiting jobs' send time or kill time (HylaFAX's
    /// `faxalter`).
    Alter {
        from: Number,
        jobs: Vec<JobId>,
        send_at_ms: Option<u64>,
        kill_at_ms: Option<u64>,
    },
}

impl JobRequest {
    /// The number the request acts for (it must be logged in on the link).
    pub fn from(&self) -> &Number {
        match self {
            JobRequest::Submit(s) => &s.from,
            JobRequest::List { from, .. }
            | JobRequest::Wait { from, .. }
            | JobRequest::Cancel { from, .. }
            | JobRequest::Alter { from, .. } => from,
        }
    }
}

/// A fax for the queue: one job per recipient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub from: Number,
    /// Each recipient, with how many pages follow for it (each recipient
    /// has its own cover page and "page N of M").
    pub recipients: Vec<Recipient>,
    pub schedule: Schedule,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub to: Number,
    pub pages: u32,
    /// The pages' bytes in all, so a gateway short of disk refuses the fax
    /// before it is sent.
    pub bytes: u64,
}

/// When and how often a job is tried. Times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Not before this time (`None`: at once).
    pub send_at_ms: Option<u64>,
    /// The job fails once this time passes (HylaFAX's kill time).
    pub kill_at_ms: u64,
    /// Attempts in all, the first included.
    pub max_tries: u32,
    /// Pause before the first retry.
    pub retry_interval_ms: u64,
    /// Each further pause is the previous one times this.
    pub retry_backoff: f64,
    /// A webhook for this job's events, besides the gateway's own.
    pub notify_url: Option<String>,
}

/// The gateway's answer on a jobs stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum JobResponse {
    /// The submitted jobs, one per recipient, on disk.
    Queued(Vec<JobStatus>),
    /// The jobs asked for, in the order asked (all of the number's, oldest
    /// first, when none were named).
    Jobs(Vec<JobStatus>),
    /// What cancel or alter did to each job, in the order asked.
    Changed(Vec<JobChange>),
    /// Nothing was done, and why.
    Refused { reason: String },
}

/// What cancel or alter did to one job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobChange {
    pub id: JobId,
    /// Whether the job changed.
    pub changed: bool,
    /// What happened, in words: "canceled", "canceled at the next page
    /// boundary", "already done; nothing changed", "no such job", ...
    pub message: String,
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// On disk, to be tried at once.
    Queued,
    /// On disk, to be tried at its send time.
    Scheduled,
    /// A call is under way.
    Sending,
    /// An attempt failed; the next one is at `next_try_ms`.
    Waiting,
    /// Every page confirmed by the callee.
    Done,
    /// Ended without delivery: a final outcome, tries used up, the kill
    /// time passed, or the sender's secret was revoked.
    Failed,
    /// Canceled by the sender or the operator.
    Canceled,
}

impl JobState {
    /// Whether the job has ended (it never changes again).
    pub fn ended(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Canceled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobState::Queued => "queued",
            JobState::Scheduled => "scheduled",
            JobState::Sending => "sending",
            JobState::Waiting => "waiting",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        })
    }
}

/// A job as faxstat shows it. Times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub id: JobId,
    pub from: Number,
    pub to: Number,
    /// The call id every attempt uses, so a retry resumes at the callee.
    pub call_id: CallId,
    pub state: JobState,
    /// Why the job waits or how it ended, in words.
    pub reason: String,
    /// The last attempt's outcome, once there was one.
    pub outcome: Option<Outcome>,
    pub pages: u32,
    /// Pages the callee holds (confirmed over every attempt).
    pub pages_confirmed: u32,
    pub tries: u32,
    pub max_tries: u32,
    pub created_ms: u64,
    pub send_at_ms: Option<u64>,
    pub kill_at_ms: u64,
    /// When the next attempt starts (waiting and scheduled jobs).
    pub next_try_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    /// Every attempt, first to last.
    pub attempts: Vec<Attempt>,
}

/// Opens a jobs stream's request: the magic byte, then the request as one frame.
pub async fn write_request<W: AsyncWrite + Unpin>(
    w: &mut W,
    request: &JobRequest,
) -> Result<(), FrameError> {
    let body = postcard::to_stdvec(request)?;
    let mut first = Vec::with_capacity(body.len() + 1);
    first.push(JOBS_MAGIC);
    first.extend_from_slice(&body);
    frame::write_raw(w, &first).await?;
    w.flush().await?;
    Ok(())
}

/// Decodes a jobs stream's first frame; `None` when it is not one (a call).
pub fn decode_request(first: &[u8]) -> Option<Result<JobRequest, postcard::Error>> {
    let body = first.strip_prefix(&[JOBS_MAGIC])?;
    Some(postcard::from_bytes(body))
}

/// Reads the gateway's answer.
pub async fn read_response<R: AsyncRead + Unpin>(r: &mut R) -> Result<JobResponse, FrameError> {
    frame::read_msg(r).await?.ok_or(FrameError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::message::CallRequest;

    #[tokio::test]
    async fn a_jobs_stream_is_told_from_a_call_by_its_first_byte() {
        let request = JobRequest::List {
            from: "1001".parse().unwrap(),
            jobs: vec![7, 8],
        };
        let mut wire = Vec::new();
        write_request(&mut wire, &request).await.unwrap();
        let first = frame::read_frame(&mut wire.as_slice(), 1 << 20)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(decode_request(&first).unwrap().unwrap(), request);

        let call = CallRequest {
            call_id: CallId::random(),
            from: "1001".parse().unwrap(),
            to: "1002".parse().unwrap(),
            pages: 1,
            bytes: 10,
            via: vec![],
        };
        let call = postcard::to_stdvec(&call).unwrap();
        assert_eq!(call[0], 0x20, "a call id's length comes first");
        assert!(decode_request(&call).is_none());
    }
}

//! The caller's side of a call: request, answer (with the pages the callee
//! already holds, on a retry), pages, confirmations. The report is in `report`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::codec::{self, EncodedPage};
use crate::link::frame::{self, FrameError};
use crate::link::message::{CallAnswer, CallRequest, HeldPages, ReceiverFrame, SenderFrame};
use crate::link::mux::Opener;
use crate::link::pages;
use crate::number::{CallId, Number};

pub use super::report::{Attempt, DeliveryReport, Outcome};
use super::resume;
use super::session::Session;

/// Time limits of a call.
#[derive(Clone, Debug)]
pub struct SendOptions {
    /// From dialing until the callee answers.
    pub answer_timeout: Duration,
    /// Longest wait for the next confirmation while pages are outstanding.
    pub page_timeout: Duration,
    /// Once cancelled, no further page goes out: the call ends when the
    /// pages already sent are confirmed (the callee keeps them), or is
    /// delivered if every page had gone out already.
    pub stop: Option<CancellationToken>,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            answer_timeout: Duration::from_secs(30),
            page_timeout: Duration::from_secs(60),
            stop: None,
        }
    }
}

/// Hooks for a progress display.
pub trait SendProgress: Send + Sync {
    fn page_sent(&self, _index: u32) {}
    fn page_confirmed(&self, _index: u32) {}
    /// An attempt is under way; the callee already holds `held` pages.
    fn attempt_started(&self, _held: u32) {}
}

/// No progress display.
#[derive(Debug)]
pub struct NoProgress;
impl SendProgress for NoProgress {}

/// Who places a call, and the link it goes out on: a logged-in device's
/// session, or a gateway placing a queued fax as the job's number.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub number: &'a Number,
    pub opener: &'a Opener,
}

impl<'a> From<&'a Session> for Caller<'a> {
    fn from(session: &'a Session) -> Caller<'a> {
        Caller {
            number: &session.number,
            opener: &session.opener,
        }
    }
}

/// Places a call from `session` to `to` and sends `pages`: one attempt.
pub async fn send_fax(
    session: &Session,
    call_id: CallId,
    to: &Number,
    pages: Vec<EncodedPage>,
    opts: &SendOptions,
    progress: Arc<dyn SendProgress>,
) -> DeliveryReport {
    let total = pages.len() as u32;
    let pages = Arc::new(pages);
    let attempt = attempt(session.into(), &call_id, to, &pages, opts, progress).await;
    DeliveryReport::from_attempts(
        call_id,
        session.number.clone(),
        to.clone(),
        total,
        vec![attempt],
    )
}

/// One attempt to deliver `pages` (encoded once, shared by every attempt)
/// as call `call_id`: only the pages the callee does not hold yet are sent.
pub async fn attempt(
    caller: Caller<'_>,
    call_id: &CallId,
    to: &Number,
    pages: &Arc<Vec<EncodedPage>>,
    opts: &SendOptions,
    progress: Arc<dyn SendProgress>,
) -> Attempt {
    let started = Instant::now();
    let mut attempt = Attempt::failed(Outcome::LinkLost, String::new(), Duration::ZERO);
    let result = place_call(caller, call_id, to, pages, opts, progress, &mut attempt).await;
    match result {
        Ok(()) => {
            attempt.result = Outcome::Delivered;
            attempt.retryable = false;
        }
        Err(f) => {
            let on_callee = attempt.pages_on_callee().unwrap_or(0);
            attempt.result = match f.outcome {
                Outcome::LinkLost if on_callee > 0 => Outcome::Partial,
                outcome => outcome,
            };
            attempt.detail = f.detail;
            attempt.retryable = f.retry;
        }
    }
    attempt.elapsed_ms = started.elapsed().as_millis() as u64;
    attempt
}

/// Why an attempt failed, and whether another one may help.
struct Failure {
    outcome: Outcome,
    detail: String,
    retry: bool,
}

impl Failure {
    fn new(outcome: Outcome, detail: impl Into<String>) -> Failure {
        Failure {
            outcome,
            detail: detail.into(),
            retry: outcome.worth_retrying(),
        }
    }

    /// An outcome that another attempt would only repeat.
    fn final_(outcome: Outcome, detail: String) -> Failure {
        Failure {
            retry: false,
            ..Failure::new(outcome, detail)
        }
    }
}

fn link_lost(e: FrameError) -> Failure {
    Failure::new(Outcome::LinkLost, format!("call stream failed: {e}"))
}

/// The pages as sent to this callee: the originals where they fit (no
/// copy), converted ones where they do not.
struct Fitted {
    originals: Arc<Vec<EncodedPage>>,
    converted: Vec<Option<EncodedPage>>,
}

impl Fitted {
    fn len(&self) -> usize {
        self.converted.len()
    }

    fn get(&self, index: usize) -> &EncodedPage {
        self.converted[index]
            .as_ref()
            .unwrap_or(&self.originals[index])
    }

    fn iter(&self) -> impl Iterator<Item = &EncodedPage> {
        (0..self.len()).map(|i| self.get(i))
    }
}

async fn place_call(
    caller: Caller<'_>,
    call_id: &CallId,
    to: &Number,
    pages: &Arc<Vec<EncodedPage>>,
    opts: &SendOptions,
    progress: Arc<dyn SendProgress>,
    report: &mut Attempt,
) -> Result<(), Failure> {
    let mut stream = caller
        .opener
        .open()
        .await
        .map_err(|e| Failure::new(Outcome::LinkLost, format!("cannot open a call: {e}")))?;
    let request = CallRequest {
        call_id: call_id.clone(),
        from: caller.number.clone(),
        to: to.clone(),
        pages: pages.len() as u32,
        bytes: pages.iter().map(|p| p.data.len() as u64).sum(),
        via: Vec::new(),
    };
    frame::write_msg(&mut stream, &request)
        .await
        .map_err(link_lost)?;
    let answer = tokio::time::timeout(
        opts.answer_timeout,
        frame::read_msg::<_, CallAnswer>(&mut stream),
    )
    .await
    .map_err(|_| {
        let secs = opts.answer_timeout.as_secs();
        Failure::new(Outcome::Timeout, format!("no answer within {secs} s"))
    })?
    .map_err(link_lost)?
    .ok_or_else(|| Failure::new(Outcome::LinkLost, "the call was dropped before an answer"))?;
    let (capabilities, held) = match answer {
        CallAnswer::Refused {
            reason,
            detail,
            via,
        } => {
            report.via = via;
            return Err(Failure::new(reason.into(), detail));
        }
        CallAnswer::Accepted {
            capabilities,
            via,
            held,
        } => {
            report.via = via;
            (capabilities, held)
        }
    };

    // Fit the pages to what the callee takes; beyond its page limit nothing is sent.
    let limit = capabilities.max_pages as usize;
    let over_limit = pages.len() > limit;
    let originals = pages.clone();
    let converted = tokio::task::spawn_blocking(move || {
        originals
            .iter()
            .take(limit)
            // A page that already fits moves on as it is, without a copy.
            .map(|p| match capabilities.accepts(&p.info()) {
                true => Ok(None),
                false => codec::fit_page(p, &capabilities).map(Some),
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| Failure::new(Outcome::LinkLost, format!("page conversion failed: {e}")))?
    .map_err(|e| {
        let detail = format!("cannot convert pages for the callee: {e}");
        Failure::final_(Outcome::Rejected, detail)
    })?;
    let to_send = Fitted {
        originals: pages.clone(),
        converted,
    };
    let count = to_send.len() as u32;
    // A retry sends only what the callee lacks, if what it holds is ours.
    let first = resume::first_page_to_send(held.as_ref(), to_send.iter());
    let is_other_fax = |h: &&HeldPages| h.complete && (h.pages != first || h.pages != count);
    if let Some(h) = held.as_ref().filter(is_other_fax) {
        // Starting over would overwrite a delivered fax: the callee refuses
        // that, and so would every retry.
        let detail = format!(
            "the callee already holds a different fax ({} pages) as call {call_id}",
            h.pages
        );
        return Err(Failure::final_(Outcome::Rejected, detail));
    }
    report.pages_held = Some(first);
    progress.attempt_started(first);
    report.bytes_sent = (first..count)
        .map(|i| to_send.get(i as usize).data.len() as u64)
        .sum();

    let (mut rx, mut tx) = tokio::io::split(stream);
    let sent = Arc::new(AtomicU32::new(0));
    let writer_sent = sent.clone();
    let writer_progress = progress.clone();
    // Pages go out while confirmations come back; the multiplexer's window
    // keeps the sender at most one window ahead of the slowest hop.
    let stop = opts.stop.clone();
    // Told when the writer stopped early (no EndOfDocument will follow).
    let stopped = Arc::new(Notify::new());
    let writer_stopped = stopped.clone();
    let writer = tokio::spawn(async move {
        for index in first..count {
            if stop.as_ref().is_some_and(CancellationToken::is_cancelled) {
                writer_stopped.notify_one();
                return Ok(tx);
            }
            // The end of the document travels with the last page.
            let then = (index + 1 == count).then_some(&SenderFrame::EndOfDocument);
            pages::write_page(&mut tx, index, to_send.get(index as usize), then).await?;
            writer_sent.fetch_add(1, Ordering::Relaxed);
            writer_progress.page_sent(index);
        }
        if first == count {
            frame::write_msg(&mut tx, &SenderFrame::EndOfDocument).await?;
        }
        // Keep the write half open: closing it could end the call at a hop
        // before the callee's last confirmation is back.
        Ok::<_, FrameError>(tx)
    });
    let _abort_writer = AbortOnDrop(writer.abort_handle());

    let mut next = first;
    let mut writer_stopped = false;
    let result = loop {
        if writer_stopped && next == first + sent.load(Ordering::Relaxed) {
            let detail = format!("stopped by the sender after page {next}");
            break Err(Failure::final_(Outcome::LinkLost, detail));
        }
        let frame = tokio::select! {
            frame = tokio::time::timeout(
                opts.page_timeout,
                frame::read_msg::<_, ReceiverFrame>(&mut rx),
            ) => frame,
            _ = stopped.notified(), if !writer_stopped => {
                writer_stopped = true;
                continue;
            }
        };
        let frame = match frame {
            Err(_) => {
                let detail = format!("no confirmation within {} s", opts.page_timeout.as_secs());
                break Err(Failure::new(Outcome::Timeout, detail));
            }
            Ok(Err(e)) => break Err(link_lost(e)),
            Ok(Ok(None)) => {
                let detail = "the call was cut before the fax was complete";
                break Err(Failure::new(Outcome::LinkLost, detail));
            }
            Ok(Ok(Some(f))) => f,
        };
        match frame {
            ReceiverFrame::PageConfirmed { index } if index == next => {
                progress.page_confirmed(index);
                next += 1;
            }
            ReceiverFrame::PageConfirmed { index } => {
                let detail = format!("the callee confirmed page {index} out of order");
                break Err(Failure::new(Outcome::LinkLost, detail));
            }
            ReceiverFrame::Hangup { reason } => {
                let detail = format!("the callee hung up: {reason}");
                break Err(Failure::new(Outcome::LinkLost, detail));
            }
            ReceiverFrame::Complete { pages, .. } if pages != count || next != count => {
                let detail = format!("the callee stored {pages} of {count} pages");
                break Err(Failure::final_(Outcome::Partial, detail));
            }
            ReceiverFrame::Complete { .. } if over_limit => {
                let detail = format!(
                    "the callee takes at most {limit} pages; {count} of {} were sent",
                    pages.len()
                );
                break Err(Failure::final_(Outcome::Partial, detail));
            }
            ReceiverFrame::Complete { .. } => break Ok(()),
        }
    };
    report.pages_confirmed = next - first;
    report.pages_sent = sent.load(Ordering::Relaxed).max(next - first);
    result
}

struct AbortOnDrop(tokio::task::AbortHandle);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

//! The caller's side of a call: request, answer, pages, confirmations, and
//! the delivery report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::codec::{self, EncodedPage};
use crate::link::frame::{self, FrameError};
use crate::link::message::{
    CHUNK_LEN, CallAnswer, CallRefusal, CallRequest, ReceiverFrame, SenderFrame,
};
use crate::number::{CallId, Number};

use super::session::Session;

/// Time limits of a call.
#[derive(Clone, Debug)]
pub struct SendOptions {
    /// From dialing until the callee answers.
    pub answer_timeout: Duration,
    /// Longest wait for the next confirmation while pages are outstanding.
    pub page_timeout: Duration,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            answer_timeout: Duration::from_secs(30),
            page_timeout: Duration::from_secs(60),
        }
    }
}

/// Hooks for a progress display.
pub trait SendProgress: Send + Sync {
    fn page_sent(&self, _index: u32) {}
    fn page_confirmed(&self, _index: u32) {}
}

/// No progress display.
#[derive(Debug)]
pub struct NoProgress;
impl SendProgress for NoProgress {}

/// How a call ended, from the caller's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Delivered,
    Partial,
    UnknownNumber,
    Offline,
    Busy,
    Rejected,
    NotAuthorized,
    Unreachable,
    Timeout,
    LinkLost,
}

impl From<CallRefusal> for Outcome {
    fn from(r: CallRefusal) -> Outcome {
        match r {
            CallRefusal::UnknownNumber => Outcome::UnknownNumber,
            CallRefusal::Offline => Outcome::Offline,
            CallRefusal::Busy => Outcome::Busy,
            CallRefusal::Rejected => Outcome::Rejected,
            CallRefusal::NotAuthorized => Outcome::NotAuthorized,
            CallRefusal::Unreachable => Outcome::Unreachable,
            // A hop's limit refuses this call as it is: like a rejection,
            // not worth retrying unchanged (the detail names the limit).
            CallRefusal::OverLimit => Outcome::Rejected,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Delivered => "delivered",
            Outcome::Partial => "partial delivery",
            Outcome::UnknownNumber => "unknown number",
            Outcome::Offline => "offline",
            Outcome::Busy => "busy",
            Outcome::Rejected => "rejected",
            Outcome::NotAuthorized => "not authorized",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::LinkLost => "link lost",
        })
    }
}

/// What faxsend prints when a call is over.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryReport {
    pub result: Outcome,
    /// A sentence on why, when the call was not delivered.
    pub detail: String,
    pub call_id: CallId,
    pub from: Number,
    pub to: Number,
    pub pages_total: u32,
    pub pages_sent: u32,
    pub pages_confirmed: u32,
    pub bytes_sent: u64,
    pub elapsed_ms: u64,
    /// Relays the call went through, in order.
    pub via: Vec<String>,
}

/// Places a call from `session` to `to` and sends `pages`.
pub async fn send_fax(
    session: &Session,
    call_id: CallId,
    to: &Number,
    pages: Vec<EncodedPage>,
    opts: &SendOptions,
    progress: Arc<dyn SendProgress>,
) -> DeliveryReport {
    let started = Instant::now();
    let mut report = DeliveryReport {
        result: Outcome::LinkLost,
        detail: String::new(),
        call_id: call_id.clone(),
        from: session.number.clone(),
        to: to.clone(),
        pages_total: pages.len() as u32,
        pages_sent: 0,
        pages_confirmed: 0,
        bytes_sent: 0,
        elapsed_ms: 0,
        via: Vec::new(),
    };
    let (result, detail) =
        match place_call(session, &call_id, to, pages, opts, progress, &mut report).await {
            Ok(()) => (Outcome::Delivered, String::new()),
            Err((outcome, detail)) => (outcome, detail),
        };
    report.result = result;
    report.detail = detail;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
}

type Failure = (Outcome, String);

fn link_lost(e: FrameError) -> Failure {
    (Outcome::LinkLost, format!("call stream failed: {e}"))
}

async fn place_call(
    session: &Session,
    call_id: &CallId,
    to: &Number,
    pages: Vec<EncodedPage>,
    opts: &SendOptions,
    progress: Arc<dyn SendProgress>,
    report: &mut DeliveryReport,
) -> Result<(), Failure> {
    let mut stream = session
        .opener
        .open()
        .await
        .map_err(|e| (Outcome::LinkLost, format!("cannot open a call: {e}")))?;
    let request = CallRequest {
        call_id: call_id.clone(),
        from: session.number.clone(),
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
        (
            Outcome::Timeout,
            format!("no answer within {} s", opts.answer_timeout.as_secs()),
        )
    })?
    .map_err(link_lost)?
    .ok_or_else(|| {
        (
            Outcome::LinkLost,
            "the call was dropped before an answer".to_owned(),
        )
    })?;
    let capabilities = match answer {
        CallAnswer::Refused {
            reason,
            detail,
            via,
        } => {
            report.via = via;
            return Err((reason.into(), detail));
        }
        CallAnswer::Accepted { capabilities, via } => {
            report.via = via;
            capabilities
        }
    };

    // Fit the pages to what the callee takes; beyond its page limit nothing is sent.
    let limit = capabilities.max_pages as usize;
    let over_limit = pages.len() > limit;
    let to_send: Vec<EncodedPage> = tokio::task::spawn_blocking(move || {
        pages
            .into_iter()
            .take(limit)
            // A page that already fits moves on as it is, without a copy.
            .map(|p| match capabilities.accepts(&p.info()) {
                true => Ok(p),
                false => codec::fit_page(&p, &capabilities),
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| (Outcome::LinkLost, format!("page conversion failed: {e}")))?
    .map_err(|e| {
        (
            Outcome::Rejected,
            format!("cannot convert pages for the callee: {e}"),
        )
    })?;
    let count = to_send.len() as u32;
    report.bytes_sent = to_send.iter().map(|p| p.data.len() as u64).sum();

    let (mut rx, mut tx) = tokio::io::split(stream);
    let sent = Arc::new(AtomicU32::new(0));
    let writer_sent = sent.clone();
    let writer_progress = progress.clone();
    // Pages go out while confirmations come back; the multiplexer's window
    // keeps the sender at most one window ahead of the slowest hop.
    let writer = tokio::spawn(async move {
        for (index, page) in to_send.iter().enumerate() {
            let index = index as u32;
            frame::write_msg(
                &mut tx,
                &SenderFrame::Page {
                    index,
                    info: page.info(),
                },
            )
            .await?;
            for chunk in page.data.chunks(CHUNK_LEN) {
                frame::write_raw(&mut tx, chunk).await?;
            }
            writer_sent.fetch_add(1, Ordering::Relaxed);
            writer_progress.page_sent(index);
        }
        frame::write_msg(&mut tx, &SenderFrame::EndOfDocument).await?;
        // Keep the write half open: closing it could end the call at a hop
        // before the callee's last confirmation is back.
        Ok::<_, FrameError>(tx)
    });
    let _abort_writer = AbortOnDrop(writer.abort_handle());

    let mut confirmed = 0u32;
    let result = loop {
        let frame = tokio::time::timeout(
            opts.page_timeout,
            frame::read_msg::<_, ReceiverFrame>(&mut rx),
        )
        .await;
        let frame = match frame {
            Err(_) => {
                let detail = format!("no confirmation within {} s", opts.page_timeout.as_secs());
                break Err((Outcome::Timeout, detail));
            }
            Ok(Err(e)) => {
                let detail = format!("call stream failed: {e}");
                break Err(partial_or(Outcome::LinkLost, confirmed, detail));
            }
            Ok(Ok(None)) => {
                let detail = "the call was cut before the fax was complete".to_owned();
                break Err(partial_or(Outcome::LinkLost, confirmed, detail));
            }
            Ok(Ok(Some(f))) => f,
        };
        match frame {
            ReceiverFrame::PageConfirmed { index } if index == confirmed => {
                progress.page_confirmed(index);
                confirmed += 1;
            }
            ReceiverFrame::PageConfirmed { index } => {
                let detail = format!("the callee confirmed page {index} out of order");
                break Err((Outcome::LinkLost, detail));
            }
            ReceiverFrame::Hangup { reason } => {
                let detail = format!("the callee hung up: {reason}");
                break Err(partial_or(Outcome::LinkLost, confirmed, detail));
            }
            ReceiverFrame::Complete { pages, .. } if pages != count || confirmed != count => {
                let detail = format!("the callee stored {pages} of {count} pages");
                break Err((Outcome::Partial, detail));
            }
            ReceiverFrame::Complete { .. } if over_limit => {
                let detail = format!(
                    "the callee takes at most {limit} pages; {count} of {} were sent",
                    report.pages_total
                );
                break Err((Outcome::Partial, detail));
            }
            ReceiverFrame::Complete { .. } => break Ok(()),
        }
    };
    report.pages_confirmed = confirmed;
    report.pages_sent = sent.load(Ordering::Relaxed).max(confirmed);
    result
}

/// A call that ends after some pages arrived is a partial delivery.
fn partial_or(outcome: Outcome, confirmed: u32, detail: String) -> Failure {
    if confirmed > 0 {
        (Outcome::Partial, detail)
    } else {
        (outcome, detail)
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

//! The callee's side of a call: decide, answer with capabilities, store each
//! page and confirm it only once it is safely stored.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::codec::{Capabilities, PageInfo};
use crate::link::frame::{self, FrameError};
use crate::link::message::{
    CHUNK_LEN, CallAnswer, CallRefusal, CallRequest, HeldPages, ReceiverFrame, SenderFrame,
};
pub use crate::link::splice::{read_request, refuse};

/// Biggest page accepted, in encoded bytes: far above any real page (a
/// dithered A3 superfine page is a few MB), far below memory trouble.
pub const MAX_PAGE_BYTES: u64 = 64 << 20;

/// Longest wait, after the final confirmation, for the caller to hang up.
pub const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// How the emulated device behaves when called.
#[derive(Clone, Debug)]
pub struct AnswerPolicy {
    pub capabilities: Capabilities,
    /// Answer every call with "busy".
    pub busy: bool,
    /// Refuse every call.
    pub reject: bool,
    /// Hang up (drop the line) right after confirming this many pages.
    pub hangup_after_page: Option<u32>,
    /// Longest wait for the next frame from the caller.
    pub idle_timeout: Duration,
}

impl AnswerPolicy {
    pub fn new(capabilities: Capabilities) -> AnswerPolicy {
        AnswerPolicy {
            capabilities,
            busy: false,
            reject: false,
            hangup_after_page: None,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Where received pages go. `store_page` must return only once the page is
/// durable (written and synced): its return is what the caller is told.
pub trait PageSink: Send + 'static {
    fn store_page(&mut self, index: u32, info: &PageInfo, data: &[u8]) -> std::io::Result<()>;
    /// All pages are in: make the fax complete and return where it is.
    fn finish(&mut self) -> std::io::Result<String>;
    /// What the sink already holds of this call id from an earlier attempt
    /// (a retry); offered to the caller, who then sends only the rest.
    fn held(&self) -> Option<HeldPages> {
        None
    }
    /// The caller starts over at page 0 (its pages differ from those held):
    /// drop the held pages.
    fn start_over(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How an answered call ended.
#[derive(Debug)]
pub enum Answered {
    /// Every page stored; the fax is at `file`. `held` of the pages were
    /// already there from an earlier attempt of the same call id.
    Received { pages: u32, file: String, held: u32 },
    /// Refused before any page.
    Refused(CallRefusal),
    /// Ended early, keeping `pages` stored pages.
    Incomplete { pages: u32, reason: String },
}

/// Answers `request` on `stream` under `policy`; `open_sink` is called only
/// when the call is accepted and may refuse it (e.g. the directory is not
/// writable).
pub async fn answer<S, K>(
    stream: &mut S,
    request: &CallRequest,
    policy: &AnswerPolicy,
    open_sink: impl FnOnce(&CallRequest) -> std::io::Result<K>,
) -> Answered
where
    S: AsyncRead + AsyncWrite + Unpin,
    K: PageSink,
{
    if policy.busy {
        refuse(stream, request, CallRefusal::Busy, "the line is busy").await;
        return Answered::Refused(CallRefusal::Busy);
    }
    if policy.reject {
        refuse(
            stream,
            request,
            CallRefusal::Rejected,
            "the device refuses calls",
        )
        .await;
        return Answered::Refused(CallRefusal::Rejected);
    }
    let sink = match open_sink(request) {
        Ok(s) => s,
        Err(e) => {
            let detail = format!("the callee cannot store faxes: {e}");
            refuse(stream, request, CallRefusal::Rejected, &detail).await;
            return Answered::Refused(CallRefusal::Rejected);
        }
    };
    let held = sink.held();
    if let Some(h) = &held {
        tracing::info!(call = %request.call_id, pages = h.pages, complete = h.complete,
            "a retry: offering the pages already held");
    }
    let accepted = CallAnswer::Accepted {
        capabilities: policy.capabilities.clone(),
        via: request.via.clone(),
        held: held.clone(),
    };
    if let Err(e) = frame::write_msg(stream, &accepted).await {
        return Answered::Incomplete {
            pages: 0,
            reason: format!("cannot answer: {e}"),
        };
    }
    let held = held.map_or(0, |h| h.pages);
    receive_pages(stream, policy, sink, held).await
}

/// Tells the caller why this device hangs up (best effort: the caller may
/// be gone already) and ends the call incomplete with `pages` stored.
async fn hang_up<S: AsyncWrite + Unpin>(stream: &mut S, pages: u32, reason: String) -> Answered {
    let hangup = ReceiverFrame::Hangup {
        reason: reason.clone(),
    };
    let _ = frame::write_msg(stream, &hangup).await;
    Answered::Incomplete { pages, reason }
}

async fn receive_pages<S, K>(
    stream: &mut S,
    policy: &AnswerPolicy,
    mut sink: K,
    mut held: u32,
) -> Answered
where
    S: AsyncRead + AsyncWrite + Unpin,
    K: PageSink,
{
    // Pages on disk for this call id; a retry starts with those held.
    let mut stored = held;
    let mut first_frame = true;
    let incomplete = |pages, reason: String| Answered::Incomplete { pages, reason };
    // One buffer for every page of the call: a fresh one per page would be
    // faulted in (and zeroed by the kernel) page after page.
    let mut data = Vec::new();
    // A page stored whose confirmation is held back, to travel with what
    // answers the caller's next frame: the end of the document usually
    // arrives with the last page, and then `PageConfirmed` and `Complete`
    // cross every hop as one frame. It is held only while the caller's
    // next frame is already here, so no confirmation waits on the caller.
    let mut unconfirmed: Option<u32> = None;
    loop {
        let next = match unconfirmed {
            Some(index) => match frame_if_arrived(stream, policy.idle_timeout).await {
                Some(next) => next,
                None => {
                    unconfirmed = None;
                    if frame::write_msg(stream, &ReceiverFrame::PageConfirmed { index })
                        .await
                        .is_err()
                    {
                        return incomplete(stored, "the caller hung up".into());
                    }
                    read_frame(stream, policy.idle_timeout).await
                }
            },
            None => read_frame(stream, policy.idle_timeout).await,
        };
        let frame = match next {
            Ok(Some(buf)) => decode(&buf),
            Ok(None) => return incomplete(stored, "the caller hung up".into()),
            Err(e) => Err(e),
        };
        let (index, info) = match frame {
            Ok(SenderFrame::Page { index, info }) => (index, info),
            Ok(SenderFrame::EndOfDocument) => break,
            Err(e) => {
                // A stored page is still confirmed, as far as the caller listens.
                if let Some(index) = unconfirmed {
                    let _ = frame::write_msg(stream, &ReceiverFrame::PageConfirmed { index }).await;
                }
                return incomplete(stored, e);
            }
        };
        if let Some(confirmed) = unconfirmed.take()
            && frame::write_msg(stream, &ReceiverFrame::PageConfirmed { index: confirmed })
                .await
                .is_err()
        {
            return incomplete(stored, "the caller hung up".into());
        }
        if std::mem::take(&mut first_frame) && index == 0 && held > 0 {
            // The caller's pages differ from the ones held: start over.
            if let Err(e) = sink.start_over() {
                let reason = format!("cannot start the fax over: {e}");
                return hang_up(stream, stored, reason).await;
            }
            tracing::info!(
                held,
                "the caller's pages differ from those held; starting over"
            );
            (stored, held) = (0, 0);
        }
        if index != stored {
            return incomplete(stored, format!("page {index} arrived, expected {stored}"));
        }
        if stored >= policy.capabilities.max_pages {
            let reason = format!(
                "this device takes at most {} pages",
                policy.capabilities.max_pages
            );
            return hang_up(stream, stored, reason).await;
        }
        if let Err(e) = crate::codec::decode::check_geometry(info.width, info.height) {
            let reason = format!("page {index}: {e}");
            return hang_up(stream, stored, reason).await;
        }
        if info.data_len > MAX_PAGE_BYTES {
            let reason = format!(
                "page {index} is {} bytes, over the {MAX_PAGE_BYTES} byte limit",
                info.data_len
            );
            return hang_up(stream, stored, reason).await;
        }
        // The announced length is the caller's word: reserve a bounded
        // start and let the data that really arrives grow the page.
        data.clear();
        data.reserve(info.data_len.min(1 << 20) as usize);
        while (data.len() as u64) < info.data_len {
            // No frame may run past the announced length.
            let left = (info.data_len - data.len() as u64).min(CHUNK_LEN as u64) as usize;
            let read = frame::read_raw_into(stream, &mut data, left);
            match tokio::time::timeout(policy.idle_timeout, read).await {
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => return incomplete(stored, "the caller hung up".into()),
                Ok(Err(FrameError::TooLarge { .. })) => {
                    let reason = format!("page {index} data runs past its announced length");
                    return incomplete(stored, reason);
                }
                Ok(Err(e)) => return incomplete(stored, format!("call stream failed: {e}")),
                Err(_) => {
                    let wait = policy.idle_timeout;
                    return incomplete(stored, format!("the caller sent nothing for {wait:?}"));
                }
            }
        }
        // Disk I/O and fsync off the async threads; the sink comes back with the result.
        let stored_page = tokio::task::spawn_blocking(move || {
            let r = sink.store_page(index, &info, &data);
            (sink, data, r)
        })
        .await;
        (sink, data) = match stored_page {
            Ok((sink, data, Ok(()))) => (sink, data),
            Ok((_, _, Err(e))) => {
                let reason = format!("cannot store page {}: {e}", index + 1);
                return hang_up(stream, stored, reason).await;
            }
            Err(e) => return incomplete(stored, format!("page store task failed: {e}")),
        };
        stored += 1;
        if policy.hangup_after_page == Some(stored) {
            let _ = frame::write_msg(stream, &ReceiverFrame::PageConfirmed { index }).await;
            return incomplete(stored, format!("hung up after page {stored} as asked"));
        }
        unconfirmed = Some(index);
    }
    let confirmed = unconfirmed.map(|index| ReceiverFrame::PageConfirmed { index });
    let finished = tokio::task::spawn_blocking(move || sink.finish()).await;
    match finished {
        Ok(Ok(file)) => {
            let done = ReceiverFrame::Complete {
                pages: stored,
                file: file.clone(),
            };
            let frames: Vec<_> = confirmed.into_iter().chain([done]).collect();
            let _ = frame::write_msgs(stream, &frames).await;
            wait_for_release(stream).await;
            Answered::Received {
                pages: stored,
                file,
                held,
            }
        }
        Ok(Err(e)) => {
            if let Some(confirmed) = confirmed {
                let _ = frame::write_msg(stream, &confirmed).await;
            }
            let reason = format!("cannot complete the fax: {e}");
            hang_up(stream, stored, reason).await
        }
        Err(e) => incomplete(stored, format!("finish task failed: {e}")),
    }
}

/// The caller's next frame, read whole, if its first byte has already
/// arrived; `None`, having read nothing, when nothing is waiting.
async fn frame_if_arrived<S: AsyncRead + Unpin>(
    stream: &mut S,
    wait: Duration,
) -> Option<Result<Option<Vec<u8>>, String>> {
    let mut first = [0u8; 1];
    // One poll with a waker that does nothing: a stream that has nothing
    // returns Pending and reads nothing, and the next read registers a
    // real waker.
    let polled = {
        let mut buf = ReadBuf::new(&mut first);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut *stream).poll_read(&mut cx, &mut buf) {
            Poll::Pending => return None,
            Poll::Ready(read) => read.map(|()| buf.filled().len()),
        }
    };
    match polled {
        Err(e) => Some(Err(format!("call stream failed: {e}"))),
        Ok(0) => Some(Ok(None)),
        Ok(_) => Some(read_frame(&mut (&first[..]).chain(&mut *stream), wait).await),
    }
}

/// The release: waits (up to [`RELEASE_WAIT`]) until the caller ends the
/// call, which it does once it has read the final confirmation. A write to
/// a multiplexed stream only queues the frame; without this wait a device
/// that goes away right after the call (faxrecv --once exits) could take
/// `Complete` with it, and the caller would report a complete fax as cut.
async fn wait_for_release<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut buf = [0u8; 256];
    let _ = tokio::time::timeout(RELEASE_WAIT, async {
        // Anything the caller still sends is of no use now; EOF or an error ends it.
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Reads one frame from the caller; `Ok(None)` when the caller hung up.
async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    wait: Duration,
) -> Result<Option<Vec<u8>>, String> {
    match tokio::time::timeout(wait, frame::read_frame(stream, frame::max_frame_len())).await {
        Err(_) => Err(format!("the caller sent nothing for {wait:?}")),
        Ok(Err(FrameError::Io(e))) => Err(format!("call stream failed: {e}")),
        Ok(Err(e)) => Err(format!("bad frame from the caller: {e}")),
        Ok(Ok(f)) => Ok(f),
    }
}

/// Decodes a caller's message frame.
fn decode(buf: &[u8]) -> Result<SenderFrame, String> {
    postcard::from_bytes(buf).map_err(|e| format!("bad frame from the caller: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::message::CHUNK_LEN;
    use crate::link::pages::{self, testing::Recorded, testing::page};
    use crate::number::CallId;

    /// Pages kept in memory.
    #[derive(Default)]
    struct Memory(Vec<Vec<u8>>);

    impl PageSink for Memory {
        fn store_page(&mut self, _: u32, _: &PageInfo, data: &[u8]) -> std::io::Result<()> {
            self.0.push(data.to_vec());
            Ok(())
        }
        fn finish(&mut self) -> std::io::Result<String> {
            Ok(format!("{} pages", self.0.len()))
        }
    }

    fn request() -> CallRequest {
        CallRequest {
            call_id: CallId::random(),
            from: "1001".parse().unwrap(),
            to: "2002".parse().unwrap(),
            pages: 2,
            bytes: 0,
            via: Vec::new(),
        }
    }

    async fn frames_of(mut bytes: &[u8]) -> Vec<ReceiverFrame> {
        let mut out = Vec::new();
        while let Some(f) = frame::read_msg::<_, ReceiverFrame>(&mut bytes)
            .await
            .unwrap()
        {
            out.push(f);
        }
        out
    }

    #[tokio::test]
    async fn the_last_confirmation_travels_with_complete_when_the_end_came_with_the_page() {
        let mut from_caller = Vec::new();
        pages::write_page(&mut from_caller, 0, &page(3000), None)
            .await
            .unwrap();
        let end = SenderFrame::EndOfDocument;
        pages::write_page(&mut from_caller, 1, &page(CHUNK_LEN + 5), Some(&end))
            .await
            .unwrap();
        let mut line = Recorded::new(from_caller);
        let policy = AnswerPolicy::new(Capabilities::all());
        let answered = answer(&mut line, &request(), &policy, |_| Ok(Memory::default())).await;
        assert!(
            matches!(answered, Answered::Received { pages: 2, .. }),
            "{answered:?}"
        );
        // The answer, page 0's confirmation once page 1 is read, then page
        // 1's confirmation and Complete in one write.
        assert_eq!(line.writes.len(), 3, "{:?}", line.writes);
        assert_eq!(
            frames_of(&line.writes[1]).await,
            [ReceiverFrame::PageConfirmed { index: 0 }]
        );
        assert_eq!(
            frames_of(&line.writes[2]).await,
            [
                ReceiverFrame::PageConfirmed { index: 1 },
                ReceiverFrame::Complete {
                    pages: 2,
                    file: "2 pages".into()
                }
            ]
        );
    }

    /// The callee's next frame, which must come within 5 s.
    async fn next<R: AsyncRead + Unpin>(rx: &mut R) -> Vec<u8> {
        let read = frame::read_frame(rx, frame::max_frame_len());
        let buf = tokio::time::timeout(Duration::from_secs(5), read).await;
        buf.expect("a frame in time").unwrap().expect("a frame")
    }

    #[tokio::test]
    async fn a_caller_that_waits_for_each_confirmation_gets_it_at_once() {
        let (mut callee, caller) = tokio::io::duplex(1 << 20);
        let caller = tokio::spawn(async move {
            let (mut rx, mut tx) = tokio::io::split(caller);
            let accepted: CallAnswer = postcard::from_bytes(&next(&mut rx).await).unwrap();
            assert!(matches!(accepted, CallAnswer::Accepted { .. }));
            let mut heard = Vec::new();
            for index in 0..2 {
                pages::write_page(&mut tx, index, &page(500), None)
                    .await
                    .unwrap();
                // Nothing more is sent before this page is confirmed.
                heard.push(postcard::from_bytes::<ReceiverFrame>(&next(&mut rx).await).unwrap());
            }
            frame::write_msg(&mut tx, &SenderFrame::EndOfDocument)
                .await
                .unwrap();
            heard.push(postcard::from_bytes(&next(&mut rx).await).unwrap());
            heard
        });
        let policy = AnswerPolicy::new(Capabilities::all());
        let answered = answer(&mut callee, &request(), &policy, |_| Ok(Memory::default())).await;
        assert!(
            matches!(answered, Answered::Received { pages: 2, .. }),
            "{answered:?}"
        );
        assert_eq!(
            caller.await.unwrap(),
            [
                ReceiverFrame::PageConfirmed { index: 0 },
                ReceiverFrame::PageConfirmed { index: 1 },
                ReceiverFrame::Complete {
                    pages: 2,
                    file: "2 pages".into()
                }
            ]
        );
    }
}

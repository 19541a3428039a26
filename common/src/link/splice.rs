//! What every hop (gateway or relay) does with a call stream: read the
//! request, let the hop decide where it goes, forward the request, then
//! splice the two streams without parsing what follows.

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

use super::flow::Flow;
use super::frame;
use super::message::{CallAnswer, CallRefusal, CallRequest, Refusal};
use super::mux::{MuxStream, Opener};
use crate::jobs::{self, JobRequest};

/// Longest wait for the request frame on a new call stream.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How a call ended at one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopEnd {
    /// The stream closed or broke before a request arrived.
    NoRequest(String),
    /// This hop refused the call.
    Refused(CallRefusal),
    /// Spliced; bytes towards the callee and back.
    Relayed { to_callee: u64, to_caller: u64 },
    /// Spliced, then cut by an error on either side.
    Cut(String),
}

/// Why a call stream brought no request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no call request within {0:?}")]
    Timeout(Duration),
    #[error("bad call request: {0}")]
    Bad(#[from] frame::FrameError),
    #[error("call stream closed before the request")]
    Closed,
}

/// Reads the request that opens a call stream.
pub async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    wait: Duration,
) -> Result<CallRequest, RequestError> {
    match tokio::time::timeout(wait, frame::read_msg::<_, CallRequest>(stream)).await {
        Err(_) => Err(RequestError::Timeout(wait)),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok(None)) => Err(RequestError::Closed),
        Ok(Ok(Some(r))) => Ok(r),
    }
}

/// What opens a stream a device opened towards its gateway.
#[derive(Debug)]
pub enum Opening {
    Call(CallRequest),
    /// A request to the gateway's queue (see `crate::jobs`).
    Jobs(JobRequest),
}

/// Reads a device stream's first frame: a call request or a jobs request.
pub async fn read_opening<S: AsyncRead + Unpin>(
    stream: &mut S,
    wait: Duration,
) -> Result<Opening, RequestError> {
    let first = tokio::time::timeout(wait, frame::read_frame(stream, frame::max_frame_len()));
    let first = match first.await {
        Err(_) => return Err(RequestError::Timeout(wait)),
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(None)) => return Err(RequestError::Closed),
        Ok(Ok(Some(first))) => first,
    };
    match jobs::decode_request(&first) {
        Some(jobs) => Ok(Opening::Jobs(jobs.map_err(frame::FrameError::from)?)),
        None => Ok(Opening::Call(
            postcard::from_bytes(&first).map_err(frame::FrameError::from)?,
        )),
    }
}

/// Answers a call with a refusal.
pub async fn refuse<S: AsyncWrite + Unpin>(
    stream: &mut S,
    request: &CallRequest,
    reason: CallRefusal,
    detail: &str,
) {
    let answer = CallAnswer::Refused {
        reason,
        detail: detail.to_owned(),
        via: request.via.clone(),
    };
    let _ = frame::write_msg(stream, &answer).await;
}

/// Carries one call stream through a hop. `relay_name` is `Some` at a relay,
/// which adds itself to the request's path; `decide` names the link the call
/// goes to next, or why it cannot go on.
pub async fn carry(
    upstream: MuxStream,
    relay_name: Option<&str>,
    decide: impl FnOnce(&CallRequest) -> Result<Opener, Refusal>,
) -> HopEnd {
    carry_async(upstream, relay_name, async move |request: &CallRequest| {
        decide(request)
    })
    .await
}

/// [`carry`] for a hop whose decision may wait, e.g. on a directory lookup
/// or on dialing the next relay.
pub async fn carry_async(
    upstream: MuxStream,
    relay_name: Option<&str>,
    decide: impl AsyncFnOnce(&CallRequest) -> Result<Opener, Refusal>,
) -> HopEnd {
    carry_capped(upstream, relay_name, |_| None, decide).await
}

/// [`carry_async`] that cuts the call once more than `cap(request)` bytes
/// came from the caller after the request: a hop's bound on a call's page
/// data that needs no parsing of the pages.
pub async fn carry_capped(
    mut upstream: MuxStream,
    relay_name: Option<&str>,
    cap: impl FnOnce(&CallRequest) -> Option<u64>,
    decide: impl AsyncFnOnce(&CallRequest) -> Result<Opener, Refusal>,
) -> HopEnd {
    let request = match read_request(&mut upstream, REQUEST_TIMEOUT).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "call stream dropped");
            return HopEnd::NoRequest(e.to_string());
        }
    };
    carry_request(upstream, request, relay_name, cap, decide).await
}

/// [`carry_capped`] for a call whose request the hop has read already
/// (a gateway tells calls from jobs streams by their first frame).
pub async fn carry_request(
    mut upstream: MuxStream,
    mut request: CallRequest,
    relay_name: Option<&str>,
    cap: impl FnOnce(&CallRequest) -> Option<u64>,
    decide: impl AsyncFnOnce(&CallRequest) -> Result<Opener, Refusal>,
) -> HopEnd {
    // A span per call at debug level only: at info, tracing's span registry
    // keeps a slot for every call ever in flight at once (after 1,000 calls
    // at once a relay kept about 2 MB more than with the span off), so the
    // two info events below name the call themselves.
    let span =
        tracing::debug_span!("call", id = %request.call_id, from = %request.from, to = %request.to);
    async move {
        let decision = decide(&request).await;
        let cap = cap(&request);
        if let Some(name) = relay_name {
            request.via.push(name.to_owned());
        }
        let next = match decision {
            Ok(opener) => opener.open().await.map_err(|e| {
                let detail = format!("cannot open a stream towards {}: {e}", request.to);
                Refusal::new(CallRefusal::Unreachable, detail)
            }),
            Err(e) => Err(e),
        };
        let mut downstream = match next {
            Ok(s) => s,
            Err(Refusal { reason, detail }) => {
                let (call, from, to) = (&request.call_id, &request.from, &request.to);
                tracing::info!(%call, %from, %to, %reason, %detail, "call refused");
                refuse(&mut upstream, &request, reason, &detail).await;
                return HopEnd::Refused(reason);
            }
        };
        if let Err(e) = frame::write_msg(&mut downstream, &request).await {
            let detail = format!("the link towards {} failed: {e}", request.to);
            refuse(&mut upstream, &request, CallRefusal::Unreachable, &detail).await;
            return HopEnd::Refused(CallRefusal::Unreachable);
        }
        tracing::debug!("relaying");
        // Page data towards the callee stops at the cap (no cap: u64::MAX).
        let mut to_callee = Flow::capped(cap.unwrap_or(u64::MAX));
        let mut to_caller = Flow::capped(u64::MAX);
        // Both directions in this one task; one failing ends the call, but
        // only once the other has passed on what it already holds (a page
        // confirmation that reached this hop reaches the caller even when
        // the path towards the callee has just broken).
        let carried = poll_fn(|cx| {
            let towards_callee = to_callee.poll(cx, &mut upstream, &mut downstream);
            let towards_caller = to_caller.poll(cx, &mut downstream, &mut upstream);
            match (towards_callee, towards_caller) {
                (Poll::Ready(Err(e)), _) | (_, Poll::Ready(Err(e))) => Poll::Ready(Err(e)),
                (Poll::Ready(Ok(())), Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
                _ => Poll::Pending,
            }
        })
        .await;
        match carried {
            Ok(()) => {
                let (to_callee, to_caller) = (to_callee.carried(), to_caller.carried());
                tracing::debug!(to_callee, to_caller, "call ended");
                HopEnd::Relayed {
                    to_callee,
                    to_caller,
                }
            }
            Err(e) => {
                let (call, from, to) = (&request.call_id, &request.from, &request.to);
                tracing::info!(%call, %from, %to, error = %e, "call cut");
                HopEnd::Cut(e.to_string())
            }
        }
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::mux::{self, Side};
    use crate::number::CallId;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::compat::TokioAsyncReadCompatExt;

    /// A link over an in-memory pipe: the dialer's opener, the acceptor's inbound streams.
    fn link() -> (Opener, mux::Incoming) {
        let (a, b) = tokio::io::duplex(256 * 1024);
        let (opener, _) = mux::start(a.compat(), Side::Dialer, 16);
        let (_, inbound) = mux::start(b.compat(), Side::Acceptor, 16);
        (opener, inbound)
    }

    fn request() -> CallRequest {
        CallRequest {
            call_id: CallId::random(),
            from: "1001".parse().expect("a number"),
            to: "1002".parse().expect("a number"),
            pages: 1,
            bytes: 0,
            via: vec![],
        }
    }

    /// Bytes that tell their position, so a lost or doubled packet shows.
    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 253) as u8).collect()
    }

    /// caller -> hop (`carry_capped` with `cap`) -> callee. The caller sends
    /// writes of `sizes`, the callee answers with `reply`; returns what the
    /// callee read, what the caller read back, and how the hop ended.
    async fn through_a_hop(
        sizes: &[usize],
        reply: usize,
        cap: Option<u64>,
    ) -> (Vec<u8>, Vec<u8>, HopEnd) {
        let (to_hop, mut hop_in) = link();
        let (hop_out, mut callee_in) = link();
        let hop = tokio::spawn(async move {
            let upstream = hop_in.recv().await.expect("a call stream");
            carry_capped(
                upstream,
                Some("relay-a"),
                |_| cap,
                async move |_: &CallRequest| Ok(hop_out.clone()),
            )
            .await
        });
        let callee = tokio::spawn(async move {
            let mut s = callee_in.recv().await.expect("the spliced stream");
            let req = read_request(&mut s, REQUEST_TIMEOUT)
                .await
                .expect("the request");
            assert_eq!(req.via, ["relay-a"], "the relay adds itself to the path");
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got).await;
            let _ = s.write_all(&data(reply)).await;
            let _ = s.shutdown().await;
            got
        });
        let mut s = to_hop.open().await.expect("a stream");
        frame::write_msg(&mut s, &request())
            .await
            .expect("the request");
        let sent = data(sizes.iter().sum());
        let mut at = 0;
        for n in sizes {
            if s.write_all(&sent[at..at + n]).await.is_err() {
                break;
            }
            at += n;
        }
        let _ = s.shutdown().await;
        let mut back = Vec::new();
        let _ = s.read_to_end(&mut back).await;
        (callee.await.expect("callee"), back, hop.await.expect("hop"))
    }

    #[tokio::test]
    async fn a_hop_carries_small_and_page_sized_writes_both_ways_and_closes_after() {
        // Confirmation-sized writes, page chunks (a framed chunk is one
        // yamux frame), larger writes split by yamux, then small ones again.
        let sizes = [13, 40, 2048, 65_540, 65_540, 300_000, 7, 3000, 1];
        let total: usize = sizes.iter().sum();

        let (got, back, end) = through_a_hop(&sizes, 70_000, None).await;

        assert_eq!(got, data(total));
        assert_eq!(back, data(70_000));
        let to_callee = total as u64;
        assert_eq!(
            end,
            HopEnd::Relayed {
                to_callee,
                to_caller: 70_000
            }
        );
    }

    #[tokio::test]
    async fn a_call_over_its_cap_is_cut_and_the_bytes_over_it_are_not_handed_on() {
        let (got, _, end) = through_a_hop(&[1000, 1000, 1000], 0, Some(2500)).await;

        let HopEnd::Cut(reason) = end else {
            panic!("expected a cut call, got {end:?}");
        };
        assert!(
            reason.contains("more than 2500 bytes, over the limit"),
            "{reason}"
        );
        assert!(got.len() <= 2500, "{} bytes went past the cap", got.len());
        assert_eq!(got, data(got.len()));
    }
}

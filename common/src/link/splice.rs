//! What every hop (gateway or relay) does with a call stream: read the
//! request, let the hop decide where it goes, forward the request, then
//! splice the two streams without parsing what follows.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

use super::capped::Capped;
use super::frame;
use super::message::{CallAnswer, CallRefusal, CallRequest};
use super::mux::{MuxStream, Opener};

/// Buffer per direction of a splice: one page chunk, so a chunk crosses the
/// hop in one read and one write (tokio's default of 8 KiB quarters it).
const SPLICE_BUF: usize = super::message::CHUNK_LEN;

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

/// Reads the request that opens a call stream.
pub async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    wait: Duration,
) -> Result<CallRequest, String> {
    match tokio::time::timeout(wait, frame::read_msg::<_, CallRequest>(stream)).await {
        Err(_) => Err(format!("no call request within {wait:?}")),
        Ok(Err(e)) => Err(format!("bad call request: {e}")),
        Ok(Ok(None)) => Err("call stream closed before the request".into()),
        Ok(Ok(Some(r))) => Ok(r),
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
    decide: impl FnOnce(&CallRequest) -> Result<Opener, (CallRefusal, String)>,
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
    decide: impl AsyncFnOnce(&CallRequest) -> Result<Opener, (CallRefusal, String)>,
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
    decide: impl AsyncFnOnce(&CallRequest) -> Result<Opener, (CallRefusal, String)>,
) -> HopEnd {
    let mut request = match read_request(&mut upstream, REQUEST_TIMEOUT).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "call stream dropped");
            return HopEnd::NoRequest(e);
        }
    };
    let span =
        tracing::info_span!("call", id = %request.call_id, from = %request.from, to = %request.to);
    async move {
        let decision = decide(&request).await;
        let cap = cap(&request);
        if let Some(name) = relay_name {
            request.via.push(name.to_owned());
        }
        let next = match decision {
            Ok(opener) => opener.open().await.map_err(|e| {
                let detail = format!("cannot open a stream towards {}: {e}", request.to);
                (CallRefusal::Unreachable, detail)
            }),
            Err(e) => Err(e),
        };
        let mut downstream = match next {
            Ok(s) => s,
            Err((reason, detail)) => {
                tracing::info!(%reason, %detail, "call refused");
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
        let copied = match cap {
            Some(cap) => {
                let mut capped = Capped::new(&mut upstream, cap);
                tokio::io::copy_bidirectional_with_sizes(
                    &mut capped,
                    &mut downstream,
                    SPLICE_BUF,
                    SPLICE_BUF,
                )
                .await
            }
            None => {
                tokio::io::copy_bidirectional_with_sizes(
                    &mut upstream,
                    &mut downstream,
                    SPLICE_BUF,
                    SPLICE_BUF,
                )
                .await
            }
        };
        match copied {
            Ok((to_callee, to_caller)) => {
                tracing::debug!(to_callee, to_caller, "call ended");
                HopEnd::Relayed {
                    to_callee,
                    to_caller,
                }
            }
            Err(e) => {
                tracing::info!(error = %e, "call cut");
                HopEnd::Cut(e.to_string())
            }
        }
    }
    .instrument(span)
    .await
}

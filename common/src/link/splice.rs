//! What every hop (gateway or relay) does with a call stream: read the
//! request, let the hop decide where it goes, forward the request, then
//! splice the two streams without parsing what follows.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;
use tracing::Instrument;

use super::capped::Capped;
use super::frame;
use super::message::{CallAnswer, CallRefusal, CallRequest};
use super::mux::{MuxStream, Opener};

/// Buffer of a splice direction while page data flows: one framed page
/// chunk, so a chunk crosses the hop in one read and one write (tokio's
/// default of 8 KiB quarters it).
const BUSY_BUF: usize = super::message::CHUNK_FRAME_LEN;
/// Buffer of a splice direction otherwise, inside the call's task. Most of
/// a call's life is requests, answers and confirmations, tens of bytes
/// each: a relay carrying a thousand calls holds a thousand of these, and
/// a page buffer only for the calls whose pages are crossing it right now.
const IDLE_BUF: usize = 2 * 1024;
/// How long a direction keeps its page-sized buffer with nothing to read.
const BUSY_LINGER: Duration = Duration::from_millis(20);

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
        let (up_r, mut up_w) = tokio::io::split(upstream);
        // Page data towards the callee stops at the cap (no cap: u64::MAX).
        let mut up_r = Capped::new(up_r, cap.unwrap_or(u64::MAX));
        let (mut down_r, mut down_w) = tokio::io::split(downstream);
        // One direction failing ends the call: the other is dropped with it.
        match tokio::try_join!(pump(&mut up_r, &mut down_w), pump(&mut down_r, &mut up_w)) {
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

/// Copies one direction of a splice until EOF, then closes the write side.
/// Reads go to a small buffer until one fills it (a page is flowing); then
/// to a page-sized buffer, which is let go once no data has come for
/// [`BUSY_LINGER`] (this hop has caught up and the page is through). So
/// memory per call follows what crosses the hop now, not what might, while
/// a page in flight is carried in page-sized reads and writes even when this
/// hop keeps catching up with its sender between chunks (letting go at the
/// first wait made every chunk a 2 KiB write, then a 62 KiB one, and cost
/// a quarter more CPU per byte at every hop).
async fn pump<R, W>(reader: &mut R, writer: &mut W) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut idle = [0u8; IDLE_BUF];
    let mut busy: Vec<u8> = Vec::new();
    let linger = tokio::time::sleep(BUSY_LINGER);
    tokio::pin!(linger);
    let mut lingering = false;
    let mut total = 0u64;
    loop {
        let (n, into_busy) = poll_fn(|cx| {
            if !busy.is_empty() {
                let mut buf = ReadBuf::new(&mut busy);
                match Pin::new(&mut *reader).poll_read(cx, &mut buf) {
                    Poll::Ready(r) => {
                        lingering = false;
                        return Poll::Ready(r.map(|()| (buf.filled().len(), true)));
                    }
                    Poll::Pending => {
                        if !lingering {
                            linger.as_mut().reset(Instant::now() + BUSY_LINGER);
                            lingering = true;
                        }
                        if linger.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        // Quiet for a while: wait with the small buffer (a
                        // reader may be polled with another buffer each time).
                        busy = Vec::new();
                        lingering = false;
                    }
                }
            }
            let mut buf = ReadBuf::new(&mut idle);
            ready!(Pin::new(&mut *reader).poll_read(cx, &mut buf))?;
            Poll::Ready(Ok((buf.filled().len(), false)))
        })
        .await?;
        if n == 0 {
            writer.shutdown().await?;
            return Ok(total);
        }
        let chunk = if into_busy {
            &busy[..n]
        } else if n < IDLE_BUF {
            &idle[..n]
        } else {
            // A page is flowing: go on in the page-sized buffer, and take
            // what has already arrived with the small read in one write.
            busy = vec![0; BUSY_BUF];
            busy[..n].copy_from_slice(&idle);
            let more = poll_fn(|cx| {
                let mut buf = ReadBuf::new(&mut busy[n..]);
                match Pin::new(&mut *reader).poll_read(cx, &mut buf) {
                    Poll::Ready(r) => Poll::Ready(r.map(|()| buf.filled().len())),
                    Poll::Pending => Poll::Ready(Ok(0)),
                }
            })
            .await?;
            &busy[..n + more]
        };
        writer.write_all(chunk).await?;
        writer.flush().await?;
        total += chunk.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn pump_carries_small_and_page_sized_writes_and_closes_after() {
        // Confirmation-sized writes, then page chunks, then small ones again.
        let sizes = [13usize, 40, 2048, 65_540, 65_536, 100_000, 7, 3000, 1];
        let data: Vec<u8> = (0..sizes.iter().sum::<usize>())
            .map(|i| (i % 253) as u8)
            .collect();
        let (mut caller, mut hop_in) = tokio::io::duplex(16 * 1024);
        let (mut hop_out, mut callee) = tokio::io::duplex(16 * 1024);
        let hop = tokio::spawn(async move { pump(&mut hop_in, &mut hop_out).await });
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            let mut at = 0;
            for n in sizes {
                caller.write_all(&sent[at..at + n]).await.unwrap();
                at += n;
            }
        });
        let mut got = Vec::new();
        callee.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(hop.await.unwrap().unwrap(), data.len() as u64);
        assert_eq!(got, data);
    }
}

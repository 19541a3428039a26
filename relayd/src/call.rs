//! A call stream through the relay: read the request, check the caller,
//! find the callee's link, open a stream there and splice the two. Page data
//! is never parsed here.

use std::sync::Arc;
use std::time::Duration;

use common::device::answer::refuse;
use common::link::frame;
use common::link::message::{CallRefusal, CallRequest};
use common::link::mux::MuxStream;
use tracing::Instrument;

use crate::registry::LinkId;
use crate::server::Relay;

/// Longest wait for the request frame on a new call stream.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Handles a call stream opened by the link `from_link`, as a tracked task.
pub fn spawn(relay: &Arc<Relay>, from_link: LinkId, stream: MuxStream) {
    let relay2 = relay.clone();
    relay.calls.spawn(async move {
        relay_call(relay2, from_link, stream).await;
    });
}

async fn relay_call(relay: Arc<Relay>, from_link: LinkId, mut upstream: MuxStream) {
    let request = match common::device::answer::read_request(&mut upstream, REQUEST_TIMEOUT).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "call stream dropped");
            return;
        }
    };
    let span =
        tracing::info_span!("call", id = %request.call_id, from = %request.from, to = %request.to);
    async move {
        match route(&relay, from_link, &request).await {
            Ok((mut downstream, forwarded)) => {
                if let Err(e) = frame::write_msg(&mut downstream, &forwarded).await {
                    let detail = format!("the link towards {} failed: {e}", request.to);
                    refuse(&mut upstream, &forwarded, CallRefusal::Unreachable, &detail).await;
                    return;
                }
                tracing::info!("relaying");
                match tokio::io::copy_bidirectional(&mut upstream, &mut downstream).await {
                    Ok((up, down)) => {
                        tracing::info!(bytes_to_callee = up, bytes_to_caller = down, "call ended")
                    }
                    Err(e) => tracing::info!(error = %e, "call cut"),
                }
            }
            Err((reason, detail)) => {
                tracing::info!(%reason, %detail, "call refused");
                let mut answered = request.clone();
                answered.via.push(relay.config.name.clone());
                refuse(&mut upstream, &answered, reason, &detail).await;
            }
        }
    }
    .instrument(span)
    .await
}

/// Decides where the call goes and opens the next hop's stream; returns the
/// stream and the request to forward (with this relay added to its path).
async fn route(
    relay: &Relay,
    from_link: LinkId,
    request: &CallRequest,
) -> Result<(MuxStream, CallRequest), (CallRefusal, String)> {
    if relay.draining.is_cancelled() {
        return Err((
            CallRefusal::Unreachable,
            format!("relay {} is shutting down", relay.config.name),
        ));
    }
    if !relay.registry.may_call_as(from_link, &request.from) {
        return Err((
            CallRefusal::NotAuthorized,
            format!("{} is not logged in on this link", request.from),
        ));
    }
    let Some(route) = relay.registry.receiver(&request.to) else {
        return Err(match relay.store.get(&request.to) {
            Ok(Some(_)) => (CallRefusal::Offline, format!("{} is offline", request.to)),
            Ok(None) => (
                CallRefusal::UnknownNumber,
                format!("{} is not a known number", request.to),
            ),
            Err(e) => (CallRefusal::Unreachable, format!("directory error: {e}")),
        });
    };
    let downstream = route.opener.open().await.map_err(|e| {
        (
            CallRefusal::Unreachable,
            format!("cannot reach {}: {e}", request.to),
        )
    })?;
    let mut forwarded = request.clone();
    forwarded.via.push(relay.config.name.clone());
    Ok((downstream, forwarded))
}

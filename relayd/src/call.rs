//! Routing a call stream at the relay: the caller must be logged in on the
//! link it calls from, and the callee must be online here. The stream itself
//! is carried by `common::link::splice`.

use std::sync::Arc;

use common::link::message::{CallRefusal, CallRequest};
use common::link::mux::{MuxStream, Opener};
use common::link::splice;

use crate::registry::LinkId;
use crate::server::Relay;

/// Handles a call stream opened by the link `from_link`, as a tracked task.
pub fn spawn(relay: &Arc<Relay>, from_link: LinkId, stream: MuxStream) {
    let relay2 = relay.clone();
    relay.calls.spawn(async move {
        let relay = relay2;
        let name = relay.config.name.clone();
        splice::carry(stream, Some(&name), |req| route(&relay, from_link, req)).await;
    });
}

/// Where a call goes next, or why it cannot go on.
fn route(
    relay: &Relay,
    from_link: LinkId,
    request: &CallRequest,
) -> Result<Opener, (CallRefusal, String)> {
    if relay.draining.is_cancelled() {
        let detail = format!("relay {} is shutting down", relay.config.name);
        return Err((CallRefusal::Unreachable, detail));
    }
    if !relay.registry.may_call_as(from_link, &request.from) {
        let detail = format!("{} is not logged in on this link", request.from);
        return Err((CallRefusal::NotAuthorized, detail));
    }
    if let Some(route) = relay.registry.receiver(&request.to) {
        return Ok(route.opener);
    }
    Err(match relay.store.get(&request.to) {
        Ok(Some(_)) => (CallRefusal::Offline, format!("{} is offline", request.to)),
        Ok(None) => (
            CallRefusal::UnknownNumber,
            format!("{} is not a known number", request.to),
        ),
        Err(e) => (CallRefusal::Unreachable, format!("directory error: {e}")),
    })
}

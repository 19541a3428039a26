//! Routing a call stream at the relay. A call from a device or gateway link
//! must come from a number logged in on that link (peer relays are trusted
//! fleet members: the first relay checked it). The callee is either homed
//! here (delivered down its link) or elsewhere (sent to the next relay on the
//! best path, or in directory mode straight to its home relay). The stream
//! itself is carried by `common::link::splice`.

use std::sync::Arc;

use common::link::message::{CallRequest, Refusal};
use common::link::mux::{MuxStream, Opener};
use common::link::splice;
use common::number::Number;

use crate::directory;
use crate::relay::Relay;
use crate::relay_core::route::{self, Caller, Destination, RouteError};

/// Handles a call stream as a tracked task.
pub fn spawn(relay: &Arc<Relay>, from: Caller, stream: MuxStream) {
    let relay2 = relay.clone();
    relay.calls.spawn(async move {
        let relay = relay2;
        let name = relay.config.name.clone();
        let mut pages = None;
        // Held until the call ends: it counts against the caller's limits.
        let mut _slot = None;
        let limits = &relay.limits.limits;
        // What the caller may send after its request, from its declared
        // pages (see `limits`).
        let cap = |req: &CallRequest| Some(limits.splice_cap(req));
        let end = splice::carry_capped(stream, Some(&name), cap, async |req: &CallRequest| {
            pages = Some(req.pages);
            let logged_in = match from {
                Caller::Link(link) => Some(relay.core().may_call_as(link, &req.from)),
                Caller::Peer => None,
            };
            route::admit(&name, relay.draining.is_cancelled(), req, logged_in)?;
            limits.check_request(req)?;
            if let Caller::Link(link) = from {
                _slot = Some(relay.limits.call_slot(&req.from, link)?);
            }
            match relay.redis() {
                Some(dir) => directory::route(&relay, dir, &req.to, spawn).await,
                None => route_mesh(&relay, &req.to),
            }
        })
        .await;
        relay.metrics.call_ended(&end, pages);
    });
}

/// Mesh mode: where a call goes next along the routing table.
fn route_mesh(relay: &Relay, to: &Number) -> Result<Opener, Refusal> {
    let local = relay.core().receiver(to);
    match route::route(&relay.config.name, to, relay.mesh.found(to), local)? {
        Destination::Local(link) => Ok(link.opener().clone()),
        Destination::Relay { name, home } => relay.mesh.peer_opener(&name).ok_or_else(|| {
            // The peer's link went down since the lookup.
            RouteError::NoPath {
                number: to.clone(),
                home,
            }
            .into()
        }),
    }
}

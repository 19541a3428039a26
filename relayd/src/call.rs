//! Routing a call stream at the relay. A call from a device or gateway link
//! must come from a number logged in on that link (peer relays are trusted
//! fleet members: the first relay checked it). The callee is either homed
//! here (delivered down its link) or elsewhere (sent to the next relay on the
//! best path, or in directory mode straight to its home relay). The stream
//! itself is carried by `common::link::splice`.

use std::sync::Arc;

use common::link::message::{CallRefusal, CallRequest};
use common::link::mux::{MuxStream, Opener};
use common::link::splice;

use common::number::Number;

use crate::mesh::Lookup;
use crate::redis_dir;
use crate::registry::LinkId;
use crate::server::Relay;

/// Where a call stream came from.
#[derive(Clone, Copy, Debug)]
pub enum From {
    /// A gateway or device link.
    Link(LinkId),
    /// A peer relay.
    Peer,
}

/// Handles a call stream as a tracked task.
pub fn spawn(relay: &Arc<Relay>, from: From, stream: MuxStream) {
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
            check(&relay, from, req)?;
            limits.check_request(req)?;
            if let From::Link(link) = from {
                _slot = Some(relay.limits.call_slot(&req.from, link)?);
            }
            match relay.redis() {
                Some(dir) => redis_dir::route(&relay, dir, &req.to).await,
                None => route_mesh(&relay, &req.to),
            }
        })
        .await;
        relay.metrics.call_ended(&end, pages);
    });
}

/// Whether this relay takes the call at all.
fn check(relay: &Relay, from: From, request: &CallRequest) -> Result<(), (CallRefusal, String)> {
    let me = &relay.config.name;
    if relay.draining.is_cancelled() {
        return Err((
            CallRefusal::Unreachable,
            format!("relay {me} is shutting down"),
        ));
    }
    if request.via.iter().any(|r| r == me) {
        // Paths are loop-free by construction; this guards against a bug or
        // a peer with a stale view.
        let detail = format!("routing loop: the call came back to relay {me}");
        return Err((CallRefusal::Unreachable, detail));
    }
    if let From::Link(link) = from
        && !relay.registry.may_call_as(link, &request.from)
    {
        let detail = format!("{} is not logged in on this link", request.from);
        return Err((CallRefusal::NotAuthorized, detail));
    }
    Ok(())
}

/// Mesh mode: where a call goes next along the routing table.
fn route_mesh(relay: &Relay, to: &Number) -> Result<Opener, (CallRefusal, String)> {
    match relay.mesh.lookup(to) {
        Lookup::Unknown => Err((
            CallRefusal::UnknownNumber,
            format!("{to} is not a known number"),
        )),
        Lookup::Local => match relay.registry.receiver(to) {
            Some(route) => Ok(route.opener),
            None => Err((CallRefusal::Offline, format!("{to} is offline"))),
        },
        Lookup::Offline { home } => Err((
            CallRefusal::Offline,
            format!("{to} is offline (home relay {home})"),
        )),
        Lookup::Via { opener, .. } => Ok(opener),
        Lookup::NoRoute { home } => Err((
            CallRefusal::Unreachable,
            format!("no path to relay {home}, where {to} is logged in"),
        )),
    }
}

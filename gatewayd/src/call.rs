//! Call streams through the gateway: from a LAN device up to the relay, and
//! from the relay down to the device that answers the number. The stream is
//! carried by `common::link::splice`. A stream a device opens may instead
//! be a request to the gateway's queue, which `jobs_stream` serves.

use std::sync::Arc;

use common::link::message::{CallRequest, Refusal};
use common::link::mux::{MuxStream, Opener};
use common::link::splice::{self, HopEnd, Opening};

use crate::gateway::Gateway;
use crate::gateway_core::{CallError, DeviceLinkId};
use crate::jobs_stream;

/// A device on the LAN places a call (it must call as a number it logged
/// in with on this connection, and goes up to the relay), or asks
/// something of the queue.
pub fn spawn_from_device(gw: &Arc<Gateway>, link: DeviceLinkId, mut stream: MuxStream) {
    let gw2 = gw.clone();
    gw.calls.spawn(async move {
        let gw = gw2;
        let request = match splice::read_opening(&mut stream, splice::REQUEST_TIMEOUT).await {
            Ok(Opening::Call(request)) => request,
            Ok(Opening::Jobs(request)) => {
                // Not a call: a wait for jobs must not hold up a drain.
                let gw2 = gw.clone();
                gw.tasks
                    .spawn(jobs_stream::serve(gw2, link, stream, request));
                return;
            }
            Err(e) => {
                tracing::info!(error = %e, "device stream dropped");
                let end = HopEnd::NoRequest(e.to_string());
                gw.metrics.call_ended("up", &end, None);
                return;
            }
        };
        carry(&gw, "up", stream, request, move |gw, request| {
            let relay = gw.uplink.current();
            gw.core().call_up(
                gw.draining.is_cancelled(),
                link,
                &request.from,
                relay.is_some(),
            )?;
            relay
                .map(|r| r.link.opener().clone())
                .ok_or_else(|| CallError::NoRelay.into())
        })
        .await;
    });
}

/// The relay delivers a call for one of this LAN's devices.
pub fn spawn_from_relay(gw: &Arc<Gateway>, mut stream: MuxStream) {
    let gw2 = gw.clone();
    gw.calls.spawn(async move {
        let gw = gw2;
        let request = match splice::read_request(&mut stream, splice::REQUEST_TIMEOUT).await {
            Ok(request) => request,
            Err(e) => {
                tracing::info!(error = %e, "call stream dropped");
                gw.metrics
                    .call_ended("down", &HopEnd::NoRequest(e.to_string()), None);
                return;
            }
        };
        carry(&gw, "down", stream, request, |gw, request| {
            let device = gw.core().call_down(&request.to)?;
            Ok(device.opener().clone())
        })
        .await;
    });
}

/// Carries one call stream, `decide` naming the next link; counts its end
/// under `direction`.
async fn carry(
    gw: &Gateway,
    direction: &'static str,
    stream: MuxStream,
    request: CallRequest,
    decide: impl FnOnce(&Gateway, &CallRequest) -> Result<Opener, Refusal>,
) {
    let pages = request.pages;
    let end = splice::carry_request(
        stream,
        request,
        None,
        |_| None,
        async |request| decide(gw, request),
    )
    .await;
    gw.metrics.call_ended(direction, &end, Some(pages));
}

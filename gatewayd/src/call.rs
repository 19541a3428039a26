//! Call streams through the gateway: from a LAN device up to the relay, and
//! from the relay down to the device that answers the number. The stream is
//! carried by `common::link::splice`.

use std::sync::Arc;

use common::link::message::{CallRequest, Refusal};
use common::link::mux::{MuxStream, Opener};
use common::link::splice;

use crate::gateway::Gateway;
use crate::gateway_core::{CallError, DeviceLinkId};

/// A device on the LAN places a call: it must call as a number it logged in
/// with on this connection, and goes up to the relay.
pub fn spawn_from_device(gw: &Arc<Gateway>, link: DeviceLinkId, stream: MuxStream) {
    spawn(gw, "up", stream, move |gw, request| {
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
    });
}

/// The relay delivers a call for one of this LAN's devices.
pub fn spawn_from_relay(gw: &Arc<Gateway>, stream: MuxStream) {
    spawn(gw, "down", stream, |gw, request| {
        let device = gw.core().call_down(&request.to)?;
        Ok(device.opener().clone())
    });
}

/// Carries one call stream as a tracked task, `decide` naming the next
/// link; counts its end under `direction`.
fn spawn(
    gw: &Arc<Gateway>,
    direction: &'static str,
    stream: MuxStream,
    decide: impl FnOnce(&Gateway, &CallRequest) -> Result<Opener, Refusal> + Send + 'static,
) {
    let gw2 = gw.clone();
    gw.calls.spawn(async move {
        let gw = gw2;
        let mut pages = None;
        let end = splice::carry(stream, None, |request| {
            pages = Some(request.pages);
            decide(&gw, request)
        })
        .await;
        gw.metrics.call_ended(direction, &end, pages);
    });
}

//! Call streams through the gateway: from a LAN device up to the relay, and
//! from the relay down to the device that answers the number. The stream is
//! carried by `common::link::splice`.

use std::sync::Arc;

use common::link::message::CallRefusal;
use common::link::mux::MuxStream;
use common::link::splice;

use crate::devices::DeviceLinkId;
use crate::server::Gateway;

/// A device on the LAN places a call: it must call as a number it logged in
/// with on this connection, and goes up to the relay.
pub fn spawn_from_device(gw: &Arc<Gateway>, link: DeviceLinkId, stream: MuxStream) {
    let gw2 = gw.clone();
    gw.calls.spawn(async move {
        let gw = gw2;
        let mut pages = None;
        let end = splice::carry(stream, None, |request| {
            pages = Some(request.pages);
            if gw.draining.is_cancelled() {
                return Err((
                    CallRefusal::Unreachable,
                    "the gateway is shutting down".to_owned(),
                ));
            }
            if !gw.devices.may_call_as(link, &request.from) {
                let detail = format!("{} is not logged in on this connection", request.from);
                return Err((CallRefusal::NotAuthorized, detail));
            }
            match gw.uplink.current() {
                Some(relay) => Ok(relay.opener),
                None => Err((
                    CallRefusal::Unreachable,
                    "the gateway has no relay link".to_owned(),
                )),
            }
        })
        .await;
        gw.metrics.call_ended("up", &end, pages);
    });
}

/// The relay delivers a call for one of this LAN's devices.
pub fn spawn_from_relay(gw: &Arc<Gateway>, stream: MuxStream) {
    let gw2 = gw.clone();
    gw.calls.spawn(async move {
        let gw = gw2;
        let mut pages = None;
        let end = splice::carry(stream, None, |request| {
            pages = Some(request.pages);
            match gw.devices.receiver(&request.to) {
                Some(device) => Ok(device.opener),
                None => Err((
                    CallRefusal::Offline,
                    format!("{} is not connected to gateway {}", request.to, gw.name),
                )),
            }
        })
        .await;
        gw.metrics.call_ended("down", &end, pages);
    });
}

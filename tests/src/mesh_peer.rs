//! A peer relay in process, named "bench": it proves the mesh key over a
//! real link and feeds a relay announcements, as a relay that knows many
//! numbers would (the snapshot benchmark, a relay's disk filling).

use common::codec::Capabilities;
use common::credential::nonce;
use common::directory::{ConnectionInfo, Version};
use common::link::control::{self, Link, LinkConfig};
use common::link::message::{Control, Hello, PROTOCOL_VERSION, Role};
use common::routing::Announcement;

use crate::load::{Secrets, number};
use crate::relay::Relay;

/// The peer's relay name, home of every number it announces.
pub const NAME: &str = "bench";

/// The record of the peer's number `i` (number 1000000 + i), homed at the
/// peer, at version `i + 1`.
pub fn announcement(i: u64) -> Announcement {
    Announcement {
        record: ConnectionInfo {
            number: number(1_000_000 + i),
            home_relay: NAME.into(),
            gateway: Some(format!("gw-{}", i % 50)),
            capabilities: Some(Capabilities::all()),
            login_time: 1_700_000_000 + i,
            version: Version {
                counter: i + 1,
                origin: NAME.into(),
            },
            online: true,
        },
        path: vec![NAME.into()],
    }
}

/// `Snapshot` messages of the numbers `0..count`, `chunk` announcements
/// each, the last one marked done.
pub fn snapshot(count: u64, chunk: usize) -> Vec<Control> {
    (0..count)
        .collect::<Vec<_>>()
        .chunks(chunk)
        .map(|numbers| Control::Snapshot {
            announcements: numbers.iter().map(|&i| announcement(i)).collect(),
            done: numbers.last() == Some(&(count - 1)),
        })
        .collect()
}

/// A peer link to `relay` as relay [`NAME`], the mesh key proven.
pub async fn link(relay: &Relay, secrets: &Secrets) -> Link {
    let key = secrets.key().mesh_key();
    let hello = Hello {
        version: PROTOCOL_VERSION,
        role: Role::Relay,
        name: NAME.into(),
    };
    let mut link = control::dial(
        relay.addr().to_string().as_str(),
        hello,
        &LinkConfig::default(),
    )
    .await
    .expect("link");
    // The dialer's side of the mesh-key handshake.
    let Ok(Some(Control::PeerChallenge { nonce: theirs, .. })) = link.reader.next().await else {
        panic!("no challenge")
    };
    let ours = nonce();
    let proof = key.peer_proof(&theirs, NAME, relay.name());
    link.writer
        .send(&Control::PeerProof {
            proof,
            nonce: ours,
            // Any id: the peer links once per relay.
            instance: 1,
        })
        .await
        .expect("proof");
    let Ok(Some(Control::PeerProof { .. })) = link.reader.next().await else {
        panic!("refused")
    };
    link
}

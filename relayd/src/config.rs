//! What a relay needs to run, independent of how it was given (flags today,
//! a config file later).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::credential::FleetKey;
use common::link::control::LinkConfig;

#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// This relay's name in the fleet, shown in reports and routes.
    pub name: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub fleet_key: FleetKey,
    /// Proves membership to peer relays (the fleet key unless given apart).
    pub mesh_key: FleetKey,
    /// Peer relays to dial and keep linked.
    pub peers: Vec<String>,
    pub link: LinkConfig,
    /// How long calls in flight may take to finish after SIGTERM.
    pub drain_timeout: Duration,
}

/// Checks a relay name: it travels in reports and routes, so keep it plain.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid relay name '{name}': use 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

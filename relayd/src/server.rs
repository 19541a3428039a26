//! The relay's accept loop, readiness notification and graceful shutdown.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use common::daemon::notify;

use crate::admin;
use crate::config::RelayConfig;
use crate::link_session;
use crate::mesh::Mesh;
use crate::peer::{self, PeerState, PeerStatus};
use crate::registry::Registry;
use crate::store::Store;

/// State every task of the relay shares.
#[derive(Debug)]
pub struct Relay {
    pub config: RelayConfig,
    pub mesh: Mesh,
    pub registry: Registry,
    pub peer_status: PeerStatus,
    /// Cancelled on SIGTERM: refuse new links and calls.
    pub draining: CancellationToken,
    /// Cancelled once calls have drained: close every link.
    pub closing: CancellationToken,
    /// Calls in flight.
    pub calls: TaskTracker,
}

/// Runs the relay until `shutdown` fires, then lets calls in flight finish
/// (up to the drain timeout), flushes the store and returns.
pub async fn run(config: RelayConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = Store::open(&config.data_dir, &config.name)?;
    let mesh = Mesh::load(&config.name, store)?;
    mark_local_devices_offline(&mesh, &config.name);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let relay = Arc::new(Relay {
        config,
        mesh,
        registry: Registry::default(),
        peer_status: PeerStatus::default(),
        draining: CancellationToken::new(),
        closing: CancellationToken::new(),
        calls: TaskTracker::new(),
    });
    tracing::info!(relay = %relay.config.name, %addr, known = relay.mesh.known(), "listening");
    notify::ready(&format!("listening on {addr}"));

    let links = TaskTracker::new();
    let admin_relay = relay.clone();
    links.spawn(async move {
        if let Err(e) = admin::serve(admin_relay).await {
            tracing::warn!(error = %e, "admin socket unavailable; `relayd peers` will not answer");
        }
    });
    for peer in relay.config.peers.clone() {
        relay.peer_status.set(&peer, PeerState::Connecting);
        links.spawn(peer::maintain(relay.clone(), peer));
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    links.spawn(link_session::serve(relay.clone(), tcp, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    notify::stopping();
    relay.draining.cancel();
    relay.calls.close();
    let in_flight = relay.calls.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "waiting for calls in flight");
    }
    if tokio::time::timeout(relay.config.drain_timeout, relay.calls.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = relay.calls.len(),
            "drain timeout: cutting calls still in flight"
        );
    }
    relay.closing.cancel();
    links.close();
    links.wait().await;
    relay.mesh.store().flush().await?;
    tracing::info!("stopped");
    notify::flush(std::time::Duration::from_secs(1));
    Ok(())
}

/// After a restart no device is logged in here yet: records that say
/// otherwise are from before and become "offline" under a new version.
fn mark_local_devices_offline(mesh: &Mesh, name: &str) {
    for (mut record, _) in mesh.records() {
        if record.online && record.home_relay == name {
            record.online = false;
            record.version = mesh.store().next_version();
            mesh.renew_local(record);
        }
    }
}

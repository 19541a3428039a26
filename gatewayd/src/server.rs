//! The gateway's accept loop, status line and graceful shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use common::daemon::notify;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{GatewayConfig, default_name};
use crate::devices::Devices;
use crate::{device_link, uplink};

/// State every task of the gateway shares.
#[derive(Debug)]
pub struct Gateway {
    pub config: GatewayConfig,
    pub name: String,
    pub devices: Devices,
    pub uplink: uplink::Uplink,
    /// Cancelled on SIGTERM: refuse new device links and calls.
    pub draining: CancellationToken,
    /// Cancelled once calls have drained: close every link.
    pub closing: CancellationToken,
    pub calls: TaskTracker,
    listen_addr: OnceLock<SocketAddr>,
}

impl Gateway {
    /// Tells systemd (and tests) what the gateway is doing.
    pub fn update_status(&self) {
        let relay = match self.uplink.current() {
            Some(r) => format!("linked to relay {} at {}", r.name, r.addr),
            None => "no relay link".to_owned(),
        };
        let listen = self
            .listen_addr
            .get()
            .map(|a| a.to_string())
            .unwrap_or_default();
        notify::status(&format!(
            "listening on {listen}; {relay}; devices online: {}",
            self.devices.count()
        ));
    }
}

/// Runs the gateway until `shutdown` fires, then lets calls in flight finish
/// (up to the drain timeout) and returns.
pub async fn run(config: GatewayConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| default_name(addr.port()));
    let gw = Arc::new(Gateway {
        config,
        name,
        devices: Devices::default(),
        uplink: uplink::Uplink::default(),
        draining: CancellationToken::new(),
        closing: CancellationToken::new(),
        calls: TaskTracker::new(),
        listen_addr: OnceLock::new(),
    });
    let _ = gw.listen_addr.set(addr);
    tracing::info!(gateway = %gw.name, %addr, relays = ?gw.config.relays, "listening");
    notify::ready(&format!(
        "listening on {addr}; no relay link; devices online: 0"
    ));

    let tasks = TaskTracker::new();
    tasks.spawn(uplink::maintain(gw.clone()));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tasks.spawn(device_link::serve(gw.clone(), tcp, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    notify::stopping();
    gw.draining.cancel();
    gw.calls.close();
    if tokio::time::timeout(gw.config.drain_timeout, gw.calls.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = gw.calls.len(),
            "drain timeout: cutting calls still in flight"
        );
    }
    gw.closing.cancel();
    tasks.close();
    tasks.wait().await;
    tracing::info!("stopped");
    notify::flush(std::time::Duration::from_secs(1));
    Ok(())
}

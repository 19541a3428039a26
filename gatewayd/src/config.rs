//! The gateway's settings and command line.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use common::link::control::LinkConfig;

const EXAMPLES: &str = "\
Examples:
  gatewayd --listen 0.0.0.0:4700 --relay relay-a.example.net:4710 --relay relay-b.example.net:4710
  gatewayd --name office-3 --listen 192.168.1.10:4700 --relay 203.0.113.5:4710

The gateway keeps one link to the first relay of the list that answers, fails over down
the list, and logs every device in again after a reconnect. Ready is signalled to systemd
(READY=1) with STATUS=\"listening on ADDR; ...\" naming the bound address.";

#[derive(Debug, Parser)]
#[command(
    name = "gatewayd",
    version,
    about = "faxmesh gateway: carries the fax devices of a LAN to a relay",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Address the LAN's devices dial, e.g. 0.0.0.0:4700 (port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Relay to link to (HOST:PORT); repeat for failover, in order of preference.
    #[arg(long = "relay", value_name = "ADDR", required = true)]
    pub relays: Vec<String>,
    /// This gateway's name, shown at the relay [default: HOSTNAME-PORT].
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds between heartbeats on every link; a peer silent for three is dead.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub heartbeat_secs: f64,
    /// Longest pause between reconnect attempts, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub max_backoff_secs: f64,
    /// Seconds calls in flight may take to finish after SIGTERM.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub drain_secs: u64,
}

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub name: Option<String>,
    pub listen: SocketAddr,
    pub relays: Vec<String>,
    pub link: LinkConfig,
    pub max_backoff: Duration,
    pub drain_timeout: Duration,
}

impl Cli {
    pub fn into_config(self) -> anyhow::Result<GatewayConfig> {
        for (flag, v) in [
            ("--heartbeat-secs", self.heartbeat_secs),
            ("--max-backoff-secs", self.max_backoff_secs),
        ] {
            if !(v > 0.0 && v <= 3600.0) {
                anyhow::bail!("invalid {flag} {v}: use seconds above 0 and at most 3600");
            }
        }
        Ok(GatewayConfig {
            name: self.name,
            listen: self.listen,
            relays: self.relays,
            link: LinkConfig {
                heartbeat: Duration::from_secs_f64(self.heartbeat_secs),
                ..LinkConfig::default()
            },
            max_backoff: Duration::from_secs_f64(self.max_backoff_secs),
            drain_timeout: Duration::from_secs(self.drain_secs),
        })
    }
}

/// HOSTNAME-PORT, the default gateway name.
pub fn default_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".to_owned());
    format!("{host}-{port}")
}

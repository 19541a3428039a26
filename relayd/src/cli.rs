//! relayd's command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use common::credential::FleetKey;
use common::link::control::LinkConfig;
use common::number::Number;

use crate::config::{RelayConfig, validate_name};

const EXAMPLES: &str = "\
Examples:
  relayd --name relay-a --listen 0.0.0.0:4710 --data-dir /var/lib/relayd \\
         --fleet-key-file /etc/faxmesh/fleet.key
  relayd --name relay-b --listen 0.0.0.0:4710 --data-dir /var/lib/relayd \\
         --fleet-key-file /etc/faxmesh/fleet.key --peer relay-a.example.net:4710
  relayd credential --fleet-key-file /etc/faxmesh/fleet.key 4930123 > 4930123.secret
  relayd peers --data-dir /var/lib/relayd          # peers of a running relay
  relayd directory --data-dir /var/lib/relayd --json

Ready is signalled to systemd (READY=1) with STATUS=\"listening on ADDR\", ADDR being
the bound address (useful with port 0). SIGTERM lets calls in flight finish, then exits 0.";

#[derive(Debug, Parser)]
#[command(
    name = "relayd",
    version,
    about = "faxmesh relay: authenticates fax devices, holds connection information, relays calls",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the device secret for NUMBER (HMAC of the number under the fleet key).
    Credential {
        /// File holding the fleet key (at least 16 bytes).
        #[arg(long, value_name = "F")]
        fleet_key_file: PathBuf,
        /// The device's fax number.
        number: Number,
    },
    /// Show the peers of the relay running with --data-dir DIR.
    Peers(QueryArgs),
    /// Show the directory (number, home relay, next hop, version, liveness)
    /// of the relay running with --data-dir DIR.
    Directory(QueryArgs),
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The running relay's data directory (its admin socket lives there).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// This relay's name in the fleet (letters, digits, '-', '_', '.').
    #[arg(long, required = true)]
    pub name: Option<String>,
    /// Address to accept gateways and devices on, e.g. 0.0.0.0:4710 (port 0 picks one).
    #[arg(long, value_name = "ADDR", required = true)]
    pub listen: Option<SocketAddr>,
    /// Directory for the connection information database.
    #[arg(long, value_name = "DIR", required = true)]
    pub data_dir: Option<PathBuf>,
    /// File holding the fleet key that device secrets derive from
    /// [default: DIR/fleet.key, created on first start].
    #[arg(long, value_name = "F")]
    pub fleet_key_file: Option<PathBuf>,
    /// Peer relay to dial and keep linked (HOST:PORT); repeat for more.
    #[arg(long = "peer", value_name = "ADDR")]
    pub peers: Vec<String>,
    /// File holding the key relays prove fleet membership with
    /// [default: derived from the fleet key].
    #[arg(long, value_name = "F")]
    pub mesh_key_file: Option<PathBuf>,
    /// Seconds between heartbeats on every link; a peer silent for three is dead.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub heartbeat_secs: f64,
    /// Seconds calls in flight may take to finish after SIGTERM.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub drain_secs: u64,
}

impl RunArgs {
    /// Turns the flags into a config, loading (or creating) the fleet key.
    pub fn into_config(self) -> anyhow::Result<RelayConfig> {
        // clap enforces these three unless a subcommand is given.
        let (Some(name), Some(listen), Some(data_dir)) = (self.name, self.listen, self.data_dir)
        else {
            anyhow::bail!("--name, --listen and --data-dir are required");
        };
        validate_name(&name).map_err(anyhow::Error::msg)?;
        if !(self.heartbeat_secs > 0.0 && self.heartbeat_secs <= 3600.0) {
            anyhow::bail!(
                "invalid --heartbeat-secs {}: use a number of seconds above 0 and at most 3600",
                self.heartbeat_secs
            );
        }
        let key_path = match self.fleet_key_file {
            Some(p) => p,
            None => default_fleet_key(&data_dir)?,
        };
        let fleet_key = FleetKey::load(&key_path)?;
        let mesh_key = match &self.mesh_key_file {
            Some(p) => FleetKey::load(p)?,
            None => fleet_key.mesh_key(),
        };
        Ok(RelayConfig {
            name,
            listen,
            data_dir,
            fleet_key,
            mesh_key,
            peers: self.peers,
            link: LinkConfig {
                heartbeat: Duration::from_secs_f64(self.heartbeat_secs),
                ..LinkConfig::default()
            },
            drain_timeout: Duration::from_secs(self.drain_secs),
        })
    }
}

/// DIR/fleet.key, created with a random key (mode 0600) when missing.
fn default_fleet_key(data_dir: &Path) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("fleet.key");
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create fleet key {}", path.display()))?;
    writeln!(f, "{}", FleetKey::generate_hex())?;
    f.sync_all()?;
    tracing::warn!(
        path = %path.display(),
        "created a new fleet key; give devices secrets with `relayd credential --fleet-key-file {}`",
        path.display()
    );
    Ok(path)
}

//! relayd's command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use common::number::Number;

use crate::config::{self, Layer, Settings};

const EXAMPLES: &str = "\
Examples:
  relayd tls ca --dir /etc/faxmesh/pki                # the fleet's private CA, once
  relayd tls cert --dir /etc/faxmesh/pki --name relay-a --san relay-a.example.net --san 203.0.113.5
  relayd --name relay-a --listen 0.0.0.0:4710 --data-dir /var/lib/relayd \\
         --fleet-key-file /etc/faxmesh/fleet.key \\
         --tls-cert /etc/faxmesh/pki/relay-a.pem --tls-key /etc/faxmesh/pki/relay-a.key
  relayd --name relay-b --listen 0.0.0.0:4710 --data-dir /var/lib/relayd \\
         --fleet-key-file /etc/faxmesh/fleet.key --tls-cert relay-b.pem --tls-key relay-b.key \\
         --ca-file /etc/faxmesh/pki/ca.pem --peer relay-a.example.net:4710
  relayd --name relay-c --listen 10.0.0.3:4710 --data-dir /var/lib/relayd \\
         --fleet-key-file /etc/faxmesh/fleet.key --tls-cert relay-c.pem --tls-key relay-c.key \\
         --directory redis+cluster://10.0.1.1:6379,10.0.1.2:6379,10.0.1.3:6379/   # Redis Cluster
  relayd ... --directory redis+sentinel://10.0.1.1:26379,10.0.1.2:26379/fax-main  # via Sentinel
  relayd ... --directory rediss://redis.example.net:6380/0 --directory-ca-file redis-ca.pem
  relayd credential --fleet-key-file /etc/faxmesh/fleet.key 4930123 > 4930123.secret
  relayd --name lab --listen 127.0.0.1:4711 --data-dir lab.data --allow-plaintext 127.0.0.0/8 \\
         --peer plain://127.0.0.1:4710               # plaintext, loopback only
  relayd revoke --data-dir /var/lib/relayd 4930123   # then: credential --generation G
  relayd peers --data-dir /var/lib/relayd          # peers of a running relay
  relayd directory --data-dir /var/lib/relayd --json
  relayd --config /etc/faxmesh/relayd.toml --admin 127.0.0.1:9710   # under systemd
  RELAYD_LOG_LEVEL=debug relayd --config relayd.toml --peer relay-c.example.net:4710
  relayd --generate-completions bash > /etc/bash_completion.d/relayd
  relayd --generate-man > /usr/local/share/man/man1/relayd.1

Settings come from flags, else RELAYD_* environment variables, else the --config file
(TOML; unknown keys are refused), else defaults. Ready is signalled to systemd (READY=1)
with STATUS=\"listening on ADDR; admin on ADDR2; peers up: N; devices online: N; calls in
flight: N\", ADDR being the bound address (useful with port 0). SIGHUP reloads the peers,
log level, drain time and plaintext allow-list from the file and the TLS certificate files;
SIGTERM lets calls in flight finish, then exits 0.

Links are TLS: gateways, peers and devices dial HOST:PORT (or tls://HOST:PORT) and check
the relay's certificate against their --ca-file (or the system's roots). Plaintext is
accepted only from networks given with --allow-plaintext, and dialed only to addresses
written plain://HOST:PORT.";

#[derive(Debug, Parser)]
#[command(
    name = "relayd",
    version,
    about = "faxmesh relay: authenticates fax devices, holds connection information, relays calls",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
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
        /// Secret generation: 0 is the original secret; after `relayd revoke`
        /// issue the generation it names.
        #[arg(long, value_name = "G", default_value_t = 0)]
        generation: u32,
        /// The device's fax number.
        number: Number,
    },
    /// Make a private CA and relay certificates for a fleet (no openssl needed).
    Tls {
        #[command(subcommand)]
        command: crate::tls_cmd::TlsCommand,
    },
    /// Show the peers of the relay running with --data-dir DIR.
    Peers(QueryArgs),
    /// Revoke NUMBER's current secret at the relay running with --data-dir
    /// DIR and, through it, at every relay of the fleet; devices logged in
    /// with it are disconnected. Prints the generation to issue next.
    Revoke {
        /// The running relay's data directory (its admin socket lives there).
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The device's fax number.
        number: Number,
    },
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

/// Running the relay. Each flag may also come from its environment variable
/// or from the config file (flag > environment > file > default).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML config file; every key is documented in systemd/relayd.toml.
    #[arg(long, value_name = "FILE", env = "RELAYD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub layer: Layer,
}

impl RunArgs {
    /// The settings from the flags, the environment and the config file.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        // The file (if any) under the flags and environment.
        common::daemon::config_file::load_under(&self.layer, self.config.as_deref(), config::merge)
    }
}

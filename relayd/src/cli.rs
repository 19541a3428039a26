//! relayd's command line.

use std::net::SocketAddr;
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
    /// This relay's name in the fleet (letters, digits, '-', '_', '.') [required].
    #[arg(long, env = "RELAYD_NAME")]
    pub name: Option<String>,
    /// Address to accept gateways and devices on, e.g. 0.0.0.0:4710 (port 0 picks one) [required].
    #[arg(long, value_name = "ADDR", env = "RELAYD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the connection information database [required].
    #[arg(long, value_name = "DIR", env = "RELAYD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// File holding the fleet key that device secrets derive from
    /// [default: DIR/fleet.key, created on first start].
    #[arg(long, value_name = "F", env = "RELAYD_FLEET_KEY_FILE")]
    pub fleet_key_file: Option<PathBuf>,
    /// Peer relay to dial and keep linked (HOST:PORT, over TLS; plain://HOST:PORT
    /// for plaintext); repeat for more
    /// (RELAYD_PEERS: comma-separated). Given here, they replace the file's
    /// `peers`, and SIGHUP cannot change them.
    #[arg(
        long = "peer",
        value_name = "ADDR",
        env = "RELAYD_PEERS",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,
    /// File holding the key relays prove fleet membership with
    /// [default: derived from the fleet key].
    #[arg(long, value_name = "F", env = "RELAYD_MESH_KEY_FILE")]
    pub mesh_key_file: Option<PathBuf>,
    /// Seconds between heartbeats on every link; a peer silent for three is dead [default: 5].
    #[arg(long, value_name = "SECS", env = "RELAYD_HEARTBEAT_SECS")]
    pub heartbeat_secs: Option<f64>,
    /// Seconds calls in flight may take to finish after SIGTERM [default: 30].
    #[arg(long, value_name = "SECS", env = "RELAYD_DRAIN_SECS")]
    pub drain_secs: Option<u64>,
    /// Serve Prometheus /metrics and /healthz over HTTP on ADDR, e.g. 127.0.0.1:9710 [default: off].
    #[arg(long, value_name = "ADDR", env = "RELAYD_ADMIN")]
    pub admin: Option<SocketAddr>,
    /// Log level or filter (error, warn, info, debug, trace); RUST_LOG wins [default: info].
    #[arg(long, value_name = "LEVEL", env = "RELAYD_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Where connection information lives: `mesh` (shared over peer links)
    /// or redis://HOST:PORT[/DB] (a Redis server every relay reaches) [default: mesh].
    #[arg(long, value_name = "URL", env = "RELAYD_DIRECTORY")]
    pub directory: Option<String>,
    /// Prefix of every Redis key and channel, so fleets can share a server [default: faxmesh].
    #[arg(long, value_name = "PREFIX", env = "RELAYD_DIRECTORY_PREFIX")]
    pub directory_prefix: Option<String>,
    /// Seconds this relay's records outlive it in Redis; refreshed every third of that [default: 30].
    #[arg(long, value_name = "SECS", env = "RELAYD_LEASE_SECS")]
    pub lease_secs: Option<u64>,
    /// HOST:PORT other relays dial this one at (redis mode) [default: the bound listen address].
    #[arg(long, value_name = "ADDR", env = "RELAYD_ADVERTISE")]
    pub advertise: Option<String>,
    /// This relay's certificate chain, PEM (reloaded on SIGHUP) [required unless
    /// --allow-plaintext].
    #[arg(long, value_name = "F", env = "RELAYD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key, PEM (reloaded on SIGHUP).
    #[arg(long, value_name = "F", env = "RELAYD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that peer relays' certificates are checked
    /// against [default: the system's roots].
    #[arg(long, value_name = "F", env = "RELAYD_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Accept plaintext links from this network (CIDR, e.g. 127.0.0.0/8, or
    /// one address); repeat for more (RELAYD_ALLOW_PLAINTEXT: comma-separated)
    /// [default: none, TLS only].
    #[arg(
        long = "allow-plaintext",
        value_name = "CIDR",
        env = "RELAYD_ALLOW_PLAINTEXT",
        value_delimiter = ','
    )]
    pub allow_plaintext: Vec<String>,
    /// Largest frame accepted on any link (132096 to 67108864) [default: 1048576].
    #[arg(long, value_name = "BYTES", env = "RELAYD_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Most pages a call may announce [default: 1000].
    #[arg(long, value_name = "N", env = "RELAYD_MAX_PAGES_PER_CALL")]
    pub max_pages_per_call: Option<u32>,
    /// Most encoded bytes per page; bounds the bytes a call may carry [default: 16777216].
    #[arg(long, value_name = "BYTES", env = "RELAYD_MAX_PAGE_BYTES")]
    pub max_page_bytes: Option<u64>,
    /// Calls in flight per calling number [default: 8].
    #[arg(long, value_name = "N", env = "RELAYD_MAX_CALLS_PER_DEVICE")]
    pub max_calls_per_device: Option<u32>,
    /// Calls in flight per gateway (or device) link [default: 512].
    #[arg(long, value_name = "N", env = "RELAYD_MAX_CALLS_PER_GATEWAY")]
    pub max_calls_per_gateway: Option<u32>,
    /// Links at once from one source IP address [default: 64].
    #[arg(long, value_name = "N", env = "RELAYD_MAX_LINKS_PER_ADDRESS")]
    pub max_links_per_address: Option<u32>,
    /// Failed logins per source address (per number behind a gateway) per minute before every login from it is refused with "too many attempts"; 0 turns this off [default: 10].
    #[arg(long, value_name = "N", env = "RELAYD_LOGIN_ATTEMPTS_PER_MIN")]
    pub login_attempts_per_min: Option<u32>,
}

impl RunArgs {
    /// The flags (and environment) as the top layer of settings.
    pub fn layer(&self) -> Layer {
        Layer {
            name: self.name.clone(),
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            fleet_key_file: self.fleet_key_file.clone(),
            mesh_key_file: self.mesh_key_file.clone(),
            peers: (!self.peers.is_empty()).then(|| self.peers.clone()),
            heartbeat_secs: self.heartbeat_secs,
            drain_secs: self.drain_secs,
            admin: self.admin,
            log_level: self.log_level.clone(),
            directory: self.directory.clone(),
            directory_prefix: self.directory_prefix.clone(),
            lease_secs: self.lease_secs,
            advertise: self.advertise.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            ca_file: self.ca_file.clone(),
            allow_plaintext: (!self.allow_plaintext.is_empty())
                .then(|| self.allow_plaintext.clone()),
            max_frame_bytes: self.max_frame_bytes,
            max_pages_per_call: self.max_pages_per_call,
            max_page_bytes: self.max_page_bytes,
            max_calls_per_device: self.max_calls_per_device,
            max_calls_per_gateway: self.max_calls_per_gateway,
            max_links_per_address: self.max_links_per_address,
            login_attempts_per_min: self.login_attempts_per_min,
        }
    }

    /// The settings from the flags, the environment and the config file.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        config::load(&self.layer(), self.config.as_deref())
    }
}

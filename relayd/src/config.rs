//! What a relay runs with, and where each setting comes from: a command-line
//! flag, else its environment variable (clap reads both), else the TOML
//! config file (`--config FILE`), else the default. [`merge`] is the pure
//! part: layers in, checked settings out. `systemd/relayd.toml` documents
//! every key with its default.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use common::credential::FleetKey;
use common::daemon::settings::{Changed, shown};
use common::link::control::LinkConfig;
use common::link::tls::ClientTls;
use common::link::transport::{Scheme, check_addr};

use crate::dir_cache::DEFAULT_CACHE_ENTRIES;
use crate::inbound::InboundPolicy;
use crate::limits::Limits;
use crate::redis_backend::Endpoint;
use crate::tls_settings::TlsSettings;

pub const DEFAULT_HEARTBEAT_SECS: f64 = 5.0;
pub const DEFAULT_DRAIN_SECS: u64 = 30;
pub const DEFAULT_LOG_LEVEL: &str = "info";
pub const DEFAULT_DIRECTORY_PREFIX: &str = "faxmesh";
pub const DEFAULT_LEASE_SECS: u64 = 30;
/// A cap on `directory_cache` that still fits a large host's memory.
const MAX_CACHE_ENTRIES: usize = 100_000_000;

common::settings_layer! {
    /// One layer of settings: the config file, or the flags and environment.
    /// Each key once: its flag, environment variable and help; the TOML key
    /// is the field's name. Unknown keys in the file are an error.
    pub struct Layer (env "RELAYD_", admin "127.0.0.1:9710") {
        /// This relay's name in the fleet (letters, digits, '-', '_', '.') [required].
        #[arg(long, env = "RELAYD_NAME")]
        name: String,
        /// Address to accept gateways and devices on, e.g. 0.0.0.0:4710 (port 0 picks one) [required].
        #[arg(long, value_name = "ADDR", env = "RELAYD_LISTEN")]
        listen: SocketAddr,
        /// Directory for the connection information database [required].
        #[arg(long, value_name = "DIR", env = "RELAYD_DATA_DIR")]
        data_dir: PathBuf,
        /// File holding the fleet key that device secrets derive from
        /// [default: DIR/fleet.key, created on first start].
        #[arg(long, value_name = "F", env = "RELAYD_FLEET_KEY_FILE")]
        fleet_key_file: PathBuf,
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
        peers: Vec<String>,
        /// File holding the key relays prove fleet membership with
        /// [default: derived from the fleet key].
        #[arg(long, value_name = "F", env = "RELAYD_MESH_KEY_FILE")]
        mesh_key_file: PathBuf,
        /// Where connection information lives: `mesh` (shared over peer links),
        /// or a Redis every relay reaches: redis://HOST:PORT[/DB] (one server),
        /// redis+cluster://HOST:PORT,HOST:PORT/ (a Redis Cluster's seed nodes),
        /// redis+sentinel://HOST:PORT,HOST:PORT/MASTER[/DB] (the sentinels and
        /// the master they watch); rediss... for TLS [default: mesh].
        #[arg(long, value_name = "URL", env = "RELAYD_DIRECTORY")]
        directory: String,
        /// CA certificates (PEM) the Redis servers' TLS certificates are checked
        /// against (rediss... directories) [default: the system's roots].
        #[arg(long, value_name = "F", env = "RELAYD_DIRECTORY_CA_FILE")]
        directory_ca_file: PathBuf,
        /// Prefix of every Redis key and channel, so fleets can share a server [default: faxmesh].
        #[arg(long, value_name = "PREFIX", env = "RELAYD_DIRECTORY_PREFIX")]
        directory_prefix: String,
        /// Seconds this relay's records outlive it in Redis; refreshed every third of that [default: 30].
        #[arg(long, value_name = "SECS", env = "RELAYD_LEASE_SECS")]
        lease_secs: u64,
        /// Most records of numbers homed at other relays kept in memory (redis mode);
        /// the least recently called go first, and a call to a number not kept asks
        /// Redis [default: 100000].
        #[arg(long, value_name = "N", env = "RELAYD_DIRECTORY_CACHE")]
        directory_cache: usize,
        /// HOST:PORT other relays dial this one at (redis mode) [default: the bound listen address].
        #[arg(long, value_name = "ADDR", env = "RELAYD_ADVERTISE")]
        advertise: String,
        /// This relay's certificate chain, PEM (reloaded on SIGHUP) [required unless
        /// --allow-plaintext].
        #[arg(long, value_name = "F", env = "RELAYD_TLS_CERT")]
        tls_cert: PathBuf,
        /// The certificate's private key, PEM (reloaded on SIGHUP).
        #[arg(long, value_name = "F", env = "RELAYD_TLS_KEY")]
        tls_key: PathBuf,
        /// CA certificates (PEM) that peer relays' certificates are checked
        /// against [default: the system's roots].
        #[arg(long, value_name = "F", env = "RELAYD_CA_FILE")]
        ca_file: PathBuf,
        /// Accept plaintext links from this network (CIDR, e.g. 127.0.0.0/8, or
        /// one address); repeat for more (RELAYD_ALLOW_PLAINTEXT: comma-separated)
        /// [default: none, TLS only].
        #[arg(
            long = "allow-plaintext",
            value_name = "CIDR",
            env = "RELAYD_ALLOW_PLAINTEXT",
            value_delimiter = ','
        )]
        allow_plaintext: Vec<String>,
        /// Most pages a call may announce [default: 1000].
        #[arg(long, value_name = "N", env = "RELAYD_MAX_PAGES_PER_CALL")]
        max_pages_per_call: u32,
        /// Most encoded bytes per page; bounds the bytes a call may carry [default: 16777216].
        #[arg(long, value_name = "BYTES", env = "RELAYD_MAX_PAGE_BYTES")]
        max_page_bytes: u64,
        /// Calls in flight per calling number [default: 8].
        #[arg(long, value_name = "N", env = "RELAYD_MAX_CALLS_PER_DEVICE")]
        max_calls_per_device: u32,
        /// Calls in flight per gateway (or device) link [default: 512].
        #[arg(long, value_name = "N", env = "RELAYD_MAX_CALLS_PER_GATEWAY")]
        max_calls_per_gateway: u32,
        /// Links at once from one source IP address [default: 64].
        #[arg(long, value_name = "N", env = "RELAYD_MAX_LINKS_PER_ADDRESS")]
        max_links_per_address: u32,
        /// Failed logins per source address (per number behind a gateway) per minute before every login from it is refused with "too many attempts"; 0 turns this off [default: 10].
        #[arg(long, value_name = "N", env = "RELAYD_LOGIN_ATTEMPTS_PER_MIN")]
        login_attempts_per_min: u32,
    }
}

/// The merged, checked settings (keys not loaded yet).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub name: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub fleet_key_file: Option<PathBuf>,
    pub mesh_key_file: Option<PathBuf>,
    pub peers: Vec<String>,
    pub heartbeat_secs: f64,
    pub drain_secs: u64,
    pub admin: Option<SocketAddr>,
    pub log_level: String,
    pub directory: Directory,
    pub tls: TlsSettings,
    pub limits: Limits,
}

/// Where the fleet's connection information lives.
#[derive(Clone, Debug, PartialEq)]
pub enum Directory {
    /// Shared relay to relay over peer links, kept in sled (the default).
    Mesh,
    /// Kept in a Redis server every relay reaches (see `redis_dir`).
    Redis(RedisSettings),
}

#[derive(Clone, Debug, PartialEq)]
pub struct RedisSettings {
    /// `redis://HOST:PORT[/DB]`, `redis+cluster://...` or
    /// `redis+sentinel://...` (see `redis_backend::Endpoint`).
    pub url: String,
    /// CA certificates for a `rediss...` URL [default: the system's roots].
    pub ca_file: Option<PathBuf>,
    /// Every key and the channel start with `PREFIX:`, so fleets can share a server.
    pub prefix: String,
    /// Seconds a record outlives its relay's last refresh.
    pub lease_secs: u64,
    /// Most records homed elsewhere kept in memory (`dir_cache`).
    pub cache_entries: NonZeroUsize,
    /// The address other relays dial this one at (default: the bound address).
    pub advertise: Option<String>,
}

/// Merges the flags-and-environment layer over the file's layer, applies
/// defaults and checks every value. Errors name the setting and both ways
/// to give it.
pub fn merge(flags: Layer, file: Layer) -> Result<Settings, String> {
    let l = flags.over(file);
    let missing = |key: &str, flag: &str, env: &str, example: &str| {
        format!(
            "missing setting {key}: give --{flag} (or {env}) or `{key} = {example}` in the config file"
        )
    };
    let name = l
        .name
        .ok_or_else(|| missing("name", "name", "RELAYD_NAME", "\"relay-a\""))?;
    validate_name(&name)?;
    let listen = l
        .listen
        .ok_or_else(|| missing("listen", "listen", "RELAYD_LISTEN", "\"0.0.0.0:4710\""))?;
    let data_dir = l.data_dir.ok_or_else(|| {
        missing(
            "data_dir",
            "data-dir",
            "RELAYD_DATA_DIR",
            "\"/var/lib/relayd\"",
        )
    })?;
    let heartbeat_secs = l.heartbeat_secs.unwrap_or(DEFAULT_HEARTBEAT_SECS);
    if !(heartbeat_secs > 0.0 && heartbeat_secs <= 3600.0) {
        return Err(format!(
            "invalid heartbeat_secs {heartbeat_secs}: use a number of seconds above 0 and at most 3600"
        ));
    }
    let log_level = l.log_level.unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
    common::daemon::logging::validate_level(&log_level)?;
    let mut peers = l.peers.unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    peers.retain(|p| seen.insert(p.clone()));
    if let Some(e) = peers.iter().find_map(|p| check_addr(p).err()) {
        return Err(format!("invalid peer: {e}"));
    }
    let tls = crate::tls_settings::merge(
        l.tls_cert,
        l.tls_key,
        l.ca_file,
        l.allow_plaintext.unwrap_or_default(),
    )?;
    let d = Limits::default();
    let limits = Limits {
        max_frame_bytes: l.max_frame_bytes.unwrap_or(d.max_frame_bytes),
        max_pages_per_call: l.max_pages_per_call.unwrap_or(d.max_pages_per_call),
        max_page_bytes: l.max_page_bytes.unwrap_or(d.max_page_bytes),
        max_calls_per_device: l.max_calls_per_device.unwrap_or(d.max_calls_per_device),
        max_calls_per_gateway: l.max_calls_per_gateway.unwrap_or(d.max_calls_per_gateway),
        max_links_per_address: l.max_links_per_address.unwrap_or(d.max_links_per_address),
        login_attempts_per_min: l.login_attempts_per_min.unwrap_or(d.login_attempts_per_min),
    };
    limits.validate()?;
    let directory = directory(
        &l.directory,
        l.directory_ca_file,
        l.directory_prefix,
        l.lease_secs,
        l.directory_cache,
        l.advertise,
    )?;
    if let Directory::Redis(r) = &directory {
        if !peers.is_empty() {
            return Err(
                "peers and a redis directory do not mix: in directory mode relays dial each other on demand; drop --peer (or `peers`)".into(),
            );
        }
        if r.advertise.is_none() && listen.ip().is_unspecified() {
            return Err(format!(
                "listen address {listen} is not one other relays can dial: give --advertise HOST:PORT (or RELAYD_ADVERTISE, or `advertise = \"relay-a.example.net:4710\"` in the config file)"
            ));
        }
    }
    Ok(Settings {
        name,
        listen,
        data_dir,
        fleet_key_file: l.fleet_key_file,
        mesh_key_file: l.mesh_key_file,
        peers,
        heartbeat_secs,
        drain_secs: l.drain_secs.unwrap_or(DEFAULT_DRAIN_SECS),
        admin: l.admin,
        log_level,
        directory,
        tls,
        limits,
    })
}

/// Checks the directory settings; they only matter in redis mode.
fn directory(
    url: &Option<String>,
    ca_file: Option<PathBuf>,
    prefix: Option<String>,
    lease_secs: Option<u64>,
    cache_entries: Option<usize>,
    advertise: Option<String>,
) -> Result<Directory, String> {
    let url = match url.as_deref() {
        None | Some("mesh") => {
            if let Some(f) = ca_file {
                return Err(format!(
                    "directory_ca_file {} needs a TLS redis directory: give --directory rediss://... (or rediss+cluster://, rediss+sentinel://), or drop it",
                    f.display()
                ));
            }
            return Ok(Directory::Mesh);
        }
        Some(u) => u,
    };
    let endpoint = Endpoint::parse(url).map_err(|e| format!("{e}, or `mesh`"))?;
    if let Some(f) = &ca_file
        && !endpoint.tls()
    {
        return Err(format!(
            "directory_ca_file {} needs a TLS directory, not '{url}': write rediss://, rediss+cluster:// or rediss+sentinel://",
            f.display()
        ));
    }
    let prefix = prefix.unwrap_or_else(|| DEFAULT_DIRECTORY_PREFIX.to_owned());
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(plain) {
        return Err(format!(
            "invalid directory_prefix '{prefix}': use 1 to 64 letters, digits, '-', '_' or '.'"
        ));
    }
    let lease_secs = lease_secs.unwrap_or(DEFAULT_LEASE_SECS);
    if !(1..=86_400).contains(&lease_secs) {
        return Err(format!(
            "invalid lease_secs {lease_secs}: use 1 to 86400 seconds"
        ));
    }
    let cache_entries = cache_entries.unwrap_or(DEFAULT_CACHE_ENTRIES);
    let cache_entries = NonZeroUsize::new(cache_entries)
        .filter(|n| n.get() <= MAX_CACHE_ENTRIES)
        .ok_or_else(|| {
            format!("invalid directory_cache {cache_entries}: use 1 to {MAX_CACHE_ENTRIES} records")
        })?;
    if let Some(e) = advertise.as_deref().and_then(|a| check_addr(a).err()) {
        return Err(format!("invalid advertise: {e}"));
    }
    Ok(Directory::Redis(RedisSettings {
        url: url.to_owned(),
        ca_file,
        prefix,
        lease_secs,
        cache_entries,
        advertise,
    }))
}

#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// This relay's name in the fleet, shown in reports and routes.
    pub name: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub fleet_key: FleetKey,
    /// Proves membership to peer relays (the fleet key unless given apart).
    pub mesh_key: FleetKey,
    /// Peer relays to dial and keep linked (at start; SIGHUP may change them).
    pub peers: Vec<String>,
    pub link: LinkConfig,
    /// How long calls in flight may take to finish after SIGTERM (at start).
    pub drain_timeout: Duration,
    /// Where to serve /metrics and /healthz, if anywhere.
    pub admin: Option<SocketAddr>,
    /// Where connection information lives (at start).
    pub directory: Directory,
    /// Which inbound links are TLS, which may be plaintext (reloadable).
    pub inbound: Arc<InboundPolicy>,
    /// Frame, page, call, link and login limits (at start).
    pub limits: Limits,
    /// The settings this config came from, to tell what a reload changes.
    pub settings: Option<Settings>,
}

impl RelayConfig {
    /// Loads the keys the settings name (creating DIR/fleet.key if needed).
    pub fn from_settings(s: Settings) -> anyhow::Result<RelayConfig> {
        let key_path = match &s.fleet_key_file {
            Some(p) => p.clone(),
            None => default_fleet_key(&s.data_dir)?,
        };
        let fleet_key = FleetKey::load(&key_path)?;
        let mesh_key = match &s.mesh_key_file {
            Some(p) => FleetKey::load(p)?,
            None => fleet_key.mesh_key(),
        };
        Ok(RelayConfig {
            name: s.name.clone(),
            listen: s.listen,
            data_dir: s.data_dir.clone(),
            fleet_key,
            mesh_key,
            peers: s.peers.clone(),
            link: LinkConfig {
                heartbeat: Duration::from_secs_f64(s.heartbeat_secs),
                // Peers are dialed over TLS unless their address says plain://.
                default_scheme: Scheme::Tls,
                tls: ClientTls::new(s.tls.ca_file.as_deref())?,
                ..LinkConfig::default()
            },
            drain_timeout: Duration::from_secs(s.drain_secs),
            admin: s.admin,
            directory: s.directory.clone(),
            inbound: Arc::new(InboundPolicy::load(&s.tls)?),
            limits: s.limits.clone(),
            settings: Some(s),
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

common::reload_changes!(Changes);

/// What a reload changes: the settings applied live, and those that need a
/// restart (reported, not applied). Pure, so it is tested without a relay.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub peers_added: Vec<String>,
    pub peers_removed: Vec<String>,
    pub log_level: Option<(String, String)>,
    pub drain_secs: Option<(u64, u64)>,
    /// "listen: A -> B" and the like.
    pub need_restart: Vec<String>,
}

pub fn changes(old: &Settings, new: &Settings) -> Changes {
    let mut restart = Changed::default();
    let path = |p: &Option<PathBuf>| shown(p.as_ref().map(|p| p.display()), "(default)");
    restart
        .restart("name", &old.name, &new.name)
        .restart("listen", old.listen, new.listen)
        .restart("data_dir", old.data_dir.display(), new.data_dir.display())
        .restart(
            "fleet_key_file",
            path(&old.fleet_key_file),
            path(&new.fleet_key_file),
        )
        .restart(
            "mesh_key_file",
            path(&old.mesh_key_file),
            path(&new.mesh_key_file),
        )
        .restart("ca_file", path(&old.tls.ca_file), path(&new.tls.ca_file))
        .restart_group("directory settings changed", &old.directory, &new.directory)
        .restart_group("limits changed", &old.limits, &new.limits);
    common::restart_shared_keys!(restart, old, new);
    let not_in = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|p| !b.contains(p)).cloned().collect()
    };
    Changes {
        peers_added: not_in(&new.peers, &old.peers),
        peers_removed: not_in(&old.peers, &new.peers),
        log_level: Changed::live(&old.log_level, &new.log_level),
        drain_secs: Changed::live(&old.drain_secs, &new.drain_secs),
        need_restart: restart.need_restart,
    }
}

/// The settings in force after a reload from `old` to `new`: the live keys
/// (peers, log level, drain time, certificate and allow-list) take their new
/// values, the restart-only ones keep those the relay runs with.
pub fn applied(old: &Settings, new: Settings) -> Settings {
    Settings {
        peers: new.peers,
        log_level: new.log_level,
        drain_secs: new.drain_secs,
        tls: TlsSettings {
            ca_file: old.tls.ca_file.clone(),
            ..new.tls
        },
        ..old.clone()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Layer {
        common::daemon::config_file::parse(text).unwrap()
    }

    const BASE: &str = "name = \"relay-a\"\nlisten = \"127.0.0.1:4710\"\ndata_dir = \"/var/lib/relayd\"\nallow_plaintext = [\"127.0.0.0/8\"]\n";

    #[test]
    fn file_alone_with_defaults() {
        let s = merge(Layer::default(), file(BASE)).unwrap();
        assert_eq!(s.name, "relay-a");
        assert_eq!(s.listen, "127.0.0.1:4710".parse().unwrap());
        assert_eq!(s.heartbeat_secs, DEFAULT_HEARTBEAT_SECS);
        assert_eq!(s.drain_secs, DEFAULT_DRAIN_SECS);
        assert_eq!(s.log_level, "info");
        assert!(s.peers.is_empty());
        assert_eq!(s.admin, None);
    }

    #[test]
    fn flags_win_over_the_file_key_by_key() {
        let flags = Layer {
            name: Some("relay-b".into()),
            peers: Some(vec!["b:1".into()]),
            ..Layer::default()
        };
        let f = file(&format!(
            "{BASE}peers = [\"a:1\", \"c:1\"]\ndrain_secs = 5\n"
        ));
        let s = merge(flags, f).unwrap();
        assert_eq!(s.name, "relay-b");
        assert_eq!(s.peers, ["b:1"]);
        assert_eq!(s.drain_secs, 5);
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/relayd"));
    }

    #[test]
    fn missing_setting_names_flag_env_and_key() {
        let err = merge(Layer::default(), file("name = \"a\"\n")).unwrap_err();
        assert!(err.contains("--listen"), "{err}");
        assert!(err.contains("RELAYD_LISTEN"), "{err}");
        assert!(err.contains("`listen = "), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = common::daemon::config_file::parse::<Layer>("nmae = \"x\"\n").unwrap_err();
        assert!(err.contains("unknown field `nmae`"), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        for (extra, word) in [
            ("heartbeat_secs = 0.0\n", "heartbeat_secs"),
            ("log_level = \"loud[\"\n", "log level"),
            ("peers = [\"nocolon\"]\n", "peer"),
        ] {
            let err = merge(Layer::default(), file(&format!("{BASE}{extra}"))).unwrap_err();
            assert!(err.contains(word), "{err}");
        }
    }

    #[test]
    fn directory_flag_wins_over_env_and_file_and_defaults_to_mesh() {
        let s = merge(Layer::default(), file(BASE)).unwrap();
        assert_eq!(s.directory, Directory::Mesh);
        let f = file(&format!(
            "{BASE}directory = \"redis://file:6379\"\ndirectory_prefix = \"fleet1\"\n"
        ));
        let s = merge(Layer::default(), f.clone()).unwrap();
        let Directory::Redis(r) = &s.directory else {
            panic!("{s:?}")
        };
        assert_eq!(r.url, "redis://file:6379");
        assert_eq!(r.prefix, "fleet1");
        assert_eq!(r.lease_secs, DEFAULT_LEASE_SECS);
        assert_eq!(r.cache_entries.get(), DEFAULT_CACHE_ENTRIES);
        // The flags-and-environment layer (clap reads both) wins key by key.
        let flags = Layer {
            directory: Some("redis://flag:6380/2".into()),
            lease_secs: Some(2),
            directory_cache: Some(500),
            ..Layer::default()
        };
        let s = merge(flags, f.clone()).unwrap();
        assert_eq!(
            s.directory,
            Directory::Redis(RedisSettings {
                url: "redis://flag:6380/2".into(),
                ca_file: None,
                prefix: "fleet1".into(),
                lease_secs: 2,
                cache_entries: NonZeroUsize::new(500).unwrap(),
                advertise: None,
            })
        );
        let flags = Layer {
            directory: Some("mesh".into()),
            ..Layer::default()
        };
        assert_eq!(merge(flags, f).unwrap().directory, Directory::Mesh);
    }

    #[test]
    fn a_cluster_or_sentinels_with_tls_and_a_ca_file_are_accepted() {
        for url in [
            "redis+cluster://r1:7000,r2:7000,r3:7000/",
            "redis+sentinel://s1:26379,s2:26379,s3:26379/fax-main",
        ] {
            let s = merge(
                Layer::default(),
                file(&format!("{BASE}directory = \"{url}\"\n")),
            )
            .unwrap();
            let Directory::Redis(r) = &s.directory else {
                panic!("{s:?}")
            };
            assert_eq!(r.url, url);
        }
        let flags = Layer {
            directory: Some("rediss+sentinel://s1:26379/fax-main".into()),
            directory_ca_file: Some("/etc/faxmesh/redis-ca.pem".into()),
            ..Layer::default()
        };
        let s = merge(flags, file(BASE)).unwrap();
        let Directory::Redis(r) = &s.directory else {
            panic!("{s:?}")
        };
        assert_eq!(
            r.ca_file.as_deref(),
            Some(Path::new("/etc/faxmesh/redis-ca.pem"))
        );
    }

    #[test]
    fn bad_directory_settings_are_refused() {
        for (extra, word) in [
            (
                "directory = \"postgres://x\"\n",
                "invalid directory 'postgres://x'",
            ),
            (
                "directory = \"redis+cluster://a:1,b/\"\n",
                "'b' is not HOST:PORT",
            ),
            (
                "directory = \"redis+cluster://a:1/0\"\n",
                "a cluster URL ends after its nodes",
            ),
            (
                "directory = \"redis+sentinel://s:26379\"\n",
                "'' is not a master name",
            ),
            (
                "directory = \"rediss+sentinal://s:26379/m\"\n",
                "unknown scheme 'rediss+sentinal'",
            ),
            (
                "directory = \"redis://x:1\"\ndirectory_ca_file = \"/ca.pem\"\n",
                "directory_ca_file /ca.pem needs a TLS directory, not 'redis://x:1'",
            ),
            (
                "directory_ca_file = \"/ca.pem\"\n",
                "directory_ca_file /ca.pem needs a TLS redis directory",
            ),
            (
                "directory = \"redis://x:1\"\nlease_secs = 0\n",
                "lease_secs",
            ),
            (
                "directory = \"redis://x:1\"\ndirectory_prefix = \"a b\"\n",
                "directory_prefix",
            ),
            (
                "directory = \"redis://x:1\"\ndirectory_cache = 0\n",
                "invalid directory_cache 0: use 1 to 100000000 records",
            ),
            (
                "directory = \"redis://x:1\"\ndirectory_cache = 100000001\n",
                "invalid directory_cache 100000001",
            ),
            (
                "directory = \"redis://x:1\"\npeers = [\"b:1\"]\n",
                "drop --peer",
            ),
        ] {
            let err = merge(Layer::default(), file(&format!("{BASE}{extra}"))).unwrap_err();
            assert!(err.contains(word), "{err}");
        }
        let wildcard = "name = \"a\"\nlisten = \"0.0.0.0:4710\"\ndata_dir = \"/d\"\ndirectory = \"redis://x:1\"\nallow_plaintext = [\"10.0.0.0/8\"]\n";
        let err = merge(Layer::default(), file(wildcard)).unwrap_err();
        assert!(err.contains("--advertise"), "{err}");
        let given = file(&format!(
            "{wildcard}advertise = \"relay-a.example.net:4710\"\n"
        ));
        assert!(merge(Layer::default(), given).is_ok());
    }

    #[test]
    fn limits_come_from_flags_over_the_file_and_are_checked() {
        let s = merge(Layer::default(), file(BASE)).unwrap();
        assert_eq!(s.limits, Limits::default());
        let f = file(&format!(
            "{BASE}max_pages_per_call = 5\nlogin_attempts_per_min = 3\n"
        ));
        let flags = Layer {
            login_attempts_per_min: Some(7),
            ..Layer::default()
        };
        let s = merge(flags, f).unwrap();
        assert_eq!(s.limits.max_pages_per_call, 5);
        assert_eq!(s.limits.login_attempts_per_min, 7);
        let err = merge(
            Layer::default(),
            file(&format!("{BASE}max_page_bytes = 1\n")),
        )
        .unwrap_err();
        assert!(err.contains("invalid max_page_bytes 1"), "{err}");
    }

    #[test]
    fn reload_changes() {
        let old = merge(
            Layer::default(),
            file(&format!("{BASE}peers = [\"a:1\"]\n")),
        )
        .unwrap();
        let new = merge(
            Layer::default(),
            file("name = \"relay-a\"\nlisten = \"127.0.0.1:4711\"\ndata_dir = \"/var/lib/relayd\"\npeers = [\"b:1\"]\nlog_level = \"debug\"\nallow_plaintext = [\"127.0.0.0/8\"]\n"),
        )
        .unwrap();
        let c = changes(&old, &new);
        assert_eq!(c.peers_added, ["b:1"]);
        assert_eq!(c.peers_removed, ["a:1"]);
        assert_eq!(c.log_level, Some(("info".into(), "debug".into())));
        assert_eq!(c.need_restart, ["listen: 127.0.0.1:4710 -> 127.0.0.1:4711"]);
        assert_eq!(changes(&new, &new), Changes::default());
    }
}

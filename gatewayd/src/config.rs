//! The gateway's settings and command line. Each setting comes from a flag,
//! else its environment variable (clap reads both), else the TOML config
//! file (`--config FILE`), else the default; [`merge`] is that rule as a
//! pure function. `systemd/gatewayd.toml` documents every key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use common::daemon::settings::{Changed, shown};
use common::link::control::LinkConfig;
use common::link::tls::ClientTls;
use common::link::transport::{Scheme, check_addr};
use ipnet::IpNet;

use crate::email::config::{
    self as mail_config, MailDeviceEntry, MailKeys, MailSenderEntry, MailSettings,
};

pub const DEFAULT_HEARTBEAT_SECS: f64 = 5.0;
pub const DEFAULT_MAX_BACKOFF_SECS: f64 = 10.0;
pub const DEFAULT_DRAIN_SECS: u64 = 30;
pub const DEFAULT_LOG_LEVEL: &str = "info";
pub const DEFAULT_MAX_FRAME_BYTES: usize = common::link::frame::MAX_FRAME_LEN;
/// Logins the relay refused, per device address per minute.
pub const DEFAULT_LOGIN_ATTEMPTS_PER_MIN: u32 = 10;

const EXAMPLES: &str = "\
Examples:
  gatewayd --listen 0.0.0.0:4700 --relay relay-a.example.net:4710 --relay relay-b.example.net:4710
  gatewayd --name office-3 --listen 192.168.1.10:4700 --relay 203.0.113.5:4710 --ca-file ca.pem
  gatewayd --listen 127.0.0.1:4700 --relay plain://127.0.0.1:4710     # plaintext, for a lab
  gatewayd --config /etc/faxmesh/gatewayd.toml --admin 127.0.0.1:9700   # under systemd
  gatewayd --config gatewayd.toml --state-dir /var/lib/gatewayd --smtp-listen 0.0.0.0:2525 \\
           --mail-domain fax.office.example --smarthost mail.office.example:25   # e-mail ([[mail_sender]] in the file)
  GATEWAYD_RELAYS=relay-a.example.net:4710,relay-b.example.net:4710 gatewayd --listen 0.0.0.0:4700
  gatewayd --generate-completions zsh > _gatewayd; gatewayd --generate-man > gatewayd.1

The gateway keeps one link to the first relay of the list that answers, fails over down
the list, and logs every device in again after a reconnect. Settings come from flags, else
GATEWAYD_* environment variables, else the --config file (TOML; unknown keys are refused),
else defaults. Ready is signalled to systemd (READY=1) with STATUS=\"listening on ADDR;
[admin on ADDR2; ]linked to relay NAME at ADDR|no relay link; calls in flight: N; devices
online: N\". SIGHUP reloads the relay list, log level and drain time from the file; SIGTERM
lets calls in flight finish, then exits 0.

Relays are dialed over TLS and their certificates checked against --ca-file (or the system's
roots); a relay written plain://HOST:PORT is dialed in plaintext (the relay must allow it).
The LAN side (devices dialing --listen) is plaintext.";

#[derive(Debug, Parser)]
#[command(
    name = "gatewayd",
    version,
    about = "faxmesh gateway: carries the fax devices of a LAN to a relay",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// TOML config file; every key is documented in systemd/gatewayd.toml.
    #[arg(long, value_name = "FILE", env = "GATEWAYD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub layer: Layer,
}

common::settings_layer! {
    /// One layer of settings: the config file, or the flags and environment.
    /// Each key once: its flag, environment variable and help; the TOML key
    /// is the field's name.
    pub struct Layer (env "GATEWAYD_", admin "127.0.0.1:9700") {
        /// Address the LAN's devices dial, e.g. 0.0.0.0:4700 (port 0 picks one) [required].
        #[arg(long, value_name = "ADDR", env = "GATEWAYD_LISTEN")]
        listen: SocketAddr,
        /// Relay to link to (HOST:PORT over TLS, or plain://HOST:PORT); repeat for failover, in order of preference
        /// (GATEWAYD_RELAYS: comma-separated) [required]. Given here, they replace the
        /// file's `relays`, and SIGHUP cannot change them.
        #[arg(
            long = "relay",
            value_name = "ADDR",
            env = "GATEWAYD_RELAYS",
            value_delimiter = ','
        )]
        relays: Vec<String>,
        /// This gateway's name, shown at the relay [default: HOSTNAME-PORT].
        #[arg(long, env = "GATEWAYD_NAME")]
        name: String,
        /// Longest pause between reconnect attempts, in seconds [default: 10].
        #[arg(long, value_name = "SECS", env = "GATEWAYD_MAX_BACKOFF_SECS")]
        max_backoff_secs: f64,
        /// CA certificates (PEM) that relays' certificates are checked against
        /// [default: the system's roots].
        #[arg(long, value_name = "F", env = "GATEWAYD_CA_FILE")]
        ca_file: PathBuf,
        /// Refused logins per device address per minute before every login from it
        /// is refused with "too many attempts"; 0 turns this off [default: 10].
        #[arg(long, value_name = "N", env = "GATEWAYD_LOGIN_ATTEMPTS_PER_MIN")]
        login_attempts_per_min: u32,
        /// Directory of the gateway's fax queue (a sled database; created if
        /// missing). Without it the gateway keeps no queue and refuses
        /// `faxsend --queue`. Under systemd: /var/lib/gatewayd.
        #[arg(long, value_name = "DIR", env = "GATEWAYD_STATE_DIR")]
        state_dir: PathBuf,
        /// Webhook that gets every queued job's events (queued, sending,
        /// waiting, done, failed, canceled) as signed JSON; needs
        /// notify_key_file and the state directory.
        #[arg(long, value_name = "URL", env = "GATEWAYD_NOTIFY_URL")]
        notify_url: String,
        /// Key (at least 16 bytes) the webhooks' Faxmesh-Signature is made with;
        /// also what lets devices ask for their own webhook (faxsend --notify-url).
        #[arg(long, value_name = "F", env = "GATEWAYD_NOTIFY_KEY_FILE")]
        notify_key_file: PathBuf,
        /// Command run with each job event's JSON on stdin (through sh -c;
        /// retried until it exits 0), e.g. to mail the outcome.
        #[arg(long, value_name = "CMD", env = "GATEWAYD_JOB_HOOK")]
        job_hook: String,
        /// Listen for SMTP here (mail clients and MFPs on the LAN fax by
        /// mail: T.37), e.g. 0.0.0.0:25; needs mail_domain, the state
        /// directory and a [[mail_sender]] in the config file [default: off].
        #[arg(long, value_name = "ADDR", env = "GATEWAYD_SMTP_LISTEN")]
        smtp_listen: SocketAddr,
        /// Domain of fax addresses: mail to NUMBER@DOMAIN is faxed to NUMBER,
        /// e.g. fax.example.com.
        #[arg(long, value_name = "DOMAIN", env = "GATEWAYD_MAIL_DOMAIN")]
        mail_domain: String,
        /// Certificate chain (PEM) for SMTP STARTTLS; reloaded on SIGHUP.
        #[arg(long, value_name = "F", env = "GATEWAYD_SMTP_CERT_FILE")]
        smtp_cert_file: PathBuf,
        /// Private key (PEM) of smtp_cert_file.
        #[arg(long, value_name = "F", env = "GATEWAYD_SMTP_KEY_FILE")]
        smtp_key_file: PathBuf,
        /// SMTP AUTH users (PLAIN and LOGIN, only after STARTTLS): lines
        /// USER:HASH, HASH a SHA-512-crypt ($6$, `openssl passwd -6`),
        /// SHA-256-crypt ($5$) or bcrypt ($2b$, `htpasswd -nB`); re-read on SIGHUP.
        #[arg(long, value_name = "F", env = "GATEWAYD_SMTP_USERS_FILE")]
        smtp_users_file: PathBuf,
        /// Client networks (CIDR, comma-separated) whose mail is taken without
        /// AUTH, from the sender addresses listed in [[mail_sender]].
        #[arg(
            long,
            value_name = "CIDR",
            env = "GATEWAYD_SMTP_ALLOW_NETWORKS",
            value_delimiter = ','
        )]
        smtp_allow_networks: Vec<IpNet>,
        /// Largest mail accepted, in bytes [default: 26214400].
        #[arg(long, value_name = "BYTES", env = "GATEWAYD_SMTP_MAX_MESSAGE_BYTES")]
        smtp_max_message_bytes: usize,
        /// Most recipients (fax numbers) of one mail [default: 20].
        #[arg(long, value_name = "N", env = "GATEWAYD_SMTP_MAX_RECIPIENTS")]
        smtp_max_recipients: usize,
        /// The site's mail server, HOST:PORT, that status mails and mail
        /// devices' faxes go through (STARTTLS when it offers it).
        #[arg(long, value_name = "HOST:PORT", env = "GATEWAYD_SMARTHOST")]
        smarthost: String,
        /// CA certificates (PEM) the smarthost's certificate is checked
        /// against [default: the system's roots].
        #[arg(long, value_name = "F", env = "GATEWAYD_SMARTHOST_CA_FILE")]
        smarthost_ca_file: PathBuf,
        /// From: of the mails the gateway writes [default: fax-gateway@MAIL_DOMAIN].
        #[arg(long, value_name = "ADDR", env = "GATEWAYD_MAIL_FROM")]
        mail_from: String,
        /// Config file only: who may fax by mail, as which number
        /// (`[[mail_sender]]` tables; see systemd/gatewayd.toml).
        #[arg(skip)]
        mail_sender: Vec<MailSenderEntry>,
        /// Config file only: numbers the gateway answers and mails on
        /// (`[[mail_device]]` tables; see systemd/gatewayd.toml).
        #[arg(skip)]
        mail_device: Vec<MailDeviceEntry>,
    }
}

/// The merged, checked settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub relays: Vec<String>,
    pub name: Option<String>,
    pub heartbeat_secs: f64,
    pub max_backoff_secs: f64,
    pub drain_secs: u64,
    pub admin: Option<SocketAddr>,
    pub log_level: String,
    pub ca_file: Option<PathBuf>,
    pub max_frame_bytes: usize,
    pub login_attempts_per_min: u32,
    pub state_dir: Option<PathBuf>,
    pub notify_url: Option<String>,
    pub notify_key_file: Option<PathBuf>,
    pub job_hook: Option<String>,
    /// SMTP, mail devices and the smarthost; `None`: no mail.
    pub mail: Option<MailSettings>,
}

/// Merges flags-and-environment over the file, applies defaults, checks.
pub fn merge(flags: Layer, file: Layer) -> Result<Settings, String> {
    let l = flags.over(file);
    let listen = l.listen.ok_or(
        "missing setting listen: give --listen ADDR (or GATEWAYD_LISTEN) or `listen = \"0.0.0.0:4700\"` in the config file",
    )?;
    let mut relays = l.relays.unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    relays.retain(|r| seen.insert(r.clone()));
    if relays.is_empty() {
        return Err("missing setting relays: give --relay ADDR (or GATEWAYD_RELAYS) or `relays = [\"relay-a.example.net:4710\"]` in the config file".into());
    }
    if let Some(e) = relays.iter().find_map(|r| check_addr(r).err()) {
        return Err(format!("invalid relay: {e}"));
    }
    let heartbeat_secs = l.heartbeat_secs.unwrap_or(DEFAULT_HEARTBEAT_SECS);
    let max_backoff_secs = l.max_backoff_secs.unwrap_or(DEFAULT_MAX_BACKOFF_SECS);
    for (key, v) in [
        ("heartbeat_secs", heartbeat_secs),
        ("max_backoff_secs", max_backoff_secs),
    ] {
        if !(v > 0.0 && v <= 3600.0) {
            return Err(format!(
                "invalid {key} {v}: use seconds above 0 and at most 3600"
            ));
        }
    }
    let log_level = l.log_level.unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
    common::daemon::logging::validate_level(&log_level)?;
    let max_frame_bytes = l.max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES);
    let (lo, hi) = (
        common::link::frame::MIN_FRAME_LIMIT,
        common::link::frame::MAX_FRAME_LIMIT,
    );
    if !(lo..=hi).contains(&max_frame_bytes) {
        return Err(format!(
            "invalid max_frame_bytes {max_frame_bytes}: use {lo} to {hi}"
        ));
    }
    if let Some(url) = &l.notify_url {
        common::hooks::Target::url(url).map_err(|e| format!("invalid notify_url: {e}"))?;
        if l.notify_key_file.is_none() {
            return Err(
                "notify_url needs notify_key_file: the key its events are signed with".into(),
            );
        }
    }
    if l.state_dir.is_none() {
        for (key, set) in [
            ("notify_url", l.notify_url.is_some()),
            ("notify_key_file", l.notify_key_file.is_some()),
            ("job_hook", l.job_hook.is_some()),
        ] {
            if set {
                return Err(format!("{key} is about queued jobs: it needs state_dir"));
            }
        }
    }
    let mail = mail_config::check(MailKeys {
        smtp_listen: l.smtp_listen,
        mail_domain: l.mail_domain,
        smtp_cert_file: l.smtp_cert_file,
        smtp_key_file: l.smtp_key_file,
        smtp_users_file: l.smtp_users_file,
        smtp_allow_networks: l.smtp_allow_networks,
        smtp_max_message_bytes: l.smtp_max_message_bytes,
        smtp_max_recipients: l.smtp_max_recipients,
        smarthost: l.smarthost,
        smarthost_ca_file: l.smarthost_ca_file,
        mail_from: l.mail_from,
        mail_sender: l.mail_sender,
        mail_device: l.mail_device,
        has_state_dir: l.state_dir.is_some(),
    })?;
    Ok(Settings {
        mail,
        notify_url: l.notify_url,
        notify_key_file: l.notify_key_file,
        job_hook: l.job_hook,
        max_frame_bytes,
        login_attempts_per_min: l
            .login_attempts_per_min
            .unwrap_or(DEFAULT_LOGIN_ATTEMPTS_PER_MIN),
        listen,
        relays,
        name: l.name,
        heartbeat_secs,
        max_backoff_secs,
        drain_secs: l.drain_secs.unwrap_or(DEFAULT_DRAIN_SECS),
        admin: l.admin,
        log_level,
        ca_file: l.ca_file,
        state_dir: l.state_dir,
    })
}

impl Cli {
    /// The settings from the flags, the environment and the config file.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        // The file (if any) under the flags and environment.
        common::daemon::config_file::load_under(&self.layer, self.config.as_deref(), merge)
    }

    pub fn into_config(self) -> anyhow::Result<GatewayConfig> {
        GatewayConfig::from_settings(self.settings()?)
    }
}

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub name: Option<String>,
    pub listen: SocketAddr,
    /// Relays in order of preference (at start; SIGHUP may change them).
    pub relays: Vec<String>,
    pub link: LinkConfig,
    pub max_backoff: Duration,
    /// How long calls may take to finish after SIGTERM (at start).
    pub drain_timeout: Duration,
    pub admin: Option<SocketAddr>,
    /// Largest frame on any link (at start).
    pub max_frame_bytes: usize,
    /// Refused logins per device address per minute (at start; 0: no limit).
    pub login_attempts_per_min: u32,
    /// Where the fax queue lives; `None`: no queue.
    pub state_dir: Option<PathBuf>,
    /// Where every job's events go (a webhook, a command).
    pub job_targets: Vec<common::hooks::Target>,
    /// Signs webhooks; `None`: no webhook at all, per-job ones included.
    pub notify_key: Option<common::hooks::SigningKey>,
    /// The settings this config came from, to tell what a reload changes.
    pub settings: Option<Settings>,
}

impl GatewayConfig {
    /// Also reads the CA file, so a bad one stops the start.
    pub fn from_settings(s: Settings) -> anyhow::Result<GatewayConfig> {
        Ok(GatewayConfig {
            name: s.name.clone(),
            listen: s.listen,
            relays: s.relays.clone(),
            link: LinkConfig {
                heartbeat: Duration::from_secs_f64(s.heartbeat_secs),
                // Relays over TLS unless their address says plain://. The
                // LAN side accepts plain TCP whatever this says.
                default_scheme: Scheme::Tls,
                tls: ClientTls::new(s.ca_file.as_deref())?,
                ..LinkConfig::default()
            },
            max_backoff: Duration::from_secs_f64(s.max_backoff_secs),
            drain_timeout: Duration::from_secs(s.drain_secs),
            admin: s.admin,
            max_frame_bytes: s.max_frame_bytes,
            login_attempts_per_min: s.login_attempts_per_min,
            state_dir: s.state_dir.clone(),
            job_targets: s
                .notify_url
                .iter()
                .filter_map(|u| common::hooks::Target::url(u).ok())
                .chain(s.job_hook.iter().map(common::hooks::Target::command))
                .collect(),
            notify_key: s
                .notify_key_file
                .as_deref()
                .map(common::hooks::SigningKey::from_file)
                .transpose()?,
            settings: Some(s),
        })
    }
}

common::reload_changes!(Changes);

/// What a reload changes: applied live, or needing a restart (reported).
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub relays: Option<(Vec<String>, Vec<String>)>,
    pub log_level: Option<(String, String)>,
    pub drain_secs: Option<(u64, u64)>,
    pub need_restart: Vec<String>,
}

pub fn changes(old: &Settings, new: &Settings) -> Changes {
    let mut restart = Changed::default();
    let path = |p: &Option<PathBuf>| shown(p.as_ref().map(|p| p.display()), "(system roots)");
    restart
        .restart("listen", old.listen, new.listen)
        .restart(
            "name",
            shown(old.name.as_ref(), "(default)"),
            shown(new.name.as_ref(), "(default)"),
        )
        .restart("heartbeat_secs", old.heartbeat_secs, new.heartbeat_secs)
        .restart(
            "max_backoff_secs",
            old.max_backoff_secs,
            new.max_backoff_secs,
        )
        .restart(
            "admin",
            shown(old.admin, "(none)"),
            shown(new.admin, "(none)"),
        )
        .restart("ca_file", path(&old.ca_file), path(&new.ca_file))
        .restart("max_frame_bytes", old.max_frame_bytes, new.max_frame_bytes)
        .restart(
            "login_attempts_per_min",
            old.login_attempts_per_min,
            new.login_attempts_per_min,
        )
        .restart(
            "state_dir",
            shown(old.state_dir.as_ref().map(|p| p.display()), "(none)"),
            shown(new.state_dir.as_ref().map(|p| p.display()), "(none)"),
        )
        .restart(
            "notify_url",
            shown(old.notify_url.as_ref(), "(none)"),
            shown(new.notify_url.as_ref(), "(none)"),
        )
        .restart(
            "notify_key_file",
            shown(old.notify_key_file.as_ref().map(|p| p.display()), "(none)"),
            shown(new.notify_key_file.as_ref().map(|p| p.display()), "(none)"),
        )
        .restart(
            "job_hook",
            shown(old.job_hook.as_ref(), "(none)"),
            shown(new.job_hook.as_ref(), "(none)"),
        )
        .restart_group(
            "mail settings (smtp_*, mail_*, smarthost*) changed",
            &old.mail,
            &new.mail,
        );
    common::restart_shared_keys!(restart, old, new);
    Changes {
        need_restart: restart.need_restart,
        relays: Changed::live(&old.relays, &new.relays),
        log_level: Changed::live(&old.log_level, &new.log_level),
        drain_secs: Changed::live(&old.drain_secs, &new.drain_secs),
    }
}

/// The settings in force after a reload from `old` to `new`: the live keys
/// (relays, log level, drain time) take their new values, the restart-only
/// ones keep those the gateway runs with.
pub fn applied(old: &Settings, new: Settings) -> Settings {
    Settings {
        relays: new.relays,
        log_level: new.log_level,
        drain_secs: new.drain_secs,
        ..old.clone()
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

#[cfg(test)]
mod tests {
    use super::*;
    use common::daemon::config_file::parse;

    fn file(text: &str) -> Layer {
        parse(text).unwrap()
    }

    #[test]
    fn file_alone_with_defaults() {
        let s = merge(
            Layer::default(),
            file("listen = \"0.0.0.0:4700\"\nrelays = [\"a:1\", \"b:1\"]\n"),
        )
        .unwrap();
        assert_eq!(s.relays, ["a:1", "b:1"]);
        assert_eq!(s.heartbeat_secs, DEFAULT_HEARTBEAT_SECS);
        assert_eq!(s.max_backoff_secs, DEFAULT_MAX_BACKOFF_SECS);
        assert_eq!(s.drain_secs, DEFAULT_DRAIN_SECS);
        assert_eq!(s.log_level, "info");
        assert_eq!(s.name, None);
    }

    #[test]
    fn flags_win_key_by_key() {
        let flags = Layer {
            relays: Some(vec!["c:1".into()]),
            drain_secs: Some(3),
            ..Layer::default()
        };
        let s = merge(
            flags,
            file("listen = \"0.0.0.0:4700\"\nrelays = [\"a:1\"]\ndrain_secs = 9\nname = \"gw\"\n"),
        )
        .unwrap();
        assert_eq!(s.relays, ["c:1"]);
        assert_eq!(s.drain_secs, 3);
        assert_eq!(s.name.as_deref(), Some("gw"));
    }

    #[test]
    fn missing_settings_name_both_ways() {
        let err = merge(Layer::default(), file("relays = [\"a:1\"]\n")).unwrap_err();
        assert!(
            err.contains("--listen") && err.contains("`listen = "),
            "{err}"
        );
        let err = merge(Layer::default(), file("listen = \"0.0.0.0:1\"\n")).unwrap_err();
        assert!(
            err.contains("--relay") && err.contains("`relays = "),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = common::daemon::config_file::parse::<Layer>("relay = [\"a:1\"]\n").unwrap_err();
        assert!(err.contains("unknown field `relay`"), "{err}");
    }

    #[test]
    fn reload_changes() {
        let a = merge(
            Layer::default(),
            file("listen = \"0.0.0.0:1\"\nrelays = [\"a:1\"]\n"),
        )
        .unwrap();
        let b = merge(
            Layer::default(),
            file("listen = \"0.0.0.0:2\"\nrelays = [\"a:1\", \"b:1\"]\nlog_level = \"debug\"\n"),
        )
        .unwrap();
        let c = changes(&a, &b);
        assert_eq!(
            c.relays,
            Some((vec!["a:1".into()], vec!["a:1".into(), "b:1".into()]))
        );
        assert_eq!(c.log_level, Some(("info".into(), "debug".into())));
        assert_eq!(c.need_restart, ["listen: 0.0.0.0:1 -> 0.0.0.0:2"]);
        assert_eq!(changes(&b, &b), Changes::default());
    }
}

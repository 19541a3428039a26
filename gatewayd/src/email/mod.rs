//! The gateway's e-mail side (design.md, "E-mail"): mail clients and MFPs
//! on the LAN fax by mail (T.37 simple mode, RFC 3965), and numbers the
//! gateway answers itself are mailed each fax they receive.
//!
//! - [`config`]: the mail settings and `[[mail_sender]]` / `[[mail_device]]` tables, checked.
//! - [`users`]: SMTP AUTH users and their password hashes.
//! - [`policy`]: who may fax by mail and to which numbers (no I/O).
//! - [`outbox`]: mails waiting for the smarthost, durable, retried.
//! - [`smtp_server`]: the SMTP listener's sockets, TLS and AUTH.
//! - [`submit`]: a received mail made into a queued fax.
//! - [`status`]: the status mail when a fax sent by mail ends.
//! - [`devices`]: mail devices: numbers answered by the gateway, each fax mailed.

pub mod config;
pub mod devices;
pub mod outbox;
pub mod policy;
pub mod smtp_server;
pub mod status;
pub mod submit;
pub mod users;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use anyhow::Context;
use common::link::tls::ServerTls;
use common::number::Number;
use common::throttle::LoginThrottle;
use tokio::net::TcpListener;

use self::config::MailSettings;
use self::outbox::Outbox;
use self::users::Users;
use crate::queue::Queue;

/// Failed SMTP AUTHs per client address per minute before every AUTH from
/// it is refused (421) for the rest of the minute.
pub const AUTH_FAILURES_PER_MIN: u32 = 5;

/// The mail side's state, shared by its tasks.
#[derive(Debug)]
pub struct Mail {
    pub settings: MailSettings,
    /// Our name in SMTP greetings and Message-IDs.
    pub hostname: String,
    /// STARTTLS certificate (reloaded on SIGHUP).
    pub tls: Option<ServerTls>,
    users: RwLock<Arc<Users>>,
    auth_throttle: Mutex<LoginThrottle<IpAddr>>,
    /// Secrets of the `[[mail_sender]]` and `[[mail_device]]` numbers.
    pub secrets: HashMap<Number, String>,
    /// Mails for the smarthost (when there is one).
    pub outbox: Option<Arc<Outbox>>,
    /// Jobs queued from mail: job id -> where its status mail goes.
    pub origins: sled::Tree,
    /// The SMTP listener, bound at start, served once the gateway runs.
    listener: Mutex<Option<TcpListener>>,
    pub smtp_addr: Option<SocketAddr>,
}

impl Mail {
    /// Reads the secrets, users and certificate, opens the outbox in the
    /// queue's database, and binds the SMTP listener: any problem stops the
    /// start with the file or address named.
    pub async fn open(settings: MailSettings, queue: &Queue) -> anyhow::Result<Mail> {
        let mut secrets = HashMap::new();
        let senders = settings.smtp.iter().flat_map(|s| &s.senders);
        let numbers = senders
            .map(|s| (&s.number, &s.secret_file))
            .chain(settings.devices.iter().map(|d| (&d.number, &d.secret_file)));
        for (number, file) in numbers {
            let secret = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the secret of {number}: {}", file.display()))?
                .trim()
                .to_owned();
            anyhow::ensure!(
                !secret.is_empty(),
                "the secret file of {number} ({}) is empty",
                file.display()
            );
            if let Some(other) = secrets.insert(number.clone(), secret.clone())
                && other != secret
            {
                anyhow::bail!("number {number} is given two different secret files");
            }
        }
        let smtp = settings.smtp.as_ref();
        let tls = match smtp.and_then(|s| s.tls.as_ref()) {
            Some((cert, key)) => {
                Some(ServerTls::load(cert, key).context("SMTP STARTTLS certificate")?)
            }
            None => None,
        };
        let users = match smtp.and_then(|s| s.users_file.as_deref()) {
            Some(path) => Users::load(path).map_err(anyhow::Error::msg)?,
            None => Users::default(),
        };
        let (listener, smtp_addr) = match smtp {
            Some(s) => {
                let l = TcpListener::bind(s.listen)
                    .await
                    .with_context(|| format!("cannot listen for SMTP on {}", s.listen))?;
                let addr = l.local_addr()?;
                (Some(l), Some(addr))
            }
            None => (None, None),
        };
        let outbox = match &settings.smarthost {
            Some(_) => Some(Arc::new(Outbox::open(queue.store.db())?)),
            None => None,
        };
        Ok(Mail {
            hostname: hostname(),
            tls,
            users: RwLock::new(Arc::new(users)),
            auth_throttle: Mutex::new(LoginThrottle::new(AUTH_FAILURES_PER_MIN)),
            secrets,
            outbox,
            origins: queue.store.tree("mail_jobs")?,
            listener: Mutex::new(listener),
            smtp_addr,
            settings,
        })
    }

    pub fn users(&self) -> Arc<Users> {
        self.users.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn auth_throttle(&self) -> MutexGuard<'_, LoginThrottle<IpAddr>> {
        self.auth_throttle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bound SMTP listener, once (to serve it).
    pub fn take_listener(&self) -> Option<TcpListener> {
        self.listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// SIGHUP: the STARTTLS certificate and the users file are read again;
    /// on an error the old ones stay and the error is logged.
    pub fn reload(&self) {
        if let Some(tls) = &self.tls {
            match tls.reload(None) {
                Ok(()) => tracing::info!("SMTP certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "SMTP certificate not reloaded; the old one stays")
                }
            }
        }
        if let Some(path) = self
            .settings
            .smtp
            .as_ref()
            .and_then(|s| s.users_file.as_deref())
        {
            match Users::load(path) {
                Ok(users) => {
                    tracing::info!(users = users.len(), "SMTP users reloaded");
                    *self.users.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(users);
                }
                Err(e) => tracing::error!(error = %e, "SMTP users not reloaded; the old ones stay"),
            }
        }
    }
}

/// This machine's name, for SMTP greetings and Message-IDs.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

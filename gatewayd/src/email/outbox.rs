//! Mails waiting for the site's mail server (the smarthost): a mail
//! device's faxes and the status mails of faxes sent by mail. Each is
//! stored in the queue's database and synced before it counts as queued,
//! then handed to the smarthost over SMTP (lettre; STARTTLS when the
//! server offers it), and retried with backoff until the smarthost takes
//! it. A mail is queued under a key (the fax's call id, the job's id):
//! queuing a key twice, even after it was sent, mails it once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::backoff::Backoff;
use lettre::address::Envelope;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::gateway::Gateway;
use crate::metrics::GatewayMetrics;
use crate::queue::now_ms;

/// First pause after a failed try; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(300);
/// Longest an SMTP exchange with the smarthost may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

/// One mail as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    /// "fax" or "status", for metrics and logs.
    kind: String,
    from: String,
    to: Vec<String>,
    #[serde(with = "serde_bytes_vec")]
    message: Vec<u8>,
    tries: u32,
    /// Not before this time (Unix ms): a mail the smarthost refused.
    next_try_ms: u64,
}

/// serde for `Vec<u8>` as bytes (postcard would write a long list otherwise).
mod serde_bytes_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let b: &[u8] = Deserialize::deserialize(d)?;
        Ok(b.to_vec())
    }
}

/// Where mails go: HOST:PORT and the CA file its certificate is checked
/// against (else the system's roots).
#[derive(Clone, Debug)]
pub struct Smarthost {
    pub host: String,
    pub port: u16,
    pub ca_file: Option<PathBuf>,
}

impl Smarthost {
    pub fn parse(addr: &str, ca_file: Option<PathBuf>) -> Result<Smarthost, String> {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("invalid smarthost {addr:?}: write HOST:PORT"))?;
        let port = port
            .parse()
            .map_err(|_| format!("invalid smarthost {addr:?}: bad port {port:?}"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Smarthost {
            host,
            port,
            ca_file,
        })
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let mut tls = TlsParameters::builder(self.host.clone());
        if let Some(ca) = &self.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("cannot read smarthost_ca_file {}: {e}", ca.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("smarthost_ca_file {}: {e}", ca.display()))?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls.build_rustls().map_err(|e| e.to_string())?;
        Ok(
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
                .port(self.port)
                .tls(Tls::Opportunistic(tls))
                .timeout(Some(SMTP_TIMEOUT))
                .build(),
        )
    }
}

/// The outbox. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Outbox {
    db: sled::Db,
    waiting: sled::Tree,
    sent: sled::Tree,
    wake: Notify,
}

impl Outbox {
    pub fn open(db: &sled::Db) -> sled::Result<Outbox> {
        Ok(Outbox {
            waiting: db.open_tree("mail_outbox")?,
            sent: db.open_tree("mail_sent")?,
            db: db.clone(),
            wake: Notify::new(),
        })
    }

    /// Queues a mail under `key` and syncs it; `false` when `key` was
    /// queued before (sent or not): nothing is queued twice.
    pub async fn push(
        &self,
        key: &str,
        kind: &str,
        from: &str,
        to: &[String],
        message: Vec<u8>,
    ) -> Result<bool, String> {
        if !self.store(key, kind, from, to, message)? {
            return Ok(false);
        }
        common::storage::flush(&self.db)
            .await
            .map_err(|e| format!("cannot queue the mail: {e}"))?;
        self.wake.notify_one();
        Ok(true)
    }

    /// [`Outbox::push`] for a caller off the async threads.
    pub fn push_blocking(
        &self,
        key: &str,
        kind: &str,
        from: &str,
        to: &[String],
        message: Vec<u8>,
    ) -> Result<bool, String> {
        if !self.store(key, kind, from, to, message)? {
            return Ok(false);
        }
        self.db
            .flush()
            .map_err(|e| format!("cannot queue the mail: {e}"))?;
        self.wake.notify_one();
        Ok(true)
    }

    /// Stores a mail under `key` (not synced); `false` when `key` was
    /// queued before, sent or not.
    fn store(
        &self,
        key: &str,
        kind: &str,
        from: &str,
        to: &[String],
        message: Vec<u8>,
    ) -> Result<bool, String> {
        let fail = |e: sled::Error| format!("cannot queue the mail: {e}");
        if self.sent.contains_key(key).map_err(fail)?
            || self.waiting.contains_key(key).map_err(fail)?
        {
            return Ok(false);
        }
        let stored = Stored {
            kind: kind.to_owned(),
            from: from.to_owned(),
            to: to.to_vec(),
            message,
            tries: 0,
            next_try_ms: 0,
        };
        let bytes = postcard::to_stdvec(&stored).map_err(|e| e.to_string())?;
        self.waiting.insert(key, bytes).map_err(fail)?;
        Ok(true)
    }

    /// Mails not yet accepted by the smarthost.
    pub fn depth(&self) -> u64 {
        self.waiting.len() as u64
    }

    /// Hands the waiting mails to `smarthost`, oldest key first, until `stop`.
    pub async fn run(self: Arc<Self>, smarthost: Smarthost, gw: Arc<Gateway>) {
        let (metrics, stop) = (&gw.metrics, gw.closing.clone());
        let transport = match smarthost.transport() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot set up the smarthost: no mail will be sent");
                return;
            }
        };
        let mut backoff = Backoff::new(FIRST_PAUSE, MAX_PAUSE);
        loop {
            let notified = self.wake.notified();
            let pass = self.send_all(&transport, &smarthost, metrics).await;
            let pause = if pass.smarthost_down {
                Some(backoff.next_pause())
            } else {
                backoff.reset();
                pass.next_deferred_ms
                    .map(|at| Duration::from_millis(at.saturating_sub(now_ms())))
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = notified => {}
                _ = tokio::time::sleep(pause.unwrap_or_default()), if pause.is_some() => {}
            }
        }
    }

    /// Sends every waiting mail that is due, in order. A transient failure
    /// (the smarthost is down, or answers 4xx) ends the pass: the rest
    /// waits too. A mail the smarthost refuses for good (5xx) is tried again
    /// every [`MAX_PAUSE`] (the operator may fix the address or the
    /// smarthost) and does not hold up the others.
    async fn send_all(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
        smarthost: &Smarthost,
        metrics: &GatewayMetrics,
    ) -> Pass {
        let mut pass = Pass::default();
        for entry in self.waiting.iter() {
            let Ok((key, value)) = entry else {
                pass.smarthost_down = true;
                return pass;
            };
            let key_text = String::from_utf8_lossy(&key).into_owned();
            let mut stored: Stored = match postcard::from_bytes(&value) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(mail = %key_text, error = %e, "unreadable mail in the outbox; dropped");
                    let _ = self.waiting.remove(&key);
                    continue;
                }
            };
            if stored.next_try_ms > now_ms() {
                let at = pass
                    .next_deferred_ms
                    .map_or(stored.next_try_ms, |t| t.min(stored.next_try_ms));
                pass.next_deferred_ms = Some(at);
                continue;
            }
            match send(transport, &stored).await {
                Ok(()) => {
                    metrics.mails_sent.inc(&[("kind", stored.kind.as_str())]);
                    let done = (|| -> sled::Result<()> {
                        self.sent.insert(&key, now_ms().to_be_bytes().to_vec())?;
                        self.waiting.remove(&key)?;
                        Ok(())
                    })();
                    if let Err(e) = done {
                        tracing::error!(mail = %key_text, error = %e, "cannot mark the mail sent");
                    }
                    let _ = common::storage::flush(&self.db).await;
                    // Said once the outbox has marked it sent, so whoever
                    // reads this line finds the spool depth without it.
                    tracing::info!(mail = %key_text, kind = %stored.kind, to = ?stored.to, tries = stored.tries + 1,
                        smarthost = %format!("{}:{}", smarthost.host, smarthost.port), "mail handed to the smarthost");
                }
                Err(failure) => {
                    stored.tries += 1;
                    metrics.mail_retries.inc();
                    let permanent = matches!(failure, Failure::Permanent(_));
                    if permanent {
                        stored.next_try_ms = now_ms() + MAX_PAUSE.as_millis() as u64;
                        tracing::error!(mail = %key_text, kind = %stored.kind, to = ?stored.to, tries = stored.tries, error = %failure,
                            "the smarthost refused the mail; trying it again in 5 minutes");
                    } else {
                        tracing::warn!(mail = %key_text, kind = %stored.kind, tries = stored.tries, error = %failure,
                            "the smarthost did not take the mail; retrying");
                    }
                    if let Ok(bytes) = postcard::to_stdvec(&stored) {
                        let _ = self.waiting.insert(&key, bytes);
                    }
                    if !permanent {
                        pass.smarthost_down = true;
                        return pass;
                    }
                    pass.next_deferred_ms = Some(
                        pass.next_deferred_ms
                            .map_or(stored.next_try_ms, |t| t.min(stored.next_try_ms)),
                    );
                }
            }
        }
        pass
    }
}

/// What one pass over the outbox found.
#[derive(Debug, Default)]
struct Pass {
    /// A transient failure: back off, then try everything again.
    smarthost_down: bool,
    /// The earliest time a refused mail is due again.
    next_deferred_ms: Option<u64>,
}

/// Why a mail was not taken.
#[derive(Debug)]
enum Failure {
    /// Try again soon (no connection, a 4xx).
    Transient(String),
    /// The smarthost refused it (5xx), or its addresses are bad.
    Permanent(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transient(e) | Failure::Permanent(e) => f.write_str(e),
        }
    }
}

async fn send(transport: &AsyncSmtpTransport<Tokio1Executor>, m: &Stored) -> Result<(), Failure> {
    let from = m
        .from
        .parse()
        .map_err(|e| Failure::Permanent(format!("bad sender {:?}: {e}", m.from)))?;
    let to =
        m.to.iter()
            .map(|a| {
                a.parse()
                    .map_err(|e| Failure::Permanent(format!("bad recipient {a:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
    let envelope = Envelope::new(Some(from), to).map_err(|e| Failure::Permanent(e.to_string()))?;
    transport
        .send_raw(&envelope, &m.message)
        .await
        .map(|_| ())
        .map_err(|e| match e.is_permanent() {
            true => Failure::Permanent(e.to_string()),
            false => Failure::Transient(e.to_string()),
        })
}

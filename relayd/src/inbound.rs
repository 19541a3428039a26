//! How the relay takes an accepted connection: a TLS ClientHello (first
//! byte 0x16) gets the relay's certificate; anything else is plaintext,
//! allowed only from the networks the operator listed. Both on one port.
//!
//! A refused plaintext dialer still gets its hello answered, with the
//! reason, so the operator of the gateway or device reads why in its own
//! log; nothing else (no login, no call) happens on such a link.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use common::link::control::LinkConfig;
use common::link::tls::{ServerTls, TlsError};
use common::link::transport::{self, Inbound, Scheme};
use tokio::net::TcpStream;

use crate::tls_settings::TlsSettings;

/// The certificate in use and the plaintext allow-list; SIGHUP replaces
/// them for links accepted afterwards.
#[derive(Debug)]
pub struct InboundPolicy {
    /// Std locks: held only to clone or swap, never across an await.
    server: RwLock<Option<Arc<ServerTls>>>,
    settings: RwLock<TlsSettings>,
}

/// An accepted connection ready for the hello, and the reason to refuse it
/// there (a plaintext link from a network not allowed).
#[derive(Debug)]
pub struct Opened {
    pub inbound: Inbound,
    pub scheme: Scheme,
    pub refusal: Option<String>,
}

impl InboundPolicy {
    /// Loads the certificate and key, if given (so bad files stop the start).
    pub fn load(settings: &TlsSettings) -> Result<InboundPolicy, TlsError> {
        let server = match &settings.cert_key {
            Some((cert, key)) => Some(Arc::new(ServerTls::load(cert, key)?)),
            None => None,
        };
        Ok(InboundPolicy {
            server: RwLock::new(server),
            settings: RwLock::new(settings.clone()),
        })
    }

    /// Whether this relay presents a certificate.
    pub fn has_certificate(&self) -> bool {
        self.server
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Tells TLS from plaintext and runs the TLS handshake; errors say why
    /// the connection was dropped.
    pub async fn open(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        cfg: &LinkConfig,
    ) -> Result<Opened, String> {
        let scheme = transport::sniff(&tcp, cfg)
            .await
            .map_err(|e| e.to_string())?;
        match scheme {
            Scheme::Tls => {
                let server = self
                    .server
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let Some(server) = server else {
                    return Err("TLS link refused: this relay has no certificate (give --tls-cert and --tls-key)".into());
                };
                let inbound = transport::accept_tls(tcp, server.config(), cfg)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Opened {
                    inbound,
                    scheme,
                    refusal: None,
                })
            }
            Scheme::Plain => {
                let allowed = self
                    .settings
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .plaintext_allowed(peer.ip());
                let refusal = (!allowed).then(|| {
                    format!(
                        "plaintext links from {} are not allowed: dial with TLS, or have the relay's operator add the address to --allow-plaintext",
                        peer.ip().to_canonical()
                    )
                });
                Ok(Opened {
                    inbound: Inbound::from(tcp),
                    scheme,
                    refusal,
                })
            }
        }
    }

    /// Re-reads the certificate files and takes the new allow-list; logs
    /// what changed. A file that does not load is logged and the
    /// certificate in use stays.
    pub fn reload(&self, new: &TlsSettings) {
        let current = self
            .server
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match (&new.cert_key, current) {
            (Some((cert, key)), Some(server)) => match server.reload(Some((cert, key))) {
                Ok(()) => tracing::info!(
                    cert = %cert.display(),
                    "TLS certificate reloaded from {}",
                    cert.display()
                ),
                Err(e) => {
                    tracing::error!("TLS certificate not reloaded; the one in use stays: {e}")
                }
            },
            (Some((cert, key)), None) => match ServerTls::load(cert, key) {
                Ok(server) => {
                    *self.server.write().unwrap_or_else(|p| p.into_inner()) =
                        Some(Arc::new(server));
                    tracing::info!(cert = %cert.display(), "TLS certificate loaded from {}", cert.display());
                }
                Err(e) => tracing::error!("TLS certificate not loaded: {e}"),
            },
            (None, Some(_)) => {
                tracing::warn!("tls_cert: removing the certificate needs a restart; not applied")
            }
            (None, None) => {}
        }
        let mut settings = self.settings.write().unwrap_or_else(|p| p.into_inner());
        if settings.allow_plaintext != new.allow_plaintext {
            tracing::info!(
                "allow_plaintext: {} -> {}",
                settings.allow_list(),
                new.allow_list()
            );
        }
        *settings = new.clone();
    }
}

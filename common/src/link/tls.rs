//! TLS (rustls, ring provider) for links that leave the LAN: what a relay
//! presents ([`ServerTls`], reloadable) and what a dialer trusts
//! ([`ClientTls`]: a CA file, or the system's roots).
//!
//! The TLS stream ([`tls_stream`](super::tls_stream)) sits under the rest
//! of the link: TCP, TLS, then [`Coalesce`](super::coalesce::Coalesce) and
//! yamux, so a yamux frame goes out in one write (its header and a small
//! body as one TLS record, a large body as a record of its own).
//!
//! Without a CA file a dialer trusts the operating system's roots
//! (rustls-native-certs, read from the system store such as
//! `/etc/ssl/certs` or `SSL_CERT_FILE`): operators manage that store with
//! their usual tools (`update-ca-certificates`), and a company CA added
//! there works without rebuilding, which a compiled-in bundle
//! (webpki-roots) would not allow.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The first byte of every TLS handshake record (a ClientHello): a relay
/// peeks at it to tell TLS from plaintext on one port. A plaintext link
/// starts with a yamux header, whose first byte is the version, 0.
pub const HANDSHAKE_RECORD: u8 = 0x16;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: not a PEM certificate file: {detail}", path.display())]
    BadCertificate { path: PathBuf, detail: String },
    #[error("{}: no PEM private key in it (expected -----BEGIN PRIVATE KEY-----): {detail}", path.display())]
    NoKey { path: PathBuf, detail: String },
    #[error("{} and {} do not make a usable pair: {detail}", cert.display(), key.display())]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    #[error("{}: the certificate is not valid now (valid from {from} until {until}); issue a new one", path.display())]
    OutOfDate {
        path: PathBuf,
        from: String,
        until: String,
    },
    #[error("{}: none of its certificates can be used as a trust anchor: {detail}", path.display())]
    BadCa { path: PathBuf, detail: String },
    #[error("no usable system root certificates ({detail}); give --ca-file F")]
    NoSystemRoots { detail: String },
}

/// The crypto provider every link uses: ring, chosen in the workspace's
/// Cargo.toml. Named explicitly so a dependency that enables another
/// provider cannot make rustls's process-wide choice ambiguous.
///
/// AES-128-GCM goes first (ring lists AES-256-GCM with SHA-384 first), as
/// Go's and BoringSSL's defaults do. The handshake's transcript and key
/// schedule then hash with SHA-256, which x86's SHA extensions and ARMv8's
/// crypto extensions compute in hardware; SHA-384 has no such
/// instructions on most CPUs, and was 9% of relayd's CPU while it accepted
/// TLS links (perf, `--bench scale -- links`). One handshake, both ends in
/// memory, took 247 to 355 µs instead of 356 to 446 µs, in alternating
/// rounds (`--bench scale -- handshake`). AES-128 also takes 10 rounds
/// per block instead of 14. The server follows the client's order, so a
/// dialer that prefers another suite still gets it.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    // A stable sort: the other suites keep ring's order.
    provider
        .cipher_suites
        .sort_by_key(|s| !is_aes_128_gcm(s.suite()));
    Arc::new(provider)
}

fn is_aes_128_gcm(suite: rustls::CipherSuite) -> bool {
    use rustls::CipherSuite as S;
    matches!(
        suite,
        S::TLS13_AES_128_GCM_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    )
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in the PEM file at `path` (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The private key in the PEM file at `path` (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::NoKey {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

/// A relay's certificate and key, swapped whole on reload: links accepted
/// after a reload get the new certificate, links up keep theirs.
#[derive(Debug)]
pub struct ServerTls {
    /// A std lock, not a tokio one: nothing awaits while it is held.
    current: RwLock<Loaded>,
}

#[derive(Debug, Clone)]
struct Loaded {
    cert: PathBuf,
    key: PathBuf,
    config: Arc<ServerConfig>,
}

impl ServerTls {
    /// Loads the certificate chain (PEM, the relay's own first) and its key.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            current: RwLock::new(Self::build(cert, key)?),
        })
    }

    fn build(cert: &Path, key: &Path) -> Result<Loaded, TlsError> {
        let chain = load_certs(cert)?;
        // rustls would serve an expired certificate, and every dialer would
        // then refuse this relay: refuse it here, where the file is named.
        check_dates(cert, &chain[0])?;
        let private = load_key(key)?;
        let pair = |e: rustls::Error| TlsError::Pair {
            cert: cert.to_owned(),
            key: key.to_owned(),
            detail: e.to_string(),
        };
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(pair)?
            .with_no_client_auth()
            // Also checks that the key is the certificate's.
            .with_single_cert(chain, private)
            .map_err(pair)?;
        Ok(Loaded {
            cert: cert.to_owned(),
            key: key.to_owned(),
            config: Arc::new(config),
        })
    }

    /// Reads the files again (from `paths` when given, else the same ones).
    /// On error the certificate in use stays and the error says why.
    pub fn reload(&self, paths: Option<(&Path, &Path)>) -> Result<(), TlsError> {
        let (cert, key) = match paths {
            Some((c, k)) => (c.to_owned(), k.to_owned()),
            None => {
                let now = self.current.read().unwrap_or_else(|p| p.into_inner());
                (now.cert.clone(), now.key.clone())
            }
        };
        let fresh = Self::build(&cert, &key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// The configuration for the next link.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .config
            .clone()
    }

    /// An acceptor (tokio-rustls) for the next connection that is not a
    /// link: links use [`tls_stream`](super::tls_stream), which holds no
    /// buffer while idle.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config())
    }

    /// The files in use.
    pub fn files(&self) -> (PathBuf, PathBuf) {
        let now = self.current.read().unwrap_or_else(|p| p.into_inner());
        (now.cert.clone(), now.key.clone())
    }
}

/// Refuses a certificate outside its validity period.
fn check_dates(path: &Path, cert: &CertificateDer<'_>) -> Result<(), TlsError> {
    let bad = |detail: String| TlsError::BadCertificate {
        path: path.to_owned(),
        detail,
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| bad(e.to_string()))?;
    let validity = parsed.validity();
    if validity.is_valid() {
        return Ok(());
    }
    Err(TlsError::OutOfDate {
        path: path.to_owned(),
        from: validity.not_before.to_string(),
        until: validity.not_after.to_string(),
    })
}

/// What a dialer trusts: the CA certificates of a file, or the system's
/// roots, loaded on first use (a device that only dials its LAN gateway never
/// reads them). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    ca_file: Option<PathBuf>,
    config: Arc<OnceLock<Result<Arc<ClientConfig>, String>>>,
}

impl ClientTls {
    /// Trusts the CA certificates in `ca_file` (read now, so a bad file is
    /// an error at start), or the system's roots when `None`.
    pub fn new(ca_file: Option<&Path>) -> Result<ClientTls, TlsError> {
        let tls = ClientTls {
            ca_file: ca_file.map(Path::to_owned),
            config: Arc::new(OnceLock::new()),
        };
        if let Some(path) = ca_file {
            let config = Self::from_ca_file(path)?;
            // Fresh cell: cannot be set already.
            let _ = tls.config.set(Ok(config));
        }
        Ok(tls)
    }

    /// The CA file, if one was given.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    fn from_ca_file(path: &Path) -> Result<Arc<ClientConfig>, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in load_certs(path)? {
            roots.add(cert).map_err(|e| TlsError::BadCa {
                path: path.to_owned(),
                detail: e.to_string(),
            })?;
        }
        Ok(client_config(roots))
    }

    fn from_system() -> Result<Arc<ClientConfig>, TlsError> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let detail = match found.errors.first() {
                Some(e) => e.to_string(),
                None => "the system store is empty".to_owned(),
            };
            return Err(TlsError::NoSystemRoots { detail });
        }
        Ok(client_config(roots))
    }

    /// The configuration; the system's roots are read on the first call.
    pub fn config(&self) -> Result<Arc<ClientConfig>, String> {
        self.config
            .get_or_init(|| Self::from_system().map_err(|e| e.to_string()))
            .clone()
    }

    /// A connector (tokio-rustls) for connections that are not links.
    pub fn connector(&self) -> Result<TlsConnector, String> {
        self.config().map(TlsConnector::from)
    }
}

fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    // The ring provider supports every safe default version, so this cannot fail.
    #[allow(clippy::expect_used)]
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The name a dialer checks the relay's certificate against: the host part
/// of `HOST:PORT` (a DNS name or an IP address, `[v6]` brackets removed).
pub fn server_name(host_port: &str) -> Result<ServerName<'static>, String> {
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => host,
        _ => return Err(format!("invalid address '{host_port}': use HOST:PORT")),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_owned())
        .map_err(|_| format!("invalid address '{host_port}': '{host}' is not a host name"))
}

/// Makes a TLS handshake error read like advice: an unknown issuer means the
/// dialer's CA file (or system roots) does not hold the relay's CA.
pub fn explain(e: &std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        format!("{text}: the certificate is not signed by a CA this side trusts (check --ca-file)")
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        format!(
            "{text}: the certificate does not name the address dialed (add it with `relayd tls cert --san`)"
        )
    } else if text.contains("Expired") {
        format!("{text}: renew the certificate")
    } else {
        text
    }
}

/// Certificates for tests, made with rcgen.
#[cfg(test)]
pub(crate) mod test_pki {
    /// A CA and a leaf for `sans`, as PEM: (ca cert, leaf cert, leaf key).
    pub(crate) fn issue(sans: &[&str]) -> (String, String, String) {
        issue_with(sans, |_| {})
    }

    /// Like [`issue`], with the leaf's parameters adjusted by `adjust`.
    pub(crate) fn issue_with(
        sans: &[&str],
        adjust: impl FnOnce(&mut rcgen::CertificateParams),
    ) -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        // Each CA its own name, as `relayd tls ca` makes them.
        let serial: u64 = rand::random();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, format!("test CA {serial:x}"));
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        adjust(&mut params);
        let leaf = params.signed_by(&key, &issuer).unwrap();
        (ca_cert.pem(), leaf.pem(), key.serialize_pem())
    }
}

#[cfg(test)]
mod tests {
    use super::test_pki::issue;
    use super::*;
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path
    }

    /// Serves one TLS connection with `server`; returns what the client got back.
    async fn round_trip(server: &ServerTls, client: &ClientTls, host: &str) -> Result<(), String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = server.acceptor();
        let serving = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 1];
            tcp.peek(&mut first).await.unwrap();
            assert_eq!(first[0], HANDSHAKE_RECORD);
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let mut buf = [0u8; 4];
                tls.read_exact(&mut buf).await.unwrap();
                tls.write_all(&buf).await.unwrap();
                tls.shutdown().await.unwrap();
            }
        });
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = server_name(&format!("{host}:{port}"))?;
        let result = async {
            let mut tls = client
                .connector()?
                .connect(name, tcp)
                .await
                .map_err(|e| explain(&e))?;
            tls.write_all(b"fax!").await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            assert_eq!(&buf, b"fax!");
            Ok(())
        }
        .await;
        serving.await.unwrap();
        result
    }

    #[tokio::test]
    async fn a_client_trusting_the_ca_talks_to_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = issue(&["127.0.0.1", "relay-a.example.com"]);
        let server = ServerTls::load(
            &file(dir.path(), "a.pem", &cert),
            &file(dir.path(), "a.key", &key),
        )
        .unwrap();
        let client = ClientTls::new(Some(&file(dir.path(), "ca.pem", &ca))).unwrap();
        round_trip(&server, &client, "127.0.0.1").await.unwrap();
    }

    #[tokio::test]
    async fn another_ca_or_another_name_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let (_, cert, key) = issue(&["127.0.0.1"]);
        let (other_ca, _, _) = issue(&["127.0.0.1"]);
        let server = ServerTls::load(
            &file(dir.path(), "a.pem", &cert),
            &file(dir.path(), "a.key", &key),
        )
        .unwrap();
        let client = ClientTls::new(Some(&file(dir.path(), "other.pem", &other_ca))).unwrap();
        let err = round_trip(&server, &client, "127.0.0.1").await.unwrap_err();
        assert!(err.contains("UnknownIssuer"), "{err}");
        assert!(err.contains("check --ca-file"), "{err}");

        let (ca, cert, key) = issue(&["relay-a.example.com"]);
        server
            .reload(Some((
                &file(dir.path(), "b.pem", &cert),
                &file(dir.path(), "b.key", &key),
            )))
            .unwrap();
        let client = ClientTls::new(Some(&file(dir.path(), "ca2.pem", &ca))).unwrap();
        let err = round_trip(&server, &client, "127.0.0.1").await.unwrap_err();
        assert!(err.contains("not valid for name"), "{err}");
        assert!(err.contains("--san"), "{err}");
    }

    #[tokio::test]
    async fn a_bad_reload_keeps_the_certificate_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = issue(&["127.0.0.1"]);
        let (cert_path, key_path) = (
            file(dir.path(), "a.pem", &cert),
            file(dir.path(), "a.key", &key),
        );
        let server = ServerTls::load(&cert_path, &key_path).unwrap();
        let client = ClientTls::new(Some(&file(dir.path(), "ca.pem", &ca))).unwrap();
        // A key of another certificate: refused, naming both files.
        let (_, _, other_key) = issue(&["127.0.0.1"]);
        std::fs::write(&key_path, other_key).unwrap();
        let err = server.reload(None).unwrap_err().to_string();
        assert!(err.contains("a.pem") && err.contains("a.key"), "{err}");
        // Garbage instead of a certificate.
        std::fs::write(&key_path, &key).unwrap();
        std::fs::write(&cert_path, "not a certificate\n").unwrap();
        let err = server.reload(None).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        assert_eq!(server.files(), (cert_path, key_path));
        round_trip(&server, &client, "127.0.0.1").await.unwrap();
    }

    #[test]
    fn an_expired_certificate_is_refused_with_its_dates() {
        let dir = tempfile::tempdir().unwrap();
        let (_, cert, key) = super::test_pki::issue_with(&["127.0.0.1"], |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        });
        let err = ServerTls::load(
            &file(dir.path(), "old.pem", &cert),
            &file(dir.path(), "old.key", &key),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("old.pem: the certificate is not valid now"),
            "{err}"
        );
        assert!(err.contains("2021"), "{err}");
    }

    #[test]
    fn files_that_are_not_what_they_should_be_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = ClientTls::new(Some(&missing)).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot read {}", missing.display())),
            "{err}"
        );
        let (_, cert, _) = issue(&["127.0.0.1"]);
        let cert_path = file(dir.path(), "cert.pem", &cert);
        let err = load_key(&cert_path).unwrap_err().to_string();
        assert!(err.contains("cert.pem: no PEM private key"), "{err}");
    }

    #[test]
    fn server_names_come_from_the_host_part() {
        assert_eq!(
            server_name("relay-a.example.com:4710").unwrap(),
            ServerName::try_from("relay-a.example.com").unwrap()
        );
        assert!(matches!(
            server_name("127.0.0.1:4710").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:4710").unwrap(),
            ServerName::IpAddress(_)
        ));
        for bad in ["relay-a", ":4710", "relay a:4710", "relay:port"] {
            let err = server_name(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    /// Runs a handshake in memory; returns the suite both ends agreed on.
    fn negotiated(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> rustls::CipherSuite {
        let name = server_name("127.0.0.1:4710").unwrap();
        let mut c = rustls::ClientConnection::new(client, name).unwrap();
        let mut s = rustls::ServerConnection::new(server).unwrap();
        while c.is_handshaking() || s.is_handshaking() {
            let mut wire = Vec::new();
            c.write_tls(&mut wire).unwrap();
            s.read_tls(&mut wire.as_slice()).unwrap();
            s.process_new_packets().unwrap();
            wire.clear();
            s.write_tls(&mut wire).unwrap();
            c.read_tls(&mut wire.as_slice()).unwrap();
            c.process_new_packets().unwrap();
        }
        let suite = c.negotiated_cipher_suite().unwrap().suite();
        assert_eq!(s.negotiated_cipher_suite().unwrap().suite(), suite);
        suite
    }

    #[test]
    fn links_agree_on_aes_128_gcm_and_a_client_with_its_own_order_gets_its_choice() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = issue(&["127.0.0.1"]);
        let server = ServerTls::load(
            &file(dir.path(), "a.pem", &cert),
            &file(dir.path(), "a.key", &key),
        )
        .unwrap();
        let ca_path = file(dir.path(), "ca.pem", &ca);
        let client = ClientTls::new(Some(&ca_path)).unwrap();
        assert_eq!(
            negotiated(client.config().unwrap(), server.config()),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        // A dialer on ring's own order (AES-256 first) is not overruled.
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(load_certs(&ca_path).unwrap());
        let theirs =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        assert_eq!(
            negotiated(Arc::new(theirs), server.config()),
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
        );
    }
}

//! `relayd tls ca` and `relayd tls cert`: a private CA for a fleet and the
//! relays' certificates, made with rcgen, so the first setup needs no
//! openssl. Keys are ECDSA P-256, written mode 0600; nothing is overwritten
//! without `--force`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Create the fleet's private CA: DIR/ca.pem (what gateways, peers and
    /// devices trust: their --ca-file) and DIR/ca.key (mode 0600; keep it
    /// off the relays).
    Ca {
        /// Directory to write to (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Days the CA is valid.
        #[arg(long, value_name = "N", default_value_t = 3650)]
        days: u32,
        /// Replace an existing CA (certificates it signed stop being trusted
        /// once dialers get the new ca.pem).
        #[arg(long)]
        force: bool,
    },
    /// Issue a relay's certificate signed by the CA in DIR: DIR/NAME.pem and
    /// DIR/NAME.key (mode 0600), for relayd's --tls-cert and --tls-key.
    Cert {
        /// Directory holding ca.pem and ca.key; the files go there too.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The relay's name (names the files and the certificate).
        #[arg(long)]
        name: String,
        /// A host name or IP address that gateways and peers dial this relay
        /// at; repeat for more [at least one].
        #[arg(long = "san", value_name = "HOST", required = true)]
        sans: Vec<String>,
        /// Days the certificate is valid.
        #[arg(long, value_name = "N", default_value_t = 825)]
        days: u32,
        /// Replace existing DIR/NAME.pem and DIR/NAME.key.
        #[arg(long)]
        force: bool,
    },
}

/// Runs the command; returns a line per file written.
pub fn run(cmd: TlsCommand) -> anyhow::Result<Vec<String>> {
    match cmd {
        TlsCommand::Ca { dir, days, force } => make_ca(&dir, days, force),
        TlsCommand::Cert {
            dir,
            name,
            sans,
            days,
            force,
        } => make_cert(&dir, &name, &sans, days, force),
    }
}

fn make_ca(dir: &Path, days: u32, force: bool) -> anyhow::Result<Vec<String>> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    refuse_overwrite(&[&cert_path, &key_path], force)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    // A name of its own, so two fleets' CAs are never mistaken for each other.
    let id: u32 = rand::random();
    params.distinguished_name = dn(&format!("faxmesh fleet CA {id:08x}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, days)?;
    let cert = params.self_signed(&key)?;
    create_dir(dir)?;
    write_file(&key_path, &key.serialize_pem(), 0o600, force)?;
    write_file(&cert_path, &cert.pem(), 0o644, force)?;
    Ok(vec![
        format!(
            "{}: the CA certificate; give it to gateways, peer relays and devices (--ca-file)",
            cert_path.display()
        ),
        format!(
            "{}: the CA key (mode 0600); keep it off the relays",
            key_path.display()
        ),
    ])
}

fn make_cert(
    dir: &Path,
    name: &str,
    sans: &[String],
    days: u32,
    force: bool,
) -> anyhow::Result<Vec<String>> {
    crate::config::validate_name(name).map_err(anyhow::Error::msg)?;
    for san in sans {
        check_san(san)?;
    }
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    refuse_overwrite(&[&cert_path, &key_path], force)?;
    let issuer = load_ca(dir)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())
        .with_context(|| format!("invalid --san among {sans:?}"))?;
    params.distinguished_name = dn(name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days)?;
    let cert = params.signed_by(&key, &issuer)?;
    write_file(&key_path, &key.serialize_pem(), 0o600, force)?;
    write_file(&cert_path, &cert.pem(), 0o644, force)?;
    Ok(vec![
        format!(
            "{}: relay {name}'s certificate for {} (--tls-cert)",
            cert_path.display(),
            sans.join(", ")
        ),
        format!("{}: its key, mode 0600 (--tls-key)", key_path.display()),
    ])
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "faxmesh");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// From an hour ago (clocks differ a little) to `days` from now.
fn validity(params: &mut CertificateParams, days: u32) -> anyhow::Result<()> {
    if days == 0 {
        bail!("invalid --days 0: use at least 1");
    }
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
    Ok(())
}

fn load_ca(dir: &Path) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let hint = || format!("create the CA first: relayd tls ca --dir {}", dir.display());
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .with_context(|| format!("cannot read {} ({})", p.display(), hint()))
    };
    let (cert_pem, key_pem) = (read(&cert_path)?, read(&key_path)?);
    let key = KeyPair::from_pem(&key_pem)
        .with_context(|| format!("{}: not a PEM private key", key_path.display()))?;
    Issuer::from_ca_cert_pem(&cert_pem, key)
        .with_context(|| format!("{}: not a PEM CA certificate", cert_path.display()))
}

/// A SAN is an IP address or a DNS name (a leading `*.` allowed).
fn check_san(san: &str) -> anyhow::Result<()> {
    if san.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let name = san.strip_prefix("*.").unwrap_or(san);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        bail!("invalid --san '{san}': use a host name (relay-a.example.com) or an IP address")
    }
}

fn refuse_overwrite(paths: &[&Path], force: bool) -> anyhow::Result<()> {
    if force {
        return Ok(());
    }
    if let Some(p) = paths.iter().find(|p| p.exists()) {
        bail!(
            "{} already exists; not overwriting it (give --force to replace it)",
            p.display()
        );
    }
    Ok(())
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes `text` with `mode`; without `force` the file must not exist
/// (checked again here, race-free).
fn write_file(path: &Path, text: &str, mode: u32, force: bool) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(mode);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // An existing file keeps its mode on open: set it.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::link::tls::{ClientTls, ServerTls};

    fn cert(dir: &Path, name: &str, sans: &[&str], force: bool) -> anyhow::Result<Vec<String>> {
        run(TlsCommand::Cert {
            dir: dir.to_owned(),
            name: name.into(),
            sans: sans.iter().map(|s| s.to_string()).collect(),
            days: 30,
            force,
        })
    }

    #[test]
    fn ca_and_cert_make_a_pair_rustls_accepts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        run(TlsCommand::Ca {
            dir: dir.clone(),
            days: 10,
            force: false,
        })
        .unwrap();
        cert(
            &dir,
            "relay-a",
            &["127.0.0.1", "relay-a.example.com"],
            false,
        )
        .unwrap();
        ServerTls::load(&dir.join("relay-a.pem"), &dir.join("relay-a.key")).unwrap();
        ClientTls::new(Some(&dir.join("ca.pem"))).unwrap();
        for key in ["ca.key", "relay-a.key"] {
            let mode = std::fs::metadata(dir.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }

    #[test]
    fn bad_input_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let err = cert(tmp.path(), "relay-a", &["127.0.0.1"], false).unwrap_err();
        assert!(
            format!("{err:#}").contains("relayd tls ca --dir"),
            "{err:#}"
        );
        let err = cert(tmp.path(), "relay-a", &["not a host"], false).unwrap_err();
        assert!(
            err.to_string().contains("invalid --san 'not a host'"),
            "{err}"
        );
        let err = cert(tmp.path(), "relay a", &["127.0.0.1"], false).unwrap_err();
        assert!(err.to_string().contains("invalid relay name"), "{err}");
    }
}

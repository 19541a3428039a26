//! A test fleet's private CA and relay certificates, made the way an
//! operator makes them (`relayd tls ca`, `relayd tls cert`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::bins::bin;

/// A CA in `dir` (ca.pem, ca.key) and the certificates it issued there.
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// `relayd tls ca --dir DIR`.
    #[track_caller]
    pub fn create(dir: &Path) -> Pki {
        let out = tls_command(&["ca", "--dir"], dir, &[]);
        assert_success("relayd tls ca", &out);
        Pki {
            dir: dir.to_owned(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate that dialers trust (`--ca-file`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `relayd tls cert` for relay `name`, valid for 127.0.0.1; returns
    /// the certificate and key files.
    #[track_caller]
    pub fn cert(&self, name: &str) -> (PathBuf, PathBuf) {
        let out = tls_command(
            &["cert", "--dir"],
            &self.dir,
            &["--name", name, "--san", "127.0.0.1", "--san", "localhost"],
        );
        assert_success("relayd tls cert", &out);
        (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        )
    }

    /// relayd's flags to serve TLS as `name` and trust this CA for peers.
    #[track_caller]
    pub fn relay_flags(&self, name: &str) -> Vec<String> {
        let (cert, key) = self.cert(name);
        [
            "--tls-cert".to_owned(),
            cert.display().to_string(),
            "--tls-key".to_owned(),
            key.display().to_string(),
            "--ca-file".to_owned(),
            self.ca_file().display().to_string(),
        ]
        .to_vec()
    }

    /// The flags a gateway or device needs to trust this CA.
    pub fn trust_flags(&self) -> Vec<String> {
        vec!["--ca-file".to_owned(), self.ca_file().display().to_string()]
    }
}

/// Runs `relayd tls ARGS... DIR EXTRA...`.
pub fn tls_command(args: &[&str], dir: &Path, extra: &[&str]) -> Output {
    Command::new(bin("relayd"))
        .arg("tls")
        .args(args)
        .arg(dir)
        .args(extra)
        .output()
        .expect("relayd tls runs")
}

#[track_caller]
fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

//! The relay's TLS settings: its certificate and key, the CA it trusts when
//! dialing peers, and the networks allowed to link in plaintext. [`merge`]
//! checks them; the secure choice is the default: without a certificate
//! the relay starts only if some network is allowed plaintext.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

#[derive(Clone, Debug, PartialEq)]
pub struct TlsSettings {
    /// Certificate chain and key (PEM), reloaded on SIGHUP.
    pub cert_key: Option<(PathBuf, PathBuf)>,
    /// CA certificates peers are checked against [default: the system's roots].
    pub ca_file: Option<PathBuf>,
    /// Networks whose plaintext links are accepted; all others must use TLS.
    pub allow_plaintext: Vec<IpNet>,
}

impl TlsSettings {
    /// Whether a plaintext link from `ip` is allowed.
    pub fn plaintext_allowed(&self, ip: IpAddr) -> bool {
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        self.allow_plaintext.iter().any(|net| net.contains(&ip))
    }

    /// The allow-list as the operator wrote it, for logs.
    pub fn allow_list(&self) -> String {
        if self.allow_plaintext.is_empty() {
            return "(none)".to_owned();
        }
        let nets: Vec<String> = self
            .allow_plaintext
            .iter()
            .map(ToString::to_string)
            .collect();
        nets.join(", ")
    }
}

/// Checks the TLS settings; errors name the setting and how to fix it.
pub fn merge(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    allow_plaintext: Vec<String>,
) -> Result<TlsSettings, String> {
    let cert_key = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(c), None) => {
            return Err(format!(
                "tls_cert {} needs its key: give --tls-key F (or RELAYD_TLS_KEY, or `tls_key = \"...\"`)",
                c.display()
            ));
        }
        (None, Some(k)) => {
            return Err(format!(
                "tls_key {} needs its certificate: give --tls-cert F (or RELAYD_TLS_CERT, or `tls_cert = \"...\"`)",
                k.display()
            ));
        }
    };
    let allow_plaintext = allow_plaintext
        .iter()
        .map(|s| parse_net(s))
        .collect::<Result<Vec<_>, _>>()?;
    if cert_key.is_none() && allow_plaintext.is_empty() {
        return Err("no TLS certificate: give --tls-cert F --tls-key F (RELAYD_TLS_CERT, RELAYD_TLS_KEY, or `tls_cert`/`tls_key` in the config file; `relayd tls ca` and `relayd tls cert` make them), or accept plaintext from a trusted network with --allow-plaintext CIDR (e.g. 127.0.0.0/8)".into());
    }
    Ok(TlsSettings {
        cert_key,
        ca_file,
        allow_plaintext,
    })
}

/// `10.0.0.0/8`, `::1/128`, or a single address (`192.168.1.10`).
fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "invalid allow_plaintext '{s}': use a network as CIDR (127.0.0.0/8, fd00::/8) or an IP address"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_only_from_the_listed_networks() {
        let s = merge(
            None,
            None,
            None,
            vec![
                "127.0.0.0/8".into(),
                "192.168.1.10".into(),
                "fd00::/8".into(),
            ],
        )
        .unwrap();
        for ok in [
            "127.0.0.1",
            "127.9.9.9",
            "192.168.1.10",
            "::ffff:127.0.0.1",
            "fd00::5",
        ] {
            assert!(s.plaintext_allowed(ok.parse().unwrap()), "{ok}");
        }
        for no in ["10.0.0.1", "192.168.1.11", "::1", "203.0.113.5"] {
            assert!(!s.plaintext_allowed(no.parse().unwrap()), "{no}");
        }
        assert_eq!(s.allow_list(), "127.0.0.0/8, 192.168.1.10/32, fd00::/8");
    }

    #[test]
    fn the_secure_choice_is_the_default() {
        let err = merge(None, None, None, vec![]).unwrap_err();
        assert!(
            err.contains("--tls-cert") && err.contains("--allow-plaintext"),
            "{err}"
        );
        let s = merge(Some("c.pem".into()), Some("c.key".into()), None, vec![]).unwrap();
        assert!(s.allow_plaintext.is_empty());
        assert!(!s.plaintext_allowed("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn half_a_pair_and_bad_networks_are_refused() {
        let err = merge(Some("c.pem".into()), None, None, vec![]).unwrap_err();
        assert!(err.contains("c.pem") && err.contains("--tls-key"), "{err}");
        let err = merge(None, Some("c.key".into()), None, vec![]).unwrap_err();
        assert!(err.contains("c.key") && err.contains("--tls-cert"), "{err}");
        let err = merge(None, None, None, vec!["127.0.0.0/33".into()]).unwrap_err();
        assert!(err.contains("'127.0.0.0/33'"), "{err}");
    }
}

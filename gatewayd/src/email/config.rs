//! The e-mail side's settings: the SMTP listener and who may send through
//! it (`[[mail_sender]]`), the numbers the gateway answers itself and mails
//! on (`[[mail_device]]`), and the site's mail server. `check` turns the
//! config file's entries into [`MailSettings`], or an error that names the
//! bad entry and value; nothing starts with a half-valid mail config.

use std::net::SocketAddr;
use std::path::PathBuf;

use common::number::Number;
use ipnet::IpNet;
use serde::Deserialize;

/// Biggest message accepted by default: a 20-page scan fits easily.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 25 << 20;
/// Most recipients of one message by default.
pub const DEFAULT_MAX_RECIPIENTS: usize = 20;

/// Most recipients a mail may have: a queued fax's (jobs_stream::MAX_RECIPIENTS).
pub const MAX_RECIPIENTS: usize = 100;

/// A `[[mail_sender]]` entry: mail from this address (or AUTH user) is
/// faxed as `number`, logged in with the number's secret.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSenderEntry {
    /// The envelope sender, `scanner@office.example`, or `@office.example`
    /// for every address of a domain. Only from `smtp_allow_networks`.
    pub address: Option<String>,
    /// An SMTP AUTH user of `smtp_users_file` (any client network).
    pub user: Option<String>,
    /// The fax number the mail is sent as.
    pub number: String,
    /// The number's device secret (`relayd credential`).
    pub secret_file: PathBuf,
    /// Send a cover page first, with the mail's Subject [default: false].
    pub cover: Option<bool>,
    /// Fax the mail's text as a page after the attachments [default: true].
    pub body_page: Option<bool>,
}

/// What a mail device attaches to each fax it mails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attach {
    /// TIFF-F profile S (T.37): MH, 1728 wide, for MFPs that print mail.
    Tiff,
    /// A PDF, for people.
    #[default]
    Pdf,
    /// Both (the pages are profile S).
    Both,
}

impl Attach {
    pub fn tiff(self) -> bool {
        matches!(self, Attach::Tiff | Attach::Both)
    }
    pub fn pdf(self) -> bool {
        matches!(self, Attach::Pdf | Attach::Both)
    }
}

/// A `[[mail_device]]` entry: a number the gateway logs in and answers
/// itself, mailing each fax to `mail_to`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailDeviceEntry {
    pub number: String,
    pub secret_file: PathBuf,
    pub mail_to: String,
    /// "tiff", "pdf" or "both" [default: pdf].
    pub attach: Option<Attach>,
}

/// One allowed sender, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct MailSender {
    pub address: Option<String>,
    pub user: Option<String>,
    pub number: Number,
    pub secret_file: PathBuf,
    pub cover: bool,
    pub body_page: bool,
}

/// One mail device, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct MailDevice {
    pub number: Number,
    pub secret_file: PathBuf,
    pub mail_to: String,
    pub attach: Attach,
}

/// The SMTP listener's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SmtpSettings {
    pub listen: SocketAddr,
    /// Mail to NUMBER@domain is faxed to NUMBER (lowercase).
    pub domain: String,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub users_file: Option<PathBuf>,
    pub allow_networks: Vec<IpNet>,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub senders: Vec<MailSender>,
}

/// Everything about mail, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct MailSettings {
    pub smtp: Option<SmtpSettings>,
    pub devices: Vec<MailDevice>,
    /// The site's mail server, HOST:PORT.
    pub smarthost: Option<String>,
    pub smarthost_ca_file: Option<PathBuf>,
    /// From: of the mails the gateway writes.
    pub mail_from: String,
}

/// The raw mail keys of one settings layer.
#[derive(Debug, Default)]
pub struct MailKeys {
    pub smtp_listen: Option<SocketAddr>,
    pub mail_domain: Option<String>,
    pub smtp_cert_file: Option<PathBuf>,
    pub smtp_key_file: Option<PathBuf>,
    pub smtp_users_file: Option<PathBuf>,
    pub smtp_allow_networks: Option<Vec<IpNet>>,
    pub smtp_max_message_bytes: Option<usize>,
    pub smtp_max_recipients: Option<usize>,
    pub smarthost: Option<String>,
    pub smarthost_ca_file: Option<PathBuf>,
    pub mail_from: Option<String>,
    pub mail_sender: Option<Vec<MailSenderEntry>>,
    pub mail_device: Option<Vec<MailDeviceEntry>>,
    pub has_state_dir: bool,
}

/// A plausible mail address: one @, something on both sides, no spaces or
/// angle brackets.
pub fn plausible_address(a: &str) -> bool {
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c);
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !a.contains(bad)
        }
        None => false,
    }
}

/// Checks the mail keys; `None` when the gateway does no mail at all.
pub fn check(k: MailKeys) -> Result<Option<MailSettings>, String> {
    let senders_raw = k.mail_sender.unwrap_or_default();
    let devices_raw = k.mail_device.unwrap_or_default();
    let smtp_keys = [
        ("mail_domain", k.mail_domain.is_some()),
        ("smtp_cert_file", k.smtp_cert_file.is_some()),
        ("smtp_key_file", k.smtp_key_file.is_some()),
        ("smtp_users_file", k.smtp_users_file.is_some()),
        ("smtp_allow_networks", k.smtp_allow_networks.is_some()),
        ("smtp_max_message_bytes", k.smtp_max_message_bytes.is_some()),
        ("smtp_max_recipients", k.smtp_max_recipients.is_some()),
        ("mail_sender", !senders_raw.is_empty()),
    ];
    if k.smtp_listen.is_none() {
        if let Some((key, _)) = smtp_keys.iter().find(|(_, set)| *set) {
            return Err(format!(
                "{key} is about the SMTP listener: it needs smtp_listen (--smtp-listen ADDR)"
            ));
        }
        if devices_raw.is_empty() {
            for (key, set) in [
                ("smarthost", k.smarthost.is_some()),
                ("smarthost_ca_file", k.smarthost_ca_file.is_some()),
                ("mail_from", k.mail_from.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "{key} is about mail: it needs smtp_listen or a [[mail_device]]"
                    ));
                }
            }
            return Ok(None);
        }
    }
    if !k.has_state_dir {
        return Err(
            "mail needs state_dir: mailed faxes are queued, and received ones spooled, there"
                .into(),
        );
    }
    if let Some(host) = &k.smarthost {
        common::link::transport::check_addr(host)
            .map_err(|e| format!("invalid smarthost {host:?}: {e} (write HOST:PORT)"))?;
    }
    let domain = k
        .mail_domain
        .as_ref()
        .map(|d| d.trim().to_ascii_lowercase());
    if let Some(d) = &domain
        && (d.is_empty() || d.contains(['@', ' ', '<', '>']))
    {
        return Err(format!(
            "invalid mail_domain {d:?}: write a domain, e.g. fax.example.com"
        ));
    }
    let mail_from = match (&k.mail_from, &domain) {
        (Some(a), _) => a.clone(),
        (None, Some(d)) => format!("fax-gateway@{d}"),
        (None, None) => "fax-gateway@localhost".to_owned(),
    };
    if !plausible_address(&mail_from) {
        return Err(format!(
            "invalid mail_from {mail_from:?}: write an address, e.g. fax@office.example"
        ));
    }
    let mut devices = Vec::new();
    for (i, d) in devices_raw.into_iter().enumerate() {
        let at = format!("[[mail_device]] #{} (number {:?})", i + 1, d.number);
        let number: Number = d.number.parse().map_err(|e| format!("{at}: {e}"))?;
        if !plausible_address(&d.mail_to) {
            return Err(format!(
                "{at}: invalid mail_to {:?}: write an address",
                d.mail_to
            ));
        }
        if devices.iter().any(|x: &MailDevice| x.number == number) {
            return Err(format!("{at}: number {number} is listed twice"));
        }
        devices.push(MailDevice {
            number,
            secret_file: d.secret_file,
            mail_to: d.mail_to,
            attach: d.attach.unwrap_or_default(),
        });
    }
    if !devices.is_empty() && k.smarthost.is_none() {
        return Err(
            "a [[mail_device]] mails its faxes: it needs smarthost (--smarthost HOST:PORT)".into(),
        );
    }
    let smtp = match k.smtp_listen {
        None => None,
        Some(listen) => {
            let domain = domain.ok_or(
                "smtp_listen needs mail_domain (--mail-domain DOMAIN): mail to NUMBER@DOMAIN is faxed to NUMBER",
            )?;
            let tls = match (k.smtp_cert_file, k.smtp_key_file) {
                (Some(c), Some(key)) => Some((c, key)),
                (None, None) => None,
                _ => return Err("smtp_cert_file and smtp_key_file go together (STARTTLS)".into()),
            };
            if k.smtp_users_file.is_some() && tls.is_none() {
                return Err("smtp_users_file needs STARTTLS (smtp_cert_file and smtp_key_file): passwords never cross the LAN in clear".into());
            }
            let mut senders = Vec::new();
            for (i, s) in senders_raw.into_iter().enumerate() {
                let at = format!("[[mail_sender]] #{} (number {:?})", i + 1, s.number);
                let number: Number = s.number.parse().map_err(|e| format!("{at}: {e}"))?;
                match (&s.address, &s.user) {
                    (None, None) => return Err(format!("{at}: give address or user")),
                    (Some(a), _)
                        if !(plausible_address(a)
                            || (a.starts_with('@') && a.len() > 1 && !a[1..].contains('@'))) =>
                    {
                        return Err(format!(
                            "{at}: invalid address {a:?}: write user@domain or @domain"
                        ));
                    }
                    (_, Some(_)) if k.smtp_users_file.is_none() => {
                        return Err(format!("{at}: a user needs smtp_users_file"));
                    }
                    (Some(_), _)
                        if k.smtp_allow_networks.as_ref().is_none_or(|n| n.is_empty())
                            && s.user.is_none() =>
                    {
                        return Err(format!(
                            "{at}: an address alone is accepted only from smtp_allow_networks, which is empty"
                        ));
                    }
                    _ => {}
                }
                senders.push(MailSender {
                    address: s.address.map(|a| a.to_ascii_lowercase()),
                    user: s.user,
                    number,
                    secret_file: s.secret_file,
                    cover: s.cover.unwrap_or(false),
                    body_page: s.body_page.unwrap_or(true),
                });
            }
            if senders.is_empty() {
                return Err("smtp_listen needs at least one [[mail_sender]]: who may fax by mail, and as which number".into());
            }
            let max_message_bytes = k
                .smtp_max_message_bytes
                .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
            if !(1024..=(1 << 30)).contains(&max_message_bytes) {
                return Err(format!(
                    "invalid smtp_max_message_bytes {max_message_bytes}: use 1024 to 1073741824"
                ));
            }
            let max_recipients = k.smtp_max_recipients.unwrap_or(DEFAULT_MAX_RECIPIENTS);
            if !(1..=MAX_RECIPIENTS).contains(&max_recipients) {
                return Err(format!(
                    "invalid smtp_max_recipients {max_recipients}: use 1 to {MAX_RECIPIENTS}"
                ));
            }
            Some(SmtpSettings {
                listen,
                domain,
                tls,
                users_file: k.smtp_users_file,
                allow_networks: k.smtp_allow_networks.unwrap_or_default(),
                max_message_bytes,
                max_recipients,
                senders,
            })
        }
    };
    Ok(Some(MailSettings {
        smtp,
        devices,
        smarthost: k.smarthost,
        smarthost_ca_file: k.smarthost_ca_file,
        mail_from,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(address: Option<&str>, user: Option<&str>, number: &str) -> MailSenderEntry {
        MailSenderEntry {
            address: address.map(str::to_owned),
            user: user.map(str::to_owned),
            number: number.into(),
            secret_file: "/etc/faxmesh/1001.secret".into(),
            ..MailSenderEntry::default()
        }
    }

    fn smtp_keys() -> MailKeys {
        MailKeys {
            smtp_listen: Some("0.0.0.0:25".parse().unwrap()),
            mail_domain: Some("Fax.Example".into()),
            smtp_allow_networks: Some(vec!["192.168.1.0/24".parse().unwrap()]),
            mail_sender: Some(vec![sender(Some("Scanner@Office.example"), None, "1001")]),
            has_state_dir: true,
            ..MailKeys::default()
        }
    }

    #[test]
    fn no_mail_keys_no_mail() {
        let none = MailKeys {
            has_state_dir: true,
            ..MailKeys::default()
        };
        assert_eq!(check(none).unwrap(), None);
    }

    #[test]
    fn defaults_and_lowercase() {
        let m = check(smtp_keys()).unwrap().unwrap();
        let smtp = m.smtp.unwrap();
        assert_eq!(smtp.domain, "fax.example");
        assert_eq!(smtp.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
        assert_eq!(smtp.max_recipients, DEFAULT_MAX_RECIPIENTS);
        assert_eq!(
            smtp.senders[0].address.as_deref(),
            Some("scanner@office.example")
        );
        assert!(smtp.senders[0].body_page && !smtp.senders[0].cover);
        assert_eq!(m.mail_from, "fax-gateway@fax.example");
    }

    #[test]
    fn every_bad_setting_is_named() {
        let cases: Vec<(MailKeys, &str)> = vec![
            (
                MailKeys {
                    mail_domain: None,
                    ..smtp_keys()
                },
                "needs mail_domain",
            ),
            (
                MailKeys {
                    smtp_listen: None,
                    ..smtp_keys()
                },
                "mail_domain is about the SMTP listener",
            ),
            (
                MailKeys {
                    has_state_dir: false,
                    ..smtp_keys()
                },
                "mail needs state_dir",
            ),
            (
                MailKeys {
                    mail_sender: None,
                    ..smtp_keys()
                },
                "at least one [[mail_sender]]",
            ),
            (
                MailKeys {
                    mail_sender: Some(vec![sender(Some("x@y"), None, "12ab")]),
                    ..smtp_keys()
                },
                "[[mail_sender]] #1 (number \"12ab\")",
            ),
            (
                MailKeys {
                    mail_sender: Some(vec![sender(None, None, "1001")]),
                    ..smtp_keys()
                },
                "give address or user",
            ),
            (
                MailKeys {
                    mail_sender: Some(vec![sender(Some("nobody"), None, "1001")]),
                    ..smtp_keys()
                },
                "invalid address \"nobody\"",
            ),
            (
                MailKeys {
                    mail_sender: Some(vec![sender(None, Some("alice"), "1001")]),
                    ..smtp_keys()
                },
                "a user needs smtp_users_file",
            ),
            (
                MailKeys {
                    smtp_users_file: Some("/u".into()),
                    ..smtp_keys()
                },
                "needs STARTTLS",
            ),
            (
                MailKeys {
                    smtp_cert_file: Some("/c".into()),
                    ..smtp_keys()
                },
                "go together",
            ),
            (
                MailKeys {
                    smtp_allow_networks: None,
                    ..smtp_keys()
                },
                "smtp_allow_networks, which is empty",
            ),
            (
                MailKeys {
                    smtp_max_recipients: Some(0),
                    ..smtp_keys()
                },
                "invalid smtp_max_recipients 0",
            ),
            (
                MailKeys {
                    smtp_max_message_bytes: Some(10),
                    ..smtp_keys()
                },
                "invalid smtp_max_message_bytes 10",
            ),
            (
                MailKeys {
                    smarthost: Some("mail.example".into()),
                    ..smtp_keys()
                },
                "invalid smarthost \"mail.example\"",
            ),
            (
                MailKeys {
                    mail_from: Some("fax".into()),
                    ..smtp_keys()
                },
                "invalid mail_from \"fax\"",
            ),
            (
                MailKeys {
                    mail_device: Some(vec![MailDeviceEntry {
                        number: "1010".into(),
                        mail_to: "front@office.example".into(),
                        ..MailDeviceEntry::default()
                    }]),
                    ..smtp_keys()
                },
                "it needs smarthost",
            ),
            (
                MailKeys {
                    smarthost: Some("mail.example:25".into()),
                    mail_device: Some(vec![MailDeviceEntry {
                        number: "1010".into(),
                        mail_to: "front desk".into(),
                        ..MailDeviceEntry::default()
                    }]),
                    ..smtp_keys()
                },
                "invalid mail_to \"front desk\"",
            ),
        ];
        for (keys, want) in cases {
            let err = check(keys).unwrap_err();
            assert!(err.contains(want), "{err:?} should say {want:?}");
        }
    }
}

//! Who may fax by mail, and to what: the [`mail::smtp::Policy`] the SMTP
//! sessions ask, without I/O. A sender is one of:
//!
//! - an SMTP AUTH user (after STARTTLS) named by a `[[mail_sender]]`'s `user`;
//! - from a client network of `smtp_allow_networks`, an envelope sender
//!   named by a `[[mail_sender]]`'s `address` (or its `@domain`).
//!
//! Recipients are `NUMBER@mail_domain`; the gateway relays no other mail.

use std::net::IpAddr;

use common::number::Number;
use mail::smtp::{Ctx, Policy, Reply};

use super::config::{MailSender, SmtpSettings};

/// The `[[mail_sender]]` a mail comes from: by AUTH user when there is
/// one, else by address from an allowed network.
pub fn sender_for<'a>(
    smtp: &'a SmtpSettings,
    ip: IpAddr,
    user: Option<&str>,
    address: &str,
) -> Option<&'a MailSender> {
    if let Some(user) = user {
        return smtp
            .senders
            .iter()
            .find(|s| s.user.as_deref() == Some(user));
    }
    if !smtp.allow_networks.iter().any(|n| n.contains(&ip)) {
        return None;
    }
    let address = address.to_ascii_lowercase();
    let domain = address.rsplit_once('@').map(|(_, d)| format!("@{d}"));
    // An exact address wins over its domain.
    smtp.senders
        .iter()
        .find(|s| s.address.as_deref() == Some(address.as_str()))
        .or_else(|| {
            smtp.senders
                .iter()
                .find(|s| s.address.is_some() && s.address == domain)
        })
}

/// The fax number a recipient address names, or the refusal.
pub fn number_for(smtp: &SmtpSettings, address: &str) -> Result<Number, Reply> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(Reply::new(
            550,
            "5.1.3",
            format!("<{address}> is not NUMBER@{}", smtp.domain),
        ));
    };
    if !domain.eq_ignore_ascii_case(&smtp.domain) {
        return Err(Reply::new(
            550,
            "5.7.1",
            format!(
                "this gateway faxes only to NUMBER@{} and relays no other mail (not to {domain})",
                smtp.domain
            ),
        ));
    }
    // People write numbers as they print them: 030-1234 567, (030) 1234.
    let digits: String = local
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | ' ' | '(' | ')'))
        .collect();
    digits.parse().map_err(|e| {
        Reply::new(
            550,
            "5.1.1",
            format!("<{address}>: {local:?} is not a fax number: {e}"),
        )
    })
}

/// The policy of one SMTP connection from `ip`.
#[derive(Debug)]
pub struct MailPolicy<'a> {
    pub smtp: &'a SmtpSettings,
    pub ip: IpAddr,
}

impl Policy for MailPolicy<'_> {
    fn sender(&mut self, ctx: &Ctx<'_>, reverse_path: &str) -> Result<(), Reply> {
        if sender_for(self.smtp, self.ip, ctx.user, reverse_path).is_some() {
            if reverse_path.is_empty() && ctx.user.is_none() {
                return Err(Reply::new(
                    550,
                    "5.7.1",
                    "a mail with a null sender cannot be faxed",
                ));
            }
            return Ok(());
        }
        if let Some(user) = ctx.user {
            return Err(Reply::new(
                550,
                "5.7.1",
                format!("user {user} may not fax: no [[mail_sender]] names it"),
            ));
        }
        let allowed_net = self
            .smtp
            .allow_networks
            .iter()
            .any(|n| n.contains(&self.ip));
        if allowed_net {
            return Err(Reply::new(
                550,
                "5.7.1",
                format!("<{reverse_path}> may not fax through this gateway"),
            ));
        }
        if self.smtp.users_file.is_some() {
            let how = if ctx.tls {
                "AUTH"
            } else {
                "STARTTLS, then AUTH"
            };
            return Err(Reply::new(
                530,
                "5.7.0",
                format!("authentication required: {how}"),
            ));
        }
        Err(Reply::new(
            550,
            "5.7.1",
            format!("client {} may not send mail here", self.ip),
        ))
    }

    fn recipient(&mut self, _ctx: &Ctx<'_>, forward_path: &str) -> Result<(), Reply> {
        number_for(self.smtp, forward_path).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::config::MailSender;

    fn sender(address: Option<&str>, user: Option<&str>, number: &str) -> MailSender {
        MailSender {
            address: address.map(str::to_owned),
            user: user.map(str::to_owned),
            number: number.parse().unwrap(),
            secret_file: "/dev/null".into(),
            cover: false,
            body_page: true,
        }
    }

    fn smtp(users: bool) -> SmtpSettings {
        SmtpSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            domain: "fax.example".into(),
            tls: None,
            users_file: users.then(|| "/dev/null".into()),
            allow_networks: vec!["192.168.1.0/24".parse().unwrap()],
            max_message_bytes: 1 << 20,
            max_recipients: 5,
            senders: vec![
                sender(Some("scanner@office.example"), None, "1001"),
                sender(Some("@office.example"), None, "1009"),
                sender(None, Some("alice"), "1002"),
            ],
        }
    }

    fn ctx(user: Option<&str>) -> Ctx<'_> {
        Ctx {
            helo: "mfp",
            tls: user.is_some(),
            user,
            sender: None,
        }
    }

    #[test]
    fn senders_by_address_domain_and_user() {
        let s = smtp(true);
        let lan: IpAddr = "192.168.1.7".parse().unwrap();
        let wan: IpAddr = "203.0.113.9".parse().unwrap();
        let n = |ip, user, a| sender_for(&s, ip, user, a).map(|m| m.number.to_string());
        assert_eq!(
            n(lan, None, "Scanner@Office.example").as_deref(),
            Some("1001")
        );
        assert_eq!(n(lan, None, "bob@office.example").as_deref(), Some("1009"));
        assert_eq!(n(lan, None, "bob@elsewhere.example"), None);
        assert_eq!(
            n(wan, None, "scanner@office.example"),
            None,
            "address outside the networks"
        );
        assert_eq!(n(wan, Some("alice"), "anything@x").as_deref(), Some("1002"));
        assert_eq!(n(lan, Some("mallory"), "scanner@office.example"), None);
    }

    #[test]
    fn refusals_say_why() {
        let s = smtp(true);
        let mut wan = MailPolicy {
            smtp: &s,
            ip: "203.0.113.9".parse().unwrap(),
        };
        let r = wan
            .sender(&ctx(None), "scanner@office.example")
            .unwrap_err();
        assert_eq!((r.code(), r.enhanced()), (530, Some("5.7.0")));
        assert!(r.text().contains("STARTTLS, then AUTH"), "{}", r.text());
        let r = wan
            .sender(&ctx(Some("mallory")), "m@x.example")
            .unwrap_err();
        assert_eq!(r.code(), 550);
        assert!(r.text().contains("mallory"), "{}", r.text());
        let s2 = smtp(false);
        let mut wan2 = MailPolicy {
            smtp: &s2,
            ip: "203.0.113.9".parse().unwrap(),
        };
        let r = wan2
            .sender(&ctx(None), "scanner@office.example")
            .unwrap_err();
        assert_eq!((r.code(), r.enhanced()), (550, Some("5.7.1")));
        let mut lan = MailPolicy {
            smtp: &s,
            ip: "192.168.1.7".parse().unwrap(),
        };
        assert!(lan.sender(&ctx(None), "scanner@office.example").is_ok());
        let r = lan.sender(&ctx(None), "eve@evil.example").unwrap_err();
        assert!(r.text().contains("eve@evil.example"), "{}", r.text());
    }

    #[test]
    fn recipients_are_numbers_at_the_fax_domain() {
        let s = smtp(false);
        assert_eq!(
            number_for(&s, "1002@FAX.example").unwrap().to_string(),
            "1002"
        );
        let n = |a| number_for(&s, a).unwrap().to_string();
        assert_eq!(n("+49-30-1234.567@fax.example"), "+49301234567");
        assert_eq!(n("(030) 1234@fax.example"), "0301234");
        let r = number_for(&s, "1002@example.com").unwrap_err();
        assert_eq!((r.code(), r.enhanced()), (550, Some("5.7.1")));
        assert!(r.text().contains("relays no other mail"), "{}", r.text());
        let r = number_for(&s, "bob@fax.example").unwrap_err();
        assert_eq!((r.code(), r.enhanced()), (550, Some("5.1.1")));
        assert!(
            r.text().contains("\"bob\" is not a fax number"),
            "{}",
            r.text()
        );
    }
}

//! Mail devices: numbers the gateway logs in itself (through its own device
//! listener, like any faxrecv on the LAN) and answers like faxrecv does,
//! each page synced in the spool (`STATE_DIR/mail-devices/NUMBER`) before
//! it is confirmed. Each complete fax is queued in the outbox, synced,
//! before the caller's final confirmation, then mailed to the device's
//! address through the smarthost: TIFF-F (profile S for MFPs), PDF, or both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::codec::{Capabilities, Compression, Resolution};
use common::device::answer::AnswerPolicy;
use faxrecv::device::DeviceConfig;
use faxrecv::extras::Extras;
use faxrecv::store::{FaxRecord, OnFax};

use super::Mail;
use super::config::{Attach, MailDevice};
use crate::gateway::Gateway;

/// What a T.37 profile S receiver takes (RFC 3250 / T.37 simple mode):
/// MH only, 1728 pixels wide, standard or fine.
pub fn profile_s() -> Capabilities {
    Capabilities {
        compressions: vec![Compression::Mh],
        resolutions: vec![Resolution::Standard, Resolution::Fine],
        widths: vec![1728],
        max_pages: u32::MAX,
    }
}

/// Starts every mail device; they log in through `listen` (the gateway's
/// device listener).
pub fn start(gw: &Arc<Gateway>, mail: &Arc<Mail>, listen: SocketAddr) {
    let (Some(state_dir), Some(_)) = (gw.config.state_dir.as_ref(), mail.outbox.as_ref()) else {
        return;
    };
    let own = own_address(listen);
    for device in &mail.settings.devices {
        let dir = state_dir
            .join("mail-devices")
            .join(device.number.to_string());
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::error!(number = %device.number, dir = %dir.display(), error = %e, "cannot make the mail device's spool; it stays off");
            continue;
        }
        let capabilities = match device.attach {
            Attach::Pdf => Capabilities::all(),
            Attach::Tiff | Attach::Both => profile_s(),
        };
        let cfg = DeviceConfig {
            gateway: own.clone(),
            number: device.number.clone(),
            secret: mail
                .secrets
                .get(&device.number)
                .cloned()
                .unwrap_or_default(),
            dir,
            once: false,
            json: false,
            policy: AnswerPolicy::new(capabilities),
            read_rate: None,
            link: common::link::control::LinkConfig {
                tls: gw.config.link.tls.clone(),
                ..gw.config.link.clone()
            },
            extras: Extras {
                png: false,
                pdf: device.attach.pdf(),
            },
            pause: None,
            hooks: None,
            on_fax: Some(on_fax(mail, device)),
            embedded: true,
        };
        tracing::info!(number = %device.number, to = %device.mail_to, attach = ?device.attach, "mail device starting");
        let closing = gw.closing.clone();
        let number = device.number.clone();
        gw.tasks.spawn(async move {
            let stop = faxrecv::device::run(cfg, closing).await;
            if let Some(message) = stop.message {
                tracing::error!(%number, %message, "mail device stopped");
            }
        });
    }
}

/// The address to dial for the gateway's own device listener.
fn own_address(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".parse().unwrap_or(ip),
        ip if ip.is_unspecified() => "::1".parse().unwrap_or(ip),
        ip => ip,
    };
    format!("plain://{}", SocketAddr::new(ip, listen.port()))
}

/// Queues each complete fax's mail, synced (the callback runs before the
/// caller's final confirmation).
fn on_fax(mail: &Arc<Mail>, device: &MailDevice) -> OnFax {
    let (mail, device) = (mail.clone(), device.clone());
    OnFax(Arc::new(move |record: &FaxRecord, files: &[PathBuf]| {
        let message = compose(&mail, &device, record, files)?;
        let outbox = mail
            .outbox
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no smarthost"))?;
        let key = format!("fax/{}/{}", device.number, record.call_id);
        outbox
            .push_blocking(
                &key,
                "fax",
                &mail.settings.mail_from,
                std::slice::from_ref(&device.mail_to),
                message,
            )
            .map_err(std::io::Error::other)?;
        tracing::info!(number = %device.number, call = %record.call_id, to = %device.mail_to, "fax queued for mail");
        Ok(())
    }))
}

fn read_if(path: Option<&Path>) -> std::io::Result<Option<Vec<u8>>> {
    path.map(std::fs::read).transpose()
}

fn compose(
    mail: &Mail,
    device: &MailDevice,
    record: &FaxRecord,
    files: &[PathBuf],
) -> std::io::Result<Vec<u8>> {
    let find = |ext: &str| {
        files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == ext))
            .map(PathBuf::as_path)
    };
    let tiff = if device.attach.tiff() {
        read_if(find("tif"))?
    } else {
        None
    };
    let pdf = if device.attach.pdf() {
        read_if(find("pdf"))?
    } else {
        None
    };
    if device.attach.pdf() && pdf.is_none() {
        return Err(std::io::Error::other("the fax's PDF was not written"));
    }
    let report = serde_json::to_string_pretty(record)?;
    Ok(mail::outbound::received_fax(&mail::outbound::ReceivedFax {
        from: &mail.settings.mail_from,
        to: &device.mail_to,
        caller: &record.caller,
        callee: &record.callee,
        call_id: &record.call_id,
        pages: record.pages,
        received: &record.received,
        tiff: tiff.as_deref(),
        pdf: pdf.as_deref(),
        report_json: &report,
        hostname: &mail.hostname,
    }))
}

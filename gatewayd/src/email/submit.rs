//! A mail made into a queued fax: its attachments in order (then its text,
//! unless the sender's `body_page = false`), a cover page when the sender's
//! `cover = true` (the Subject as the cover's subject), rendered like
//! faxsend renders files, queued to each recipient number from the
//! sender's number, and answered only once the jobs are synced. Any
//! problem is the SMTP reply, and nothing is queued.

use std::path::PathBuf;
use std::sync::Arc;

use common::codec::cover::{Cover, CoverText};
use common::codec::tagline::{Parties, now};
use common::codec::{DocumentOptions, EncodedPage, load_document_with_progress};
use common::jobs::{Recipient, Schedule, Submission};
use common::link::message::{Login, LoginOutcome, LoginRefusal};
use common::number::Number;
use mail::inbound::{FaxMail, ReadError};
use mail::smtp::{Envelope, Reply};
use serde::{Deserialize, Serialize};

use super::Mail;
use super::config::MailSender;
use super::policy::number_for;
use crate::gateway::Gateway;
use crate::jobs_stream::queue_fax;
use crate::queue::job::Job;
use crate::queue::now_ms;

/// How long a fax from mail may wait for its callee (faxsend --queue's default).
pub const KILL_AFTER_MS: u64 = 3 * 3600 * 1000;
/// Tries in all (faxsend --queue's default).
pub const MAX_TRIES: u32 = 12;
const RETRY_INTERVAL_MS: u64 = 30_000;
const RETRY_BACKOFF: f64 = 2.0;

/// Where a fax from mail reports back: kept per job until its status mail
/// is queued.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Origin {
    /// The envelope sender, who gets the status mail.
    pub reply_to: String,
    /// The recipient address as written, e.g. 1002@fax.example.
    pub recipient: String,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// When the mail arrived (RFC 2822).
    pub arrival: String,
}

/// Queues the message `body` of `envelope` from `sender`; the reply to
/// give the client.
pub async fn queue_mail(
    gw: &Arc<Gateway>,
    mail: &Arc<Mail>,
    sender: &MailSender,
    envelope: &Envelope,
    body: Vec<u8>,
) -> Reply {
    match queue(gw, mail, sender, envelope, body).await {
        Ok(reply) | Err(reply) => reply,
    }
}

async fn queue(
    gw: &Arc<Gateway>,
    mail: &Arc<Mail>,
    sender: &MailSender,
    envelope: &Envelope,
    body: Vec<u8>,
) -> Result<Reply, Reply> {
    let (Some(queue), Some(smtp)) = (gw.queue.as_ref(), mail.settings.smtp.as_ref()) else {
        return Err(Reply::new(451, "4.3.0", "this gateway keeps no queue"));
    };
    let mut recipients: Vec<(String, Number)> = Vec::new();
    for address in &envelope.recipients {
        let number = number_for(smtp, address)?;
        if !recipients.iter().any(|(_, n)| *n == number) {
            recipients.push((address.clone(), number));
        }
    }
    let arrival = now().strftime("%a, %d %b %Y %H:%M:%S %z").to_string();
    // Parsing and rendering take CPU time: off the async thread.
    let (subject, message_id, pages) = {
        let sender = sender.clone();
        let to = (recipients.len() == 1).then(|| recipients[0].1.to_string());
        tokio::task::spawn_blocking(move || render(&body, &sender, to))
            .await
            .map_err(|e| Reply::new(451, "4.3.0", format!("rendering failed: {e}")))??
    };
    let secret = mail
        .secrets
        .get(&sender.number)
        .cloned()
        .unwrap_or_default();
    log_in(gw, &sender.number, secret).await?;
    let now = now_ms();
    let bytes: u64 = pages.iter().map(|p| p.data.len() as u64).sum();
    let submission = Submission {
        from: sender.number.clone(),
        recipients: recipients
            .iter()
            .map(|(_, to)| Recipient {
                to: to.clone(),
                pages: pages.len() as u32,
                bytes,
            })
            .collect(),
        schedule: Schedule {
            send_at_ms: None,
            kill_at_ms: now + KILL_AFTER_MS,
            max_tries: MAX_TRIES,
            retry_interval_ms: RETRY_INTERVAL_MS,
            retry_backoff: RETRY_BACKOFF,
            notify_url: None,
        },
    };
    // The status mail's address is stored with the jobs, before any can end.
    let wants_status = !envelope.sender.is_empty() && mail.outbox.is_some();
    let origins = mail.origins.clone();
    let record = |jobs: &[Job]| -> Result<(), String> {
        if !wants_status {
            return Ok(());
        }
        for (job, (address, _)) in jobs.iter().zip(&recipients) {
            let origin = Origin {
                reply_to: envelope.sender.clone(),
                recipient: address.clone(),
                message_id: message_id.clone(),
                subject: subject.clone(),
                arrival: arrival.clone(),
            };
            let json = serde_json::to_vec(&origin).map_err(|e| e.to_string())?;
            origins
                .insert(job.id().to_be_bytes(), json)
                .map_err(|e| format!("cannot store the mail's origin: {e}"))?;
        }
        Ok(())
    };
    let jobs = queue_fax(gw, queue, &submission, &pages[..], record)
        .await
        .map_err(|reason| {
            if reason.contains("pages; a job takes") {
                Reply::new(552, "5.3.4", reason)
            } else {
                Reply::new(451, "4.3.0", format!("not queued: {reason}"))
            }
        })?;
    gw.metrics.mail_faxes_queued.add(jobs.len() as u64);
    let list: Vec<String> = jobs
        .iter()
        .map(|j| format!("job {} to {}", j.id, j.to))
        .collect();
    let noun = if pages.len() == 1 { "page" } else { "pages" };
    Ok(Reply::new(
        250,
        "2.0.0",
        format!(
            "queued {} {noun} from {}: {}",
            pages.len(),
            sender.number,
            list.join(", ")
        ),
    ))
}

/// The mail's Subject, Message-ID and fax pages.
type Rendered = (Option<String>, Option<String>, Vec<EncodedPage>);

/// Reads the mail and renders its pages (blocking).
fn render(body: &[u8], sender: &MailSender, to: Option<String>) -> Result<Rendered, Reply> {
    let fax: FaxMail = mail::inbound::read(body).map_err(|e| match e {
        ReadError::Malformed(_) => Reply::new(554, "5.6.0", e.to_string()),
        ReadError::Unsupported { .. } => Reply::new(554, "5.6.1", e.to_string()),
        ReadError::TooManyParts(_) => Reply::new(552, "5.3.4", e.to_string()),
    })?;
    let dir = tempfile::tempdir()
        .map_err(|e| Reply::new(451, "4.3.0", format!("no room to read the mail: {e}")))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    let write = |name: &str, data: &[u8]| -> Result<PathBuf, Reply> {
        let path = dir.path().join(name);
        std::fs::write(&path, data)
            .map_err(|e| Reply::new(451, "4.3.0", format!("no room to read the mail: {e}")))?;
        Ok(path)
    };
    for doc in &fax.documents {
        paths.push(write(&doc.name, &doc.data)?);
    }
    if sender.body_page
        && let Some(text) = &fax.body_text
    {
        paths.push(write("message.txt", text.as_bytes())?);
    }
    if paths.is_empty() {
        return Err(Reply::new(
            554,
            "5.6.1",
            "nothing to fax: attach a PDF, TIFF, PNG, JPEG, GIF, BMP or text file, or write some text",
        ));
    }
    let cover = sender.cover.then(|| Cover {
        parties: Parties {
            from_number: sender.number.to_string(),
            from_name: None,
            to_number: to,
            to_name: None,
            when: now(),
        },
        text: CoverText {
            subject: fax.subject.clone(),
            comment: None,
        },
    });
    let opts = DocumentOptions {
        cover,
        ..DocumentOptions::default()
    };
    let pages = load_document_with_progress(&paths, &opts, &|_| {}).map_err(|e| {
        // Name the attachment, not our temporary file.
        let text = e
            .to_string()
            .replace(&format!("{}/", dir.path().display()), "");
        Reply::new(554, "5.6.0", format!("cannot fax the mail: {text}"))
    })?;
    Ok((fax.subject, fax.message_id, pages))
}

/// Logs the sending number in at the relay (send only), which a job's
/// credential needs.
async fn log_in(gw: &Gateway, number: &Number, secret: String) -> Result<(), Reply> {
    let login = Login {
        number: number.clone(),
        secret,
        receive: None,
    };
    match gw
        .uplink
        .login(login, gw.config.link.handshake_timeout)
        .await
    {
        LoginOutcome::Accepted { .. } => Ok(()),
        LoginOutcome::Refused(
            reason @ (LoginRefusal::BadSecret | LoginRefusal::Revoked { .. }),
        ) => {
            tracing::error!(%number, %reason, "the relay refused a [[mail_sender]]'s number: check its secret_file");
            Err(Reply::new(
                554,
                "5.7.1",
                format!(
                    "the relay refused fax number {number}: {reason}; ask the gateway's operator"
                ),
            ))
        }
        LoginOutcome::Refused(reason) => Err(Reply::new(
            451,
            "4.4.1",
            format!("cannot reach the fax network now ({reason}); try again later"),
        )),
    }
}

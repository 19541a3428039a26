//! The status mail of a fax sent by mail (HylaFAX's notify, as a DSN): when
//! a job queued from mail ends, its report goes to the mail's sender
//! through the outbox. The job's origin is kept until its mail is queued,
//! and at start every origin whose job has ended is mailed, so a restart
//! between the two loses nothing.

use std::sync::Arc;

use common::device::report::Outcome;
use common::jobs::{JobId, JobState, JobStatus};
use tokio::sync::broadcast::error::RecvError;

use super::Mail;
use super::submit::Origin;
use crate::gateway::Gateway;

/// Queues status mails until the gateway closes.
pub async fn run(gw: Arc<Gateway>, mail: Arc<Mail>) {
    let (Some(queue), Some(_)) = (gw.queue.as_ref(), mail.outbox.as_ref()) else {
        return;
    };
    let mut ended = queue.subscribe_ended();
    sweep(&gw, &mail).await;
    loop {
        let next = tokio::select! {
            _ = gw.closing.cancelled() => return,
            n = ended.recv() => n,
        };
        match next {
            Ok(id) => report(&gw, &mail, id).await,
            Err(RecvError::Lagged(_)) => sweep(&gw, &mail).await,
            Err(RecvError::Closed) => return,
        }
    }
}

/// Mails every origin whose job has ended.
async fn sweep(gw: &Gateway, mail: &Mail) {
    let ids: Vec<JobId> = mail
        .origins
        .iter()
        .keys()
        .filter_map(|k| k.ok())
        .filter_map(|k| k.as_ref().try_into().ok().map(JobId::from_be_bytes))
        .collect();
    for id in ids {
        report(gw, mail, id).await;
    }
}

/// Queues job `id`'s status mail if it came from mail and has ended.
async fn report(gw: &Gateway, mail: &Mail, id: JobId) {
    let (Some(queue), Some(outbox)) = (gw.queue.as_ref(), mail.outbox.as_ref()) else {
        return;
    };
    let key = id.to_be_bytes();
    let origin: Origin = match mail.origins.get(key) {
        Ok(Some(v)) => match serde_json::from_slice(&v) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(job = id, error = %e, "unreadable mail origin; no status mail");
                let _ = mail.origins.remove(key);
                return;
            }
        },
        _ => return,
    };
    let job = match queue.store.get(id) {
        Ok(Some(job)) if job.state().ended() => job,
        Ok(Some(_)) => return,
        _ => {
            let _ = mail.origins.remove(key);
            return;
        }
    };
    let message = compose(mail, &origin, &job.status);
    let to = [origin.reply_to.clone()];
    match outbox
        .push(
            &format!("status/{id}"),
            "status",
            &mail.settings.mail_from,
            &to,
            message,
        )
        .await
    {
        Ok(_) => {
            let _ = mail.origins.remove(key);
        }
        Err(e) => tracing::error!(job = id, error = %e, "cannot queue the status mail"),
    }
}

/// What to try when a fax failed, by how it failed.
pub fn advice(status: &JobStatus) -> &'static str {
    match (status.state, status.outcome) {
        (JobState::Done, _) => "",
        (JobState::Canceled, _) => {
            "The fax was canceled; send the mail again if it is still wanted."
        }
        (_, Some(Outcome::Rejected)) => {
            "The callee's fax refused the call: ask them whether they take faxes from this number."
        }
        (_, Some(Outcome::UnknownNumber)) => {
            "No fax is registered at this number: check it, then send the mail again."
        }
        (_, Some(Outcome::NotAuthorized)) => {
            "The fax network refused the sending number: ask the gateway's operator to check it."
        }
        (_, Some(Outcome::Busy | Outcome::Offline | Outcome::Unreachable)) => {
            "The callee was busy or off until the fax expired: send the mail again later."
        }
        _ => "Check the number and that the callee's fax is on, then send the mail again.",
    }
}

fn compose(mail: &Mail, origin: &Origin, s: &JobStatus) -> Vec<u8> {
    let report_json = serde_json::to_string_pretty(s).unwrap_or_default();
    let reason = match s.state {
        JobState::Done => String::new(),
        _ if s.reason.is_empty() => s.state.to_string(),
        _ => s.reason.clone(),
    };
    mail::outbound::fax_status(&mail::outbound::FaxStatus {
        from: &mail.settings.mail_from,
        to: &origin.reply_to,
        in_reply_to: origin.message_id.as_deref(),
        original_subject: origin.subject.as_deref(),
        recipient: &origin.recipient,
        number: &s.to.to_string(),
        delivered: s.state == JobState::Done,
        pages: s.pages,
        pages_confirmed: s.pages_confirmed,
        tries: s.tries,
        reason: &reason,
        advice: advice(s),
        job_id: s.id,
        report_json: &report_json,
        reporting_host: &mail.hostname,
        arrival_date: Some(&origin.arrival),
    })
}

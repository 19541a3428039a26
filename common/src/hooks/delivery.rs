//! One attempt at delivering one event to its target, and why it failed.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::signature::{SigningKey, sign};
use super::target::{BadUrl, Target, parse_url};
use super::{Settings, command, webhook};

/// Why an attempt failed; the text goes into the log line, after the target.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    BadUrl(#[from] BadUrl),
    #[error("the URL has no host")]
    NoHost,
    #[error("cannot build the request: {0}")]
    Request(String),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(hyper::Error),
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("answered {status}{}", if answer.is_empty() { String::new() } else { format!(": {answer}") })]
    Status {
        status: hyper::StatusCode,
        answer: String,
    },
    #[error("cannot start sh: {0}")]
    Spawn(std::io::Error),
    #[error("cannot wait for the command: {0}")]
    Wait(std::io::Error),
    #[error("{exit}{}", stderr_part(stderr))]
    Exit { exit: String, stderr: String },
    #[error("did not finish within {}; killed{}", humantime::format_duration(*limit), stderr_part(stderr))]
    CommandTimeout { limit: Duration, stderr: String },
}

fn stderr_part(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {stderr}")
    }
}

/// One attempt: a signed POST for a URL, a run for a command.
pub(crate) async fn deliver(
    target: &Target,
    body: &str,
    args: &[PathBuf],
    key: Option<&SigningKey>,
    settings: &Settings,
) -> Result<(), DeliveryError> {
    match target {
        Target::Url(text) => {
            let url = parse_url(text)?;
            // Signed at each attempt, so a retry hours later still carries a
            // fresh timestamp that a receiver's replay check accepts.
            let signature = key.map(|key| sign(key, unix_now(), body.as_bytes()));
            let body = Bytes::copy_from_slice(body.as_bytes());
            webhook::post(&url, body, signature, &settings.tls, settings.http_timeout).await
        }
        Target::Command(cmd) => {
            command::run(cmd, body.as_bytes(), args, settings.command_timeout).await
        }
    }
}

/// Seconds since 1970; a clock before that reads as 0 (and a receiver's
/// replay check then says the timestamp is stale, which is the truth).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

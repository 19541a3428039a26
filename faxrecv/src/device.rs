//! The device loop: log in, answer calls one at a time (a fax line is busy
//! while it takes a fax), log in again when the gateway link drops.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::backoff::Backoff;
use common::daemon::notify;
use common::device::answer::{self, AnswerPolicy, Answered, refuse};
use common::device::session::{Session, SessionEnd, SessionError};
use common::link::control::LinkConfig;
use common::link::message::{CallRefusal, CallRequest, LoginRefusal};
use common::link::mux::MuxStream;
use common::link::splice::{REQUEST_TIMEOUT, read_request};
use common::number::Number;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::{EXIT_INCOMPLETE, EXIT_NOT_AUTHORIZED, EXIT_REPLACED};
use crate::extras::Extras;
use crate::hooks::ReceiveHooks;
use crate::pause::PagePause;
use crate::slow_line::SlowLine;
use crate::store::{FaxStore, OnFax};

/// What the device needs to run.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    pub gateway: String,
    pub number: Number,
    pub secret: String,
    pub dir: PathBuf,
    pub once: bool,
    pub json: bool,
    pub policy: AnswerPolicy,
    /// Bytes per second a call is read at, at most (a slow line); `None`: full speed.
    pub read_rate: Option<u64>,
    pub link: LinkConfig,
    /// PNG pages and/or a PDF beside each fax.
    pub extras: Extras,
    /// Hold one page's confirmation until SIGUSR1 (`--pause-at-page`).
    pub pause: Option<PagePause>,
    /// A command and/or webhook for each fax received.
    pub hooks: Option<ReceiveHooks>,
    /// Called with each complete fax before its final confirmation (an
    /// error withholds it: the caller tries again); see [`OnFax`].
    pub on_fax: Option<OnFax>,
    /// Run inside another daemon (gatewayd's mail devices): no readiness
    /// for systemd and no line on stdout per fax; the log says it all.
    pub embedded: bool,
}

/// Why the device stopped, as an exit code and a message for stderr.
#[derive(Debug)]
pub struct Stop {
    pub code: u8,
    pub message: Option<String>,
}

impl Stop {
    fn ok() -> Stop {
        Stop {
            code: 0,
            message: None,
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A call's outcome, reported from the answering task to the loop.
type CallDone = (CallRequest, Answered);

/// Runs the device until `shutdown`, a fatal refusal, or (with --once) one
/// call; its hooks are delivered meanwhile (with --once, until the call's
/// are: see [`ReceiveHooks::settle`]).
pub async fn run(cfg: DeviceConfig, shutdown: CancellationToken) -> Stop {
    let Some(hooks) = cfg.hooks.clone() else {
        return answer_calls(cfg, shutdown).await;
    };
    let stop_delivery = CancellationToken::new();
    let delivering = tokio::spawn(hooks.clone().deliver(stop_delivery.clone()));
    let once = cfg.once;
    let stop = answer_calls(cfg, shutdown.clone()).await;
    if once {
        hooks.settle(&shutdown).await;
    }
    // Undelivered events stay in the outbox for the next run.
    stop_delivery.cancel();
    if let Err(e) = delivering.await {
        tracing::error!(error = %e, "notification delivery failed");
    }
    stop
}

/// Logs in and answers calls, logging in again when the link drops.
async fn answer_calls(cfg: DeviceConfig, shutdown: CancellationToken) -> Stop {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let mut first = true;
    loop {
        let login = tokio::select! {
            _ = shutdown.cancelled() => return Stop::ok(),
            l = Session::login(&cfg.gateway, &cfg.number, &cfg.secret, Some(cfg.policy.capabilities.clone()), &cfg.link) => l,
        };
        let session = match login {
            Ok(s) => s,
            Err(SessionError::Refused {
                reason:
                    reason @ (LoginRefusal::BadSecret
                    | LoginRefusal::Revoked { .. }
                    | LoginRefusal::TooManyAttempts { .. }),
                ..
            }) => {
                // Retrying would not help (a bad or revoked secret) or would
                // make it worse (too many attempts).
                return Stop {
                    code: EXIT_NOT_AUTHORIZED,
                    message: Some(format!("login as {} refused: {reason}", cfg.number)),
                };
            }
            Err(e) => {
                let pause = backoff.next_pause();
                tracing::warn!(error = %e, retry_ms = pause.as_millis() as u64, "cannot log in; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Stop::ok(),
                    _ = tokio::time::sleep(pause) => {}
                }
                continue;
            }
        };
        backoff.reset();
        let status = format!(
            "logged in as {} at relay {} via {}",
            cfg.number, session.relay, cfg.gateway
        );
        tracing::info!("{status}");
        if cfg.embedded {
        } else if first {
            notify::ready(&status);
            first = false;
        } else {
            notify::status(&status);
        }
        match serve(&cfg, session, &shutdown).await {
            Some(stop) => return stop,
            None => tracing::warn!("gateway link lost; logging in again"),
        }
    }
}

/// Answers calls on one session; `None` means the link was lost (log in again).
async fn serve(
    cfg: &DeviceConfig,
    mut session: Session,
    shutdown: &CancellationToken,
) -> Option<Stop> {
    let line_busy = Arc::new(AtomicBool::new(false));
    let (done_tx, mut done_rx) = mpsc::channel::<CallDone>(4);
    let calls = tokio_util::task::TaskTracker::new();
    let mut end = session.end_signal();
    let stop = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break Some(Stop::ok()),
            end = end.wait() => match end {
                SessionEnd::Kicked(reason) => break Some(Stop {
                    code: EXIT_REPLACED,
                    message: Some(format!("replaced: {reason}")),
                }),
                SessionEnd::LinkLost(reason) => {
                    tracing::warn!(%reason, "session ended");
                    break None;
                }
            },
            Some((request, answered)) = done_rx.recv() => {
                report(cfg, &request, &answered);
                if cfg.once {
                    let code = match answered {
                        Answered::Incomplete { .. } => EXIT_INCOMPLETE,
                        _ => 0,
                    };
                    break Some(Stop { code, message: None });
                }
            }
            Some(stream) = session.inbound.recv() => {
                let busy = line_busy.clone();
                let done = done_tx.clone();
                let cfg = cfg.clone();
                calls.spawn(async move {
                    if let Some(result) = take_call(&cfg, stream, &busy).await {
                        let _ = done.send(result).await;
                    }
                });
            }
        }
    };
    // A fax being received finishes (or fails) before the device goes away.
    calls.close();
    calls.wait().await;
    while let Ok((request, answered)) = done_rx.try_recv() {
        report(cfg, &request, &answered);
    }
    stop
}

/// Answers one call stream; `None` when it was refused because the line is busy.
async fn take_call(
    cfg: &DeviceConfig,
    mut stream: MuxStream,
    line_busy: &AtomicBool,
) -> Option<CallDone> {
    let request = match read_request(&mut stream, REQUEST_TIMEOUT).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "call dropped");
            return None;
        }
    };
    if line_busy.swap(true, Ordering::SeqCst) {
        refuse(
            &mut stream,
            &request,
            CallRefusal::Busy,
            "the line is busy with another fax",
        )
        .await;
        return None;
    }
    tracing::info!(call = %request.call_id, from = %request.from, "answering");
    let dir = cfg.dir.clone();
    let extras = cfg.extras;
    let pause = cfg.pause.clone();
    let hooks = cfg.hooks.clone();
    let on_fax = cfg.on_fax.clone();
    let mut line = SlowLine::new(stream, cfg.read_rate);
    let answered = answer::answer(&mut line, &request, &cfg.policy, |req| {
        FaxStore::create_with(&dir, req, extras).map(|store| {
            store
                .with_pause(pause)
                .with_hooks(hooks)
                .with_on_fax(on_fax)
        })
    })
    .await;
    line_busy.store(false, Ordering::SeqCst);
    Some((request, answered))
}

/// Prints one line per call: the fax's JSON description with --json, a
/// sentence otherwise. Refusals and incomplete faxes go to the log only.
fn report(cfg: &DeviceConfig, request: &CallRequest, answered: &Answered) {
    match answered {
        Answered::Received { pages, file, held } => {
            tracing::info!(number = %cfg.number, call = %request.call_id, from = %request.from, pages, held, %file, "fax received");
            if cfg.embedded {
            } else if cfg.json {
                let json = cfg.dir.join(format!("{}.json", request.call_id));
                match std::fs::read_to_string(&json) {
                    Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(v) => println!("{v}"),
                        Err(e) => tracing::error!(error = %e, "unreadable {}", json.display()),
                    },
                    Err(e) => tracing::error!(error = %e, "cannot read {}", json.display()),
                }
            } else {
                let noun = if *pages == 1 { "page" } else { "pages" };
                let via = if request.via.is_empty() {
                    String::new()
                } else {
                    format!(" via {}", request.via.join(", "))
                };
                let resumed = match held {
                    0 => String::new(),
                    n => format!(" ({n} held from an earlier attempt)"),
                };
                println!(
                    "received {pages} {noun}{resumed} from {} (call {}){via}: {file}",
                    request.from, request.call_id
                );
            }
        }
        Answered::Refused(reason) => {
            tracing::info!(call = %request.call_id, %reason, "call refused")
        }
        Answered::Incomplete { pages, reason } => {
            tracing::warn!(call = %request.call_id, pages, %reason, "fax incomplete")
        }
    }
}

//! Sending a fax: encode every page first (bad input fails before anything is
//! sent), log in through the gateway, call, and report.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use common::codec::{EncodedPage, load_document_with_progress};
use common::credential::read_secret_file;
use common::device::retry::RetryPolicy;
use common::device::send::{self, Attempt, DeliveryReport, Outcome, SendOptions, SendProgress};
use common::device::session::{Session, SessionError};
use common::link::control::LinkConfig;
use common::link::message::LoginRefusal;
use common::link::tls::ClientTls;
use common::number::{CallId, Number};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::cli::Cli;
use crate::error::{Error, Usage};
use crate::exit;

/// Sends the fax the command line describes; returns the exit code.
pub fn run(cli: &Cli) -> Result<u8, Error> {
    let call = &cli.call;
    if call.to.len() > 1 {
        return Err(Usage(
            "several --to need --queue (the gateway then sends one job per recipient)".into(),
        )
        .into());
    }
    let (Some(gateway), Some(from), Some(to), Some(secret_file)) = (
        &call.gateway,
        &call.from,
        call.to.first(),
        &call.secret_file,
    ) else {
        return Err(Usage(
            "to send, give --gateway, --from, --to, --secret-file (or FAXMESH_SECRET); \
             to encode only, give --output OUT.tif"
                .to_owned(),
        )
        .into());
    };
    let secret = read_secret_file(secret_file)
        .with_context(|| format!("cannot read secret file {}", secret_file.display()))
        .map_err(Error::BadInput)?;
    let link = LinkConfig {
        tls: ClientTls::new(call.ca_file.as_deref()).map_err(|e| Usage(e.to_string()))?,
        ..LinkConfig::default()
    };
    let pages = encode(cli)?;
    let opts = SendOptions {
        answer_timeout: Duration::from_secs(call.answer_timeout),
        page_timeout: Duration::from_secs(call.page_timeout),
        stop: None,
    };
    let retry = RetryPolicy {
        retries: call.retries,
        interval: Duration::from_secs_f64(call.retry_interval),
        backoff: call.retry_backoff,
    };
    let call_id = call.call_id.clone().unwrap_or_else(CallId::random);
    let fax = Fax {
        gateway,
        link: &link,
        from,
        secret: &secret,
        to,
        call_id,
    };
    let runtime = tokio::runtime::Runtime::new()
        .context("cannot start the runtime")
        .map_err(Error::Internal)?;
    let report = runtime.block_on(send_with_retries(&fax, pages, &opts, &retry));
    print_report(&report, call.json);
    Ok(exit::for_outcome(report.result))
}

/// Reads and encodes every page, with a progress bar on a terminal.
fn encode(cli: &Cli) -> Result<Vec<EncodedPage>, Error> {
    let bar = terminal_spinner("{spinner} encoding: {pos} pages ({elapsed})");
    let document = crate::encode::document_options(cli)?;
    let pages = load_document_with_progress(&cli.files, &document, &|done| {
        if let Some(bar) = &bar {
            bar.set_position(done as u64);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    Ok(pages?)
}

/// One fax to send: who calls whom, through which gateway, as which call.
struct Fax<'a> {
    gateway: &'a str,
    link: &'a LinkConfig,
    from: &'a Number,
    secret: &'a str,
    to: &'a Number,
    call_id: CallId,
}

/// Calls until the fax is delivered, the outcome is final, or the retries
/// are used up; every attempt sends only what the callee still lacks.
async fn send_with_retries(
    fax: &Fax<'_>,
    pages: Vec<EncodedPage>,
    opts: &SendOptions,
    retry: &RetryPolicy,
) -> DeliveryReport {
    let started = Instant::now();
    let total = pages.len() as u32;
    // Encoded once; every attempt shares them.
    let pages = Arc::new(pages);
    let progress: Arc<dyn SendProgress> = match PageBars::new(total.into()) {
        Some(bars) => Arc::new(bars),
        None => Arc::new(common::device::send::NoProgress),
    };
    let mut attempts = Vec::new();
    loop {
        let attempt = call_once(fax, &pages, opts, progress.clone()).await;
        let n = attempts.len() as u32 + 1;
        let pause = match attempt.retryable {
            true => retry.pause_before_retry(n),
            false => None,
        };
        if let Some(pause) = pause {
            // One line per retry, so a person or a log sees why it redials.
            eprintln!(
                "faxsend: attempt {n} of {}: {}: {}; {} of {total} pages on the callee; redialing in {:?}",
                retry.retries + 1,
                attempt.result,
                attempt.detail,
                attempt.pages_on_callee().unwrap_or(0),
                pause
            );
        }
        attempts.push(attempt);
        match pause {
            Some(pause) => tokio::time::sleep(pause).await,
            None => break,
        }
    }
    let mut report = DeliveryReport::from_attempts(
        fax.call_id.clone(),
        fax.from.clone(),
        fax.to.clone(),
        total,
        attempts,
    );
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
}

/// One attempt: log in through the gateway (anew, as the link may be what
/// failed), call, send.
async fn call_once(
    fax: &Fax<'_>,
    pages: &Arc<Vec<EncodedPage>>,
    opts: &SendOptions,
    progress: Arc<dyn SendProgress>,
) -> Attempt {
    let started = Instant::now();
    let login = Session::login(fax.gateway, fax.from, fax.secret, None, fax.link);
    let session = match login.await {
        Ok(s) => s,
        Err(e) => {
            let result = match &e {
                SessionError::Refused {
                    reason:
                        LoginRefusal::BadSecret
                        | LoginRefusal::Revoked { .. }
                        | LoginRefusal::TooManyAttempts { .. },
                    ..
                } => Outcome::NotAuthorized,
                _ => Outcome::Unreachable,
            };
            return Attempt::failed(result, e.to_string(), started.elapsed());
        }
    };
    let mut attempt = send::attempt(
        (&session).into(),
        &fax.call_id,
        fax.to,
        pages,
        opts,
        progress,
    )
    .await;
    attempt.elapsed_ms = started.elapsed().as_millis() as u64;
    attempt
}

/// Two bars on a terminal: pages sent and pages confirmed.
struct PageBars {
    _multi: MultiProgress,
    sent: ProgressBar,
    confirmed: ProgressBar,
}

impl PageBars {
    fn new(total: u64) -> Option<PageBars> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} pages")
            .ok()?
            .progress_chars("=> ");
        let sent = multi.add(
            ProgressBar::new(total)
                .with_style(style.clone())
                .with_prefix("sent"),
        );
        let confirmed = multi.add(
            ProgressBar::new(total)
                .with_style(style)
                .with_prefix("confirmed"),
        );
        Some(PageBars {
            _multi: multi,
            sent,
            confirmed,
        })
    }
}

impl SendProgress for PageBars {
    fn attempt_started(&self, held: u32) {
        self.sent.set_position(held.into());
        self.confirmed.set_position(held.into());
    }
    fn page_sent(&self, _index: u32) {
        self.sent.inc(1);
    }
    fn page_confirmed(&self, _index: u32) {
        self.confirmed.inc(1);
    }
}

impl Drop for PageBars {
    fn drop(&mut self) {
        self.sent.finish_and_clear();
        self.confirmed.finish_and_clear();
    }
}

fn terminal_spinner(template: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// The delivery report: one JSON object on stdout with --json; otherwise a
/// few aligned lines on stdout, and the reason of a failure on stderr.
fn print_report(r: &DeliveryReport, json: bool) {
    if json {
        match serde_json::to_string(r) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("faxsend: cannot format the report: {e}"),
        }
    } else {
        let via = if r.via.is_empty() {
            "-".to_owned()
        } else {
            r.via.join(" -> ")
        };
        println!("result:    {}", r.result);
        println!("to:        {} (from {})", r.to, r.from);
        println!(
            "pages:     {} confirmed of {} sent ({} in the document)",
            r.pages_confirmed, r.pages_sent, r.pages_total
        );
        println!("bytes:     {}", r.bytes_sent);
        println!("time:      {:.3} s", r.elapsed_ms as f64 / 1000.0);
        println!("call id:   {}", r.call_id);
        println!("via:       {via}");
        let attempts = r.attempts.len();
        match r.attempts.last().and_then(|a| a.pages_held) {
            Some(held) if held > 0 => println!(
                "attempts:  {attempts} (the last sent from page {}: the callee held {held})",
                held + 1
            ),
            _ => println!("attempts:  {attempts}"),
        }
    }
    if r.result != Outcome::Delivered {
        eprintln!("faxsend: {}: {}", r.result, r.detail);
    }
}

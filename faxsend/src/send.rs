//! Sending a fax: encode every page first (bad input fails before anything is
//! sent), log in through the gateway, call, and report.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use common::codec::{EncodedPage, load_document_with_progress};
use common::credential::read_secret_file;
use common::device::send::{DeliveryReport, Outcome, SendOptions, SendProgress, send_fax};
use common::device::session::{Session, SessionError};
use common::link::control::LinkConfig;
use common::link::message::LoginRefusal;
use common::number::{CallId, Number};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::cli::Cli;
use crate::exit;

/// A bad command line: exit 2 with this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Sends the fax the command line describes; returns the exit code.
pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    let call = &cli.call;
    let (Some(gateway), Some(from), Some(to), Some(secret_file)) =
        (&call.gateway, &call.from, &call.to, &call.secret_file)
    else {
        return Err(Usage(
            "to send, give --gateway, --from, --to, --secret-file (or FAXMESH_SECRET); \
             to encode only, give --output OUT.tif"
                .to_owned(),
        )
        .into());
    };
    let secret = read_secret_file(secret_file)
        .with_context(|| format!("cannot read secret file {}", secret_file.display()))?;
    let pages = encode(cli)?;
    let opts = SendOptions {
        answer_timeout: Duration::from_secs(call.answer_timeout),
        page_timeout: Duration::from_secs(call.page_timeout),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    let report = runtime.block_on(call_and_send(gateway, from, &secret, to, pages, &opts));
    print_report(&report, call.json);
    Ok(exit::for_outcome(report.result))
}

/// Reads and encodes every page, with a progress bar on a terminal.
fn encode(cli: &Cli) -> anyhow::Result<Vec<EncodedPage>> {
    let bar = terminal_spinner("{spinner} encoding: {pos} pages ({elapsed})");
    let pages = load_document_with_progress(&cli.files, &cli.encode.options(), &|done| {
        if let Some(bar) = &bar {
            bar.set_position(done as u64);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    Ok(pages?)
}

async fn call_and_send(
    gateway: &str,
    from: &Number,
    secret: &str,
    to: &Number,
    pages: Vec<EncodedPage>,
    opts: &SendOptions,
) -> DeliveryReport {
    let started = Instant::now();
    let call_id = CallId::random();
    let session = match Session::login(gateway, from, secret, None, &LinkConfig::default()).await {
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
            return DeliveryReport {
                result,
                detail: e.to_string(),
                call_id,
                from: from.clone(),
                to: to.clone(),
                pages_total: pages.len() as u32,
                pages_sent: 0,
                pages_confirmed: 0,
                bytes_sent: 0,
                elapsed_ms: started.elapsed().as_millis() as u64,
                via: Vec::new(),
            };
        }
    };
    let progress: Arc<dyn SendProgress> = match PageBars::new(pages.len() as u64) {
        Some(bars) => Arc::new(bars),
        None => Arc::new(common::device::send::NoProgress),
    };
    let mut report = send_fax(&session, call_id, to, pages, opts, progress.clone()).await;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
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
    }
    if r.result != Outcome::Delivered {
        eprintln!("faxsend: {}: {}", r.result, r.detail);
    }
}

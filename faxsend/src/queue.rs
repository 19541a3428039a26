//! `faxsend --queue`: encode the fax for each recipient (each gets its own
//! cover page and tag line), hand it to the gateway's queue over one jobs
//! stream, and print the job ids once the gateway has them on disk.

use std::time::Duration;

use common::codec::{EncodedPage, load_document_with_progress};
use common::jobs::{JobRequest, JobResponse, JobStatus, Recipient, Schedule, Submission};
use common::link::frame::FrameError;
use common::link::pages;

use crate::cli::Cli;
use crate::error::{Error, Usage};
use crate::exit;
use crate::jobs_cli::{self, Device};

/// HylaFAX's default kill time.
pub const DEFAULT_KILL_AFTER: Duration = Duration::from_secs(3 * 3600);
/// Tries in all when neither --max-tries nor --retries says.
pub const DEFAULT_MAX_TRIES: u32 = 12;

/// Queues the fax the command line describes; returns the exit code.
pub fn run(cli: &Cli) -> Result<u8, Error> {
    let call = &cli.call;
    let (Some(gateway), Some(from)) = (&call.gateway, &call.from) else {
        return Err(Usage("--queue needs --gateway, --from and --to".into()).into());
    };
    if call.to.is_empty() {
        return Err(Usage("--queue needs at least one --to".into()).into());
    }
    // Checked first, so a bad schedule sends nothing and encodes nothing.
    schedule(cli, jobs_cli::now_ms())?;
    let device = Device::new(
        gateway,
        from,
        call.secret_file.as_deref(),
        call.ca_file.as_deref(),
    )?;
    // Every recipient's pages are encoded before anything is sent.
    let mut faxes = Vec::new();
    for to in &call.to {
        let document = crate::encode::document_options_for(cli, Some(to))?;
        let pages = load_document_with_progress(&cli.files, &document, &|_| {})?;
        faxes.push((to.clone(), pages));
    }
    // The kill time counts from now, not from before the documents were
    // encoded: a long conversion must not eat into it.
    let schedule = schedule(cli, jobs_cli::now_ms())?;
    let submission = Submission {
        from: from.clone(),
        recipients: faxes
            .iter()
            .map(|(to, pages)| Recipient {
                to: to.clone(),
                pages: pages.len() as u32,
                bytes: pages.iter().map(|p| p.data.len() as u64).sum(),
            })
            .collect(),
        schedule,
    };
    let runtime = jobs_cli::runtime()?;
    let answer = runtime.block_on(async {
        let session = device.login().await?;
        let stream =
            session.opener.open().await.map_err(|e| {
                jobs_cli::Failure::unreachable(format!("cannot open a stream: {e}"))
            })?;
        let (mut rx, mut tx) = tokio::io::split(stream);
        // The pages go out while the gateway may already answer: a refusal
        // (no room, a bad schedule) comes before it reads them all.
        let writing = async {
            common::jobs::write_request(&mut tx, &JobRequest::Submit(submission)).await?;
            for (_, pages) in &faxes {
                write_pages(&mut tx, pages).await?;
            }
            // Keep the write half open until the answer is read.
            std::future::pending::<Result<JobResponse, FrameError>>().await
        };
        let answer = common::jobs::read_response(&mut rx);
        tokio::pin!(answer);
        let answered = tokio::select! {
            biased;
            answer = &mut answer => answer,
            failed = writing => match failed {
                // The gateway stopped reading: its answer says why.
                Err(e) => tokio::time::timeout(Duration::from_secs(5), answer)
                    .await
                    .unwrap_or(Err(e)),
                Ok(never) => Ok(never),
            },
        };
        answered
            .map_err(|e| jobs_cli::Failure::unreachable(format!("the gateway link failed: {e}")))
    });
    let jobs = match answer {
        Ok(JobResponse::Queued(jobs)) => jobs,
        Ok(JobResponse::Refused { reason }) => {
            eprintln!("faxsend: the gateway did not queue the fax: {reason}");
            return Ok(exit::UNREACHABLE);
        }
        Ok(other) => {
            eprintln!("faxsend: unexpected answer from the gateway: {other:?}");
            return Ok(exit::UNREACHABLE);
        }
        Err(f) => {
            eprintln!("faxsend: {}", f.message);
            return Ok(f.code);
        }
    };
    print_queued(&jobs, call.json);
    Ok(exit::OK)
}

async fn write_pages<W: tokio::io::AsyncWrite + Unpin>(
    stream: &mut W,
    pages: &[EncodedPage],
) -> Result<(), FrameError> {
    for (index, page) in pages.iter().enumerate() {
        pages::write_page(stream, index as u32, page, None).await?;
    }
    Ok(())
}

/// The schedule the flags ask for, checked (nothing is sent on a bad one).
fn schedule(cli: &Cli, now: u64) -> Result<Schedule, Usage> {
    let q = &cli.queue;
    let kill_after = q.kill_after.unwrap_or(DEFAULT_KILL_AFTER);
    let kill_at_ms = now + kill_after.as_millis() as u64;
    let send_at_ms = q.send_at.map(|w| w.unix_ms(now));
    if let Some(at) = send_at_ms {
        if at >= kill_at_ms {
            return Err(Usage(format!(
                "--send-at is not before the kill time ({} from now): give a later --kill-after",
                humantime::format_duration(kill_after)
            )));
        }
        if at + 60_000 < now {
            return Err(Usage("--send-at is in the past".into()));
        }
    }
    let call = &cli.call;
    let max_tries = q.max_tries.unwrap_or(match call.retries {
        0 => DEFAULT_MAX_TRIES,
        n => n.saturating_add(1),
    });
    Ok(Schedule {
        send_at_ms,
        kill_at_ms,
        max_tries,
        retry_interval_ms: (call.retry_interval * 1000.0) as u64,
        retry_backoff: call.retry_backoff,
        notify_url: q.notify_url.clone(),
    })
}

fn print_queued(jobs: &[JobStatus], json: bool) {
    if json {
        let out = serde_json::json!({ "jobs": jobs });
        println!("{out}");
        return;
    }
    for j in jobs {
        let pages = if j.pages == 1 { "page" } else { "pages" };
        println!(
            "job {}: {} -> {}, {} {pages}, {}",
            j.id, j.from, j.to, j.pages, j.state
        );
    }
}

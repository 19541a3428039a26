//! faxrm: cancel jobs in the gateway's queue (and faxalter's changes).

use std::process::ExitCode;

use clap::Parser;
use common::jobs::{JobId, JobRequest, JobResponse};
use faxsend::cli::{When, parse_when};
use faxsend::jobs_cli::{self, Device, DeviceArgs};
use faxsend::{Error, exit};

const EXAMPLES: &str = "\
Examples:
  faxrm --gateway gw.lan:4700 --from 1001 --secret-file 1001.secret 17 18
  faxrm ... --send-at 2h 17                  # do not cancel: try job 17 two hours from now
  faxrm ... --kill-at 2026-12-24T18:00:00+01:00 17   # do not cancel: give up at that time

A waiting job is canceled at once; a job being sent stops at its next page boundary (the
callee keeps the pages it confirmed). A job that has ended is left as it is.

Exit codes: 0 every job canceled (or altered); 1 some job had ended or could not be
changed (each is named); 2 bad usage or an unknown job; 3 the gateway is unreachable or
refused; 4 not authorized.";

/// Cancels jobs in the gateway's fax queue, or changes when they are tried.
#[derive(Parser, Debug)]
#[command(name = "faxrm", version, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    device: DeviceArgs,
    /// Instead of canceling: try the jobs at TIME (RFC 3339, or a duration from now).
    #[arg(long, value_name = "TIME", value_parser = parse_when)]
    send_at: Option<When>,
    /// Instead of canceling: give up on the jobs at TIME (RFC 3339, or a duration from now).
    #[arg(long, value_name = "TIME", value_parser = parse_when)]
    kill_at: Option<When>,
    /// Jobs to cancel or change.
    #[arg(value_name = "JOB", required = true)]
    jobs: Vec<JobId>,
}

fn main() -> ExitCode {
    let cli: Cli = common::daemon::cli_docs::parse();
    jobs_cli::main("faxrm", || run(&cli))
}

fn run(cli: &Cli) -> Result<u8, Error> {
    let (device, from) = Device::from_args(&cli.device)?;
    let jobs = cli.jobs.clone();
    let now = jobs_cli::now_ms();
    let request = match (cli.send_at, cli.kill_at) {
        (None, None) => JobRequest::Cancel { from, jobs },
        (send_at, kill_at) => JobRequest::Alter {
            from,
            jobs,
            send_at_ms: send_at.map(|w| w.unix_ms(now)),
            kill_at_ms: kill_at.map(|w| w.unix_ms(now)),
        },
    };
    let answer = jobs_cli::runtime()?.block_on(device.ask(&request));
    match answer {
        Ok(JobResponse::Changed(changes)) => {
            if cli.device.json {
                println!("{}", serde_json::json!({ "jobs": changes }));
            } else {
                for c in &changes {
                    println!("job {}: {}", c.id, c.message);
                }
            }
            let code = if changes.iter().any(|c| c.message == "no such job") {
                exit::BAD_INPUT
            } else if changes.iter().all(|c| c.changed) {
                exit::OK
            } else {
                exit::INTERNAL
            };
            Ok(code)
        }
        other => Ok(jobs_cli::other_answer("faxrm", other)),
    }
}

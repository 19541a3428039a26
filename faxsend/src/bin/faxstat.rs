//! faxstat: the jobs a number has in its gateway's queue.

use std::process::ExitCode;

use clap::Parser;
use common::jobs::{JobId, JobRequest, JobResponse};
use faxsend::jobs_cli::{self, Device, DeviceArgs};
use faxsend::{Error, exit};

const EXAMPLES: &str = "\
Examples:
  faxstat --gateway gw.lan:4700 --from 1001 --secret-file 1001.secret          # every job of 1001
  faxstat --gateway gw.lan:4700 --from 1001 --secret-file 1001.secret 17 18    # two jobs
  faxstat ... --json 17                     # the job with every attempt, as JSON
  faxstat ... --wait 17 18                  # block until both ended; exit as faxsend would

Each line: JOB  FROM -> TO  STATE (reason)  CONFIRMED/PAGES pages  try N/MAX; next try in ...
States: queued, scheduled, sending, waiting, done, failed, canceled.

Exit codes: 0 listed (with --wait: every job delivered); 2 bad usage or an unknown job;
3 the gateway is unreachable or refused; 4 not authorized. With --wait, the first job
not delivered sets the code as faxsend's would for its last attempt (6 offline, 7 busy,
9 partial, ...), 4 when its secret was revoked, 10 when its kill time passed before any
attempt, 12 canceled.";

/// Lists the jobs a number has in its gateway's fax queue.
#[derive(Parser, Debug)]
#[command(name = "faxstat", version, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    device: DeviceArgs,
    /// Block until every job given has ended, then exit with its outcome's code.
    #[arg(long, requires = "jobs")]
    wait: bool,
    /// Jobs to show [default: all of the number's].
    #[arg(value_name = "JOB")]
    jobs: Vec<JobId>,
}

fn main() -> ExitCode {
    let cli: Cli = common::daemon::cli_docs::parse();
    jobs_cli::main("faxstat", || run(&cli))
}

fn run(cli: &Cli) -> Result<u8, Error> {
    let (device, from) = Device::from_args(&cli.device)?;
    let jobs = cli.jobs.clone();
    let request = match cli.wait {
        true => JobRequest::Wait { from, jobs },
        false => JobRequest::List { from, jobs },
    };
    let answer = jobs_cli::runtime()?.block_on(device.ask(&request));
    match answer {
        Ok(JobResponse::Jobs(jobs)) => {
            jobs_cli::print_jobs(&jobs, cli.device.json);
            if !cli.wait {
                return Ok(exit::OK);
            }
            Ok(jobs
                .iter()
                .map(jobs_cli::exit_for)
                .find(|&c| c != exit::OK)
                .unwrap_or(exit::OK))
        }
        Ok(JobResponse::Refused { reason }) if reason.starts_with("no job") => {
            eprintln!("faxstat: {reason}");
            Ok(exit::BAD_INPUT)
        }
        other => Ok(jobs_cli::other_answer("faxstat", other)),
    }
}

//! What faxsend --queue, faxstat and faxrm share: logging in to the
//! gateway as the sending number, one request on a jobs stream, printing
//! jobs, and the exit code a job's end maps to.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use common::credential::read_secret_file;
use common::device::config::DeviceFile;
use common::device::session::{Session, SessionError};
use common::jobs::{JobRequest, JobResponse, JobState, JobStatus};
use common::link::control::LinkConfig;
use common::link::message::LoginRefusal;
use common::link::tls::ClientTls;
use common::number::Number;

use crate::error::{Error, Usage};
use crate::exit;

/// Which gateway, as which number: the flags faxstat and faxrm share.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Gateway to dial, HOST:PORT [default: `gateway` in the device config file].
    #[arg(long, value_name = "ADDR", env = "FAXMESH_GATEWAY")]
    pub gateway: Option<String>,
    /// CA certificates (PEM) for a relay dialed with tls:// [default: the system's roots].
    #[arg(long, value_name = "F", env = "FAXMESH_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// The number whose jobs these are [default: `number` in the device config file].
    #[arg(long, value_name = "N", env = "FAXMESH_FROM")]
    pub from: Option<Number>,
    /// File holding the number's secret (from `relayd credential`)
    /// [default: `secret_file` in the device config file].
    #[arg(long, value_name = "F", env = "FAXMESH_SECRET")]
    pub secret_file: Option<PathBuf>,
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn unreachable(message: String) -> Failure {
        Failure {
            code: exit::UNREACHABLE,
            message,
        }
    }
}

/// A device's way to its gateway.
pub struct Device {
    gateway: String,
    from: Number,
    secret: String,
    link: LinkConfig,
}

impl Device {
    /// Reads the secret and the CA file: a bad one is a usage error.
    pub fn new(
        gateway: &str,
        from: &Number,
        secret_file: Option<&Path>,
        ca_file: Option<&Path>,
    ) -> Result<Device, Error> {
        let secret_file =
            secret_file.ok_or_else(|| Usage("give --secret-file (or FAXMESH_SECRET)".into()))?;
        let secret = read_secret_file(secret_file).map_err(|e| {
            Usage(format!(
                "cannot read secret file {}: {e}",
                secret_file.display()
            ))
        })?;
        Ok(Device {
            gateway: gateway.to_owned(),
            from: from.clone(),
            secret,
            link: LinkConfig {
                tls: ClientTls::new(ca_file).map_err(|e| Usage(e.to_string()))?,
                ..LinkConfig::default()
            },
        })
    }

    /// The device the flags name, completed from the device config file.
    pub fn from_args(args: &DeviceArgs) -> Result<(Device, Number), Error> {
        let file = DeviceFile::load().map_err(|e| Usage(e.to_string()))?;
        let missing = |flag: &str, key: &str| Usage(DeviceFile::missing(flag, key));
        let gateway = args
            .gateway
            .clone()
            .or(file.gateway)
            .ok_or_else(|| missing("--gateway", "gateway"))?;
        let from = args
            .from
            .clone()
            .or(file.number)
            .ok_or_else(|| missing("--from", "number"))?;
        let secret_file = args
            .secret_file
            .clone()
            .or(file.secret_file)
            .ok_or_else(|| missing("--secret-file (or FAXMESH_SECRET)", "secret_file"))?;
        let ca_file = args.ca_file.clone().or(file.ca_file);
        let device = Device::new(&gateway, &from, Some(&secret_file), ca_file.as_deref())?;
        Ok((device, from))
    }

    /// Logs in (send-only).
    pub async fn login(&self) -> Result<Session, Failure> {
        Session::login(&self.gateway, &self.from, &self.secret, None, &self.link)
            .await
            .map_err(|e| {
                let code = match &e {
                    SessionError::Refused {
                        reason:
                            LoginRefusal::BadSecret
                            | LoginRefusal::Revoked { .. }
                            | LoginRefusal::TooManyAttempts { .. },
                        ..
                    } => exit::NOT_AUTHORIZED,
                    _ => exit::UNREACHABLE,
                };
                Failure {
                    code,
                    message: e.to_string(),
                }
            })
    }

    /// Logs in and asks one thing of the queue.
    pub async fn ask(&self, request: &JobRequest) -> Result<JobResponse, Failure> {
        let session = self.login().await?;
        let mut stream = session
            .opener
            .open()
            .await
            .map_err(|e| Failure::unreachable(format!("cannot open a stream: {e}")))?;
        let answer = async {
            common::jobs::write_request(&mut stream, request).await?;
            common::jobs::read_response(&mut stream).await
        };
        answer
            .await
            .map_err(|e| Failure::unreachable(format!("the gateway link failed: {e}")))
    }
}

/// faxstat's and faxrm's `main`: runs `run`, and exits with its code or
/// with its error's (printed after the tool's name).
pub fn main(tool: &str, run: impl FnOnce() -> Result<u8, Error>) -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{tool}: {e:#}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints why an answer is not the one the tool asked for (a refusal, an
/// unexpected answer, no answer) and returns the exit code it means.
pub fn other_answer(tool: &str, answer: Result<JobResponse, Failure>) -> u8 {
    match answer {
        Ok(JobResponse::Refused { reason }) => {
            eprintln!("{tool}: the gateway refused: {reason}");
            exit::UNREACHABLE
        }
        Ok(other) => {
            eprintln!("{tool}: unexpected answer from the gateway: {other:?}");
            exit::UNREACHABLE
        }
        Err(f) => {
            eprintln!("{tool}: {}", f.message);
            f.code
        }
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Runtime::new()
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot start the runtime: {e}")))
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The exit code a job's end means, as faxsend's for the same outcome:
/// 0 done; a failed job the code of its last attempt's outcome (9 partial,
/// 6 offline, ...), 4 when its secret was revoked, 10 when its kill time
/// passed before any attempt; 12 canceled; 13 not ended yet.
pub fn exit_for(job: &JobStatus) -> u8 {
    match job.state {
        JobState::Done => exit::OK,
        JobState::Canceled => exit::CANCELED,
        JobState::Failed if job.reason.starts_with("secret revoked") => exit::NOT_AUTHORIZED,
        JobState::Failed => match job.outcome {
            Some(o) if o != common::device::report::Outcome::Delivered => exit::for_outcome(o),
            _ => exit::TIMEOUT,
        },
        _ => exit::NOT_ENDED,
    }
}

/// One line per job, or `{"jobs": [...]}` with --json.
pub fn print_jobs(jobs: &[JobStatus], json: bool) {
    if json {
        println!("{}", serde_json::json!({ "jobs": jobs }));
        return;
    }
    let now = now_ms();
    for j in jobs {
        let next = match j.next_try_ms {
            Some(at) if at > now => format!(
                "; next try in {}",
                humantime::format_duration(std::time::Duration::from_secs(
                    (at - now).div_ceil(1000)
                ))
            ),
            _ => String::new(),
        };
        let reason = match j.reason.is_empty() {
            true => String::new(),
            false => format!(" ({})", j.reason),
        };
        println!(
            "{:>6}  {} -> {}  {}{reason}  {}/{} pages  try {}/{}{next}",
            j.id, j.from, j.to, j.state, j.pages_confirmed, j.pages, j.tries, j.max_tries
        );
    }
}

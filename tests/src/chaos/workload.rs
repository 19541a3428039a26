//! The chaos workload: faxes between random devices, 1 to 20 pages, each
//! page drawn from a seed of its own so that every fax is recognisable to
//! the pixel, sent with faxsend `--retries` under a call id the run chose
//! (so that the ledger knows every id, even of a faxsend that died).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::codec::{Bitmap, Resolution};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::images::{text_bitmap, write_tiff};

use super::cluster::{GATEWAY_ADDR, in_ns};

/// Longest one faxsend run may take, all retries included, before the run
/// kills it (and the ledger counts it as killed).
const FAXSEND_LIMIT: Duration = Duration::from_secs(240);

/// One fax the workload sent (or tried to).
#[derive(Clone, Debug)]
pub struct Fax {
    pub serial: u64,
    /// Empty for a queued fax whose faxsend did not say it was queued.
    pub call_id: String,
    /// Sent through the gateway's queue (`faxsend --queue`, then `faxstat`).
    pub queued: bool,
    pub from: String,
    pub to: String,
    /// Seed of page 1; page k has seed `seed + k - 1`.
    pub seed: u64,
    /// Rows of each page.
    pub rows: Vec<u32>,
    /// faxsend's exit code (`None`: killed after [`FAXSEND_LIMIT`]).
    pub code: Option<i32>,
    /// faxsend's `--json` report, when it printed one; for a queued fax,
    /// the job's last status from faxstat.
    pub report: Option<serde_json::Value>,
    pub stderr: String,
}

impl Fax {
    /// The pages as drawn, which the callee must hold pixel for pixel.
    pub fn pages(&self) -> Vec<Bitmap> {
        self.rows
            .iter()
            .zip(self.seed..)
            .map(|(&rows, seed)| text_bitmap(seed, 1728, rows, Resolution::Fine))
            .collect()
    }

    /// How faxsend (or faxstat, for a queued fax) said it ended:
    /// `delivered`, `partial`, another outcome, or why there is none.
    pub fn result(&self) -> String {
        let Some(r) = &self.report else {
            return match self.code {
                None => "killed".to_owned(),
                Some(code) => format!("exit {code}"),
            };
        };
        if !self.queued {
            return r["result"].as_str().unwrap_or("?").to_owned();
        }
        match (r["state"].as_str(), r["outcome"].as_str()) {
            (Some("done"), _) => "delivered".to_owned(),
            (Some("failed"), _) if self.confirmed() > 0 => "partial".to_owned(),
            (Some("failed"), Some(outcome)) => format!("queued, {outcome}"),
            (Some(state), _) => format!("queued, {state}"),
            (None, _) => "queued, no status".to_owned(),
        }
    }

    /// Why it was not delivered, in the sender's words: the report's detail
    /// (the job's reason), else faxsend's last line on stderr.
    pub fn why(&self) -> String {
        let said = self.report.as_ref().and_then(|r| {
            r["detail"]
                .as_str()
                .or_else(|| r["reason"].as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        });
        said.unwrap_or_else(|| self.stderr.lines().last().unwrap_or("").to_owned())
    }

    /// Pages the report says the callee confirmed.
    pub fn confirmed(&self) -> u32 {
        self.report
            .as_ref()
            .and_then(|r| r["pages_confirmed"].as_u64())
            .unwrap_or(0) as u32
    }
}

/// What senders share: where each device is now (devices move), the
/// gateways' namespaces, and the secret files.
#[derive(Clone, Debug)]
pub struct Directory {
    /// Per device: its number, secret file and current gateway.
    pub devices: Arc<Mutex<Vec<(String, PathBuf, usize)>>>,
    pub gateway_ns: Arc<Vec<String>>,
}

/// Sender threads, running until [`Workload::finish`].
#[derive(Debug)]
pub struct Workload {
    stop: Arc<AtomicBool>,
    done: Arc<Mutex<Vec<Fax>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workload {
    /// Starts `senders` threads, each sending one fax after another.
    pub fn start(
        seed: u64,
        senders: usize,
        max_pages: u32,
        dir: &Path,
        directory: Directory,
    ) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let serials = Arc::new(AtomicU64::new(1));
        let done = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..senders)
            .map(|t| {
                let (stop, serials, done) = (stop.clone(), serials.clone(), done.clone());
                let (directory, dir) = (directory.clone(), dir.to_owned());
                std::thread::spawn(move || {
                    let mut rng = StdRng::seed_from_u64(seed ^ (0x5eed_0000 + t as u64));
                    while !stop.load(Ordering::Relaxed) {
                        let serial = serials.fetch_add(1, Ordering::Relaxed);
                        let fax = send_one(&mut rng, seed, serial, max_pages, &dir, &directory);
                        done.lock().expect("the list of faxes").push(fax);
                    }
                })
            })
            .collect();
        Workload {
            stop,
            done,
            threads,
        }
    }

    /// The faxes whose faxsend has ended so far, but for the first `n` to
    /// end (a checkpoint looks at each fax once).
    pub fn finished_since(&self, n: usize) -> Vec<Fax> {
        let done = self.done.lock().expect("the list of faxes");
        done[n.min(done.len())..].to_vec()
    }

    /// Stops starting faxes, waits for those under way, and returns every
    /// fax sent, by serial.
    pub fn finish(self) -> Vec<Fax> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("a sender thread panicked");
        }
        let mut all = std::mem::take(&mut *self.done.lock().expect("the list of faxes"));
        all.sort_by_key(|f| f.serial);
        all
    }
}

fn send_one(
    rng: &mut StdRng,
    run_seed: u64,
    serial: u64,
    max_pages: u32,
    dir: &Path,
    directory: &Directory,
) -> Fax {
    let (from, secret, ns, to) = {
        let devices = directory.devices.lock().expect("the device table");
        let a = rng.random_range(0..devices.len());
        let b = (a + rng.random_range(1..devices.len())) % devices.len();
        let (from, secret, g) = devices[a].clone();
        (
            from,
            secret,
            directory.gateway_ns[g].clone(),
            devices[b].0.clone(),
        )
    };
    let pages = rng.random_range(1..=max_pages);
    let rows = (0..pages).map(|_| rng.random_range(200..1200)).collect();
    let queued = rng.random_ratio(1, 4);
    let mut fax = Fax {
        serial,
        // The run's seed and the serial: unique, and recognisable in any
        // inbox. A queued fax gets its id from the gateway.
        call_id: match queued {
            false => format!("{:016x}{serial:016x}", run_seed),
            true => String::new(),
        },
        queued,
        from,
        to,
        seed: run_seed.wrapping_mul(1_000_003).wrapping_add(serial * 64),
        rows,
        code: None,
        report: None,
        stderr: String::new(),
    };
    let file = dir.join(format!("fax-{serial}.tif"));
    write_tiff(&file, &fax.pages());
    let mut faxsend = in_ns(&ns, "faxsend");
    faxsend
        .args([
            "--gateway",
            GATEWAY_ADDR,
            "--from",
            &fax.from,
            "--to",
            &fax.to,
        ])
        .arg("--secret-file")
        .arg(&secret)
        .args(["--json", "--no-tagline"]);
    if queued {
        // The gateway redials every 2 s, up to 30 times.
        faxsend.args(["--queue", "--max-tries", "30", "--retry-interval", "2"]);
        faxsend.args(["--retry-backoff", "1", "--kill-after", "10m"]);
    } else {
        faxsend.args(["--call-id", &fax.call_id]);
        faxsend.args([
            "--retries",
            "6",
            "--retry-interval",
            "1",
            "--retry-backoff",
            "2",
        ]);
        faxsend.args(["--answer-timeout", "10", "--page-timeout", "20"]);
    }
    faxsend.arg(&file);
    let deadline = Instant::now() + FAXSEND_LIMIT;
    let ran = run_until(faxsend, dir, &format!("fax-{serial}"), deadline);
    let _ = std::fs::remove_file(&file);
    fax.code = ran.code;
    fax.stderr = ran.stderr;
    fax.report = serde_json::from_str(ran.stdout.trim()).ok();
    if queued && let Some(job) = fax.report.as_ref().map(|r| r["jobs"][0].clone()) {
        fax.call_id = job["call_id"].as_str().unwrap_or_default().to_owned();
        let id = job["id"].to_string();
        fax.report =
            Some(wait_for_job(&ns, &fax.from, &secret, &id, dir, serial, deadline).unwrap_or(job));
    }
    fax
}

/// What a command run by [`run_until`] said.
struct Ran {
    /// The exit code; `None` when it was killed at the deadline.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with its output in files named `stem` in `dir`, killing it at
/// `deadline`.
fn run_until(mut cmd: Command, dir: &Path, stem: &str, deadline: Instant) -> Ran {
    let (out, err) = (
        dir.join(format!("{stem}.stdout")),
        dir.join(format!("{stem}.stderr")),
    );
    let create = |p: &Path| std::fs::File::create(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    let mut child = cmd
        .env("FAXMESH_DEVICE_CONFIG", "")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(create(&out))
        .stderr(create(&err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let code = loop {
        if let Some(status) = child.try_wait().expect("waitpid on our child") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ran {
        code,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    }
}

/// Polls `faxstat --json JOB` until the job has ended (its gateway may be
/// down for a while meanwhile); returns its last status.
fn wait_for_job(
    ns: &str,
    from: &str,
    secret: &Path,
    job: &str,
    dir: &Path,
    serial: u64,
    deadline: Instant,
) -> Option<serde_json::Value> {
    let mut last = None;
    while Instant::now() < deadline {
        let mut faxstat = in_ns(ns, "faxstat");
        faxstat
            .args(["--gateway", GATEWAY_ADDR, "--from", from, "--json"])
            .arg("--secret-file")
            .arg(secret)
            .arg(job);
        let ran = run_until(faxstat, dir, &format!("faxstat-{serial}"), deadline);
        let status = serde_json::from_str::<serde_json::Value>(ran.stdout.trim())
            .ok()
            .map(|r| r["jobs"][0].clone());
        if let Some(status) = status {
            let ended = matches!(
                status["state"].as_str(),
                Some("done" | "failed" | "canceled")
            );
            last = Some(status);
            if ended {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    last
}

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

use crate::bins::bin;
use crate::images::{text_bitmap, write_tiff};

use super::cluster::GATEWAY_ADDR;

/// Longest one faxsend run may take, all retries included, before the run
/// kills it (and the ledger counts it as killed).
const FAXSEND_LIMIT: Duration = Duration::from_secs(240);

/// One fax the workload sent (or tried to).
#[derive(Clone, Debug)]
pub struct Fax {
    pub serial: u64,
    pub call_id: String,
    pub from: String,
    pub to: String,
    /// Seed of page 1; page k has seed `seed + k - 1`.
    pub seed: u64,
    /// Rows of each page.
    pub rows: Vec<u32>,
    /// faxsend's exit code (`None`: killed after [`FAXSEND_LIMIT`]).
    pub code: Option<i32>,
    /// faxsend's `--json` report, when it printed one.
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

    /// How faxsend said it ended: the report's `result`, or why there is none.
    pub fn result(&self) -> String {
        match (&self.report, self.code) {
            (Some(r), _) => r["result"].as_str().unwrap_or("?").to_owned(),
            (None, None) => "killed".to_owned(),
            (None, Some(code)) => format!("exit {code}"),
        }
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

    /// The faxes whose faxsend has ended so far.
    pub fn finished(&self) -> Vec<Fax> {
        self.done.lock().expect("the list of faxes").clone()
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
    let mut fax = Fax {
        serial,
        // The run's seed and the serial: unique, and recognisable in any inbox.
        call_id: format!("{:016x}{serial:016x}", run_seed),
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
    let out = dir.join(format!("fax-{serial}.json"));
    let err = dir.join(format!("fax-{serial}.stderr"));
    let create = |p: &Path| std::fs::File::create(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(bin("faxsend"))
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
        .args(["--call-id", &fax.call_id, "--json", "--no-tagline"])
        .args([
            "--retries",
            "6",
            "--retry-interval",
            "1",
            "--retry-backoff",
            "2",
        ])
        .args(["--answer-timeout", "10", "--page-timeout", "20"])
        .arg(&file)
        .env("FAXMESH_DEVICE_CONFIG", "")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(create(&out))
        .stderr(create(&err))
        .spawn()
        .expect("faxsend starts");
    let deadline = Instant::now() + FAXSEND_LIMIT;
    fax.code = loop {
        if let Some(status) = child.try_wait().expect("waitpid on faxsend") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    fax.report = serde_json::from_str(stdout.trim()).ok();
    fax.stderr = std::fs::read_to_string(&err).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    fax
}

//! Fax devices driven in process, for benchmarks and load tests: many
//! receivers and senders on a handful of threads, through real gateways and
//! relays running as separate processes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::codec::{Capabilities, EncodedPage};
use common::credential::FleetKey;
use common::device::answer::{self, AnswerPolicy, read_request};
use common::device::send::{DeliveryReport, NoProgress, Outcome, SendOptions, send_fax};
use common::device::session::Session;
use common::link::control::LinkConfig;
use common::link::splice::REQUEST_TIMEOUT;
use common::number::{CallId, Number};
use faxrecv::store::FaxStore;
use tokio::task::JoinHandle;

/// Device secrets computed from the fleet key, without a process per number.
#[derive(Debug, Clone)]
pub struct Secrets(FleetKey);

impl Secrets {
    pub fn load(key_file: &Path) -> Secrets {
        Secrets(FleetKey::load(key_file).unwrap_or_else(|e| panic!("{e}")))
    }

    pub fn of(&self, number: &Number) -> String {
        self.0.device_secret(number)
    }

    pub fn key(&self) -> &FleetKey {
        &self.0
    }
}

pub fn number(n: u64) -> Number {
    n.to_string().parse().unwrap_or_else(|e| panic!("{e}"))
}

/// Logs in a receiving device that stores every fax in `inbox` exactly as
/// faxrecv does (TIFF Class F, synced per page). Returns once logged in.
pub async fn spawn_receiver(
    gateway: SocketAddr,
    number: Number,
    secrets: &Secrets,
    inbox: PathBuf,
) -> JoinHandle<()> {
    let secret = secrets.of(&number);
    let mut session = Session::login(
        &gateway.to_string(),
        &number,
        &secret,
        Some(Capabilities::all()),
        &LinkConfig::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("receiver {number}: {e}"));
    tokio::spawn(async move {
        let policy = Arc::new(AnswerPolicy::new(Capabilities::all()));
        while let Some(mut stream) = session.inbound.recv().await {
            let (policy, inbox) = (policy.clone(), inbox.clone());
            tokio::spawn(async move {
                let Ok(request) = read_request(&mut stream, REQUEST_TIMEOUT).await else {
                    return;
                };
                answer::answer(&mut stream, &request, &policy, |req| {
                    FaxStore::create(&inbox, req)
                })
                .await;
            });
        }
    })
}

/// A logged-in sending device.
pub async fn sender(gateway: SocketAddr, number: &Number, secrets: &Secrets) -> Session {
    Session::login(
        &gateway.to_string(),
        number,
        &secrets.of(number),
        None,
        &LinkConfig::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("sender {number}: {e}"))
}

/// Sends one fax and insists it was delivered.
pub async fn deliver(session: &Session, to: &Number, pages: Vec<EncodedPage>) -> DeliveryReport {
    let report = send_fax(
        session,
        CallId::random(),
        to,
        pages,
        &SendOptions::default(),
        Arc::new(NoProgress),
    )
    .await;
    assert_eq!(report.result, Outcome::Delivered, "{report:?}");
    report
}

/// Calls from `senders[i]` to `callees[i]` in a loop on every pair at once,
/// for `duration`; returns the time of every call, dial to final confirmation.
pub async fn call_loop(
    senders: Vec<Arc<Session>>,
    callees: Vec<Number>,
    page: EncodedPage,
    duration: Duration,
) -> Vec<Duration> {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = senders
        .into_iter()
        .zip(callees)
        .map(|(session, to)| {
            let page = page.clone();
            tokio::spawn(async move {
                let mut times = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    deliver(&session, &to, vec![page.clone()]).await;
                    times.push(started.elapsed());
                }
                times
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_else(|e| panic!("a sender failed: {e}")));
    }
    all
}

/// The `q` quantile (0..=1) of `times`.
pub fn quantile(times: &mut [Duration], q: f64) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    times.sort_unstable();
    let i = ((times.len() - 1) as f64 * q).round() as usize;
    times[i]
}

/// Resident memory of a process, in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used so far, in seconds, from
/// /proc/PID/stat; `pid` 0 means this process.
pub fn cpu_secs(pid: u32) -> f64 {
    let path = if pid == 0 {
        "/proc/self/stat".to_owned()
    } else {
        format!("/proc/{pid}/stat")
    };
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the parenthesised command name, which may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat(5); `fields` starts at 3.
    // In clock ticks of USER_HZ, which Linux fixes at 100 for user space.
    (ticks(11) + ticks(12)) / 100.0
}

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

/// Logins made at once when many devices log in.
const PARALLEL_LOGINS: usize = 64;

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

/// Logs in a receiving device (see [`spawn_receiver`]) for each of
/// `numbers`, the i-th behind `gateways[i % gateways.len()]`, many at once;
/// returns once every one is logged in.
pub async fn spawn_receivers(
    gateways: &[SocketAddr],
    numbers: &[Number],
    secrets: &Secrets,
    inbox: &Path,
) -> Vec<JoinHandle<()>> {
    logins(gateways, numbers, |gateway, number| {
        let (secrets, inbox) = (secrets.clone(), inbox.to_owned());
        // The login yields the answering task's handle, which is kept, not awaited.
        #[allow(clippy::async_yields_async)]
        async move {
            spawn_receiver(gateway, number, &secrets, inbox).await
        }
    })
    .await
}

/// Logs in a sending device for each of `numbers`, spread over `gateways`
/// as in [`spawn_receivers`].
pub async fn senders(
    gateways: &[SocketAddr],
    numbers: &[Number],
    secrets: &Secrets,
) -> Vec<Arc<Session>> {
    logins(gateways, numbers, |gateway, number| {
        let secrets = secrets.clone();
        async move { Arc::new(sender(gateway, &number, &secrets).await) }
    })
    .await
}

/// Runs `login` for every number (the i-th with gateway i mod n),
/// [`PARALLEL_LOGINS`] at a time; the results in the order of `numbers`.
async fn logins<T, F>(
    gateways: &[SocketAddr],
    numbers: &[Number],
    login: impl Fn(SocketAddr, Number) -> F,
) -> Vec<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let mut out = Vec::with_capacity(numbers.len());
    let mut i = 0;
    for chunk in numbers.chunks(PARALLEL_LOGINS) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|n| {
                let gateway = gateways[i % gateways.len()];
                i += 1;
                tokio::spawn(login(gateway, n.clone()))
            })
            .collect();
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| panic!("a login failed: {e}")));
        }
    }
    out
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

/// Sends one fax and returns the report, whatever the outcome.
pub async fn call(session: &Session, to: &Number, pages: Vec<EncodedPage>) -> DeliveryReport {
    send_fax(
        session,
        CallId::random(),
        to,
        pages,
        &SendOptions::default(),
        Arc::new(NoProgress),
    )
    .await
}

/// Sends one fax and insists it was delivered.
pub async fn deliver(session: &Session, to: &Number, pages: Vec<EncodedPage>) -> DeliveryReport {
    let report = call(session, to, pages).await;
    assert_eq!(report.result, Outcome::Delivered, "{report:?}");
    report
}

/// One call of many: how it ended, and its time from dial to final confirmation.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub report: DeliveryReport,
    pub took: Duration,
}

/// How long each sender of [`call_many`] goes on calling.
#[derive(Debug, Clone, Copy)]
pub enum Calls {
    /// This many calls each.
    Each(usize),
    /// Until then (a call under way then still ends).
    Until(Instant),
}

/// Every sender calls at once, one call after another: the i-th sender's
/// k-th call goes to `callee(i, k)` with one `page`. Returns every call's
/// result, failures included, so a benchmark can count them.
pub async fn call_many(
    senders: Vec<Arc<Session>>,
    callee: impl Fn(usize, usize) -> Number + Send + Sync + 'static,
    page: EncodedPage,
    calls: Calls,
) -> Vec<CallResult> {
    let callee = Arc::new(callee);
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, session)| {
            let (page, callee) = (page.clone(), callee.clone());
            tokio::spawn(async move {
                let mut results = Vec::new();
                for k in 0.. {
                    let more = match calls {
                        Calls::Each(n) => k < n,
                        Calls::Until(deadline) => Instant::now() < deadline,
                    };
                    if !more {
                        break;
                    }
                    let started = Instant::now();
                    let report = call(&session, &callee(i, k), vec![page.clone()]).await;
                    let took = started.elapsed();
                    results.push(CallResult { report, took });
                }
                results
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_else(|e| panic!("a sender failed: {e}")));
    }
    all
}

/// Calls from `senders[i]` to `callees[i]` in a loop on every pair at once,
/// for `duration`; insists every call was delivered and returns the time of
/// each, dial to final confirmation.
pub async fn call_loop(
    senders: Vec<Arc<Session>>,
    callees: Vec<Number>,
    page: EncodedPage,
    duration: Duration,
) -> Vec<Duration> {
    let until = Calls::Until(Instant::now() + duration);
    call_many(senders, move |i, _| callees[i].clone(), page, until)
        .await
        .into_iter()
        .map(|r| {
            assert_eq!(r.report.result, Outcome::Delivered, "{:?}", r.report);
            r.took
        })
        .collect()
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
    proc_status_kib(pid, "VmRSS:")
}

/// The most resident memory a process has had, in KiB (VmHWM).
pub fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The resident memory of each process in `pids` once none has fallen for
/// [`SETTLED_FOR`] (a daemon hands freed memory back a moment after a burst
/// of calls or logins: see `common::daemon::memory`), waiting at most 15 s;
/// and how long that took.
///
/// The wait covers the daemon's trim: two quiet status ticks after the
/// last call's streams are torn down, up to about 5 s after the last call.
/// glibc gave most memory back as it was freed, so 3.5 s sufficed; relayd
/// on mimalloc gives it back only at the trim.
pub async fn settled_rss_kib(pids: &[u32]) -> (Vec<u64>, Duration) {
    const SETTLED_FOR: Duration = Duration::from_millis(6000);
    let started = Instant::now();
    let mut last_fall = started;
    let mut rss: Vec<u64> = pids.iter().map(|pid| rss_kib(*pid)).collect();
    while last_fall.elapsed() < SETTLED_FOR && started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (pid, was) in pids.iter().zip(rss.iter_mut()) {
            let now = rss_kib(*pid);
            if now < *was {
                last_fall = Instant::now();
            }
            *was = now;
        }
    }
    (rss, last_fall - started)
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

/// A fresh directory for received faxes, on tmpfs when there is one (each
/// page is synced, which on a disk would measure the disk). The caller
/// removes it.
pub fn tmpfs_dir(name: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    tempfile::Builder::new()
        .prefix(&format!("faxmesh-{name}-"))
        .tempdir_in(base)
        .unwrap_or_else(|e| panic!("cannot make a scratch dir: {e}"))
        .keep()
}

/// Raises this process's open-file limit to its hard limit (one socket per
/// device: a thousand devices pass the usual soft limit of 1024); returns
/// the limit now in force.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

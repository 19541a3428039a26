//! The gateway's queue under load: real relayd, gatewayd and faxrecv
//! processes on loopback; the submitting device runs in this process.
//! Prints its figures; asserts nothing about speed.
//!
//!     cargo bench -p faxmesh-tests --bench queue [-- drain] [-- memory]
//!
//! - drain: QUEUE_JOBS one-page jobs (default 1,000) to 10 callees, queued
//!   with a send time a few seconds ahead, so the gateway holds them all
//!   first; then the time from the send time until every job is done
//!   (jobs/s, target at least 500), through one relay. The queue is on disk
//!   (the bench's temp dir); the callees' inboxes on tmpfs.
//! - memory: gatewayd's resident memory with QUEUE_WAITING jobs waiting
//!   (default 10,000, scheduled a day ahead), against the same gateway empty.
//!
//! QUEUE_ON_TMPFS=1 puts the drain's queue on tmpfs too (what the disk's
//! syncs cost); QUEUE_GATEWAY_LOG=FILE keeps the sending gateway's log.

use std::time::{Duration, Instant};

use common::codec::EncodedPage;
use common::credential::read_secret_file;
use common::device::session::Session;
use common::jobs::{self, JobId, JobRequest, JobResponse, Recipient, Schedule, Submission};
use common::link::control::LinkConfig;
use common::link::pages;
use common::number::Number;
use harness::images::letter_page;
use harness::load::{rss_kib, tmpfs_dir};
use harness::{Gateway, Receiver, Testbed};

/// Recipients per submission (the gateway's limit is 100).
const BATCH: usize = 100;

fn main() {
    let sections: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |s: &str| sections.is_empty() || sections.iter().any(|x| x == s);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "faxmesh queue benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if wants("drain") {
        runtime.block_on(drain(env_or("QUEUE_JOBS", 1000)));
    }
    if wants("memory") {
        runtime.block_on(memory(env_or("QUEUE_WAITING", 10_000)));
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// 1001 logged in at `gw`, as faxsend would be.
async fn device(bed: &Testbed, gw: &Gateway) -> Session {
    let secret = read_secret_file(&bed.fleet().secret_file("1001")).expect("a secret");
    let from: Number = "1001".parse().expect("a number");
    Session::login(
        &gw.addr().to_string(),
        &from,
        &secret,
        None,
        &LinkConfig::default(),
    )
    .await
    .expect("1001 logs in")
}

/// One request on a jobs stream (a submission's pages follow it).
async fn ask(session: &Session, request: JobRequest, page: Option<&EncodedPage>) -> JobResponse {
    let mut stream = session.opener.open().await.expect("a stream");
    jobs::write_request(&mut stream, &request)
        .await
        .expect("sent");
    if let (JobRequest::Submit(s), Some(page)) = (&request, page) {
        for _ in &s.recipients {
            pages::write_page(&mut stream, 0, page, None)
                .await
                .expect("a page sent");
        }
    }
    jobs::read_response(&mut stream).await.expect("an answer")
}

/// Queues `n` one-page jobs from 1001 to `callees` in turn, not before
/// `send_at_ms`; their ids, and how long queueing took.
async fn submit(
    session: &Session,
    n: usize,
    callees: &[Number],
    send_at_ms: u64,
) -> (Vec<JobId>, Duration) {
    let page = letter_page();
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(BATCH) {
        let submission = Submission {
            from: "1001".parse().expect("a number"),
            recipients: batch
                .iter()
                .map(|&i| Recipient {
                    to: callees[i % callees.len()].clone(),
                    pages: 1,
                    bytes: page.data.len() as u64,
                })
                .collect(),
            schedule: Schedule {
                send_at_ms: Some(send_at_ms),
                kill_at_ms: send_at_ms + 3_600_000,
                max_tries: 50,
                retry_interval_ms: 200,
                retry_backoff: 1.0,
                notify_url: None,
            },
        };
        match ask(session, JobRequest::Submit(submission), Some(&page)).await {
            JobResponse::Queued(jobs) => ids.extend(jobs.iter().map(|j| j.id)),
            other => panic!("not queued: {other:?}"),
        }
    }
    (ids, started.elapsed())
}

async fn drain(n: usize) {
    println!("\n== drain: {n} one-page jobs to 10 callees, one relay ==");
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    // QUEUE_ON_TMPFS=1: the queue on tmpfs too (what the disk's syncs cost).
    let gw1 = match std::env::var_os("QUEUE_ON_TMPFS") {
        Some(_) => {
            let state = tmpfs_dir("queue-state");
            let state = state.to_str().expect("utf-8");
            let mut gw =
                Gateway::start_with(bed.path(), "gw1", &[relay.addr()], &["--state-dir", state]);
            gw.wait_linked();
            gw
        }
        None => bed.queue_gateway("gw1", &relay),
    };
    let gw2 = bed.gateway("gw2", &relay);
    let inbox = tmpfs_dir("queue-drain");
    let mut receivers = Vec::new();
    let callees: Vec<Number> = (0..10)
        .map(|i| format!("20{i:02}").parse().expect("a number"))
        .collect();
    for callee in &callees {
        receivers.push(Receiver::start_in(
            bed.path(),
            bed.fleet(),
            gw2.addr(),
            callee.as_str(),
            inbox.join(callee.as_str()),
            &[],
        ));
    }
    let session = device(&bed, &gw1).await;
    // Far enough ahead that every job is queued before the first call.
    let lead = Duration::from_secs(3 + n as u64 / 200);
    let send_at = now_ms() + lead.as_millis() as u64;
    let (ids, queueing) = submit(&session, n, &callees, send_at).await;
    println!(
        "  queued {n} jobs in {:.2} s ({:.0} jobs/s, each synced to disk before the answer)",
        queueing.as_secs_f64(),
        n as f64 / queueing.as_secs_f64()
    );
    let wait_until = send_at.saturating_sub(now_ms());
    tokio::time::sleep(Duration::from_millis(wait_until)).await;
    let started = Instant::now();
    let from: Number = "1001".parse().expect("a number");
    let done = ask(&session, JobRequest::Wait { from, jobs: ids }, None).await;
    let elapsed = started.elapsed();
    let JobResponse::Jobs(jobs) = done else {
        panic!("no jobs: {done:?}")
    };
    let delivered = jobs
        .iter()
        .filter(|j| j.state == common::jobs::JobState::Done)
        .count();
    let tries: u32 = jobs.iter().map(|j| j.tries).sum();
    let mut reasons = std::collections::BTreeMap::new();
    for j in jobs
        .iter()
        .filter(|j| j.state != common::jobs::JobState::Done)
    {
        *reasons.entry(j.reason.clone()).or_insert(0) += 1;
    }
    for (reason, count) in reasons {
        println!("  not delivered: {count} x {reason}");
    }
    println!(
        "  drained in {:.2} s: {:.0} jobs/s (target >= 500); {delivered} of {n} delivered, {tries} tries",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    if let Some(path) = std::env::var_os("QUEUE_GATEWAY_LOG") {
        let _ = std::fs::write(path, gw1.stderr());
    }
    drop(receivers);
    let _ = std::fs::remove_dir_all(&inbox);
}

async fn memory(n: usize) {
    println!("\n== memory: gatewayd with {n} waiting jobs ==");
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.queue_gateway("gw1", &relay);
    let session = device(&bed, &gw1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = gw1.pid();
    let empty = rss_kib(pid);
    let callees: Vec<Number> = (0..10)
        .map(|i| format!("20{i:02}").parse().expect("a number"))
        .collect();
    let (ids, queueing) = submit(&session, n, &callees, now_ms() + 86_400_000).await;
    // Past the gateway's idle trim (two quiet status ticks of a second).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let full = rss_kib(pid);
    println!(
        "  queued {} jobs in {:.1} s; gatewayd resident: {:.1} MB empty, {:.1} MB with them waiting ({:.2} KB per job; pages stay on disk)",
        ids.len(),
        queueing.as_secs_f64(),
        empty as f64 / 1024.0,
        full as f64 / 1024.0,
        full.saturating_sub(empty) as f64 / ids.len() as f64
    );
}

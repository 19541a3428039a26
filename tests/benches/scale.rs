//! Scale benchmarks (issue 18): many idle TLS links on one relay, and
//! open-loop call latency. A real relayd (and gatewayd) on loopback; links
//! and fax devices driven in process. Prints its figures; asserts nothing
//! about speed.
//!
//!     cargo bench -p faxmesh-tests --bench scale [-- SECTION...]
//!
//! Sections (all by default):
//! - `links`: SCALE_LINKS (default 10,000) idle gateway links over TLS to
//!   one relay, SCALE_IN_FLIGHT (default 128) handshakes at a time, spread
//!   over loopback source addresses (127.0.0.2, .3, ...); then held for
//!   SCALE_HOLD_SECS (default 10) with the relay pinging every
//!   SCALE_HEARTBEAT_SECS (default 2). Prints handshakes per second, the
//!   relay's resident memory per link, and links that missed a heartbeat.
//! - `handshake`: TLS handshakes in memory, both ends in this thread, no
//!   sockets: the links' configurations (AES-128-GCM with SHA-256 first)
//!   against a dialer on ring's own order (AES-256-GCM with SHA-384
//!   first), in alternating rounds of BENCH_HANDSHAKES (default 2,000).
//!   Prints the time per handshake of each: the CPU a handshake costs
//!   both ends together, without the network or the runtime.
//! - `open-loop`: one-page calls started on a fixed schedule (call i at
//!   start + i / rate, whether or not earlier calls finished), each call's
//!   latency measured from its scheduled start, so a stall is charged to
//!   every call it delayed (no coordinated omission). Gateways link to the
//!   relays over TLS. Through one relay at 1,000/s and 2,000/s, then the
//!   highest rate in steps of 500/s (from 500/s) before p99 passes 10 ms;
//!   then through three relays in a line at 1,000/s. Prints the CPU time
//!   each process spent per call and the machine's load average (other
//!   work on the same cores shows up as queueing in the latencies). Each
//!   run lasts BENCH_SECS (default 5); BENCH_PAIRS (default 64) sending
//!   and receiving devices take the calls in turn (a relay allows 8 calls
//!   at once per device, so an overloaded run sees calls refused).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::codec::EncodedPage;
use common::device::send::Outcome;
use common::device::session::Session;
use common::link::control::{self, LinkConfig};
use common::link::message::{Control, Hello, PROTOCOL_VERSION, Role};
use common::link::tls::{self, ClientTls, ServerTls};
use common::link::transport::Scheme;
use common::number::Number;
use harness::images::letter_page;
use harness::load::{self, Secrets, number, rss_kib, settled_rss_kib};
use harness::{Gateway, Pki, Relay, Testbed};
use hdrhistogram::Histogram;

fn main() {
    // The devices run in this process: set the allocator up as faxsend and faxrecv do.
    common::daemon::memory::tune_allocator();
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
        "faxmesh scale benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if wants("links") {
        runtime.block_on(idle_links(LinksPlan::from_env()));
    }
    if wants("handshake") {
        handshakes_in_memory(env_or("BENCH_HANDSHAKES", 2000));
    }
    if wants("open-loop") {
        open_loop(&runtime, env_or("BENCH_SECS", 5), env_or("BENCH_PAIRS", 64));
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `links` section's knobs.
struct LinksPlan {
    links: u64,
    in_flight: usize,
    hold: Duration,
    heartbeat_secs: u64,
}

impl LinksPlan {
    fn from_env() -> LinksPlan {
        LinksPlan {
            links: env_or("SCALE_LINKS", 10_000),
            in_flight: env_or("SCALE_IN_FLIGHT", 128).max(1) as usize,
            hold: Duration::from_secs(env_or("SCALE_HOLD_SECS", 10)),
            heartbeat_secs: env_or("SCALE_HEARTBEAT_SECS", 2).max(1),
        }
    }
}

/// Links from one loopback source address: under the relay's default
/// `max_links_per_address` (64), as from many gateways; and a few hundred
/// sockets per address never come near its ephemeral ports.
const LINKS_PER_ADDRESS: u64 = 50;

/// The `i`-th link's source address: 127.0.0.2 for the first
/// [`LINKS_PER_ADDRESS`], then 127.0.0.3, and so on through 127.x.y.z.
fn source_address(i: u64) -> IpAddr {
    let n = 2 + (i / LINKS_PER_ADDRESS) as u32;
    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | n))
}

/// What the held links saw, counted by their readers.
#[derive(Default)]
struct LinkWatch {
    /// Links the relay closed (or that broke) while held.
    closed: AtomicU64,
    /// Links that went longer than the heartbeat deadline without a ping.
    late: AtomicU64,
    /// Pings answered.
    pings: AtomicU64,
}

/// `links` idle gateway links over TLS to one relay: how fast they open,
/// what each costs the relay in resident memory, and whether any missed a
/// heartbeat while held.
async fn idle_links(plan: LinksPlan) {
    let fds = load::raise_fd_limit();
    // relayd inherits this limit: one descriptor per link on each side.
    if fds < plan.links + 1000 {
        println!(
            "links: skipped: the open-file limit is {fds}, too low for {} links",
            plan.links
        );
        return;
    }
    let bed = Testbed::new();
    let pki = Pki::create(&bed.path().join("pki"));
    let mut flags = pki.relay_flags("r0");
    flags.extend(["--heartbeat-secs".into(), plan.heartbeat_secs.to_string()]);
    let relay = Relay::start_with(bed.path(), bed.fleet(), "r0", &flags);
    let addr = relay.addr().to_string();
    let cfg = LinkConfig {
        default_scheme: Scheme::Tls,
        tls: ClientTls::new(Some(&pki.ca_file())).expect("the fleet CA loads"),
        // Generous: many handshakes queue behind one another at the relay.
        handshake_timeout: Duration::from_secs(30),
        ..LinkConfig::default()
    };
    // The relay idle, after its start-up settled.
    let (idle, _) = settled_rss_kib(&[relay.pid()]).await;
    let idle = idle[0];

    let heartbeat = Duration::from_secs(plan.heartbeat_secs);
    let deadline = heartbeat * control::MISSED_BEATS;
    let watch = Arc::new(LinkWatch::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let mut held = tokio::task::JoinSet::new();
    let started = Instant::now();
    let cpu_before = (load::cpu_secs(relay.pid()), load::cpu_secs(0));
    // At most `in_flight` dials at once; each link, once up, goes on in
    // a task of `held`.
    let mut dials = tokio::task::JoinSet::new();
    let mut next = 0u64;
    let mut failed = 0u64;
    let mut first_error = None;
    loop {
        while next < plan.links && dials.len() < plan.in_flight {
            let (addr, cfg, i) = (addr.clone(), cfg.clone(), next);
            dials.spawn(async move {
                let hello = Hello {
                    version: PROTOCOL_VERSION,
                    role: Role::Gateway,
                    name: format!("bench-gw{i}"),
                };
                control::dial_from(&addr, Some(source_address(i)), hello, &cfg).await
            });
            next += 1;
        }
        let Some(dialed) = dials.join_next().await else {
            break;
        };
        let mut link = match dialed.expect("a dial task ran") {
            Ok(link) => link,
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
                continue;
            }
        };
        let (watch, stop) = (watch.clone(), stop.clone());
        // Each link answers the relay's pings, as a gateway does, and
        // notes a ping that came later than the relay's deadline.
        held.spawn(async move {
            let mut last = tokio::time::Instant::now();
            let mut late = false;
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => {
                        // A link the relay stopped pinging is late too.
                        if !late && last.elapsed() > deadline {
                            watch.late.fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                    msg = link.reader.next() => msg,
                };
                match msg {
                    Ok(Some(Control::Ping { seq })) => {
                        if last.elapsed() > deadline && !late {
                            late = true;
                            watch.late.fetch_add(1, Ordering::Relaxed);
                        }
                        last = tokio::time::Instant::now();
                        watch.pings.fetch_add(1, Ordering::Relaxed);
                        if link.writer.send(&Control::Pong { seq }).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            watch.closed.fetch_add(1, Ordering::Relaxed);
        });
    }
    let opened = started.elapsed();
    let up = plan.links - failed;
    // CPU per link opened, relayd's beside the dialers': the rate alone
    // moves with whatever shares the cores, and with the cores' own speed
    // the two move together, so their ratio tells which side a change helped.
    let per_link_us =
        |pid: u32, before: f64| (load::cpu_secs(pid) - before) * 1e6 / up.max(1) as f64;
    let (relay_us, dialers_us) = (
        per_link_us(relay.pid(), cpu_before.0),
        per_link_us(0, cpu_before.1),
    );
    println!(
        "links: {up} TLS links (handshake and hello) opened in {:.2} s, {} at a time: {:.0} handshakes/s (target >= 2000/s); {failed} failed{}",
        opened.as_secs_f64(),
        plan.in_flight,
        up as f64 / opened.as_secs_f64(),
        first_error
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    let just_after = rss_kib(relay.pid());
    let (settled, _) = settled_rss_kib(&[relay.pid()]).await;
    let loaded = settled[0];
    println!(
        "  CPU per link opened: relayd {relay_us:.0} µs, the dialers (this process) {dialers_us:.0} µs"
    );
    println!(
        "  relayd memory: idle {:.1} MB; with {up} links {:.1} MB ({:.1} MB right after opening): {:.1} KB per link (target <= 10 KB)",
        idle as f64 / 1024.0,
        loaded as f64 / 1024.0,
        just_after as f64 / 1024.0,
        loaded.saturating_sub(idle) as f64 / up.max(1) as f64,
    );
    // Hold them: every link must go on hearing the relay's pings and
    // answering them, or the relay drops it.
    let pings_before = watch.pings.load(Ordering::Relaxed);
    tokio::time::sleep(plan.hold).await;
    let pings = watch.pings.load(Ordering::Relaxed) - pings_before;
    // The relay's log before our links go: every one we close is a "link
    // down" there too.
    let log = relay.stderr();
    let silent = log
        .lines()
        .filter(|l| l.contains("link down") && l.contains("silent"))
        .count();
    let down = log.lines().filter(|l| l.contains("link down")).count();
    stop.cancel();
    while held.join_next().await.is_some() {}
    println!(
        "  held {:.0} s ({:.1} heartbeat periods of {} s): {pings} pings answered ({:.2} per link per period); links closed by the relay {}, links that went over the {} s deadline without a ping {}, relayd 'link down' {down} ({silent} silent) (target 0)",
        plan.hold.as_secs_f64(),
        plan.hold.as_secs_f64() / heartbeat.as_secs_f64(),
        plan.heartbeat_secs,
        pings as f64 / up.max(1) as f64 / (plan.hold.as_secs_f64() / heartbeat.as_secs_f64()),
        watch.closed.load(Ordering::Relaxed),
        deadline.as_secs(),
        watch.late.load(Ordering::Relaxed),
    );
}

/// The `handshake` section.
fn handshakes_in_memory(per_round: u64) {
    use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
    let bed = Testbed::new();
    let pki = Pki::create(&bed.path().join("pki"));
    let (cert, key) = pki.cert("r0");
    let server = ServerTls::load(&cert, &key).expect("the relay's certificate loads");
    let ours = ClientTls::new(Some(&pki.ca_file()))
        .expect("the fleet CA loads")
        .config()
        .expect("the links' client configuration");
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(tls::load_certs(&pki.ca_file()).expect("the CA file"));
    let ring_order = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let name = tls::server_name("127.0.0.1:1").expect("an address");
    // One handshake; returns the suite it agreed on.
    let handshake = |client: &Arc<ClientConfig>| {
        let mut c = rustls::ClientConnection::new(client.clone(), name.clone()).expect("a client");
        let mut s = rustls::ServerConnection::new(server.config()).expect("a server");
        let mut wire = Vec::new();
        while c.is_handshaking() || s.is_handshaking() {
            wire.clear();
            c.write_tls(&mut wire).expect("to memory");
            s.read_tls(&mut wire.as_slice()).expect("from memory");
            s.process_new_packets().expect("the client's flight");
            wire.clear();
            s.write_tls(&mut wire).expect("to memory");
            c.read_tls(&mut wire.as_slice()).expect("from memory");
            c.process_new_packets().expect("the server's flight");
        }
        c.negotiated_cipher_suite().expect("a suite").suite()
    };
    let mut times: [(String, Vec<f64>); 2] = Default::default();
    for _round in 0..4 {
        for (i, client) in [&ours, &ring_order].into_iter().enumerate() {
            let started = Instant::now();
            let mut suite = None;
            for _ in 0..per_round {
                suite = Some(handshake(client));
            }
            let us = started.elapsed().as_secs_f64() * 1e6 / per_round.max(1) as f64;
            times[i].0 = format!("{:?}", suite.expect("at least one handshake"));
            times[i].1.push(us);
        }
    }
    for ((suite, us), who) in times.iter().zip(["links' order", "ring's order"]) {
        let shown: Vec<String> = us.iter().map(|t| format!("{t:.0}")).collect();
        println!(
            "handshake in memory, both ends, {who} ({suite}): {} µs per handshake, in 4 rounds of {per_round}",
            shown.join(", ")
        );
    }
}

/// The open-loop section: one relay at fixed rates and a search for the
/// highest rate with p99 under 10 ms, then three relays in a line.
fn open_loop(runtime: &tokio::runtime::Runtime, secs: u64, pairs: u64) {
    let run_for = Duration::from_secs(secs);
    {
        let bed = Testbed::new();
        let pki = Pki::create(&bed.path().join("pki"));
        let line = tls_relay_line(&bed, &pki, 1);
        let calls = runtime.block_on(CallPath::set_up(&bed, &pki, &line, pairs));
        let what = "through 1 relay, TLS";
        let p1000 = calls.run(runtime, 1000, run_for, what, " (target p99 <= 5 ms)");
        let p2000 = calls.run(runtime, 2000, run_for, what, " (target p99 <= 10 ms)");
        // The highest rate, in steps of 500/s from 500/s, before p99 first
        // passes 10 ms (or a call fails); the runs above are reused.
        const BOUND: Duration = Duration::from_millis(10);
        let mut best = None;
        let mut rate = 500;
        while rate <= 20_000 {
            let good = match rate {
                1000 => p1000.good_under(BOUND),
                2000 => p2000.good_under(BOUND),
                _ => calls
                    .run(runtime, rate, run_for, what, "")
                    .good_under(BOUND),
            };
            if !good {
                break;
            }
            best = Some(rate);
            rate += 500;
        }
        match best {
            Some(rate) => println!(
                "  highest rate with p99 under 10 ms and no failed call, through 1 relay over TLS: {rate}/s (in steps of 500/s)"
            ),
            None => println!(
                "  through 1 relay over TLS, even 500/s did not keep p99 under 10 ms with no failed call"
            ),
        }
        calls.stop();
    }
    let bed = Testbed::new();
    let pki = Pki::create(&bed.path().join("pki"));
    let line = tls_relay_line(&bed, &pki, 3);
    let calls = runtime.block_on(CallPath::set_up(&bed, &pki, &line, pairs));
    calls.run(runtime, 1000, run_for, "through 3 relays, TLS", "");
    calls.stop();
}

/// A line of `n` relays serving TLS, each peered (over TLS) with the one
/// before; returns them once every peer link is up.
fn tls_relay_line(bed: &Testbed, pki: &Pki, n: usize) -> Vec<Relay> {
    let mut relays: Vec<Relay> = Vec::new();
    for i in 0..n {
        let name = format!("r{i}");
        let mut flags = pki.relay_flags(&name);
        if let Some(before) = relays.last() {
            // A bare HOST:PORT: relays dial their peers over TLS.
            flags.extend(["--peer".into(), before.addr().to_string()]);
        }
        let relay = Relay::start_with(bed.path(), bed.fleet(), &name, &flags);
        if let Some(before) = relays.last() {
            relay.wait_peer_up(before.name());
        }
        relays.push(relay);
    }
    relays
}

/// Senders behind a gateway on the first relay of a line, receivers
/// behind a gateway on the last, all logged in and routable.
struct CallPath {
    _gateways: (Gateway, Gateway),
    /// Each process on the path by name (the relays, the gateways, and
    /// this process's devices as pid 0), for the CPU time calls take.
    pids: Vec<(String, u32)>,
    senders: Vec<Arc<Session>>,
    callees: Vec<Number>,
    receivers: Vec<tokio::task::JoinHandle<()>>,
    inbox: std::path::PathBuf,
    page: EncodedPage,
}

/// What one open-loop run measured.
struct RunResult {
    p99: Duration,
    failed: u64,
}

impl RunResult {
    /// p99 under `bound` and every call delivered.
    fn good_under(&self, bound: Duration) -> bool {
        self.p99 < bound && self.failed == 0
    }
}

impl CallPath {
    async fn set_up(bed: &Testbed, pki: &Pki, line: &[Relay], pairs: u64) -> CallPath {
        let (first, last) = (&line[0], &line[line.len() - 1]);
        let tls_gateway = |name: &str, relay: &Relay| {
            let mut gw = Gateway::start_dialing(
                bed.path(),
                name,
                &[relay.addr().to_string()],
                &pki.trust_flags(),
            );
            gw.wait_linked();
            gw
        };
        let (gw_send, gw_recv) = (tls_gateway("gw-send", first), tls_gateway("gw-recv", last));
        let secrets = Secrets::load(bed.fleet().key_file());
        let inbox = load::tmpfs_dir("open-loop");
        let callees: Vec<_> = (0..pairs).map(|i| number(30_000 + i)).collect();
        let receivers = load::spawn_receivers(&[gw_recv.addr()], &callees, &secrets, &inbox).await;
        let numbers: Vec<_> = (0..pairs).map(|i| number(20_000 + i)).collect();
        let senders = load::senders(&[gw_send.addr()], &numbers, &secrets).await;
        // The first relay must route to every callee before calls start.
        tokio::task::block_in_place(|| {
            first.wait_query("directory", |v| {
                v.as_array().is_some_and(|a| {
                    callees.iter().all(|n| {
                        a.iter().any(|e| {
                            e["number"] == n.as_str()
                                && e["online"] == true
                                && !e["next_hop"].is_null()
                        })
                    })
                })
            })
        });
        let pids = line
            .iter()
            .map(|r| (r.name().to_owned(), r.pid()))
            .chain([
                ("gw-send".to_owned(), gw_send.pid()),
                ("gw-recv".to_owned(), gw_recv.pid()),
                ("devices".to_owned(), 0),
            ])
            .collect();
        let path = CallPath {
            _gateways: (gw_send, gw_recv),
            pids,
            senders,
            callees,
            receivers,
            inbox,
            page: letter_page(),
        };
        // Warm up: every pair calls a few times, one call after another.
        let warm = load::call_many(
            path.senders.clone(),
            {
                let callees = path.callees.clone();
                move |i, _| callees[i].clone()
            },
            path.page.clone(),
            load::Calls::Each(3),
        )
        .await;
        if let Some(bad) = warm.iter().find(|r| r.report.result != Outcome::Delivered) {
            panic!("a warm-up call failed: {:?}", bad.report);
        }
        path
    }

    /// Calls at `rate` per second for `duration`, the i-th call from sender
    /// i mod pairs to callee i mod pairs, started at its scheduled time
    /// whether or not earlier calls have ended. Prints and returns the
    /// latencies, each from the call's scheduled start to its final
    /// confirmation.
    fn run(
        &self,
        runtime: &tokio::runtime::Runtime,
        rate: u64,
        duration: Duration,
        what: &str,
        target: &str,
    ) -> RunResult {
        let total = rate * duration.as_secs_f64() as u64;
        // Microseconds, 1 us to 60 s, three significant digits.
        let histogram = Arc::new(Mutex::new(
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
        ));
        let failed = Arc::new(AtomicU64::new(0));
        let first_failure = Arc::new(Mutex::new(None));
        let cpu_before: Vec<f64> = self.pids.iter().map(|(_, p)| load::cpu_secs(*p)).collect();
        let mut calls = tokio::task::JoinSet::new();
        // The schedule runs on a thread of its own: tokio's timer ticks in
        // whole milliseconds, which at 2,000 calls/s would start calls in
        // bursts and charge them up to a millisecond of the bench's own
        // making. A thread's sleep wakes within tens of microseconds.
        let start = Instant::now() + Duration::from_millis(20);
        let handle = runtime.handle().clone();
        let pairs = self.senders.len() as u64;
        for i in 0..total {
            let scheduled = start + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let session = self.senders[(i % pairs) as usize].clone();
            let callee = self.callees[(i % pairs) as usize].clone();
            let page = self.page.clone();
            let (histogram, failed) = (histogram.clone(), failed.clone());
            let first_failure = first_failure.clone();
            calls.spawn_on(
                async move {
                    let report = load::call(&session, &callee, vec![page]).await;
                    let took = scheduled.elapsed();
                    if report.result == Outcome::Delivered {
                        let us = (took.as_micros() as u64).clamp(1, 60_000_000);
                        histogram
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .saturating_record(us);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_failure
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(report);
                    }
                },
                &handle,
            );
        }
        let scheduled_for = start.elapsed();
        runtime.block_on(async { while calls.join_next().await.is_some() {} });
        let h = histogram.lock().unwrap_or_else(|p| p.into_inner());
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        let failed = failed.load(Ordering::Relaxed);
        println!(
            "open-loop {what} at {rate}/s for {:.1} s: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; {} calls completed, {failed} failed{target}",
            scheduled_for.as_secs_f64(),
            ms(0.5),
            ms(0.99),
            ms(0.999),
            h.max() as f64 / 1e3,
            h.len(),
        );
        let cpu: Vec<String> = self
            .pids
            .iter()
            .zip(cpu_before)
            .map(|((name, pid), before)| {
                let per_call = (load::cpu_secs(*pid) - before) / total.max(1) as f64;
                format!("{name} {:.0}", per_call * 1e6)
            })
            .collect();
        // Other work on the machine takes the same cores: its load says how
        // much of the latency is queueing for a CPU.
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "  CPU microseconds per call: {}; machine load average {}",
            cpu.join(", "),
            loadavg
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
        if let Some(report) = first_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            println!("  first failed call: {report:?}");
        }
        RunResult {
            p99: Duration::from_micros(h.value_at_quantile(0.99)),
            failed,
        }
    }

    fn stop(self) {
        for r in self.receivers {
            r.abort();
        }
        let _ = std::fs::remove_dir_all(&self.inbox);
    }
}

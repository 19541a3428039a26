//! Chaos: the fleet in network namespaces under random, seeded faults,
//! with a workload of faxes and a ledger check of the whole history.
//!
//! - [`netns`]: namespaces, veth wires, cuts and `tc` rate limits.
//! - [`cluster`]: 5 relays (ring and chords), 8 gateways, 40 devices, started
//!   in their namespaces; kills, restarts, moves, a full disk.
//! - [`schedule`]: the faults drawn from the seed (pure).
//! - [`workload`]: faxes between random devices, with faxsend `--retries`.
//! - [`ledger`]: the check of what was reported against what was stored.
//!
//! A run ([`run`]): start the fleet and wait until every relay knows every
//! device; record each daemon's memory and open files; send faxes while the
//! schedule's faults come and go; after the last fault, time how long until
//! every relay's directory is right again; let the last faxes finish; check
//! the ledger, scan every log for panics and compare memory and open files.

pub mod cluster;
pub mod delay;
pub mod ledger;
pub mod netns;
pub mod schedule;
pub mod workload;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{Cluster, SHAPE};
use ledger::Verdict;
use schedule::{Event, Fault};
use workload::{Directory, Fax, Workload};

/// The seed of the runs in `tests/chaos.rs` (CI): its minute in mesh mode
/// kills two relays at once, partitions the mesh, fills a disk, slows a
/// link, makes one lossy and a gateway's line long; its 40 s in directory
/// mode lose the Redis master (a unit test checks that the schedule still
/// does).
pub const CI_SEED: u64 = 12;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    /// How long faults come and go (the workload runs as long).
    pub length: Duration,
    /// Faxes in flight at once.
    pub senders: usize,
    pub max_pages: u32,
    /// Directory mode on Redis Sentinel instead of a peered mesh.
    pub directory: bool,
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    pub plan: Plan,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, usize>,
    pub verdict: Verdict,
    /// Faxes sent through a gateway's queue (the rest called at once).
    pub queued: usize,
    /// From the end of the last fault until every relay's directory was right.
    pub convergence: Result<Duration, String>,
    /// Lines with "panicked at" in any daemon's log.
    pub panics: Vec<String>,
    /// Daemons whose memory or open files grew past the bounds.
    pub leaks: Vec<String>,
    /// Each surviving daemon's memory and files, start and end.
    pub resources: Vec<String>,
}

impl Report {
    /// Everything that must not happen, one line each.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self.verdict.violations().into_iter().cloned().collect();
        if let Err(e) = &self.convergence {
            out.push(e.clone());
        }
        out.extend(self.panics.iter().cloned());
        out.extend(self.leaks.iter().cloned());
        out
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.verdict;
        writeln!(
            f,
            "chaos run ({}): seed {}, {} s of faults, {} senders, 1 to {} pages",
            match self.plan.directory {
                true => "directory mode, Redis Sentinel",
                false => "mesh",
            },
            self.plan.seed,
            self.plan.length.as_secs(),
            self.plan.senders,
            self.plan.max_pages
        )?;
        let failed: usize = v.failed.values().sum();
        writeln!(
            f,
            "faxes: {} sent, {} delivered, {} partial, {failed} failed",
            v.delivered + v.partial + failed,
            v.delivered,
            v.partial
        )?;
        for (reason, n) in &v.failed {
            writeln!(f, "  failed, {reason}: {n}")?;
        }
        for line in v.failed_details.iter().take(20) {
            writeln!(f, "    {line}")?;
        }
        writeln!(f, "  through a gateway's queue: {}", self.queued)?;
        writeln!(
            f,
            "  reported failed but whole at the callee: {}",
            v.arrived_unreported
        )?;
        let total: usize = self.faults.values().sum();
        writeln!(f, "faults: {total}")?;
        for (kind, n) in &self.faults {
            writeln!(f, "  {kind}: {n}")?;
        }
        match &self.convergence {
            Ok(d) => writeln!(
                f,
                "directories right {} ms after the last fault",
                d.as_millis()
            )?,
            Err(e) => writeln!(f, "directories: {e}")?,
        }
        writeln!(
            f,
            "ledger: {} lost, {} doubled, {} misrouted, {} damaged",
            v.lost.len(),
            v.doubled.len(),
            v.misrouted.len(),
            v.damaged.len()
        )?;
        writeln!(
            f,
            "panics: {}; leaks: {}",
            self.panics.len(),
            self.leaks.len()
        )?;
        for line in &self.resources {
            writeln!(f, "  {line}")?;
        }
        for line in self.failures() {
            writeln!(f, "FAILURE: {line}")?;
        }
        Ok(())
    }
}

/// How long the directories may take to be right after the last fault
/// before the run counts it as a failure.
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);

/// Runs `plan` in `dir` (which keeps every daemon's logs).
pub fn run(plan: &Plan, dir: &Path) -> Result<Report, String> {
    eprintln!(
        "chaos: seed {} (replay with --seed {})",
        plan.seed, plan.seed
    );
    let mut cluster = Cluster::start(dir, plan.directory)?;
    converge(&cluster, Duration::from_secs(60))
        .map_err(|e| format!("the fleet never came up: {e}"))?;
    let before = resources(&cluster);
    let events = schedule::schedule(plan.seed, plan.length, cluster.shape());
    let directory = Directory {
        devices: Arc::new(Mutex::new(
            cluster
                .devices
                .iter()
                .map(|d| {
                    (
                        d.number.clone(),
                        cluster.fleet.secret_file(&d.number),
                        d.gateway,
                    )
                })
                .collect(),
        )),
        gateway_ns: Arc::new(cluster.gateways.iter().map(|g| g.ns.clone()).collect()),
    };
    let outbox = dir.join("outbox");
    std::fs::create_dir_all(&outbox).map_err(|e| format!("{outbox:?}: {e}"))?;
    let workload = Workload::start(
        plan.seed,
        plan.senders,
        plan.max_pages,
        &outbox,
        directory.clone(),
    );
    let start = Instant::now();
    let mut faults = BTreeMap::new();
    let mut checkpoints = Vec::new();
    let mut next_checkpoint = Duration::from_secs(30);
    let mut checked = 0;
    // Every begin and end, in time order.
    let mut actions: Vec<(Duration, bool, usize)> = events
        .iter()
        .enumerate()
        .flat_map(|(i, e)| [(e.at, true, i), (e.until, false, i)])
        .collect();
    actions.sort();
    for (at, begin, i) in actions {
        while start.elapsed() < at {
            if start.elapsed() > next_checkpoint {
                next_checkpoint += Duration::from_secs(30);
                checkpoints.push(checkpoint(&cluster, &workload, &mut checked));
            }
            std::thread::sleep(Duration::from_millis(20).min(at.saturating_sub(start.elapsed())));
        }
        let event = &events[i];
        if begin {
            *faults.entry(event.fault.kind()).or_insert(0) += 1;
        }
        apply(&mut cluster, event, begin, &directory)?;
    }
    let healed = Instant::now();
    let convergence = converge(&cluster, CONVERGE_LIMIT).map(|()| healed.elapsed());
    while start.elapsed() < plan.length {
        std::thread::sleep(Duration::from_millis(50));
    }
    let faxes = workload.finish();
    let queued = faxes.iter().filter(|f| f.queued).count();
    let inboxes: Vec<_> = cluster
        .devices
        .iter()
        .map(|d| (d.number.clone(), d.inbox.clone()))
        .collect();
    let checking = Instant::now();
    let mut verdict = ledger::check(&faxes, &ledger::scan(&inboxes));
    eprintln!(
        "chaos: ledger of {} faxes checked in {:.1} s",
        faxes.len(),
        checking.elapsed().as_secs_f64()
    );
    for c in checkpoints {
        verdict.lost.extend(c.lost);
        verdict.doubled.extend(c.doubled);
        verdict.misrouted.extend(c.misrouted);
        verdict.damaged.extend(c.damaged);
    }
    let after = resources(&cluster);
    let (leaks, resources) = compare_resources(&before, &after);
    let panics = panics(dir);
    drop(cluster);
    Ok(Report {
        plan: plan.clone(),
        faults,
        verdict,
        queued,
        convergence,
        panics,
        leaks,
        resources,
    })
}

/// A check mid-run, of the faxes finished since the last one (`checked`
/// had ended before it) and only their files: a check of everything so far
/// would grow with the run, and the faults wait while it runs. The final
/// check covers every fax again.
fn checkpoint(cluster: &Cluster, workload: &Workload, checked: &mut usize) -> Verdict {
    let done: Vec<Fax> = workload.finished_since(*checked);
    *checked += done.len();
    let ids: std::collections::HashSet<&str> = done.iter().map(|f| f.call_id.as_str()).collect();
    let inboxes: Vec<_> = cluster
        .devices
        .iter()
        .map(|d| (d.number.clone(), d.inbox.clone()))
        .collect();
    let found: Vec<_> = ledger::scan(&inboxes)
        .into_iter()
        .filter(|f| ids.contains(f.call_id.as_str()))
        .collect();
    let v = ledger::check(&done, &found);
    eprintln!(
        "chaos: checkpoint: {} faxes done ({} since the last), {} violations",
        *checked,
        done.len(),
        v.violations().len()
    );
    v
}

/// Begins or ends one fault.
fn apply(
    cluster: &mut Cluster,
    event: &Event,
    begin: bool,
    directory: &Directory,
) -> Result<(), String> {
    let (at, what) = match begin {
        true => (event.at, "begin"),
        false => (event.until, "end  "),
    };
    eprintln!(
        "chaos: {:>7.1} s {what} {:?}",
        at.as_secs_f64(),
        event.fault
    );
    match (&event.fault, begin) {
        (Fault::KillRelays(rs), true) => rs.iter().for_each(|&r| cluster.kill_relay(r)),
        (Fault::KillRelays(rs), false) => rs.iter().for_each(|&r| cluster.start_relay(r)),
        (Fault::KillGateways(gs), true) => gs.iter().for_each(|&g| cluster.kill_gateway(g)),
        (Fault::KillGateways(gs), false) => gs.iter().for_each(|&g| cluster.start_gateway(g)),
        (Fault::Cut(links), up) => {
            for &l in links {
                cluster.peer_wires[l].set_up(!up)?;
            }
        }
        (Fault::CutGateways(r), up) => {
            for g in (0..SHAPE.gateways).filter(|g| g % SHAPE.relays == *r) {
                cluster.uplinks[g][0].set_up(!up)?;
            }
        }
        (Fault::Slow { link, kbit }, begin) => {
            cluster.peer_wires[*link].limit(begin.then_some(*kbit))?;
        }
        (Fault::Lossy { link, percent }, begin) => {
            cluster.peer_wires[*link].lose(begin.then_some(*percent))?;
        }
        (Fault::LossyUplink { gateway, percent }, begin) => {
            cluster.uplinks[*gateway][0].lose(begin.then_some(*percent))?;
        }
        (Fault::DelayUplink { gateway, ms }, begin) => {
            let ms = if begin { *ms } else { 0 };
            cluster.delay_lines[*gateway].set(Duration::from_millis(ms));
        }
        (Fault::DiskFull(r), full) => cluster.fill_disk(*r, full)?,
        (Fault::Logout(d), true) => cluster.stop_device(*d),
        (Fault::Logout(d), false) => cluster.start_device(*d),
        (Fault::Move { device, to }, true) => {
            cluster.move_device(*device, *to);
            directory.devices.lock().expect("the device table")[*device].2 = *to;
        }
        (Fault::Move { .. }, false) => {}
        (Fault::Isolate(r), cut) => cluster.peer_wires[*r].set_up(!cut)?,
        (Fault::RedisMasterLoss, true) => {
            cluster.dead_master = cluster.redis.as_mut().and_then(|r| r.kill_current_master());
        }
        (Fault::RedisMasterLoss, false) => {
            if let (Some(redis), Some(port)) = (cluster.redis.as_mut(), cluster.dead_master.take())
            {
                redis.start_again(port);
            }
        }
    }
    Ok(())
}

/// Waits until every relay lists every device online, homed at one of its
/// gateway's two relays, with a path; the error says what was still wrong.
fn converge(cluster: &Cluster, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let wrong = directory_errors(cluster);
        if wrong.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not right {} s after the last fault: {}",
                limit.as_secs(),
                wrong.join("; ")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn directory_errors(cluster: &Cluster) -> Vec<String> {
    let mut wrong = Vec::new();
    if let Some(redis) = &cluster.redis {
        for device in &cluster.devices {
            let record = redis.device(&device.number);
            if !right_entry(cluster, device, record.as_ref(), false) {
                wrong.push(format!("Redis has {} as {record:?}", device.number));
            }
        }
        return truncated(wrong);
    }
    for r in 0..SHAPE.relays {
        let entries: Vec<serde_json::Value> =
            serde_json::from_value(crate::relay::query(&cluster.data_dir(r), "directory"))
                .unwrap_or_default();
        for device in &cluster.devices {
            let entry = entries
                .iter()
                .find(|e| e["number"] == device.number.as_str());
            if !right_entry(cluster, device, entry, true) {
                wrong.push(format!(
                    "relay-{r} has {} as {}",
                    device.number,
                    entry.map_or("nothing".to_owned(), |e| e.to_string())
                ));
            }
        }
    }
    truncated(wrong)
}

/// Whether `entry` (a `relayd directory` entry, or a Redis record) has
/// `device` online at its gateway, homed at one of that gateway's relays
/// (and, for a relay's entry, with a path).
fn right_entry(
    cluster: &Cluster,
    device: &cluster::DeviceNode,
    entry: Option<&serde_json::Value>,
    with_path: bool,
) -> bool {
    let gateway = &cluster.gateways[device.gateway];
    let homes = [
        format!("relay-{}", device.gateway % SHAPE.relays),
        format!("relay-{}", (device.gateway + 2) % SHAPE.relays),
    ];
    entry.is_some_and(|e| {
        e["online"] == true
            && (!with_path || !e["next_hop"].is_null())
            && e["gateway"] == gateway.name.as_str()
            && homes.iter().any(|h| e["home_relay"] == h.as_str())
    })
}

/// The first five of `wrong`, and how many more.
fn truncated(mut wrong: Vec<String>) -> Vec<String> {
    if wrong.len() > 5 {
        let more = wrong.len() - 5;
        wrong.truncate(5);
        wrong.push(format!("and {more} more"));
    }
    wrong
}

/// Each relay's and gateway's pid, resident memory (KiB) and open files.
fn resources(cluster: &Cluster) -> Vec<(String, u32, u64, usize)> {
    let daemons = cluster
        .relays
        .iter()
        .map(|r| (&r.name, &r.daemon))
        .chain(cluster.gateways.iter().map(|g| (&g.name, &g.daemon)));
    daemons
        .filter_map(|(name, d)| {
            let pid = d.as_ref()?.pid();
            let files = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
            Some((name.clone(), pid, crate::load::rss_kib(pid), files))
        })
        .collect()
}

/// Daemons that ran the whole run: memory may grow by allocator caches and
/// tables (up to 3 times plus 32 MiB), open files by 16 at most.
fn compare_resources(
    before: &[(String, u32, u64, usize)],
    after: &[(String, u32, u64, usize)],
) -> (Vec<String>, Vec<String>) {
    let mut leaks = Vec::new();
    let mut lines = Vec::new();
    for (name, pid, rss0, files0) in before {
        let Some((_, _, rss1, files1)) = after.iter().find(|a| &a.0 == name && a.1 == *pid) else {
            continue;
        };
        let line = format!(
            "{name} (up all run): {rss0} -> {rss1} KiB resident, {files0} -> {files1} open files"
        );
        if *rss1 > rss0 * 3 + 32 * 1024 || *files1 > files0 + 16 {
            leaks.push(line.clone());
        }
        lines.push(line);
    }
    (leaks, lines)
}

/// Lines of every daemon's and faxsend's log in `dir` that say a thread panicked.
fn panics(dir: &Path) -> Vec<String> {
    let logs = [dir.to_owned(), dir.join("outbox")]
        .into_iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten());
    let mut out = Vec::new();
    for entry in logs {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "stderr") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines().filter(|l| l.contains("panicked at")) {
                out.push(format!("{}: {line}", path.display()));
            }
        }
    }
    out
}

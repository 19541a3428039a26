//! The faults of a run, drawn from its seed before anything starts: the same
//! seed and shape always give the same schedule, so a run can be replayed.
//! Pure: tests check it without namespaces or processes.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the fleet looks like, as far as faults care.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub relays: usize,
    /// Relay-to-relay wires, as (lower, higher) relay indexes.
    pub peer_links: &'static [(usize, usize)],
    pub gateways: usize,
    pub devices: usize,
    /// Directory mode (Redis Sentinel): relays are not peered; each has one
    /// wire to the directory's bridge (wire `r` is relay `r`'s), which also
    /// carries calls between relays.
    pub directory: bool,
}

impl Shape {
    /// Wires a cut or a rate limit can hit.
    fn wires(&self) -> usize {
        match self.directory {
            true => self.relays,
            false => self.peer_links.len(),
        }
    }
}

/// One fault, with what it hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL relays (one or two at once); each restarts when the fault ends.
    KillRelays(Vec<usize>),
    /// SIGKILL gateways (one or two); restarted when the fault ends.
    KillGateways(Vec<usize>),
    /// Relay-to-relay wires cut (ip link down); a partition when they are
    /// every wire between two groups.
    Cut(Vec<usize>),
    /// Every wire from relay `r` to gateways that dial it first: its gateways
    /// must fail over to their second relay.
    CutGateways(usize),
    /// A wire limited to `kbit` (tc tbf): relay-to-relay, or in directory
    /// mode a relay's wire to the directory.
    Slow { link: usize, kbit: u32 },
    /// A wire (as for `Slow`) that drops `percent` of its packets each way
    /// (nftables): TCP retransmits, stalls and times out as on a bad line.
    Lossy { link: usize, percent: u32 },
    /// Gateway `gateway`'s line to its first relay drops `percent` of its
    /// packets each way: an office on a bad line.
    LossyUplink { gateway: usize, percent: u32 },
    /// Gateway `gateway`'s line to its first relay holds everything `ms`
    /// each way (a delay line in front of the relay): a satellite office.
    DelayUplink { gateway: usize, ms: u64 },
    /// Directory mode: relay `r`'s wire to Redis and the other relays cut.
    Isolate(usize),
    /// Directory mode: the Redis master SIGKILLed (Sentinel promotes the
    /// replica); it starts again, empty, when the fault ends.
    RedisMasterLoss,
    /// Relay `r`'s data directory is full.
    DiskFull(usize),
    /// A device logs out (faxrecv stops) and logs in again at the end.
    Logout(usize),
    /// A device moves to another gateway (at the start; the end does nothing).
    Move { device: usize, to: usize },
}

impl Fault {
    /// A short name of the kind, for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::KillRelays(r) if r.len() > 1 => "kill two relays",
            Fault::KillRelays(_) => "kill a relay",
            Fault::KillGateways(g) if g.len() > 1 => "kill two gateways",
            Fault::KillGateways(_) => "kill a gateway",
            Fault::Cut(l) if l.len() > 1 => "partition",
            Fault::Cut(_) => "cut a peer link",
            Fault::CutGateways(_) => "cut a relay from its gateways",
            Fault::Slow { .. } => "slow link",
            Fault::Lossy { .. } => "lossy link",
            Fault::LossyUplink { .. } => "lossy gateway line",
            Fault::DelayUplink { .. } => "long gateway line",
            Fault::Isolate(_) => "cut a relay from the directory",
            Fault::RedisMasterLoss => "redis master loss",
            Fault::DiskFull(_) => "disk full",
            Fault::Logout(_) => "device logout",
            Fault::Move { .. } => "device move",
        }
    }

    /// Whether this cuts the mesh in two.
    pub fn is_partition(&self) -> bool {
        matches!(self, Fault::Cut(l) if l.len() > 1)
    }

    /// Relays this fault takes down or cuts off, for the rule that at most
    /// two relays are out at once (so most of the mesh stays connected).
    fn relays_hit(&self, shape: &Shape) -> Vec<usize> {
        match self {
            Fault::KillRelays(r) => r.clone(),
            Fault::DiskFull(r) | Fault::CutGateways(r) | Fault::Isolate(r) => vec![*r],
            Fault::Cut(links) => links
                .iter()
                .flat_map(|l| {
                    let (a, b) = shape.peer_links[*l];
                    [a, b]
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A fault and when it begins and ends, from the start of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: Duration,
    pub until: Duration,
    pub fault: Fault,
}

/// The faults of a run of `length` with `seed`: one begins every 1.5 to 4 s
/// while fewer than three are active, each lasting 1 to 8 s, and all have
/// ended by `length`. A fault never hits what an active one holds (a killed
/// relay is not cut or filled), and at most two relays are hit at once.
pub fn schedule(seed: u64, length: Duration, shape: &Shape) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events: Vec<Event> = Vec::new();
    let mut t = Duration::from_millis(rng.random_range(1000..3000));
    while t + Duration::from_secs(2) < length {
        let active: Vec<&Event> = events.iter().filter(|e| e.until > t).collect();
        if active.len() < 3 {
            let lasts = Duration::from_millis(rng.random_range(1000..8000));
            let until = (t + lasts).min(length - Duration::from_secs(1));
            for _ in 0..20 {
                let fault = draw(&mut rng, shape);
                if compatible(&fault, &active, shape) {
                    events.push(Event {
                        at: t,
                        until,
                        fault,
                    });
                    break;
                }
            }
        }
        t += Duration::from_millis(rng.random_range(1500..4000));
    }
    events
}

fn draw(rng: &mut StdRng, shape: &Shape) -> Fault {
    let relay = |rng: &mut StdRng| rng.random_range(0..shape.relays);
    // Relay 0 and gateway 0 are never killed (they are cut, slowed and
    // filled like the others): they run the whole run, so their memory and
    // open files at the end tell whether anything leaked.
    let pair = |rng: &mut StdRng, n: usize| {
        let a = rng.random_range(1..n);
        let b = 1 + (a - 1 + rng.random_range(1..n - 1)) % (n - 1);
        vec![a, b]
    };
    match rng.random_range(0..100) {
        0..14 => Fault::KillRelays(vec![rng.random_range(1..shape.relays)]),
        14..20 => Fault::KillRelays(pair(rng, shape.relays)),
        20..32 => Fault::KillGateways(vec![rng.random_range(1..shape.gateways)]),
        32..36 => Fault::KillGateways(pair(rng, shape.gateways)),
        36..46 if shape.directory => Fault::Isolate(relay(rng)),
        36..46 => Fault::Cut(vec![rng.random_range(0..shape.peer_links.len())]),
        46..54 if shape.directory => Fault::RedisMasterLoss,
        46..54 => {
            // Two relays next to each other on the ring against the rest.
            let a = relay(rng);
            let side = [a, (a + 1) % shape.relays];
            let links = (0..shape.peer_links.len())
                .filter(|&l| {
                    let (x, y) = shape.peer_links[l];
                    side.contains(&x) != side.contains(&y)
                })
                .collect();
            Fault::Cut(links)
        }
        54..62 => Fault::CutGateways(relay(rng)),
        // Slow and bad lines each take two draws (a line, one of four
        // grades), as slow links alone once did: a seed's later faults
        // stay where they were.
        62..67 => Fault::Slow {
            link: rng.random_range(0..shape.wires()),
            kbit: [256, 512, 1024, 4096][rng.random_range(0..4)],
        },
        67..72 => {
            let line = rng.random_range(0..shape.wires() + 2 * shape.gateways);
            let grade = rng.random_range(0..4);
            let percent = [2, 5, 10, 20][grade];
            match line.checked_sub(shape.wires()) {
                None => Fault::Lossy {
                    link: line,
                    percent,
                },
                Some(g) if g < shape.gateways => Fault::LossyUplink {
                    gateway: g,
                    percent,
                },
                // One way; a heartbeat (1 s) still arrives inside its 3 s.
                Some(g) => Fault::DelayUplink {
                    gateway: g - shape.gateways,
                    ms: [50, 200, 500, 1000][grade],
                },
            }
        }
        72..80 => Fault::DiskFull(relay(rng)),
        80..92 => Fault::Logout(rng.random_range(0..shape.devices)),
        _ => Fault::Move {
            device: rng.random_range(0..shape.devices),
            to: rng.random_range(0..shape.gateways),
        },
    }
}

/// Whether `fault` may begin while `active` ones hold: faults that hit
/// relays may overlap only on distinct relays, two at most, and never beside
/// a partition; no device, gateway or wire is held by two faults.
fn compatible(fault: &Fault, active: &[&Event], shape: &Shape) -> bool {
    let hit_now: Vec<usize> = active
        .iter()
        .flat_map(|e| e.fault.relays_hit(shape))
        .collect();
    let new = fault.relays_hit(shape);
    if !new.is_empty() && !hit_now.is_empty() {
        if fault.is_partition() || active.iter().any(|e| e.fault.is_partition()) {
            return false;
        }
        if new.iter().any(|r| hit_now.contains(r)) {
            return false;
        }
        let mut all = [hit_now, new].concat();
        all.sort_unstable();
        all.dedup();
        if all.len() > 2 {
            return false;
        }
    }
    let held = |f: &Fault| -> Vec<(u8, usize)> {
        match f {
            Fault::Logout(d) => vec![(0, *d)],
            Fault::Move { device, to } => vec![(0, *device), (1, *to)],
            Fault::KillGateways(g) => g.iter().map(|g| (1, *g)).collect(),
            Fault::Cut(l) => l.iter().map(|l| (2, *l)).collect(),
            Fault::Slow { link, .. } | Fault::Lossy { link, .. } => vec![(2, *link)],
            Fault::Isolate(r) => vec![(2, *r)],
            Fault::RedisMasterLoss => vec![(3, 0)],
            Fault::LossyUplink { gateway, .. } | Fault::DelayUplink { gateway, .. } => {
                vec![(4, *gateway)]
            }
            _ => Vec::new(),
        }
    };
    let mine = held(fault);
    !active
        .iter()
        .any(|e| held(&e.fault).iter().any(|x| mine.contains(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINKS: &[(usize, usize)] = &[(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (0, 2), (1, 3)];
    const SHAPE: Shape = Shape {
        relays: 5,
        peer_links: LINKS,
        gateways: 8,
        devices: 40,
        directory: false,
    };

    #[test]
    fn a_seed_gives_one_schedule() {
        let a = schedule(7, Duration::from_secs(60), &SHAPE);
        assert_eq!(a, schedule(7, Duration::from_secs(60), &SHAPE));
        assert_ne!(a, schedule(8, Duration::from_secs(60), &SHAPE));
        assert!(a.len() >= 10, "only {} faults in a minute", a.len());
    }

    #[test]
    fn faults_end_in_time_and_never_hit_more_than_two_relays() {
        let length = Duration::from_secs(1800);
        for seed in 0..20 {
            let events = schedule(seed, length, &SHAPE);
            for e in &events {
                assert!(e.at < e.until && e.until < length, "{e:?}");
                let active: Vec<&Event> = events
                    .iter()
                    .filter(|o| o.at <= e.at && o.until > e.at)
                    .filter(|o| !o.fault.relays_hit(&SHAPE).is_empty())
                    .collect();
                if active.len() < 2 {
                    continue;
                }
                assert!(
                    active.iter().all(|o| !o.fault.is_partition()),
                    "seed {seed}: a partition beside another relay fault: {active:?}"
                );
                let hit: Vec<usize> = active
                    .iter()
                    .flat_map(|o| {
                        let mut h = o.fault.relays_hit(&SHAPE);
                        h.dedup();
                        h
                    })
                    .collect();
                let mut distinct = hit.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(
                    distinct.len(),
                    hit.len(),
                    "seed {seed}: a relay hit twice: {active:?}"
                );
                assert!(
                    hit.len() <= 2,
                    "seed {seed}: {hit:?} hit at once: {active:?}"
                );
            }
        }
    }

    #[test]
    fn relay_0_and_gateway_0_are_never_killed() {
        for seed in 0..20 {
            for e in schedule(seed, Duration::from_secs(1800), &SHAPE) {
                match &e.fault {
                    Fault::KillRelays(r) | Fault::KillGateways(r) => {
                        assert!(!r.contains(&0), "seed {seed}: {e:?}");
                        assert!(r.len() == 1 || r[0] != r[1], "seed {seed}: {e:?}");
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn a_long_run_has_every_kind_of_fault() {
        let events = schedule(1, Duration::from_secs(1800), &SHAPE);
        let mut kinds: Vec<&str> = events.iter().map(|e| e.fault.kind()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        // Every kind but the two of directory mode.
        assert_eq!(kinds.len(), 14, "{kinds:?}");
    }

    #[test]
    fn directory_mode_loses_its_master_and_isolates_relays_but_cuts_no_peer_link() {
        let shape = Shape {
            peer_links: &[],
            directory: true,
            ..SHAPE
        };
        let events = schedule(1, Duration::from_secs(1800), &shape);
        let mut kinds: Vec<&str> = events.iter().map(|e| e.fault.kind()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert!(kinds.contains(&"redis master loss"), "{kinds:?}");
        assert!(
            kinds.contains(&"cut a relay from the directory"),
            "{kinds:?}"
        );
        assert!(
            !events.iter().any(|e| matches!(e.fault, Fault::Cut(_))),
            "{kinds:?}"
        );
        assert!(events.iter().all(|e| match e.fault {
            Fault::Slow { link, .. } | Fault::Lossy { link, .. } => link < 5,
            _ => true,
        }));
    }

    #[test]
    fn the_ci_seed_kills_partitions_fills_and_loses_the_redis_master() {
        let kinds = |shape: &Shape, secs| {
            let events = schedule(crate::chaos::CI_SEED, Duration::from_secs(secs), shape);
            let mut kinds: Vec<&str> = events.iter().map(|e| e.fault.kind()).collect();
            kinds.sort_unstable();
            kinds.dedup();
            kinds
        };
        let mesh = kinds(&SHAPE, 60);
        for kind in [
            "kill two relays",
            "kill a gateway",
            "partition",
            "disk full",
            "slow link",
            "lossy link",
            "long gateway line",
        ] {
            assert!(mesh.contains(&kind), "{kind} not in {mesh:?}");
        }
        let shape = Shape {
            peer_links: &[],
            directory: true,
            ..SHAPE
        };
        let directory = kinds(&shape, 40);
        for kind in [
            "redis master loss",
            "kill two relays",
            "cut a relay from the directory",
        ] {
            assert!(directory.contains(&kind), "{kind} not in {directory:?}");
        }
    }

    #[test]
    fn a_partition_cuts_exactly_the_wires_across() {
        let events = schedule(3, Duration::from_secs(1800), &SHAPE);
        let cut = events
            .iter()
            .find_map(|e| match &e.fault {
                Fault::Cut(l) if l.len() > 1 => Some(l.clone()),
                _ => None,
            })
            .expect("a partition in half an hour");
        // Two neighbours on the ring have 4 wires to the other three
        // (ring 2, chords 1 or 2): 3 or 4.
        assert!((3..=4).contains(&cut.len()), "{cut:?}");
    }
}

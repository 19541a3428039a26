//! The chaos run CI makes (issue 19): one minute of seeded faults on a fleet
//! of 5 relays, 8 gateways and 40 devices in network namespaces, with faxes
//! all along; then nothing lost, doubled, misrouted or damaged, every
//! relay's directory right again, no panic, no leak. The half-hour run is
//! `cargo bench -p faxmesh-tests --bench chaos`.

use std::sync::Mutex;
use std::time::Duration;

use harness::chaos::{Plan, run};

/// The seed CI replays: a failure here is replayed with
/// `cargo bench -p faxmesh-tests --bench chaos -- --seed 12 --secs 60`.
const SEED: u64 = harness::chaos::CI_SEED;

#[test]
fn a_minute_of_faults_loses_doubles_and_misroutes_nothing() {
    run_and_check(Plan {
        seed: SEED,
        length: Duration::from_secs(60),
        senders: 6,
        max_pages: 20,
        directory: false,
    });
}

/// The same in directory mode: relays not peered, sharing a Redis watched
/// by Sentinel, whose master is lost and comes back empty; replayed with
/// `... --bench chaos -- --directory --seed 12 --secs 40`.
#[test]
fn directory_mode_under_faults_and_redis_master_loss_loses_nothing() {
    run_and_check(Plan {
        seed: SEED,
        length: Duration::from_secs(40),
        senders: 6,
        max_pages: 20,
        directory: true,
    });
}

/// Both runs would share the two cores: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run_and_check(plan: Plan) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::Builder::new()
        .prefix("faxmesh-chaos-")
        .tempdir()
        .expect("a temp dir");
    let report = run(&plan, dir.path()).unwrap_or_else(|e| panic!("{e}"));

    println!("{report}");
    let failures = report.failures();
    if !failures.is_empty() {
        panic!(
            "the chaos run failed (logs kept in {}):\n{report}",
            dir.keep().display()
        );
    }
    let v = &report.verdict;
    assert!(
        v.delivered >= 10,
        "too few faxes delivered to mean anything:\n{report}"
    );
    assert!(
        report.faults.values().sum::<usize>() >= 10,
        "too few faults:\n{report}"
    );
}

//! The chaos run CI makes (issue 19): one minute of seeded faults on a fleet
//! of 5 relays, 8 gateways and 40 devices in network namespaces, with faxes
//! all along; then nothing lost, doubled, misrouted or damaged, every
//! relay's directory right again, no panic, no leak. The half-hour run is
//! `cargo bench -p faxmesh-tests --bench chaos`.

use std::time::Duration;

use harness::chaos::{Plan, run};

/// The seed CI replays: a failure here is replayed with
/// `cargo bench -p faxmesh-tests --bench chaos -- --seed 19 --secs 60`.
const SEED: u64 = 19;

#[test]
fn a_minute_of_faults_loses_doubles_and_misroutes_nothing() {
    let dir = tempfile::Builder::new()
        .prefix("faxmesh-chaos-")
        .tempdir()
        .expect("a temp dir");
    let plan = Plan {
        seed: SEED,
        length: Duration::from_secs(60),
        senders: 6,
        max_pages: 20,
    };
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

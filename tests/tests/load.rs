//! Load at CI scale: 1,000 devices logged in across six gateways and three
//! relays (real processes), 100 calls in flight at once, and every call
//! delivered and on the callee's disk. The devices run in this process
//! (harness::load). The full scale (10,000 devices, 1,000 calls at once) is
//! the `load` section of the network benchmark.

use std::collections::BTreeSet;

use common::codec::{Compression, Resolution, encode};
use common::device::send::Outcome;
use harness::images::text_bitmap;
use harness::load::{self, Calls, Secrets, number};
use harness::{Gateway, Relay, Testbed};

const GATEWAYS_PER_RELAY: usize = 2;
const RECEIVERS: u64 = 900;
const SENDERS: u64 = 100;
const CALLS_EACH: usize = 10;
const FIRST_RECEIVER: u64 = 300_000;
const FIRST_SENDER: u64 = 200_000;

/// Three relays, each peered with the others, and their gateways.
fn network(bed: &Testbed) -> (Vec<Relay>, Vec<Gateway>) {
    let r0 = bed.relay("r0");
    let r1 = bed.peered_relay("r1", &[&r0]);
    let r2 = bed.peered_relay("r2", &[&r0, &r1]);
    let relays = vec![r0, r1, r2];
    let gateways = relays
        .iter()
        .flat_map(|r| (0..GATEWAYS_PER_RELAY).map(move |k| (r, k)))
        .map(|(r, k)| bed.gateway(&format!("gw-{}-{k}", r.name()), r))
        .collect();
    (relays, gateways)
}

/// The i-th sender's k-th call: a callee behind another gateway each time,
/// and every receiver called about as often.
fn callee(i: usize, k: usize) -> common::number::Number {
    number(FIRST_RECEIVER + ((i * 9 + k * 301) as u64 % RECEIVERS))
}

#[test]
fn a_thousand_devices_logged_in_and_a_hundred_calls_at_once_all_delivered() {
    let fds = load::raise_fd_limit();
    assert!(
        fds > 2 * (RECEIVERS + SENDERS),
        "this test needs a socket per device; the open-file limit is {fds}"
    );
    let bed = Testbed::new();
    let (relays, gateways) = network(&bed);
    let addrs: Vec<_> = gateways.iter().map(|g| g.addr()).collect();
    let secrets = Secrets::load(bed.fleet().key_file());
    let inbox = load::tmpfs_dir("load-test");
    let receivers: Vec<_> = (0..RECEIVERS).map(|i| number(FIRST_RECEIVER + i)).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let _answering = rt.block_on(load::spawn_receivers(&addrs, &receivers, &secrets, &inbox));
    for relay in &relays {
        relay.wait_query("directory", |v| {
            let routable = v.as_array().map_or(0, |a| {
                a.iter()
                    .filter(|e| e["online"] == true && !e["next_hop"].is_null())
                    .count()
            });
            routable == RECEIVERS as usize
        });
    }
    let page = encode(
        &text_bitmap(3, 1728, 600, Resolution::Fine),
        Compression::G4,
    )
    .expect("the page encodes");
    let senders: Vec<_> = (0..SENDERS).map(|i| number(FIRST_SENDER + i)).collect();

    let results = rt.block_on(async {
        let senders = load::senders(&addrs, &senders, &secrets).await;
        load::call_many(senders, callee, page, Calls::Each(CALLS_EACH)).await
    });

    let failed: Vec<_> = results
        .iter()
        .filter(|r| r.report.result != Outcome::Delivered)
        .map(|r| &r.report)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed; the first: {:#?}",
        failed.len(),
        results.len(),
        &failed[..failed.len().min(3)]
    );
    assert_eq!(results.len(), SENDERS as usize * CALLS_EACH);
    // Every delivered call is one complete fax on disk, for its callee.
    let on_disk: BTreeSet<String> = std::fs::read_dir(&inbox)
        .expect("the inbox lists")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for r in &results {
        let id = r.report.call_id.to_string();
        assert!(
            on_disk.contains(&format!("{id}.tif")),
            "no fax for call {id}"
        );
        let json = inbox.join(format!("{id}.json"));
        let record: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{json:?}: {e}")),
        )
        .unwrap_or_else(|e| panic!("{json:?}: {e}"));
        assert_eq!(record["callee"], r.report.to.to_string(), "{json:?}");
        assert_eq!(record["caller"], r.report.from.to_string(), "{json:?}");
    }
    assert_eq!(on_disk.len(), 2 * results.len(), "stray files: {on_disk:?}");
    let mut times: Vec<_> = results.iter().map(|r| r.took).collect();
    eprintln!(
        "{} calls delivered, p99 {:?}",
        results.len(),
        load::quantile(&mut times, 0.99)
    );
    let _ = std::fs::remove_dir_all(&inbox);
}

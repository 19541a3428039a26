//! Backpressure end to end: a callee on a slow line (`faxrecv
//! --read-rate-kib`) slows its own call and nothing else, and no gateway or
//! relay between it and the caller holds more than a few windows of its fax.
//!
//! The big fax comes from the sending device in process (the library
//! faxsend is built on): its pages are made once and cloned, where faxsend
//! would decode and encode 20 MB of noise first. Everything else is the real
//! binaries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::codec::read_pages;
use common::device::send::{Outcome, SendOptions, SendProgress, send_fax};
use common::number::CallId;
use harness::images::noise_page;
use harness::load::{self, Secrets, number, rss_kib};
use harness::{Daemon, Testbed};

/// Pages of the slow fax, each about 0.9 MB of Group 4 noise.
const PAGES: usize = 20;
const ROWS: u32 = 2200;
/// The slow line: 4 MiB/s, so the fax takes about five seconds.
const SLOW_KIB: &str = "4096";
/// What a gateway or relay may grow by while it carries the slow fax: a few
/// flow-control windows (256 KiB per stream and hop) and splice buffers,
/// far less than the fax.
const GROWTH_BOUND_KIB: u64 = 8 * 1024;
/// Pages the sender may be ahead of the callee's confirmations: what the
/// windows of four hops and one page being stored hold, with room to spare.
const MAX_PAGES_AHEAD: u32 = 6;

/// Counts pages sent and confirmed, and the most the sender was ever ahead.
#[derive(Default)]
struct Ahead {
    sent: AtomicU32,
    confirmed: AtomicU32,
    most: AtomicU32,
}

impl SendProgress for Ahead {
    fn page_sent(&self, _index: u32) {
        let sent = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let ahead = sent.saturating_sub(self.confirmed.load(Ordering::SeqCst));
        self.most.fetch_max(ahead, Ordering::SeqCst);
    }
    fn page_confirmed(&self, _index: u32) {
        self.confirmed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Resident memory of each daemon now, in KiB.
fn rss(daemons: &[&Daemon]) -> Vec<u64> {
    daemons.iter().map(|d| rss_kib(d.pid())).collect()
}

#[test]
fn a_slow_callee_slows_only_its_own_call_and_no_daemon_holds_its_fax() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut slow = bed.receiver(&gw2, "1002", &["--read-rate-kib", SLOW_KIB]);
    let mut fast = bed.receiver(&gw2, "1003", &[]);
    relay.wait_route("1002", &["relay-a"]);
    relay.wait_route("1003", &["relay-a"]);
    let page = noise_page(7, ROWS);
    let pages = vec![page.clone(); PAGES];
    let fax_kib = (page.data.len() * PAGES / 1024) as u64;
    assert!(
        fax_kib > 2 * GROWTH_BOUND_KIB,
        "the fax is only {fax_kib} KiB"
    );

    let daemons = [&*relay, &*gw1, &*gw2];
    let before = rss(&daemons);
    let ahead = Arc::new(Ahead::default());
    let progress = ahead.clone();
    let secrets = Secrets::load(bed.fleet().key_file());
    let gateway = gw1.addr();
    let slow_call = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let session = load::sender(gateway, &number(1001), &secrets).await;
            let to = number(1002);
            send_fax(
                &session,
                CallId::random(),
                &to,
                pages,
                &SendOptions::default(),
                progress,
            )
            .await
        })
    });
    let mut peak = before.clone();
    let sample = |peak: &mut Vec<u64>| {
        for (p, now) in peak.iter_mut().zip(rss(&daemons)) {
            *p = (*p).max(now);
        }
    };
    // The slow fax is under way: its first page is confirmed.
    while ahead.confirmed.load(Ordering::SeqCst) == 0 {
        assert!(
            !slow_call.is_finished(),
            "the slow call ended before its first page"
        );
        sample(&mut peak);
        std::thread::sleep(Duration::from_millis(10));
    }

    // A call to another device behind the same gateways goes through meanwhile.
    bed.faxsend(&gw1, "1004", "1003", &[bed.note()])
        .run()
        .assert_delivered();
    fast.wait_faxes(1);
    assert!(
        !slow_call.is_finished() && slow.files_ending(".json").is_empty(),
        "the slow fax was already complete when the fast one arrived: nothing was slow"
    );

    while !slow_call.is_finished() {
        sample(&mut peak);
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = slow_call.join().expect("the slow call's thread");
    assert_eq!(report.result, Outcome::Delivered, "{report:?}");
    assert_eq!(report.pages_confirmed, PAGES as u32, "{report:?}");
    let most_ahead = ahead.most.load(Ordering::SeqCst);
    eprintln!(
        "slow fax {fax_kib} KiB: sender at most {most_ahead} pages ahead; KiB before {before:?}, peak {peak:?} (relay, gw1, gw2)"
    );
    assert!(
        most_ahead <= MAX_PAGES_AHEAD,
        "the sender got {most_ahead} pages ahead of the slow callee: something buffered them"
    );
    for ((daemon, before), peak) in daemons.iter().zip(&before).zip(&peak) {
        let grew = peak.saturating_sub(*before);
        assert!(
            grew <= GROWTH_BOUND_KIB,
            "{} grew by {grew} KiB (from {before} KiB) carrying a {fax_kib} KiB fax to a slow callee",
            daemon.name()
        );
    }
    let faxes = slow.wait_faxes(1);
    let stored = read_pages(&faxes[0]).expect("the slow fax reads back");
    assert_eq!(stored.len(), PAGES);
    assert!(
        stored.iter().all(|p| p.data == page.data),
        "a page changed on the way"
    );
}

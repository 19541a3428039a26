//! Faults in the middle of a call: a relay or a gateway killed (SIGKILL),
//! the callee's disk full or its directory gone. Each ends with a clear
//! result at faxsend in bounded time (the harness fails a run that hangs),
//! leaves no partial file that looks like a fax, and the daemons go on
//! serving: a retry of the same call id resumes at the first missing page.
//!
//! "Mid-call" is made certain, not waited for: faxrecv `--pause-at-page N`
//! stores page N and holds its confirmation until SIGUSR1, saying so in its
//! status. So when a fault strikes, the callee holds pages 1..N on disk and
//! the caller has seen 1..N-1 confirmed.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::images::{assert_same_pages, read_fax, sent_pages};
use harness::{Gateway, Receiver, Sent, Testbed};

/// The call id of every faulty call: a retry gives it again.
const CALL_ID: &str = "00000000000000000000000000c0ffee";

/// faxsend from 1001 through `gw1` to 1002 as [`CALL_ID`], with `--json`.
fn send(bed: &Testbed, gw1: &Gateway, document: &Path) -> harness::FaxSend {
    bed.faxsend(gw1, "1001", "1002", &[document.to_owned()])
        .args(["--json", "--call-id", CALL_ID])
}

/// Starts a call of `document` to `callee` (started with `--pause-at-page
/// page`), runs `fault` once the callee holds page `page`, lets the callee
/// go on, and returns what faxsend said.
#[track_caller]
fn fault_mid_call(
    bed: &Testbed,
    gw1: &Gateway,
    callee: &mut Receiver,
    document: &Path,
    page: u32,
    fault: impl FnOnce(),
) -> Sent {
    let running = send(bed, gw1, document).spawn();
    let status = callee.wait_paused(page);
    assert!(status.contains(CALL_ID), "{status}");
    fault();
    callee.release();
    running.wait()
}

/// What the callee kept of the cut call, in `inbox`: either a
/// `<call id>.tif.part` holding exactly the first pages of `document`, or
/// (when every page and the end of the document were already on their way
/// to it when the path broke) the complete fax. Never anything else, never
/// a `.tif` that is not the whole fax.
#[track_caller]
fn pages_kept(inbox: &Path, document: &Path) -> Kept {
    let part = inbox.join(format!("{CALL_ID}.tif.part"));
    let tif = inbox.join(format!("{CALL_ID}.tif"));
    let mut all: Vec<PathBuf> = std::fs::read_dir(inbox)
        .expect("the inbox")
        .map(|e| e.expect("an entry").path())
        .collect();
    all.sort();
    let mut want = sent_pages(&[document.to_owned()]);
    if all == [tif.with_extension("json"), tif.clone()] {
        assert_same_pages(&read_fax(&tif), &want);
        return Kept {
            pages: want.len() as u32,
            complete: true,
        };
    }
    assert_eq!(
        all,
        std::slice::from_ref(&part),
        "only the .part file is left"
    );
    let got = read_fax(&part);
    want.truncate(got.len());
    assert_same_pages(&got, &want);
    Kept {
        pages: got.len() as u32,
        complete: false,
    }
}

/// What a callee kept of a cut call.
#[derive(Debug, Clone, Copy)]
struct Kept {
    pages: u32,
    /// The whole fax, .tif and .json.
    complete: bool,
}

/// The retry of [`CALL_ID`] after the fault is repaired: delivered, the
/// callee having kept what `kept` says, so only the rest went out.
#[track_caller]
fn assert_retry_resumes(
    bed: &Testbed,
    gw1: &Gateway,
    callee: &mut Receiver,
    document: &Path,
    kept: Kept,
) {
    let held = kept.pages;
    let sent = send(bed, gw1, document).run();
    sent.assert_delivered();
    let attempt = &sent.attempts()[0];
    let total = sent.report()["pages_total"].as_u64().expect("pages_total") as u32;
    assert_eq!(attempt["pages_held"], held, "{sent}");
    assert_eq!(attempt["pages_sent"], total - held, "{sent}");
    let tif = callee.assert_one_fax(CALL_ID, document);
    if !kept.complete {
        assert_eq!(callee.record(&tif)["pages_resumed"], held);
    }
}

/// Waits until faxrecv is done with the cut call (the line is free again).
#[track_caller]
fn wait_call_over(callee: &Receiver) {
    callee.wait_stderr_contains_any(&["fax incomplete", "fax received"]);
}

#[test]
fn relay_killed_mid_call_the_callee_fails_over_and_a_retry_resumes() {
    let bed = Testbed::new();
    let a = bed.relay("relay-a");
    let mut b = bed.peered_relay("relay-b", &[&a]);
    let c = bed.peered_relay("relay-c", &[&a]);
    let gw1 = bed.gateway("gw1", &a);
    // The callee's gateway prefers relay-b and fails over to relay-c.
    let mut gw2 = Gateway::start(bed.path(), "gw2", &[b.addr(), c.addr()]);
    gw2.wait_linked();
    let mut callee = bed.receiver(&gw2, "1002", &["--pause-at-page", "2"]);
    a.wait_route("1002", &["relay-b"]);
    let document = bed.document(3);

    let running = send(&bed, &gw1, &document)
        .args([
            "--retries",
            "50",
            "--retry-interval",
            "0.1",
            "--retry-backoff",
            "1",
        ])
        .spawn();
    callee.wait_paused(2);
    b.kill();
    gw2.wait_status_contains("linked to relay relay-c");
    callee.release();
    let sent = running.wait();

    sent.assert_delivered();
    let attempts = sent.attempts();
    // The callee confirmed page 1 before it paused, but that confirmation
    // may still have been crossing relay-b when it died (seen in CI): then
    // the caller counts none, and the cut is "link lost", not "partial".
    match attempts[0]["result"].as_str() {
        Some("partial") => assert_eq!(attempts[0]["pages_confirmed"], 1, "{sent}"),
        Some("link_lost") => assert_eq!(attempts[0]["pages_confirmed"], 0, "{sent}"),
        other => panic!("the first attempt ended {other:?}: {sent}"),
    }
    let last = attempts.last().expect("attempts");
    // Page 2 was on the callee's disk, unconfirmed (and page 3 too, when
    // it was in the callee's buffers before the cut): only the rest went again.
    let held = last["pages_held"].as_u64().expect("the callee answered");
    assert!(held >= 2, "{sent}");
    assert_eq!(last["pages_sent"], 3 - held, "{sent}");
    assert_eq!(
        last["via"],
        serde_json::json!(["relay-a", "relay-c"]),
        "{sent}"
    );
    callee.assert_one_fax(CALL_ID, &document);

    // The survivors serve other calls.
    let _other = bed.receiver(&gw2, "1003", &[]);
    a.wait_route("1003", &["relay-c"]);
    bed.faxsend(&gw1, "1001", "1003", &[bed.note()])
        .run()
        .assert_delivered();
}

#[test]
fn middle_relay_of_a_line_killed_mid_call_then_restarted() {
    let bed = Testbed::new();
    let a = bed.relay("relay-a");
    let mut b = bed.peered_relay("relay-b", &[&a]);
    let c = bed.peered_relay("relay-c", &[&b]);
    let gw1 = bed.gateway("gw1", &a);
    let gw2 = bed.gateway("gw2", &c);
    let mut callee = bed.receiver(&gw2, "1002", &["--pause-at-page", "2"]);
    a.wait_route("1002", &["relay-b", "relay-c"]);
    let document = bed.document(3);

    let sent = fault_mid_call(&bed, &gw1, &mut callee, &document, 2, || {
        b.kill();
    });

    sent.assert_cut_short();
    // Page 2's confirmation is held by the pause; page 1's may still have
    // been on its way through relay-b when it died.
    let confirmed = sent.report()["pages_confirmed"].as_u64();
    assert!(matches!(confirmed, Some(0 | 1)), "{sent}");
    wait_call_over(&callee);
    let kept = pages_kept(callee.inbox(), &document);
    assert!(kept.pages >= 2, "pages 1-2 were stored before the fault");

    b.start_again();
    a.wait_route("1002", &["relay-b", "relay-c"]);
    assert_retry_resumes(&bed, &gw1, &mut callee, &document, kept);
}

#[test]
fn callee_gateway_killed_mid_call_then_restarted() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let mut gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &["--pause-at-page", "2"]);
    let document = bed.document(3);

    let sent = fault_mid_call(&bed, &gw1, &mut callee, &document, 2, || {
        gw2.kill();
    });

    sent.assert_cut_short();
    wait_call_over(&callee);
    let kept = pages_kept(callee.inbox(), &document);
    assert!(kept.pages >= 2, "pages 1-2 were stored before the fault");

    gw2.start_again();
    callee.wait_status_contains("logged in as 1002");
    assert_retry_resumes(&bed, &gw1, &mut callee, &document, kept);
}

#[test]
fn caller_gateway_killed_mid_call_then_restarted() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let mut gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &["--pause-at-page", "2"]);
    let document = bed.document(3);

    let running = send(&bed, &gw1, &document).spawn();
    callee.wait_paused(2);
    gw1.kill();
    callee.release();
    let sent = running.wait();

    sent.assert_cut_short();
    wait_call_over(&callee);
    let kept = pages_kept(callee.inbox(), &document);
    assert!(kept.pages >= 2, "pages 1-2 were stored before the fault");

    gw1.start_again();
    gw1.wait_linked();
    assert_retry_resumes(&bed, &gw1, &mut callee, &document, kept);
}

/// Sets faxrecv's soft file size limit (`prlimit`, util-linux).
fn limit_file_size(pid: u32, limit: &str) {
    let out = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={limit}:"))
        .output()
        .expect("prlimit (util-linux) runs");
    assert!(out.status.success(), "prlimit: {out:?}");
}

/// A full disk, as the callee sees it: a write that fails. Mounting a tiny
/// tmpfs needs privileges a CI container lacks, so the callee's file size
/// limit (RLIMIT_FSIZE) is set to what its file holds: the next page's
/// write fails (EFBIG) just as it would with no space left.
#[test]
fn callee_disk_full_mid_call_then_space_freed() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &["--pause-at-page", "1"]);
    let document = bed.document(3);
    let part = callee.inbox().join(format!("{CALL_ID}.tif.part"));
    let pid = callee.pid();

    let sent = fault_mid_call(&bed, &gw1, &mut callee, &document, 1, || {
        let full = std::fs::metadata(&part).expect("the .part file").len();
        limit_file_size(pid, &full.to_string());
    });

    sent.assert_failed(
        9,
        &["partial delivery", "cannot store page 2", "File too large"],
    );
    assert_eq!(sent.report()["pages_confirmed"], 1, "{sent}");
    wait_call_over(&callee);
    assert!(callee.is_running(), "a full disk must not stop faxrecv");
    let kept = pages_kept(callee.inbox(), &document);
    assert_eq!(kept.pages, 1);

    limit_file_size(pid, "unlimited");
    assert_retry_resumes(&bed, &gw1, &mut callee, &document, kept);
}

/// The callee's directory goes away mid-call (replaced by a file: as root,
/// permission bits would not stop faxrecv). The last page is stored in the
/// open file, but the fax cannot be completed; a new call is refused; once
/// the directory is back, a retry completes the fax without sending a page.
#[test]
fn callee_directory_gone_mid_call_then_restored() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &["--pause-at-page", "3"]);
    let document = bed.document(3);
    let inbox = callee.inbox().to_owned();
    let moved = inbox.with_extension("moved");

    let sent = fault_mid_call(&bed, &gw1, &mut callee, &document, 3, || {
        std::fs::rename(&inbox, &moved).expect("move the inbox away");
        std::fs::write(&inbox, b"not a directory").expect("a file in its place");
    });

    sent.assert_failed(9, &["partial delivery", "cannot complete the fax"]);
    assert_eq!(sent.report()["pages_confirmed"], 3, "{sent}");
    wait_call_over(&callee);
    let kept = pages_kept(&moved, &document);
    assert_eq!((kept.pages, kept.complete), (3, false));

    // Meanwhile a new fax is refused, saying why.
    let refused = bed.faxsend(&gw1, "1001", "1002", &[bed.note()]).run();
    refused.assert_failed(8, &["rejected", "cannot store faxes"]);

    std::fs::remove_file(&inbox).expect("remove the file");
    std::fs::rename(&moved, &inbox).expect("put the inbox back");
    assert_retry_resumes(&bed, &gw1, &mut callee, &document, kept);
}

//! faxsend --retries: what is redialed and what is not, a cut fax resumed
//! from its first missing page, and a retry of a delivered fax confirmed
//! without a second copy.

use harness::images::read_fax;
use harness::{Gateway, Relay, Testbed};

/// relay-a with a gateway for callers (gw1) and one for callees (gw2).
fn network(bed: &Testbed) -> (Relay, Gateway, Gateway) {
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    (relay, gw1, gw2)
}

#[test]
fn a_cut_fax_is_resumed_from_its_first_missing_page() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    // Hangs up after confirming page 2 of a fax; a resumed fax never
    // confirms its page 2 again, so the retry goes through.
    let mut callee = bed.receiver(&gw2, "1002", &["--hangup-after-page", "2"]);
    let document = bed.document(4);

    let sent = bed
        .faxsend(&gw1, "1001", "1002", std::slice::from_ref(&document))
        .args(["--json", "--retries", "1", "--retry-interval", "0"])
        .run();

    sent.assert_delivered();
    let attempts = sent.attempts();
    assert_eq!(attempts.len(), 2, "{sent}");
    assert_eq!(attempts[0]["result"], "partial", "{sent}");
    assert_eq!(attempts[0]["pages_held"], 0, "{sent}");
    assert_eq!(attempts[0]["pages_confirmed"], 2, "{sent}");
    // The retry: the callee held pages 1-2, only 3-4 went out.
    assert_eq!(attempts[1]["result"], "delivered", "{sent}");
    assert_eq!(attempts[1]["pages_held"], 2, "{sent}");
    assert_eq!(attempts[1]["pages_sent"], 2, "{sent}");
    assert_eq!(attempts[1]["pages_confirmed"], 2, "{sent}");
    let report = sent.report();
    assert_eq!(report["pages_confirmed"], 4, "{sent}");
    assert!(
        sent.stderr.contains("attempt 1 of 2: partial delivery")
            && sent
                .stderr
                .contains("2 of 4 pages on the callee; redialing"),
        "one line per retry on stderr; {sent}"
    );

    let call_id = report["call_id"].as_str().expect("a call id").to_owned();
    let tif = callee.assert_one_fax(&call_id, &document);
    assert_eq!(callee.record(&tif)["pages"], 4);
    assert_eq!(
        callee.record(&tif)["pages_resumed"],
        2,
        "the callee kept pages 1-2"
    );
    callee.wait_stdout_contains("received 4 pages (2 held from an earlier attempt)");
}

#[test]
fn a_retry_of_a_delivered_fax_is_confirmed_without_a_second_copy() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    let document = bed.document(2);
    let call_id = "0123456789abcdef0123456789abcdef";
    let send = || {
        bed.faxsend(&gw1, "1001", "1002", std::slice::from_ref(&document))
            .args(["--json", "--call-id", call_id])
            .run()
    };

    send().assert_delivered();
    let tif = callee.assert_one_fax(call_id, &document);
    let first_record = std::fs::read(tif.with_extension("json")).expect("the JSON");

    // The same fax again, as a sender does that never saw the final confirmation.
    let again = send();

    again.assert_delivered();
    let attempts = again.attempts();
    assert_eq!(attempts.len(), 1, "{again}");
    assert_eq!(
        attempts[0]["pages_held"], 2,
        "the callee had it all; {again}"
    );
    assert_eq!(attempts[0]["pages_sent"], 0, "{again}");
    assert_eq!(again.report()["pages_confirmed"], 2, "{again}");
    callee.wait_stdout_contains("received 2 pages (2 held from an earlier attempt)");
    callee.assert_one_fax(call_id, &document);
    assert_eq!(
        std::fs::read(tif.with_extension("json")).expect("the JSON"),
        first_record,
        "the stored fax's description is left as it was"
    );
}

#[test]
fn a_retry_to_a_callee_whose_capabilities_changed_starts_over() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &["--hangup-after-page", "1"]);
    let document = bed.document(3);
    let call_id = "0123456789abcdef0123456789abcdef";
    let send = || {
        bed.faxsend(&gw1, "1001", "1002", std::slice::from_ref(&document))
            .args(["--json", "--call-id", call_id])
            .run()
    };
    send().assert_failed(9, &["partial delivery"]);
    let part = callee.inbox().join(format!("{call_id}.tif.part"));
    assert_eq!(read_fax(&part).len(), 1, "page 1 (fine) is held");

    // The device now prints standard resolution only: the caller's pages,
    // fitted anew, differ from the one held, so the fax starts over.
    callee.restart_with(
        bed.path(),
        bed.fleet(),
        gw2.addr(),
        &["--resolutions", "standard"],
    );
    let sent = send();

    sent.assert_delivered();
    let attempts = sent.attempts();
    assert_eq!(attempts[0]["pages_held"], 0, "{sent}");
    assert_eq!(attempts[0]["pages_sent"], 3, "{sent}");
    let faxes = callee.wait_faxes(1);
    assert_eq!(
        callee.files_ending(""),
        [faxes[0].with_extension("json"), faxes[0].clone()]
    );
    let pages = read_fax(&faxes[0]);
    assert_eq!(pages.len(), 3);
    assert!(
        pages.iter().all(|p| p.y_dpi() == 98),
        "every page standard: {pages:?}"
    );
    assert_eq!(callee.record(&faxes[0])["pages_resumed"], 0);
}

#[test]
fn a_call_id_that_holds_another_delivered_fax_is_refused_not_overwritten() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    let (first, other) = (bed.document(2), bed.document(3));
    let call_id = "0123456789abcdef0123456789abcdef";
    let send = |document: &std::path::Path| {
        bed.faxsend(&gw1, "1001", "1002", &[document.to_owned()])
            .args(["--json", "--call-id", call_id, "--retries", "3"])
            .run()
    };
    send(&first).assert_delivered();
    callee.assert_one_fax(call_id, &first);

    let sent = send(&other);

    sent.assert_failed(8, &["already holds a different fax (2 pages)", call_id]);
    assert_eq!(sent.attempts().len(), 1, "final: not redialed; {sent}");
    callee.assert_one_fax(call_id, &first);
}

#[test]
fn busy_is_redialed_with_one_line_per_retry() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let _callee = bed.receiver(&gw2, "1002", &["--busy"]);

    let sent = bed
        .faxsend(&gw1, "1001", "1002", &[bed.note()])
        .args(["--json", "--retries", "2", "--retry-interval", "0.05"])
        .args(["--retry-backoff", "1.5"])
        .run();

    sent.assert_failed(7, &["busy"]);
    let attempts = sent.attempts();
    assert_eq!(attempts.len(), 3, "{sent}");
    assert!(attempts.iter().all(|a| a["result"] == "busy"), "{sent}");
    let lines: Vec<&str> = sent
        .stderr
        .lines()
        .filter(|l| l.contains("redialing in"))
        .collect();
    assert_eq!(lines.len(), 2, "{sent}");
    // 50 ms, then 50 ms × 1.5.
    assert!(lines[0].contains("attempt 1 of 3: busy") && lines[0].ends_with("in 50ms"));
    assert!(lines[1].contains("attempt 2 of 3: busy") && lines[1].ends_with("in 75ms"));
    // The call id stays the same across retries: one id in one report.
    assert_eq!(sent.report()["call_id"].as_str().map(str::len), Some(32));
}

#[test]
fn an_unreachable_gateway_is_redialed() {
    let bed = Testbed::new();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.local_addr().expect("its address")
    };
    let secret = bed.fleet().secret_file("1001");

    let sent = harness::FaxSend::new(bed.path(), closed, "1001", &secret, "1002", &[bed.note()])
        .args(["--json", "--retries", "2", "--retry-interval", "0"])
        .run();

    sent.assert_failed(3, &["cannot reach gateway", &closed.to_string()]);
    let attempts = sent.attempts();
    assert_eq!(attempts.len(), 3, "{sent}");
    assert!(
        attempts
            .iter()
            .all(|a| a["result"] == "unreachable" && a["pages_held"].is_null())
    );
}

#[test]
fn final_outcomes_are_not_redialed() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let _callee = bed.receiver(&gw2, "1002", &["--reject"]);
    let retry = ["--json", "--retries", "3", "--retry-interval", "30"];

    let unknown = bed
        .faxsend(&gw1, "1001", "1999", &[bed.note()])
        .args(retry)
        .run();
    let rejected = bed
        .faxsend(&gw1, "1001", "1002", &[bed.note()])
        .args(retry)
        .run();

    // With a 30 s interval, any redial would show in the time taken.
    unknown.assert_failed(5, &["unknown number"]);
    rejected.assert_failed(8, &["rejected"]);
    for sent in [&unknown, &rejected] {
        assert_eq!(sent.attempts().len(), 1, "{sent}");
        assert!(!sent.stderr.contains("redialing"), "{sent}");
        assert!(sent.elapsed.as_secs() < 30, "{sent}");
    }
}

#[test]
fn bad_retry_settings_are_refused_with_the_value() {
    let bed = Testbed::new();
    let gw = "127.0.0.1:9";
    for (flag, value, says) in [
        ("--retry-interval", "-1", "invalid seconds '-1'"),
        ("--retry-backoff", "0.5", "invalid factor '0.5'"),
        ("--retries", "many", "'many'"),
        ("--call-id", "xyz", "invalid call id 'xyz'"),
    ] {
        let note = bed.note();
        let setting = format!("{flag}={value}");
        let args = ["--gateway", gw, "--from", "1001", "--to", "1002", &setting];
        let sent = harness::FaxSend::with_args(bed.path(), &args)
            .arg("--secret-file")
            .arg(bed.fleet().secret_file("1001"))
            .arg(&note)
            .run();
        sent.assert_failed(2, &[says]);
    }
}

//! The gateway's fax queue with real processes: `faxsend --queue` exits once
//! the gateway holds the jobs, the gateway calls (and redials) with the
//! relay-issued credential, faxstat and faxrm see and change the jobs, and
//! every job ends exactly once, across a SIGKILL of the gateway too.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::admin::http_get;
use harness::images::{assert_same_pages, noise_bitmap, read_fax, sent_pages, write_tiff};
use harness::{Gateway, Relay, Sent, Testbed, bin, http_receiver};
use serde_json::Value;

/// relay-a, a queueing gateway for the senders and one for the callees.
fn network(bed: &Testbed) -> (Relay, Gateway, Gateway) {
    let relay = bed.relay("relay-a");
    let gw1 = bed.queue_gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    (relay, gw1, gw2)
}

/// `faxsend --queue` from 1001 to each of `to`, retrying fast; its run.
fn queue(bed: &Testbed, gw: &Gateway, to: &[&str], files: &[PathBuf], extra: &[&str]) -> Sent {
    let mut send =
        bed.faxsend(gw, "1001", to[0], files)
            .args(["--queue", "--json", "--retry-backoff", "1"]);
    if !extra.contains(&"--retry-interval") {
        send = send.args(["--retry-interval", "0.2"]);
    }
    for more in &to[1..] {
        send = send.args(["--to", more]);
    }
    send.args(extra).run()
}

/// Eight pages of 0.8 MB: more than every hop's windows hold, so most
/// pages have not gone out while the callee holds back a confirmation.
fn noise_document(bed: &Testbed) -> PathBuf {
    let document = bed.path().join("noise.tif");
    let pages: Vec<_> = (1..=8).map(|seed| noise_bitmap(seed, 2000)).collect();
    write_tiff(&document, &pages);
    document
}

/// The job ids `faxsend --queue --json` printed, in recipient order.
#[track_caller]
fn job_ids(sent: &Sent) -> Vec<String> {
    assert_eq!(sent.code, Some(0), "{sent}");
    let out: Value = serde_json::from_str(sent.stdout.trim()).expect("JSON on stdout");
    out["jobs"]
        .as_array()
        .expect("a jobs array")
        .iter()
        .map(|j| j["id"].to_string())
        .collect()
}

/// How faxstat or faxrm ended.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs faxstat or faxrm as 1001 through `gw`, with its right secret.
fn tool(bed: &Testbed, name: &str, gw: &Gateway, args: &[&str]) -> Ran {
    tool_with_secret(bed, name, gw, &bed.fleet().secret_file("1001"), args)
}

fn tool_with_secret(bed: &Testbed, name: &str, gw: &Gateway, secret: &Path, args: &[&str]) -> Ran {
    let out = Command::new(bin(name))
        .arg("--gateway")
        .arg(gw.addr().to_string())
        .args(["--from", "1001"])
        .arg("--secret-file")
        .arg(secret)
        .args(args)
        .env_remove("FAXMESH_SECRET")
        .env("FAXMESH_DEVICE_CONFIG", "")
        .current_dir(bed.path())
        .output()
        .expect("runs");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits until job `id` was tried at least once (polling faxstat: a try
/// gives no signal a test can wait on).
fn wait_tried(bed: &Testbed, gw: &Gateway, id: &str) {
    let deadline = std::time::Instant::now() + harness::WAIT;
    loop {
        let ran = tool(bed, "faxstat", gw, &["--json", id]);
        let out: Value = serde_json::from_str(ran.stdout.trim()).expect("JSON");
        if out["jobs"][0]["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} never tried: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `faxstat --json --wait JOBS`: the jobs once they ended, and the exit code.
fn wait_jobs(bed: &Testbed, gw: &Gateway, ids: &[String]) -> (Vec<Value>, Option<i32>) {
    let mut args = vec!["--json", "--wait"];
    args.extend(ids.iter().map(String::as_str));
    let ran = tool(bed, "faxstat", gw, &args);
    let out: Value = serde_json::from_str(ran.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "faxstat printed no JSON ({e}): {} {}",
            ran.stdout, ran.stderr
        )
    });
    (out["jobs"].as_array().expect("jobs").clone(), ran.code)
}

#[test]
fn a_fax_for_an_offline_callee_is_delivered_once_when_it_logs_in() {
    let bed = Testbed::new();
    let (relay, gw1, gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    callee.stop_cleanly();
    relay.wait_offline("1002");
    let document = bed.document(3);

    let sent = queue(&bed, &gw1, &["1002"], std::slice::from_ref(&document), &[]);
    let ids = job_ids(&sent);
    assert_eq!(ids.len(), 1, "{sent}");

    // The sender is gone; the job waits on the gateway's disk.
    let listed = tool(&bed, "faxstat", &gw1, &["--json", &ids[0]]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let job: Value = serde_json::from_str(listed.stdout.trim()).expect("JSON");
    let state = job["jobs"][0]["state"]
        .as_str()
        .expect("a state")
        .to_owned();
    assert!(
        ["queued", "sending", "waiting"].contains(&state.as_str()),
        "{job}"
    );

    callee.start_again(bed.path(), bed.fleet(), gw2.addr(), &[]);
    let (jobs, code) = wait_jobs(&bed, &gw1, &ids);
    assert_eq!(code, Some(0), "{jobs:?}");
    assert_eq!(jobs[0]["state"], "done", "{jobs:?}");
    assert_eq!(jobs[0]["pages_confirmed"], 3);
    let call_id = jobs[0]["call_id"].as_str().expect("a call id");
    let tif = callee.assert_one_fax(call_id, &document);
    assert_eq!(callee.record(&tif)["pages"], 3);
    let tries = jobs[0]["attempts"].as_array().expect("attempts");
    assert!(tries.len() >= 2, "offline first, then delivered: {tries:?}");
    assert_eq!(tries[0]["result"], "offline");
}

#[test]
fn three_recipients_one_busy_then_free_each_get_the_fax_once() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let mut a = bed.receiver(&gw2, "1002", &[]);
    let mut b = bed.receiver(&gw2, "1003", &[]);
    let mut busy = bed.receiver(&gw2, "1004", &["--busy"]);
    let document = bed.document(2);

    let sent = queue(
        &bed,
        &gw1,
        &["1002", "1003", "1004"],
        std::slice::from_ref(&document),
        &[],
    );
    let ids = job_ids(&sent);
    assert_eq!(ids.len(), 3, "one job per recipient: {sent}");

    let (done, code) = wait_jobs(&bed, &gw1, &ids[..2]);
    assert_eq!(code, Some(0), "{done:?}");
    for (receiver, job) in [(&mut a, &done[0]), (&mut b, &done[1])] {
        receiver.assert_one_fax(job["call_id"].as_str().expect("call id"), &document);
    }
    wait_tried(&bed, &gw1, &ids[2]);
    busy.restart_with(bed.path(), bed.fleet(), gw2.addr(), &[]);
    let (last, code) = wait_jobs(&bed, &gw1, &ids[2..]);
    assert_eq!(code, Some(0), "{last:?}");
    assert_eq!(last[0]["attempts"][0]["result"], "busy", "{last:?}");
    busy.assert_one_fax(last[0]["call_id"].as_str().expect("call id"), &document);
}

#[test]
fn a_job_whose_kill_time_passes_fails_with_the_reason() {
    let bed = Testbed::new();
    let (relay, gw1, gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    callee.stop_cleanly();
    relay.wait_offline("1002");

    let sent = queue(
        &bed,
        &gw1,
        &["1002"],
        &[bed.note()],
        &["--kill-after", "2s"],
    );
    let ids = job_ids(&sent);
    let (jobs, code) = wait_jobs(&bed, &gw1, &ids);

    assert_eq!(code, Some(6), "faxsend's code for offline: {jobs:?}");
    assert_eq!(jobs[0]["state"], "failed");
    let reason = jobs[0]["reason"].as_str().expect("a reason");
    assert!(reason.starts_with("kill time passed after"), "{reason}");
    assert!(reason.ends_with("last try: offline"), "{reason}");
}

#[test]
fn faxrm_cancels_a_waiting_job_and_leaves_an_ended_one_alone() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let _busy = bed.receiver(&gw2, "1002", &["--busy"]);

    let sent = queue(
        &bed,
        &gw1,
        &["1002"],
        &[bed.note()],
        &["--retry-interval", "60"],
    );
    let ids = job_ids(&sent);
    let removed = tool(&bed, "faxrm", &gw1, &[&ids[0]]);
    assert_eq!(
        removed.code,
        Some(0),
        "{} {}",
        removed.stdout,
        removed.stderr
    );
    assert_eq!(removed.stdout.trim(), format!("job {}: canceled", ids[0]));

    let (jobs, code) = wait_jobs(&bed, &gw1, &ids);
    assert_eq!(
        (jobs[0]["state"].as_str(), code),
        (Some("canceled"), Some(12))
    );

    let again = tool(&bed, "faxrm", &gw1, &[&ids[0]]);
    assert_eq!(again.code, Some(1));
    assert_eq!(
        again.stdout.trim(),
        format!("job {}: already canceled; nothing changed", ids[0])
    );
    let unknown = tool(&bed, "faxrm", &gw1, &["999999"]);
    assert_eq!(unknown.code, Some(2));
    assert_eq!(unknown.stdout.trim(), "job 999999: no such job");

    // The operator sees it on the admin listener, and in the metrics.
    let status = gw1.status().expect("a status").to_owned();
    let admin = harness::status::field(&status, "admin on ").expect("an admin address");
    let (code, body) = http_get(&admin, "/jobs");
    assert_eq!(code, 200, "{body}");
    let all: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(all["jobs"][0]["id"].to_string(), ids[0], "{all}");
    assert_eq!(all["jobs"][0]["state"], "canceled", "{all}");
    assert!(!body.contains("job-"), "no credential on the page: {body}");
    let (_, metrics) = http_get(&admin, "/metrics");
    assert!(
        metrics.contains("gatewayd_jobs_ended_total{state=\"canceled\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("gatewayd_jobs_waiting 0"), "{metrics}");
}

#[test]
fn faxrm_stops_a_sending_job_at_a_page_boundary() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &["--pause-at-page", "1"]);
    let document = noise_document(&bed);

    let sent = queue(&bed, &gw1, &["1002"], &[document], &[]);
    let ids = job_ids(&sent);
    callee.wait_paused(1);
    let removed = tool(&bed, "faxrm", &gw1, &[&ids[0]]);
    assert!(
        removed
            .stdout
            .contains("canceled at the next page boundary"),
        "{}",
        removed.stdout
    );
    callee.release();

    let (jobs, code) = wait_jobs(&bed, &gw1, &ids);
    assert_eq!(code, Some(12), "{jobs:?}");
    assert_eq!(jobs[0]["state"], "canceled");
    let kept = jobs[0]["pages_confirmed"].as_u64().expect("pages");
    assert!((1..8).contains(&kept), "{jobs:?}");
    assert_eq!(
        jobs[0]["reason"],
        format!("canceled during a call; the callee keeps {kept} of 8 pages")
    );
    let parts = callee.assert_only_part_files();
    assert_eq!(
        parts.len(),
        1,
        "the callee keeps what it confirmed: {parts:?}"
    );
}

#[test]
fn jobs_survive_a_sigkill_of_the_gateway_and_each_ends_once() {
    let bed = Testbed::new();
    let (_relay, mut gw1, gw2) = network(&bed);
    let mut paused = bed.receiver(&gw2, "1002", &["--pause-at-page", "2"]);
    let mut busy = bed.receiver(&gw2, "1003", &["--busy"]);
    let document = noise_document(&bed);
    let short = bed.document(2);

    let cut = job_ids(&queue(
        &bed,
        &gw1,
        &["1002"],
        std::slice::from_ref(&document),
        &[],
    ));
    let waiting = job_ids(&queue(
        &bed,
        &gw1,
        &["1003"],
        std::slice::from_ref(&short),
        &[],
    ));
    // Job 1 is mid-call (page 2 stored, not confirmed), job 2 waits.
    paused.wait_paused(2);
    wait_tried(&bed, &gw1, &waiting[0]);
    gw1.kill();
    busy.restart_with(bed.path(), bed.fleet(), gw2.addr(), &[]);
    paused.release();
    gw1.start_again();
    gw1.wait_linked();

    let (jobs, code) = wait_jobs(&bed, &gw1, &[cut[0].clone(), waiting[0].clone()]);
    assert_eq!(code, Some(0), "{jobs:?}");
    let tif = paused.assert_one_fax(jobs[0]["call_id"].as_str().expect("id"), &document);
    assert!(
        paused.record(&tif)["pages_resumed"]
            .as_u64()
            .expect("resumed")
            >= 1,
        "the cut call resumed: {}",
        paused.record(&tif)
    );
    busy.assert_one_fax(jobs[1]["call_id"].as_str().expect("id"), &short);
    // Each ended once: two jobs, both done, one fax at each callee.
    let all = tool(&bed, "faxstat", &gw1, &["--json"]);
    let all: Value = serde_json::from_str(all.stdout.trim()).expect("JSON");
    let states: Vec<&str> = all["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["done", "done"]);
    assert_same_pages(&read_fax(&tif), &sent_pages(&[document]));
}

#[test]
fn a_revoked_senders_queued_job_fails_with_the_reason() {
    let bed = Testbed::new();
    let (relay, gw1, gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    callee.stop_cleanly();
    relay.wait_offline("1002");
    let sent = queue(
        &bed,
        &gw1,
        &["1002"],
        &[bed.note()],
        &["--retry-interval", "0.5"],
    );
    let ids = job_ids(&sent);

    let data = relay.data_dir().to_str().expect("utf-8").to_owned();
    let out = Command::new(bin("relayd"))
        .args(["revoke", "--data-dir", &data, "1001"])
        .output()
        .expect("relayd revoke runs");
    assert!(out.status.success(), "{out:?}");

    // faxstat with the old secret is refused too: use a new generation's.
    let key = bed.fleet().key_file().to_str().expect("utf-8").to_owned();
    let secret = Command::new(bin("relayd"))
        .args([
            "credential",
            "--fleet-key-file",
            &key,
            "--generation",
            "1",
            "1001",
        ])
        .output()
        .expect("relayd credential runs");
    let new_secret = bed.path().join("1001.g1.secret");
    std::fs::write(&new_secret, &secret.stdout).expect("written");
    let mut args = vec!["--json", "--wait"];
    args.extend(ids.iter().map(String::as_str));
    let ran = tool_with_secret(&bed, "faxstat", &gw1, &new_secret, &args);
    let out: Value = serde_json::from_str(ran.stdout.trim()).expect("JSON");
    let job = &out["jobs"][0];
    assert_eq!(ran.code, Some(4), "{job}");
    assert_eq!(job["state"], "failed");
    assert!(
        job["reason"]
            .as_str()
            .expect("reason")
            .starts_with("secret revoked"),
        "{job}"
    );
}

#[test]
fn bad_queue_input_is_refused_and_changes_nothing() {
    let bed = Testbed::new();
    let (_relay, gw1, _gw2) = network(&bed);
    let note = bed.note();
    let cases: [(&[&str], &str); 4] = [
        (&["--send-at", "tomorrowish"], "invalid time 'tomorrowish'"),
        (
            &["--send-at", "2h", "--kill-after", "1h"],
            "--send-at is not before the kill time",
        ),
        (&["--kill-after", "0s"], "invalid duration '0s'"),
        (&["--output", "x.tif"], "cannot be used with"),
    ];
    for (args, says) in cases {
        let sent = queue(&bed, &gw1, &["1002"], std::slice::from_ref(&note), args);
        assert_eq!(sent.code, Some(2), "{args:?}: {sent}");
        assert!(sent.stderr.contains(says), "{args:?}: {sent}");
    }
    let none = tool(&bed, "faxstat", &gw1, &["--json"]);
    assert_eq!(none.code, Some(0), "{}", none.stderr);
    assert_eq!(none.stdout.trim(), r#"{"jobs":[]}"#, "nothing was queued");
    let unknown = tool(&bed, "faxstat", &gw1, &["42"]);
    assert_eq!(unknown.code, Some(2));
    assert!(
        unknown.stderr.contains("no job 42 of 1001"),
        "{}",
        unknown.stderr
    );

    // A gateway without a state directory keeps no queue, and says so.
    let relay = bed.relay("relay-b");
    let plain = bed.gateway("gw3", &relay);
    let sent = queue(&bed, &plain, &["1002"], &[note], &[]);
    assert_eq!(sent.code, Some(3), "{sent}");
    assert!(sent.stderr.contains("keeps no queue"), "{sent}");
}

#[test]
fn after_setup_a_device_config_file_is_all_faxsend_and_faxstat_need() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    let home = bed.path().join("home");
    let config = home.join(".config/faxmesh");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::copy(bed.fleet().secret_file("1001"), config.join("1001.secret")).expect("copied");
    std::fs::write(
        config.join("device.toml"),
        format!(
            "gateway = \"{}\"\nnumber = \"1001\"\nsecret_file = \"1001.secret\"\nqueue = true\n",
            gw1.addr()
        ),
    )
    .expect("config written");
    let user = |cmd: &mut Command| {
        cmd.env_remove("FAXMESH_DEVICE_CONFIG")
            .env_remove("XDG_CONFIG_HOME")
            .env("HOME", &home)
            .env_remove("FAXMESH_SECRET");
    };

    let mut send = Command::new(bin("faxsend"));
    send.args(["--to", "1002", "--json", "--no-tagline"])
        .arg(bed.note());
    user(&mut send);
    let out = send.output().expect("faxsend runs");
    assert!(out.status.success(), "{out:?}");
    let queued: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let id = queued["jobs"][0]["id"].to_string();

    let mut stat = Command::new(bin("faxstat"));
    stat.args(["--json", "--wait", &id]);
    user(&mut stat);
    let out = stat.output().expect("faxstat runs");
    assert!(out.status.success(), "{out:?}");
    let done: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(done["jobs"][0]["state"], "done");
    callee.assert_one_fax(
        done["jobs"][0]["call_id"].as_str().expect("id"),
        &bed.note(),
    );

    // A key the file does not know is refused, naming the file.
    std::fs::write(config.join("device.toml"), "gatway = \"x\"\n").expect("written");
    let mut bad = Command::new(bin("faxsend"));
    bad.args(["--to", "1002"]).arg(bed.note());
    user(&mut bad);
    let out = bad.output().expect("faxsend runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("device.toml") && err.contains("gatway"),
        "{err}"
    );
}

#[test]
fn a_webhook_down_for_a_while_gets_every_job_event_signed_and_in_order() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let key_file = bed.path().join("notify.key");
    std::fs::write(&key_file, "0123456789abcdef0123456789abcdef\n").expect("key written");
    // Down for the first three deliveries, then up.
    let (url, requests) = http_receiver::start("/jobs", 3);
    let state = bed.path().join("gw1-state");
    let mut gw1 = Gateway::start_with(
        bed.path(),
        "gw1",
        &[relay.addr()],
        &[
            "--state-dir",
            state.to_str().expect("utf-8"),
            "--notify-url",
            &url,
            "--notify-key-file",
            key_file.to_str().expect("utf-8"),
        ],
    );
    gw1.wait_linked();
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &["--busy"]);

    let ids = job_ids(&queue(
        &bed,
        &gw1,
        &["1002"],
        &[bed.note()],
        &["--retry-interval", "0.5"],
    ));
    wait_tried(&bed, &gw1, &ids[0]);
    callee.restart_with(bed.path(), bed.fleet(), gw2.addr(), &[]);
    let (jobs, code) = wait_jobs(&bed, &gw1, &ids);
    assert_eq!(code, Some(0), "{jobs:?}");

    let key = common::hooks::SigningKey::new(b"0123456789abcdef0123456789abcdef".to_vec())
        .expect("a long key");
    let mut events = Vec::new();
    while events.last().map(String::as_str) != Some("done") {
        let request = requests
            .recv_timeout(harness::WAIT * 2)
            .unwrap_or_else(|_| panic!("no event after {events:?}"));
        assert!(
            request.head.starts_with("POST /jobs HTTP/1.1\r\n"),
            "{}",
            request.head
        );
        let now = common::hooks::delivery::unix_now();
        common::hooks::verify(
            &key,
            &request.header("faxmesh-signature"),
            &request.body,
            now,
            std::time::Duration::from_secs(300),
        )
        .expect("a valid signature");
        let event: Value = serde_json::from_slice(&request.body).expect("JSON");
        assert_eq!(event["job"]["id"].to_string(), ids[0], "{event}");
        assert_eq!(event["gateway"], "gw1");
        assert_eq!(event["event"], event["job"]["state"], "{event}");
        events.push(event["event"].as_str().expect("an event").to_owned());
    }
    // queued, then (sending, waiting) for each busy try, then sending, done.
    assert_eq!(events[0], "queued", "{events:?}");
    let tries = &events[1..events.len() - 2];
    assert!(
        tries.chunks(2).all(|c| c == ["sending", "waiting"]),
        "{events:?}"
    );
    assert_eq!(
        events[events.len() - 2..],
        ["sending", "done"],
        "{events:?}"
    );
    assert!(tries.len() >= 2, "at least one busy try: {events:?}");
}

#[test]
fn a_gateway_whose_disk_is_full_refuses_the_fax_and_keeps_nothing_of_it() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    // The queue on a 16 MB tmpfs of its own, mounted in a mount namespace
    // of gatewayd's (as root, or else as a user namespace's root).
    let state = bed.path().join("small");
    std::fs::create_dir_all(&state).expect("state dir");
    let state = state.to_str().expect("utf-8").to_owned();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let user_ns: &[&str] = if root {
        &[]
    } else {
        &["--user", "--map-root-user"]
    };
    let mount = "mount -t tmpfs -o size=16m tmpfs \"$0\" && exec \"$@\"";
    let mut launcher = vec!["unshare"];
    launcher.extend_from_slice(user_ns);
    launcher.extend_from_slice(&["--mount", "sh", "-c", mount, &state]);
    let extra = ["--state-dir", &state, "--admin", "127.0.0.1:0"];
    let mut gw1 = Gateway::start_launched(bed.path(), "gw1", &[relay.addr()], &extra, &launcher);
    gw1.wait_linked();
    let gw2 = bed.gateway("gw2", &relay);
    let _callee = bed.receiver(&gw2, "1002", &["--busy"]);

    // Eight pages of 0.8 MB do not fit (with the store's copies).
    let sent = queue(&bed, &gw1, &["1002"], &[noise_document(&bed)], &[]);
    assert_eq!(sent.code, Some(3), "{sent}");
    assert!(sent.stderr.contains("the gateway's disk is full"), "{sent}");
    let listed = tool(&bed, "faxstat", &gw1, &["--json"]);
    assert_eq!(listed.stdout.trim(), r#"{"jobs":[]}"#, "{}", listed.stderr);
    // A small fax still fits.
    let sent = queue(&bed, &gw1, &["1002"], &[bed.note()], &[]);
    assert_eq!(job_ids(&sent).len(), 1, "{sent}");
}

#[test]
fn a_waiting_job_outlives_a_sigkill_of_the_relay() {
    let bed = Testbed::new();
    let (mut relay, mut gw1, mut gw2) = network(&bed);
    let mut callee = bed.receiver(&gw2, "1002", &["--busy"]);
    let ids = job_ids(&queue(
        &bed,
        &gw1,
        &["1002"],
        &[bed.note()],
        &["--retry-interval", "0.5"],
    ));
    wait_tried(&bed, &gw1, &ids[0]);

    relay.kill();
    relay.start_again();
    gw1.wait_linked();
    gw2.wait_linked();
    callee.restart_with(bed.path(), bed.fleet(), gw2.addr(), &[]);

    let (jobs, code) = wait_jobs(&bed, &gw1, &ids);
    assert_eq!(code, Some(0), "{jobs:?}");
    callee.assert_one_fax(jobs[0]["call_id"].as_str().expect("id"), &bed.note());
}

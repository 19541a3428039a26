//! faxrecv's receive hooks, with real processes: `--on-receive CMD` runs a
//! script once a fax is complete, `--notify-url` POSTs its JSON signed, and
//! a hook that failed before a restart runs after it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{Gateway, Relay, Testbed, WAIT, http_receiver};
use serde_json::Value;

/// relay-a, with gw1 for the sender 1001 and gw2 for the receiver 1002.
fn network(bed: &Testbed) -> (Relay, Gateway, Gateway) {
    let relay = bed.relay("relay-a");
    let (gw1, gw2) = (bed.gateway("gw1", &relay), bed.gateway("gw2", &relay));
    (relay, gw1, gw2)
}

/// 1001 faxes a one-page note to 1002, which confirms it.
fn fax_a_note(bed: &Testbed, gw1: &Gateway) {
    bed.faxsend(gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
}

/// A hook script: `hook.sh OUT [FILE]...` writes its stdin to OUT.json and
/// its FILE arguments to OUT.args (the JSON last, by a rename, so that a
/// reader never sees half of it); while OUT.fail exists it fails instead.
fn hook_script(bed: &Testbed) -> PathBuf {
    let path = bed.path().join("hook.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\n\
         out=$1; shift\n\
         if [ -e \"$out.fail\" ]; then echo 'hook told to fail' >&2; exit 1; fi\n\
         printf '%s\\n' \"$@\" > \"$out.args\"\n\
         cat > \"$out.json.part\"\n\
         mv \"$out.json.part\" \"$out.json\"\n",
    )
    .expect("writes the script");
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&path)
        .status()
        .expect("chmod runs");
    path
}

/// Waits until `path` exists; returns its text. A polling loop with a
/// deadline: a file appearing gives no signal to wait on.
#[track_caller]
fn wait_file(path: &Path) -> String {
    let deadline = Instant::now() + WAIT;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{path:?} not written within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[test]
fn on_receive_gets_the_fax_json_on_stdin_and_its_files_as_arguments() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let out = bed.path().join("hook-out");
    // CMD carries its own argument (OUT); the fax's files follow it.
    let cmd = format!("'{}' '{}'", hook_script(&bed).display(), out.display());
    let mut callee = bed.receiver(&gw2, "1002", &["--on-receive", &cmd, "--png"]);

    fax_a_note(&bed, &gw1);

    let tif = callee.wait_faxes(1).remove(0);
    let json: Value =
        serde_json::from_str(&wait_file(&out.with_extension("json"))).expect("the hook got JSON");
    assert_eq!(json, callee.record(&tif), "the same JSON as the .json file");
    let png = callee.files_ending("-p1.png");
    let args = std::fs::read_to_string(out.with_extension("args")).expect("args");
    assert_eq!(
        args,
        format!("{}\n{}\n", tif.display(), png[0].display()),
        "the .tif, then the .png"
    );
}

#[test]
fn notify_url_posts_the_fax_json_signed_with_the_key_file() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let key_file = bed.path().join("hook.key");
    std::fs::write(&key_file, "0123456789abcdef0123456789abcdef\n").expect("writes the key");
    let (url, requests) = http_receiver::start("/fax?box=1", 0);
    let mut callee = bed.receiver(
        &gw2,
        "1002",
        &[
            "--notify-url",
            &url,
            "--notify-key-file",
            key_file.to_str().expect("a UTF-8 path"),
        ],
    );

    fax_a_note(&bed, &gw1);

    let tif = callee.wait_faxes(1).remove(0);
    let request = requests.recv_timeout(WAIT).expect("a POST within WAIT");
    let (head, body) = (&request.head, &request.body);
    assert!(head.starts_with("POST /fax?box=1 HTTP/1.1\r\n"), "{head}");
    let header = |name: &str| request.header(name);
    assert_eq!(header("content-type"), "application/json");
    let key = common::hooks::SigningKey::new(b"0123456789abcdef0123456789abcdef".to_vec())
        .expect("a long key");
    let now = common::hooks::delivery::unix_now();
    common::hooks::verify(
        &key,
        &header("faxmesh-signature"),
        body,
        now,
        Duration::from_secs(300),
    )
    .expect("a valid signature");
    let json: Value = serde_json::from_slice(body).expect("a JSON body");
    assert_eq!(json, callee.record(&tif));
}

#[test]
fn a_hook_that_failed_runs_after_a_restart_and_the_fax_stays() {
    let bed = Testbed::new();
    let (_relay, gw1, gw2) = network(&bed);
    let out = bed.path().join("hook-out");
    std::fs::write(out.with_extension("fail"), "").expect("writes");
    let cmd = format!("'{}' '{}'", hook_script(&bed).display(), out.display());
    let mut callee = bed.receiver(&gw2, "1002", &["--on-receive", &cmd]);

    fax_a_note(&bed, &gw1);
    let tif = callee.wait_faxes(1).remove(0);
    let log = callee.wait_stderr_contains("notification not delivered");
    assert!(
        log.contains("exit code 1; stderr: hook told to fail"),
        "the log names the reason: {log}"
    );
    assert!(
        log.contains(&format!("command `{cmd}`")),
        "and the hook: {log}"
    );
    callee.stop_cleanly();
    assert!(
        !out.with_extension("json").exists(),
        "the hook never succeeded"
    );

    std::fs::remove_file(out.with_extension("fail")).expect("removes");
    callee.restart_with(bed.path(), bed.fleet(), gw2.addr(), &["--on-receive", &cmd]);

    let json: Value =
        serde_json::from_str(&wait_file(&out.with_extension("json"))).expect("the hook got JSON");
    assert_eq!(json, callee.record(&tif));
    assert_eq!(callee.faxes(), [tif], "the fax stayed in the inbox");
}

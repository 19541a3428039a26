//! faxrecv's exit codes before it dials, run as the real binary: 2 for a
//! bad command line, 1 for a failure of the machine.

use std::path::Path;
use std::process::Command;

/// Runs faxrecv in `dir` with the basic flags and `args`; returns (exit code, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faxrecv"))
        .current_dir(dir)
        // Port 1: nothing is dialed in these cases, and nothing would answer.
        .args(["--gateway", "127.0.0.1:1", "--number", "1002"])
        .args(args)
        .output()
        .expect("faxrecv runs");
    (
        out.status.code().expect("an exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_store_directory_that_cannot_be_made_is_an_error_not_bad_usage() {
    let dir = tempfile::tempdir().expect("temp");
    std::fs::write(dir.path().join("1002.secret"), "s3cret\n").expect("write");
    // A path under a regular file: not even root can make it.
    std::fs::write(dir.path().join("plain"), "").expect("write");
    let (code, stderr) = run(
        dir.path(),
        &["--secret-file", "1002.secret", "--dir", "plain/faxes"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.starts_with("faxrecv: cannot create directory plain/faxes: "),
        "{stderr}"
    );
}

#[test]
fn a_missing_secret_file_is_bad_usage() {
    let dir = tempfile::tempdir().expect("temp");
    let (code, stderr) = run(
        dir.path(),
        &["--secret-file", "nosuch.secret", "--dir", "faxes"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("faxrecv: cannot read secret file nosuch.secret: "),
        "{stderr}"
    );
    assert!(
        !dir.path().join("faxes").exists(),
        "nothing is made on bad usage"
    );
}

#[test]
fn options_that_do_not_go_together_are_bad_usage() {
    let dir = tempfile::tempdir().expect("temp");
    std::fs::write(dir.path().join("1002.secret"), "s3cret\n").expect("write");
    let (code, stderr) = run(
        dir.path(),
        &[
            "--secret-file",
            "1002.secret",
            "--dir",
            "faxes",
            "--busy",
            "--reject",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--busy and --reject cannot be combined"),
        "{stderr}"
    );
}

#[test]
fn a_notify_url_without_a_key_or_a_bad_url_or_a_short_key_is_bad_usage() {
    let dir = tempfile::tempdir().expect("temp");
    std::fs::write(dir.path().join("1002.secret"), "s3cret\n").expect("write");
    std::fs::write(dir.path().join("short.key"), "abc\n").expect("write");
    let base = ["--secret-file", "1002.secret", "--dir", "faxes"];
    let usage_error = |extra: &[&str], says: &str| {
        let (code, stderr) = run(dir.path(), &[&base[..], extra].concat());
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.starts_with(says), "expected {says:?}: {stderr}");
    };

    usage_error(
        &["--notify-url", "https://hooks.example.net/fax"],
        "faxrecv: --notify-url needs --notify-key-file F",
    );
    usage_error(
        &["--notify-url", "hooks.example.net/fax"],
        "faxrecv: invalid webhook URL 'hooks.example.net/fax': ",
    );
    let short_key = ["--notify-key-file", "short.key"];
    usage_error(
        &[&["--notify-url", "http://127.0.0.1:9/fax"], &short_key[..]].concat(),
        "faxrecv: key file short.key: the key has 3 bytes, at least 16",
    );
    assert!(
        !dir.path().join("faxes").exists(),
        "nothing is made on bad usage"
    );
}

//! The gateway's e-mail side under load: real relayd, gatewayd and faxrecv
//! processes on loopback, Python's smtplib as the mail client (one thread
//! per SMTP connection). Prints its figures; asserts nothing about speed.
//!
//!     cargo bench -p faxmesh-tests --bench mail
//!
//! - rate: MAIL_COUNT mails (default 200), each with a one-page PDF to one
//!   number, accepted and queued (the 250 comes once the job is synced),
//!   over one SMTP connection and over 20 at once. The callee is offline,
//!   so the jobs wait and the figure is the mail side's.
//! - latency: MAIL_LATENCY_COUNT mails (default 20) one at a time to a
//!   callee that is online: from the end of DATA to the callee's final
//!   confirmation (its faxrecv wrote the fax), at low load.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::mail::python;
use harness::status::field;
use harness::{Gateway, Relay, Testbed};
use serde_json::Value;

fn main() {
    println!(
        "faxmesh mail benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let count = env_or("MAIL_COUNT", 200);
    let samples = env_or("MAIL_LATENCY_COUNT", 20);
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let (_gw, smtp) = mail_gateway(&bed, &relay);
    let pdf = one_page_pdf(&bed);
    for connections in [1, 20] {
        let out = bench_client(
            &["rate", &smtp, "scanner@office.example", "1099@fax.example"],
            &pdf,
            count,
            &connections.to_string(),
        );
        let secs = out["secs"].as_f64().unwrap_or(f64::NAN);
        println!(
            "rate: {count} mails with a one-page PDF over {connections} connection(s): {secs:.2} s, {:.1} mails/s accepted and queued ({} refused {})",
            count as f64 / secs,
            out["refused_count"],
            out["refused"]
        );
    }
    let gw2 = bed.gateway("gw2", &relay);
    let callee = bed.receiver(&gw2, "1002", &[]);
    let out = bench_client(
        &[
            "latency",
            &smtp,
            "scanner@office.example",
            "1002@fax.example",
        ],
        &pdf,
        samples,
        callee.inbox().to_str().expect("a UTF-8 path"),
    );
    let mut ms: Vec<f64> = out["latencies_ms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "latency: end of DATA to the callee's final confirmation, {} mails one at a time: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms.len(),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs tests/python/smtp_bench.py; its JSON.
fn bench_client(args: &[&str], pdf: &Path, count: usize, last: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/smtp_bench.py");
    let out = Command::new(python())
        .arg(script)
        .args(&args[..4])
        .arg(pdf)
        .arg(count.to_string())
        .arg(last)
        .output()
        .expect("run smtp_bench.py");
    assert!(
        out.status.success(),
        "smtp_bench.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from smtp_bench.py")
}

/// A one-page PDF (libtiff's tiff2pdf of a text page).
fn one_page_pdf(bed: &Testbed) -> PathBuf {
    let pdf = bed.path().join("page.pdf");
    let out = Command::new("tiff2pdf")
        .arg("-o")
        .arg(&pdf)
        .arg(bed.document(1))
        .output()
        .expect("tiff2pdf");
    assert!(out.status.success(), "tiff2pdf: {out:?}");
    pdf
}

/// gatewayd with a queue and the SMTP listener; scanner@office.example
/// sends as 1001. Its SMTP address.
fn mail_gateway(bed: &Testbed, relay: &Relay) -> (Gateway, String) {
    let config = bed.path().join("gatewayd.toml");
    let toml = format!(
        "smtp_allow_networks = [\"127.0.0.0/8\"]\n\
         [[mail_sender]]\naddress = \"scanner@office.example\"\nnumber = \"1001\"\nsecret_file = \"{}\"\nbody_page = false\n",
        bed.fleet().secret_file("1001").display()
    );
    std::fs::write(&config, toml).expect("write gatewayd.toml");
    let state = bed.path().join("gw-state");
    let extra = [
        "--config",
        config.to_str().expect("a UTF-8 path"),
        "--state-dir",
        state.to_str().expect("a UTF-8 path"),
        "--smtp-listen",
        "127.0.0.1:0",
        "--mail-domain",
        "fax.example",
    ];
    let mut gw = Gateway::start_with(bed.path(), "gw", &[relay.addr()], &extra);
    let status = gw.wait_linked();
    let smtp = field(&status, "smtp on ").expect("the SMTP address in the status");
    (gw, smtp)
}

//! Real mail software for the e-mail tests, none of it ours: aiosmtpd as
//! the site's smarthost and mailbox, Python's smtplib as the MFP or mail
//! client, Python's email package as the mail reader. The scripts are in
//! `tests/python/`; they run under `FAXMESH_PYTHON` (the venv ./test.sh
//! makes, with aiosmtpd).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a test waits for a mail to arrive.
const WAIT: Duration = Duration::from_secs(60);

/// The Python the tests run (./test.sh's venv, else python3).
pub fn python() -> String {
    std::env::var("FAXMESH_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// aiosmtpd on 127.0.0.1, storing each mail it takes in its directory.
#[derive(Debug)]
pub struct Mailbox {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Mailbox {
    /// Starts it on `port` (0: any free one); returns once it listens.
    #[track_caller]
    pub fn start(dir: &Path, port: u16) -> Mailbox {
        let mut child = Command::new(python())
            .arg(script("smarthost.py"))
            .arg(dir)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start aiosmtpd (./test.sh installs it): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the smarthost's first line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "aiosmtpd under {} did not start (it said {line:?}); ./test.sh installs it and sets FAXMESH_PYTHON",
                    python()
                )
            });
        Mailbox {
            child,
            dir: dir.to_owned(),
            port,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The mails stored so far, in order.
    pub fn mails(&self) -> Vec<PathBuf> {
        let mut mails: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        mails.sort();
        mails
    }

    /// Waits until `n` mails are stored; returns them.
    #[track_caller]
    pub fn wait_mails(&self, n: usize) -> Vec<PathBuf> {
        let deadline = Instant::now() + WAIT;
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "the mailbox got {} mails within {WAIT:?}, not {n}",
                mails.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// MAIL FROM and RCPT TOs of a stored mail.
    pub fn envelope(mail: &Path) -> Vec<String> {
        std::fs::read_to_string(mail.with_extension("env"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Stops it (the port is free again).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What smtplib saw: each step's stage, code and text.
#[derive(Debug, Clone)]
pub struct SmtpRun {
    pub steps: Vec<(String, u16, String)>,
    pub closed: bool,
}

impl SmtpRun {
    /// The last step: where the client stopped and what it was told.
    pub fn last(&self) -> (String, u16, String) {
        self.steps.last().cloned().unwrap_or_default()
    }

    /// The first step with `stage`.
    #[track_caller]
    pub fn step(&self, stage: &str) -> (u16, String) {
        self.steps
            .iter()
            .find(|s| s.0 == stage)
            .map(|s| (s.1, s.2.clone()))
            .unwrap_or_else(|| panic!("no {stage} step in {self:?}"))
    }
}

/// Runs Python's smtplib with `spec` (see tests/python/smtp_client.py).
#[track_caller]
pub fn smtp_send(dir: &Path, spec: &Value) -> SmtpRun {
    let file = tempfile::NamedTempFile::new_in(dir).expect("a temp file");
    std::fs::write(file.path(), spec.to_string()).expect("write the spec");
    let out = Command::new(python())
        .arg(script("smtp_client.py"))
        .arg(file.path())
        .output()
        .expect("run smtp_client.py");
    assert!(
        out.status.success(),
        "smtp_client.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "smtp_client.py printed no JSON ({e}): {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let steps = v["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s[0].as_str().unwrap_or_default().to_owned(),
                s[1].as_u64().unwrap_or_default() as u16,
                s[2].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    SmtpRun {
        steps,
        closed: v["closed"].as_bool().unwrap_or(false),
    }
}

/// A mail as Python's email package reads it; each part's bytes saved
/// under `dir` (see tests/python/read_mail.py).
#[track_caller]
pub fn read_mail(mail: &Path, dir: &Path) -> Value {
    let out = Command::new(python())
        .arg(script("read_mail.py"))
        .arg(mail)
        .arg(dir)
        .output()
        .expect("run read_mail.py");
    assert!(
        out.status.success(),
        "read_mail.py failed on {mail:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from read_mail.py")
}

/// The parts of a read mail with content type `ct`.
pub fn parts_of<'a>(mail: &'a Value, ct: &str) -> Vec<&'a Value> {
    mail["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["content_type"] == ct)
        .collect()
}

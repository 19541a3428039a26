//! The notifier against real receivers: an HTTP/1.1 server in the test
//! (a few lines of tokio, answering what the test says) and real shell
//! commands. Asserted: what a receiver gets, in which order, how often.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::hooks::{Notifier, SIGNATURE_HEADER, Settings, SigningKey, Stats, Target, verify};
use common::link::tls::{ClientTls, ServerTls};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Long enough for a slow CI machine; a passing test never waits it out.
const WAIT: Duration = Duration::from_secs(30);

const KEY: &[u8] = b"test key: thirty-two bytes long!";

fn key() -> SigningKey {
    SigningKey::new(KEY).expect("long enough")
}

/// Quick retries, so a test sees several in a few hundred milliseconds.
fn fast() -> Settings {
    Settings {
        first_retry: Duration::from_millis(10),
        max_retry: Duration::from_millis(80),
        ..Settings::default()
    }
}

/// One request as the receiver saw it, and the status it answered.
#[derive(Clone, Debug)]
struct Hit {
    status: u16,
    content_type: Option<String>,
    signature: Option<String>,
    body: Vec<u8>,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A webhook receiver: answers every request with the status it is set
/// to, and keeps what it got.
struct HookServer {
    addr: SocketAddr,
    answer: Arc<Mutex<u16>>,
    hits: Arc<Mutex<Vec<Hit>>>,
    accept: JoinHandle<()>,
}

impl HookServer {
    async fn start(addr: SocketAddr, answer: u16) -> HookServer {
        HookServer::start_with(addr, answer, None).await
    }

    /// Answers `answer` over TLS (https://) when given an acceptor.
    async fn start_with(addr: SocketAddr, answer: u16, tls: Option<TlsAcceptor>) -> HookServer {
        let listener = TcpListener::bind(addr).await.expect("binds");
        let addr = listener.local_addr().expect("an address");
        let answer = Arc::new(Mutex::new(answer));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (a, h) = (answer.clone(), hits.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let status = *a.lock().expect("not poisoned");
                let hit = match &tls {
                    None => serve_one(stream, status).await,
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => serve_one(stream, status).await,
                        Err(_) => None,
                    },
                };
                if let Some(hit) = hit {
                    h.lock().expect("not poisoned").push(hit);
                }
            }
        });
        HookServer {
            addr,
            answer,
            hits,
            accept,
        }
    }

    fn url(&self) -> Target {
        Target::url(&format!("http://{}/fax-hook?site=1", self.addr)).expect("a URL")
    }

    fn answer(&self, status: u16) {
        *self.answer.lock().expect("not poisoned") = status;
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("not poisoned").clone()
    }

    /// The bodies it acknowledged (answered 2xx), in order.
    fn acknowledged(&self) -> Vec<Value> {
        self.hits()
            .iter()
            .filter(|h| (200..300).contains(&h.status))
            .map(Hit::json)
            .collect()
    }

    /// Stops listening: connections are refused from now on.
    async fn shut(self) -> SocketAddr {
        self.accept.abort();
        let _ = self.accept.await;
        self.addr
    }
}

/// Reads one request (head, then Content-Length bytes of body), answers
/// `status`, closes.
async fn serve_one(mut stream: impl AsyncRead + AsyncWrite + Unpin, status: u16) -> Option<Hit> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    assert!(
        head.starts_with("POST /fax-hook?site=1 HTTP/1.1\r\n"),
        "{head}"
    );
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let length: usize = header("content-length")?.parse().ok()?;
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let reply = format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Length: 9\r\nConnection: close\r\n\r\nanswered."
    );
    stream.write_all(reply.as_bytes()).await.ok()?;
    let _ = stream.shutdown().await;
    Some(Hit {
        status,
        content_type: header("content-type"),
        signature: header(SIGNATURE_HEADER),
        body: data[head_end..head_end + length].to_vec(),
    })
}

/// A notifier over a sled db in a temp dir, delivering until stopped.
struct Delivering {
    notifier: Notifier,
    stats: watch::Receiver<Stats>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    db: sled::Db,
}

impl Delivering {
    /// Opens (or reopens) the outbox in `dir` and starts delivering.
    fn start(dir: &Path) -> Delivering {
        Delivering::start_with(dir, fast())
    }

    fn start_with(dir: &Path, settings: Settings) -> Delivering {
        let db = sled::open(dir.join("outbox")).expect("a sled db");
        let tree = db.open_tree("hooks").expect("a tree");
        let notifier = Notifier::open(tree, Some(key()), settings).expect("opens");
        let stop = CancellationToken::new();
        let task = tokio::spawn(notifier.clone().run(stop.clone()));
        Delivering {
            stats: notifier.subscribe(),
            notifier,
            stop,
            task,
            db,
        }
    }

    fn push(&self, target: &Target, body: &Value, args: &[&str]) {
        let args: Vec<PathBuf> = args.iter().map(PathBuf::from).collect();
        // Returns at once, whatever the receiver does.
        self.notifier.push(target, body, &args).expect("queued");
    }

    fn stats(&self) -> Stats {
        self.notifier.stats()
    }

    /// Waits until the counters satisfy `ready`, or fails naming what they are.
    async fn wait_for(&mut self, what: &str, ready: impl FnMut(&Stats) -> bool) {
        let stats = &mut self.stats;
        // The Ref that wait_for returns is dropped at once: stats is read below.
        let reached =
            tokio::time::timeout(WAIT, async { stats.wait_for(ready).await.map(drop) }).await;
        match reached {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("the notifier went away before {what}"),
            Err(_) => panic!("not {what} within {WAIT:?}: {:?}", *stats.borrow()),
        }
    }

    /// Stops delivering; returns the counters and what the outbox holds.
    /// The db is closed when this returns, as when the process stops.
    async fn stop(self) -> (Stats, usize) {
        self.stop.cancel();
        self.task.await.expect("the task ends on stop");
        let left = self.db.open_tree("hooks").expect("a tree").len();
        (self.notifier.stats(), left)
    }
}

/// The header as a receiver following the README computes it, with the
/// hmac crate directly: `t=<t>,v1=hex(HMAC-SHA256(key, "<t>." + body))`,
/// for the `t` that `header` carries.
fn independent_signature(header: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let t = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .expect("starts with t=");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(KEY).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn event(n: u32) -> Value {
    json!({"call_id": format!("call-{n}"), "pages": n})
}

/// A receiver on a free port answering `status`.
async fn receiver(status: u16) -> HookServer {
    HookServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), status).await
}

#[tokio::test]
async fn events_arrive_in_order_signed_and_as_json() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = receiver(200).await;
    let mut hooks = Delivering::start(dir.path());

    for n in 1..=5 {
        hooks.push(&server.url(), &event(n), &[]);
    }
    hooks.wait_for("5 delivered", |s| s.delivered == 5).await;

    let hits = server.hits();
    let bodies: Vec<Value> = hits.iter().map(Hit::json).collect();
    assert_eq!(bodies, (1..=5).map(event).collect::<Vec<_>>());
    for hit in &hits {
        assert_eq!(hit.content_type.as_deref(), Some("application/json"));
        let signature = hit.signature.as_deref().expect("a signature header");
        let now = common::hooks::delivery::unix_now();
        verify(&key(), signature, &hit.body, now, Duration::from_secs(300))
            .unwrap_or_else(|e| panic!("{signature}: {e}"));
        assert_eq!(signature, independent_signature(signature, &hit.body));
    }
    let done = Stats {
        delivered: 5,
        failed_attempts: 0,
        pending: 0,
    };
    assert_eq!(hooks.stop().await, (done, 0));
}

#[tokio::test]
async fn a_receiver_that_answers_503_for_a_while_gets_every_event_once_in_order() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = receiver(503).await;
    let mut hooks = Delivering::start(dir.path());

    for n in 1..=3 {
        hooks.push(&server.url(), &event(n), &[]);
    }
    hooks
        .wait_for("4 failed attempts", |s| s.failed_attempts >= 4)
        .await;
    assert_eq!(hooks.stats().pending, 3);
    server.answer(200);
    hooks.wait_for("3 delivered", |s| s.delivered == 3).await;

    assert_eq!(
        server.acknowledged(),
        (1..=3).map(event).collect::<Vec<_>>()
    );
    let refused: Vec<Value> = server
        .hits()
        .iter()
        .filter(|h| h.status == 503)
        .map(Hit::json)
        .collect();
    assert!(refused.len() >= 4, "{refused:?}");
    assert!(
        refused.iter().all(|b| *b == event(1)),
        "only the oldest event is retried while it fails: {refused:?}"
    );
    let (stats, left) = hooks.stop().await;
    assert_eq!((stats.pending, left), (0, 0), "the outbox is empty");
}

#[tokio::test]
async fn a_restart_resumes_undelivered_events_and_never_resends_delivered_ones() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = receiver(200).await;
    let url = server.url();
    let mut hooks = Delivering::start(dir.path());
    hooks.push(&url, &event(1), &[]);
    hooks.push(&url, &event(2), &[]);
    hooks.wait_for("2 delivered", |s| s.delivered == 2).await;
    // The receiver goes away: connections are refused.
    let addr = server.shut().await;
    hooks.push(&url, &event(3), &[]);
    hooks.push(&url, &event(4), &[]);
    hooks
        .wait_for("2 failed attempts", |s| s.failed_attempts >= 2)
        .await;
    let (stats, left) = hooks.stop().await;
    assert_eq!((stats.pending, left), (2, 2));

    let server = HookServer::start(addr, 200).await;
    let mut hooks = Delivering::start(dir.path());
    assert_eq!(hooks.stats().pending, 2, "both events were kept");
    hooks
        .wait_for("2 delivered after the restart", |s| s.delivered == 2)
        .await;
    assert_eq!(server.acknowledged(), vec![event(3), event(4)]);
    assert_eq!(server.hits().len(), 2, "nothing else was sent");
    assert_eq!(hooks.stop().await.1, 0);
}

#[tokio::test]
async fn a_hook_that_fails_twice_runs_three_times_then_stops() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (counter, got) = (dir.path().join("counter"), dir.path().join("got"));
    // Counts its runs; fails the first two.
    let cmd = format!(
        "n=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'; \
         cat >> '{g}'; echo \" $*\" >> '{g}'; \
         [ $n -ge 3 ] || {{ echo \"run $n: printer jammed\" >&2; exit 1; }}; true",
        c = counter.display(),
        g = got.display()
    );
    let hook = Target::command(cmd);
    let mut hooks = Delivering::start(dir.path());
    let read = |path: &Path| std::fs::read_to_string(path).expect("written by the hook");

    hooks.push(&hook, &event(1), &["/in/call-1.tif"]);
    hooks.wait_for("delivered", |s| s.delivered == 1).await;
    assert_eq!(read(&counter), "3\n");
    let line = format!("{} /in/call-1.tif\n", event(1));
    assert_eq!(read(&got), line.repeat(3));
    assert_eq!(hooks.stats().failed_attempts, 2);

    // The next event runs it once more: the first is not run again.
    hooks.push(&hook, &event(2), &[]);
    hooks.wait_for("delivered", |s| s.delivered == 2).await;
    assert_eq!(read(&counter), "4\n");
    assert_eq!(read(&got), format!("{}{} \n", line.repeat(3), event(2)));
    assert_eq!(hooks.stop().await.0.failed_attempts, 2);
}

#[tokio::test]
async fn a_target_that_is_down_does_not_hold_up_another() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (down, up) = (receiver(500).await, receiver(204).await);
    let mut hooks = Delivering::start(dir.path());

    hooks.push(&down.url(), &event(1), &[]);
    hooks.push(&up.url(), &event(2), &[]);
    hooks
        .wait_for("delivered to the working receiver", |s| s.delivered == 1)
        .await;

    assert_eq!(up.acknowledged(), vec![event(2)]);
    assert_eq!(hooks.stop().await.1, 1, "the other event waits");
    assert!(
        down.hits()
            .iter()
            .all(|h| h.status == 500 && h.json() == event(1))
    );
}

#[tokio::test]
async fn a_bad_url_is_refused_when_pushed() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let hooks = Delivering::start(dir.path());
    let err = hooks
        .notifier
        .push(&Target::Url("example.net/hook".into()), &event(1), &[])
        .expect_err("no scheme");
    assert_eq!(
        err.to_string(),
        "invalid webhook URL 'example.net/hook': relative URL without a base"
    );
    assert_eq!(hooks.stop().await.1, 0);
}

/// A CA (its PEM file returned) and a certificate for localhost it signed,
/// served by the returned acceptor.
fn localhost_tls(dir: &Path) -> (PathBuf, TlsAcceptor) {
    let ca_key = rcgen::KeyPair::generate().expect("a key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("a CA");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("a key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("a leaf");
    let files = ["ca.pem", "leaf.pem", "leaf.key"].map(|name| dir.join(name));
    for (path, pem) in files
        .iter()
        .zip([ca_cert.pem(), leaf.pem(), key.serialize_pem()])
    {
        std::fs::write(path, pem).expect("writes");
    }
    let server = ServerTls::load(&files[1], &files[2]).expect("a usable pair");
    (files[0].clone(), server.acceptor())
}

#[tokio::test]
async fn an_https_receiver_gets_events_when_its_ca_is_trusted_and_none_otherwise() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (ca, acceptor) = localhost_tls(dir.path());
    let server =
        HookServer::start_with(SocketAddr::from(([127, 0, 0, 1], 0)), 200, Some(acceptor)).await;
    let url = Target::url(&format!(
        "https://localhost:{}/fax-hook?site=1",
        server.addr.port()
    ))
    .expect("a URL");

    let trusting = Settings {
        tls: ClientTls::new(Some(&ca)).expect("a CA file"),
        ..fast()
    };
    let mut hooks = Delivering::start_with(&dir.path().join("a"), trusting);
    hooks.push(&url, &event(1), &[]);
    hooks.wait_for("delivered", |s| s.delivered == 1).await;
    assert_eq!(server.acknowledged(), vec![event(1)]);
    hooks.stop().await;

    // The system's roots do not hold the test CA: the handshake fails.
    let mut hooks = Delivering::start_with(&dir.path().join("b"), fast());
    hooks.push(&url, &event(2), &[]);
    hooks
        .wait_for("2 failed attempts", |s| s.failed_attempts >= 2)
        .await;
    assert_eq!(hooks.stop().await.1, 1, "the event waits");
    assert_eq!(
        server.hits().len(),
        1,
        "nothing was sent to an untrusted receiver"
    );
}

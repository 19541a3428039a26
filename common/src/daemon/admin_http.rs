//! The admin listener of relayd and gatewayd (`--admin ADDR`): `GET /metrics`
//! (Prometheus text), `GET /healthz`, and a daemon's own JSON pages
//! (gatewayd's `/jobs`).
//!
//! Hand-written HTTP/1.1 on tokio rather than hyper: two fixed GET routes,
//! one response per connection (`Connection: close`), no bodies to read. A
//! server crate would bring more code than this file and nothing these
//! routes need. Requests are capped (8 KiB head, 5 s) so a slow or hostile
//! client costs one small task.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the admin listener shows.
pub trait AdminPages: Send + Sync + 'static {
    /// The Prometheus text for `/metrics`.
    fn metrics(&self) -> String;
    /// `Ok(text)` answers `/healthz` with 200, `Err(text)` with 503.
    fn health(&self) -> Result<String, String>;
    /// A JSON page at `path`, if the daemon has one there.
    fn json(&self, _path: &str) -> Option<String> {
        None
    }
}

/// Serves `listener` until `stop` fires; each request in its own task.
pub async fn serve(listener: TcpListener, pages: Arc<dyn AdminPages>, stop: CancellationToken) {
    let requests = TaskTracker::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let pages = pages.clone();
                    requests.spawn(async move {
                        if let Err(e) = answer(tcp, &*pages).await {
                            tracing::debug!(error = %e, "admin request failed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    requests.close();
    // Responses are small and written at once; they finish promptly.
    let _ = tokio::time::timeout(READ_TIMEOUT, requests.wait()).await;
}

async fn answer(mut tcp: TcpStream, pages: &dyn AdminPages) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut tcp)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let (status, content_type, body) = route(&head, pages);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(response.as_bytes()).await?;
    if !head.starts_with("HEAD ") {
        tcp.write_all(body.as_bytes()).await?;
    }
    tcp.shutdown().await
}

/// Reads up to the blank line that ends the request head.
async fn read_head(tcp: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_HEAD {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn route(head: &str, pages: &dyn AdminPages) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "use GET\n".into());
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            pages.metrics(),
        ),
        "/healthz" => match pages.health() {
            Ok(text) => ("200 OK", TEXT, format!("{text}\n")),
            Err(text) => ("503 Service Unavailable", TEXT, format!("{text}\n")),
        },
        other => match pages.json(other) {
            Some(json) => ("200 OK", "application/json", json),
            None => ("404 Not Found", TEXT, "try /metrics or /healthz\n".into()),
        },
    }
}

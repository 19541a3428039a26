//! One webhook delivery: an HTTP/1.1 POST of the JSON body, over TCP or TLS.
//!
//! Why hyper (1.x, `client` + `http1` only): it is the HTTP implementation
//! the Rust ecosystem is built on, well kept, and it lets us bring our own
//! connection. So TLS is the tokio-rustls (ring) stack the links already use,
//! with the same trust store ([`ClientTls`]: the system's roots); a
//! batteries-included client (reqwest, ureq) would pull a second TLS setup,
//! and with default features aws-lc-rs, which needs cmake. Each delivery
//! opens its own connection: webhooks are rare next to the cost of a fax,
//! and a pool would only keep sockets open to receivers that may go away.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::{Host, Position, Url};

use super::delivery::DeliveryError;
use super::signature::SIGNATURE_HEADER;
use crate::link::tls::ClientTls;

/// How much of a refusing receiver's answer goes into the log line.
const ANSWER_SHOWN: usize = 200;

/// POSTs `body` to `url` with the signature header when there is one; a 2xx
/// answer within `limit` is a delivery, anything else a failure.
pub(crate) async fn post(
    url: &Url,
    body: Bytes,
    signature: Option<String>,
    tls: &ClientTls,
    limit: Duration,
) -> Result<(), DeliveryError> {
    match tokio::time::timeout(limit, exchange(url, body, signature, tls)).await {
        Ok(result) => result,
        Err(_) => Err(DeliveryError::Timeout(limit)),
    }
}

async fn exchange(
    url: &Url,
    body: Bytes,
    signature: Option<String>,
    tls: &ClientTls,
) -> Result<(), DeliveryError> {
    // An http(s) URL always has a port (given or the scheme's) and a host:
    // Target::url checked both.
    let port = url.port_or_known_default().unwrap_or(80);
    let host = match url.host() {
        Some(Host::Domain(name)) => name.to_owned(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(DeliveryError::NoHost),
    };
    let mut request = Request::post(&url[Position::BeforePath..Position::AfterQuery])
        .header(HOST, &url[Position::BeforeHost..Position::AfterPort])
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_LENGTH, body.len())
        .header(USER_AGENT, concat!("faxmesh/", env!("CARGO_PKG_VERSION")));
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| DeliveryError::Request(e.to_string()))?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(DeliveryError::Connect)?;
    // A small request and its answer: no reason to wait for Nagle.
    let _ = tcp.set_nodelay(true);
    if url.scheme() == "https" {
        let connector = tls.connector().map_err(DeliveryError::Tls)?;
        let name = ServerName::try_from(host)
            .map_err(|e| DeliveryError::Tls(format!("not a name for TLS: {e}")))?;
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| DeliveryError::Tls(crate::link::tls::explain(&e)))?;
        send(stream, request).await
    } else {
        send(tcp, request).await
    }
}

/// One request on a fresh connection. The connection is driven beside the
/// request, in this same future, so nothing outlives the delivery.
async fn send<T>(io: T, request: Request<Full<Bytes>>) -> Result<(), DeliveryError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(DeliveryError::Http)?;
    let exchange = async move {
        let response = sender.send_request(request).await?;
        let status = response.status();
        // The answer's start, for the log; a receiver that sends more (or
        // breaks off) changes nothing about the status it gave.
        let answer = match Limited::new(response.into_body(), 4096).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => Bytes::new(),
        };
        Ok::<_, hyper::Error>((status, answer))
    };
    tokio::pin!(conn, exchange);
    let (status, answer) = tokio::select! {
        biased;
        result = &mut exchange => result,
        // The connection ended first (closed, or failed): the exchange
        // resolves too, with the answer or hyper's error.
        _ = &mut conn => exchange.await,
    }
    .map_err(DeliveryError::Http)?;
    if status.is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status {
            status,
            answer: shown(&answer),
        })
    }
}

/// A receiver's answer, shortened to one readable line.
fn shown(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(ANSWER_SHOWN) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

//! The daemons' admin listener (`--admin ADDR`): a plain HTTP/1.1 GET, to
//! read /metrics and /healthz as a scraper or a load balancer would.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// GET `path` from `addr`; returns the status code and the body. The
/// listener closes the connection after its answer, so the body is
/// everything after the headers.
///
/// # Panics
///
/// When the listener does not accept, answer within 10 s, or answers
/// something that is not HTTP.
#[track_caller]
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut tcp =
        TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a non-zero read timeout is accepted");
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")
        .unwrap_or_else(|e| panic!("cannot send GET {path} to {addr}: {e}"));
    let mut response = String::new();
    tcp.read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("no answer to GET {path} from {addr}: {e}"));
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer from {addr}: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

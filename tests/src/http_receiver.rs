//! A webhook receiver for tests: a real HTTP/1.1 server on a free loopback
//! port, in a thread, that answers 503 to the first `refuse` requests (a
//! receiver that is down for a while), then 200, and hands over each
//! request it acknowledged, in the order they came.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

/// One request: its head (request line and headers) and body.
#[derive(Debug, Clone)]
pub struct Request {
    pub head: String,
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value (names compare without case).
    #[track_caller]
    pub fn header(&self, name: &str) -> String {
        self.head
            .lines()
            .filter_map(|l| l.split_once(": "))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_owned())
            .unwrap_or_else(|| panic!("no {name} header in {}", self.head))
    }
}

/// Starts the receiver at `path` (e.g. "/fax?box=1"); its URL, and the
/// requests it answered 200.
pub fn start(path: &str, refuse: usize) -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!(
        "http://{}{path}",
        listener.local_addr().expect("an address")
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut refused = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(request) = read_request(&mut stream) else {
                continue;
            };
            let ok = refused >= refuse;
            let answer: &[u8] = match ok {
                true => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                false => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            };
            refused += usize::from(!ok);
            if stream.write_all(answer).is_ok() && ok && tx.send(request).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let (head, length) = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end + 4]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            data.drain(..end + 4);
            break (head, length);
        }
    };
    while data.len() < length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some(Request { head, body: data })
}

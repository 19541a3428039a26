//! A delay line: a TCP forwarder inside a network namespace that holds every
//! chunk for a set time before passing it on, both ways. netem, which would
//! add latency in the kernel, is missing from some kernels (this one), and
//! nothing else in tc delays packets; so the chaos run puts this in front
//! of a relay where it wants a long line (a gateway on a satellite link).
//! Order and bytes are kept; only the time changes, and the delay can
//! change while connections are open (0: pass at once).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::netns::enter;

/// A running delay line; it stops accepting when dropped (open
/// connections end when either side closes).
#[derive(Debug)]
pub struct DelayLine {
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    pub listen: SocketAddr,
}

impl DelayLine {
    /// Listens on `listen` inside namespace `ns` (its threads join it; port
    /// 0 picks one, see `listen`) and forwards every connection to
    /// `upstream`, seen from that namespace.
    pub fn start(ns: &str, listen: SocketAddr, upstream: SocketAddr) -> Result<DelayLine, String> {
        let netns = std::fs::File::open(format!("/run/netns/{ns}"))
            .map_err(|e| format!("namespace {ns}: {e}"))?;
        let delay_ms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (delay, stopping) = (delay_ms.clone(), stop.clone());
        std::thread::spawn(move || {
            let listener = match bind_in(&netns, listen) {
                Ok((listener, at)) => {
                    let _ = ready_tx.send(Ok(at));
                    listener
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            serve(&listener, upstream, &delay, &stopping);
        });
        let listen = ready_rx
            .recv()
            .map_err(|_| "the delay line's thread died".to_owned())??;
        Ok(DelayLine {
            delay_ms,
            stop,
            listen,
        })
    }

    /// Holds every chunk this long from now on (`Duration::ZERO`: none).
    pub fn set(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }
}

/// Joins the namespace open as `netns` (this thread, for good) and listens
/// on `listen` there; returns the listener and the address it got.
fn bind_in(netns: &std::fs::File, listen: SocketAddr) -> Result<(TcpListener, SocketAddr), String> {
    enter(netns)?;
    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let at = listener.local_addr().map_err(|e| e.to_string())?;
    // Polled, so that a dropped line stops (and leaves its namespace).
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok((listener, at))
}

/// Takes connections until `stop`, each forwarded to `upstream` (dialed
/// from this thread, so from the namespace) through the delay.
fn serve(listener: &TcpListener, upstream: SocketAddr, delay: &Arc<AtomicU64>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let near = match listener.accept() {
            Ok((near, _)) => near,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = near.set_nonblocking(false);
        match TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) {
            Ok(far) => forward(near, far, delay),
            // As a dead relay would: the dialer sees the line drop.
            Err(_) => drop(near),
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies both ways between `a` and `b`, each chunk held for the delay.
fn forward(a: TcpStream, b: TcpStream, delay: &Arc<AtomicU64>) {
    let _ = (a.set_nodelay(true), b.set_nodelay(true));
    let pairs = [
        (a.try_clone(), b.try_clone()),
        (b.try_clone(), a.try_clone()),
    ];
    for (from, to) in pairs {
        let (Ok(from), Ok(to)) = (from, to) else {
            return;
        };
        let delay = delay.clone();
        std::thread::spawn(move || one_way(from, to, &delay));
    }
}

/// One direction: a reader stamps each chunk with when it may go, a writer
/// sends it then. A close or an error on either side closes both.
fn one_way(mut from: TcpStream, mut to: TcpStream, delay: &AtomicU64) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (due, chunk) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let due = Instant::now() + Duration::from_millis(delay.load(Ordering::Relaxed));
                if tx.send((due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.join();
    let _ = from.shutdown(Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    use super::DelayLine;
    use crate::chaos::netns::{Net, inside};

    /// Needs root (namespaces), as the chaos run does.
    #[test]
    fn a_delay_line_holds_each_chunk_both_ways_and_keeps_the_bytes() {
        let mut net = Net::new().unwrap_or_else(|e| panic!("{e}"));
        let ns = net.namespace("dl").unwrap();
        // An echo server inside the namespace.
        let echo = inside(&ns, || TcpListener::bind("127.0.0.1:0").expect("a port"));
        let upstream = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in echo.incoming() {
                let Ok(mut conn) = conn else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n @ 1..) = conn.read(&mut buf) {
                        let _ = conn.write_all(&buf[..n]);
                    }
                });
            }
        });
        let line = DelayLine::start(&ns, "127.0.0.1:0".parse().unwrap(), upstream).unwrap();
        let at = line.listen;
        let mut client = inside(&ns, move || TcpStream::connect(at).expect("the line"));
        let mut round_trip = |msg: &[u8]| {
            let started = Instant::now();
            client.write_all(msg).unwrap();
            let mut got = vec![0u8; msg.len()];
            client.read_exact(&mut got).unwrap();
            assert_eq!(got, msg, "the bytes came back changed");
            started.elapsed()
        };
        round_trip(b"warm");
        line.set(Duration::from_millis(150));
        let slow = round_trip(b"held both ways");
        assert!(slow >= Duration::from_millis(300), "round trip {slow:?}");
        line.set(Duration::ZERO);
        round_trip(b"let go");
    }
}

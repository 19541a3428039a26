//! TCP keepalive on every link's socket, under the heartbeats.
//!
//! The heartbeats (see `control::Heartbeat`) are what keep a link's NAT
//! mapping fresh and find a dead peer. Kernel keepalive probes are the
//! backstop for when they cannot: an operator who set `--heartbeat-secs`
//! above the NAT's idle timeout, or a process too stalled to send them. A
//! connection idle for [`IDLE`] gets a probe every [`INTERVAL`]; after
//! [`PROBES`] unanswered ones the kernel drops it, and the link's reader
//! sees the error. With heartbeats at their default the link is never idle
//! that long, so no probe is ever sent.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Idle time before the first probe: below the 30 s that the stingiest NATs
/// and firewalls keep an idle TCP mapping.
pub const IDLE: Duration = Duration::from_secs(25);
/// Time between unanswered probes.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered probes before the kernel gives the connection up.
pub const PROBES: u32 = 3;

/// Turns keepalive on for `tcp` with the settings above.
pub fn enable(tcp: &TcpStream) -> std::io::Result<()> {
    let params = TcpKeepalive::new()
        .with_time(IDLE)
        .with_interval(INTERVAL)
        .with_retries(PROBES);
    SockRef::from(tcp).set_tcp_keepalive(&params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probes_start_after_the_idle_time_and_give_up_after_three() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let sock = SockRef::from(&tcp);
        assert!(!sock.keepalive().unwrap(), "off by default");

        enable(&tcp).unwrap();

        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), IDLE);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), INTERVAL);
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), PROBES);
    }
}

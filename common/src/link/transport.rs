//! How a link's bytes travel, chosen per address: TLS over TCP, or plain
//! TCP where the operator says so.
//!
//! An address is `HOST:PORT`, `tls://HOST:PORT` or `plain://HOST:PORT`. A
//! bare address takes the dialer's default ([`LinkConfig::default_scheme`]):
//! TLS for gateways dialing relays and relays dialing peers, plain for fax
//! devices dialing their LAN gateway.
//!
//! [`LinkConfig::default_scheme`]: super::control::LinkConfig::default_scheme

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::rustls::ServerConfig;

use super::control::{LinkConfig, LinkError};
use super::keepalive;
use super::plain::PlainStream;
use super::tls;
use super::tls_stream;

/// TLS or plain TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Tls,
    Plain,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Tls => "tls",
            Scheme::Plain => "plain",
        })
    }
}

/// An address split into its scheme and `HOST:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub scheme: Scheme,
    pub host_port: &'a str,
}

impl<'a> Target<'a> {
    /// Splits `addr`; a bare address gets `bare`.
    pub fn parse(addr: &'a str, bare: Scheme) -> Result<Target<'a>, String> {
        let (scheme, host_port) = match addr.split_once("://") {
            Some(("tls", rest)) => (Scheme::Tls, rest),
            Some(("plain", rest)) => (Scheme::Plain, rest),
            Some((other, _)) => {
                return Err(format!(
                    "invalid address '{addr}': unknown scheme '{other}://' (use tls://HOST:PORT, plain://HOST:PORT or HOST:PORT)"
                ));
            }
            None => (bare, addr),
        };
        match host_port.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Target { scheme, host_port })
            }
            _ => Err(format!(
                "invalid address '{addr}': use HOST:PORT, tls://HOST:PORT or plain://HOST:PORT"
            )),
        }
    }
}

/// Checks an address from a config file or the command line.
pub fn check_addr(addr: &str) -> Result<(), String> {
    Target::parse(addr, Scheme::Tls).map(|_| ())
}

/// A link's byte stream: TCP, or TLS over TCP.
pub trait LinkStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> LinkStream for T {}

/// Boxed, so one multiplexer driver serves both kinds; `Box` forwards
/// vectored writes, which [`Coalesce`](super::coalesce::Coalesce) relies on.
pub type LinkIo = Box<dyn LinkStream>;

/// An accepted connection, ready for [`accept`](super::control::accept):
/// its stream and who is on the other end.
pub struct Inbound {
    pub io: LinkIo,
    pub peer: String,
}

impl fmt::Debug for Inbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbound")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl From<TcpStream> for Inbound {
    /// A plain TCP connection (a gateway's LAN side).
    fn from(tcp: TcpStream) -> Inbound {
        let peer = peer_name(&tcp);
        prepare(&tcp);
        Inbound {
            io: Box::new(PlainStream::new(tcp)),
            peer,
        }
    }
}

/// Socket options of every link: no Nagle delay (confirmations are small
/// and must go at once) and kernel keepalive under the heartbeats.
fn prepare(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    if let Err(e) = keepalive::enable(tcp) {
        // The heartbeats still find a dead peer; only the backstop is missing.
        tracing::debug!(error = %e, "cannot turn TCP keepalive on");
    }
}

/// Connects to `addr` (TCP, then TLS unless the address or the default says
/// plain) within the handshake timeout.
pub async fn connect(addr: &str, cfg: &LinkConfig) -> Result<LinkIo, LinkError> {
    connect_from(addr, None, cfg).await
}

/// [`connect`], from the local address `local` when given (port chosen by
/// the system): a host with several addresses picks the one a link leaves
/// from, and a load test spreads its links over loopback addresses so that
/// no one address runs out of ephemeral ports.
pub async fn connect_from(
    addr: &str,
    local: Option<IpAddr>,
    cfg: &LinkConfig,
) -> Result<LinkIo, LinkError> {
    let target = Target::parse(addr, cfg.default_scheme).map_err(LinkError::Address)?;
    let secs = cfg.handshake_timeout.as_secs();
    let connecting = async {
        let connect_fail = |source| LinkError::Connect {
            addr: addr.to_owned(),
            source,
        };
        let tcp = match local {
            None => TcpStream::connect(target.host_port)
                .await
                .map_err(connect_fail)?,
            Some(local) => connect_bound(target.host_port, local)
                .await
                .map_err(connect_fail)?,
        };
        prepare(&tcp);
        match target.scheme {
            Scheme::Plain => Ok(Box::new(PlainStream::new(tcp)) as LinkIo),
            Scheme::Tls => {
                let name = tls::server_name(target.host_port).map_err(LinkError::Address)?;
                let tls_fail = |detail: String| LinkError::Tls {
                    addr: addr.to_owned(),
                    detail,
                };
                let config = cfg.tls.config().map_err(tls_fail)?;
                let stream = tls_stream::connect(tcp, config, name)
                    .await
                    .map_err(|e| tls_fail(tls::explain(&e)))?;
                Ok(Box::new(stream) as LinkIo)
            }
        }
    };
    tokio::time::timeout(cfg.handshake_timeout, connecting)
        .await
        .map_err(|_| LinkError::Timeout {
            addr: addr.to_owned(),
            secs,
        })?
}

/// TCP to the first address of `host_port` of `local`'s family, from `local`.
async fn connect_bound(host_port: &str, local: IpAddr) -> std::io::Result<TcpStream> {
    let remote = tokio::net::lookup_host(host_port)
        .await?
        .find(|a| a.is_ipv4() == local.is_ipv4())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                format!("{host_port} has no address of the family of {local}"),
            )
        })?;
    let socket = match local {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(remote).await
}

/// Tells a TLS dialer from a plaintext one by the first byte it sends,
/// without consuming it; waits at most the handshake timeout.
pub async fn sniff(tcp: &TcpStream, cfg: &LinkConfig) -> Result<Scheme, LinkError> {
    let peer = peer_name(tcp);
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(cfg.handshake_timeout, tcp.peek(&mut first))
        .await
        .map_err(|_| LinkError::Timeout {
            addr: peer.clone(),
            secs: cfg.handshake_timeout.as_secs(),
        })?;
    match peeked {
        Ok(0) => Err(LinkError::Closed { addr: peer }),
        Ok(_) if first[0] == tls::HANDSHAKE_RECORD => Ok(Scheme::Tls),
        Ok(_) => Ok(Scheme::Plain),
        Err(source) => Err(LinkError::Connect { addr: peer, source }),
    }
}

/// Runs the server side of a TLS handshake within the handshake timeout.
pub async fn accept_tls(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    cfg: &LinkConfig,
) -> Result<Inbound, LinkError> {
    let peer = peer_name(&tcp);
    prepare(&tcp);
    let stream = tokio::time::timeout(cfg.handshake_timeout, tls_stream::accept(tcp, config))
        .await
        .map_err(|_| LinkError::Timeout {
            addr: peer.clone(),
            secs: cfg.handshake_timeout.as_secs(),
        })?
        .map_err(|e| LinkError::Tls {
            addr: peer.clone(),
            detail: e.to_string(),
        })?;
    Ok(Inbound {
        io: Box::new(stream),
        peer,
    })
}

fn peer_name(tcp: &TcpStream) -> String {
    tcp.peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "unknown peer".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_defaults() {
        let t = Target::parse("relay-a.example.com:4710", Scheme::Tls).unwrap();
        assert_eq!(
            (t.scheme, t.host_port),
            (Scheme::Tls, "relay-a.example.com:4710")
        );
        let t = Target::parse("10.0.0.1:4700", Scheme::Plain).unwrap();
        assert_eq!(t.scheme, Scheme::Plain);
        let t = Target::parse("plain://127.0.0.1:4710", Scheme::Tls).unwrap();
        assert_eq!((t.scheme, t.host_port), (Scheme::Plain, "127.0.0.1:4710"));
        let t = Target::parse("tls://[::1]:4710", Scheme::Plain).unwrap();
        assert_eq!((t.scheme, t.host_port), (Scheme::Tls, "[::1]:4710"));
    }

    #[test]
    fn bad_addresses_are_named() {
        for (bad, word) in [
            ("tsl://relay:4710", "unknown scheme 'tsl://'"),
            ("relay", "use HOST:PORT"),
            ("plain://relay", "use HOST:PORT"),
            ("tls://:4710", "use HOST:PORT"),
            ("relay:http", "use HOST:PORT"),
        ] {
            let err = check_addr(bad).unwrap_err();
            assert!(err.contains(bad) && err.contains(word), "{err}");
        }
    }
}

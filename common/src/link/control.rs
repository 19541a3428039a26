//! Setting up a link (TCP, TLS or not, multiplexer, hello exchange) and its control stream:
//! a cancel-safe message reader, a writer, and the heartbeat that finds a
//! dead peer.

use std::future::Future;
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::compat::TokioAsyncReadCompatExt;

use super::coalesce::Coalesce;
use super::frame::{self, FrameError};
use super::message::{Control, Hello, PROTOCOL_VERSION};
use super::mux::{self, Incoming, MuxStream, Opener, Side};
use super::tls::ClientTls;
use super::transport::{self, Inbound, LinkIo, Scheme};

/// Settings every link shares.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// How often each side pings; a peer silent for `MISSED_BEATS` periods is dead.
    pub heartbeat: Duration,
    /// Longest wait for the TCP connect and the hello exchange.
    pub handshake_timeout: Duration,
    /// Streams (calls) at once on one link.
    pub max_streams: usize,
    /// How a bare `HOST:PORT` is dialed (`tls://` and `plain://` say it
    /// per address): plain by default, which is what devices on a LAN
    /// need; relays and gateways set TLS.
    pub default_scheme: Scheme,
    /// What TLS dials trust.
    pub tls: ClientTls,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            // Well below the 30 s that the stingiest NATs keep an idle TCP mapping.
            heartbeat: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            max_streams: 4096,
            default_scheme: Scheme::Plain,
            tls: ClientTls::default(),
        }
    }
}

/// Periods of silence after which a peer is declared dead.
pub const MISSED_BEATS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{0}")]
    Address(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with {addr} failed: {detail}")]
    Tls { addr: String, detail: String },
    #[error("{addr} did not complete the handshake within {secs} s")]
    Timeout { addr: String, secs: u64 },
    #[error("{addr} refused the link: {reason}")]
    Refused { addr: String, reason: String },
    #[error("{addr} speaks protocol version {theirs}, this program speaks {PROTOCOL_VERSION}")]
    Version { addr: String, theirs: u16 },
    #[error("{addr} broke the handshake: {detail}")]
    Protocol { addr: String, detail: String },
    #[error("link to {addr}: {source}")]
    Frame { addr: String, source: FrameError },
    #[error("link to {addr} closed")]
    Closed { addr: String },
}

/// An established link: the peer's hello, a way to open call streams, the call
/// streams the peer opens, and the control stream.
pub struct Link {
    pub peer: Hello,
    pub peer_addr: String,
    pub opener: Opener,
    pub inbound: Incoming,
    pub reader: ControlReader,
    pub writer: ControlWriter,
}

impl Link {
    /// Takes the call streams the peer opens, for a task other than the
    /// link's actor (a device answering calls); the actor then sees none.
    pub fn take_inbound(&mut self) -> Incoming {
        std::mem::replace(&mut self.inbound, Incoming::none())
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("peer", &self.peer)
            .field("peer_addr", &self.peer_addr)
            .finish()
    }
}

/// Dials `addr` (`HOST:PORT`, `tls://HOST:PORT` or `plain://HOST:PORT`; see
/// [`transport`]), runs the multiplexer as its client and says hello.
pub async fn dial(addr: &str, hello: Hello, cfg: &LinkConfig) -> Result<Link, LinkError> {
    dial_from(addr, None, hello, cfg).await
}

/// [`dial`] from the local address `local` when given (see
/// [`transport::connect_from`]).
pub async fn dial_from(
    addr: &str,
    local: Option<std::net::IpAddr>,
    hello: Hello,
    cfg: &LinkConfig,
) -> Result<Link, LinkError> {
    let name = addr.to_owned();
    let io = transport::connect_from(addr, local, cfg).await?;
    let (opener, inbound) = start_mux(io, Side::Dialer, cfg);
    let setup = async {
        let mut control = opener
            .open()
            .await
            .map_err(|_| LinkError::Closed { addr: name.clone() })?;
        frame::write_msg(&mut control, &Control::Hello(hello))
            .await
            .map_err(|source| LinkError::Frame {
                addr: name.clone(),
                source,
            })?;
        let reply: Option<Control> =
            frame::read_msg(&mut control)
                .await
                .map_err(|source| LinkError::Frame {
                    addr: name.clone(),
                    source,
                })?;
        match reply {
            Some(Control::Hello(peer)) if peer.version == PROTOCOL_VERSION => Ok((peer, control)),
            Some(Control::Hello(peer)) => Err(LinkError::Version {
                addr: name.clone(),
                theirs: peer.version,
            }),
            Some(Control::Refused { reason }) => Err(LinkError::Refused {
                addr: name.clone(),
                reason,
            }),
            Some(other) => Err(LinkError::Protocol {
                addr: name.clone(),
                detail: format!("expected hello, got {other:?}"),
            }),
            None => Err(LinkError::Closed { addr: name.clone() }),
        }
    };
    let (peer, control) = within_handshake(cfg, &name, &opener, setup).await?;
    Ok(link(peer, name, opener, inbound, control))
}

/// Runs the multiplexer as server on an accepted connection (a `TcpStream`,
/// or an [`Inbound`] after TLS) and answers the dialer's hello: `answer`
/// sees the peer's hello and returns ours, or the reason to refuse the link.
pub async fn accept(
    conn: impl Into<Inbound>,
    cfg: &LinkConfig,
    answer: impl FnOnce(&Hello) -> Result<Hello, String>,
) -> Result<Link, LinkError> {
    let Inbound { io, peer: name } = conn.into();
    let (opener, mut inbound) = start_mux(io, Side::Acceptor, cfg);
    let setup = async {
        let mut control = inbound
            .recv()
            .await
            .ok_or_else(|| LinkError::Closed { addr: name.clone() })?;
        let first: Option<Control> =
            frame::read_msg(&mut control)
                .await
                .map_err(|source| LinkError::Frame {
                    addr: name.clone(),
                    source,
                })?;
        let peer = match first {
            Some(Control::Hello(h)) => h,
            Some(other) => {
                return Err(LinkError::Protocol {
                    addr: name.clone(),
                    detail: format!("expected hello, got {other:?}"),
                });
            }
            None => return Err(LinkError::Closed { addr: name.clone() }),
        };
        let refuse = |reason: String| Control::Refused { reason };
        if peer.version != PROTOCOL_VERSION {
            let reason = format!(
                "protocol version {} is not supported (this relay speaks {PROTOCOL_VERSION})",
                peer.version
            );
            let _ = frame::write_msg(&mut control, &refuse(reason)).await;
            return Err(LinkError::Version {
                addr: name.clone(),
                theirs: peer.version,
            });
        }
        match answer(&peer) {
            Ok(ours) => {
                frame::write_msg(&mut control, &Control::Hello(ours))
                    .await
                    .map_err(|source| LinkError::Frame {
                        addr: name.clone(),
                        source,
                    })?;
                Ok((peer, control))
            }
            Err(reason) => {
                let _ = frame::write_msg(&mut control, &refuse(reason.clone())).await;
                Err(LinkError::Refused {
                    addr: name.clone(),
                    reason,
                })
            }
        }
    };
    let (peer, control) = within_handshake(cfg, &name, &opener, setup).await?;
    Ok(link(peer, name, opener, inbound, control))
}

/// TCP or TLS, then [`Coalesce`], then yamux.
fn start_mux(io: LinkIo, side: Side, cfg: &LinkConfig) -> (Opener, Incoming) {
    mux::start(Coalesce::new(io).compat(), side, cfg.max_streams)
}

/// Runs a hello exchange under the handshake timeout; on failure or timeout
/// the half-made link is closed.
async fn within_handshake(
    cfg: &LinkConfig,
    name: &str,
    opener: &Opener,
    setup: impl Future<Output = Result<(Hello, MuxStream), LinkError>>,
) -> Result<(Hello, MuxStream), LinkError> {
    let result = match tokio::time::timeout(cfg.handshake_timeout, setup).await {
        Ok(result) => result,
        Err(_) => Err(LinkError::Timeout {
            addr: name.to_owned(),
            secs: cfg.handshake_timeout.as_secs(),
        }),
    };
    if result.is_err() {
        opener.close();
    }
    result
}

fn link(
    peer: Hello,
    peer_addr: String,
    opener: Opener,
    inbound: Incoming,
    control: MuxStream,
) -> Link {
    let (reader, writer) = split_control(control);
    Link {
        peer,
        peer_addr,
        opener,
        inbound,
        reader,
        writer,
    }
}

fn split_control(control: MuxStream) -> (ControlReader, ControlWriter) {
    let (r, w) = tokio::io::split(control);
    let codec = LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(frame::max_frame_len())
        .new_codec();
    (
        ControlReader {
            inner: FramedRead::with_capacity(r, codec, CONTROL_READ_CAPACITY),
        },
        ControlWriter { inner: w },
    )
}

/// The control reader's first buffer: none. Control messages are small (a
/// ping is a dozen bytes, a login about a hundred) and a link spends its
/// life idle, so the buffer is allocated by the read that needs it and
/// freed once a message leaves it empty (tokio-util's default of 8 KiB
/// was a quarter of an idle relay link's memory). A larger message (a
/// directory snapshot) makes the codec reserve what it needs.
const CONTROL_READ_CAPACITY: usize = 0;

/// Reads control messages. `next` is cancel-safe, so it can sit in a `select!`.
pub struct ControlReader {
    inner: FramedRead<ReadHalf<MuxStream>, LengthDelimitedCodec>,
}

impl ControlReader {
    /// The next message; `Ok(None)` when the peer closed the control stream.
    pub async fn next(&mut self) -> Result<Option<Control>, FrameError> {
        match self.inner.next().await {
            None => Ok(None),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                let max = frame::max_frame_len();
                Err(FrameError::TooLarge { len: max + 1, max })
            }
            Some(Err(e)) => Err(FrameError::Io(e)),
            Some(Ok(buf)) => {
                // Between messages the buffer goes: a link spends its life
                // idle, and the next read allocates what it needs.
                if self.inner.read_buffer().is_empty() {
                    *self.inner.read_buffer_mut() = BytesMut::new();
                }
                Ok(Some(postcard::from_bytes(&buf)?))
            }
        }
    }
}

/// Writes control messages.
pub struct ControlWriter {
    inner: WriteHalf<MuxStream>,
}

impl ControlWriter {
    pub async fn send(&mut self, msg: &Control) -> Result<(), FrameError> {
        frame::write_msg(&mut self.inner, msg).await
    }

    /// Sends a message already encoded by `frame::encode_msg`.
    pub async fn send_encoded(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        self.inner.write_all(frame).await?;
        self.inner.flush().await?;
        Ok(())
    }
}

/// Pings at a fixed period and tells when the peer has been silent too long.
#[derive(Debug)]
pub struct Heartbeat {
    period: Duration,
    ticks: Interval,
    last_heard: Instant,
    seq: u64,
}

impl Heartbeat {
    pub fn new(period: Duration) -> Heartbeat {
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Heartbeat {
            period,
            ticks,
            last_heard: Instant::now(),
            seq: 0,
        }
    }

    /// Call on every message from the peer.
    pub fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// Waits for the next beat (cancel-safe). Returns the ping to send, or
    /// `None` when the peer has missed too many beats and is dead.
    pub async fn beat(&mut self) -> Option<Control> {
        self.ticks.tick().await;
        if self.last_heard.elapsed() > self.period * MISSED_BEATS {
            return None;
        }
        self.seq += 1;
        Some(Control::Ping { seq: self.seq })
    }

    /// How long the peer may stay silent.
    pub fn deadline(&self) -> Duration {
        self.period * MISSED_BEATS
    }
}

/// Two linked ends over loopback TCP, the dialer's and the acceptor's,
/// for tests of what runs on a link.
#[cfg(test)]
pub(crate) async fn loopback_pair() -> (Link, Link) {
    let hello = |name: &str| Hello {
        version: PROTOCOL_VERSION,
        role: super::message::Role::Gateway,
        name: name.to_owned(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let far = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept(tcp, &LinkConfig::default(), |_| Ok(hello("far")))
            .await
            .unwrap()
    });
    let near = dial(&addr, hello("near"), &LinkConfig::default())
        .await
        .unwrap();
    (near, far.await.unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::message::Role;

    fn hello(name: &str, version: u16) -> Hello {
        Hello {
            version,
            role: Role::Gateway,
            name: name.to_owned(),
        }
    }

    #[tokio::test]
    async fn dial_and_accept_exchange_hellos() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut link = accept(tcp, &LinkConfig::default(), |h| {
                assert_eq!(h.name, "gw1");
                Ok(hello("relay-a", PROTOCOL_VERSION))
            })
            .await
            .unwrap();
            let msg = link.reader.next().await.unwrap();
            assert_eq!(msg, Some(Control::Ping { seq: 9 }));
            link.writer.send(&Control::Pong { seq: 9 }).await.unwrap();
            link
        });
        let mut link = dial(
            &addr,
            hello("gw1", PROTOCOL_VERSION),
            &LinkConfig::default(),
        )
        .await
        .unwrap();
        assert_eq!(link.peer.name, "relay-a");
        link.writer.send(&Control::Ping { seq: 9 }).await.unwrap();
        assert_eq!(
            link.reader.next().await.unwrap(),
            Some(Control::Pong { seq: 9 })
        );
        drop(server.await.unwrap());
    }

    #[tokio::test]
    async fn the_control_reader_holds_no_buffer_between_messages() {
        let (mut near, mut far) = loopback_pair().await;
        let kicked = |reason: String| Control::Kicked {
            number: "1002".parse().unwrap(),
            reason,
        };
        // A message in two writes, cut inside its length prefix; then one
        // larger than any first read.
        let frame = frame::encode_msg(&kicked("split".into())).unwrap();
        near.writer.send_encoded(&frame[..2]).await.unwrap();
        near.writer.send_encoded(&frame[2..]).await.unwrap();
        let long = kicked("x".repeat(20_000));
        near.writer.send(&long).await.unwrap();

        assert_eq!(
            far.reader.next().await.unwrap(),
            Some(kicked("split".into()))
        );
        assert_eq!(far.reader.inner.read_buffer().capacity(), 0);
        assert_eq!(far.reader.next().await.unwrap(), Some(long));
        assert_eq!(far.reader.inner.read_buffer().capacity(), 0);
        near.writer.send(&Control::Ping { seq: 3 }).await.unwrap();
        assert_eq!(
            far.reader.next().await.unwrap(),
            Some(Control::Ping { seq: 3 })
        );
    }

    #[tokio::test]
    async fn wrong_version_and_refusal_are_reported() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                let _ = accept(tcp, &LinkConfig::default(), |_| Err("no strangers".into())).await;
            }
        });
        let err = dial(&addr, hello("gw", 99), &LinkConfig::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("protocol version 99"), "{err}");
        let err = dial(&addr, hello("gw", PROTOCOL_VERSION), &LinkConfig::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{addr} refused the link: no strangers")
        );
    }

    #[tokio::test]
    async fn dial_and_accept_over_tls() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = crate::link::tls::test_pki::issue(&["127.0.0.1"]);
        let path = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let server =
            crate::link::tls::ServerTls::load(&path("c.pem", &cert), &path("c.key", &key)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cfg = LinkConfig {
            default_scheme: Scheme::Tls,
            tls: ClientTls::new(Some(&path("ca.pem", &ca))).unwrap(),
            ..LinkConfig::default()
        };
        let server_cfg = cfg.clone();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            assert_eq!(
                transport::sniff(&tcp, &server_cfg).await.unwrap(),
                Scheme::Tls
            );
            let inbound = transport::accept_tls(tcp, server.config(), &server_cfg)
                .await
                .unwrap();
            let mut link = accept(inbound, &server_cfg, |_| {
                Ok(hello("relay-a", PROTOCOL_VERSION))
            })
            .await
            .unwrap();
            let msg = link.reader.next().await.unwrap();
            assert_eq!(msg, Some(Control::Ping { seq: 1 }));
            link.writer.send(&Control::Pong { seq: 1 }).await.unwrap();
            // The second dialer does not trust this certificate.
            let (tcp, _) = listener.accept().await.unwrap();
            let refused = transport::accept_tls(tcp, server.config(), &server_cfg).await;
            assert!(refused.is_err());
            link.opener.closed().await;
        });
        let mut link = dial(&addr, hello("gw1", PROTOCOL_VERSION), &cfg)
            .await
            .unwrap();
        assert_eq!(link.peer.name, "relay-a");
        link.writer.send(&Control::Ping { seq: 1 }).await.unwrap();
        assert_eq!(
            link.reader.next().await.unwrap(),
            Some(Control::Pong { seq: 1 })
        );
        // Trusting the system roots only, the same dial is refused.
        let untrusting = LinkConfig {
            tls: ClientTls::default(),
            ..cfg
        };
        let err = dial(&addr, hello("gw1", PROTOCOL_VERSION), &untrusting)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&format!("TLS with {addr} failed")), "{err}");
    }
}

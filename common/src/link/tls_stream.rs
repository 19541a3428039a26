//! A TLS stream over TCP that holds no buffer while its link is idle.
//!
//! A relay keeps thousands of links open that carry a heartbeat now and
//! then. `tokio-rustls` drives rustls's buffered connection, which keeps a
//! 4 KiB read buffer per connection for as long as the connection lives:
//! on an idle link that buffer was a fifth of the relay's memory per link.
//! This stream drives rustls's unbuffered state machine instead and owns
//! the buffers: it asks the socket whether bytes are waiting before it
//! allocates one to read them into, and frees every buffer once it is
//! drained. Written by hand because no crate offers this: tokio-rustls and
//! the other rustls adapters all sit on the buffered connection.
//!
//! The rules rustls's unbuffered API sets, and how this stream keeps them:
//! - every record rustls asks us to encode goes into `outgoing`, which is
//!   sent in order and once; so a record is marked transmitted as soon as
//!   it is queued there;
//! - application data is encrypted only after a turn that emitted every
//!   record rustls had queued (a key update, an alert), so records leave in
//!   the order rustls made them;
//! - every turn of the state machine gets the received bytes not yet
//!   consumed, never an empty slice in their place: rustls keeps the front
//!   of a handshake message that spans records in that buffer, and panics
//!   when it is missing. A write's turn may so decrypt data; it goes to
//!   `plain` for the reader, which is never parked then: a reader waits for
//!   the socket only once every whole record has been turned.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::plain::{self, release_if_empty};

/// Room made for one read from the socket: a whole record of the largest
/// size (16 KiB of payload plus header and tag) fits.
const READ_ROOM: usize = 16 * 1024 + 512;

/// Plaintext taken per write: a whole yamux frame of pages (128 KiB plus
/// its header) becomes one encryption and one send.
const WRITE_MAX: usize = 128 * 1024 + 64;

/// Slices of a vectored write up to this size in all are joined into one
/// record (a yamux header and a small body); beyond it each slice is its
/// own record, which spares copying a page's 128 KiB to join them.
const JOIN_MAX: usize = 16 * 1024;

/// A write of at least this much is taken for part of a bulk transfer: its
/// buffer is kept for the next (see [`Outgoing`]).
const BULK: usize = 16 * 1024;

/// rustls's two connection types, for the one stream that drives either.
pub trait Unbuffered: Send + Unpin + 'static {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ServerConnectionData> {
        self.process_tls_records(incoming)
    }
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ClientConnectionData> {
        self.process_tls_records(incoming)
    }
}

/// What a turn of the state machine is asked to do once the connection may
/// carry application data.
enum Action<'a> {
    Nothing,
    Encrypt(&'a [u8]),
    CloseNotify,
}

/// What one turn of the state machine did.
#[derive(Debug, PartialEq, Eq)]
enum Turn {
    /// Decrypted application data went to `plain`.
    Plaintext,
    /// Records went to `outgoing` (handshake, alert, key update); turn again.
    Queued,
    /// The handshake waits for the peer's bytes.
    Blocked,
    /// Keys are up and nothing is pending: reads wait for the peer.
    Idle,
    /// The action's record went to `outgoing`.
    Done,
    /// The peer sent close_notify: no more data will come.
    PeerClosed,
    /// Both sides sent close_notify.
    Closed,
}

/// TLS over a TCP stream: rustls's record layer, with buffers that exist
/// only while they hold bytes.
pub struct TlsStream<C> {
    tcp: TcpStream,
    conn: C,
    /// Received bytes rustls has not consumed (at most a partial record
    /// between reads).
    incoming: Vec<u8>,
    /// Records made and not yet sent.
    outgoing: Outgoing,
    /// Decrypted bytes the reader has not taken; `taken` of them it has.
    plain: Vec<u8>,
    taken: usize,
    /// The peer's close_notify was seen: reads return the end of stream.
    peer_closed: bool,
    /// Our close_notify is queued: no more writes.
    close_sent: bool,
}

impl<C> std::fmt::Debug for TlsStream<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("tcp", &self.tcp)
            .field("incoming", &self.incoming.len())
            .field("outgoing", &self.outgoing.pending().len())
            .field("plain", &(self.plain.len() - self.taken))
            .finish_non_exhaustive()
    }
}

/// Runs the server side of a handshake on `tcp`.
pub async fn accept(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
) -> io::Result<TlsStream<UnbufferedServerConnection>> {
    let conn = UnbufferedServerConnection::new(config).map_err(invalid)?;
    TlsStream::new(tcp, conn).handshake().await
}

/// Runs the client side of a handshake on `tcp`, checking the server's
/// certificate against `name`.
pub async fn connect(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
) -> io::Result<TlsStream<UnbufferedClientConnection>> {
    let conn = UnbufferedClientConnection::new(config, name).map_err(invalid)?;
    TlsStream::new(tcp, conn).handshake().await
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<C: Unbuffered> TlsStream<C> {
    fn new(tcp: TcpStream, conn: C) -> TlsStream<C> {
        TlsStream {
            tcp,
            conn,
            incoming: Vec::new(),
            outgoing: Outgoing::default(),
            plain: Vec::new(),
            taken: 0,
            peer_closed: false,
            close_sent: false,
        }
    }

    async fn handshake(mut self) -> io::Result<TlsStream<C>> {
        std::future::poll_fn(|cx| self.poll_handshake(cx)).await?;
        Ok(self)
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.turn(Action::Nothing, None)? {
                Turn::Queued | Turn::Plaintext => continue,
                Turn::Blocked => {
                    ready!(self.poll_send(cx))?;
                    if ready!(self.poll_fill(cx))? == 0 {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the peer closed the connection during the TLS handshake",
                        )));
                    }
                }
                // Keys are up; our last flight must still reach the peer.
                Turn::Idle | Turn::Done | Turn::PeerClosed | Turn::Closed => {
                    return self.poll_send(cx);
                }
            }
        }
    }

    /// Turns rustls's state machine once on the received bytes. An error
    /// is returned after the alert that says it is queued for the peer.
    ///
    /// Decrypted data goes straight into `into` when it fits there and
    /// nothing is waiting before it, else to `plain`.
    fn turn(&mut self, action: Action<'_>, mut into: Option<&mut ReadBuf<'_>>) -> io::Result<Turn> {
        let status = self.conn.process(&mut self.incoming);
        let mut discard = status.discard;
        let outcome = match status.state {
            Err(e) => Err(e),
            Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                let mut outcome = Ok(Turn::Plaintext);
                while let Some(record) = traffic.next_record() {
                    match record {
                        Ok(record) => {
                            discard += record.discard;
                            match into.as_deref_mut() {
                                Some(buf)
                                    if self.plain.is_empty()
                                        && record.payload.len() <= buf.remaining() =>
                                {
                                    buf.put_slice(record.payload);
                                }
                                _ => self.plain.extend_from_slice(record.payload),
                            }
                        }
                        Err(e) => {
                            outcome = Err(e);
                            break;
                        }
                    }
                }
                outcome
            }
            Ok(ConnectionState::EncodeTlsData(mut data)) => self
                .outgoing
                .append(1024, false, |out| data.encode(out).map_err(encode_room))
                .map(|()| Turn::Queued),
            // The records are in `outgoing`, which goes out in order and once.
            Ok(ConnectionState::TransmitTlsData(data)) => {
                data.done();
                Ok(Turn::Queued)
            }
            Ok(ConnectionState::BlockedHandshake) => Ok(Turn::Blocked),
            Ok(ConnectionState::WriteTraffic(mut traffic)) => match action {
                Action::Nothing => Ok(Turn::Idle),
                Action::Encrypt(data) => {
                    let room = data.len() + (data.len() / 16384 + 1) * 64;
                    self.outgoing
                        .append(room, data.len() >= BULK, |out| {
                            traffic.encrypt(data, out).map_err(encrypt_room)
                        })
                        .map(|()| Turn::Done)
                }
                Action::CloseNotify => self
                    .outgoing
                    .append(64, false, |out| {
                        traffic.queue_close_notify(out).map_err(encrypt_room)
                    })
                    .map(|()| Turn::Done),
            },
            Ok(ConnectionState::PeerClosed) => {
                self.peer_closed = true;
                Ok(Turn::PeerClosed)
            }
            Ok(ConnectionState::Closed) => {
                self.peer_closed = true;
                Ok(Turn::Closed)
            }
            // No early data is enabled on either side; anything else is a
            // state a newer rustls added.
            Ok(other) => Err(rustls::Error::General(format!(
                "unexpected TLS state {other:?}"
            ))),
        };
        self.incoming.drain(..discard);
        release_if_empty(&mut self.incoming);
        outcome.map_err(|e| {
            self.send_alert();
            invalid(e)
        })
    }

    /// After an error rustls queues the alert that names it: this sends it
    /// if the socket takes it now, so the peer learns why.
    fn send_alert(&mut self) {
        let status = self.conn.process(&mut self.incoming);
        if let Ok(ConnectionState::EncodeTlsData(mut data)) = status.state
            && self
                .outgoing
                .append(64, false, |out| data.encode(out).map_err(encode_room))
                .is_ok()
        {
            let _ = self.try_send();
        }
    }

    /// Reads what the socket holds into `incoming`; 0 at the end of the
    /// stream (see [`plain::poll_fill`]: room is made only once the socket
    /// is readable, so an idle link holds no read buffer).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        plain::poll_fill(&mut self.tcp, cx, &mut self.incoming, READ_ROOM)
    }

    /// Sends `outgoing` whole.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.outgoing.pending().is_empty() {
            ready!(self.tcp.poll_write_ready(cx))?;
            // Any error but WouldBlock ends the loop through `?`.
            let _ = self.try_send()?;
        }
        Poll::Ready(Ok(()))
    }

    /// Sends what the socket takes now, without waiting; true once
    /// `outgoing` is empty.
    fn try_send(&mut self) -> io::Result<bool> {
        while !self.outgoing.pending().is_empty() {
            match self.tcp.try_write(self.outgoing.pending()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.outgoing.sent(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Encrypts `data` (at most [`WRITE_MAX`] of it) behind the records
    /// rustls has queued; returns how much it took.
    fn encrypt(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.close_sent {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after the TLS stream was shut down",
            ));
        }
        let data = &data[..data.len().min(WRITE_MAX)];
        loop {
            match self.turn(Action::Encrypt(data), None)? {
                Turn::Done => return Ok(data.len()),
                Turn::Queued | Turn::PeerClosed | Turn::Plaintext => continue,
                Turn::Blocked | Turn::Idle | Turn::Closed => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the TLS connection cannot carry data now",
                    ));
                }
            }
        }
    }

    /// Encrypts the slices, each its own record, at most [`WRITE_MAX`] of
    /// them in all, and sends what the socket takes now.
    fn write(&mut self, cx: &mut Context<'_>, slices: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        // What was written before goes first: that is the back-pressure.
        ready!(self.poll_send(cx))?;
        let mut taken = 0;
        for slice in slices.iter().filter(|s| !s.is_empty()) {
            let n = self.encrypt(&slice[..slice.len().min(WRITE_MAX - taken)])?;
            taken += n;
            if n < slice.len() || taken == WRITE_MAX {
                break;
            }
        }
        self.try_send()?;
        Poll::Ready(Ok(taken))
    }
}

/// Records made and not yet sent: `buf[sent..filled]`.
///
/// The bytes past `filled` stay initialised, so a buffer kept between
/// writes is not zeroed again: rustls encrypts into an initialised slice.
/// (Zeroing 128 KiB per frame, with a copy that joined each body to its
/// header, made bulk TLS about 15% slower.) It is kept only after a bulk
/// write, when another is likely; once a small write (a heartbeat, a
/// confirmation) has gone, it is freed, so an idle link holds none.
#[derive(Default)]
struct Outgoing {
    buf: Vec<u8>,
    filled: usize,
    sent: usize,
    keep: bool,
}

impl Outgoing {
    fn pending(&self) -> &[u8] {
        &self.buf[self.sent..self.filled]
    }

    /// Lets `fill` write into at least `room` bytes after what is queued and
    /// keeps what it wrote; `fill` answers `Err(Some(size))` when it needs
    /// `size`. `bulk` says whether this write is part of a bulk transfer.
    fn append(
        &mut self,
        mut room: usize,
        bulk: bool,
        mut fill: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
    ) -> Result<(), rustls::Error> {
        self.keep = bulk;
        loop {
            if self.buf.len() < self.filled + room {
                self.buf.resize(self.filled + room, 0);
            }
            match fill(&mut self.buf[self.filled..]) {
                Ok(n) => {
                    self.filled += n;
                    return Ok(());
                }
                Err(Some(needed)) if needed > room => room = needed,
                Err(_) => {
                    return Err(rustls::Error::General(
                        "cannot make a TLS record: rustls refused the buffer".to_owned(),
                    ));
                }
            }
        }
    }

    /// `n` more bytes went to the socket.
    fn sent(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.filled {
            self.sent = 0;
            self.filled = 0;
            if !self.keep {
                self.buf = Vec::new();
            }
        }
    }
}

fn encode_room(e: EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(e) => Some(e.required_size),
        EncodeError::AlreadyEncoded => None,
    }
}

fn encrypt_room(e: EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(e) => Some(e.required_size),
        _ => None,
    }
}

impl<C: Unbuffered> AsyncRead for TlsStream<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.taken < this.plain.len() {
                let n = buf.remaining().min(this.plain.len() - this.taken);
                buf.put_slice(&this.plain[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.plain.len() {
                    this.plain = Vec::new();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.peer_closed {
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            let turn = loop {
                match this.turn(Action::Nothing, Some(buf))? {
                    Turn::Queued => continue,
                    turn => break turn,
                }
            };
            // A key update or ticket rustls answered with: out if it fits now,
            // else with the next write.
            this.try_send()?;
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
            match turn {
                Turn::Plaintext | Turn::PeerClosed | Turn::Closed => continue,
                _ => {}
            }
            if ready!(this.poll_fill(cx))? == 0 {
                let detail = if this.incoming.is_empty() {
                    "the peer closed the connection without a TLS close_notify"
                } else {
                    "the peer closed the connection in the middle of a TLS record"
                };
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, detail)));
            }
        }
    }
}

impl<C: Unbuffered> AsyncWrite for TlsStream<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write(cx, &[IoSlice::new(buf)])
    }

    /// Small slices become one record: a yamux header and a small body go
    /// out together, as [`Coalesce`](super::coalesce::Coalesce) hands them.
    /// A large body is a record of its own behind its header's, so it is
    /// not copied to join them.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let parts = bufs.iter().filter(|b| !b.is_empty()).count();
        if parts > 1 && total <= JOIN_MAX {
            let mut joined = Vec::with_capacity(total);
            for b in bufs {
                joined.extend_from_slice(b);
            }
            self.write(cx, &[IoSlice::new(&joined)])
        } else {
            self.write(cx, bufs)
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.close_sent {
            ready!(this.poll_send(cx))?;
            loop {
                match this.turn(Action::CloseNotify, None)? {
                    Turn::Done | Turn::Closed => break,
                    Turn::Queued | Turn::PeerClosed | Turn::Plaintext => continue,
                    // Mid-handshake there is nothing to close politely.
                    Turn::Blocked | Turn::Idle => break,
                }
            }
            this.close_sent = true;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::tls::test_pki::issue;
    use crate::link::tls::{ClientTls, ServerTls, server_name};
    use crate::link::transport::LinkStream;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    struct Pki {
        _dir: tempfile::TempDir,
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    }

    /// A relay's certificate for 127.0.0.1 and a client that trusts its CA
    /// (or, with `trusted` false, another CA).
    fn pki(trusted: bool) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = issue(&["127.0.0.1"]);
        let (other_ca, _, _) = issue(&["127.0.0.1"]);
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let server = ServerTls::load(&write("r.pem", &cert), &write("r.key", &key)).unwrap();
        let ca = write("ca.pem", if trusted { &ca } else { &other_ca });
        let client = ClientTls::new(Some(&ca)).unwrap();
        Pki {
            server: server.config(),
            client: client.config().unwrap(),
            _dir: dir,
        }
    }

    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dial = TcpStream::connect(listener.local_addr().unwrap());
        let (dialed, accepted) = tokio::join!(dial, listener.accept());
        (dialed.unwrap(), accepted.unwrap().0)
    }

    #[derive(Clone, Copy, Debug)]
    enum Stack {
        Ours,
        TokioRustls,
    }

    /// A client and a server over loopback TCP, each end on `stack`.
    async fn handshake(
        pki: &Pki,
        client: Stack,
        server: Stack,
    ) -> (
        io::Result<Box<dyn LinkStream>>,
        io::Result<Box<dyn LinkStream>>,
    ) {
        let (c, s) = tcp_pair().await;
        let name = server_name("127.0.0.1:1").unwrap();
        let (client_config, server_config) = (pki.client.clone(), pki.server.clone());
        let dialing = async move {
            match client {
                Stack::Ours => connect(c, client_config, name)
                    .await
                    .map(|s| Box::new(s) as Box<dyn LinkStream>),
                Stack::TokioRustls => tokio_rustls::TlsConnector::from(client_config)
                    .connect(name, c)
                    .await
                    .map(|s| Box::new(s) as Box<dyn LinkStream>),
            }
        };
        let accepting = async move {
            match server {
                Stack::Ours => accept(s, server_config)
                    .await
                    .map(|s| Box::new(s) as Box<dyn LinkStream>),
                Stack::TokioRustls => tokio_rustls::TlsAcceptor::from(server_config)
                    .accept(s)
                    .await
                    .map(|s| Box::new(s) as Box<dyn LinkStream>),
            }
        };
        tokio::join!(dialing, accepting)
    }

    /// `len` bytes that differ from position to position.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| {
                (i as u8)
                    .wrapping_mul(31)
                    .wrapping_add(seed ^ (i >> 8) as u8)
            })
            .collect()
    }

    /// Writes `data` in pieces of changing sizes, some as two slices.
    async fn send_in_pieces(w: &mut (impl AsyncWrite + Unpin), data: &[u8]) {
        let sizes = [1, 12, 700, 16_384, 16_385, 40_000, 131_084, 3];
        let (mut at, mut i) = (0, 0);
        while at < data.len() {
            let end = (at + sizes[i % sizes.len()]).min(data.len());
            let piece = &data[at..end];
            if i % 3 == 0 && piece.len() > 12 {
                let slices = [IoSlice::new(&piece[..12]), IoSlice::new(&piece[12..])];
                let n = w.write_vectored(&slices).await.unwrap();
                assert!(n > 0);
                at += n;
            } else {
                w.write_all(piece).await.unwrap();
                at = end;
            }
            i += 1;
        }
        w.flush().await.unwrap();
    }

    #[tokio::test]
    async fn carries_data_both_ways_with_tokio_rustls_and_itself_at_either_end() {
        let pki = pki(true);
        for (client, server) in [
            (Stack::Ours, Stack::TokioRustls),
            (Stack::TokioRustls, Stack::Ours),
            (Stack::Ours, Stack::Ours),
        ] {
            let (c, s) = handshake(&pki, client, server).await;
            let (mut c, mut s) = (c.unwrap(), s.unwrap());
            let up = pattern(3 << 20, 1);
            let down = pattern(2 << 20, 2);
            let (mut c_read, mut c_write) = tokio::io::split(&mut c);
            let (mut s_read, mut s_write) = tokio::io::split(&mut s);
            let mut got_up = Vec::new();
            let mut got_down = Vec::new();
            tokio::join!(
                async {
                    send_in_pieces(&mut c_write, &up).await;
                    c_write.shutdown().await.unwrap();
                },
                async {
                    send_in_pieces(&mut s_write, &down).await;
                    s_write.shutdown().await.unwrap();
                },
                async { s_read.read_to_end(&mut got_up).await.unwrap() },
                async { c_read.read_to_end(&mut got_down).await.unwrap() },
            );
            assert!(got_up == up, "{client:?} to {server:?}: the upload differs");
            assert!(
                got_down == down,
                "{server:?} to {client:?}: the download differs"
            );
        }
    }

    #[tokio::test]
    async fn an_idle_stream_holds_no_buffer() {
        let pki = pki(true);
        let (c, s) = tcp_pair().await;
        let name = server_name("127.0.0.1:1").unwrap();
        let (c, s) = tokio::join!(
            connect(c, pki.client.clone(), name),
            accept(s, pki.server.clone())
        );
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        for round in 0..3u8 {
            let ping = pattern(20_000, round);
            c.write_all(&ping).await.unwrap();
            c.flush().await.unwrap();
            let mut got = vec![0; ping.len()];
            s.read_exact(&mut got).await.unwrap();
            assert_eq!(got, ping);
            s.write_all(b"pong").await.unwrap();
            s.flush().await.unwrap();
            let mut pong = [0; 4];
            c.read_exact(&mut pong).await.unwrap();
            assert_eq!(&pong, b"pong");
        }
        // A bulk write's buffer is kept for the next; the heartbeat-sized
        // write after it lets it go.
        c.write_all(b"ping").await.unwrap();
        c.flush().await.unwrap();
        let mut ping = [0; 4];
        s.read_exact(&mut ping).await.unwrap();
        for (side, held) in [
            (
                "client",
                [
                    c.incoming.capacity(),
                    c.outgoing.buf.capacity(),
                    c.plain.capacity(),
                ],
            ),
            (
                "server",
                [
                    s.incoming.capacity(),
                    s.outgoing.buf.capacity(),
                    s.plain.capacity(),
                ],
            ),
        ] {
            assert_eq!(held, [0, 0, 0], "{side}: incoming, outgoing, plain");
        }
    }

    #[tokio::test]
    async fn a_peer_that_drops_the_connection_without_close_notify_is_an_error() {
        let pki = pki(true);
        // The server goes, having read all the client sent (a client that
        // went would leave the server's session tickets unread, and its
        // kernel would reset the connection instead).
        let (c, s) = handshake(&pki, Stack::Ours, Stack::TokioRustls).await;
        let mut c = c.unwrap();
        drop(s);
        let mut buf = [0; 16];
        let err = c.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            err.to_string().contains("without a TLS close_notify"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_untrusted_certificate_fails_the_handshake_and_the_server_hears_why() {
        let pki = pki(false);
        let (c, s) = handshake(&pki, Stack::Ours, Stack::Ours).await;
        let client_err = c
            .err()
            .expect("the client trusted an unknown CA")
            .to_string();
        assert!(client_err.contains("UnknownIssuer"), "{client_err}");
        let server_err = s
            .err()
            .expect("the server finished the handshake")
            .to_string();
        assert!(server_err.contains("received fatal alert"), "{server_err}");
    }

    /// Forwards `from` to `to` one byte per write, yielding between them,
    /// so every record reaches the far end in pieces.
    async fn trickle(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
    ) {
        let mut byte = [0u8; 1];
        while let Ok(1) = from.read(&mut byte).await {
            if to.write_all(&byte).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let _ = to.shutdown().await;
    }

    #[tokio::test]
    async fn records_that_arrive_a_byte_at_a_time_are_put_together() {
        let pki = pki(true);
        // client <-> (trickle both ways) <-> our server
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_addr = front.local_addr().unwrap();
        let (to_server, at_server) = tcp_pair().await;
        let accepting = accept(at_server, pki.server.clone());
        let proxy = tokio::spawn(async move {
            let (client_side, _) = front.accept().await.unwrap();
            let (cr, cw) = client_side.into_split();
            let (sr, sw) = to_server.into_split();
            tokio::join!(trickle(cr, sw), trickle(sr, cw));
        });
        let dialing = async {
            let tcp = TcpStream::connect(front_addr).await.unwrap();
            let name = server_name("127.0.0.1:1").unwrap();
            tokio_rustls::TlsConnector::from(pki.client.clone())
                .connect(name, tcp)
                .await
        };
        let (c, s) = tokio::join!(dialing, accepting);
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        let words = pattern(3_000, 7);
        c.write_all(&words).await.unwrap();
        c.flush().await.unwrap();
        let mut got = vec![0; words.len()];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(got, words);
        s.write_all(&words[..500]).await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, words[..500]);
        drop((c, s));
        proxy.await.unwrap();
    }

    #[tokio::test]
    async fn bytes_that_are_not_tls_fail_the_handshake_with_the_reason() {
        let pki = pki(true);
        for junk in [
            // A handshake record whose length runs past anything allowed.
            vec![0x16, 0x03, 0x01, 0xff, 0xff, 0x01],
            // A well-framed record holding no ClientHello.
            [vec![0x16, 0x03, 0x01, 0x00, 0x20], vec![0xab; 0x20]].concat(),
            // Plain text, as from a confused HTTP client.
            b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n".to_vec(),
        ] {
            let (mut c, s) = tcp_pair().await;
            c.write_all(&junk).await.unwrap();
            // The refusal comes at once, not at a timeout.
            let refused = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                accept(s, pki.server.clone()),
            )
            .await
            .expect("the handshake hung on bytes that are not TLS");
            let err = refused.expect_err("junk passed for a handshake");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{junk:?}: {err}");
        }
    }

    #[tokio::test]
    async fn key_updates_from_the_peer_are_followed_and_answered() {
        let pki = pki(true);
        let (c, s) = tcp_pair().await;
        let name = server_name("127.0.0.1:1").unwrap();
        let (c, s) = tokio::join!(
            tokio_rustls::TlsConnector::from(pki.client.clone()).connect(name, c),
            accept(s, pki.server.clone())
        );
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        for round in 0..4u8 {
            // A key update that asks for ours in return.
            c.get_mut().1.refresh_traffic_keys().unwrap();
            let word = pattern(5_000, round);
            c.write_all(&word).await.unwrap();
            c.flush().await.unwrap();
            let mut got = vec![0; word.len()];
            s.read_exact(&mut got).await.unwrap();
            assert_eq!(got, word, "round {round}");
            s.write_all(&word).await.unwrap();
            s.flush().await.unwrap();
            let mut back = vec![0; word.len()];
            c.read_exact(&mut back).await.unwrap();
            assert_eq!(back, word, "round {round}");
        }
    }
}

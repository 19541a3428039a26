//! The stream multiplexer under every link: a yamux connection driven by one
//! task, with a cloneable handle that opens streams and a queue of the streams
//! the other side opened.
//!
//! yamux's `Connection` makes progress only while it is polled, so one task
//! owns it and polls both directions; everything else talks to that task
//! through bounded channels.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};
use tokio_util::sync::CancellationToken;
pub use yamux::Packet;

use super::message::CHUNK_FRAME_LEN;

/// A multiplexed stream, speaking tokio's I/O traits. It holds one of its
/// link's stream permits until it is dropped.
///
/// The yamux stream is boxed so that a `MuxStream` is three words, cheap
/// to move through the link's queues; one allocation per call is nothing
/// beside what a call allocates anyway.
#[derive(Debug)]
pub struct MuxStream {
    inner: Box<Compat<yamux::Stream>>,
    _permit: OwnedSemaphorePermit,
}

impl MuxStream {
    fn new(stream: yamux::Stream, permit: OwnedSemaphorePermit) -> MuxStream {
        MuxStream {
            inner: Box::new(stream.compat()),
            _permit: permit,
        }
    }

    /// Takes the next frame body the peer sent on this stream, whole and
    /// without a copy (`None` at the end of the stream): what a hop
    /// forwards. Mixed with [`AsyncRead`], a body partly read is handed
    /// over from where the reads stopped.
    pub fn poll_packet(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Packet>>> {
        futures::Stream::poll_next(Pin::new(self.inner.get_mut()), cx)
    }
}

impl AsyncRead for MuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

/// The streams the other side opened, in the order it opened them.
///
/// A futures channel, for the reason [`Opener`] gives.
#[derive(Debug)]
pub struct Incoming(futures::channel::mpsc::Receiver<MuxStream>);

impl Incoming {
    /// The next stream; `None` once the link is gone. Cancel-safe (a
    /// `select!` arm may drop it without losing a stream).
    pub async fn recv(&mut self) -> Option<MuxStream> {
        futures::StreamExt::next(&mut self.0).await
    }

    /// A queue that yields nothing, at once: for a link whose streams are
    /// taken elsewhere.
    pub fn none() -> Incoming {
        let (_, rx) = futures::channel::mpsc::channel(0);
        Incoming(rx)
    }
}

/// Which end of the TCP connection we are: the dialer is the yamux client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Dialer,
    Acceptor,
}

/// Streams the other side may open and we have not yet taken; beyond this the
/// newest is refused (reset), which the caller sees as a failed hop.
const INBOUND_QUEUE: usize = 1024;
/// Open requests the driver takes into its own queue (for when yamux cannot
/// open a stream yet), and the channel's buffer before it. Beyond those,
/// each waiting `Opener::open` holds its one request in the channel (a
/// futures channel gives every sender a slot, and each call sends from its
/// own clone), so what waits is bounded by the callers waiting.
const OPEN_QUEUE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error("link closed")]
    Closed,
    #[error("too many calls on this link at once")]
    TooManyStreams,
    #[error("multiplexer: {0}")]
    Yamux(#[from] yamux::ConnectionError),
}

type OpenReply = oneshot::Sender<Result<MuxStream, MuxError>>;

/// Opens streams on a link. Cheap to clone; the link lives while its driver runs.
///
/// The requests travel on a futures channel, not a tokio one: tokio's
/// allocates its first block of 32 slots and a cache-padded header when it
/// is made (800 bytes that every idle link held); this one allocates per
/// message.
#[derive(Clone, Debug)]
pub struct Opener {
    requests: futures::channel::mpsc::Sender<OpenReply>,
    closed: CancellationToken,
}

impl Opener {
    pub async fn open(&self) -> Result<MuxStream, MuxError> {
        use futures::SinkExt;
        let (tx, rx) = oneshot::channel();
        self.requests
            .clone()
            .send(tx)
            .await
            .map_err(|_| MuxError::Closed)?;
        rx.await.map_err(|_| MuxError::Closed)?
    }

    /// Fires once the link's driver has stopped.
    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.closed.cancelled()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Asks the driver to close the link.
    pub fn close(&self) {
        self.closed.cancel();
    }
}

/// yamux's own stream limit: above ours, because yamux tears the whole
/// connection down when either side goes over it, and a stream we dropped
/// (its permit back) stays in yamux's count, here and at the peer, until the
/// connection has been polled again. Our permits refuse one call instead.
fn yamux_stream_limit(max_streams: usize) -> usize {
    max_streams + max_streams / 4 + 16
}

/// yamux settings for every link: more streams than the default 512 (a busy
/// gateway carries many calls at once); the per-stream window keeps its
/// 256 KiB default and never grows (the connection window is exactly the
/// streams times that), which is what bounds memory per call.
fn config(max_streams: usize) -> yamux::Config {
    let limit = yamux_stream_limit(max_streams);
    let mut cfg = yamux::Config::default();
    // yamux asserts window >= streams * credit at every step, so lift the window first.
    cfg.set_max_connection_receive_window(None);
    cfg.set_max_num_streams(limit);
    cfg.set_max_connection_receive_window(Some(limit * yamux::DEFAULT_CREDIT as usize));
    // A framed page chunk goes out as one yamux frame (not eight of
    // yamux's default 16 KiB).
    cfg.set_split_send_size(CHUNK_FRAME_LEN);
    cfg
}

// Two page chunks fill a stream's window exactly (see CHUNK_FRAME_LEN); a
// yamux that changed its window would break that.
const _: () = assert!(2 * CHUNK_FRAME_LEN == yamux::DEFAULT_CREDIT as usize);

/// Starts the driver for a connection on `io` and returns the opener and the
/// inbound streams. The driver ends when the connection fails, the peer
/// closes it, or `Opener::close` is called; then `Opener::closed` fires and
/// the inbound receiver yields `None`.
///
/// At most `max_streams` streams are open at once, both directions together:
/// beyond that `Opener::open` fails with [`MuxError::TooManyStreams`] and a
/// stream the peer opens is refused (reset), while the link and its other
/// streams go on.
pub fn start<T>(io: T, side: Side, max_streams: usize) -> (Opener, Incoming)
where
    T: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin + Send + 'static,
{
    let mode = match side {
        Side::Dialer => yamux::Mode::Client,
        Side::Acceptor => yamux::Mode::Server,
    };
    let conn = yamux::Connection::new(io, config(max_streams), mode);
    let (open_tx, open_rx) = futures::channel::mpsc::channel(OPEN_QUEUE);
    let (in_tx, in_rx) = futures::channel::mpsc::channel(INBOUND_QUEUE);
    let closed = CancellationToken::new();
    let opener = Opener {
        requests: open_tx,
        closed: closed.clone(),
    };
    let permits = Arc::new(Semaphore::new(max_streams));
    tokio::spawn(drive(conn, open_rx, in_tx, closed, permits));
    (opener, Incoming(in_rx))
}

/// The driver's future. Not an `async fn`: one stores its arguments twice
/// (as passed, and again as the locals they are moved into), and yamux's
/// connection is most of this task, which every idle link keeps. The block
/// below uses what it captured in place.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
fn drive<T>(
    mut conn: yamux::Connection<T>,
    mut open_rx: futures::channel::mpsc::Receiver<OpenReply>,
    mut in_tx: futures::channel::mpsc::Sender<MuxStream>,
    closed: CancellationToken,
    permits: Arc<Semaphore>,
) -> impl Future<Output = ()>
where
    T: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin,
{
    async move {
        let mut waiting: VecDeque<OpenReply> = VecDeque::new();
        // In a block of its own so that the goodbye below does not keep
        // room for it.
        let result = {
            // Kept across polls so that Opener::close wakes this task.
            let close_requested = closed.cancelled();
            futures::pin_mut!(close_requested);
            poll_fn(|cx| {
                if close_requested.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ok(()));
                }
                // Inbound first: polling it is what moves every stream's bytes.
                loop {
                    match conn.poll_next_inbound(cx) {
                        Poll::Ready(Some(Ok(stream))) => {
                            // Dropping a stream refuses it (yamux resets it).
                            let Ok(permit) = permits.clone().try_acquire_owned() else {
                                tracing::warn!("too many streams on this link; refusing one");
                                continue;
                            };
                            let stream = MuxStream::new(stream, permit);
                            if in_tx.try_send(stream).is_err() {
                                tracing::warn!("inbound stream queue full; refusing a stream");
                            }
                        }
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                        Poll::Ready(None) => return Poll::Ready(Ok(())),
                        Poll::Pending => break,
                    }
                }
                // Take open requests only while few wait: when yamux cannot open
                // more (too many streams, or too many not yet acknowledged), the
                // requests stay in the bounded channel and `Opener::open` waits there,
                // instead of piling up here without limit.
                while waiting.len() < OPEN_QUEUE
                    && let Poll::Ready(Some(reply)) =
                        futures::StreamExt::poll_next_unpin(&mut open_rx, cx)
                {
                    waiting.push_back(reply);
                }
                let at_cap = waiting.len() == OPEN_QUEUE;
                let mut opened = false;
                while let Some(reply) = waiting.pop_front() {
                    if reply.is_closed() {
                        continue;
                    }
                    // At the limit: refuse this one call, keep the link and every
                    // call on it.
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        let _ = reply.send(Err(MuxError::TooManyStreams));
                        continue;
                    };
                    match conn.poll_new_outbound(cx) {
                        Poll::Ready(Ok(stream)) => {
                            opened = true;
                            let stream = MuxStream::new(stream, permit);
                            let _ = reply.send(Ok(stream));
                        }
                        Poll::Ready(Err(e)) => {
                            let _ = reply.send(Err(MuxError::Closed));
                            return Poll::Ready(Err(e));
                        }
                        Poll::Pending => {
                            waiting.push_front(reply);
                            break;
                        }
                    }
                }
                // A new stream's outgoing queue is only watched once the connection
                // is polled again; without this its first write would wait for
                // unrelated traffic. And requests left in the channel because the
                // queue was full are taken on that next poll.
                if opened || (at_cap && waiting.len() < OPEN_QUEUE) {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            })
            .await
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "link ended");
        }
        closed.cancel();
        // Say goodbye politely; a dead socket makes this fail fast.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            poll_fn(|cx| conn.poll_close(cx)),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::compat::TokioAsyncReadCompatExt;

    #[tokio::test]
    async fn both_sides_open_streams() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (open_a, mut in_a) = start(a.compat(), Side::Dialer, 64);
        let (open_b, mut in_b) = start(b.compat(), Side::Acceptor, 64);

        let mut s = open_a.open().await.unwrap();
        s.write_all(b"ping").await.unwrap();
        s.flush().await.unwrap();
        let mut r = in_b.recv().await.unwrap();
        let mut buf = [0u8; 4];
        r.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        // The acceptor opens a stream towards the dialer too.
        let mut s2 = open_b.open().await.unwrap();
        s2.write_all(b"pong").await.unwrap();
        s2.shutdown().await.unwrap();
        let mut r2 = in_a.recv().await.unwrap();
        let mut all = Vec::new();
        r2.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"pong");

        open_a.close();
        open_b.closed().await;
        assert!(in_b.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_stream_over_the_limit_is_refused_and_the_link_stays() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (open_a, _in_a) = start(a.compat(), Side::Dialer, 2);
        let (_open_b, mut in_b) = start(b.compat(), Side::Acceptor, 2);
        let mut first = open_a.open().await.unwrap();
        let second = open_a.open().await.unwrap();

        let third = open_a.open().await;

        assert!(matches!(third, Err(MuxError::TooManyStreams)), "{third:?}");
        assert!(
            !open_a.is_closed(),
            "the link must outlive a refused stream"
        );
        first.write_all(b"still").await.unwrap();
        first.flush().await.unwrap();
        let mut r = in_b.recv().await.unwrap();
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"still");
        // A stream that ends gives its place back.
        drop(second);
        open_a.open().await.expect("a stream once one ended");
    }

    #[tokio::test]
    async fn a_stream_the_peer_opens_over_the_limit_is_refused_and_the_link_stays() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (open_a, _in_a) = start(a.compat(), Side::Dialer, 8);
        let (open_b, mut in_b) = start(b.compat(), Side::Acceptor, 2);
        let mut streams = Vec::new();
        for word in [b"one!", b"two!", b"3rd!"] {
            let mut s = open_a.open().await.unwrap();
            s.write_all(word).await.unwrap();
            s.flush().await.unwrap();
            streams.push(s);
        }
        let (mut one, mut two) = (in_b.recv().await.unwrap(), in_b.recv().await.unwrap());

        // The third is reset: its opener reads an error or the end, never data.
        let mut buf = [0u8; 4];
        let third = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            streams[2].read(&mut buf),
        )
        .await
        .expect("the refused stream was never reset");
        assert!(matches!(third, Err(_) | Ok(0)), "{third:?}");
        assert!(
            !open_b.is_closed(),
            "the link must outlive a refused stream"
        );
        one.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"one!");
        two.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"two!");
    }
}

#[cfg(test)]
mod flow_control {
    //! Regression: with yamux 0.13 a stream whose read and write halves were
    //! polled by two tasks lost a wake-up (one waker slot for both) and a
    //! transfer through a hop stalled for good; 0.14 fixed it. This is the
    //! shape of every fax call: pages one way, confirmations the other.
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::compat::TokioAsyncReadCompatExt;

    type Ends = (Opener, Incoming);

    async fn tcp_pair() -> (Ends, Ends) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let (s, _) = l.accept().await.unwrap();
        // As on real links (control::dial / accept).
        c.set_nodelay(true).unwrap();
        s.set_nodelay(true).unwrap();
        (
            start(c.compat(), Side::Dialer, 64),
            start(s.compat(), Side::Acceptor, 64),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn split_streams_through_a_hop_keep_flowing_both_ways() {
        const TOTAL: u64 = 64 << 20;
        const ACK_EVERY: u64 = 64 << 10;
        let ((sender, _), (_, mut hop_in)) = tcp_pair().await;
        let ((hop_out, _), (_, mut receiver_in)) = tcp_pair().await;
        // The hop splices with one task per direction.
        tokio::spawn(async move {
            let (mut ur, mut uw) = tokio::io::split(hop_in.recv().await.unwrap());
            let (mut dr, mut dw) = tokio::io::split(hop_out.open().await.unwrap());
            let up = tokio::spawn(async move { tokio::io::copy(&mut ur, &mut dw).await });
            let _ = tokio::io::copy(&mut dr, &mut uw).await;
            let _ = up.await;
        });
        let receiver = tokio::spawn(async move {
            let mut s = receiver_in.recv().await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let (mut total, mut next_ack) = (0u64, ACK_EVERY);
            while total < TOTAL {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "stream ended early at {total}");
                total += n as u64;
                if total >= next_ack {
                    s.write_all(b"conf").await.unwrap();
                    next_ack += ACK_EVERY;
                }
            }
            total
        });
        let (mut acks, mut w) = tokio::io::split(sender.open().await.unwrap());
        let confirmations = tokio::spawn(async move {
            let mut n = 0u64;
            let mut buf = [0u8; 4];
            while n < TOTAL / ACK_EVERY && acks.read_exact(&mut buf).await.is_ok() {
                n += 1;
            }
            n
        });
        let chunk = vec![7u8; 64 * 1024];
        let transfer = async {
            for _ in 0..TOTAL / chunk.len() as u64 {
                w.write_all(&chunk).await.unwrap();
            }
            w.flush().await.unwrap();
            (receiver.await.unwrap(), confirmations.await.unwrap())
        };
        // A hang guard, not a speed target: the transfer takes well under a second.
        let (got, acked) = tokio::time::timeout(Duration::from_secs(60), transfer)
            .await
            .expect("the transfer stalled");
        assert_eq!(got, TOTAL);
        assert_eq!(acked, TOTAL / ACK_EVERY);
    }
}

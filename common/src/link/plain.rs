//! A plain TCP link's stream: reads ahead, so that a frame costs one read
//! from the socket, not three.
//!
//! yamux reads each frame in two exact reads: its 12-byte header, then its
//! body. On a bare socket each is a system call, and since each fills what
//! it asked for, tokio cannot tell that the socket is drained: the next
//! read pays a third call only to hear `WouldBlock`. A fax device and its
//! gateway spend four in ten of their reads so. This stream reads what the
//! socket holds, up to [`AHEAD`], and serves the small reads from that.
//!
//! Like the TLS stream, it holds no buffer while its link is idle: room is
//! made once the socket is readable and freed once drained. A read of at
//! least [`AHEAD`] (a page's body) goes straight into the caller's buffer.
//! Written by hand because tokio's and futures' `BufReader`s keep their
//! buffer for the stream's whole life.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;

/// Room made for one read ahead: a frame with a page of a typical letter
/// (about 15 KB at fine resolution) fits whole with its header.
const AHEAD: usize = 16 * 1024;

/// A TCP stream that reads ahead into a buffer it frees once drained.
#[derive(Debug)]
pub struct PlainStream {
    tcp: TcpStream,
    /// Read from the socket, not yet taken; empty (no capacity) when
    /// `at == ahead.len()`.
    ahead: Vec<u8>,
    at: usize,
}

impl PlainStream {
    pub fn new(tcp: TcpStream) -> PlainStream {
        PlainStream {
            tcp,
            ahead: Vec::new(),
            at: 0,
        }
    }

    /// Bytes read ahead and not yet taken.
    fn unread(&self) -> &[u8] {
        &self.ahead[self.at..]
    }

    /// Frees the buffer once every byte in it is taken.
    fn release_if_drained(&mut self) {
        if self.at == self.ahead.len() {
            self.ahead = Vec::new();
            self.at = 0;
        }
    }
}

/// Reads what `tcp` holds, up to `room` bytes, onto the end of `buf`; 0 at
/// the end of the stream. Room is made only once the socket is readable,
/// and an empty `buf` that got nothing is freed: a link that waits holds
/// no buffer. Both kinds of link read their socket this way.
///
/// The read goes through the socket's `poll_read`, not `try_read_buf`: a
/// read that fills less than the room shows the socket drained, and
/// `poll_read` then clears its readiness, where `try_read_buf` leaves it
/// set and the next read pays a system call only to hear `WouldBlock`
/// (four in ten of every process's reads under load).
pub(super) fn poll_fill(
    tcp: &mut TcpStream,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
    room: usize,
) -> Poll<io::Result<usize>> {
    ready!(tcp.poll_read_ready(cx))?;
    buf.reserve(room);
    let read = poll_read_buf(Pin::new(tcp), cx, buf);
    release_if_empty(buf);
    read
}

/// Frees a drained buffer: an idle link holds none.
pub(super) fn release_if_empty(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() > 0 {
        *buf = Vec::new();
    }
}

impl AsyncRead for PlainStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.unread().is_empty() {
            if buf.remaining() >= AHEAD {
                return Pin::new(&mut this.tcp).poll_read(cx, buf);
            }
            if ready!(poll_fill(&mut this.tcp, cx, &mut this.ahead, AHEAD))? == 0 {
                return Poll::Ready(Ok(()));
            }
        }
        let n = buf.remaining().min(this.unread().len());
        buf.put_slice(&this.unread()[..n]);
        this.at += n;
        this.release_if_drained();
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PlainStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (PlainStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dial = TcpStream::connect(listener.local_addr().unwrap());
        let (dialed, accepted) = tokio::join!(dial, listener.accept());
        (PlainStream::new(accepted.unwrap().0), dialed.unwrap())
    }

    /// Frames as yamux writes them: a 12-byte header, then a body of any
    /// size, small, a page's, and larger than the room read ahead.
    fn frames() -> Vec<(Vec<u8>, Vec<u8>)> {
        [0, 5, 77, 15_438, AHEAD - 12, AHEAD, 3 * AHEAD + 7, 1]
            .into_iter()
            .enumerate()
            .map(|(i, len)| {
                let header = vec![i as u8; 12];
                let body = (0..len).map(|k| (k * 31 + i) as u8).collect();
                (header, body)
            })
            .collect()
    }

    #[tokio::test]
    async fn exact_reads_get_every_byte_in_order_and_the_buffer_goes_once_drained() {
        let (mut stream, mut far) = pair().await;
        let frames = frames();
        let sent = frames.clone();
        let writer = tokio::spawn(async move {
            for (header, body) in &sent {
                far.write_all(header).await.unwrap();
                far.write_all(body).await.unwrap();
            }
            far.shutdown().await.unwrap();
        });
        for (header, body) in &frames {
            let mut got = vec![0; 12];
            stream.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, header);
            let mut got = vec![0; body.len()];
            stream.read_exact(&mut got).await.unwrap();
            assert!(
                &got == body,
                "a body of {} bytes arrived changed",
                body.len()
            );
        }
        writer.await.unwrap();
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).await.unwrap(), 0);
        assert_eq!(stream.ahead.capacity(), 0, "the drained buffer is freed");
    }

    #[tokio::test]
    async fn a_header_and_its_body_come_from_one_read_of_the_socket() {
        let (mut stream, mut far) = pair().await;
        let body = vec![7u8; 300];
        far.write_all(&[[1u8; 12].as_slice(), &body].concat())
            .await
            .unwrap();
        let mut header = [0u8; 12];
        stream.read_exact(&mut header).await.unwrap();
        // The body was read with the header: it waits in the buffer.
        assert_eq!(stream.unread(), body.as_slice());
        let mut got = vec![0; body.len()];
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(got, body);
        assert_eq!(stream.ahead.capacity(), 0, "an idle link holds no buffer");
    }

    #[tokio::test]
    async fn writes_pass_through() {
        let (mut stream, mut far) = pair().await;
        stream.write_all(b"to the far end").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"to the far end");
    }
}

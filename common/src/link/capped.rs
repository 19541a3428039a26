//! A stream that refuses to carry more than a fixed number of bytes one way:
//! how a hop bounds a call's page data without parsing it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Wraps a stream; reading more than `cap` bytes from it fails with
/// [`io::ErrorKind::InvalidData`] naming the cap. Writes pass through.
#[derive(Debug)]
pub struct Capped<S> {
    inner: S,
    read: u64,
    cap: u64,
}

impl<S> Capped<S> {
    pub fn new(inner: S, cap: u64) -> Capped<S> {
        Capped {
            inner,
            read: 0,
            cap,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }
}

/// The error text a cut call carries; callers match on "over the limit".
pub fn over_cap(cap: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the call carried more than {cap} bytes, over the limit"),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read > this.cap {
            return Poll::Ready(Err(over_cap(this.cap)));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            this.read += (buf.filled().len() - before) as u64;
            if this.read > this.cap {
                // The bytes over the cap are not handed on.
                buf.set_filled(before);
                return Poll::Ready(Err(over_cap(this.cap)));
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn reads_up_to_the_cap_then_fails() {
        let mut ok = Capped::new(&b"12345"[..], 5);
        let mut out = Vec::new();
        ok.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"12345");

        let mut over = Capped::new(&b"123456"[..], 5);
        let err = over.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert!(err.to_string().contains("more than 5 bytes"), "{err}");
    }
}

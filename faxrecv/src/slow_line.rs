//! A slow line (`--read-rate-kib`): the call stream read no faster than a
//! set rate, like a fax modem on a poor line. Operators use it to see that
//! a slow callee slows its own call and nothing else, and that no relay or
//! gateway in between buffers what the callee has not read yet.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Most bytes taken from the stream in one read while throttled.
const MAX_READ: usize = 16 * 1024;

/// A call stream read at most `rate` bytes per second (a token bucket
/// holding a quarter second of reading, so an idle line cannot save up a
/// burst); without a rate it is the stream itself. Writes pass through.
#[derive(Debug)]
pub struct SlowLine<S> {
    inner: S,
    bucket: Option<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
    pause: Option<Pin<Box<Sleep>>>,
    scratch: Vec<u8>,
}

impl<S> SlowLine<S> {
    /// `rate` in bytes per second; `None` reads at full speed.
    pub fn new(inner: S, rate: Option<u64>) -> SlowLine<S> {
        let bucket = rate.map(|rate| {
            let rate = rate.max(1) as f64;
            Bucket {
                rate,
                capacity: (rate / 4.0).max(1.0),
                tokens: 0.0,
                last: Instant::now(),
                pause: None,
                scratch: Vec::new(),
            }
        });
        SlowLine { inner, bucket }
    }
}

impl Bucket {
    /// Waits until at least one byte may be read; returns how many may.
    fn poll_allowance(&mut self, cx: &mut Context<'_>) -> Poll<usize> {
        loop {
            if let Some(pause) = self.pause.as_mut() {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
            }
            let now = Instant::now();
            let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + earned).min(self.capacity);
            self.last = now;
            if self.tokens >= 1.0 {
                return Poll::Ready(self.tokens as usize);
            }
            // Wait for a worthwhile read, not for every single byte.
            let want = (MAX_READ as f64).min(self.capacity) - self.tokens;
            let wait = Duration::from_secs_f64(want / self.rate);
            self.pause = Some(Box::pin(tokio::time::sleep(wait)));
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SlowLine<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(bucket) = this.bucket.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        let allowed = ready!(bucket.poll_allowance(cx));
        let n = allowed.min(buf.remaining()).min(MAX_READ);
        // Through a scratch buffer: limiting the caller's ReadBuf in place
        // would need unsafe code, and this is a test misbehaviour.
        bucket.scratch.resize(n, 0);
        let mut limited = ReadBuf::new(&mut bucket.scratch[..n]);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let got = limited.filled().len();
        buf.put_slice(&bucket.scratch[..got]);
        bucket.tokens -= got as f64;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SlowLine<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads `total` bytes through a line of `rate`; returns them and the
    /// (paused, so exact) time it took.
    async fn read_through(rate: Option<u64>, total: usize) -> (Vec<u8>, Duration) {
        let (mut far, near) = tokio::io::duplex(total + 1);
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        far.write_all(&data).await.unwrap();
        drop(far);
        let mut line = SlowLine::new(near, rate);
        let started = Instant::now();
        let mut got = Vec::new();
        line.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, data, "the line must not change what it carries");
        (got, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn reads_no_faster_than_the_rate() {
        let (_, took) = read_through(Some(64 * 1024), 256 * 1024).await;
        // 256 KiB at 64 KiB/s is 4 s; the bucket starts empty and holds at most 0.25 s.
        assert!(took >= Duration::from_millis(3750), "{took:?}");
        assert!(took <= Duration::from_millis(4500), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_rate_it_is_the_stream_itself() {
        let (_, took) = read_through(None, 256 * 1024).await;
        assert_eq!(took, Duration::ZERO);
    }
}

//! One direction of a spliced call: each frame body the multiplexer
//! received on one stream is written, as it is, to the next stream. No
//! buffer of the hop's own and no copy of page data in this process (yamux
//! copies once, into the frame it sends); a hop bounds what a call may carry
//! without parsing it.
//!
//! Written by hand because the copy helpers (`tokio::io::copy` and friends)
//! read into a buffer of their own, which is one more copy of every byte at
//! every hop, and yamux's frame bodies are only reachable as packets.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

use super::mux::{MuxStream, Packet};

/// The error text a call cut at its cap carries; operators and tests look
/// for "over the limit".
fn over_cap(cap: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the call carried more than {cap} bytes, over the limit"),
    )
}

/// One direction: what came in, what is still to go out.
#[derive(Debug)]
pub struct Flow {
    /// A packet taken from the reading side, written up to `.1` so far.
    pending: Option<(Packet, usize)>,
    carried: u64,
    cap: u64,
    /// The reading side ended; the writing side is being shut down.
    ended: bool,
    /// ... and it has been.
    done: bool,
}

impl Flow {
    /// A direction that fails once more than `cap` bytes came through it;
    /// the bytes over the cap are not handed on.
    pub fn capped(cap: u64) -> Flow {
        Flow {
            pending: None,
            carried: 0,
            cap,
            ended: false,
            done: false,
        }
    }

    /// Bytes taken from the reading side so far.
    pub fn carried(&self) -> u64 {
        self.carried
    }

    /// Moves what `from` has for `to` until either has to wait. Ready once
    /// `from` ended and `to` has been shut down (the peer sees the end), or
    /// on the first error of either.
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut MuxStream,
        to: &mut MuxStream,
    ) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            if let Some((packet, written)) = &mut self.pending {
                let bytes = packet.as_ref();
                while *written < bytes.len() {
                    let n = ready!(Pin::new(&mut *to).poll_write(cx, &bytes[*written..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    *written += n;
                }
                self.pending = None;
            }
            if self.ended {
                ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            match ready!(from.poll_packet(cx)) {
                None => self.ended = true,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                Some(Ok(packet)) => {
                    self.carried += packet.as_ref().len() as u64;
                    if self.carried > self.cap {
                        return Poll::Ready(Err(over_cap(self.cap)));
                    }
                    self.pending = Some((packet, 0));
                }
            }
        }
    }
}

//! Frames: a big-endian u32 length, then that many bytes of payload, with a
//! hard cap. Reads are exact (no read-ahead), so a relay can read a call's
//! header frame and then splice the rest of the stream untouched.
//!
//! Messages are serde values encoded with postcard inside one frame.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Default cap on any frame: a page travels in chunks well below this.
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Smallest cap an operator may set: a page chunk plus its header must fit.
pub const MIN_FRAME_LIMIT: usize = super::message::CHUNK_FRAME_LEN + 1024;
/// Largest cap an operator may set.
pub const MAX_FRAME_LIMIT: usize = 64 << 20;

/// The cap in force. A process-wide setting rather than a parameter threaded
/// through every reader: a daemon sets it once at start (`--max-frame-bytes`),
/// before any link exists, and every frame reader of the process obeys it.
static FRAME_LIMIT: AtomicUsize = AtomicUsize::new(MAX_FRAME_LEN);

/// Sets the frame cap of this process, clamped to
/// [`MIN_FRAME_LIMIT`]..=[`MAX_FRAME_LIMIT`] (config validation names the
/// bounds before it gets here).
pub fn set_max_frame_len(len: usize) {
    FRAME_LIMIT.store(
        len.clamp(MIN_FRAME_LIMIT, MAX_FRAME_LIMIT),
        Ordering::Relaxed,
    );
}

/// The frame cap in force.
pub fn max_frame_len() -> usize {
    FRAME_LIMIT.load(Ordering::Relaxed)
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("stream ended in the middle of a frame")]
    Truncated,
    #[error("undecodable message: {0}")]
    Decode(#[from] postcard::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame. `Ok(None)` is a clean end of stream at a frame boundary.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let Some(len) = read_len(r, max).await? else {
        return Ok(None);
    };
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await.map_err(eof_is_truncated)?;
    Ok(Some(buf))
}

/// Reads a frame's length prefix and checks it against `max`; `Ok(None)`
/// at a clean end of stream (no byte of a next frame).
async fn read_len<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<usize>, FrameError> {
    let mut len = [0u8; 4];
    // Read the first byte on its own to tell a clean EOF from a truncated header.
    if r.read(&mut len[..1]).await? == 0 {
        return Ok(None);
    }
    r.read_exact(&mut len[1..])
        .await
        .map_err(eof_is_truncated)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(Some(len))
}

fn eof_is_truncated(e: std::io::Error) -> FrameError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        FrameError::Truncated
    } else {
        FrameError::Io(e)
    }
}

/// Writes `bytes` as one raw frame (no message encoding), with one write.
pub async fn write_raw<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<(), FrameError> {
    let mut frame = Vec::new();
    append_raw(&mut frame, bytes)?;
    w.write_all(&frame).await?;
    Ok(())
}

/// Appends `bytes` to `out` as one raw frame (no message encoding).
pub fn append_raw(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), FrameError> {
    let max = max_frame_len();
    if bytes.len() > max {
        return Err(FrameError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    out.reserve(4 + bytes.len());
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Reads one raw frame of at most `max` bytes and appends it to `out`;
/// returns its length, or `Ok(None)` at a clean end of stream.
pub async fn read_raw_into<R: AsyncRead + Unpin>(
    r: &mut R,
    out: &mut Vec<u8>,
    max: usize,
) -> Result<Option<usize>, FrameError> {
    let Some(len) = read_len(r, max).await? else {
        return Ok(None);
    };
    let start = out.len();
    out.resize(start + len, 0);
    r.read_exact(&mut out[start..])
        .await
        .map_err(eof_is_truncated)?;
    Ok(Some(len))
}

/// Encodes a message as one frame (length prefix included) ready to write.
pub fn encode_msg<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    append_msg(Vec::new(), msg)
}

/// [`encode_msg`] onto the end of `out`, which it returns.
fn append_msg<T: Serialize>(mut out: Vec<u8>, msg: &T) -> Result<Vec<u8>, FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    let mut out = postcard::to_extend(msg, out)?;
    let len = out.len() - start - 4;
    let max = max_frame_len();
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// Writes one message as one frame with a single write, so it travels in as few
/// multiplexer frames as possible.
pub async fn write_msg<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    write_msgs(w, std::slice::from_ref(msg)).await
}

/// Writes messages, each a frame, in a single write: they travel together,
/// as one multiplexer frame.
pub async fn write_msgs<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msgs: &[T],
) -> Result<(), FrameError> {
    let mut frames = Vec::new();
    for msg in msgs {
        frames = append_msg(frames, msg)?;
    }
    w.write_all(&frames).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one message; `Ok(None)` at a clean end of stream.
pub async fn read_msg<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> Result<Option<T>, FrameError> {
    match read_frame(r, max_frame_len()).await? {
        None => Ok(None),
        Some(buf) => Ok(Some(postcard::from_bytes(&buf)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_exact_reads() {
        let mut wire = Vec::new();
        write_msg(&mut wire, &("hello".to_owned(), 7u32))
            .await
            .unwrap();
        wire.extend_from_slice(b"raw tail");
        let mut r = &wire[..];
        let msg: (String, u32) = read_msg(&mut r).await.unwrap().unwrap();
        assert_eq!(msg, ("hello".to_owned(), 7));
        // Nothing beyond the frame was consumed.
        assert_eq!(r, b"raw tail");
    }

    #[tokio::test]
    async fn messages_written_together_read_back_in_order() {
        let mut wire = Vec::new();
        write_msgs(&mut wire, &[7u32, 300, 70_000]).await.unwrap();
        let mut r = &wire[..];
        for want in [7u32, 300, 70_000] {
            assert_eq!(read_msg::<_, u32>(&mut r).await.unwrap(), Some(want));
        }
        assert!(r.is_empty());
        assert_eq!(
            wire.len(),
            [7u32, 300, 70_000]
                .map(|m| encode_msg(&m).unwrap().len())
                .iter()
                .sum::<usize>()
        );
    }

    #[tokio::test]
    async fn clean_eof_truncation_and_cap() {
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty, 10).await.unwrap().is_none());

        let mut short: &[u8] = &[0, 0, 0, 5, 1, 2];
        assert!(matches!(
            read_frame(&mut short, 10).await,
            Err(FrameError::Truncated)
        ));

        let mut half_header: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame(&mut half_header, 10).await,
            Err(FrameError::Truncated)
        ));

        let mut huge: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        match read_frame(&mut huge, MAX_FRAME_LEN).await {
            Err(FrameError::TooLarge { len, .. }) => assert_eq!(len, u32::MAX as usize),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn raw_frames_append_and_respect_their_cap() {
        let mut wire = Vec::new();
        write_raw(&mut wire, b"page ").await.unwrap();
        write_raw(&mut wire, b"data").await.unwrap();
        let mut r = &wire[..];
        let mut page = Vec::new();
        assert_eq!(read_raw_into(&mut r, &mut page, 8).await.unwrap(), Some(5));
        assert_eq!(read_raw_into(&mut r, &mut page, 8).await.unwrap(), Some(4));
        assert_eq!(page, b"page data");
        assert!(read_raw_into(&mut r, &mut page, 8).await.unwrap().is_none());
        let mut big = Vec::new();
        write_raw(&mut big, &[0u8; 9]).await.unwrap();
        let err = read_raw_into(&mut &big[..], &mut page, 8)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len: 9, max: 8 }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn garbage_is_a_decode_error() {
        let mut wire: &[u8] = &[0, 0, 0, 1, 0xff];
        let r: Result<Option<(String, u32)>, _> = read_msg(&mut wire).await;
        assert!(matches!(r, Err(FrameError::Decode(_))));
    }
}

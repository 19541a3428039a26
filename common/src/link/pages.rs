//! A page on a stream: its header (`SenderFrame::Page`), then its data as
//! raw frames of at most `CHUNK_LEN` bytes. A caller writes pages this way
//! in a call, and faxsend in a submission to its gateway's queue, which
//! reads them back with [`read_page`].

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::frame::{self, FrameError};
use super::message::{CHUNK_FRAME_LEN, CHUNK_LEN, SenderFrame};
use crate::codec::EncodedPage;

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the stream ended before page {0}")]
    Ended(u32),
    #[error("expected page {expected}, got {got}")]
    Unexpected { expected: String, got: String },
    #[error("page {index} is {len} bytes, over the {max} byte limit")]
    TooLarge { index: u32, len: u64, max: u64 },
    #[error("page {index}: {reason}")]
    Bad { index: u32, reason: String },
}

/// Writes page `index`: its header, then its data, then `then` when
/// given (the frame that follows the page, such as `EndOfDocument`).
///
/// Each write to a multiplexed stream becomes one multiplexer frame, and
/// every frame costs every hop a send, a wake-up and a read. So the header
/// goes in one write with the first chunk, and `then` with the last, when
/// together they fit one chunk frame: a one-page fax of a typical letter
/// crosses each hop as one frame, not three. A larger write would be split
/// by the multiplexer, so a full chunk still goes alone (see
/// [`CHUNK_FRAME_LEN`]).
pub async fn write_page<W: AsyncWrite + Unpin>(
    w: &mut W,
    index: u32,
    page: &EncodedPage,
    then: Option<&SenderFrame>,
) -> Result<(), FrameError> {
    let mut out = frame::encode_msg(&SenderFrame::Page {
        index,
        info: page.info(),
    })?;
    let then = then.map(frame::encode_msg).transpose()?;
    for chunk in page.data.chunks(CHUNK_LEN) {
        make_room(w, &mut out, 4 + chunk.len()).await?;
        frame::append_raw(&mut out, chunk)?;
    }
    if let Some(then) = then {
        make_room(w, &mut out, then.len()).await?;
        out.extend_from_slice(&then);
    }
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(())
}

/// Writes out what `out` holds when `more` bytes would take it past a
/// chunk frame, and empties it.
async fn make_room<W: AsyncWrite + Unpin>(
    w: &mut W,
    out: &mut Vec<u8>,
    more: usize,
) -> Result<(), FrameError> {
    if out.len() + more > CHUNK_FRAME_LEN {
        w.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

/// Reads page `index` as [`write_page`] wrote it; a page over `max_len`
/// bytes is refused before its data is read.
pub async fn read_page<R: AsyncRead + Unpin>(
    r: &mut R,
    index: u32,
    max_len: u64,
) -> Result<EncodedPage, PageError> {
    let header = frame::read_msg::<_, SenderFrame>(r).await?;
    let info = match header {
        None => return Err(PageError::Ended(index)),
        Some(SenderFrame::Page { index: i, info }) if i == index => info,
        Some(other) => {
            return Err(PageError::Unexpected {
                expected: format!("page {index}"),
                got: format!("{other:?}"),
            });
        }
    };
    if info.data_len > max_len {
        return Err(PageError::TooLarge {
            index,
            len: info.data_len,
            max: max_len,
        });
    }
    let mut data = Vec::with_capacity(info.data_len as usize);
    while (data.len() as u64) < info.data_len {
        // No frame may run past the announced length.
        let left = (info.data_len - data.len() as u64).min(CHUNK_LEN as u64) as usize;
        if frame::read_raw_into(r, &mut data, left).await?.is_none() {
            return Err(PageError::Ended(index));
        }
    }
    EncodedPage::from_info(&info, data).map_err(|e| PageError::Bad {
        index,
        reason: e.to_string(),
    })
}

/// What tests of call streams share: pages, and a stream that keeps each
/// write apart.
#[cfg(test)]
pub(crate) mod testing {
    use std::io::{self, Cursor};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use crate::codec::{Compression, EncodedPage, Resolution};

    /// A page of `len` bytes of data.
    pub fn page(len: usize) -> EncodedPage {
        EncodedPage {
            width: 1728,
            height: 10,
            resolution: Resolution::Fine,
            compression: Compression::G4,
            data: (0..len).map(|i| (i * 7) as u8).collect(),
        }
    }

    /// A call stream whose far end sent `from_far` already (reads never
    /// wait) and that keeps every write apart, as a multiplexed stream
    /// makes each write a frame of its own.
    #[derive(Default)]
    pub struct Recorded {
        pub from_far: Cursor<Vec<u8>>,
        pub writes: Vec<Vec<u8>>,
    }

    impl Recorded {
        pub fn new(from_far: Vec<u8>) -> Recorded {
            Recorded {
                from_far: Cursor::new(from_far),
                writes: Vec::new(),
            }
        }

        pub fn sizes(&self) -> Vec<usize> {
            self.writes.iter().map(Vec::len).collect()
        }
    }

    impl AsyncRead for Recorded {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.from_far).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Recorded {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Recorded, page};
    use super::*;

    #[tokio::test]
    async fn pages_round_trip_across_chunks_and_limits_hold() {
        let big = page(CHUNK_LEN * 2 + 17);
        let mut wire = Vec::new();
        write_page(&mut wire, 0, &big, None).await.unwrap();
        write_page(&mut wire, 1, &page(3), None).await.unwrap();
        let mut r = wire.as_slice();
        let back = read_page(&mut r, 0, u64::MAX).await.unwrap();
        assert_eq!(back.data, big.data);
        assert!(matches!(
            read_page(&mut r, 2, u64::MAX).await,
            Err(PageError::Unexpected { .. })
        ));
        let mut empty: &[u8] = &[];
        assert!(matches!(
            read_page(&mut empty, 3, 1).await,
            Err(PageError::Ended(3))
        ));

        let mut r = wire.as_slice();
        let err = read_page(&mut r, 0, 100).await.unwrap_err().to_string();
        assert!(err.contains("over the 100 byte limit"), "{err}");
    }

    #[tokio::test]
    async fn a_page_travels_in_as_few_writes_as_fit_a_chunk_frame() {
        let end = SenderFrame::EndOfDocument;
        // A letter's page: its header, its data and the end in one write.
        let mut w = Recorded::default();
        write_page(&mut w, 0, &page(15_000), Some(&end))
            .await
            .unwrap();
        assert_eq!(w.writes.len(), 1, "{:?}", w.sizes());
        let wire = w.writes.concat();
        let mut r = wire.as_slice();
        assert_eq!(
            read_page(&mut r, 0, u64::MAX).await.unwrap().data,
            page(15_000).data
        );
        let after = frame::read_msg::<_, SenderFrame>(&mut r).await.unwrap();
        assert_eq!(after, Some(SenderFrame::EndOfDocument));
        assert!(r.is_empty());

        // Full chunks go alone, never over a chunk frame; the header joins
        // nothing it would push over, the end joins the short last chunk.
        let big = page(CHUNK_LEN * 2 + 17);
        let mut w = Recorded::default();
        write_page(&mut w, 3, &big, Some(&end)).await.unwrap();
        let sizes = w.sizes();
        assert_eq!(sizes.len(), 4, "{sizes:?}");
        assert!(sizes.iter().all(|&n| n <= CHUNK_FRAME_LEN), "{sizes:?}");
        assert_eq!(&sizes[1..3], [CHUNK_FRAME_LEN, CHUNK_FRAME_LEN]);
        let wire = w.writes.concat();
        let mut r = wire.as_slice();
        assert_eq!(read_page(&mut r, 3, u64::MAX).await.unwrap().data, big.data);
        let after = frame::read_msg::<_, SenderFrame>(&mut r).await.unwrap();
        assert_eq!(after, Some(SenderFrame::EndOfDocument));

        // A page that fills its frame exactly leaves the end to a write of
        // its own. (Lengths of this size class encode to the same width.)
        let info = page(CHUNK_FRAME_LEN - 100).info();
        let header = frame::encode_msg(&SenderFrame::Page { index: 0, info })
            .unwrap()
            .len();
        let exact = page(CHUNK_FRAME_LEN - header - 4);
        let mut w = Recorded::default();
        write_page(&mut w, 0, &exact, Some(&end)).await.unwrap();
        assert_eq!(w.writes.len(), 2, "{:?}", w.sizes());
        assert_eq!(w.writes[0].len(), CHUNK_FRAME_LEN);
    }
}

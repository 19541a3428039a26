//! A page on a stream: its header (`SenderFrame::Page`), then its data as
//! raw frames of at most `CHUNK_LEN` bytes. A caller writes pages this way
//! in a call, and faxsend in a submission to its gateway's queue, which
//! reads them back with [`read_page`].

use tokio::io::{AsyncRead, AsyncWrite};

use super::frame::{self, FrameError};
use super::message::{CHUNK_LEN, SenderFrame};
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

/// Writes page `index`: its header, then its data.
pub async fn write_page<W: AsyncWrite + Unpin>(
    w: &mut W,
    index: u32,
    page: &EncodedPage,
) -> Result<(), FrameError> {
    let info = page.info();
    frame::write_msg(w, &SenderFrame::Page { index, info }).await?;
    for chunk in page.data.chunks(CHUNK_LEN) {
        frame::write_raw(w, chunk).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Compression, Resolution};

    fn page(len: usize) -> EncodedPage {
        EncodedPage {
            width: 1728,
            height: 10,
            resolution: Resolution::Fine,
            compression: Compression::G4,
            data: (0..len).map(|i| i as u8).collect(),
        }
    }

    #[tokio::test]
    async fn pages_round_trip_across_chunks_and_limits_hold() {
        let big = page(CHUNK_LEN * 2 + 17);
        let mut wire = Vec::new();
        write_page(&mut wire, 0, &big).await.unwrap();
        write_page(&mut wire, 1, &page(3)).await.unwrap();
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
}

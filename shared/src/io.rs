//! A thin tokio adapter: reads and writes whole cells and the hello over any
//! `AsyncRead`/`AsyncWrite`. Every read is of a size fixed before it starts, never of a
//! length the peer claims.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{CellError, HELLO_LEN, HelloV1};

/// Errors of reading or writing cells over a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CellIoError {
    /// The stream ended inside a cell (a short read) or before one.
    #[error("connection closed")]
    Closed,
    /// The stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes were not a valid cell or hello.
    #[error(transparent)]
    Cell(#[from] CellError),
}

fn closed_or_io(e: std::io::Error) -> CellIoError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        CellIoError::Closed
    } else {
        CellIoError::Io(e)
    }
}

/// Reads exactly one cell into `buf`, whose length is the cell size.
///
/// # Errors
/// [`CellIoError::Closed`] on a short read, [`CellIoError::Io`] otherwise.
pub async fn read_cell<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<(), CellIoError> {
    r.read_exact(buf).await.map_err(closed_or_io)?;
    Ok(())
}

/// Writes one whole cell and flushes it.
///
/// # Errors
/// [`CellIoError::Cell`] when `cell` is not `size` bytes, [`CellIoError::Io`] when the
/// stream fails.
pub async fn write_cell<W: AsyncWrite + Unpin>(
    w: &mut W,
    cell: &[u8],
    size: usize,
) -> Result<(), CellIoError> {
    if cell.len() != size {
        return Err(CellError::Oversize {
            len: cell.len(),
            size,
        }
        .into());
    }
    w.write_all(cell).await.map_err(closed_or_io)?;
    w.flush().await.map_err(closed_or_io)?;
    Ok(())
}

/// Reads the relay's hello.
///
/// # Errors
/// [`CellIoError::Closed`] on a short read, [`CellIoError::Cell`] for a bad hello.
pub async fn read_hello<R: AsyncRead + Unpin>(r: &mut R) -> Result<HelloV1, CellIoError> {
    let mut b = [0u8; HELLO_LEN];
    r.read_exact(&mut b).await.map_err(closed_or_io)?;
    Ok(HelloV1::decode(&b)?)
}

/// Writes the relay's hello and flushes it.
///
/// # Errors
/// [`CellIoError::Io`] when the stream fails.
pub async fn write_hello<W: AsyncWrite + Unpin>(
    w: &mut W,
    hello: &HelloV1,
) -> Result<(), CellIoError> {
    w.write_all(&hello.encode()).await.map_err(closed_or_io)?;
    w.flush().await.map_err(closed_or_io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CellWriter, Down, decode_cell};

    #[tokio::test]
    async fn cells_cross_a_duplex_pipe() -> Result<(), CellIoError> {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let hello = HelloV1 {
            cell_size: 1024,
            tick_micros: 1000,
            ttl_secs: 60,
            tick: 0,
        };
        write_hello(&mut a, &hello).await?;
        let mut w = CellWriter::new(1024)?;
        w.push(&Down::Stored { tag: 3 })?;
        write_cell(&mut a, &w.finish(), 1024).await?;
        assert_eq!(read_hello(&mut b).await?, hello);
        let mut buf = vec![0u8; 1024];
        read_cell(&mut b, &mut buf).await?;
        assert_eq!(
            decode_cell::<Down>(&buf, 1024)?,
            vec![Down::Stored { tag: 3 }]
        );
        Ok(())
    }

    #[tokio::test]
    async fn short_read_is_closed() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let _ = tokio::io::AsyncWriteExt::write_all(&mut a, &[1u8; 100]).await;
        drop(a);
        let mut buf = vec![0u8; 1024];
        assert!(matches!(
            read_cell(&mut b, &mut buf).await,
            Err(CellIoError::Closed)
        ));
    }
}

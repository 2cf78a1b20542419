//! The fixed-size cell: the only unit hum sends on the wire (docs/PROTOCOL.md §2).
//!
//! A cell is `size` bytes: a version byte, then records of `u16` big-endian length and a
//! postcard-encoded operation, then zero padding. A record length of zero (or the end of
//! the cell) ends the records. A cover cell is a cell with no records: exactly as long as
//! a full one.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::CellError;

/// The version byte of a hum/1 cell.
pub const CELL_VERSION: u8 = 1;
/// The cell size a relay announces unless configured otherwise.
pub const DEFAULT_CELL_SIZE: usize = 1024;
/// The smallest cell size hum/1 allows: one sealed envelope and its framing must fit.
pub const MIN_CELL_SIZE: usize = 1024;
/// The largest cell size hum/1 allows (the record length prefix is 16 bits).
pub const MAX_CELL_SIZE: usize = 65_535;

/// Bytes of the length prefix in front of each record.
const LEN_PREFIX: usize = 2;

/// Checks that `size` is a cell size hum/1 allows.
///
/// # Errors
/// [`CellError::BadCellSize`] when it is outside [`MIN_CELL_SIZE`]..=[`MAX_CELL_SIZE`].
pub fn check_cell_size(size: usize) -> Result<usize, CellError> {
    if (MIN_CELL_SIZE..=MAX_CELL_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(CellError::BadCellSize(size))
    }
}

/// Builds one cell from operations, then pads it to the cell size.
///
/// ```
/// use hum_shared::{CellWriter, Up, decode_cell};
/// let mut w = CellWriter::new(1024)?;
/// w.push(&Up::Unsubscribe { mailbox: hum_shared::MailboxId::from_bytes([7; 32]) })?;
/// let cell = w.finish();
/// assert_eq!(cell.len(), 1024);
/// let ops: Vec<Up> = decode_cell(&cell, 1024)?;
/// assert_eq!(ops.len(), 1);
/// # Ok::<(), hum_shared::CellError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CellWriter {
    buf: Vec<u8>,
    size: usize,
    ops: usize,
}

impl CellWriter {
    /// Starts an empty cell of `size` bytes.
    ///
    /// # Errors
    /// [`CellError::BadCellSize`] when `size` is not a hum/1 cell size.
    pub fn new(size: usize) -> Result<Self, CellError> {
        let size = check_cell_size(size)?;
        let mut buf = Vec::with_capacity(size);
        buf.push(CELL_VERSION);
        Ok(Self { buf, size, ops: 0 })
    }

    /// The largest encoded operation that still fits, in bytes (its length prefix
    /// already subtracted).
    pub fn room(&self) -> usize {
        self.size.saturating_sub(self.buf.len() + LEN_PREFIX)
    }

    /// How many operations the cell holds so far.
    pub fn len(&self) -> usize {
        self.ops
    }

    /// Whether the cell holds no operation yet (it would be a cover cell).
    pub fn is_empty(&self) -> bool {
        self.ops == 0
    }

    /// The encoded size of `op`, without its length prefix.
    ///
    /// # Errors
    /// [`CellError::Encode`] when postcard cannot encode it.
    pub fn encoded_len<T: Serialize>(op: &T) -> Result<usize, CellError> {
        postcard::experimental::serialized_size(op).map_err(|_| CellError::Encode)
    }

    /// Whether `op` fits into the room left.
    pub fn fits<T: Serialize>(&self, op: &T) -> bool {
        Self::encoded_len(op).is_ok_and(|n| n <= self.room())
    }

    /// Appends one operation.
    ///
    /// # Errors
    /// [`CellError::Full`] when it does not fit (the cell is unchanged), or
    /// [`CellError::Encode`] when it cannot be encoded.
    pub fn push<T: Serialize>(&mut self, op: &T) -> Result<(), CellError> {
        let need = Self::encoded_len(op)?;
        let room = self.room();
        if need > room || need == 0 {
            return Err(CellError::Full {
                need: need + LEN_PREFIX,
                room: room + LEN_PREFIX,
            });
        }
        let len = u16::try_from(need).map_err(|_| CellError::Encode)?;
        let start = self.buf.len();
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.resize(start + LEN_PREFIX + need, 0);
        if postcard::to_slice(op, &mut self.buf[start + LEN_PREFIX..]).is_err() {
            self.buf.truncate(start);
            return Err(CellError::Encode);
        }
        self.ops += 1;
        Ok(())
    }

    /// Pads the cell with zeros to its full size and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.resize(self.size, 0);
        self.buf
    }
}

/// A cover cell: no operations, exactly `size` bytes.
///
/// # Errors
/// [`CellError::BadCellSize`] when `size` is not a hum/1 cell size.
pub fn cover_cell(size: usize) -> Result<Vec<u8>, CellError> {
    Ok(CellWriter::new(size)?.finish())
}

/// Decodes the operations of one cell of exactly `size` bytes.
///
/// Nothing is allocated from a length the peer claims: every record is bounded by the
/// cell, which is bounded by `size`.
///
/// # Errors
/// [`CellError::Incomplete`] when `cell` is shorter than `size`, [`CellError::Oversize`]
/// when longer, [`CellError::UnknownVersion`], [`CellError::Malformed`] for records that
/// overrun the cell or non-zero padding, [`CellError::BadOperation`] for a record that
/// is not exactly one operation.
pub fn decode_cell<T: DeserializeOwned>(cell: &[u8], size: usize) -> Result<Vec<T>, CellError> {
    let size = check_cell_size(size)?;
    if cell.len() < size {
        return Err(CellError::Incomplete {
            have: cell.len(),
            need: size,
        });
    }
    if cell.len() > size {
        return Err(CellError::Oversize {
            len: cell.len(),
            size,
        });
    }
    let (&version, mut rest) = cell.split_first().ok_or(CellError::Malformed("empty"))?;
    if version != CELL_VERSION {
        return Err(CellError::UnknownVersion(version));
    }
    let mut ops = Vec::new();
    while rest.len() >= LEN_PREFIX {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if len == 0 {
            break;
        }
        let body = rest
            .get(LEN_PREFIX..LEN_PREFIX + len)
            .ok_or(CellError::Malformed("record overruns the cell"))?;
        let (op, trailing) =
            postcard::take_from_bytes::<T>(body).map_err(|_| CellError::BadOperation)?;
        if !trailing.is_empty() {
            return Err(CellError::BadOperation);
        }
        ops.push(op);
        rest = &rest[LEN_PREFIX + len..];
    }
    if rest.iter().any(|&b| b != 0) {
        return Err(CellError::Malformed("padding is not zero"));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Down, MailboxId, Up};

    #[test]
    fn cover_cell_is_full_size_and_empty() -> Result<(), CellError> {
        let cell = cover_cell(DEFAULT_CELL_SIZE)?;
        assert_eq!(cell.len(), DEFAULT_CELL_SIZE);
        assert!(decode_cell::<Up>(&cell, DEFAULT_CELL_SIZE)?.is_empty());
        Ok(())
    }

    #[test]
    fn full_cell_reports_room_and_stays_unchanged() -> Result<(), CellError> {
        let mut w = CellWriter::new(DEFAULT_CELL_SIZE)?;
        let op = Down::Stored { tag: 7 };
        let mut n = 0;
        while w.fits(&op) {
            w.push(&op)?;
            n += 1;
        }
        let before = w.room();
        assert!(matches!(w.push(&op), Err(CellError::Full { .. })));
        assert_eq!(w.room(), before);
        let cell = w.finish();
        assert_eq!(decode_cell::<Down>(&cell, DEFAULT_CELL_SIZE)?.len(), n);
        Ok(())
    }

    #[test]
    fn short_long_and_versioned_cells_are_typed_errors() -> Result<(), CellError> {
        let cell = cover_cell(DEFAULT_CELL_SIZE)?;
        assert!(matches!(
            decode_cell::<Up>(&cell[..10], DEFAULT_CELL_SIZE),
            Err(CellError::Incomplete { have: 10, .. })
        ));
        let mut long = cell.clone();
        long.push(0);
        assert!(matches!(
            decode_cell::<Up>(&long, DEFAULT_CELL_SIZE),
            Err(CellError::Oversize { .. })
        ));
        let mut v2 = cell.clone();
        v2[0] = 2;
        assert_eq!(
            decode_cell::<Up>(&v2, DEFAULT_CELL_SIZE).err(),
            Some(CellError::UnknownVersion(2))
        );
        let mut junk = cell;
        junk[DEFAULT_CELL_SIZE - 1] = 1;
        assert!(matches!(
            decode_cell::<Up>(&junk, DEFAULT_CELL_SIZE),
            Err(CellError::Malformed(_))
        ));
        Ok(())
    }

    #[test]
    fn record_overrunning_the_cell_is_malformed() -> Result<(), CellError> {
        let mut cell = cover_cell(DEFAULT_CELL_SIZE)?;
        cell[1] = 0xff;
        cell[2] = 0xff;
        assert!(matches!(
            decode_cell::<Up>(&cell, DEFAULT_CELL_SIZE),
            Err(CellError::Malformed(_))
        ));
        Ok(())
    }

    #[test]
    fn record_with_trailing_bytes_is_rejected() -> Result<(), CellError> {
        let mut w = CellWriter::new(DEFAULT_CELL_SIZE)?;
        w.push(&Up::Unsubscribe {
            mailbox: MailboxId::from_bytes([1; 32]),
        })?;
        let mut cell = w.finish();
        // Claim one more byte than the operation has: the extra byte is a trailing byte.
        let len = u16::from_be_bytes([cell[1], cell[2]]) + 1;
        cell[1..3].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            decode_cell::<Up>(&cell, DEFAULT_CELL_SIZE).err(),
            Some(CellError::BadOperation)
        );
        Ok(())
    }

    #[test]
    fn bad_cell_sizes_are_refused() {
        assert!(CellWriter::new(100).is_err());
        assert!(CellWriter::new(MAX_CELL_SIZE + 1).is_err());
        assert!(decode_cell::<Up>(&[1; 10], 10).is_err());
    }
}

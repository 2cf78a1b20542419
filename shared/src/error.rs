//! Errors of the cell layer.

/// Why a cell could not be built or read.
///
/// Decoding distinguishes "need more bytes" ([`CellError::Incomplete`]) from "invalid"
/// (everything else), so a reader can wait for the rest of a cell without guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CellError {
    /// The buffer holds fewer bytes than one cell; read more and try again.
    #[error("incomplete cell: have {have} of {need} bytes")]
    Incomplete {
        /// Bytes available.
        have: usize,
        /// Bytes one cell needs.
        need: usize,
    },
    /// The cell is longer than the announced cell size.
    #[error("oversize cell: {len} bytes where the cell size is {size}")]
    Oversize {
        /// Bytes offered.
        len: usize,
        /// The announced cell size.
        size: usize,
    },
    /// The cell's version byte is not one this build speaks.
    #[error("unknown cell version {0}")]
    UnknownVersion(u8),
    /// A record's length runs past the end of the cell, or padding is not all zeros.
    #[error("malformed cell: {0}")]
    Malformed(&'static str),
    /// An operation inside the cell did not decode.
    #[error("malformed operation in cell")]
    BadOperation,
    /// The operation does not fit into the room left in the cell.
    #[error("operation of {need} bytes does not fit: {room} bytes of room left")]
    Full {
        /// Encoded size of the operation, including its length prefix.
        need: usize,
        /// Room left in the cell.
        room: usize,
    },
    /// The cell size is outside the range hum/1 allows.
    #[error("cell size {0} is outside {min}..={max}", min = crate::MIN_CELL_SIZE, max = crate::MAX_CELL_SIZE)]
    BadCellSize(usize),
    /// The connection preamble is not a hum/1 hello.
    #[error("not a hum/1 relay (bad hello)")]
    BadHello,
    /// An operation could not be encoded.
    #[error("operation could not be encoded")]
    Encode,
}

/// Why a split message could not be reassembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// The part size is too small to carry the part header and any payload.
    #[error("part size {0} is too small")]
    PartSize(usize),
    /// The payload needs more parts than the format can number.
    #[error("payload of {0} bytes is too long to split")]
    TooLong(usize),
    /// The bytes are not a well-formed part.
    #[error("malformed part: {0}")]
    Malformed(&'static str),
    /// A part arrived twice.
    #[error("duplicate part {index} of message")]
    Duplicate {
        /// The index of the duplicated part.
        index: u16,
    },
    /// A part's header disagrees with the parts already held for the same message
    /// (another message's part under the same id, or a corrupted header).
    #[error("part {index} does not belong to the message being reassembled")]
    Foreign {
        /// The index of the foreign part.
        index: u16,
    },
    /// The reassembled payload does not match the digest the parts carry.
    #[error("reassembled message is corrupted")]
    Corrupted,
    /// Reassembly would hold more than its bound; the part was refused.
    #[error("reassembly is full ({0} bytes held)")]
    Full(usize),
}

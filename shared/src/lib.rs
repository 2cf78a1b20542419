//! hum-shared: the cell framing, wire types and cryptography of hum.
//!
//! Everything here is sans-IO: bytes in, bytes out. The `tokio` feature adds a thin
//! adapter that reads and writes whole cells over any `AsyncRead`/`AsyncWrite`.
//!
//! ```
//! use hum_shared::{CellWriter, Down, decode_cell, DEFAULT_CELL_SIZE};
//! let mut w = CellWriter::new(DEFAULT_CELL_SIZE)?;
//! w.push(&Down::Stored { tag: 1 })?;
//! let real = w.finish();
//! let cover = hum_shared::cover_cell(DEFAULT_CELL_SIZE)?;
//! assert_eq!(real.len(), cover.len());
//! assert_eq!(decode_cell::<Down>(&real, DEFAULT_CELL_SIZE)?, vec![Down::Stored { tag: 1 }]);
//! # Ok::<(), hum_shared::CellError>(())
//! ```
#![forbid(unsafe_code)]

mod addr;
mod cell;
pub mod crypto;
mod error;
mod frame;
#[cfg(feature = "tokio")]
mod io;
pub mod route;
mod split;

pub use addr::{AddrError, CertFingerprint, RELAY_SCHEME, RelayAddr};
pub use cell::{
    CELL_VERSION, CellWriter, DEFAULT_CELL_SIZE, MAX_CELL_SIZE, MIN_CELL_SIZE, check_cell_size,
    cover_cell, decode_cell,
};
pub use error::{CellError, SplitError};
pub use frame::{Capability, Down, ENVELOPE_LEN, HELLO_LEN, HelloV1, MailboxId, Up};
#[cfg(feature = "tokio")]
pub use io::{CellIoError, read_cell, read_hello, write_cell, write_hello};
pub use split::{PART_HEADER_LEN, Reassembler, part_msg_id, parts_needed, split};

//! hum-shared: the cell framing, wire types and cryptography of hum.
//!
//! Everything here is sans-IO: bytes in, bytes out. The `tokio` feature adds a thin
//! adapter that reads and writes whole cells over any `AsyncRead`/`AsyncWrite`.
#![forbid(unsafe_code)]

pub mod crypto;

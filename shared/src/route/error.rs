//! The error type of hum/2's formats and cryptography.

use crate::crypto::CryptoError;

/// What can go wrong building or reading a hum/2 object.
///
/// Decoding distinguishes "need more bytes" ([`RouteError::Incomplete`]) from "invalid"
/// (everything else). Failures to open anything sealed are deliberately coarse
/// ([`RouteError::DecryptFailed`]): a caller learns that it did not open, never why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The buffer holds fewer bytes than the object needs; read more and try again.
    #[error("incomplete {what}: have {have} of {need} bytes")]
    Incomplete {
        /// What was being read.
        what: &'static str,
        /// Bytes available.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A fixed-size object had the wrong length (too short, or trailing bytes).
    #[error("{what} must be {expected} bytes, got {actual}")]
    Length {
        /// What was being read.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A field holds a value the format does not allow: an unknown kind or version byte,
    /// padding that is not all zeros, a count out of range.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Something sealed did not open: tampered, truncated, replayed under another tick or
    /// entry relay, or sealed to another key.
    #[error("decryption failed")]
    DecryptFailed,
    /// A public key is of low order (or zero): the shared secret would not depend on ours.
    #[error("low-order public key refused")]
    LowOrderPoint,
    /// A slot arrived in the single relay's clear form where a sealed one is required.
    #[error("clear slot refused: this relay only takes sealed slots")]
    ClearSlot,
    /// A slot or inner blob names a slot key this relay does not hold (any more).
    #[error("no slot key held for this slot")]
    UnknownSlotKey,
    /// The certificate does not hash to the pinned fingerprint, or the announcement is for
    /// another relay.
    #[error("certificate does not match the pinned fingerprint")]
    CertificateMismatch,
    /// The slot key announcement's signature does not verify with the certificate's key.
    #[error("slot key signature does not verify")]
    BadSignature,
    /// The relay's PKCS#8 signing key did not parse or could not sign.
    #[error("the relay's signing key is unusable")]
    SigningKey,
    /// The same slot ephemeral key was seen within the replay window.
    #[error("replayed slot")]
    Replay,
    /// A tick older than the replay window (the slot cannot be checked any more).
    #[error("tick {tick} is older than the replay window (newest {newest})")]
    Stale {
        /// The tick given.
        tick: u64,
        /// The newest tick the guard has seen.
        newest: u64,
    },
    /// The replay guard holds as many ephemerals for one tick as it was built for.
    #[error("replay guard full for this tick")]
    GuardFull,
    /// A bucket number is not below the relay's bucket count (or above [`super::MAX_BUCKETS`]).
    #[error("bucket {bucket} out of range for {buckets} buckets")]
    BucketOutOfRange {
        /// The bucket given.
        bucket: u16,
        /// The bucket count.
        buckets: u16,
    },
    /// A deposit lists no copies or more than [`super::MAX_COPIES`].
    #[error("a deposit has 1 to 64 copies, not {0}")]
    CopyCount(usize),
    /// A batch does not hold exactly the configured number of entries.
    #[error("batch of {actual} entries where the link carries {expected}")]
    BatchSize {
        /// The configured count.
        expected: usize,
        /// The count given.
        actual: usize,
    },
    /// A link parameter is outside what hum/2 allows, or the two ends of a link disagree.
    #[error("link refused: {0}")]
    Link(&'static str),
    /// An object is larger than its format can carry.
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A deposit is for another epoch than the slot key it would be sealed to.
    #[error("deposit for epoch {deposit} sealed to the slot key of epoch {key}")]
    EpochMismatch {
        /// The slot key's epoch.
        key: u32,
        /// The deposit's epoch.
        deposit: u32,
    },
    /// A counter or epoch reached its limit.
    #[error("counter exhausted")]
    CounterExhausted,
    /// The operating system's random number generator or a primitive failed unexpectedly.
    #[error("internal cryptographic failure")]
    Internal,
}

impl From<CryptoError> for RouteError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::DecryptFailed => RouteError::DecryptFailed,
            _ => RouteError::Internal,
        }
    }
}

impl From<orion::errors::UnknownCryptoError> for RouteError {
    fn from(_: orion::errors::UnknownCryptoError) -> Self {
        RouteError::Internal
    }
}

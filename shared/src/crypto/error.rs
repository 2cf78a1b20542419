//! The error type of the cryptographic core.

/// What can go wrong in the cryptographic core.
///
/// Failures to decrypt or authenticate are deliberately coarse: a caller learns that an
/// envelope did not open, never why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The envelope did not decrypt or authenticate: tampered, truncated, replayed, meant for
    /// someone else, or too far out of order.
    #[error("decryption failed")]
    DecryptFailed,
    /// The plaintext is longer than one envelope can carry; split it first.
    #[error("plaintext of {len} bytes exceeds the capacity of {capacity} bytes")]
    PlaintextTooLong {
        /// Length of the plaintext given.
        len: usize,
        /// Largest plaintext this kind of envelope carries.
        capacity: usize,
    },
    /// A byte string had the wrong length for the type it should become.
    #[error("expected {expected} bytes, got {actual}")]
    InvalidLength {
        /// The length required.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A message counter reached its limit; the session or sender key must be replaced.
    #[error("message counter exhausted; start a new session or rotate the key")]
    CounterExhausted,
    /// Stored or received key material could not be parsed or failed its own checks.
    #[error("malformed key material")]
    Malformed,
    /// A public identity's binding signature does not verify.
    #[error("identity keys are not bound by a valid signature")]
    InvalidIdentity,
    /// A group message was sent by this very member (the relay fans it back out).
    #[error("group message sent by ourselves")]
    OwnMessage,
    /// A sender key distribution belongs to another group or an older generation.
    #[error("sender key distribution is for another group or an older generation")]
    StaleDistribution,
    /// A passphrase-sealed blob did not open: wrong passphrase or corrupted data.
    #[error("wrong passphrase or corrupted data")]
    StoreOpenFailed,
    /// The operating system's random number generator or a primitive failed unexpectedly.
    #[error("internal cryptographic failure")]
    Internal,
}

impl From<orion::errors::UnknownCryptoError> for CryptoError {
    fn from(_: orion::errors::UnknownCryptoError) -> Self {
        CryptoError::Internal
    }
}

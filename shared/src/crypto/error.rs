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
    /// A group message from a member whose sender key this state holds, at an iteration
    /// whose key is spent or was never held: a duplicate, one older than the keys kept
    /// for skipped messages, or one sent before this member was given the chain. No key
    /// that arrives later opens it.
    #[error("group message already read")]
    Replayed,
    /// A group message was sent by this very member (the relay fans it back out).
    #[error("group message sent by ourselves")]
    OwnMessage,
    /// A sender key distribution belongs to another group or an older generation.
    #[error("sender key distribution is for another group or an older generation")]
    StaleDistribution,
    /// A passphrase-sealed blob did not open: wrong passphrase or corrupted data.
    #[error("wrong passphrase or corrupted data")]
    StoreOpenFailed,
    /// An X25519 public key is a point of small order, so a Diffie-Hellman with it would
    /// not depend on our secret (an all-zero shared secret).
    #[error("X25519 public key of small order")]
    LowOrderPoint,
    /// An Ed25519 signature or public key is not strictly valid.
    #[error("invalid signature")]
    BadSignature,
    /// A member offered a second sender key in the same group generation; each member has
    /// one per generation.
    #[error("a second sender key from the same member in one generation")]
    DuplicateSenderKey,
    /// Stored passphrase-KDF parameters are outside what this build accepts; the KDF was
    /// not run. The store was tampered with, or written by a newer or a test build.
    #[error(
        "passphrase KDF parameters out of range (t = {iterations}, m = {memory_kib} KiB; \
         accepted: t {min_iterations}..={max_iterations}, m {min_memory_kib}..={max_memory_kib} KiB)"
    )]
    KdfParamsOutOfRange {
        /// Passes over memory found.
        iterations: u32,
        /// Memory in KiB found.
        memory_kib: u32,
        /// Fewest passes accepted.
        min_iterations: u32,
        /// Most passes accepted.
        max_iterations: u32,
        /// Least memory accepted, KiB.
        min_memory_kib: u32,
        /// Most memory accepted, KiB.
        max_memory_kib: u32,
    },
    /// The operating system's random number generator or a primitive failed unexpectedly.
    #[error("internal cryptographic failure")]
    Internal,
}

impl From<orion::errors::UnknownCryptoError> for CryptoError {
    fn from(_: orion::errors::UnknownCryptoError) -> Self {
        CryptoError::Internal
    }
}

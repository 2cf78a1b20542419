//! The sealed envelope: exactly [`ENVELOPE_LEN`] random-looking bytes.

use super::{CryptoError, ENVELOPE_LEN};

/// A sealed envelope: exactly [`ENVELOPE_LEN`] bytes that look random to anyone without the
/// keys (docs/PROTOCOL.md, section 3.7).
///
/// Handshake messages, 1:1 ratchet messages and group messages all have this size, so the
/// relay cannot tell them apart by length.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope(Box<[u8; ENVELOPE_LEN]>);

impl Envelope {
    /// Wraps bytes received from the wire.
    ///
    /// # Errors
    /// [`CryptoError::InvalidLength`] unless `bytes` is exactly [`ENVELOPE_LEN`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Envelope, CryptoError> {
        let array =
            <[u8; ENVELOPE_LEN]>::try_from(bytes).map_err(|_| CryptoError::InvalidLength {
                expected: ENVELOPE_LEN,
                actual: bytes.len(),
            })?;
        Ok(Envelope(Box::new(array)))
    }

    /// The envelope's bytes, to put in a cell.
    pub fn as_bytes(&self) -> &[u8; ENVELOPE_LEN] {
        &self.0
    }

    pub(crate) fn from_array(array: Box<[u8; ENVELOPE_LEN]>) -> Envelope {
        Envelope(array)
    }
}

impl AsRef<[u8]> for Envelope {
    fn as_ref(&self) -> &[u8] {
        &self.0[..]
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Envelope({} bytes)", ENVELOPE_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_lengths_are_rejected() {
        assert!(Envelope::from_bytes(&[0u8; ENVELOPE_LEN]).is_ok());
        assert_eq!(
            Envelope::from_bytes(&[0u8; ENVELOPE_LEN - 1]),
            Err(CryptoError::InvalidLength {
                expected: ENVELOPE_LEN,
                actual: ENVELOPE_LEN - 1
            })
        );
        assert!(Envelope::from_bytes(&[0u8; ENVELOPE_LEN + 1]).is_err());
        assert!(Envelope::from_bytes(&[]).is_err());
    }
}

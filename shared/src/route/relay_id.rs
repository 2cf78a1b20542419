//! The short name of a relay inside hum/2 cells and frames.

use std::fmt;

use super::kdf::{self, L_RELAY_ID};
use crate::CertFingerprint;

/// Length of a [`RelayId`] in bytes.
pub const RELAY_ID_LEN: usize = 8;

/// A relay's 8-byte id: `B2b256("hum/2 relay id"; certificate fingerprint)[0..8]`
/// (docs/PROTOCOL.md, hum/2 §H3.1).
///
/// It names a relay in cells and link frames; it authenticates nothing by itself (a
/// [`super::SlotKey`] is checked against the pinned fingerprint, not the id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayId([u8; RELAY_ID_LEN]);

impl RelayId {
    /// The id of the relay whose certificate has `fingerprint`.
    pub fn of_fingerprint(fingerprint: &CertFingerprint) -> RelayId {
        RelayId(kdf::take(&kdf::b2b(L_RELAY_ID, &[&fingerprint.0]), 0))
    }

    /// Wraps id bytes read from the wire.
    pub const fn from_bytes(bytes: [u8; RELAY_ID_LEN]) -> RelayId {
        RelayId(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; RELAY_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for RelayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::crypto::kdf::hex(&self.0))
    }
}

impl fmt::Debug for RelayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_per_fingerprint_and_are_stable() {
        let a = RelayId::of_fingerprint(&CertFingerprint([1; 32]));
        let b = RelayId::of_fingerprint(&CertFingerprint([2; 32]));
        assert_ne!(a, b);
        assert_eq!(a, RelayId::of_fingerprint(&CertFingerprint([1; 32])));
        assert_eq!(RelayId::from_bytes(*a.as_bytes()), a);
        assert_eq!(a.to_string().len(), 16);
    }
}

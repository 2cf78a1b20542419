//! Per-attempt tag secrets, the tag seeds relays see, and the copy tags of items.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::kdf::{self, L_COPY_TAG, L_REWRAP, L_SEED};

/// Length of a [`CopyTag`].
pub const COPY_TAG_LEN: usize = 16;

/// The secret of one send attempt, `R = B2b256("hum/2 tag"; TK || e || n)`
/// (docs/PROTOCOL.md, hum/2 §H3.4), known to the sender and the recipients only.
///
/// The relay sees its hash, the [`TagSeed`]; the secret itself is the proof that lets a
/// recipient delete the copy it received ([`super::Request::Delete`]). Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct TagSecret([u8; 32]);

impl TagSecret {
    /// Wraps secret bytes (from a decoded delete request or a store).
    pub fn from_bytes(bytes: [u8; 32]) -> TagSecret {
        TagSecret(bytes)
    }

    /// The secret's bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The attempt's tag seed: `S = B2b256("hum/2 seed"; R)`.
    pub fn seed(&self) -> TagSeed {
        TagSeed(kdf::b2b(L_SEED, &[&self.0]))
    }
}

impl fmt::Debug for TagSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TagSecret(..)")
    }
}

/// The tag seed `S` of one send attempt: carried in the deposit to the destination
/// relay, which makes from it the tag and the rewrap key of the copy in each bucket.
/// Nobody else sees it (the entry relays see copy tags only). Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct TagSeed([u8; 32]);

impl TagSeed {
    /// Wraps seed bytes read from a deposit.
    pub fn from_bytes(bytes: [u8; 32]) -> TagSeed {
        TagSeed(bytes)
    }

    /// The seed's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The tag of the copy in `bucket`: `B2b256("hum/2 copy tag"; S || b)[0..16]`.
    pub fn copy_tag(&self, bucket: u16) -> CopyTag {
        CopyTag(kdf::take(
            &kdf::b2b(L_COPY_TAG, &[&self.0, &bucket.to_be_bytes()]),
            0,
        ))
    }

    /// The key the relay rewraps the copy in `bucket` under:
    /// `K_b = B2b256("hum/2 rewrap"; S || b)`.
    pub(crate) fn rewrap_key(&self, bucket: u16) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(kdf::b2b(L_REWRAP, &[&self.0, &bucket.to_be_bytes()]))
    }

    /// Whether `proof` is this seed's tag secret (a delete request's check; constant
    /// time).
    pub fn is_proven_by(&self, proof: &TagSecret) -> bool {
        orion::util::secure_cmp(&proof.seed().0, &self.0).is_ok()
    }
}

impl fmt::Debug for TagSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TagSeed(..)")
    }
}

/// The 16-byte tag of one item in one bucket: what a recipient looks up in its table,
/// and what relays index stored items by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CopyTag([u8; COPY_TAG_LEN]);

impl CopyTag {
    /// Wraps tag bytes read from an item or a request.
    pub fn from_bytes(bytes: [u8; COPY_TAG_LEN]) -> CopyTag {
        CopyTag(bytes)
    }

    /// The tag's bytes.
    pub fn as_bytes(&self) -> &[u8; COPY_TAG_LEN] {
        &self.0
    }
}

impl fmt::Debug for CopyTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CopyTag({}..)", crate::crypto::kdf::hex(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secret_proves_its_seed() {
        let r = TagSecret::from_bytes([4; 32]);
        let s = r.seed();
        assert!(s.is_proven_by(&r));
        assert!(!s.is_proven_by(&TagSecret::from_bytes([5; 32])));
        // The seed itself is not a proof (the relay knows it).
        assert!(!s.is_proven_by(&TagSecret::from_bytes(*s.as_bytes())));
    }

    #[test]
    fn tags_and_keys_differ_per_bucket() {
        let s = TagSecret::from_bytes([4; 32]).seed();
        assert_ne!(s.copy_tag(0), s.copy_tag(1));
        assert_ne!(*s.rewrap_key(0), *s.rewrap_key(1));
        assert_ne!(s.copy_tag(0).as_bytes()[..], s.rewrap_key(0)[..16]);
    }
}

//! The pairwise and group tag keys a sender makes per-attempt tag secrets from.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::kdf::{self, L_GROUP_SPEAKER, L_GROUP_TAG, L_GROUP_WRAP, L_TAG};
use super::{RouteError, TagSecret, WrapKey};
use crate::crypto::{GroupId, MemberId};

/// The tag key `TK` of one direction (docs/PROTOCOL.md, hum/2 §H3.4): 1:1, the X3DH
/// mailbox secret of that direction (`MBab` or `MBba`); loops,
/// [`super::DeliverySecret::loop_tag_key`]; invite answers, a random key the invite
/// carries. Zeroized on drop; `Debug` prints nothing.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct TagKey([u8; 32]);

impl TagKey {
    /// Wraps a key: the pairwise mailbox secret of the direction, or a stored key.
    pub fn from_bytes(bytes: [u8; 32]) -> TagKey {
        TagKey(bytes)
    }

    /// A fresh random key (the tag key an invite carries).
    pub fn generate() -> TagKey {
        TagKey(kdf::random())
    }

    /// The key's bytes, to store.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The tag secret of attempt `counter` in the destination relay's `epoch`:
    /// `B2b256("hum/2 tag"; TK || e || n)`. Never use one twice.
    pub fn secret(&self, epoch: u32, counter: u64) -> TagSecret {
        TagSecret::from_bytes(kdf::b2b(
            L_TAG,
            &[&self.0, &epoch.to_be_bytes(), &counter.to_be_bytes()],
        ))
    }
}

impl std::fmt::Debug for TagKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TagKey(..)")
    }
}

/// A group's tag key of one generation:
/// `HKDF(salt = group id, ikm = group secret, "hum/2 group tag" || generation, 32)`.
/// Every member derives the same; a member's attempts are kept apart by its member id.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct GroupTagKey([u8; 32]);

impl GroupTagKey {
    /// Derives the key from the group's id, secret and generation.
    ///
    /// # Errors
    /// [`RouteError::Internal`] if the KDF fails.
    pub fn derive(
        group: &GroupId,
        group_secret: &[u8; 32],
        generation: u32,
    ) -> Result<GroupTagKey, RouteError> {
        let mut info = L_GROUP_TAG.to_vec();
        info.extend_from_slice(&generation.to_be_bytes());
        let mut out = [0u8; 32];
        crate::crypto::kdf::hkdf(group.as_bytes(), group_secret, &info, &mut out)?;
        Ok(GroupTagKey(out))
    }

    /// The tag secret of `member`'s attempt `counter` in `epoch`:
    /// `B2b256("hum/2 tag"; TK || member id || e || n)`.
    pub fn secret(&self, member: &MemberId, epoch: u32, counter: u64) -> TagSecret {
        TagSecret::from_bytes(kdf::b2b(
            L_TAG,
            &[
                &self.0,
                member.as_bytes(),
                &epoch.to_be_bytes(),
                &counter.to_be_bytes(),
            ],
        ))
    }

    /// The tag key a member speaks under in this generation: `B2b256("hum/2 group
    /// speaker"; TK || identity fingerprint)`. Every member derives each other member's
    /// from the member list alone, before that member's sender key has come, so nothing a
    /// new member says is missed. A speaker's attempts take their tag secrets from it as
    /// any direction's do ([`TagKey::secret`]), so a route session counts them like a
    /// contact's.
    pub fn speaker(&self, fingerprint: &[u8; 32]) -> TagKey {
        TagKey(kdf::b2b(L_GROUP_SPEAKER, &[&self.0, fingerprint]))
    }

    /// The wrap key of the group's deposits in `epoch`: `B2b256("hum/2 group wrap"; TK ||
    /// e)` (one deposit reaches several members, so it cannot be wrapped per recipient).
    pub fn wrap_key(&self, epoch: u32) -> WrapKey {
        WrapKey::from_bytes(kdf::b2b(L_GROUP_WRAP, &[&self.0, &epoch.to_be_bytes()]))
    }
}

impl std::fmt::Debug for GroupTagKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupTagKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ_per_epoch_counter_and_member() -> Result<(), RouteError> {
        let tk = TagKey::from_bytes([1; 32]);
        let a = tk.secret(1, 0);
        assert_ne!(a.expose_secret(), tk.secret(1, 1).expose_secret());
        assert_ne!(a.expose_secret(), tk.secret(2, 0).expose_secret());
        let g = GroupTagKey::derive(&GroupId::from_bytes([2; 16]), &[3; 32], 0)?;
        let g1 = GroupTagKey::derive(&GroupId::from_bytes([2; 16]), &[3; 32], 1)?;
        assert!(g != g1);
        let alice = crate::crypto::GroupState::create().sender().member_id();
        let bob = crate::crypto::GroupState::create().sender().member_id();
        let sa = g.secret(&alice, 5, 0);
        assert_ne!(sa.expose_secret(), g.secret(&bob, 5, 0).expose_secret());
        assert_ne!(sa.expose_secret(), g1.secret(&alice, 5, 0).expose_secret());
        assert_ne!(g.wrap_key(5).expose_secret(), g.wrap_key(6).expose_secret());
        // Each speaker has a key of its own, per generation, that nobody else's equals.
        let (a, b) = ([7u8; 32], [8u8; 32]);
        assert!(g.speaker(&a) != g.speaker(&b));
        assert!(g.speaker(&a) != g1.speaker(&a));
        assert_eq!(g.speaker(&a), g.clone().speaker(&a));
        assert_eq!(format!("{g:?} {tk:?}"), "GroupTagKey(..) TagKey(..)");
        Ok(())
    }
}

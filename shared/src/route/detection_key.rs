//! The detection key of catch-up, the flags it makes, and the relay's flag test.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::kdf::{self, L_FLAG};
use super::{CopyTag, RouteError};

/// A recipient's detection key of one epoch, `DK(U, e)`
/// ([`super::DeliverySecret::detection_key`]; docs/PROTOCOL.md, hum/2 §H3.5).
///
/// Senders compute each copy's flag from it; a catch-up request hands it to the home
/// relay, which then finds the recipient's items plus a fixed share of the others
/// ([`flag_matches`]). Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct DetectionKey([u8; 32]);

impl DetectionKey {
    /// Wraps key bytes (from a decoded catch-up request).
    pub fn from_bytes(bytes: [u8; 32]) -> DetectionKey {
        DetectionKey(bytes)
    }

    /// The key's bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The full 8-bit flag of the copy tagged `tag`:
    /// `B2b256("hum/2 flag"; DK || tag_b)[0]`. Relays compare it under their mask.
    pub fn flag(&self, tag: &CopyTag) -> u8 {
        kdf::b2b(L_FLAG, &[&self.0, tag.as_bytes()])[0]
    }
}

impl std::fmt::Debug for DetectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetectionKey(..)")
    }
}

/// The mask of a relay's `flag_bits` (1 to 8): the low `bits` bits.
///
/// # Errors
/// [`RouteError::Malformed`] for a bit count outside 1..=8.
pub fn flag_mask(bits: u8) -> Result<u8, RouteError> {
    match bits {
        1..=7 => Ok((1u8 << bits) - 1),
        8 => Ok(0xff),
        _ => Err(RouteError::Malformed("flag bits")),
    }
}

/// The catch-up test a relay runs on a stored item: whether the flag `detect` gives its
/// tag equals, under `mask`, one of the flags the sender attached to the item.
pub fn flag_matches(detect: &DetectionKey, tag: &CopyTag, flags: &[u8], mask: u8) -> bool {
    let want = detect.flag(tag) & mask;
    flags.iter().any(|f| f & mask == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() -> Result<(), RouteError> {
        assert_eq!(flag_mask(1)?, 1);
        assert_eq!(flag_mask(5)?, 0x1f);
        assert_eq!(flag_mask(8)?, 0xff);
        assert!(flag_mask(0).is_err());
        assert!(flag_mask(9).is_err());
        Ok(())
    }

    #[test]
    fn own_items_always_match_and_others_at_about_the_mask_rate() {
        let dk = DetectionKey::from_bytes([6; 32]);
        let other = DetectionKey::from_bytes([7; 32]);
        let mut false_matches = 0;
        for i in 0..4096u32 {
            let mut t = [0u8; 16];
            t[..4].copy_from_slice(&i.to_be_bytes());
            let tag = CopyTag::from_bytes(t);
            // An item for two recipients in one bucket carries both flags.
            let flags = [other.flag(&tag), dk.flag(&tag)];
            assert!(flag_matches(&dk, &tag, &flags, 0x1f));
            if flag_matches(&dk, &tag, &[other.flag(&tag)], 0x1f) {
                false_matches += 1;
            }
        }
        // 5 bits: 1/32 of 4096 = 128 expected.
        assert!((64..256).contains(&false_matches), "{false_matches}");
    }
}

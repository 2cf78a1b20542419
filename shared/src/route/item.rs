//! The item: one copy of a deposit in one bucket, as streamed and stored.

use super::kdf;
use super::{COPY_TAG_LEN, CopyTag, RouteError, TagSeed, WRAPPED_LEN, WrappedEnvelope};

/// Length of an [`Item`]: the copy tag and the rewrapped envelope.
pub const ITEM_LEN: usize = COPY_TAG_LEN + WRAPPED_LEN;

/// One copy of a deposit in bucket `b` (docs/PROTOCOL.md, hum/2 §H4.2):
/// `tag_b (16) || XChaCha20(K_b, nonce 0) xor P (920)`.
///
/// The destination relay makes one per bucket ([`Item::rewrap`]), so copies of one
/// deposit share no bytes; `K_b` is unique per seed and bucket, so the zero nonce is
/// never reused. A recipient finds its items by tag and unwraps them with the seed.
///
/// One exception: the seed of a tag key many clients write under (an invite's) repeats
/// when two acceptors of one code use the same counter (their starts differ by client,
/// below 512, docs/PROTOCOL.md §H3.4), and then so do its tags and `K_b`: the relay can
/// tell those two answers belong to one invite.
#[derive(Clone, PartialEq, Eq)]
pub struct Item(Box<[u8; ITEM_LEN]>);

impl Item {
    /// The copy of `payload` for `bucket` under `seed` (destination role).
    pub fn rewrap(seed: &TagSeed, bucket: u16, payload: &WrappedEnvelope) -> Item {
        let mut out = Box::new([0u8; ITEM_LEN]);
        out[..COPY_TAG_LEN].copy_from_slice(seed.copy_tag(bucket).as_bytes());
        out[COPY_TAG_LEN..].copy_from_slice(payload.as_bytes());
        kdf::xor_stream(
            &seed.rewrap_key(bucket),
            &[0u8; 24],
            &mut out[COPY_TAG_LEN..],
        );
        Item(out)
    }

    /// Random bytes of the same length: a stream slot or reply with nothing in it.
    pub fn random() -> Item {
        Item(kdf::random_box())
    }

    /// Wraps bytes read from a cell or a batch.
    ///
    /// # Errors
    /// [`RouteError::Length`] unless `bytes` is [`ITEM_LEN`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Item, RouteError> {
        Ok(Item(Box::new(*kdf::exact::<ITEM_LEN>("item", bytes)?)))
    }

    /// The item's bytes.
    pub fn as_bytes(&self) -> &[u8; ITEM_LEN] {
        &self.0
    }

    /// The copy tag the recipient looks up.
    pub fn tag(&self) -> CopyTag {
        CopyTag::from_bytes(kdf::take(&self.0[..], 0))
    }

    /// The wrapped envelope inside, for the recipient who found the tag in its table and
    /// so knows the seed (and its bucket).
    ///
    /// # Errors
    /// [`RouteError::DecryptFailed`] if the tag is not the seed's tag for `bucket`.
    pub fn unwrap(&self, seed: &TagSeed, bucket: u16) -> Result<WrappedEnvelope, RouteError> {
        if seed.copy_tag(bucket) != self.tag() {
            return Err(RouteError::DecryptFailed);
        }
        let mut p = [0u8; WRAPPED_LEN];
        p.copy_from_slice(&self.0[COPY_TAG_LEN..]);
        kdf::xor_stream(&seed.rewrap_key(bucket), &[0u8; 24], &mut p);
        WrappedEnvelope::from_bytes(&p)
    }

    pub(crate) fn as_mut_bytes(&mut self) -> &mut [u8; ITEM_LEN] {
        &mut self.0
    }
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Item({:?})", self.tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::TagSecret;

    #[test]
    fn copies_share_no_bytes_and_unwrap_only_with_their_seed() -> Result<(), RouteError> {
        let seed = TagSecret::from_bytes([1; 32]).seed();
        let p = WrappedEnvelope::random();
        let a = Item::rewrap(&seed, 3, &p);
        let b = Item::rewrap(&seed, 4, &p);
        let same = a
            .as_bytes()
            .iter()
            .zip(b.as_bytes())
            .filter(|(x, y)| x == y)
            .count();
        assert!(same < 20, "{same} equal bytes between two copies");
        assert_eq!(a.unwrap(&seed, 3)?, p);
        assert_eq!(b.unwrap(&seed, 4)?, p);
        assert_eq!(a.unwrap(&seed, 4), Err(RouteError::DecryptFailed));
        let other = TagSecret::from_bytes([2; 32]).seed();
        assert_eq!(a.unwrap(&other, 3), Err(RouteError::DecryptFailed));
        Ok(())
    }
}

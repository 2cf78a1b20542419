//! A user's delivery secret and what its contacts derive from it per epoch.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::kdf::{self, L_BUCKET, L_DETECT, L_LOOP, L_WRAP};
use super::{DetectionKey, MAX_BUCKETS, RouteError, TagKey, WrapKey};

/// A user's delivery secret `DS` (32 random bytes, docs/PROTOCOL.md, hum/2 §H3.3).
///
/// Made with the profile and re-issued after the user removes a contact; its contacts
/// learn it with the user's home relay. From it, per epoch `e` of the home relay: the
/// user's bucket, the wrap key senders wrap envelopes under, and the detection key of
/// catch-up. Zeroized on drop; `Debug` prints nothing.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct DeliverySecret([u8; 32]);

impl DeliverySecret {
    /// A fresh random secret.
    pub fn generate() -> DeliverySecret {
        DeliverySecret(kdf::random())
    }

    /// Wraps secret bytes from the store or a contact's message.
    pub fn from_bytes(bytes: [u8; 32]) -> DeliverySecret {
        DeliverySecret(bytes)
    }

    /// The secret from bytes in a buffer of the caller's (a store row opened into a
    /// wiped buffer), copied straight into the secret: no plain array on the way.
    ///
    /// # Errors
    /// [`RouteError::Malformed`] unless `bytes` is 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<DeliverySecret, RouteError> {
        if bytes.len() != 32 {
            return Err(RouteError::Malformed("delivery secret"));
        }
        let mut secret = DeliverySecret([0u8; 32]);
        secret.0.copy_from_slice(bytes);
        Ok(secret)
    }

    /// The secret's bytes, to store or to send to a contact inside a sealed envelope.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The user's bucket in `epoch` at a relay with `buckets` buckets:
    /// `u16_be(B2b256("hum/2 bucket"; DS || e)[0..2]) mod B`.
    ///
    /// # Errors
    /// [`RouteError::BucketOutOfRange`] unless `buckets` is in 1..=[`MAX_BUCKETS`].
    pub fn bucket(&self, epoch: u32, buckets: u16) -> Result<u16, RouteError> {
        if buckets == 0 || buckets > MAX_BUCKETS {
            return Err(RouteError::BucketOutOfRange { bucket: 0, buckets });
        }
        let h = kdf::b2b(L_BUCKET, &[&self.0, &epoch.to_be_bytes()]);
        Ok(kdf::u16_at(&h, 0) % buckets)
    }

    /// The wrap key of `epoch`: `B2b256("hum/2 wrap"; DS || e)`.
    pub fn wrap_key(&self, epoch: u32) -> WrapKey {
        WrapKey::from_bytes(kdf::b2b(L_WRAP, &[&self.0, &epoch.to_be_bytes()]))
    }

    /// The detection key of `epoch`: `B2b256("hum/2 detect"; DS || e)`.
    pub fn detection_key(&self, epoch: u32) -> DetectionKey {
        DetectionKey::from_bytes(kdf::b2b(L_DETECT, &[&self.0, &epoch.to_be_bytes()]))
    }

    /// The tag key of the user's own loop deposits: `B2b256("hum/2 loop"; DS)`.
    pub fn loop_tag_key(&self) -> TagKey {
        TagKey::from_bytes(kdf::b2b(L_LOOP, &[&self.0]))
    }
}

impl std::fmt::Debug for DeliverySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeliverySecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_in_range_and_move_with_the_epoch() -> Result<(), RouteError> {
        let ds = DeliverySecret::from_bytes([3; 32]);
        let buckets: Vec<u16> = (0..64)
            .map(|e| ds.bucket(e, 64))
            .collect::<Result<_, _>>()?;
        assert!(buckets.iter().all(|&b| b < 64));
        // 64 epochs never all land in one bucket.
        assert!(buckets.iter().any(|&b| b != buckets[0]));
        assert_eq!(ds.bucket(5, 1)?, 0);
        assert!(ds.bucket(5, 0).is_err());
        assert!(ds.bucket(5, MAX_BUCKETS + 1).is_err());
        assert_eq!(format!("{ds:?}"), "DeliverySecret(..)");
        Ok(())
    }

    #[test]
    fn a_secret_from_a_slice_is_the_same_secret_and_wrong_lengths_are_refused() {
        let bytes = zeroize::Zeroizing::new(vec![7u8; 32]);
        assert_eq!(
            DeliverySecret::from_slice(&bytes),
            Ok(DeliverySecret::from_bytes([7; 32]))
        );
        assert!(DeliverySecret::from_slice(&[7; 31]).is_err());
        assert!(DeliverySecret::from_slice(&[7; 33]).is_err());
    }

    #[test]
    fn derivations_are_separated() {
        let ds = DeliverySecret::from_bytes([3; 32]);
        let wk = *ds.wrap_key(1).expose_secret();
        let dk = *ds.detection_key(1).expose_secret();
        assert_ne!(wk, dk);
        assert_ne!(wk, *ds.wrap_key(2).expose_secret());
        assert_ne!(dk, *ds.detection_key(2).expose_secret());
        assert_ne!(*ds.loop_tag_key().expose_secret(), wk);
    }
}

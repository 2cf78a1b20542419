//! The sender's wrap of an envelope: fresh bytes for every send attempt.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::kdf;
use crate::crypto::{ENVELOPE_LEN, Envelope};

/// Length of a [`WrappedEnvelope`]: a 24-byte nonce and the envelope.
pub const WRAPPED_LEN: usize = 24 + ENVELOPE_LEN;

/// The key a sender wraps envelopes under for one recipient (or group) and epoch
/// ([`super::DeliverySecret::wrap_key`], [`super::GroupTagKey::wrap_key`];
/// docs/PROTOCOL.md, hum/2 §H4.2). Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct WrapKey([u8; 32]);

impl WrapKey {
    /// Wraps key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> WrapKey {
        WrapKey(bytes)
    }

    /// The key's bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps `envelope` under a fresh random nonce:
    /// `nonce (24) || XChaCha20(WK, nonce) xor envelope`. The envelope carries its own
    /// AEAD; the wrap only makes the bytes fresh, so a re-send never repeats them.
    pub fn wrap(&self, envelope: &Envelope) -> WrappedEnvelope {
        let nonce: [u8; 24] = kdf::random();
        let mut out = Box::new([0u8; WRAPPED_LEN]);
        out[..24].copy_from_slice(&nonce);
        out[24..].copy_from_slice(envelope.as_bytes());
        kdf::xor_stream(&self.0, &nonce, &mut out[24..]);
        WrappedEnvelope(out)
    }

    /// Reverses [`WrapKey::wrap`]. There is no check here: whether the envelope is
    /// genuine is for the envelope's own AEAD to say.
    pub fn unwrap(&self, wrapped: &WrappedEnvelope) -> Envelope {
        let nonce: [u8; 24] = kdf::take(&wrapped.0[..], 0);
        let mut env = [0u8; ENVELOPE_LEN];
        env.copy_from_slice(&wrapped.0[24..]);
        kdf::xor_stream(&self.0, &nonce, &mut env);
        Envelope::from_array(Box::new(env))
    }
}

impl std::fmt::Debug for WrapKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrapKey(..)")
    }
}

/// A wrapped envelope `P` ([`WRAPPED_LEN`] bytes): what a deposit carries and the
/// destination relay rewraps into each bucket's item. Loops carry random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedEnvelope(Box<[u8; WRAPPED_LEN]>);

impl WrappedEnvelope {
    /// Wraps bytes read from a deposit.
    ///
    /// # Errors
    /// [`super::RouteError::Length`] unless `bytes` is [`WRAPPED_LEN`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<WrappedEnvelope, super::RouteError> {
        Ok(WrappedEnvelope(Box::new(*kdf::exact::<WRAPPED_LEN>(
            "wrapped envelope",
            bytes,
        )?)))
    }

    /// Random bytes of the same length: the payload of a loop deposit.
    pub fn random() -> WrappedEnvelope {
        WrappedEnvelope(kdf::random_box())
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; WRAPPED_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for WrappedEnvelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappedEnvelope({WRAPPED_LEN} bytes)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_is_fresh_and_unwraps() -> Result<(), super::super::RouteError> {
        let wk = WrapKey::from_bytes([8; 32]);
        let env = Envelope::from_bytes(&[0x5a; ENVELOPE_LEN])?;
        let a = wk.wrap(&env);
        let b = wk.wrap(&env);
        assert_ne!(a, b);
        assert!(
            a.as_bytes()[24..]
                .iter()
                .zip(&b.as_bytes()[24..])
                .any(|(x, y)| x != y)
        );
        assert_eq!(wk.unwrap(&a), env);
        assert_ne!(WrapKey::from_bytes([9; 32]).unwrap(&a), env);
        assert!(WrappedEnvelope::from_bytes(&[0; WRAPPED_LEN + 1]).is_err());
        Ok(())
    }
}

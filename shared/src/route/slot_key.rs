//! A mailbox relay's signed slot-key announcement, and the proof that one was checked.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use rustls_pki_types::CertificateDer;
use x25519_dalek::PublicKey;

use super::kdf::{self, L_SLOT_KEY};
use super::{RELAY_ID_LEN, RelayId, RouteError};
use crate::CertFingerprint;

/// Largest DER encoding of an ECDSA P-256 signature.
const MAX_SIGNATURE_LEN: usize = 72;
/// Smallest DER encoding of an ECDSA signature (two one-byte integers).
const MIN_SIGNATURE_LEN: usize = 8;

/// Length of an encoded [`SlotKey`]: relay id, epoch, public key, signature length and
/// the signature padded to 72 bytes.
pub const SLOT_KEY_LEN: usize = RELAY_ID_LEN + 4 + 32 + 1 + MAX_SIGNATURE_LEN;

/// A mailbox relay's X25519 slot key for one epoch, signed with the relay's TLS
/// certificate key (ECDSA P-256 SHA-256) over
/// `"hum/2 slot key" || relay id || epoch || public` (docs/PROTOCOL.md, hum/2 §H3.2).
///
/// It arrives through the entry relay, which must not be able to substitute it: use it
/// only through [`SlotKey::verify`], which checks it against the certificate whose
/// fingerprint the client pinned.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotKey {
    relay: RelayId,
    epoch: u32,
    public: [u8; 32],
    signature_len: u8,
    signature: [u8; MAX_SIGNATURE_LEN],
}

impl SlotKey {
    /// The relay the announcement claims to come from.
    pub fn relay(&self) -> RelayId {
        self.relay
    }

    /// The epoch of the announced key.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The announced public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The announcement's [`SLOT_KEY_LEN`] bytes.
    pub fn encode(&self) -> [u8; SLOT_KEY_LEN] {
        let mut out = [0u8; SLOT_KEY_LEN];
        out[..8].copy_from_slice(self.relay.as_bytes());
        out[8..12].copy_from_slice(&self.epoch.to_be_bytes());
        out[12..44].copy_from_slice(&self.public);
        out[44] = self.signature_len;
        out[45..].copy_from_slice(&self.signature);
        out
    }

    /// Reads an announcement (its signature is not checked here: see [`SlotKey::verify`]).
    ///
    /// # Errors
    /// [`RouteError::Length`] unless `bytes` is [`SLOT_KEY_LEN`] long;
    /// [`RouteError::Malformed`] for a signature length out of range or non-zero padding.
    pub fn decode(bytes: &[u8]) -> Result<SlotKey, RouteError> {
        let bytes = kdf::exact::<SLOT_KEY_LEN>("slot key", bytes)?;
        let signature_len = bytes[44];
        let len = usize::from(signature_len);
        if !(MIN_SIGNATURE_LEN..=MAX_SIGNATURE_LEN).contains(&len) {
            return Err(RouteError::Malformed("slot key signature length"));
        }
        kdf::zeros("slot key signature padding", &bytes[45 + len..])?;
        Ok(SlotKey {
            relay: RelayId::from_bytes(kdf::take(bytes, 0)),
            epoch: kdf::u32_at(bytes, 8),
            public: kdf::take(bytes, 12),
            signature_len,
            signature: kdf::take(bytes, 45),
        })
    }

    /// Checks the announcement against the relay's certificate (DER) and the fingerprint
    /// the client pinned for that relay: the certificate must hash to `pinned`, the
    /// announcement must name the relay of `pinned`, the signature must verify with the
    /// certificate's key, and the key must not be of low order.
    ///
    /// # Errors
    /// [`RouteError::CertificateMismatch`], [`RouteError::BadSignature`] or
    /// [`RouteError::LowOrderPoint`].
    pub fn verify(
        &self,
        certificate: &[u8],
        pinned: &CertFingerprint,
    ) -> Result<VerifiedSlotKey, RouteError> {
        if CertFingerprint::of_certificate(certificate) != *pinned
            || self.relay != RelayId::of_fingerprint(pinned)
        {
            return Err(RouteError::CertificateMismatch);
        }
        let der = CertificateDer::from(certificate);
        let cert =
            webpki::EndEntityCert::try_from(&der).map_err(|_| RouteError::CertificateMismatch)?;
        let message = signed_message(self.relay, self.epoch, &self.public);
        let signature = &self.signature[..usize::from(self.signature_len)];
        cert.verify_signature(webpki::ring::ECDSA_P256_SHA256, &message, signature)
            .map_err(|_| RouteError::BadSignature)?;
        let public = PublicKey::from(self.public);
        check_not_low_order(&public)?;
        Ok(VerifiedSlotKey {
            relay: self.relay,
            epoch: self.epoch,
            public,
        })
    }
}

impl fmt::Debug for SlotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotKey")
            .field("relay", &self.relay)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Signs a slot-key announcement with the relay's TLS certificate key, given as PKCS#8 DER
/// (an ECDSA P-256 key, as rcgen makes it).
///
/// # Errors
/// [`RouteError::SigningKey`] if the key is not a P-256 PKCS#8 key or signing fails.
pub fn sign_slot_key(
    pkcs8: &[u8],
    relay: RelayId,
    epoch: u32,
    public: &[u8; 32],
) -> Result<SlotKey, RouteError> {
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng)
        .map_err(|_| RouteError::SigningKey)?;
    let sig = key
        .sign(&rng, &signed_message(relay, epoch, public))
        .map_err(|_| RouteError::SigningKey)?;
    let sig = sig.as_ref();
    if !(MIN_SIGNATURE_LEN..=MAX_SIGNATURE_LEN).contains(&sig.len()) {
        return Err(RouteError::SigningKey);
    }
    let mut signature = [0u8; MAX_SIGNATURE_LEN];
    signature[..sig.len()].copy_from_slice(sig);
    Ok(SlotKey {
        relay,
        epoch,
        public: *public,
        signature_len: u8::try_from(sig.len()).map_err(|_| RouteError::SigningKey)?,
        signature,
    })
}

fn signed_message(relay: RelayId, epoch: u32, public: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(L_SLOT_KEY.len() + 44);
    m.extend_from_slice(L_SLOT_KEY);
    m.extend_from_slice(relay.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m.extend_from_slice(public);
    m
}

/// Refuses a public key of low order: a clamped scalar is a multiple of the cofactor, so
/// such a key times any scalar is the identity.
pub(crate) fn check_not_low_order(public: &PublicKey) -> Result<(), RouteError> {
    let probe = x25519_dalek::StaticSecret::from([1u8; 32]);
    kdf::x25519(&probe, public).map(|_| ())
}

/// A slot key whose announcement verified against a pinned certificate: the only form
/// [`super::seal_slot`] accepts, so a slot can never be sealed to an unchecked key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedSlotKey {
    relay: RelayId,
    epoch: u32,
    public: PublicKey,
}

impl VerifiedSlotKey {
    /// The relay that holds the key.
    pub fn relay(&self) -> RelayId {
        self.relay
    }

    /// The key's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// A relay's own key, which it trusts without a signature (its entry role sealing
    /// dummies to its own mailbox role).
    pub(crate) fn own(relay: RelayId, epoch: u32, public: PublicKey) -> VerifiedSlotKey {
        VerifiedSlotKey {
            relay,
            epoch,
            public,
        }
    }
}

impl fmt::Debug for VerifiedSlotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedSlotKey")
            .field("relay", &self.relay)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A relay identity as the relay makes it: rcgen's self-signed P-256 certificate.
    pub(crate) fn relay_cert() -> (Vec<u8>, Vec<u8>, CertFingerprint) {
        let made = rcgen::generate_simple_self_signed(vec!["hum-relay".to_owned()])
            .expect("rcgen makes a certificate");
        let cert = made.cert.der().to_vec();
        let fp = CertFingerprint::of_certificate(&cert);
        (cert, made.signing_key.serialize_der(), fp)
    }

    #[test]
    fn signed_announcement_verifies_and_round_trips() -> Result<(), RouteError> {
        let (cert, key, fp) = relay_cert();
        let relay = RelayId::of_fingerprint(&fp);
        let public = *PublicKey::from(&x25519_dalek::StaticSecret::from([9u8; 32])).as_bytes();
        let ann = sign_slot_key(&key, relay, 7, &public)?;
        let back = SlotKey::decode(&ann.encode())?;
        assert_eq!(back, ann);
        let ok = back.verify(&cert, &fp)?;
        assert_eq!((ok.relay(), ok.epoch()), (relay, 7));
        assert_eq!(ok.public().as_bytes(), &public);
        Ok(())
    }

    #[test]
    fn substitutions_are_refused() -> Result<(), RouteError> {
        let (cert, key, fp) = relay_cert();
        let (other_cert, other_key, other_fp) = relay_cert();
        let relay = RelayId::of_fingerprint(&fp);
        let public = *PublicKey::from(&x25519_dalek::StaticSecret::from([9u8; 32])).as_bytes();
        // Signed by another relay's key, presented with the right certificate.
        let forged = sign_slot_key(&other_key, relay, 7, &public)?;
        assert_eq!(forged.verify(&cert, &fp), Err(RouteError::BadSignature));
        // Presented with the other relay's certificate: not the pinned one.
        assert_eq!(
            forged.verify(&other_cert, &fp),
            Err(RouteError::CertificateMismatch)
        );
        // The other relay's own announcement, offered as ours.
        let theirs = sign_slot_key(&other_key, RelayId::of_fingerprint(&other_fp), 7, &public)?;
        assert_eq!(
            theirs.verify(&other_cert, &fp),
            Err(RouteError::CertificateMismatch)
        );
        // A genuine announcement whose epoch or key was changed.
        let ann = sign_slot_key(&key, relay, 7, &public)?;
        let mut bytes = ann.encode();
        bytes[11] ^= 1;
        assert_eq!(
            SlotKey::decode(&bytes)?.verify(&cert, &fp),
            Err(RouteError::BadSignature)
        );
        Ok(())
    }

    #[test]
    fn low_order_keys_are_refused_even_when_signed() -> Result<(), RouteError> {
        let (cert, key, fp) = relay_cert();
        let relay = RelayId::of_fingerprint(&fp);
        for point in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            let ann = sign_slot_key(&key, relay, 1, &point)?;
            assert_eq!(ann.verify(&cert, &fp), Err(RouteError::LowOrderPoint));
        }
        Ok(())
    }

    #[test]
    fn malformed_announcements_are_refused() {
        assert!(matches!(
            SlotKey::decode(&[0u8; SLOT_KEY_LEN - 1]),
            Err(RouteError::Length { .. })
        ));
        let mut bytes = [0u8; SLOT_KEY_LEN];
        assert_eq!(
            SlotKey::decode(&bytes),
            Err(RouteError::Malformed("slot key signature length"))
        );
        bytes[44] = 70;
        bytes[SLOT_KEY_LEN - 1] = 1;
        assert_eq!(
            SlotKey::decode(&bytes),
            Err(RouteError::Malformed("slot key signature padding"))
        );
        assert!(sign_slot_key(b"not a key", RelayId::from_bytes([0; 8]), 0, &[9; 32]).is_err());
    }
}

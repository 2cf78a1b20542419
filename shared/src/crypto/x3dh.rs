//! The X3DH-style handshake (Signal's X3DH, revision 1) from an invite, with a sealed
//! sender: the acceptor's identity travels encrypted under the ephemeral DH.
//!
//! Handshake envelope layout (docs/PROTOCOL.md, section 3.4):
//!
//! ```text
//! EK_A (32) || E(K_seal, acceptor PublicIdentity (128)) (144) || ratchet message (720)
//! ```

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::CryptoError;
use super::identity::{Identity, PublicIdentity};
use super::kdf::{self, L_SESSION_AD, L_X3DH, L_X3DH_SEAL, NONCE_LEN, TAG_LEN};
use super::ratchet::SharedKeys;

/// Offset of the sealed identity in a handshake envelope.
pub(crate) const SEALED_ID_AT: usize = 32;
/// Offset of the ratchet message in a handshake envelope.
pub(crate) const RATCHET_AT: usize = SEALED_ID_AT + PublicIdentity::LEN + TAG_LEN;

/// Everything both sides derive from the handshake.
pub(crate) struct Agreement {
    pub(crate) keys: SharedKeys,
    /// Mailbox secret for messages from the acceptor (initiator) to the inviter.
    pub(crate) mailbox_a2b: Zeroizing<[u8; 32]>,
    /// Mailbox secret for messages from the inviter to the acceptor.
    pub(crate) mailbox_b2a: Zeroizing<[u8; 32]>,
    /// Associated data of every ratchet message: BLAKE2b-256 of both identities.
    pub(crate) ad: [u8; 32],
}

/// Sealed-sender key and nonce from `DH(EK_A, SPK_B)`.
pub(crate) fn seal_key(
    dh3: &[u8; 32],
    ek_a: &[u8; 32],
    spk_b: &[u8; 32],
) -> Result<(Zeroizing<[u8; 32]>, [u8; NONCE_LEN]), CryptoError> {
    let mut okm = Zeroizing::new([0u8; 32 + NONCE_LEN]);
    let info = [L_X3DH_SEAL, ek_a, spk_b].concat();
    kdf::hkdf(&[0u8; 64], dh3, &info, &mut okm[..])?;
    Ok((
        Zeroizing::new(kdf::array_at::<32>(&okm[..], 0)?),
        kdf::array_at::<NONCE_LEN>(&okm[..], 32)?,
    ))
}

/// `SK = HKDF(F || DH1 || DH2 || DH3)` expanded into the ratchet's root and header keys and
/// the two mailbox secrets.
pub(crate) fn agree(
    dh1: &[u8; 32],
    dh2: &[u8; 32],
    dh3: &[u8; 32],
    acceptor: &PublicIdentity,
    inviter: &PublicIdentity,
) -> Result<Agreement, CryptoError> {
    let mut ikm = Zeroizing::new([0xFFu8; 32 * 4]);
    ikm[32..64].copy_from_slice(dh1);
    ikm[64..96].copy_from_slice(dh2);
    ikm[96..].copy_from_slice(dh3);
    let mut okm = Zeroizing::new([0u8; 32 * 5]);
    kdf::hkdf(&[0u8; 64], &ikm[..], L_X3DH, &mut okm[..])?;
    let part = |i: usize| kdf::array_at::<32>(&okm[..], 32 * i).map(Zeroizing::new);
    let ad = kdf::blake2b_256(L_SESSION_AD, &[&acceptor.to_bytes(), &inviter.to_bytes()])?;
    Ok(Agreement {
        keys: SharedKeys {
            root: part(0)?,
            hka: part(1)?,
            nhkb: part(2)?,
        },
        mailbox_a2b: part(3)?,
        mailbox_b2a: part(4)?,
        ad,
    })
}

/// The acceptor's side: DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B).
///
/// # Errors
/// [`CryptoError::LowOrderPoint`] if any of them is not contributory.
pub(crate) fn acceptor_dhs(
    me: &Identity,
    ek: &StaticSecret,
    inviter: &PublicIdentity,
    spk_b: &[u8; 32],
) -> Result<[Zeroizing<[u8; 32]>; 3], CryptoError> {
    let spk = PublicKey::from(*spk_b);
    Ok([
        me.dh(&spk)?,
        kdf::x25519(ek, inviter.dh_public())?,
        kdf::x25519(ek, &spk)?,
    ])
}

/// The inviter's side of the same three DHs.
///
/// # Errors
/// [`CryptoError::LowOrderPoint`] if any of them is not contributory.
pub(crate) fn inviter_dhs(
    me: &Identity,
    spk_secret: &StaticSecret,
    acceptor: &PublicIdentity,
    ek_a: &[u8; 32],
) -> Result<[Zeroizing<[u8; 32]>; 3], CryptoError> {
    let ek = PublicKey::from(*ek_a);
    Ok([
        kdf::x25519(spk_secret, acceptor.dh_public())?,
        me.dh(&ek)?,
        kdf::x25519(spk_secret, &ek)?,
    ])
}

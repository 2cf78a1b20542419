//! hum/2's labels and the few primitive wrappers the formats need beyond crypto's: a
//! zero-nonce AEAD into fixed buffers, the raw XChaCha20 keystream, and X25519 with the
//! low-order check. Every hum/2 label is listed here (docs/PROTOCOL.md, hum/2 §H3).

use orion::hazardous::aead::xchacha20poly1305::{self, XChaCha20Poly1305};
use orion::hazardous::stream::xchacha20;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::RouteError;
pub(crate) use crate::crypto::kdf::{blake2b_256, random, rng};

/// Poly1305 tag length.
pub(crate) const AEAD_TAG_LEN: usize = 16;

pub(crate) const L_RELAY_ID: &[u8] = b"hum/2 relay id";
pub(crate) const L_SLOT_KEY: &[u8] = b"hum/2 slot key";
pub(crate) const L_BUCKET: &[u8] = b"hum/2 bucket";
pub(crate) const L_WRAP: &[u8] = b"hum/2 wrap";
pub(crate) const L_GROUP_WRAP: &[u8] = b"hum/2 group wrap";
pub(crate) const L_DETECT: &[u8] = b"hum/2 detect";
pub(crate) const L_TAG: &[u8] = b"hum/2 tag";
pub(crate) const L_SEED: &[u8] = b"hum/2 seed";
pub(crate) const L_GROUP_TAG: &[u8] = b"hum/2 group tag";
pub(crate) const L_GROUP_SPEAKER: &[u8] = b"hum/2 group speaker";
pub(crate) const L_LOOP: &[u8] = b"hum/2 loop";
pub(crate) const L_INVITE_TAG: &[u8] = b"hum/2 invite tag";
pub(crate) const L_COPY_TAG: &[u8] = b"hum/2 copy tag";
pub(crate) const L_REWRAP: &[u8] = b"hum/2 rewrap";
pub(crate) const L_FLAG: &[u8] = b"hum/2 flag";
pub(crate) const L_SLOT_KEYS: &[u8] = b"hum/2 slot keys";
pub(crate) const L_SLOT_AD: &[u8] = b"hum/2 slot";
pub(crate) const L_INNER_KEYS: &[u8] = b"hum/2 inner keys";
pub(crate) const L_INNER_AD: &[u8] = b"hum/2 inner";
pub(crate) const L_ANSWER_AD: &[u8] = b"hum/2 answer";
pub(crate) const L_INNER_ANSWER_AD: &[u8] = b"hum/2 inner answer";
pub(crate) const L_DIRECTORY: &[u8] = b"hum/2 directory";

/// HKDF salt for the slot and inner keys: 64 zero bytes, RFC 5869's default for SHA-512.
const ZERO_SALT: [u8; 64] = [0u8; 64];

/// BLAKE2b-256 keyed with `label`; the labels are constants and the output length fixed,
/// so this cannot fail.
pub(crate) fn b2b(label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    blake2b_256(label, parts).expect("BLAKE2b with a 1..=64 byte key and 32-byte output")
}

/// X25519 of our secret with `public`, refusing a low-order or zero result.
pub(crate) fn x25519(
    secret: &StaticSecret,
    public: &PublicKey,
) -> Result<Zeroizing<[u8; 32]>, RouteError> {
    let shared = secret.diffie_hellman(public);
    if !shared.was_contributory() {
        return Err(RouteError::LowOrderPoint);
    }
    Ok(Zeroizing::new(*shared.as_bytes()))
}

/// HKDF-SHA512 with the zero salt: `N` bytes from `shared` and `label || parts`.
pub(crate) fn expand<const N: usize>(
    shared: &[u8; 32],
    label: &[u8],
    parts: &[&[u8]],
) -> Result<Zeroizing<[u8; N]>, RouteError> {
    let mut info = Vec::with_capacity(label.len() + 64);
    info.extend_from_slice(label);
    for p in parts {
        info.extend_from_slice(p);
    }
    let mut out = Zeroizing::new([0u8; N]);
    crate::crypto::kdf::hkdf(&ZERO_SALT, shared, &info, &mut out[..])?;
    Ok(out)
}

/// XChaCha20-Poly1305 under a single-use `key` with the all-zero nonce: `out` is
/// `plain.len() + 16` bytes.
pub(crate) fn seal_zero_nonce(
    key: &[u8; 32],
    plain: &[u8],
    ad: &[u8],
    out: &mut [u8],
) -> Result<(), RouteError> {
    let key = xchacha20poly1305::SecretKey::try_from(key)?;
    let nonce = xchacha20poly1305::Nonce::from([0u8; 24]);
    XChaCha20Poly1305::seal(&key, &nonce, plain, Some(ad), out)?;
    Ok(())
}

/// Opens what [`seal_zero_nonce`] made into `out` (`sealed.len() - 16` bytes).
///
/// # Errors
/// [`RouteError::DecryptFailed`] on any failure.
pub(crate) fn open_zero_nonce(
    key: &[u8; 32],
    sealed: &[u8],
    ad: &[u8],
    out: &mut [u8],
) -> Result<(), RouteError> {
    let key = xchacha20poly1305::SecretKey::try_from(key).map_err(|_| RouteError::DecryptFailed)?;
    let nonce = xchacha20poly1305::Nonce::from([0u8; 24]);
    XChaCha20Poly1305::open(&key, &nonce, sealed, Some(ad), out)
        .map_err(|_| RouteError::DecryptFailed)
}

/// XORs the XChaCha20 keystream of `key` and `nonce` (from block 0) into `bytes`.
pub(crate) fn xor_stream(key: &[u8; 32], nonce: &[u8; 24], bytes: &mut [u8]) {
    // A fixed 32-byte key and 24-byte nonce, and fewer than 256 GiB of keystream.
    let key = xchacha20::SecretKey::try_from(key).expect("32-byte key");
    let nonce = xchacha20::Nonce::from(*nonce);
    xchacha20::XChaCha20::new(&key, &nonce)
        .xor_keystream_into(bytes)
        .expect("keystream of a few KiB");
}

/// Copies `N` bytes at `at` out of `bytes` (the caller checked the length).
pub(crate) fn take<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

/// Checks that `bytes` is exactly `N` long and returns it as an array reference.
pub(crate) fn exact<'a, const N: usize>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<&'a [u8; N], RouteError> {
    <&[u8; N]>::try_from(bytes).map_err(|_| RouteError::Length {
        what,
        expected: N,
        actual: bytes.len(),
    })
}

/// Checks that padding is all zeros.
pub(crate) fn zeros(what: &'static str, bytes: &[u8]) -> Result<(), RouteError> {
    if bytes.iter().all(|&b| b == 0) {
        Ok(())
    } else {
        Err(RouteError::Malformed(what))
    }
}

/// Fills a boxed array with random bytes.
pub(crate) fn random_box<const N: usize>() -> Box<[u8; N]> {
    use rand_core::Rng;
    let mut out = Box::new([0u8; N]);
    rng().fill_bytes(&mut out[..]);
    out
}

/// Reads a big-endian u16 at `at`.
pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(take(bytes, at))
}

/// Reads a big-endian u32 at `at`.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(take(bytes, at))
}

/// Reads a big-endian u64 at `at`.
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(take(bytes, at))
}

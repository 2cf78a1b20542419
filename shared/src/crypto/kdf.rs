//! Thin wrappers over the primitives: randomness, BLAKE2b, HKDF-SHA512, HMAC-SHA512 and
//! XChaCha20-Poly1305. Every label used by the protocol is listed here.

use orion::hazardous::aead::xchacha20poly1305::{Nonce, SecretKey, XChaCha20Poly1305};
use orion::hazardous::hash::blake2::blake2b::Blake2b;
use orion::hazardous::kdf::hkdf;
use orion::hazardous::mac::{blake2b as blake2b_mac, hmac};
use rand_core::Rng;
use zeroize::Zeroizing;

use super::CryptoError;

/// Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;
/// XChaCha20 nonce length.
pub(crate) const NONCE_LEN: usize = 24;

// Labels (docs/PROTOCOL.md section 3 lists them all).
pub(crate) const L_IDENTITY_BINDING: &[u8] = b"hum/1 identity binding";
pub(crate) const L_FINGERPRINT: &[u8] = b"hum/1 fingerprint";
pub(crate) const L_SAFETY_NUMBER: &[u8] = b"hum/1 safety number";
pub(crate) const L_MAILBOX_ID: &[u8] = b"hum/1 mailbox id";
pub(crate) const L_MAILBOX_CAP: &[u8] = b"hum/1 mailbox capability";
pub(crate) const L_INVITE_SIG: &[u8] = b"hum/1 invite";
pub(crate) const L_INVITE_CHECKSUM: &[u8] = b"hum/1 invite checksum";
pub(crate) const L_X3DH: &[u8] = b"hum/1 x3dh";
pub(crate) const L_X3DH_SEAL: &[u8] = b"hum/1 x3dh sealed sender";
pub(crate) const L_GROUP_HEADER: &[u8] = b"hum/1 group header";
pub(crate) const L_GROUP_MAILBOX: &[u8] = b"hum/1 group mailbox";
pub(crate) const L_GROUP_SIG: &[u8] = b"hum/1 group message";
pub(crate) const L_SENDER_KEY_ENDORSEMENT: &[u8] = b"hum/1 sender key endorsement";
pub(crate) const L_SESSION_AD: &[u8] = b"hum/1 session ad";
pub(crate) const L_RATCHET_ROOT: &[u8] = b"hum/1 ratchet root";
pub(crate) const L_MESSAGE_KEYS: &[u8] = b"hum/1 message keys";

/// Fills `N` bytes from the operating system's CSPRNG.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rng().fill_bytes(&mut out);
    out
}

/// The CSPRNG handed to dalek key generation (panics only if the OS has no randomness,
/// which nothing can recover from).
pub(crate) fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// BLAKE2b-256 keyed with a domain-separation `label`, over the concatenation of `parts`.
pub(crate) fn blake2b_256(label: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], CryptoError> {
    let key = blake2b_mac::SecretKey::try_from(label)?;
    let mut state = blake2b_mac::Blake2b::new(&key, 32)?;
    for part in parts {
        state.update(part)?;
    }
    let tag = state.finalize()?;
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.unprotected_as_ref());
    Ok(out)
}

/// Unkeyed BLAKE2b-512 (used for safety numbers).
pub(crate) fn blake2b_512(parts: &[&[u8]]) -> Result<[u8; 64], CryptoError> {
    let mut state = Blake2b::new(64)?;
    for part in parts {
        state.update(part)?;
    }
    let digest = state.finalize()?;
    let mut out = [0u8; 64];
    out.copy_from_slice(digest.as_ref());
    Ok(out)
}

/// HKDF-SHA512 (RFC 5869) filling `out`.
pub(crate) fn hkdf(
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    hkdf::Hkdf::<hkdf::SHA512>::derive_key(salt, ikm, Some(info), out)?;
    Ok(())
}

/// HMAC-SHA512 truncated to 32 bytes.
pub(crate) fn hmac_32(key: &[u8], data: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let key = hmac::sha512::SecretKey::try_from(key)?;
    let tag = hmac::sha512::HmacSha512::hmac(&key, data)?;
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&tag.unprotected_as_ref()[..32]);
    Ok(out)
}

/// XChaCha20-Poly1305 seal of `plaintext` into `out` (`plaintext.len() + TAG_LEN` bytes).
pub(crate) fn aead_seal(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    ad: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let key = SecretKey::try_from(key)?;
    let nonce = Nonce::try_from(&nonce[..])?;
    XChaCha20Poly1305::seal(&key, &nonce, plaintext, Some(ad), out)?;
    Ok(())
}

/// XChaCha20-Poly1305 open of `ciphertext` (with tag) into a fresh buffer.
///
/// # Errors
/// [`CryptoError::DecryptFailed`] on any failure.
pub(crate) fn aead_open(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
    ad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let len = ciphertext
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(CryptoError::DecryptFailed)?;
    let key = SecretKey::try_from(&key[..]).map_err(|_| CryptoError::DecryptFailed)?;
    let nonce = Nonce::try_from(&nonce[..]).map_err(|_| CryptoError::DecryptFailed)?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    XChaCha20Poly1305::open(&key, &nonce, ciphertext, Some(ad), &mut out)
        .map_err(|_| CryptoError::DecryptFailed)?;
    Ok(out)
}

/// Writes `data` into `buf` as `len (u16 BE) || data || zero padding`.
pub(crate) fn pad_into(data: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
    let capacity = buf.len().saturating_sub(2);
    if data.len() > capacity {
        return Err(CryptoError::PlaintextTooLong {
            len: data.len(),
            capacity,
        });
    }
    let len = u16::try_from(data.len()).map_err(|_| CryptoError::PlaintextTooLong {
        len: data.len(),
        capacity,
    })?;
    buf.fill(0);
    buf[..2].copy_from_slice(&len.to_be_bytes());
    buf[2..2 + data.len()].copy_from_slice(data);
    Ok(())
}

/// Reverses [`pad_into`]; a length that does not fit is a decryption failure.
pub(crate) fn unpad(buf: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (len, rest) = buf
        .split_first_chunk::<2>()
        .ok_or(CryptoError::DecryptFailed)?;
    let len = usize::from(u16::from_be_bytes(*len));
    rest.get(..len)
        .map(<[u8]>::to_vec)
        .ok_or(CryptoError::DecryptFailed)
}

/// Reads a fixed-size array at `at`, with bounds checks.
pub(crate) fn array_at<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], CryptoError> {
    bytes
        .get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(CryptoError::Malformed)
}

/// Formats bytes as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

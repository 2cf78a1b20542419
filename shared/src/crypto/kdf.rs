//! Thin wrappers over the primitives: randomness, BLAKE2b, HKDF-SHA512, HMAC-SHA512,
//! XChaCha20-Poly1305, X25519 and strict Ed25519 verification. Every label used by the
//! protocol is listed here.

use ed25519_dalek::{Signature, VerifyingKey};
use orion::hazardous::aead::xchacha20poly1305::{Nonce, SecretKey, XChaCha20Poly1305};
use orion::hazardous::hash::blake2::blake2b::Blake2b;
use orion::hazardous::kdf::hkdf;
use orion::hazardous::mac::{blake2b as blake2b_mac, hmac};
use x25519_dalek::{PublicKey, StaticSecret};
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
pub(crate) const L_SENDER_KEY_CHAIN: &[u8] = b"hum/1 sender key chain";

/// Fills `N` bytes from the operating system's CSPRNG.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill_random(&mut out);
    out
}

/// Fills `out` from the operating system's CSPRNG (panics only if the OS has no
/// randomness, which nothing can recover from).
///
/// Unit tests can replace the source with a seeded stream ([`seeded`]) to produce
/// known-answer vectors; that seam is compiled into test builds of this crate only.
fn fill_random(out: &mut [u8]) {
    #[cfg(test)]
    if seeded::fill(out) {
        return;
    }
    #[allow(clippy::expect_used)]
    getrandom::fill(out).expect("the operating system has no randomness");
}

/// The CSPRNG handed to dalek key generation: [`fill_random`] behind rand_core's traits.
pub(crate) struct Csprng;

impl rand_core::TryRng for Csprng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(u32::from_le_bytes(random()))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(u64::from_le_bytes(random()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        fill_random(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Csprng {}

/// The CSPRNG for dalek key generation.
pub(crate) fn rng() -> Csprng {
    Csprng
}

/// BLAKE2b-256 keyed with a domain-separation `label`, over the concatenation of `parts`.
pub(crate) fn blake2b_256(label: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], CryptoError> {
    blake2b_keyed(label, parts)
}

/// BLAKE2b with an `N`-byte output (1 to 64) keyed with `key` (1 to 64 bytes), over the
/// concatenation of `parts`.
pub(crate) fn blake2b_keyed<const N: usize>(
    key: &[u8],
    parts: &[&[u8]],
) -> Result<[u8; N], CryptoError> {
    let key = blake2b_mac::SecretKey::try_from(key)?;
    let mut state = blake2b_mac::Blake2b::new(&key, N)?;
    for part in parts {
        state.update(part)?;
    }
    let tag = state.finalize()?;
    let mut out = [0u8; N];
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

/// HMAC-SHA512 (RFC 2104, RFC 4231).
pub(crate) fn hmac_sha512(key: &[u8], data: &[u8]) -> Result<Zeroizing<[u8; 64]>, CryptoError> {
    let key = hmac::sha512::SecretKey::try_from(key)?;
    let tag = hmac::sha512::HmacSha512::hmac(&key, data)?;
    let mut out = Zeroizing::new([0u8; 64]);
    out.copy_from_slice(tag.unprotected_as_ref());
    Ok(out)
}

/// HMAC-SHA512 truncated to 32 bytes.
pub(crate) fn hmac_32(key: &[u8], data: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let tag = hmac_sha512(key, data)?;
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&tag[..32]);
    Ok(out)
}

/// The X25519 public keys of small order, with bit 255 cleared (X25519 ignores it, RFC
/// 7748 section 5): 0 and 1, the two points of order 8, p - 1, and the non-canonical p and
/// p + 1 (which are 0 and 1 again). A DH with any of them gives zero for every secret.
/// Project Wycheproof's x25519 vectors check the list is complete: every public key whose
/// shared secret is zero is in it, no other is.
const LOW_ORDER: [[u8; 32]; 7] = [
    [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    [
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// Whether the X25519 public key `u` is a point of small order (on the curve or its
/// twist, in any encoding): DH with it yields the same output for every secret.
pub(crate) fn is_low_order(u: &[u8; 32]) -> bool {
    let mut masked = *u;
    masked[31] &= 0x7f;
    LOW_ORDER.contains(&masked)
}

/// X25519 (RFC 7748) of our secret with their public key, refusing a non-contributory
/// result: an all-zero shared secret means `their` was a low-order point.
///
/// # Errors
/// [`CryptoError::LowOrderPoint`] for an all-zero result.
pub(crate) fn x25519(
    ours: &StaticSecret,
    their: &PublicKey,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let shared = ours.diffie_hellman(their);
    if !shared.was_contributory() {
        return Err(CryptoError::LowOrderPoint);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// Strict Ed25519 verification (RFC 8032 with canonical `S`, canonical `R` and `A`, and
/// neither of small order), as every signature in hum is checked.
///
/// # Errors
/// [`CryptoError::BadSignature`] for anything but a strictly valid signature.
pub(crate) fn verify_strict(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let signature = Signature::from_slice(signature).map_err(|_| CryptoError::BadSignature)?;
    key.verify_strict(message, &signature)
        .map_err(|_| CryptoError::BadSignature)
}

/// Whether a compressed Edwards point encodes its y coordinate canonically (y < p =
/// 2^255 - 19). The sign bit is not part of y.
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    let top = bytes[31] & 0x7f;
    !(top == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

/// Parses an Ed25519 public key for strict verification: a canonical encoding of a point
/// not of small order.
///
/// # Errors
/// [`CryptoError::BadSignature`] for anything else.
pub(crate) fn verifying_key(bytes: &[u8; 32]) -> Result<VerifyingKey, CryptoError> {
    if !is_canonical_y(bytes) {
        return Err(CryptoError::BadSignature);
    }
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| CryptoError::BadSignature)?;
    if key.is_weak() {
        return Err(CryptoError::BadSignature);
    }
    Ok(key)
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

/// Wipes a vector's spare capacity: removing or draining elements moves the rest down and
/// leaves a stale copy of the last ones behind the length, which dropping never reaches.
pub(crate) fn wipe_spare<T>(v: &mut Vec<T>) {
    use zeroize::Zeroize as _;
    v.spare_capacity_mut().zeroize();
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

/// A deterministic randomness source for unit tests: protocol-level known-answer vectors
/// need fixed ephemeral keys and nonces. Compiled only into this crate's own test build,
/// so no build of hum that anyone runs can reach it.
#[cfg(test)]
pub(crate) mod seeded {
    use std::cell::RefCell;

    use zeroize::Zeroizing;

    thread_local! {
        static STREAM: RefCell<Option<(Zeroizing<[u8; 32]>, u64)>> = const { RefCell::new(None) };
    }

    /// Runs `f` with randomness drawn from BLAKE2b-512(key = seed, counter) blocks, then
    /// restores the operating system's source.
    pub(crate) fn with_seed<T>(seed: [u8; 32], f: impl FnOnce() -> T) -> T {
        STREAM.with(|s| *s.borrow_mut() = Some((Zeroizing::new(seed), 0)));
        let out = f();
        STREAM.with(|s| *s.borrow_mut() = None);
        out
    }

    pub(super) fn fill(out: &mut [u8]) -> bool {
        STREAM.with(|s| {
            let mut s = s.borrow_mut();
            let Some((seed, counter)) = s.as_mut() else {
                return false;
            };
            for chunk in out.chunks_mut(64) {
                let block = super::blake2b_keyed::<64>(&seed[..], &[&counter.to_be_bytes()])
                    .expect("BLAKE2b with a 32-byte key cannot fail");
                chunk.copy_from_slice(&block[..chunk.len()]);
                *counter += 1;
            }
            true
        })
    }

    #[test]
    fn a_seed_fixes_every_random_value_and_only_inside() {
        let draw = || (super::random::<40>(), super::random::<7>());
        let a = with_seed([1; 32], draw);
        let b = with_seed([1; 32], draw);
        let c = with_seed([2; 32], draw);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(draw(), a);
        assert_ne!(draw(), draw());
    }
}

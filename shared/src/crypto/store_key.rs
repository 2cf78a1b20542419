//! The key that seals the client's store, derived from a passphrase with Argon2i
//! (docs/PROTOCOL.md, section 3.8).

use orion::hazardous::kdf::argon2::{Argon2, CostParams, I, Sequential};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;
use super::kdf::{self, NONCE_LEN, TAG_LEN};

/// Argon2i cost parameters (RFC 9106), with one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Passes over memory (`t`).
    pub iterations: u32,
    /// Memory in KiB (`m`); at least 8.
    pub memory_kib: u32,
}

impl KdfParams {
    /// For real stores: t = 3, m = 64 MiB (about a quarter of a second on a laptop).
    pub const DEFAULT: KdfParams = KdfParams {
        iterations: 3,
        memory_kib: 64 * 1024,
    };

    /// Deliberately weak (t = 1, m = 8 KiB), for tests only.
    pub const INSECURE_FAST: KdfParams = KdfParams {
        iterations: 1,
        memory_kib: 8,
    };
}

impl Default for KdfParams {
    fn default() -> KdfParams {
        KdfParams::DEFAULT
    }
}

/// A 256-bit XChaCha20-Poly1305 key derived from the user's passphrase. Zeroized on drop;
/// `Debug` prints nothing of it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// Length of the salt made by [`StoreKey::generate_salt`].
    pub const SALT_LEN: usize = 16;

    /// A fresh random salt, stored in clear beside the sealed store.
    pub fn generate_salt() -> [u8; StoreKey::SALT_LEN] {
        kdf::random()
    }

    /// Derives the key: Argon2i(passphrase, salt, t, m, p = 1), 32 bytes of output.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if the salt is shorter than 16 bytes or the parameters are
    /// out of range.
    pub fn derive(
        passphrase: &[u8],
        salt: &[u8],
        params: &KdfParams,
    ) -> Result<StoreKey, CryptoError> {
        if salt.len() < StoreKey::SALT_LEN {
            return Err(CryptoError::Malformed);
        }
        let cost = CostParams::new(params.iterations, params.memory_kib, 1)
            .map_err(|_| CryptoError::Malformed)?;
        let mut key = [0u8; 32];
        Argon2::<I, Sequential>::derive_key(passphrase, salt, &cost, None, None, &mut key)
            .map_err(|_| CryptoError::Malformed)?;
        Ok(StoreKey(key))
    }

    /// Seals `plaintext` bound to `aad` (for example the row's table and key):
    /// `nonce (24, random) || ciphertext || tag (16)`.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] only if the primitive fails.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = kdf::random::<NONCE_LEN>();
        let mut out = vec![0u8; NONCE_LEN + plaintext.len() + TAG_LEN];
        out[..NONCE_LEN].copy_from_slice(&nonce);
        kdf::aead_seal(&self.0, &nonce, plaintext, aad, &mut out[NONCE_LEN..])?;
        Ok(out)
    }

    /// Opens what [`StoreKey::seal`] produced with the same `aad`.
    ///
    /// # Errors
    /// [`CryptoError::StoreOpenFailed`] for a wrong key (passphrase), wrong `aad` or corrupted
    /// data.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce =
            kdf::array_at::<NONCE_LEN>(sealed, 0).map_err(|_| CryptoError::StoreOpenFailed)?;
        let plain = kdf::aead_open(&self.0, &nonce, &sealed[NONCE_LEN..], aad)
            .map_err(|_| CryptoError::StoreOpenFailed)?;
        Ok(plain.to_vec())
    }
}

/// BLAKE2b key deriving the store's tag key from the store key (docs/PROTOCOL.md §6).
const L_STORE_TAG_KEY: &[u8] = b"hum/1 store tag key";

impl StoreKey {
    /// A keyed hash for the store's index columns: `B2b256(TK; len(label) || label ||
    /// data)` with `TK = B2b256("hum/1 store tag key"; store key)`. Equal inputs give
    /// equal tags, so a column of tags can be indexed and searched; without the
    /// passphrase nobody can compute one, or tell what a tag stands for.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] for a label longer than 255 bytes.
    pub fn tag(&self, label: &[u8], data: &[u8]) -> Result<[u8; 32], CryptoError> {
        let len = u8::try_from(label.len()).map_err(|_| CryptoError::Malformed)?;
        let key = zeroize::Zeroizing::new(kdf::blake2b_256(L_STORE_TAG_KEY, &[&self.0])?);
        kdf::blake2b_256(&key[..], &[&[len], label, data])
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_wrong_passphrase() -> Result<(), CryptoError> {
        let salt = StoreKey::generate_salt();
        let key = StoreKey::derive(b"correct horse", &salt, &KdfParams::INSECURE_FAST)?;
        let again = StoreKey::derive(b"correct horse", &salt, &KdfParams::INSECURE_FAST)?;
        let sealed = key.seal(b"history", b"messages/1")?;
        assert_eq!(again.open(&sealed, b"messages/1")?, b"history");
        assert_eq!(
            key.open(&sealed, b"messages/2"),
            Err(CryptoError::StoreOpenFailed)
        );
        let wrong = StoreKey::derive(b"battery staple", &salt, &KdfParams::INSECURE_FAST)?;
        assert_eq!(
            wrong.open(&sealed, b"messages/1"),
            Err(CryptoError::StoreOpenFailed)
        );
        assert_eq!(
            key.open(&sealed[..20], b""),
            Err(CryptoError::StoreOpenFailed)
        );
        assert!(StoreKey::derive(b"x", &salt[..8], &KdfParams::INSECURE_FAST).is_err());
        assert_eq!(format!("{key:?}"), "StoreKey(..)");
        Ok(())
    }

    /// Argon2i test vector from RFC 9106 section 5.2 is for p = 4 with secret and ad; orion
    /// checks it itself. Here: the key depends on every parameter.
    #[test]
    fn parameters_matter() -> Result<(), CryptoError> {
        let salt = [1u8; 16];
        let a = StoreKey::derive(b"pw", &salt, &KdfParams::INSECURE_FAST)?;
        let b = StoreKey::derive(
            b"pw",
            &salt,
            &KdfParams {
                iterations: 2,
                memory_kib: 8,
            },
        )?;
        assert_ne!(a.0, b.0);
        Ok(())
    }

    #[test]
    fn tags_are_keyed_and_separated_by_label() -> Result<(), CryptoError> {
        let a = StoreKey([1; 32]);
        let b = StoreKey([2; 32]);
        assert_eq!(a.tag(b"room", b"7")?, a.tag(b"room", b"7")?);
        assert_ne!(a.tag(b"room", b"7")?, b.tag(b"room", b"7")?);
        assert_ne!(a.tag(b"room", b"7")?, a.tag(b"uid", b"7")?);
        // The label's length is part of the input: "ro" || "om7" is not "room" || "7".
        assert_ne!(a.tag(b"room", b"7")?, a.tag(b"ro", b"om7")?);
        assert!(a.tag(&[0; 256], b"").is_err());
        Ok(())
    }
}

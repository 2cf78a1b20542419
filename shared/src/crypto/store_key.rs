//! The key that seals the client's store, and the key slot that wraps it under the
//! passphrase with Argon2id (docs/PROTOCOL.md, section 3.8).
//!
//! The store key itself is random (for stores made before key slots, the old Argon2i
//! output). A key slot seals it under a key derived from the passphrase, with the KDF
//! parameters and the salt as associated data: a tampered parameter set does not unlock,
//! and parameters out of range are refused before the KDF runs.

use argon2::{Algorithm, Argon2, AssociatedData, Block, ParamsBuilder, Version};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CryptoError;
use super::kdf::{self, NONCE_LEN, TAG_LEN};

/// Argon2 cost parameters (RFC 9106), with one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Passes over memory (`t`).
    pub iterations: u32,
    /// Memory in KiB (`m`).
    pub memory_kib: u32,
}

impl KdfParams {
    /// For real stores: t = 3, m = 64 MiB (RFC 9106's second recommended setting, with one
    /// lane; about a quarter of a second on a laptop).
    pub const DEFAULT: KdfParams = KdfParams {
        iterations: 3,
        memory_kib: 64 * 1024,
    };

    /// The weakest a key slot may use under [`KdfPolicy::Standard`]: t = 2, m = 19 MiB
    /// (OWASP's minimum for Argon2id with one lane).
    pub const MIN: KdfParams = KdfParams {
        iterations: 2,
        memory_kib: 19 * 1024,
    };

    /// The most any store may ask for: t = 16, m = 1 GiB. Anything above is a tampered or
    /// foreign store, refused before the KDF runs (it could exhaust memory or time).
    pub const MAX: KdfParams = KdfParams {
        iterations: 16,
        memory_kib: 1024 * 1024,
    };

    /// Deliberately weak (t = 1, m = 8 KiB), for tests only: only
    /// [`KdfPolicy::InsecureForTests`] accepts it.
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

/// Which passphrase-KDF parameters a build accepts when it wraps or unwraps a store key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfPolicy {
    /// [`KdfParams::MIN`] to [`KdfParams::MAX`]; migration wraps with
    /// [`KdfParams::DEFAULT`].
    Standard,
    /// Also below the minimum, down to [`KdfParams::INSECURE_FAST`] (never above the
    /// maximum); migration wraps with [`KdfParams::INSECURE_FAST`]. For tests only.
    InsecureForTests,
}

impl KdfPolicy {
    /// The weakest parameters accepted.
    pub fn min(self) -> KdfParams {
        match self {
            KdfPolicy::Standard => KdfParams::MIN,
            KdfPolicy::InsecureForTests => KdfParams::INSECURE_FAST,
        }
    }

    /// The parameters a store key is wrapped with when a store is migrated.
    pub fn migration_params(self) -> KdfParams {
        match self {
            KdfPolicy::Standard => KdfParams::DEFAULT,
            KdfPolicy::InsecureForTests => KdfParams::INSECURE_FAST,
        }
    }

    /// Checks `params` against this policy's bounds.
    ///
    /// # Errors
    /// [`CryptoError::KdfParamsOutOfRange`] naming the parameters and the bounds.
    pub fn check(self, params: &KdfParams) -> Result<(), CryptoError> {
        let (min, max) = (self.min(), KdfParams::MAX);
        if (min.iterations..=max.iterations).contains(&params.iterations)
            && (min.memory_kib..=max.memory_kib).contains(&params.memory_kib)
        {
            Ok(())
        } else {
            Err(CryptoError::KdfParamsOutOfRange {
                iterations: params.iterations,
                memory_kib: params.memory_kib,
                min_iterations: min.iterations,
                max_iterations: max.iterations,
                min_memory_kib: min.memory_kib,
                max_memory_kib: max.memory_kib,
            })
        }
    }
}

/// Version byte of a key slot.
const SLOT_VERSION: u8 = 2;
/// Algorithm byte of a key slot: Argon2id, version 0x13.
const SLOT_ARGON2ID: u8 = 2;
/// The key slot's associated-data label.
const L_STORE_KEY_SLOT: &[u8] = b"hum/1 store key slot";
/// Offset of the salt in a key slot, after version, algorithm, t, m and p.
const SLOT_SALT_AT: usize = 2 + 4 + 4 + 4;
/// Offset of the nonce: the bytes before it are the associated data.
const SLOT_NONCE_AT: usize = SLOT_SALT_AT + StoreKey::SALT_LEN;

/// A 256-bit XChaCha20-Poly1305 key that seals the store. Zeroized on drop; `Debug`
/// prints nothing of it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// Length of a passphrase salt.
    pub const SALT_LEN: usize = 16;
    /// Length of a key slot made by [`StoreKey::wrap`].
    pub const SLOT_LEN: usize = SLOT_NONCE_AT + NONCE_LEN + 32 + TAG_LEN;

    /// A fresh random store key, for a new store.
    pub fn generate() -> StoreKey {
        StoreKey(kdf::random())
    }

    /// Wraps this key under `passphrase` into a key slot ([`StoreKey::SLOT_LEN`] bytes):
    ///
    /// ```text
    /// version 0x02 || algorithm 0x02 (Argon2id) || t (u32) || m (u32) || p = 1 (u32)
    /// || salt (16, random) || nonce (24, random)
    /// || AEAD(Argon2id(passphrase, salt, t, m, p), nonce, key, ad = label || bytes 0..30)
    /// ```
    ///
    /// # Errors
    /// [`CryptoError::KdfParamsOutOfRange`] if `policy` refuses `params`.
    pub fn wrap(
        &self,
        passphrase: &[u8],
        params: &KdfParams,
        policy: KdfPolicy,
    ) -> Result<Vec<u8>, CryptoError> {
        policy.check(params)?;
        let mut slot = vec![0u8; StoreKey::SLOT_LEN];
        slot[0] = SLOT_VERSION;
        slot[1] = SLOT_ARGON2ID;
        slot[2..6].copy_from_slice(&params.iterations.to_be_bytes());
        slot[6..10].copy_from_slice(&params.memory_kib.to_be_bytes());
        slot[10..14].copy_from_slice(&1u32.to_be_bytes());
        slot[SLOT_SALT_AT..SLOT_NONCE_AT].copy_from_slice(&kdf::random::<{ StoreKey::SALT_LEN }>());
        let nonce = kdf::random::<NONCE_LEN>();
        slot[SLOT_NONCE_AT..SLOT_NONCE_AT + NONCE_LEN].copy_from_slice(&nonce);
        let wrapping = argon2_key(
            Algorithm::Argon2id,
            passphrase,
            &slot[SLOT_SALT_AT..SLOT_NONCE_AT],
            params,
        )?;
        let (head, sealed) = slot.split_at_mut(SLOT_NONCE_AT + NONCE_LEN);
        let ad = [L_STORE_KEY_SLOT, &head[..SLOT_NONCE_AT]].concat();
        kdf::aead_seal(&wrapping, &nonce, &self.0, &ad, sealed)?;
        Ok(slot)
    }

    /// The KDF parameters a key slot names, read without running the KDF (they are
    /// authenticated only by [`StoreKey::unwrap`]).
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] for a slot of another length, version or algorithm.
    pub fn slot_params(slot: &[u8]) -> Result<KdfParams, CryptoError> {
        if slot.len() != StoreKey::SLOT_LEN
            || slot[0] != SLOT_VERSION
            || slot[1] != SLOT_ARGON2ID
            || u32::from_be_bytes(kdf::array_at::<4>(slot, 10)?) != 1
        {
            return Err(CryptoError::Malformed);
        }
        Ok(KdfParams {
            iterations: u32::from_be_bytes(kdf::array_at::<4>(slot, 2)?),
            memory_kib: u32::from_be_bytes(kdf::array_at::<4>(slot, 6)?),
        })
    }

    /// Opens a key slot made by [`StoreKey::wrap`]. The parameters are checked against
    /// `policy` before the KDF runs.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] for a slot that is not one,
    /// [`CryptoError::KdfParamsOutOfRange`] for parameters `policy` refuses (nothing was
    /// derived), [`CryptoError::StoreOpenFailed`] for a wrong passphrase or a slot whose
    /// parameters, salt or sealed key were changed.
    pub fn unwrap(
        passphrase: &[u8],
        slot: &[u8],
        policy: KdfPolicy,
    ) -> Result<StoreKey, CryptoError> {
        let params = StoreKey::slot_params(slot)?;
        policy.check(&params)?;
        let wrapping = argon2_key(
            Algorithm::Argon2id,
            passphrase,
            &slot[SLOT_SALT_AT..SLOT_NONCE_AT],
            &params,
        )?;
        let nonce = kdf::array_at::<NONCE_LEN>(slot, SLOT_NONCE_AT)?;
        let ad = [L_STORE_KEY_SLOT, &slot[..SLOT_NONCE_AT]].concat();
        let key = kdf::aead_open(&wrapping, &nonce, &slot[SLOT_NONCE_AT + NONCE_LEN..], &ad)
            .map_err(|_| CryptoError::StoreOpenFailed)?;
        let key = kdf::array_at::<32>(&key, 0).map_err(|_| CryptoError::StoreOpenFailed)?;
        Ok(StoreKey(key))
    }

    /// The store key of a store made before key slots: Argon2i(passphrase, salt, t, m,
    /// p = 1), 32 bytes, used directly. Only for opening such a store to migrate it; the
    /// parameters were stored unauthenticated, so only the maximum is enforced (a weak
    /// set cannot help anyone: a changed set derives another key, which opens nothing).
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] for a salt shorter than 16 bytes,
    /// [`CryptoError::KdfParamsOutOfRange`] above [`KdfParams::MAX`] or below Argon2's
    /// own minimum.
    pub fn derive_legacy_argon2i(
        passphrase: &[u8],
        salt: &[u8],
        params: &KdfParams,
    ) -> Result<StoreKey, CryptoError> {
        if salt.len() < StoreKey::SALT_LEN {
            return Err(CryptoError::Malformed);
        }
        KdfPolicy::InsecureForTests.check(params)?;
        let key = argon2_key(Algorithm::Argon2i, passphrase, salt, params)?;
        Ok(StoreKey(*key))
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

    /// Opens what [`StoreKey::seal`] produced with the same `aad`, into a buffer wiped when
    /// dropped (rows hold secrets: sessions, group states, identities).
    ///
    /// # Errors
    /// [`CryptoError::StoreOpenFailed`] for a wrong key (passphrase), wrong `aad` or corrupted
    /// data.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let nonce =
            kdf::array_at::<NONCE_LEN>(sealed, 0).map_err(|_| CryptoError::StoreOpenFailed)?;
        kdf::aead_open(&self.0, &nonce, &sealed[NONCE_LEN..], aad)
            .map_err(|_| CryptoError::StoreOpenFailed)
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

/// Argon2 (v1.3) with one lane and a 32-byte output.
fn argon2_key(
    algorithm: Algorithm,
    passphrase: &[u8],
    salt: &[u8],
    params: &KdfParams,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let mut out = Zeroizing::new([0u8; 32]);
    argon2_into(
        algorithm,
        passphrase,
        salt,
        &Argon2Inputs {
            iterations: params.iterations,
            memory_kib: params.memory_kib,
            lanes: 1,
            secret: None,
            ad: &[],
        },
        &mut out[..],
    )?;
    Ok(out)
}

/// Every Argon2 input beyond the passphrase and salt.
pub(crate) struct Argon2Inputs<'a> {
    pub(crate) iterations: u32,
    pub(crate) memory_kib: u32,
    pub(crate) lanes: u32,
    pub(crate) secret: Option<&'a [u8]>,
    pub(crate) ad: &'a [u8],
}

/// Argon2 (RFC 9106, v1.3) into `out`, over memory that is allocated fallibly and wiped
/// when dropped (the crate's own allocation is not wiped).
pub(crate) fn argon2_into(
    algorithm: Algorithm,
    passphrase: &[u8],
    salt: &[u8],
    inputs: &Argon2Inputs<'_>,
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let mut builder = ParamsBuilder::new();
    builder
        .m_cost(inputs.memory_kib)
        .t_cost(inputs.iterations)
        .p_cost(inputs.lanes)
        .output_len(out.len());
    if !inputs.ad.is_empty() {
        builder.data(AssociatedData::new(inputs.ad).map_err(|_| CryptoError::Malformed)?);
    }
    let params = builder.build().map_err(|_| CryptoError::Malformed)?;
    let argon = match inputs.secret {
        Some(secret) => Argon2::new_with_secret(secret, algorithm, Version::V0x13, params)
            .map_err(|_| CryptoError::Malformed)?,
        None => Argon2::new(algorithm, Version::V0x13, params),
    };
    let blocks = usize::try_from(inputs.memory_kib).map_err(|_| CryptoError::Malformed)?;
    let mut memory: Zeroizing<Vec<Block>> = Zeroizing::new(Vec::new());
    memory
        .try_reserve_exact(blocks)
        .map_err(|_| CryptoError::Internal)?;
    memory.resize(blocks, Block::new());
    argon
        .hash_password_into_with_memory(passphrase, salt, out, &mut memory[..])
        .map_err(|_| CryptoError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfPolicy = KdfPolicy::InsecureForTests;

    #[test]
    fn wrap_unwrap_and_wrong_passphrase() -> Result<(), CryptoError> {
        let key = StoreKey::generate();
        let slot = key.wrap(b"correct horse", &KdfParams::INSECURE_FAST, FAST)?;
        assert_eq!(slot.len(), StoreKey::SLOT_LEN);
        let back = StoreKey::unwrap(b"correct horse", &slot, FAST)?;
        assert_eq!(back.0, key.0);
        assert_eq!(
            StoreKey::unwrap(b"battery staple", &slot, FAST).map(|_| ()),
            Err(CryptoError::StoreOpenFailed)
        );
        // Two wraps of one key differ (fresh salt and nonce) and both open.
        let again = key.wrap(b"correct horse", &KdfParams::INSECURE_FAST, FAST)?;
        assert_ne!(again, slot);
        assert_eq!(StoreKey::unwrap(b"correct horse", &again, FAST)?.0, key.0);
        let sealed = key.seal(b"history", b"messages/1")?;
        assert_eq!(*back.open(&sealed, b"messages/1")?, b"history");
        assert_eq!(
            key.open(&sealed, b"messages/2"),
            Err(CryptoError::StoreOpenFailed)
        );
        assert_eq!(
            key.open(&sealed[..20], b""),
            Err(CryptoError::StoreOpenFailed)
        );
        assert_eq!(format!("{key:?}"), "StoreKey(..)");
        Ok(())
    }

    /// Every byte of the slot is authenticated: parameters, salt, nonce and sealed key.
    #[test]
    fn a_tampered_slot_does_not_unlock() -> Result<(), CryptoError> {
        let key = StoreKey::generate();
        let params = KdfParams {
            iterations: 1,
            memory_kib: 16,
        };
        let slot = key.wrap(b"pw", &params, FAST)?;
        for at in 0..slot.len() {
            let mut bad = slot.clone();
            bad[at] ^= 0x01;
            let result = StoreKey::unwrap(b"pw", &bad, FAST).map(|_| ());
            assert!(result.is_err(), "a flip at {at} unlocked");
        }
        // A changed parameter set (still in range) runs the KDF and fails to open.
        let mut weaker = slot.clone();
        weaker[6..10].copy_from_slice(&8u32.to_be_bytes());
        assert_eq!(
            StoreKey::unwrap(b"pw", &weaker, FAST).map(|_| ()),
            Err(CryptoError::StoreOpenFailed)
        );
        Ok(())
    }

    /// A huge memory cost is refused before the KDF runs: a clear error, no allocation
    /// (a 4 TiB request would abort the process otherwise).
    #[test]
    fn parameters_out_of_range_are_refused_before_the_kdf() -> Result<(), CryptoError> {
        let slot = StoreKey::generate().wrap(b"pw", &KdfParams::INSECURE_FAST, FAST)?;
        for (t, m) in [(1, u32::MAX), (u32::MAX, 8), (17, 8), (1, 1024 * 1024 + 1)] {
            let mut bad = slot.clone();
            bad[2..6].copy_from_slice(&u32::to_be_bytes(t));
            bad[6..10].copy_from_slice(&u32::to_be_bytes(m));
            assert!(matches!(
                StoreKey::unwrap(b"pw", &bad, FAST),
                Err(CryptoError::KdfParamsOutOfRange { iterations, memory_kib, .. })
                    if iterations == t && memory_kib == m
            ));
            let legacy = KdfParams {
                iterations: t,
                memory_kib: m,
            };
            assert!(matches!(
                StoreKey::derive_legacy_argon2i(b"pw", &[0; 16], &legacy),
                Err(CryptoError::KdfParamsOutOfRange { .. })
            ));
        }
        // The standard policy refuses the test parameters, to wrap and to unwrap.
        assert!(matches!(
            StoreKey::unwrap(b"pw", &slot, KdfPolicy::Standard),
            Err(CryptoError::KdfParamsOutOfRange { .. })
        ));
        assert!(matches!(
            StoreKey::generate().wrap(b"pw", &KdfParams::INSECURE_FAST, KdfPolicy::Standard),
            Err(CryptoError::KdfParamsOutOfRange { .. })
        ));
        KdfPolicy::Standard.check(&KdfParams::DEFAULT)?;
        KdfPolicy::Standard.check(&KdfParams::MIN)?;
        KdfPolicy::Standard.check(&KdfParams::MAX)?;
        Ok(())
    }

    /// The legacy derivation is the Argon2i that stores before key slots used (orion's,
    /// p = 1, no secret, no associated data), and depends on every parameter.
    #[test]
    fn legacy_argon2i_matches_what_older_stores_used() -> Result<(), CryptoError> {
        use orion::hazardous::kdf::argon2::{Argon2 as OrionArgon2, CostParams, I, Sequential};
        let salt = [1u8; 16];
        for (t, m) in [(1, 8), (2, 8), (1, 64), (3, 256)] {
            let params = KdfParams {
                iterations: t,
                memory_kib: m,
            };
            let ours = StoreKey::derive_legacy_argon2i(b"pw", &salt, &params)?;
            let mut theirs = [0u8; 32];
            let cost = CostParams::new(t, m, 1)?;
            OrionArgon2::<I, Sequential>::derive_key(b"pw", &salt, &cost, None, None, &mut theirs)?;
            assert_eq!(ours.0, theirs, "t = {t}, m = {m}");
        }
        let a = StoreKey::derive_legacy_argon2i(b"pw", &salt, &KdfParams::INSECURE_FAST)?;
        let b = StoreKey::derive_legacy_argon2i(
            b"pw",
            &salt,
            &KdfParams {
                iterations: 2,
                memory_kib: 8,
            },
        )?;
        assert_ne!(a.0, b.0);
        assert!(
            StoreKey::derive_legacy_argon2i(b"x", &salt[..8], &KdfParams::INSECURE_FAST).is_err()
        );
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

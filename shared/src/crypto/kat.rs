//! Known-answer tests of the primitives against published vectors, one case per vector,
//! run through hum's own wrappers (`kdf`, `store_key`) wherever hum has one.

use ed25519_dalek::SigningKey;
use orion::hazardous::kdf::hkdf::{Hkdf, SHA256, SHA512};
use x25519_dalek::{PublicKey, StaticSecret};

use super::identity::Identity;
use super::kdf;
use super::store_key::{Argon2Inputs, argon2_into};
use super::testdata::{TestResult, cases};

#[test]
fn x25519_rfc7748() -> TestResult {
    for case in cases("x25519.txt")? {
        let ours = StaticSecret::from(case.array::<32>("scalar")?);
        let out = kdf::x25519(&ours, &PublicKey::from(case.array::<32>("u")?))?;
        assert_eq!(out.to_vec(), case.hex("out")?, "{}", case.name());
    }
    Ok(())
}

#[test]
fn x25519_rfc7748_iterated() -> TestResult {
    for case in cases("x25519_iterated.txt")? {
        let n: u32 = case.text("iterations")?.parse()?;
        let mut k = [0u8; 32];
        k[0] = 9;
        let mut u = k;
        for _ in 0..n {
            let next = *kdf::x25519(&StaticSecret::from(k), &PublicKey::from(u))?;
            u = k;
            k = next;
        }
        assert_eq!(k.to_vec(), case.hex("out")?, "{}", case.name());
    }
    Ok(())
}

/// Signing through an identity made from the vector's seed, verifying through hum's
/// strict verifier.
#[test]
fn ed25519_rfc8032() -> TestResult {
    for case in cases("ed25519.txt")? {
        let seed = case.array::<32>("secret")?;
        let public = SigningKey::from_bytes(&seed).verifying_key();
        assert_eq!(
            public.to_bytes().to_vec(),
            case.hex("public")?,
            "{}",
            case.name()
        );
        let mut stored = vec![1u8];
        stored.extend_from_slice(&seed);
        stored.extend_from_slice(&[9u8; 32]);
        let identity = Identity::from_bytes(&stored)?;
        let message = case.hex("message")?;
        let signature = identity.sign(&message).to_bytes();
        assert_eq!(
            signature.to_vec(),
            case.hex("signature")?,
            "{}",
            case.name()
        );
        let key = kdf::verifying_key(&case.array::<32>("public")?)?;
        kdf::verify_strict(&key, &message, &signature)?;
        assert!(kdf::verify_strict(&key, b"another message", &signature).is_err());
    }
    Ok(())
}

/// Extract (salt, ikm) to a PRK.
type Extract = fn(&[u8], &[u8]) -> Result<Vec<u8>, orion::errors::UnknownCryptoError>;

/// One HKDF known-answer file: the PRK through `extract`, the OKM through `derive`.
fn hkdf_cases(
    file: &str,
    extract: Extract,
    derive: impl Fn(&[u8], &[u8], &[u8], &mut [u8]) -> TestResult,
) -> TestResult {
    for case in cases(file)? {
        let (salt, ikm, info) = (case.hex("salt")?, case.hex("ikm")?, case.hex("info")?);
        assert_eq!(extract(&salt, &ikm)?, case.hex("prk")?, "{}", case.name());
        let expected = case.hex("okm")?;
        let mut okm = vec![0u8; expected.len()];
        derive(&salt, &ikm, &info, &mut okm)?;
        assert_eq!(okm, expected, "{}", case.name());
    }
    Ok(())
}

/// hum uses HKDF with SHA-512 only (see `hkdf_sha512`); these check orion's generic HKDF
/// on the RFC's own SHA-256 cases.
#[test]
fn hkdf_sha256_rfc5869() -> TestResult {
    hkdf_cases(
        "hkdf_sha256.txt",
        |salt, ikm| {
            Ok(Hkdf::<SHA256>::extract(salt, ikm)?
                .unprotected_as_ref()
                .to_vec())
        },
        |salt, ikm, info, out| Ok(Hkdf::<SHA256>::derive_key(salt, ikm, Some(info), out)?),
    )
}

#[test]
fn hkdf_sha512() -> TestResult {
    hkdf_cases(
        "hkdf_sha512.txt",
        |salt, ikm| {
            Ok(Hkdf::<SHA512>::extract(salt, ikm)?
                .unprotected_as_ref()
                .to_vec())
        },
        |salt, ikm, info, out| Ok(kdf::hkdf(salt, ikm, info, out)?),
    )
}

#[test]
fn hmac_sha512_rfc4231() -> TestResult {
    for case in cases("hmac_sha512.txt")? {
        let tag = kdf::hmac_sha512(&case.hex("key")?, &case.hex("data")?)?;
        let expected = case.hex("tag")?;
        assert_eq!(tag[..expected.len()], expected[..], "{}", case.name());
        // The chain KDF's truncation is the first 32 bytes of the same tag.
        let short = kdf::hmac_32(&case.hex("key")?, &case.hex("data")?)?;
        assert_eq!(short[..], tag[..32], "{}", case.name());
    }
    Ok(())
}

#[test]
fn blake2b_rfc7693() -> TestResult {
    for case in cases("blake2b.txt")? {
        let digest = kdf::blake2b_512(&[&case.hex("message")?])?;
        assert_eq!(digest.to_vec(), case.hex("digest")?, "{}", case.name());
    }
    Ok(())
}

/// Keyed BLAKE2b, the mode hum's labels use: the reference KAT (64-byte output) and the
/// 32-byte output of hum's own shape.
#[test]
fn blake2b_keyed() -> TestResult {
    for case in cases("blake2b_keyed.txt")? {
        let (key, message) = (case.hex("key")?, case.hex("message")?);
        let expected = case.hex("digest")?;
        let digest = match expected.len() {
            64 => kdf::blake2b_keyed::<64>(&key, &[&message])?.to_vec(),
            32 => kdf::blake2b_256(&key, &[&message])?.to_vec(),
            n => return Err(format!("{}: no {n}-byte digests", case.name()).into()),
        };
        assert_eq!(digest, expected, "{}", case.name());
        // Absorbing the message in two parts gives the same digest.
        let (a, b) = message.split_at(message.len() / 2);
        if expected.len() == 32 {
            assert_eq!(kdf::blake2b_256(&key, &[a, b])?.to_vec(), expected);
        }
    }
    Ok(())
}

#[test]
fn xchacha20poly1305_draft() -> TestResult {
    for case in cases("xchacha20poly1305.txt")? {
        let key = case.array::<32>("key")?;
        let nonce = case.array::<24>("nonce")?;
        let (aad, plaintext) = (case.hex("aad")?, case.hex("plaintext")?);
        let mut out = vec![0u8; plaintext.len() + 16];
        kdf::aead_seal(&key, &nonce, &plaintext, &aad, &mut out)?;
        let expected = [case.hex("ciphertext")?, case.hex("tag")?].concat();
        assert_eq!(out, expected, "{}", case.name());
        assert_eq!(*kdf::aead_open(&key, &nonce, &out, &aad)?, plaintext);
    }
    Ok(())
}

/// Through the same Argon2 wrapper as the store key (hum's zeroized memory), with the
/// RFC's four lanes, secret and associated data.
#[test]
fn argon2_rfc9106() -> TestResult {
    for case in cases("argon2.txt")? {
        let algorithm = match case.text("variant")? {
            "argon2i" => argon2::Algorithm::Argon2i,
            "argon2id" => argon2::Algorithm::Argon2id,
            other => return Err(format!("unknown variant {other}").into()),
        };
        let secret = case.hex("secret")?;
        let ad = case.hex("ad")?;
        let expected = case.hex("tag")?;
        let mut out = vec![0u8; expected.len()];
        argon2_into(
            algorithm,
            &case.hex("password")?,
            &case.hex("salt")?,
            &Argon2Inputs {
                iterations: case.text("iterations")?.parse()?,
                memory_kib: case.text("memory_kib")?.parse()?,
                lanes: case.text("parallelism")?.parse()?,
                secret: Some(&secret),
                ad: &ad,
            },
            &mut out,
        )?;
        assert_eq!(out, expected, "{}", case.name());
    }
    Ok(())
}

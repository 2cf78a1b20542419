//! Known-answer tests of the primitives against published vectors, one case per vector, read
//! from `tests/vectors/*.txt` (blocks of `key = hex` lines separated by blank lines).

use std::collections::HashMap;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use orion::hazardous::aead::xchacha20poly1305::{Nonce, SecretKey, XChaCha20Poly1305};
use orion::hazardous::hash::blake2::blake2b::Blake2b;
use orion::hazardous::kdf::argon2::{Argon2, CostParams, I, Sequential};
use orion::hazardous::kdf::hkdf::{Hkdf, SHA256};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Case = HashMap<String, String>;

fn cases(file: &str) -> Result<Vec<Case>, Box<dyn std::error::Error>> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    let mut current = Case::new();
    for line in text.lines().chain(std::iter::once("")) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let (k, v) = line.split_once('=').ok_or(format!("bad line {line:?}"))?;
        current.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    if out.is_empty() {
        return Err(format!("no cases in {file}").into());
    }
    Ok(out)
}

fn field<'a>(case: &'a Case, key: &str) -> Result<&'a str, String> {
    case.get(key)
        .map(String::as_str)
        .ok_or_else(|| format!("missing {key}"))
}

fn hex(case: &Case, key: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let s = field(case, key)?;
    if s.len() % 2 != 0 {
        return Err(format!("odd hex in {key}").into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(Into::into))
        .collect()
}

fn hex32(case: &Case, key: &str) -> Result<[u8; 32], Box<dyn std::error::Error>> {
    Ok(<[u8; 32]>::try_from(hex(case, key)?.as_slice())?)
}

fn name(case: &Case) -> &str {
    case.get("name").map_or("?", String::as_str)
}

#[test]
fn x25519_rfc7748() -> TestResult {
    for case in cases("x25519.txt")? {
        let out = x25519_dalek::x25519(hex32(&case, "scalar")?, hex32(&case, "u")?);
        assert_eq!(out.to_vec(), hex(&case, "out")?, "{}", name(&case));
    }
    Ok(())
}

#[test]
fn x25519_rfc7748_iterated() -> TestResult {
    for case in cases("x25519_iterated.txt")? {
        let n: u32 = field(&case, "iterations")?.parse()?;
        let mut k = [0u8; 32];
        k[0] = 9;
        let mut u = k;
        for _ in 0..n {
            let next = x25519_dalek::x25519(k, u);
            u = k;
            k = next;
        }
        assert_eq!(k.to_vec(), hex(&case, "out")?, "{}", name(&case));
    }
    Ok(())
}

#[test]
fn ed25519_rfc8032() -> TestResult {
    for case in cases("ed25519.txt")? {
        let key = SigningKey::from_bytes(&hex32(&case, "secret")?);
        assert_eq!(
            key.verifying_key().to_bytes().to_vec(),
            hex(&case, "public")?,
            "{}",
            name(&case)
        );
        let message = hex(&case, "message")?;
        let signature = key.sign(&message);
        assert_eq!(
            signature.to_bytes().to_vec(),
            hex(&case, "signature")?,
            "{}",
            name(&case)
        );
        let expected = Signature::from_slice(&hex(&case, "signature")?)?;
        key.verifying_key().verify(&message, &expected)?;
        key.verifying_key().verify_strict(&message, &expected)?;
    }
    Ok(())
}

#[test]
fn hkdf_rfc5869() -> TestResult {
    for case in cases("hkdf_sha256.txt")? {
        let (salt, ikm, info) = (hex(&case, "salt")?, hex(&case, "ikm")?, hex(&case, "info")?);
        let prk = Hkdf::<SHA256>::extract(&salt, &ikm)?;
        assert_eq!(
            prk.unprotected_as_ref().to_vec(),
            hex(&case, "prk")?,
            "{}",
            name(&case)
        );
        let expected = hex(&case, "okm")?;
        let mut okm = vec![0u8; expected.len()];
        Hkdf::<SHA256>::derive_key(&salt, &ikm, Some(&info), &mut okm)?;
        assert_eq!(okm, expected, "{}", name(&case));
    }
    Ok(())
}

#[test]
fn blake2b_rfc7693() -> TestResult {
    for case in cases("blake2b.txt")? {
        let mut state = Blake2b::new(64)?;
        state.update(&hex(&case, "message")?)?;
        let digest = state.finalize()?;
        assert_eq!(
            digest.as_ref().to_vec(),
            hex(&case, "digest")?,
            "{}",
            name(&case)
        );
    }
    Ok(())
}

#[test]
fn xchacha20poly1305_draft() -> TestResult {
    for case in cases("xchacha20poly1305.txt")? {
        let key = SecretKey::try_from(hex(&case, "key")?.as_slice())?;
        let nonce = Nonce::try_from(hex(&case, "nonce")?.as_slice())?;
        let (aad, plaintext) = (hex(&case, "aad")?, hex(&case, "plaintext")?);
        let mut out = vec![0u8; plaintext.len() + 16];
        XChaCha20Poly1305::seal(&key, &nonce, &plaintext, Some(&aad), &mut out)?;
        let expected = [hex(&case, "ciphertext")?, hex(&case, "tag")?].concat();
        assert_eq!(out, expected, "{}", name(&case));
        let mut back = vec![0u8; plaintext.len()];
        XChaCha20Poly1305::open(&key, &nonce, &out, Some(&aad), &mut back)?;
        assert_eq!(back, plaintext);
    }
    Ok(())
}

#[test]
fn argon2i_rfc9106() -> TestResult {
    for case in cases("argon2i.txt")? {
        let cost = CostParams::new(
            field(&case, "iterations")?.parse()?,
            field(&case, "memory_kib")?.parse()?,
            field(&case, "parallelism")?.parse()?,
        )?;
        let expected = hex(&case, "tag")?;
        let mut out = vec![0u8; expected.len()];
        Argon2::<I, Sequential>::derive_key(
            &hex(&case, "password")?,
            &hex(&case, "salt")?,
            &cost,
            Some(&hex(&case, "secret")?),
            Some(&hex(&case, "ad")?),
            &mut out,
        )?;
        assert_eq!(out, expected, "{}", name(&case));
    }
    Ok(())
}

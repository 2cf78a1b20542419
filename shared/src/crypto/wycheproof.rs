//! hum's own wrappers against Project Wycheproof's vectors (tests/vectors/wycheproof/,
//! Apache-2.0, LICENSE beside them): every `valid` case passes, every `invalid` one is
//! rejected, and each `acceptable` one gets the decision docs/PROTOCOL.md section 3.1
//! states.

use x25519_dalek::{PublicKey, StaticSecret};

use super::CryptoError;
use super::kdf;
use super::testdata::{TestResult, json_hex, wycheproof};

/// Runs `check` on every test of a Wycheproof file with its group; returns how many tests
/// had each result, so a test can tell that it saw the kinds of case it expects.
fn each_test(
    file: &str,
    mut check: impl FnMut(&serde_json::Value, &serde_json::Value) -> TestResult,
) -> Result<[usize; 3], Box<dyn std::error::Error>> {
    let doc = wycheproof(file)?;
    let groups = doc["testGroups"].as_array().ok_or("no test groups")?;
    let mut seen = [0usize; 3];
    for group in groups {
        for test in group["tests"].as_array().ok_or("no tests")? {
            match test["result"].as_str() {
                Some("valid") => seen[0] += 1,
                Some("invalid") => seen[1] += 1,
                Some("acceptable") => seen[2] += 1,
                other => return Err(format!("unknown result {other:?}").into()),
            }
            check(group, test).map_err(|e| format!("{file} tcId {}: {e}", test["tcId"]))?;
        }
    }
    let expected = doc["numberOfTests"].as_u64().ok_or("no count")?;
    assert_eq!(
        seen.iter().sum::<usize>() as u64,
        expected,
        "{file}: tests missed"
    );
    Ok(seen)
}

fn result(test: &serde_json::Value) -> &str {
    test["result"].as_str().unwrap_or("")
}

fn flagged(test: &serde_json::Value, flag: &str) -> bool {
    test["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some(flag)))
}

/// X25519 through `kdf::x25519` (every DH in hum) and `kdf::is_low_order` (the check on
/// parsed keys). Acceptable cases: a zero shared secret (small-order public keys, flagged
/// `ZeroSharedSecret`) is refused, by both; every other acceptable case (twist points,
/// non-canonical encodings, other special keys) is accepted with the listed secret.
#[test]
fn x25519() -> TestResult {
    let mut refused = 0;
    let seen = each_test("x25519_test.json", |_, test| {
        let ours = StaticSecret::from(<[u8; 32]>::try_from(json_hex(test, "private")?.as_slice())?);
        let public = <[u8; 32]>::try_from(json_hex(test, "public")?.as_slice())?;
        let shared = json_hex(test, "shared")?;
        let zero = shared.iter().all(|&b| b == 0);
        let out = kdf::x25519(&ours, &PublicKey::from(public));
        if zero {
            assert_eq!(result(test), "acceptable", "a zero secret marked valid");
            assert!(flagged(test, "ZeroSharedSecret"));
            assert_eq!(out.map(|_| ()), Err(CryptoError::LowOrderPoint));
            assert!(
                kdf::is_low_order(&public),
                "a small-order key passes the parse check"
            );
            refused += 1;
        } else {
            assert_eq!(out?.to_vec(), shared);
            assert!(
                !kdf::is_low_order(&public),
                "a good key fails the parse check"
            );
        }
        Ok(())
    })?;
    assert!(seen[0] > 200 && seen[2] > 200, "{seen:?}");
    assert!(refused >= 30, "only {refused} small-order cases");
    Ok(())
}

/// Ed25519 through hum's strict verifier (`kdf::verifying_key` and `kdf::verify_strict`,
/// used for every signature hum checks). The file has no acceptable cases; hum's strict
/// checks refuse every invalid one (malleable S, non-canonical encodings, truncations).
#[test]
fn ed25519() -> TestResult {
    let seen = each_test("ed25519_test.json", |group, test| {
        let public = json_hex(&group["publicKey"], "pk")?;
        let (msg, sig) = (json_hex(test, "msg")?, json_hex(test, "sig")?);
        let verdict = <[u8; 32]>::try_from(public.as_slice())
            .map_err(|_| CryptoError::BadSignature)
            .and_then(|pk| kdf::verifying_key(&pk))
            .and_then(|key| kdf::verify_strict(&key, &msg, &sig));
        match result(test) {
            "valid" => verdict?,
            _ => assert_eq!(
                verdict,
                Err(CryptoError::BadSignature),
                "{}",
                test["comment"]
            ),
        }
        Ok(())
    })?;
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    Ok(())
}

/// XChaCha20-Poly1305 through `kdf::aead_seal` and `kdf::aead_open`. A nonce that is not
/// 24 bytes cannot be given to hum's wrappers at all (they take `[u8; 24]`): such invalid
/// cases are rejected by the type.
#[test]
fn xchacha20poly1305() -> TestResult {
    let seen = each_test("xchacha20_poly1305_test.json", |_, test| {
        let key = <[u8; 32]>::try_from(json_hex(test, "key")?.as_slice())?;
        let Ok(nonce) = <[u8; 24]>::try_from(json_hex(test, "iv")?.as_slice()) else {
            assert_eq!(result(test), "invalid");
            return Ok(());
        };
        let (aad, msg) = (json_hex(test, "aad")?, json_hex(test, "msg")?);
        let sealed = [json_hex(test, "ct")?, json_hex(test, "tag")?].concat();
        let opened = kdf::aead_open(&key, &nonce, &sealed, &aad);
        match result(test) {
            "valid" => {
                assert_eq!(*opened?, msg);
                let mut out = vec![0u8; msg.len() + 16];
                kdf::aead_seal(&key, &nonce, &msg, &aad, &mut out)?;
                assert_eq!(out, sealed);
            }
            _ => assert_eq!(opened.map(|_| ()), Err(CryptoError::DecryptFailed)),
        }
        Ok(())
    })?;
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    Ok(())
}

/// HMAC-SHA512 through `kdf::hmac_sha512`. hum uses HMAC only as a KDF and never checks a
/// tag, so a case passes when hum's output, truncated to the tag size, equals the tag
/// (valid) or differs from it (invalid: modified tags).
#[test]
fn hmac_sha512() -> TestResult {
    let seen = each_test("hmac_sha512_test.json", |group, test| {
        let bits = group["tagSize"].as_u64().ok_or("no tag size")?;
        let len = usize::try_from(bits / 8)?;
        let tag = kdf::hmac_sha512(&json_hex(test, "key")?, &json_hex(test, "msg")?)?;
        let matches = tag[..len] == json_hex(test, "tag")?[..];
        assert_eq!(matches, result(test) == "valid");
        Ok(())
    })?;
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    Ok(())
}

/// HKDF-SHA512 through `kdf::hkdf`: valid outputs match; the invalid cases ask for more
/// than 255 blocks of output, which hum's wrapper refuses.
#[test]
fn hkdf_sha512() -> TestResult {
    let seen = each_test("hkdf_sha512_test.json", |_, test| {
        let size = usize::try_from(test["size"].as_u64().ok_or("no size")?)?;
        let mut okm = vec![0u8; size];
        let out = kdf::hkdf(
            &json_hex(test, "salt")?,
            &json_hex(test, "ikm")?,
            &json_hex(test, "info")?,
            &mut okm,
        );
        match result(test) {
            "valid" => {
                out?;
                assert_eq!(okm, json_hex(test, "okm")?);
            }
            _ => assert!(out.is_err()),
        }
        Ok(())
    })?;
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    Ok(())
}

//! Long-term identities, fingerprints and safety numbers.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::CryptoError;
use super::kdf::{self, L_FINGERPRINT, L_IDENTITY_BINDING, L_SAFETY_NUMBER};

/// Version byte of [`Identity::to_bytes`].
const IDENTITY_VERSION: u8 = 1;

/// One user's long-term secret keys: an Ed25519 signing key and an X25519 static key bound to
/// it by a signature (docs/PROTOCOL.md, section 3.2).
///
/// The keys are zeroized on drop and `Debug` prints only the fingerprint.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    dh: StaticSecret,
    public: PublicIdentity,
}

impl Identity {
    /// Generates a fresh identity from the operating system's randomness.
    pub fn generate() -> Identity {
        let signing = SigningKey::generate(&mut kdf::rng());
        let dh = StaticSecret::random_from_rng(&mut kdf::rng());
        Identity::from_parts(signing, dh)
    }

    fn from_parts(signing: SigningKey, dh: StaticSecret) -> Identity {
        let dh_public = PublicKey::from(&dh);
        let binding = signing.sign(&binding_message(dh_public.as_bytes()));
        let public = PublicIdentity {
            signing: signing.verifying_key(),
            dh: dh_public,
            binding,
        };
        Identity {
            signing,
            dh,
            public,
        }
    }

    /// The public half, to share with contacts.
    pub fn public(&self) -> PublicIdentity {
        self.public.clone()
    }

    /// This identity's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.public.fingerprint()
    }

    /// Serializes the secret keys for the (sealed) store: version byte, Ed25519 seed,
    /// X25519 scalar (65 bytes).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(65));
        out.push(IDENTITY_VERSION);
        out.extend_from_slice(self.signing.as_bytes());
        out.extend_from_slice(self.dh.as_bytes());
        out
    }

    /// Parses what [`Identity::to_bytes`] produced.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] for a wrong length or version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Identity, CryptoError> {
        if bytes.len() != 65 || bytes[0] != IDENTITY_VERSION {
            return Err(CryptoError::Malformed);
        }
        let seed = Zeroizing::new(kdf::array_at::<32>(bytes, 1)?);
        let scalar = Zeroizing::new(kdf::array_at::<32>(bytes, 33)?);
        Ok(Identity::from_parts(
            SigningKey::from_bytes(&seed),
            StaticSecret::from(*scalar),
        ))
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }

    pub(crate) fn dh(&self, their: &PublicKey) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        kdf::x25519(&self.dh, their)
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.fingerprint())
    }
}

fn binding_message(dh_public: &[u8; 32]) -> Vec<u8> {
    [L_IDENTITY_BINDING, dh_public].concat()
}

/// A contact's public identity: Ed25519 verifying key, X25519 public key and the signature
/// binding them, verified whenever it is parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    signing: VerifyingKey,
    dh: PublicKey,
    binding: Signature,
}

impl PublicIdentity {
    /// Length of [`PublicIdentity::to_bytes`]: 32 + 32 + 64.
    pub const LEN: usize = 128;

    /// Serializes as `ed25519 public (32) || x25519 public (32) || binding signature (64)`.
    pub fn to_bytes(&self) -> [u8; PublicIdentity::LEN] {
        let mut out = [0u8; PublicIdentity::LEN];
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..64].copy_from_slice(self.dh.as_bytes());
        out[64..].copy_from_slice(&self.binding.to_bytes());
        out
    }

    /// Parses and verifies a public identity.
    ///
    /// # Errors
    /// [`CryptoError::InvalidLength`] for a wrong length, [`CryptoError::InvalidIdentity`] if
    /// a key is invalid (a non-canonical or small-order Ed25519 key, a small-order X25519
    /// key) or the binding signature does not verify.
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicIdentity, CryptoError> {
        if bytes.len() != PublicIdentity::LEN {
            return Err(CryptoError::InvalidLength {
                expected: PublicIdentity::LEN,
                actual: bytes.len(),
            });
        }
        let signing = kdf::verifying_key(&kdf::array_at::<32>(bytes, 0)?)
            .map_err(|_| CryptoError::InvalidIdentity)?;
        let dh_bytes = kdf::array_at::<32>(bytes, 32)?;
        if kdf::is_low_order(&dh_bytes) {
            return Err(CryptoError::InvalidIdentity);
        }
        let dh = PublicKey::from(dh_bytes);
        let binding_bytes = kdf::array_at::<64>(bytes, 64)?;
        kdf::verify_strict(&signing, &binding_message(dh.as_bytes()), &binding_bytes)
            .map_err(|_| CryptoError::InvalidIdentity)?;
        let binding = Signature::from_bytes(&binding_bytes);
        Ok(PublicIdentity {
            signing,
            dh,
            binding,
        })
    }

    /// The identity's fingerprint: BLAKE2b-256 keyed with `"hum/1 fingerprint"` over both
    /// public keys.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(
            kdf::blake2b_256(
                L_FINGERPRINT,
                &[self.signing.as_bytes(), self.dh.as_bytes()],
            )
            .expect("BLAKE2b with a short key and 32-byte output cannot fail"),
        )
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.signing
    }

    pub(crate) fn dh_public(&self) -> &PublicKey {
        &self.dh
    }

    /// Thirty decimal digits derived from this identity alone (half a safety number).
    fn safety_half(&self) -> String {
        let digest =
            kdf::blake2b_512(&[L_SAFETY_NUMBER, self.signing.as_bytes(), self.dh.as_bytes()])
                .expect("unkeyed BLAKE2b-512 cannot fail");
        digest[..30]
            .chunks_exact(5)
            .map(|c| {
                let v = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                format!("{:05}", v % 100_000)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl std::fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicIdentity({})", self.fingerprint())
    }
}

/// A short, stable name for an identity: BLAKE2b-256 of its public keys.
///
/// `Display` shows the first 16 bytes as hex in groups of four characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Wraps fingerprint bytes kept from [`Fingerprint::as_bytes`].
    pub const fn from_bytes(bytes: [u8; 32]) -> Fingerprint {
        Fingerprint(bytes)
    }

    /// The full 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = kdf::hex(&self.0[..16]);
        let groups: Vec<&str> = hex
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect();
        f.write_str(&groups.join(":"))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The safety number two contacts read to each other: 60 digits in twelve groups of five,
/// the same whichever side computes it (the two 30-digit halves are sorted).
pub fn safety_number(a: &PublicIdentity, b: &PublicIdentity) -> String {
    let (x, y) = (a.safety_half(), b.safety_half());
    if x <= y {
        format!("{x} {y}")
    } else {
        format!("{y} {x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binding_is_checked() -> Result<(), CryptoError> {
        let id = Identity::generate();
        let back = Identity::from_bytes(&id.to_bytes())?;
        assert_eq!(back.public(), id.public());
        let public = PublicIdentity::from_bytes(&id.public().to_bytes())?;
        assert_eq!(public, id.public());

        let other = Identity::generate();
        let mut spliced = id.public().to_bytes();
        spliced[32..64].copy_from_slice(&other.public().to_bytes()[32..64]);
        assert_eq!(
            PublicIdentity::from_bytes(&spliced),
            Err(CryptoError::InvalidIdentity)
        );
        Ok(())
    }

    /// A validly signed identity whose X25519 key has small order (Wycheproof's list) is
    /// refused: DH1 with it would be zero, whatever the other side's secret.
    #[test]
    fn small_order_identity_keys_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        for low in super::super::testdata::low_order_points()? {
            let mut bytes = [0u8; PublicIdentity::LEN];
            bytes[..32].copy_from_slice(signing.verifying_key().as_bytes());
            bytes[32..64].copy_from_slice(&low);
            bytes[64..].copy_from_slice(&signing.sign(&binding_message(&low)).to_bytes());
            assert_eq!(
                PublicIdentity::from_bytes(&bytes),
                Err(CryptoError::InvalidIdentity)
            );
        }
        Ok(())
    }

    #[test]
    fn safety_number_is_symmetric() {
        let a = Identity::generate().public();
        let b = Identity::generate().public();
        let n = safety_number(&a, &b);
        assert_eq!(n, safety_number(&b, &a));
        assert_eq!(n.split(' ').count(), 12);
        assert_eq!(n.chars().filter(char::is_ascii_digit).count(), 60);
    }

    #[test]
    fn debug_shows_no_secret() {
        let id = Identity::generate();
        let dbg = format!("{id:?}");
        let secret = id.to_bytes();
        assert!(!dbg.contains(&kdf::hex(&secret[1..9])));
        assert!(!dbg.contains(&format!("{:?}", &secret[1..5])));
    }
}

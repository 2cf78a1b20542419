//! The notice an inviter leaves once its one-time invite has been used, so that anyone
//! else who answers the same code learns it (docs/PROTOCOL.md, section 3.4.1).
//!
//! The notice lives in a mailbox derived from the invite's prekey and answer mailbox, so
//! everyone holding the code (and nobody else: the relay never sees the prekey) can read
//! it. It is sealed under a key derived the same way, names the answer that used the
//! invite by its ephemeral key, and is signed by the inviter's identity key: another
//! holder of the code cannot forge one.
//!
//! Notice layout, exactly [`ENVELOPE_LEN`] bytes:
//!
//! ```text
//! nonce (24) || XChaCha20-Poly1305(K_used, pad(EK_A (32) || signature (64)))
//! ```

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::identity::Identity;
use super::invite::{Invite, InviteSecret};
use super::kdf::{self, NONCE_LEN, TAG_LEN};
use super::mailbox::{Capability, MailboxId};
use super::{CryptoError, ENVELOPE_LEN, Envelope};

const L_USED_CAPABILITY: &[u8] = b"hum/1 invite used capability";
const L_USED_KEY: &[u8] = b"hum/1 invite used key";
const L_USED_SIG: &[u8] = b"hum/1 invite used";
/// The answer's ephemeral key and the signature.
const BODY_LEN: usize = 32 + 64;
/// What the padded plaintext holds.
const PLAIN_LEN: usize = ENVELOPE_LEN - NONCE_LEN - TAG_LEN;

fn used_capability(prekey: &[u8; 32], mailbox: &MailboxId) -> Result<Capability, CryptoError> {
    kdf::blake2b_256(L_USED_CAPABILITY, &[prekey, mailbox.as_bytes()]).map(Capability::from_bytes)
}

fn used_key(prekey: &[u8; 32], mailbox: &MailboxId) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    kdf::blake2b_256(L_USED_KEY, &[prekey, mailbox.as_bytes()]).map(Zeroizing::new)
}

/// The ephemeral key an answer (a handshake envelope) starts with: it names the answer.
fn answer_key(answer: &Envelope) -> Result<[u8; 32], CryptoError> {
    kdf::array_at::<32>(answer.as_bytes(), 0)
}

fn signed(mailbox: &MailboxId, ek: &[u8; 32]) -> Vec<u8> {
    [L_USED_SIG, mailbox.as_bytes(), ek].concat()
}

impl Invite {
    /// The capability of the mailbox where the inviter says which answer used this invite.
    ///
    /// # Errors
    /// Only if BLAKE2b fails, which it cannot with these lengths.
    pub fn used_capability(&self) -> Result<Capability, CryptoError> {
        used_capability(self.prekey(), &self.mailbox())
    }

    /// Reads a used notice found in the [`Invite::used_capability`] mailbox: `true` when
    /// it names `answer` (this client's handshake envelope) as the answer that used the
    /// invite, `false` when another answer used it first.
    ///
    /// # Errors
    /// [`CryptoError::DecryptFailed`] when the envelope is not a notice for this invite
    /// signed by its inviter.
    pub fn used_by(&self, notice: &Envelope, answer: &Envelope) -> Result<bool, CryptoError> {
        let mailbox = self.mailbox();
        let key = used_key(self.prekey(), &mailbox)?;
        let bytes = notice.as_bytes();
        let nonce = kdf::array_at::<NONCE_LEN>(bytes, 0)?;
        let plain = kdf::aead_open(&key, &nonce, &bytes[NONCE_LEN..], L_USED_SIG)?;
        let body = kdf::unpad(&plain)?;
        if body.len() != BODY_LEN {
            return Err(CryptoError::DecryptFailed);
        }
        let ek = kdf::array_at::<32>(&body, 0)?;
        let signature = kdf::array_at::<64>(&body, 32)?;
        kdf::verify_strict(
            self.inviter().verifying_key(),
            &signed(&mailbox, &ek),
            &signature,
        )
        .map_err(|_| CryptoError::DecryptFailed)?;
        Ok(ek == answer_key(answer)?)
    }
}

impl InviteSecret {
    /// The capability of the mailbox where the used notice goes (the same as
    /// [`Invite::used_capability`] of the invite this secret belongs to).
    ///
    /// # Errors
    /// Only if BLAKE2b fails, which it cannot with these lengths.
    pub fn used_capability(&self) -> Result<Capability, CryptoError> {
        used_capability(&self.prekey_public(), &self.capability().mailbox_id())
    }

    fn prekey_public(&self) -> [u8; 32] {
        PublicKey::from(&StaticSecret::from(*self.prekey_secret())).to_bytes()
    }
}

impl Identity {
    /// The notice that `answer` used the invite `secret` belongs to, to deposit (fan-out)
    /// into the [`InviteSecret::used_capability`] mailbox.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if `answer` is too short to be an answer (it cannot be:
    /// envelopes have a fixed length).
    pub fn invite_used_notice(
        &self,
        secret: &InviteSecret,
        answer: &Envelope,
    ) -> Result<Envelope, CryptoError> {
        let prekey = secret.prekey_public();
        let mailbox = secret.capability().mailbox_id();
        let key = used_key(&prekey, &mailbox)?;
        let ek = answer_key(answer)?;
        let signature = self.sign(&signed(&mailbox, &ek)).to_bytes();
        let mut plain = Zeroizing::new(vec![0u8; PLAIN_LEN]);
        kdf::pad_into(&[&ek[..], &signature[..]].concat(), &mut plain)?;
        let nonce = kdf::random::<NONCE_LEN>();
        let mut out = Box::new([0u8; ENVELOPE_LEN]);
        out[..NONCE_LEN].copy_from_slice(&nonce);
        kdf::aead_seal(&key, &nonce, &plain, L_USED_SIG, &mut out[NONCE_LEN..])?;
        Ok(Envelope::from_array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Session;

    #[test]
    fn a_notice_tells_the_answer_that_used_the_invite_from_the_others()
    -> Result<(), Box<dyn std::error::Error>> {
        let now = 1_800_000_000;
        let inviter = Identity::generate();
        let (invite, secret) = inviter.create_invite("hum://r:1#ab", 3600, now)?;
        let first = Session::initiate(&Identity::generate(), &invite, b"first")?.1;
        let second = Session::initiate(&Identity::generate(), &invite, b"second")?.1;
        assert_eq!(
            invite.used_capability()?.mailbox_id(),
            secret.used_capability()?.mailbox_id()
        );
        assert_ne!(
            invite.used_capability()?.mailbox_id(),
            invite.mailbox(),
            "the notice has a mailbox of its own"
        );
        let notice = inviter.invite_used_notice(&secret, &first)?;
        assert_eq!(notice.as_bytes().len(), ENVELOPE_LEN);
        assert!(invite.used_by(&notice, &first)?);
        assert!(!invite.used_by(&notice, &second)?);
        // Another invite's notice, or one signed by someone else, does not read.
        let (other, other_secret) = inviter.create_invite("hum://r:1#ab", 3600, now)?;
        let theirs = inviter.invite_used_notice(&other_secret, &first)?;
        assert!(invite.used_by(&theirs, &first).is_err());
        assert!(other.used_by(&theirs, &first)?);
        let forged = Identity::generate().invite_used_notice(&secret, &second)?;
        assert_eq!(
            invite.used_by(&forged, &second),
            Err(CryptoError::DecryptFailed)
        );
        let mut damaged = notice.as_bytes().to_vec();
        damaged[100] ^= 1;
        assert!(
            invite
                .used_by(&Envelope::from_bytes(&damaged)?, &first)
                .is_err()
        );
        Ok(())
    }
}

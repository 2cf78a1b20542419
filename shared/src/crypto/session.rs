//! A 1:1 session: the handshake from an invite, then the Double Ratchet
//! (docs/PROTOCOL.md, sections 3.4 and 3.5).

use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::identity::{Identity, PublicIdentity, safety_number};
use super::invite::{Invite, InviteSecret};
use super::kdf;
use super::mailbox::{Capability, MailboxId};
use super::ratchet::{OVERHEAD, Ratchet};
use super::x3dh::{self, RATCHET_AT, SEALED_ID_AT};
use super::{CryptoError, ENVELOPE_LEN, Envelope};

/// Version byte of [`Session::to_bytes`].
const SESSION_VERSION: u8 = 1;

#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct SessionState {
    ratchet: Ratchet,
    peer: Vec<u8>,
    ad: [u8; 32],
    send_mailbox: [u8; 32],
    recv_mailbox: [u8; 32],
}

/// One side of an end-to-end encrypted 1:1 conversation.
///
/// Made by [`Session::initiate`] (the side that pasted an invite) or [`Session::respond`]
/// (the inviter). State is zeroized on drop; `Debug` shows only the peer's fingerprint.
#[derive(Clone)]
pub struct Session {
    state: SessionState,
    peer: PublicIdentity,
}

impl Session {
    /// Largest plaintext one ratchet envelope carries (774 bytes).
    pub const PLAINTEXT_CAPACITY: usize = ENVELOPE_LEN - OVERHEAD - 2;
    /// Largest plaintext the handshake envelope carries (598 bytes).
    pub const INITIAL_PLAINTEXT_CAPACITY: usize = ENVELOPE_LEN - RATCHET_AT - OVERHEAD - 2;

    /// Accepts `invite`: runs the acceptor's half of the handshake and seals
    /// `first_plaintext` (at most [`Session::INITIAL_PLAINTEXT_CAPACITY`] bytes) into the
    /// envelope to deposit in [`Invite::mailbox`]. The envelope hides who sent it.
    ///
    /// # Errors
    /// [`CryptoError::PlaintextTooLong`] if `first_plaintext` does not fit.
    pub fn initiate(
        me: &Identity,
        invite: &Invite,
        first_plaintext: &[u8],
    ) -> Result<(Session, Envelope), CryptoError> {
        let ek = StaticSecret::random_from_rng(&mut kdf::rng());
        let ek_public = PublicKey::from(&ek).to_bytes();
        let [dh1, dh2, dh3] = x3dh::acceptor_dhs(me, &ek, invite.inviter(), invite.prekey())?;
        let agreement = x3dh::agree(&dh1, &dh2, &dh3, &me.public(), invite.inviter())?;
        let mut ratchet = Ratchet::init_initiator(&agreement.keys, invite.prekey())?;

        let mut out = Box::new([0u8; ENVELOPE_LEN]);
        out[..SEALED_ID_AT].copy_from_slice(&ek_public);
        let (seal_key, seal_nonce) = x3dh::seal_key(&dh3, &ek_public, invite.prekey())?;
        let seal_ad = seal_ad(&ek_public, invite);
        kdf::aead_seal(
            &seal_key,
            &seal_nonce,
            &me.public().to_bytes(),
            &seal_ad,
            &mut out[SEALED_ID_AT..RATCHET_AT],
        )?;
        ratchet.seal_into(first_plaintext, &agreement.ad, &mut out[RATCHET_AT..])?;

        let state = SessionState {
            ratchet,
            peer: invite.inviter().to_bytes().to_vec(),
            ad: agreement.ad,
            send_mailbox: *agreement.mailbox_a2b,
            recv_mailbox: *agreement.mailbox_b2a,
        };
        Ok((
            Session {
                state,
                peer: invite.inviter().clone(),
            },
            Envelope::from_array(out),
        ))
    }

    /// The inviter's half: opens a handshake envelope fetched from the invite's one-time
    /// mailbox, returning the session, who accepted, and their first message.
    ///
    /// The caller must then delete `secret` (it is one-time) and should compare the safety
    /// number with the acceptor before trusting their identity.
    ///
    /// # Errors
    /// [`CryptoError::DecryptFailed`] if the envelope is not a valid answer to this invite.
    pub fn respond(
        me: &Identity,
        secret: &InviteSecret,
        envelope: &Envelope,
    ) -> Result<(Session, PublicIdentity, Vec<u8>), CryptoError> {
        let bytes = envelope.as_bytes();
        let fail = |_| CryptoError::DecryptFailed;
        let ek_a = kdf::array_at::<32>(bytes, 0).map_err(fail)?;
        let spk_secret = StaticSecret::from(*secret.prekey_secret());
        let spk_public = PublicKey::from(&spk_secret).to_bytes();
        // A small-order ephemeral would make the sealed-sender key public: refused.
        let dh3 = kdf::x25519(&spk_secret, &PublicKey::from(ek_a)).map_err(fail)?;
        let (seal_key, seal_nonce) = x3dh::seal_key(&dh3, &ek_a, &spk_public)?;
        let seal_ad = [
            &ek_a[..],
            &spk_public,
            secret.capability().mailbox_id().as_bytes(),
        ]
        .concat();
        let identity = kdf::aead_open(
            &seal_key,
            &seal_nonce,
            &bytes[SEALED_ID_AT..RATCHET_AT],
            &seal_ad,
        )?;
        let acceptor = PublicIdentity::from_bytes(&identity).map_err(fail)?;
        let [dh1, dh2, dh3] = x3dh::inviter_dhs(me, &spk_secret, &acceptor, &ek_a).map_err(fail)?;
        let agreement = x3dh::agree(&dh1, &dh2, &dh3, &acceptor, &me.public())?;
        let mut ratchet = Ratchet::init_responder(&agreement.keys, secret.prekey_secret());
        let first = ratchet.open(&bytes[RATCHET_AT..], &agreement.ad)?;
        let state = SessionState {
            ratchet,
            peer: acceptor.to_bytes().to_vec(),
            ad: agreement.ad,
            send_mailbox: *agreement.mailbox_b2a,
            recv_mailbox: *agreement.mailbox_a2b,
        };
        Ok((
            Session {
                state,
                peer: acceptor.clone(),
            },
            acceptor,
            first,
        ))
    }

    /// Seals `plaintext` (at most [`Session::PLAINTEXT_CAPACITY`] bytes) into one envelope,
    /// advancing the sending chain.
    ///
    /// # Errors
    /// [`CryptoError::PlaintextTooLong`], or [`CryptoError::CounterExhausted`] after 2^32
    /// messages in one chain.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Envelope, CryptoError> {
        let mut out = Box::new([0u8; ENVELOPE_LEN]);
        let ad = self.state.ad;
        self.state.ratchet.seal_into(plaintext, &ad, &mut out[..])?;
        Ok(Envelope::from_array(out))
    }

    /// Seals `plaintext` under a ratchet header of the caller's choosing (`dh` = `None`:
    /// our current ratchet key), without advancing anything. For fuzz targets only: the
    /// `fuzzing` feature, which no build of hum enables.
    ///
    /// # Errors
    /// As [`Session::seal`].
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn fuzz_seal(
        &self,
        dh: Option<[u8; 32]>,
        pn: u32,
        n: u32,
        plaintext: &[u8],
    ) -> Result<Envelope, CryptoError> {
        let mut out = Box::new([0u8; ENVELOPE_LEN]);
        self.state
            .ratchet
            .seal_with_header(dh, pn, n, plaintext, &self.state.ad, &mut out[..])?;
        Ok(Envelope::from_array(out))
    }

    /// The sending chain's counters (N, PN), for fuzz targets only (the `fuzzing`
    /// feature).
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn fuzz_counters(&self) -> (u32, u32) {
        self.state.ratchet.counters()
    }

    /// Opens an envelope from the peer. Out-of-order messages open (within
    /// [`MAX_SKIP`](super::MAX_SKIP)); on any error the session is left exactly as it was.
    ///
    /// # Errors
    /// [`CryptoError::DecryptFailed`] for a tampered, replayed, foreign or too-late envelope.
    pub fn open(&mut self, envelope: &Envelope) -> Result<Vec<u8>, CryptoError> {
        let ad = self.state.ad;
        self.state.ratchet.open(&envelope.as_bytes()[..], &ad)
    }

    /// The peer's public identity.
    pub fn peer(&self) -> &PublicIdentity {
        &self.peer
    }

    /// The safety number of this conversation (same on both sides).
    pub fn safety_number(&self, me: &PublicIdentity) -> String {
        safety_number(me, &self.peer)
    }

    /// The capability to fetch what the peer sends in `epoch` (see
    /// [`epoch_at`](super::epoch_at)).
    pub fn receive_capability(&self, epoch: u64) -> Capability {
        Capability::derive(&self.state.recv_mailbox, epoch)
            .expect("BLAKE2b with a short key and 32-byte output cannot fail")
    }

    /// The mailbox to deposit into in `epoch`: equals the peer's
    /// `receive_capability(epoch).mailbox_id()`.
    pub fn send_mailbox(&self, epoch: u64) -> MailboxId {
        Capability::derive(&self.state.send_mailbox, epoch)
            .expect("BLAKE2b with a short key and 32-byte output cannot fail")
            .mailbox_id()
    }

    /// The tag key of what this side sends (hum/2, docs/PROTOCOL.md §H3.4): the X3DH
    /// mailbox secret of this direction. Equals the peer's [`Session::receive_tag_key`].
    pub fn send_tag_key(&self) -> crate::route::TagKey {
        crate::route::TagKey::from_bytes(self.state.send_mailbox)
    }

    /// The tag key of what the peer sends: the X3DH mailbox secret of that direction.
    pub fn receive_tag_key(&self) -> crate::route::TagKey {
        crate::route::TagKey::from_bytes(self.state.recv_mailbox)
    }

    /// Serializes the whole state for the (sealed) store.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] if serialization fails (it cannot for this state, but an
    /// empty state must never be written in its place).
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        serialize_versioned(SESSION_VERSION, &self.state)
    }

    /// Parses what [`Session::to_bytes`] produced.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if the bytes are not a session of this version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Session, CryptoError> {
        let (&version, body) = bytes.split_first().ok_or(CryptoError::Malformed)?;
        if version != SESSION_VERSION {
            return Err(CryptoError::Malformed);
        }
        let state: SessionState = postcard::from_bytes(body).map_err(|_| CryptoError::Malformed)?;
        let peer = PublicIdentity::from_bytes(&state.peer).map_err(|_| CryptoError::Malformed)?;
        Ok(Session { state, peer })
    }
}

/// `version || postcard(value)`, every buffer on the way wiped when dropped.
pub(crate) fn serialize_versioned<T: Serialize>(
    version: u8,
    value: &T,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let body = Zeroizing::new(postcard::to_allocvec(value).map_err(|_| CryptoError::Internal)?);
    let mut out = Zeroizing::new(Vec::with_capacity(1 + body.len()));
    out.push(version);
    out.extend_from_slice(&body);
    Ok(out)
}

fn seal_ad(ek_a: &[u8; 32], invite: &Invite) -> Vec<u8> {
    [&ek_a[..], invite.prekey(), invite.mailbox().as_bytes()].concat()
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session {{ peer: {} }}", self.peer.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mallory answers Alice's invite with a small-order "ephemeral": every DH with it is
    /// zero, so Mallory needs no ephemeral secret and the sealed-sender key is public. The
    /// inviter refuses such an answer.
    #[test]
    fn a_small_order_ephemeral_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let alice = Identity::generate();
        let mallory = Identity::generate();
        let (invite, secret) = alice.create_invite("hum://h:1#f", 600, 0)?;
        let spk = PublicKey::from(*invite.prekey());
        for low in super::super::testdata::low_order_points()? {
            let zero = Zeroizing::new([0u8; 32]);
            let dh1 = mallory.dh(&spk)?;
            let agreement = x3dh::agree(&dh1, &zero, &zero, &mallory.public(), &alice.public())?;
            let mut ratchet = Ratchet::init_initiator(&agreement.keys, invite.prekey())?;
            let mut out = Box::new([0u8; ENVELOPE_LEN]);
            out[..SEALED_ID_AT].copy_from_slice(&low);
            let (key, nonce) = x3dh::seal_key(&zero, &low, invite.prekey())?;
            kdf::aead_seal(
                &key,
                &nonce,
                &mallory.public().to_bytes(),
                &seal_ad(&low, &invite),
                &mut out[SEALED_ID_AT..RATCHET_AT],
            )?;
            ratchet.seal_into(b"hi", &agreement.ad, &mut out[RATCHET_AT..])?;
            let answer = Envelope::from_array(out);
            assert_eq!(
                Session::respond(&alice, &secret, &answer).map(|_| ()),
                Err(CryptoError::DecryptFailed)
            );
        }
        Ok(())
    }
}

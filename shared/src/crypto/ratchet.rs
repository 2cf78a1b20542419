//! The Double Ratchet with header encryption (Signal's specification, revision 1,
//! section 4), over X25519, HKDF-SHA512, HMAC-SHA512 and XChaCha20-Poly1305.
//!
//! A ratchet message is laid out as (docs/PROTOCOL.md, section 3.5):
//!
//! ```text
//! header nonce (24) || E(HK, DHs (32) || PN (u32 BE) || N (u32 BE)) (40 + 16)
//! || body nonce (24) || E(MK, padded plaintext) (rest)
//! ```
//!
//! Both nonces are random, so a state restored from a backup that seals again reuses at
//! worst a message key, never a key with its nonce.

use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CryptoError;
use super::kdf::{self, L_MESSAGE_KEYS, L_RATCHET_ROOT, NONCE_LEN, TAG_LEN};

/// Most message keys skipped in one receiving chain before a message is refused.
pub const MAX_SKIP: u32 = 1000;
/// Most skipped message keys kept in all; the oldest are dropped beyond this.
pub const MAX_SKIPPED_TOTAL: usize = 2000;

/// Plaintext header length: DH public key, PN, N.
const HEADER_LEN: usize = 32 + 4 + 4;
/// Encrypted header on the wire: nonce, header, tag.
pub(crate) const ENC_HEADER_LEN: usize = NONCE_LEN + HEADER_LEN + TAG_LEN;
/// Offset of the body ciphertext: after the encrypted header and the body nonce. Bytes
/// before it are the body's associated data (with the session's).
pub(crate) const BODY_AT: usize = ENC_HEADER_LEN + NONCE_LEN;
/// Bytes of a ratchet message that are not padded plaintext.
pub(crate) const OVERHEAD: usize = BODY_AT + TAG_LEN;

/// A message key skipped over, kept until its message arrives.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct SkippedKey {
    header_key: [u8; 32],
    n: u32,
    message_key: [u8; 32],
}

/// The state of one side of a Double Ratchet session (the spec's `state` object).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Ratchet {
    dhs_secret: [u8; 32],
    /// Public half of `dhs_secret`, cached (a base-point multiplication per message otherwise).
    dhs_public: [u8; 32],
    dhr: Option<[u8; 32]>,
    rk: [u8; 32],
    cks: Option<[u8; 32]>,
    ckr: Option<[u8; 32]>,
    ns: u32,
    nr: u32,
    pn: u32,
    hks: Option<[u8; 32]>,
    hkr: Option<[u8; 32]>,
    nhks: [u8; 32],
    nhkr: [u8; 32],
    skipped: Vec<SkippedKey>,
}

/// Keys agreed by the handshake, handed to the ratchet.
pub(crate) struct SharedKeys {
    pub(crate) root: Zeroizing<[u8; 32]>,
    pub(crate) hka: Zeroizing<[u8; 32]>,
    pub(crate) nhkb: Zeroizing<[u8; 32]>,
}

struct Header {
    dh: [u8; 32],
    pn: u32,
    n: u32,
}

impl Header {
    fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..32].copy_from_slice(&self.dh);
        out[32..36].copy_from_slice(&self.pn.to_be_bytes());
        out[36..].copy_from_slice(&self.n.to_be_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Header, CryptoError> {
        let bad = |_| CryptoError::DecryptFailed;
        Ok(Header {
            dh: kdf::array_at::<32>(bytes, 0).map_err(bad)?,
            pn: u32::from_be_bytes(kdf::array_at::<4>(bytes, 32).map_err(bad)?),
            n: u32::from_be_bytes(kdf::array_at::<4>(bytes, 36).map_err(bad)?),
        })
    }
}

/// A 32-byte key that is wiped when dropped.
pub(crate) type Key32 = Zeroizing<[u8; 32]>;

/// `KDF_RK_HE`: HKDF-SHA512 with the root key as salt and the DH output as input,
/// 96 bytes split into root key, chain key, next header key.
fn kdf_rk(rk: &[u8; 32], dh_out: &[u8; 32]) -> Result<(Key32, Key32, Key32), CryptoError> {
    let mut okm = Zeroizing::new([0u8; 96]);
    kdf::hkdf(rk, dh_out, L_RATCHET_ROOT, &mut okm[..])?;
    let part = |at: usize| kdf::array_at::<32>(&okm[..], at).map(Zeroizing::new);
    Ok((part(0)?, part(32)?, part(64)?))
}

/// `KDF_CK`: HMAC-SHA512 of the chain key over 0x01 (message key) and 0x02 (next chain
/// key), each truncated to 32 bytes. Returns (next chain key, message key).
pub(crate) fn kdf_ck(ck: &[u8; 32]) -> Result<(Key32, Key32), CryptoError> {
    let mk = kdf::hmac_32(ck, &[0x01])?;
    let next = kdf::hmac_32(ck, &[0x02])?;
    Ok((next, mk))
}

/// Expands a message key into an XChaCha20-Poly1305 key (HKDF-SHA512, zero salt). The
/// nonce that goes with it is random and travels in the message.
pub(crate) fn message_key(mk: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let mut key = Zeroizing::new([0u8; 32]);
    kdf::hkdf(&[0u8; 64], mk, L_MESSAGE_KEYS, &mut key[..])?;
    Ok(key)
}

/// Seals `padded` under the message key `mk` into `body` (`padded.len() + TAG_LEN`
/// bytes). `head` is everything before the body and ends with the body's nonce, which the
/// caller drew at random; the associated data is `ad || head`.
pub(crate) fn seal_body(
    mk: &[u8; 32],
    ad: &[u8],
    head: &[u8],
    padded: &[u8],
    body: &mut [u8],
) -> Result<(), CryptoError> {
    let nonce_at = head
        .len()
        .checked_sub(NONCE_LEN)
        .ok_or(CryptoError::Internal)?;
    let nonce = kdf::array_at::<NONCE_LEN>(head, nonce_at)?;
    let key = message_key(mk)?;
    let full_ad = Zeroizing::new([ad, head].concat());
    kdf::aead_seal(&key, &nonce, padded, &full_ad, body)
}

/// `plaintext` padded to fill a ratchet message of `out.len()` bytes.
fn padded_for(out: &[u8], plaintext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let len = out
        .len()
        .checked_sub(OVERHEAD)
        .ok_or(CryptoError::Internal)?;
    let mut padded = Zeroizing::new(vec![0u8; len]);
    kdf::pad_into(plaintext, &mut padded)?;
    Ok(padded)
}

/// Writes a whole ratchet message into `out`: a random header nonce, the header sealed
/// under `hk`, a random body nonce, and `padded` sealed under the message key `mk`.
fn write_message(
    hk: &[u8; 32],
    header: &Header,
    mk: &[u8; 32],
    ad: &[u8],
    padded: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let (head, body) = out
        .split_at_mut_checked(BODY_AT)
        .ok_or(CryptoError::Internal)?;
    let nonce = kdf::random::<NONCE_LEN>();
    head[..NONCE_LEN].copy_from_slice(&nonce);
    kdf::aead_seal(
        hk,
        &nonce,
        &header.to_bytes(),
        &[],
        &mut head[NONCE_LEN..ENC_HEADER_LEN],
    )?;
    head[ENC_HEADER_LEN..].copy_from_slice(&kdf::random::<NONCE_LEN>());
    seal_body(mk, ad, head, padded, body)
}

/// Opens a body sealed by [`seal_body`]: `head` ends with the body nonce.
pub(crate) fn open_body(
    mk: &[u8; 32],
    ad: &[u8],
    head: &[u8],
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let nonce_at = head
        .len()
        .checked_sub(NONCE_LEN)
        .ok_or(CryptoError::DecryptFailed)?;
    let nonce =
        kdf::array_at::<NONCE_LEN>(head, nonce_at).map_err(|_| CryptoError::DecryptFailed)?;
    let key = message_key(mk)?;
    let full_ad = [ad, head].concat();
    kdf::aead_open(&key, &nonce, body, &full_ad)
}

/// Opens a body of format revision 1 (docs/PROTOCOL.md, section 3.10), which had no body
/// nonce: the body followed `head` (everything before it, the associated data with `ad`),
/// and its nonce was the 24 bytes after the key in the message key's expansion. The key
/// is the same as [`message_key`]'s (the first 32 bytes of one HKDF-SHA512 block).
fn open_body_revision_1(
    mk: &[u8; 32],
    ad: &[u8],
    head: &[u8],
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut okm = Zeroizing::new([0u8; 32 + NONCE_LEN]);
    kdf::hkdf(&[0u8; 64], mk, L_MESSAGE_KEYS, &mut okm[..])?;
    let key = Zeroizing::new(kdf::array_at::<32>(&okm[..], 0)?);
    let nonce = kdf::array_at::<NONCE_LEN>(&okm[..], 32)?;
    kdf::aead_open(&key, &nonce, body, &[ad, head].concat())
}

/// Opens the body of `message` under the message key `mk`, as revision 2 seals it (the
/// body at `body_at`, after its nonce) or else as revision 1 did (the body right after
/// the encrypted header, `NONCE_LEN` bytes earlier), so that envelopes sealed before an
/// upgrade and still in an outbox open after it. Both layouts are authenticated; a
/// message opens as at most one of them. Returns the opened body and the bytes before it,
/// which its associated data (and a group message's signature) cover.
pub(crate) fn open_body_of_either_revision<'m>(
    mk: &[u8; 32],
    ad: &[u8],
    message: &'m [u8],
    body_at: usize,
) -> Result<(Zeroizing<Vec<u8>>, &'m [u8]), CryptoError> {
    let (head, body) = message
        .split_at_checked(body_at)
        .ok_or(CryptoError::DecryptFailed)?;
    if let Ok(plain) = open_body(mk, ad, head, body) {
        return Ok((plain, head));
    }
    let (head, body) = body_at
        .checked_sub(NONCE_LEN)
        .and_then(|at| message.split_at_checked(at))
        .ok_or(CryptoError::DecryptFailed)?;
    Ok((open_body_revision_1(mk, ad, head, body)?, head))
}

/// X25519 of a stored ratchet secret with a peer's ratchet key, refusing a small-order key.
fn dh(secret: &[u8; 32], public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let secret = StaticSecret::from(*secret);
    kdf::x25519(&secret, &PublicKey::from(*public))
}

fn public_of(secret: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

fn header_decrypt(hk: &[u8; 32], enc_header: &[u8]) -> Option<Header> {
    let nonce = kdf::array_at::<NONCE_LEN>(enc_header, 0).ok()?;
    let plain = kdf::aead_open(hk, &nonce, enc_header.get(NONCE_LEN..)?, &[]).ok()?;
    Header::from_bytes(&plain).ok()
}

impl Ratchet {
    /// `RatchetInitAlice`: the side that sends first, knowing the peer's ratchet public key.
    pub(crate) fn init_initiator(
        keys: &SharedKeys,
        their_ratchet: &[u8; 32],
    ) -> Result<Ratchet, CryptoError> {
        let dhs_secret = Zeroizing::new(kdf::random::<32>());
        let (rk, cks, nhks) = kdf_rk(&keys.root, &*dh(&dhs_secret, their_ratchet)?)?;
        Ok(Ratchet {
            dhs_public: public_of(&dhs_secret),
            dhs_secret: *dhs_secret,
            dhr: Some(*their_ratchet),
            rk: *rk,
            cks: Some(*cks),
            ckr: None,
            ns: 0,
            nr: 0,
            pn: 0,
            hks: Some(*keys.hka),
            hkr: None,
            nhks: *nhks,
            nhkr: *keys.nhkb,
            skipped: Vec::new(),
        })
    }

    /// `RatchetInitBob`: the side whose ratchet key the initiator used.
    pub(crate) fn init_responder(keys: &SharedKeys, our_ratchet_secret: &[u8; 32]) -> Ratchet {
        Ratchet {
            dhs_secret: *our_ratchet_secret,
            dhs_public: public_of(our_ratchet_secret),
            dhr: None,
            rk: *keys.root,
            cks: None,
            ckr: None,
            ns: 0,
            nr: 0,
            pn: 0,
            hks: None,
            hkr: None,
            nhks: *keys.nhkb,
            nhkr: *keys.hka,
            skipped: Vec::new(),
        }
    }

    /// Encrypts `plaintext` padded to `out.len() - OVERHEAD` bytes, writing the whole
    /// message into `out`. `ad` is the session's associated data.
    pub(crate) fn seal_into(
        &mut self,
        plaintext: &[u8],
        ad: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let padded = padded_for(out, plaintext)?;
        let (Some(cks), Some(hks)) = (self.cks, self.hks) else {
            // The responder cannot send before it has received; `Session` never lets it.
            return Err(CryptoError::Internal);
        };
        let next_ns = self
            .ns
            .checked_add(1)
            .ok_or(CryptoError::CounterExhausted)?;
        let (next_ck, mk) = kdf_ck(&cks)?;
        let header = Header {
            dh: self.dhs_public,
            pn: self.pn,
            n: self.ns,
        };
        write_message(&hks, &header, &mk, ad, &padded, out)?;
        self.cks = Some(*next_ck);
        self.ns = next_ns;
        Ok(())
    }

    /// Like [`Ratchet::seal_into`] with a header of the caller's choosing (DH key, PN, N),
    /// for fuzzing what lies behind the header's decryption. The body is sealed under the
    /// message key of N in the current sending chain when N is at most [`MAX_SKIP`] ahead
    /// (otherwise under the current one), so the receiver's skip, replay and ratchet logic
    /// all see it. Nothing is advanced.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn seal_with_header(
        &self,
        dh: Option<[u8; 32]>,
        pn: u32,
        n: u32,
        plaintext: &[u8],
        ad: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let padded = padded_for(out, plaintext)?;
        let (Some(mut ck), Some(hks)) = (self.cks, self.hks) else {
            return Err(CryptoError::Internal);
        };
        let steps = n
            .checked_sub(self.ns)
            .filter(|s| *s <= MAX_SKIP)
            .unwrap_or(0);
        for _ in 0..steps {
            ck = *kdf_ck(&ck)?.0;
        }
        let (_, mk) = kdf_ck(&ck)?;
        let header = Header {
            dh: dh.unwrap_or(self.dhs_public),
            pn,
            n,
        };
        write_message(&hks, &header, &mk, ad, &padded, out)
    }

    /// The sending chain's counters (N, PN), for fuzzing.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn counters(&self) -> (u32, u32) {
        (self.ns, self.pn)
    }

    /// Decrypts a message produced by [`Ratchet::seal_into`]. On error `self` is unchanged.
    ///
    /// # Errors
    /// [`CryptoError::DecryptFailed`] for anything that does not open (a small-order
    /// ratchet key included), [`CryptoError::CounterExhausted`] at the counter's limit.
    pub(crate) fn open(&mut self, message: &[u8], ad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut trial = self.clone();
        let plain = trial.open_inner(message, ad).map_err(|e| match e {
            CryptoError::CounterExhausted | CryptoError::Internal => e,
            _ => CryptoError::DecryptFailed,
        })?;
        *self = trial;
        Ok(plain)
    }

    fn open_inner(&mut self, message: &[u8], ad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let enc_header = message
            .get(..ENC_HEADER_LEN)
            .ok_or(CryptoError::DecryptFailed)?;

        // TrySkippedMessageKeysHE. Skipped keys share few header keys (one per chain): try
        // each distinct header key once, then look the message key up by (header key, N).
        let mut tried: Zeroizing<Vec<[u8; 32]>> = Zeroizing::new(Vec::new());
        for i in 0..self.skipped.len() {
            let hk = self.skipped[i].header_key;
            if tried.contains(&hk) {
                continue;
            }
            tried.push(hk);
            let Some(header) = header_decrypt(&hk, enc_header) else {
                continue;
            };
            let Some(at) = self
                .skipped
                .iter()
                .position(|k| k.header_key == hk && k.n == header.n)
            else {
                // Not a skipped message of this chain: the current chain (handled below)
                // or a replay (rejected below). Header keys differ between chains, so no
                // other key can match.
                break;
            };
            let (plain, _) =
                open_body_of_either_revision(&self.skipped[at].message_key, ad, message, BODY_AT)?;
            self.skipped.remove(at);
            kdf::wipe_spare(&mut self.skipped);
            return kdf::unpad(&plain);
        }
        drop(tried);

        // DecryptHeader
        let (header, dh_ratchet) =
            if let Some(h) = self.hkr.and_then(|hk| header_decrypt(&hk, enc_header)) {
                (h, false)
            } else if let Some(h) = header_decrypt(&self.nhkr, enc_header) {
                (h, true)
            } else {
                return Err(CryptoError::DecryptFailed);
            };

        if dh_ratchet {
            self.skip_message_keys(header.pn)?;
            self.dh_ratchet(&header)?;
        } else if header.n < self.nr {
            // Already received (its key is gone): a replay.
            return Err(CryptoError::DecryptFailed);
        }
        self.skip_message_keys(header.n)?;
        let ckr = self.ckr.ok_or(CryptoError::DecryptFailed)?;
        let (next_ck, mk) = kdf_ck(&ckr)?;
        self.ckr = Some(*next_ck);
        self.nr = self
            .nr
            .checked_add(1)
            .ok_or(CryptoError::CounterExhausted)?;
        let (plain, _) = open_body_of_either_revision(&mk, ad, message, BODY_AT)?;
        kdf::unpad(&plain)
    }

    /// `SkipMessageKeysHE`, bounded by [`MAX_SKIP`] per chain and [`MAX_SKIPPED_TOTAL`].
    fn skip_message_keys(&mut self, until: u32) -> Result<(), CryptoError> {
        if u64::from(self.nr) + u64::from(MAX_SKIP) < u64::from(until) {
            return Err(CryptoError::DecryptFailed);
        }
        let (Some(mut ck), Some(hkr)) = (self.ckr, self.hkr) else {
            return Ok(());
        };
        while self.nr < until {
            let (next, mk) = kdf_ck(&ck)?;
            self.skipped.push(SkippedKey {
                header_key: hkr,
                n: self.nr,
                message_key: *mk,
            });
            ck.copy_from_slice(&next[..]);
            self.nr += 1;
        }
        self.ckr = Some(ck);
        ck.zeroize();
        if self.skipped.len() > MAX_SKIPPED_TOTAL {
            let excess = self.skipped.len() - MAX_SKIPPED_TOTAL;
            self.skipped.drain(..excess);
            kdf::wipe_spare(&mut self.skipped);
        }
        Ok(())
    }

    /// `DHRatchetHE`.
    fn dh_ratchet(&mut self, header: &Header) -> Result<(), CryptoError> {
        self.pn = self.ns;
        self.ns = 0;
        self.nr = 0;
        self.hks = Some(self.nhks);
        self.hkr = Some(self.nhkr);
        self.dhr = Some(header.dh);
        // A small-order ratchet key from the peer is refused (the whole open fails and
        // the state is rolled back).
        let (rk, ckr, nhkr) = kdf_rk(&self.rk, &*dh(&self.dhs_secret, &header.dh)?)?;
        self.rk = *rk;
        self.ckr = Some(*ckr);
        self.nhkr = *nhkr;
        self.dhs_secret.zeroize();
        self.dhs_secret = kdf::random::<32>();
        self.dhs_public = public_of(&self.dhs_secret);
        let (rk, cks, nhks) = kdf_rk(&self.rk, &*dh(&self.dhs_secret, &header.dh)?)?;
        self.rk = *rk;
        self.cks = Some(*cks);
        self.nhks = *nhks;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SharedKeys {
        SharedKeys {
            root: Zeroizing::new([1; 32]),
            hka: Zeroizing::new([2; 32]),
            nhkb: Zeroizing::new([3; 32]),
        }
    }

    /// Seals the next message of `r`'s sending chain as format revision 1 did: no body
    /// nonce, the body's nonce expanded from the message key, the associated data ending
    /// with the encrypted header.
    fn seal_revision_1(
        r: &mut Ratchet,
        plaintext: &[u8],
        ad: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let mut padded = vec![0u8; out.len() - ENC_HEADER_LEN - TAG_LEN];
        kdf::pad_into(plaintext, &mut padded)?;
        let (Some(cks), Some(hks)) = (r.cks, r.hks) else {
            return Err(CryptoError::Internal);
        };
        let (next_ck, mk) = kdf_ck(&cks)?;
        let header = Header {
            dh: r.dhs_public,
            pn: r.pn,
            n: r.ns,
        };
        let (head, body) = out.split_at_mut(ENC_HEADER_LEN);
        let nonce = kdf::random::<NONCE_LEN>();
        head[..NONCE_LEN].copy_from_slice(&nonce);
        kdf::aead_seal(
            &hks,
            &nonce,
            &header.to_bytes(),
            &[],
            &mut head[NONCE_LEN..],
        )?;
        let mut okm = [0u8; 32 + NONCE_LEN];
        kdf::hkdf(&[0u8; 64], &mk[..], L_MESSAGE_KEYS, &mut okm)?;
        let key = kdf::array_at::<32>(&okm, 0)?;
        let body_nonce = kdf::array_at::<NONCE_LEN>(&okm, 32)?;
        kdf::aead_seal(&key, &body_nonce, &padded, &[ad, &head[..]].concat(), body)?;
        r.cks = Some(*next_ck);
        r.ns += 1;
        Ok(())
    }

    /// Envelopes sealed before body nonces (revision 1) and left in an outbox still open
    /// after the upgrade: in order, out of order (through a skipped key), and beside
    /// revision 2 messages of the same chain. Tampered, they do not, and leave the state
    /// as it was.
    #[test]
    fn revision_1_messages_open() -> Result<(), Box<dyn std::error::Error>> {
        let bob_secret = [5u8; 32];
        let bob_public = public_of(&bob_secret);
        let mut alice = Ratchet::init_initiator(&keys(), &bob_public)?;
        let mut bob = Ratchet::init_responder(&keys(), &bob_secret);
        let mut old = [vec![0u8; 896], vec![0u8; 896]];
        seal_revision_1(&mut alice, b"sealed before", b"ad", &mut old[0])?;
        seal_revision_1(&mut alice, b"sealed before, second", b"ad", &mut old[1])?;
        let mut new = vec![0u8; 896];
        alice.seal_into(b"sealed after", b"ad", &mut new)?;

        let mut flipped = old[0].clone();
        flipped[200] ^= 1;
        let kept = postcard::to_allocvec(&bob)?;
        assert_eq!(
            bob.open(&flipped, b"ad").map(|_| ()),
            Err(CryptoError::DecryptFailed)
        );
        assert_eq!(
            bob.open(&old[0], b"other ad").map(|_| ()),
            Err(CryptoError::DecryptFailed)
        );
        assert_eq!(postcard::to_allocvec(&bob)?, kept);

        assert_eq!(bob.open(&old[0], b"ad")?, b"sealed before");
        assert_eq!(bob.open(&new, b"ad")?, b"sealed after");
        // The second revision 1 message was skipped over: its key was kept.
        assert_eq!(bob.skipped.len(), 1);
        assert_eq!(bob.open(&old[1], b"ad")?, b"sealed before, second");
        assert_eq!(
            bob.open(&old[1], b"ad").map(|_| ()),
            Err(CryptoError::DecryptFailed)
        );
        Ok(())
    }

    /// A peer's ratchet key of small order (in a header under a valid header key) would
    /// make the DH ratchet step's output zero: the open fails with that reason, and the
    /// state is left as it was.
    #[test]
    fn a_small_order_ratchet_key_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let bob_secret = [5u8; 32];
        let bob = Ratchet::init_responder(&keys(), &bob_secret);
        for low in super::super::testdata::low_order_points()? {
            assert_eq!(
                Ratchet::init_initiator(&keys(), &low).map(|_| ()),
                Err(CryptoError::LowOrderPoint)
            );
            let mut message = vec![0u8; 256];
            let header = Header {
                dh: low,
                pn: 0,
                n: 0,
            };
            let nonce = [9u8; NONCE_LEN];
            message[..NONCE_LEN].copy_from_slice(&nonce);
            kdf::aead_seal(
                &bob.nhkr,
                &nonce,
                &header.to_bytes(),
                &[],
                &mut message[NONCE_LEN..ENC_HEADER_LEN],
            )?;
            let mut trial = bob.clone();
            assert_eq!(
                trial.open_inner(&message, b"ad").map(|_| ()),
                Err(CryptoError::LowOrderPoint)
            );
            let mut kept = bob.clone();
            assert_eq!(
                kept.open(&message, b"ad").map(|_| ()),
                Err(CryptoError::DecryptFailed)
            );
            assert_eq!(postcard::to_allocvec(&kept)?, postcard::to_allocvec(&bob)?);
        }
        Ok(())
    }
}

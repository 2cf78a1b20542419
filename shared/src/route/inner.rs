//! The inner layer of a forwarded deposit: sealed by the client to the destination relay,
//! opened there (destination role), answered back through the home relay.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::answer::{DepositOutcome, OUTCOME_LEN};
use super::kdf::{self, AEAD_TAG_LEN, L_INNER_AD, L_INNER_ANSWER_AD, L_INNER_KEYS};
use super::{DEPOSIT_LEN, Deposit, RelayId, RouteError, SlotKeyring, VerifiedSlotKey};

/// Length of an [`InnerBlob`]: the clear epoch, the ephemeral key and the sealed deposit.
pub const INNER_BLOB_LEN: usize = 4 + 32 + DEPOSIT_LEN + AEAD_TAG_LEN;
/// Length of an [`InnerAnswer`].
pub const INNER_ANSWER_LEN: usize = INNER_ANSWER_PLAIN_LEN + AEAD_TAG_LEN;
const INNER_ANSWER_PLAIN_LEN: usize = 8;

/// A deposit sealed to a destination relay (docs/PROTOCOL.md, hum/2 §H4.3):
/// `epoch (4) || eph2_pub (32) || AEAD(K_inner, 0, deposit, "hum/2 inner" || H id ||
/// epoch)`. The epoch is in clear so the destination knows which slot key to use; it is
/// the deposit's own epoch, and the blob is sealed to the key of that epoch.
#[derive(Clone, PartialEq, Eq)]
pub struct InnerBlob(Box<[u8; INNER_BLOB_LEN]>);

impl InnerBlob {
    /// Wraps bytes read from a slot or a forward batch.
    ///
    /// # Errors
    /// [`RouteError::Length`] unless `bytes` is [`INNER_BLOB_LEN`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<InnerBlob, RouteError> {
        Ok(InnerBlob(Box::new(*kdf::exact::<INNER_BLOB_LEN>(
            "inner blob",
            bytes,
        )?)))
    }

    /// Random bytes of the same length: a padding entry of a forward batch.
    pub fn random() -> InnerBlob {
        InnerBlob(kdf::random_box())
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; INNER_BLOB_LEN] {
        &self.0
    }

    /// The destination epoch in clear.
    pub fn epoch(&self) -> u32 {
        kdf::u32_at(&self.0[..], 0)
    }
}

impl std::fmt::Debug for InnerBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InnerBlob(epoch {})", self.epoch())
    }
}

/// The destination's answer to an inner blob, sealed so that only the client opens it:
/// `AEAD(K_inner_answer, 0, kind || epoch || zero (3), "hum/2 inner answer")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerAnswer([u8; INNER_ANSWER_LEN]);

impl InnerAnswer {
    /// Wraps bytes read from a forward-answers frame.
    ///
    /// # Errors
    /// [`RouteError::Length`] unless `bytes` is [`INNER_ANSWER_LEN`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<InnerAnswer, RouteError> {
        Ok(InnerAnswer(*kdf::exact::<INNER_ANSWER_LEN>(
            "inner answer",
            bytes,
        )?))
    }

    /// Random bytes: the answer of a padding position, or one the destination did not send
    /// in time (the client reads it as [`DepositOutcome::Unknown`]).
    pub fn random() -> InnerAnswer {
        InnerAnswer(kdf::random())
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; INNER_ANSWER_LEN] {
        &self.0
    }
}

/// The client's key to open the destination's [`InnerAnswer`].
pub(crate) struct InnerAnswerKey(Zeroizing<[u8; 32]>);

impl InnerAnswerKey {
    /// Opens the destination's answer.
    pub(crate) fn open(&self, answer: &[u8]) -> Result<DepositOutcome, RouteError> {
        let mut plain = [0u8; INNER_ANSWER_PLAIN_LEN];
        kdf::open_zero_nonce(&self.0, answer, L_INNER_ANSWER_AD, &mut plain)?;
        DepositOutcome::decode(&plain)
    }
}

/// An opened inner blob: the deposit, and the one-use key to answer it.
#[derive(Debug)]
pub struct OpenedInner {
    /// The deposit to store.
    pub deposit: Deposit,
    /// Seals the answer.
    pub replier: InnerReplier,
}

/// Seals the destination's answer to one inner blob (once: the key has a zero nonce).
pub struct InnerReplier(Zeroizing<[u8; 32]>);

impl InnerReplier {
    /// The sealed answer for the client.
    pub fn seal(self, outcome: DepositOutcome) -> InnerAnswer {
        let mut plain = [0u8; INNER_ANSWER_PLAIN_LEN];
        outcome.encode(&mut plain[..OUTCOME_LEN]);
        let mut out = [0u8; INNER_ANSWER_LEN];
        // 8 bytes under a 32-byte key cannot fail.
        if kdf::seal_zero_nonce(&self.0, &plain, L_INNER_ANSWER_AD, &mut out).is_err() {
            return InnerAnswer::random();
        }
        InnerAnswer(out)
    }
}

impl std::fmt::Debug for InnerReplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InnerReplier(..)")
    }
}

fn ad(home: RelayId, epoch: u32) -> Vec<u8> {
    let mut ad = L_INNER_AD.to_vec();
    ad.extend_from_slice(home.as_bytes());
    ad.extend_from_slice(&epoch.to_be_bytes());
    ad
}

type Key = Zeroizing<[u8; 32]>;

/// `K_inner, K_inner_answer`.
fn keys(shared: &[u8; 32], eph: &[u8; 32], slot: &[u8; 32]) -> Result<(Key, Key), RouteError> {
    let okm = kdf::expand::<64>(shared, L_INNER_KEYS, &[eph, slot])?;
    Ok((
        Zeroizing::new(kdf::take(&okm[..], 0)),
        Zeroizing::new(kdf::take(&okm[..], 32)),
    ))
}

/// Seals `deposit` to the destination relay's slot key `dest` (of the deposit's epoch),
/// for a slot homed at `home`. Returns the blob and the key to open its answer.
pub(crate) fn seal_inner(
    dest: &VerifiedSlotKey,
    home: RelayId,
    deposit: &Deposit,
) -> Result<(InnerBlob, InnerAnswerKey), RouteError> {
    if dest.epoch() != deposit.epoch() {
        return Err(RouteError::EpochMismatch {
            key: dest.epoch(),
            deposit: deposit.epoch(),
        });
    }
    let eph = StaticSecret::random_from_rng(&mut kdf::rng());
    let eph_pub = PublicKey::from(&eph);
    let shared = kdf::x25519(&eph, dest.public())?;
    let (k_inner, k_answer) = keys(&shared, eph_pub.as_bytes(), dest.public().as_bytes())?;
    let mut plain = Zeroizing::new([0u8; DEPOSIT_LEN]);
    deposit.encode_body(&mut plain[..]);
    let mut out = Box::new([0u8; INNER_BLOB_LEN]);
    out[..4].copy_from_slice(&deposit.epoch().to_be_bytes());
    out[4..36].copy_from_slice(eph_pub.as_bytes());
    kdf::seal_zero_nonce(
        &k_inner,
        &plain[..],
        &ad(home, deposit.epoch()),
        &mut out[36..],
    )?;
    Ok((InnerBlob(out), InnerAnswerKey(k_answer)))
}

/// Opens an inner blob forwarded by the home relay `home` (destination role).
///
/// # Errors
/// [`RouteError::UnknownSlotKey`] if no key of the blob's epoch is held;
/// [`RouteError::LowOrderPoint`], [`RouteError::DecryptFailed`], or
/// [`RouteError::Malformed`] for a deposit that does not decode.
pub fn open_inner(
    keys_held: &SlotKeyring,
    home: RelayId,
    blob: &InnerBlob,
) -> Result<OpenedInner, RouteError> {
    let epoch = blob.epoch();
    let pair = keys_held
        .by_epoch(epoch)
        .ok_or(RouteError::UnknownSlotKey)?;
    let eph: [u8; 32] = kdf::take(&blob.0[..], 4);
    let shared = kdf::x25519(pair.secret(), &PublicKey::from(eph))?;
    let (k_inner, k_answer) = keys(&shared, &eph, pair.public().as_bytes())?;
    let mut plain = Zeroizing::new([0u8; DEPOSIT_LEN]);
    kdf::open_zero_nonce(&k_inner, &blob.0[36..], &ad(home, epoch), &mut plain[..])?;
    Ok(OpenedInner {
        deposit: Deposit::decode_body(epoch, &plain[..])?,
        replier: InnerReplier(k_answer),
    })
}

//! Group messaging with Signal-style sender keys (docs/PROTOCOL.md, section 3.6).
//!
//! Each member has a sender key: a symmetric hash ratchet (chain key) plus an Ed25519 signing
//! key used only in this group and generation. Members hand out their sender key as a
//! [`SenderKeyDistribution`] inside their pairwise [`Session`](super::Session)s. Every
//! message is signed by its sender and verified by every reader. All members share a group
//! secret from which the header key and the rotating group mailbox derive; removing a member
//! rotates the group secret and every sender key (a new generation).
//!
//! Group envelope layout:
//!
//! ```text
//! header nonce (24) || E(HK, member id (32) || iteration (u32 BE)) (36 + 16)
//! || body nonce (24)
//! || E(MK, len (u16 BE) || plaintext || zero padding (716) || signature (64)) (780 + 16)
//! ```
//!
//! Both nonces are random, so a state restored from a backup that seals again reuses at
//! worst a message key, never a key with its nonce.

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::identity::Fingerprint;
use super::kdf::{
    self, L_GROUP_HEADER, L_GROUP_MAILBOX, L_GROUP_SIG, L_SENDER_KEY_CHAIN,
    L_SENDER_KEY_ENDORSEMENT, NONCE_LEN, TAG_LEN,
};
use super::mailbox::{Capability, MailboxId};
use super::ratchet::{MAX_SKIP, kdf_ck, open_body_of_either_revision, seal_body};
use super::session::serialize_versioned;
use super::{CryptoError, ENVELOPE_LEN, Envelope};

/// Version byte of serialized distributions.
const DIST_VERSION: u8 = 1;
/// Version byte of serialized group state: 2 records each sender key's owner; 1 (read,
/// never written) did not.
const STATE_VERSION: u8 = 2;
const STATE_VERSION_1: u8 = 1;
const HEADER_PLAIN_LEN: usize = 32 + 4;
const ENC_HEADER_LEN: usize = NONCE_LEN + HEADER_PLAIN_LEN + TAG_LEN;
/// Offset of the body ciphertext; the bytes before it (headers and body nonce) are
/// associated data and signed.
const BODY_AT: usize = ENC_HEADER_LEN + NONCE_LEN;
const SIG_LEN: usize = 64;
/// Padded plaintext length inside a group envelope (before the signature).
const PADDED_LEN: usize = ENVELOPE_LEN - BODY_AT - TAG_LEN - SIG_LEN;

/// A group's random identifier, shared by all members.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupId([u8; 16]);

impl GroupId {
    /// Wraps id bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> GroupId {
        GroupId(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl std::fmt::Debug for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupId({})", kdf::hex(&self.0))
    }
}

/// A member's sender-key identity within one group generation: its Ed25519 verifying key.
///
/// The engine learns which contact a `MemberId` belongs to from the pairwise session the
/// [`SenderKeyDistribution`] arrived in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberId([u8; 32]);

impl MemberId {
    /// The id with these bytes (as kept by a store).
    pub fn from_bytes(bytes: [u8; 32]) -> MemberId {
        MemberId(bytes)
    }

    /// The verifying key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemberId({}..)", kdf::hex(&self.0[..6]))
    }
}

/// Our own sender key in a group: chain key, per-group signing key, iteration counter.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct GroupSender {
    signing_seed: [u8; 32],
    /// Ed25519 public key of `signing_seed`, cached.
    member: [u8; 32],
    chain_key: [u8; 32],
    iteration: u32,
}

impl GroupSender {
    /// Largest plaintext one group envelope carries (714 bytes).
    pub const PLAINTEXT_CAPACITY: usize = PADDED_LEN - 2;

    fn generate() -> GroupSender {
        let signing_seed = kdf::random();
        GroupSender {
            member: SigningKey::from_bytes(&signing_seed)
                .verifying_key()
                .to_bytes(),
            signing_seed,
            chain_key: kdf::random(),
            iteration: 0,
        }
    }

    fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.signing_seed)
    }

    /// Our member id in this group generation.
    pub fn member_id(&self) -> MemberId {
        MemberId(self.member)
    }

    /// The number of messages sent with this sender key.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }
}

impl std::fmt::Debug for GroupSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GroupSender {{ member: {:?}, iteration: {} }}",
            self.member_id(),
            self.iteration
        )
    }
}

/// Another member's sender key as we hold it.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct GroupReceiver {
    member: [u8; 32],
    /// Identity fingerprint of the member it belongs to (`None` only for keys stored by a
    /// version that did not record it).
    owner: Option<[u8; 32]>,
    chain_key: [u8; 32],
    iteration: u32,
    skipped: Vec<(u32, [u8; 32])>,
}

/// A sender key as group state version 1 stored it, without its owner.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct GroupReceiverV1 {
    member: [u8; 32],
    chain_key: [u8; 32],
    iteration: u32,
    skipped: Vec<(u32, [u8; 32])>,
}

/// Group state version 1.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct GroupStateV1 {
    group_id: [u8; 16],
    generation: u32,
    group_secret: [u8; 32],
    me: GroupSender,
    receivers: Vec<GroupReceiverV1>,
}

/// A member's sender key and the group secret of its generation, to send to each other
/// member inside the pairwise sessions. It holds secrets: seal it, never log it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SenderKeyDistribution {
    group_id: [u8; 16],
    generation: u32,
    group_secret: [u8; 32],
    member: [u8; 32],
    chain_key: [u8; 32],
    iteration: u32,
}

impl SenderKeyDistribution {
    /// The group it belongs to.
    pub fn group_id(&self) -> GroupId {
        GroupId(self.group_id)
    }

    /// The member whose sender key it carries.
    pub fn member_id(&self) -> MemberId {
        MemberId(self.member)
    }

    /// The group generation (incremented by every rotation).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Serializes for a pairwise session message.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] if serialization fails (it cannot for this type).
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        serialize_versioned(DIST_VERSION, self)
    }

    /// Parses what [`SenderKeyDistribution::to_bytes`] produced.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if the bytes are not a distribution or the key is invalid.
    pub fn from_bytes(bytes: &[u8]) -> Result<SenderKeyDistribution, CryptoError> {
        let dist: SenderKeyDistribution = deserialize(DIST_VERSION, bytes)?;
        kdf::verifying_key(&dist.member).map_err(|_| CryptoError::Malformed)?;
        Ok(dist)
    }
}

impl std::fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SenderKeyDistribution {{ group: {:?}, generation: {}, member: {:?} }}",
            GroupId(self.group_id),
            self.generation,
            MemberId(self.member)
        )
    }
}

/// One member's view of one group: id, generation, group secret, own sender key and the
/// sender keys of the other members.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct GroupState {
    group_id: [u8; 16],
    generation: u32,
    group_secret: [u8; 32],
    me: GroupSender,
    receivers: Vec<GroupReceiver>,
}

impl GroupState {
    /// Starts a new group with a random id and secret; we are its only member.
    pub fn create() -> GroupState {
        GroupState {
            group_id: kdf::random(),
            generation: 0,
            group_secret: kdf::random(),
            me: GroupSender::generate(),
            receivers: Vec::new(),
        }
    }

    /// Joins a group from the first distribution received from an existing member, the
    /// identity `owner` (who sent it over their pairwise session, or endorsed it); send
    /// [`GroupState::distribution`] to every member afterwards. We can read that member's
    /// messages from the distribution's iteration on, nothing earlier.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if the distribution's key is invalid.
    pub fn from_distribution(
        dist: &SenderKeyDistribution,
        owner: &Fingerprint,
    ) -> Result<GroupState, CryptoError> {
        let mut state = GroupState {
            group_id: dist.group_id,
            generation: dist.generation,
            group_secret: dist.group_secret,
            me: GroupSender::generate(),
            receivers: Vec::new(),
        };
        state.add_receiver(dist, owner)?;
        Ok(state)
    }

    /// Processes a distribution from another member, the identity `owner`: the member it
    /// came from over their pairwise session, or whose endorsement
    /// ([`SenderKeyDistribution::check_endorsement`]) it carries.
    ///
    /// For the current generation, the member's key is added (a key already known keeps its
    /// current chain, so a stale copy cannot rewind it). Each member has one sender key
    /// per generation: a second, different key from the same owner is refused, as is a key
    /// already held as another owner's. For a newer generation (someone was removed), we
    /// adopt its group secret, forget every old sender key, make a fresh own sender key and
    /// return our new distribution, which the caller must send to every remaining member.
    ///
    /// Accept distributions only from current members: a newer generation replaces the
    /// group secret for everyone who processes it.
    ///
    /// # Errors
    /// [`CryptoError::StaleDistribution`] for another group or an older generation,
    /// [`CryptoError::DuplicateSenderKey`] for a second key of `owner` in this generation or
    /// a key held as someone else's, [`CryptoError::Malformed`] for an invalid key. On error
    /// the state is unchanged.
    pub fn process_distribution(
        &mut self,
        dist: &SenderKeyDistribution,
        owner: &Fingerprint,
    ) -> Result<Option<SenderKeyDistribution>, CryptoError> {
        if dist.group_id != self.group_id {
            return Err(CryptoError::StaleDistribution);
        }
        let newer = dist.generation > self.generation
            // Two members rotated at once: the larger secret wins, on every member alike.
            || (dist.generation == self.generation && dist.group_secret > self.group_secret);
        if newer {
            kdf::verifying_key(&dist.member).map_err(|_| CryptoError::Malformed)?;
            self.generation = dist.generation;
            self.group_secret = dist.group_secret;
            self.me = GroupSender::generate();
            self.receivers.clear();
            self.add_receiver(dist, owner)?;
            return Ok(Some(self.distribution()));
        }
        if dist.generation < self.generation || dist.group_secret != self.group_secret {
            return Err(CryptoError::StaleDistribution);
        }
        if dist.member == self.me.member_id().0 {
            return Ok(None);
        }
        let owner = *owner.as_bytes();
        if let Some(known) = self.receivers.iter_mut().find(|r| r.member == dist.member) {
            return match known.owner {
                Some(o) if o != owner => Err(CryptoError::DuplicateSenderKey),
                Some(_) => Ok(None),
                None => {
                    // Kept by a version that did not record owners: learn it now.
                    known.owner = Some(owner);
                    Ok(None)
                }
            };
        }
        if self.receivers.iter().any(|r| r.owner == Some(owner)) {
            return Err(CryptoError::DuplicateSenderKey);
        }
        self.add_receiver(dist, &Fingerprint::from_bytes(owner))?;
        Ok(None)
    }

    fn add_receiver(
        &mut self,
        dist: &SenderKeyDistribution,
        owner: &Fingerprint,
    ) -> Result<(), CryptoError> {
        kdf::verifying_key(&dist.member).map_err(|_| CryptoError::Malformed)?;
        self.receivers.push(GroupReceiver {
            member: dist.member,
            owner: Some(*owner.as_bytes()),
            chain_key: dist.chain_key,
            iteration: dist.iteration,
            skipped: Vec::new(),
        });
        Ok(())
    }

    /// Our sender key's current state (chain key at the current iteration), to send to a
    /// member: to everyone after joining or rotating, to a newcomer when they are added (they
    /// can read what we send from now on, not before).
    pub fn distribution(&self) -> SenderKeyDistribution {
        SenderKeyDistribution {
            group_id: self.group_id,
            generation: self.generation,
            group_secret: self.group_secret,
            member: self.me.member_id().0,
            chain_key: self.me.chain_key,
            iteration: self.me.iteration,
        }
    }

    /// Starts a new generation after removing a member: a fresh group secret (so a fresh
    /// header key and mailbox) and a fresh own sender key; all old sender keys are forgotten.
    /// Send the returned distribution to every remaining member (not the removed one).
    ///
    /// # Errors
    /// [`CryptoError::CounterExhausted`] after 2^32 generations.
    pub fn rotate(&mut self) -> Result<SenderKeyDistribution, CryptoError> {
        self.generation = self
            .generation
            .checked_add(1)
            .ok_or(CryptoError::CounterExhausted)?;
        self.group_secret = kdf::random();
        self.me = GroupSender::generate();
        self.receivers.clear();
        Ok(self.distribution())
    }

    /// The group's id.
    pub fn group_id(&self) -> GroupId {
        GroupId(self.group_id)
    }

    /// The current generation.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Our own sender key.
    pub fn sender(&self) -> &GroupSender {
        &self.me
    }

    /// The members whose sender keys we hold (not ourselves).
    pub fn members(&self) -> Vec<MemberId> {
        self.receivers.iter().map(|r| MemberId(r.member)).collect()
    }

    fn header_key(&self) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let mut out = Zeroizing::new([0u8; 32]);
        let info = [L_GROUP_HEADER, &self.generation.to_be_bytes()].concat();
        kdf::hkdf(&self.group_id, &self.group_secret, &info, &mut out[..])?;
        Ok(out)
    }

    fn mailbox_secret(&self) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let mut out = Zeroizing::new([0u8; 32]);
        let info = [L_GROUP_MAILBOX, &self.generation.to_be_bytes()].concat();
        kdf::hkdf(&self.group_id, &self.group_secret, &info, &mut out[..])?;
        Ok(out)
    }

    /// The capability to fetch the group mailbox of `epoch` (changes with every rotation).
    pub fn capability(&self, epoch: u64) -> Capability {
        self.mailbox_secret()
            .and_then(|s| Capability::derive(&s, epoch))
            .expect("HKDF and BLAKE2b with fixed sizes cannot fail")
    }

    /// The group's hum/2 tag key of the current generation (docs/PROTOCOL.md, hum/2
    /// §H3.4): every member derives the same, and it changes with every rotation.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] if the KDF fails.
    pub fn tag_key(&self) -> Result<crate::route::GroupTagKey, CryptoError> {
        crate::route::GroupTagKey::derive(
            &GroupId(self.group_id),
            &self.group_secret,
            self.generation,
        )
        .map_err(|_| CryptoError::Internal)
    }

    /// The group mailbox of `epoch`, where every member deposits and fetches.
    pub fn mailbox(&self, epoch: u64) -> MailboxId {
        self.capability(epoch).mailbox_id()
    }

    /// Signs and seals `plaintext` (at most [`GroupSender::PLAINTEXT_CAPACITY`] bytes).
    ///
    /// # Errors
    /// [`CryptoError::PlaintextTooLong`], or [`CryptoError::CounterExhausted`] after 2^32
    /// messages (rotate first).
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Envelope, CryptoError> {
        let next = self
            .me
            .iteration
            .checked_add(1)
            .ok_or(CryptoError::CounterExhausted)?;
        let (next_ck, mk) = kdf_ck(&self.me.chain_key)?;
        let envelope = seal_message(
            &self.context(),
            &*self.header_key()?,
            &self.me.signing_key(),
            self.me.iteration,
            &mk,
            plaintext,
        )?;
        self.me.chain_key = *next_ck;
        self.me.iteration = next;
        Ok(envelope)
    }

    /// Seals `plaintext` under a group header of the caller's choosing (`member` = `None`:
    /// our own id) at `iteration`, with our real signature or `signature`'s bytes, without
    /// advancing anything. The body key is our chain's at `iteration` when that is at most
    /// [`MAX_SKIP`] ahead (otherwise the current one). For fuzz targets only: the
    /// `fuzzing` feature, which no build of hum enables.
    ///
    /// # Errors
    /// As [`GroupState::seal`].
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn fuzz_seal(
        &self,
        member: Option<[u8; 32]>,
        iteration: u32,
        plaintext: &[u8],
        signature: Option<[u8; 64]>,
    ) -> Result<Envelope, CryptoError> {
        let mut ck = Zeroizing::new(self.me.chain_key);
        let steps = iteration
            .checked_sub(self.me.iteration)
            .filter(|s| *s <= MAX_SKIP)
            .unwrap_or(0);
        for _ in 0..steps {
            ck = kdf_ck(&ck)?.0;
        }
        let (_, mk) = kdf_ck(&ck)?;
        let mut body = Zeroizing::new([0u8; PADDED_LEN + SIG_LEN]);
        kdf::pad_into(plaintext, &mut body[..PADDED_LEN])?;
        let mut out = Box::new([0u8; ENVELOPE_LEN]);
        let nonce = kdf::random::<NONCE_LEN>();
        out[..NONCE_LEN].copy_from_slice(&nonce);
        let mut header = [0u8; HEADER_PLAIN_LEN];
        header[..32].copy_from_slice(&member.unwrap_or(self.me.member));
        header[32..].copy_from_slice(&iteration.to_be_bytes());
        kdf::aead_seal(
            &*self.header_key()?,
            &nonce,
            &header,
            &[],
            &mut out[NONCE_LEN..ENC_HEADER_LEN],
        )?;
        let context = self.context();
        let (head, rest) = out.split_at_mut(BODY_AT);
        head[ENC_HEADER_LEN..].copy_from_slice(&kdf::random::<NONCE_LEN>());
        let signature = signature.unwrap_or_else(|| {
            self.me
                .signing_key()
                .sign(&signed_bytes(&context, head, &body[..PADDED_LEN]))
                .to_bytes()
        });
        body[PADDED_LEN..].copy_from_slice(&signature);
        seal_body(&mk, &context, head, &body[..], rest)?;
        Ok(Envelope::from_array(out))
    }

    /// Opens a group envelope, verifying its sender's signature. On error the state is
    /// unchanged.
    ///
    /// # Errors
    /// [`CryptoError::OwnMessage`] for our own message coming back;
    /// [`CryptoError::Replayed`] for a known member's message at an iteration whose key is
    /// spent (a duplicate: the header opened under this group's key);
    /// [`CryptoError::DecryptFailed`] for anything not sent by a member we hold a sender key
    /// for, unsigned or wrongly signed, tampered, or too far ahead.
    pub fn open(&mut self, envelope: &Envelope) -> Result<(MemberId, Vec<u8>), CryptoError> {
        let bytes = envelope.as_bytes();
        let hk = self.header_key()?;
        let nonce = kdf::array_at::<NONCE_LEN>(bytes, 0).map_err(|_| CryptoError::DecryptFailed)?;
        let header = kdf::aead_open(&hk, &nonce, &bytes[NONCE_LEN..ENC_HEADER_LEN], &[])?;
        let member = kdf::array_at::<32>(&header, 0).map_err(|_| CryptoError::DecryptFailed)?;
        let iteration = u32::from_be_bytes(
            kdf::array_at::<4>(&header, 32).map_err(|_| CryptoError::DecryptFailed)?,
        );
        if member == self.me.member_id().0 {
            return Err(CryptoError::OwnMessage);
        }
        let context = self.context();
        let receiver = self
            .receivers
            .iter_mut()
            .find(|r| r.member == member)
            .ok_or(CryptoError::DecryptFailed)?;
        let mut trial = receiver.clone();
        let mk = trial.message_key(iteration)?;
        let plain = open_message(&context, &member, bytes, &mk)?;
        *receiver = trial;
        Ok((MemberId(member), plain))
    }

    fn context(&self) -> Vec<u8> {
        [&self.group_id[..], &self.generation.to_be_bytes()].concat()
    }

    /// Serializes the whole state for the (sealed) store.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] if serialization fails (it cannot for this state, but an
    /// empty state must never be written in its place).
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        serialize_versioned(STATE_VERSION, self)
    }

    /// Parses what [`GroupState::to_bytes`] produced, this version's or the previous one
    /// (whose sender keys have no recorded owner).
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if the bytes are not a group state of a known version.
    pub fn from_bytes(bytes: &[u8]) -> Result<GroupState, CryptoError> {
        if bytes.first() == Some(&STATE_VERSION_1) {
            let old: GroupStateV1 = deserialize(STATE_VERSION_1, bytes)?;
            return Ok(GroupState {
                group_id: old.group_id,
                generation: old.generation,
                group_secret: old.group_secret,
                me: old.me.clone(),
                receivers: old
                    .receivers
                    .iter()
                    .map(|r| GroupReceiver {
                        member: r.member,
                        owner: None,
                        chain_key: r.chain_key,
                        iteration: r.iteration,
                        skipped: r.skipped.clone(),
                    })
                    .collect(),
            });
        }
        deserialize(STATE_VERSION, bytes)
    }
}

impl std::fmt::Debug for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GroupState {{ group: {:?}, generation: {}, members: {} }}",
            GroupId(self.group_id),
            self.generation,
            self.receivers.len()
        )
    }
}

impl GroupReceiver {
    /// The message key of `iteration`, advancing the chain and keeping skipped keys
    /// (at most [`MAX_SKIP`] of them).
    fn message_key(&mut self, iteration: u32) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        if iteration < self.iteration {
            let at = self
                .skipped
                .iter()
                .position(|(n, _)| *n == iteration)
                .ok_or(CryptoError::Replayed)?;
            let mk = Zeroizing::new(self.skipped.remove(at).1);
            kdf::wipe_spare(&mut self.skipped);
            return Ok(mk);
        }
        if u64::from(iteration) > u64::from(self.iteration) + u64::from(MAX_SKIP) {
            return Err(CryptoError::DecryptFailed);
        }
        while self.iteration < iteration {
            let (next, mk) = kdf_ck(&self.chain_key)?;
            self.skipped.push((self.iteration, *mk));
            self.chain_key = *next;
            self.iteration += 1;
        }
        if self.skipped.len() > MAX_SKIP as usize {
            let excess = self.skipped.len() - MAX_SKIP as usize;
            self.skipped
                .drain(..excess)
                .for_each(|(_, mut mk)| mk.zeroize());
            kdf::wipe_spare(&mut self.skipped);
        }
        let (next, mk) = kdf_ck(&self.chain_key)?;
        self.chain_key = *next;
        self.iteration = self
            .iteration
            .checked_add(1)
            .ok_or(CryptoError::CounterExhausted)?;
        Ok(mk)
    }
}

fn signed_bytes(context: &[u8], head: &[u8], padded: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new([L_GROUP_SIG, context, head, padded].concat())
}

fn seal_message(
    context: &[u8],
    hk: &[u8; 32],
    signing: &SigningKey,
    iteration: u32,
    mk: &[u8; 32],
    plaintext: &[u8],
) -> Result<Envelope, CryptoError> {
    let mut body = Zeroizing::new([0u8; PADDED_LEN + SIG_LEN]);
    kdf::pad_into(plaintext, &mut body[..PADDED_LEN]).map_err(|_| {
        CryptoError::PlaintextTooLong {
            len: plaintext.len(),
            capacity: GroupSender::PLAINTEXT_CAPACITY,
        }
    })?;
    let mut out = Box::new([0u8; ENVELOPE_LEN]);
    let nonce = kdf::random::<NONCE_LEN>();
    out[..NONCE_LEN].copy_from_slice(&nonce);
    let mut header = [0u8; HEADER_PLAIN_LEN];
    header[..32].copy_from_slice(signing.verifying_key().as_bytes());
    header[32..].copy_from_slice(&iteration.to_be_bytes());
    kdf::aead_seal(
        hk,
        &nonce,
        &header,
        &[],
        &mut out[NONCE_LEN..ENC_HEADER_LEN],
    )?;
    let (head, rest) = out.split_at_mut(BODY_AT);
    // The body nonce is drawn first: the signature covers it with the headers.
    head[ENC_HEADER_LEN..].copy_from_slice(&kdf::random::<NONCE_LEN>());
    let signature = signing.sign(&signed_bytes(context, head, &body[..PADDED_LEN]));
    body[PADDED_LEN..].copy_from_slice(&signature.to_bytes());
    seal_body(mk, context, head, &body[..], rest)?;
    Ok(Envelope::from_array(out))
}

fn open_message(
    context: &[u8],
    member: &[u8; 32],
    bytes: &[u8; ENVELOPE_LEN],
    mk: &[u8; 32],
) -> Result<Vec<u8>, CryptoError> {
    // Revision 1 (before body nonces) had no body nonce and 24 bytes more of padding;
    // its signature covered the same fields.
    let (body, head) = open_body_of_either_revision(mk, context, &bytes[..], BODY_AT)?;
    let padded_len = body
        .len()
        .checked_sub(SIG_LEN)
        .ok_or(CryptoError::DecryptFailed)?;
    let (padded, signature) = body.split_at(padded_len);
    let verifying = kdf::verifying_key(member).map_err(|_| CryptoError::DecryptFailed)?;
    kdf::verify_strict(&verifying, &signed_bytes(context, head, padded), signature)
        .map_err(|_| CryptoError::DecryptFailed)?;
    kdf::unpad(padded)
}

fn deserialize<T: serde::de::DeserializeOwned>(
    version: u8,
    bytes: &[u8],
) -> Result<T, CryptoError> {
    let (&found, body) = bytes.split_first().ok_or(CryptoError::Malformed)?;
    if found != version {
        return Err(CryptoError::Malformed);
    }
    postcard::from_bytes(body).map_err(|_| CryptoError::Malformed)
}

/// A member's signature, with its long-term identity key, over one of its sender keys:
/// "this sender key, at this chain state, in this group and generation is mine". Readers
/// check it against the identity they know the member by, so a member's messages cannot
/// be passed off as someone else's, and whoever forwards the key cannot swap its chain
/// (docs/PROTOCOL.md, section 5.4).
impl SenderKeyDistribution {
    fn endorsement_message(&self) -> Result<Vec<u8>, CryptoError> {
        let commitment = kdf::blake2b_256(L_SENDER_KEY_CHAIN, &[&self.chain_key])?;
        let mut m = Vec::with_capacity(L_SENDER_KEY_ENDORSEMENT.len() + 16 + 4 + 32 + 4 + 32);
        m.extend_from_slice(L_SENDER_KEY_ENDORSEMENT);
        m.extend_from_slice(&self.group_id);
        m.extend_from_slice(&self.generation.to_be_bytes());
        m.extend_from_slice(&self.member);
        m.extend_from_slice(&self.iteration.to_be_bytes());
        m.extend_from_slice(&commitment);
        Ok(m)
    }

    /// Signs this sender key as `owner`'s (64 bytes).
    ///
    /// # Errors
    /// [`CryptoError::Internal`] only if BLAKE2b fails.
    pub fn endorse(&self, owner: &super::Identity) -> Result<[u8; 64], CryptoError> {
        Ok(owner.sign(&self.endorsement_message()?).to_bytes())
    }

    /// Checks that `owner` endorsed this sender key, at this chain key and iteration.
    ///
    /// # Errors
    /// [`CryptoError::InvalidIdentity`] when the signature is not `owner`'s over this key.
    pub fn check_endorsement(
        &self,
        owner: &super::PublicIdentity,
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        kdf::verify_strict(
            owner.verifying_key(),
            &self.endorsement_message()?,
            signature,
        )
        .map_err(|_| CryptoError::InvalidIdentity)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Identity;
    use super::*;

    fn fp(id: &Identity) -> Fingerprint {
        id.fingerprint()
    }

    /// Seals the next message of `state`'s own sender key as format revision 1 did: no
    /// body nonce (it was expanded from the message key), 24 bytes more of padding, the
    /// signature over the encrypted header and the padded plaintext. `signer` stands in
    /// for the sender key's signing key when given.
    fn seal_revision_1(
        state: &mut GroupState,
        plaintext: &[u8],
        signer: Option<&SigningKey>,
    ) -> Result<Envelope, CryptoError> {
        const PADDED_LEN_1: usize = ENVELOPE_LEN - ENC_HEADER_LEN - TAG_LEN - SIG_LEN;
        let (next_ck, mk) = kdf_ck(&state.me.chain_key)?;
        let mut body = [0u8; PADDED_LEN_1 + SIG_LEN];
        kdf::pad_into(plaintext, &mut body[..PADDED_LEN_1])?;
        let mut out = Box::new([0u8; ENVELOPE_LEN]);
        let nonce = kdf::random::<NONCE_LEN>();
        out[..NONCE_LEN].copy_from_slice(&nonce);
        let mut header = [0u8; HEADER_PLAIN_LEN];
        header[..32].copy_from_slice(&state.me.member);
        header[32..].copy_from_slice(&state.me.iteration.to_be_bytes());
        kdf::aead_seal(
            &*state.header_key()?,
            &nonce,
            &header,
            &[],
            &mut out[NONCE_LEN..ENC_HEADER_LEN],
        )?;
        let context = state.context();
        let (head, rest) = out.split_at_mut(ENC_HEADER_LEN);
        let signing = state.me.signing_key();
        let signature =
            signer
                .unwrap_or(&signing)
                .sign(&signed_bytes(&context, head, &body[..PADDED_LEN_1]));
        body[PADDED_LEN_1..].copy_from_slice(&signature.to_bytes());
        let mut okm = [0u8; 32 + NONCE_LEN];
        kdf::hkdf(&[0u8; 64], &mk[..], kdf::L_MESSAGE_KEYS, &mut okm)?;
        let key = kdf::array_at::<32>(&okm, 0)?;
        let body_nonce = kdf::array_at::<NONCE_LEN>(&okm, 32)?;
        kdf::aead_seal(
            &key,
            &body_nonce,
            &body,
            &[&context, &head[..]].concat(),
            rest,
        )?;
        state.me.chain_key = *next_ck;
        state.me.iteration += 1;
        Ok(Envelope::from_array(out))
    }

    /// Every member of a generation has the group's tag key; a new generation has another.
    #[test]
    fn members_share_the_tag_key_of_their_generation() -> Result<(), CryptoError> {
        let alice = Identity::generate();
        let mut admin = GroupState::create();
        let member = GroupState::from_distribution(&admin.distribution(), &fp(&alice))?;
        assert!(admin.tag_key()? == member.tag_key()?);
        let before = admin.tag_key()?;
        let dist = admin.rotate()?;
        assert!(admin.tag_key()? != before);
        let mut member = member;
        member.process_distribution(&dist, &fp(&alice))?;
        assert!(member.tag_key()? == admin.tag_key()?);
        Ok(())
    }

    /// Group envelopes sealed before body nonces (revision 1) and left in an outbox open
    /// after the upgrade, their signature checked as then; one signed by anyone but the
    /// sender key's owner does not, and leaves the state as it was.
    #[test]
    fn revision_1_group_messages_open() -> Result<(), CryptoError> {
        let alice = Identity::generate();
        let mut sender = GroupState::create();
        let mut reader = GroupState::from_distribution(&sender.distribution(), &fp(&alice))?;
        let forged = seal_revision_1(
            &mut sender.clone(),
            b"not from alice",
            Some(&SigningKey::from_bytes(&[7; 32])),
        )?;
        let kept = reader.to_bytes()?;
        assert_eq!(
            reader.open(&forged).map(|_| ()),
            Err(CryptoError::DecryptFailed)
        );
        assert_eq!(*reader.to_bytes()?, *kept);
        let old = seal_revision_1(&mut sender, b"sealed before", None)?;
        let new = sender.seal(b"sealed after")?;
        let member = sender.sender().member_id();
        assert_eq!(reader.open(&old)?, (member, b"sealed before".to_vec()));
        assert_eq!(reader.open(&new)?, (member, b"sealed after".to_vec()));
        assert_eq!(reader.open(&old).map(|_| ()), Err(CryptoError::Replayed));
        Ok(())
    }

    #[test]
    fn endorsements_bind_a_sender_key_to_its_owner() -> Result<(), CryptoError> {
        let alice = Identity::generate();
        let mallory = Identity::generate();
        let dist = GroupState::create().distribution();
        let sig = dist.endorse(&alice)?;
        dist.check_endorsement(&alice.public(), &sig)?;
        assert!(dist.check_endorsement(&mallory.public(), &sig).is_err());
        let other = GroupState::create().distribution();
        assert!(other.check_endorsement(&alice.public(), &sig).is_err());
        assert!(dist.check_endorsement(&alice.public(), &sig[..63]).is_err());
        Ok(())
    }

    /// Whoever forwards a sender key (the admin) cannot swap its chain key or iteration
    /// under the member's endorsement.
    #[test]
    fn endorsements_commit_to_the_chain() -> Result<(), CryptoError> {
        let alice = Identity::generate();
        let dist = GroupState::create().distribution();
        let sig = dist.endorse(&alice)?;
        let mut swapped = dist.clone();
        swapped.chain_key = [7u8; 32];
        assert_eq!(
            swapped.check_endorsement(&alice.public(), &sig),
            Err(CryptoError::InvalidIdentity)
        );
        let mut advanced = dist.clone();
        advanced.iteration += 1;
        assert_eq!(
            advanced.check_endorsement(&alice.public(), &sig),
            Err(CryptoError::InvalidIdentity)
        );
        Ok(())
    }

    /// One sender key per member per generation: a second key from the same owner is
    /// refused, and a key already held as one owner's is refused from another.
    #[test]
    fn one_sender_key_per_member_and_generation() -> Result<(), CryptoError> {
        let (alice, bob, carol) = (
            Identity::generate(),
            Identity::generate(),
            Identity::generate(),
        );
        let admin = GroupState::create();
        let mut state = GroupState::from_distribution(&admin.distribution(), &fp(&alice))?;
        let bob_key = GroupState::from_distribution(&admin.distribution(), &fp(&bob))?;
        assert_eq!(
            state.process_distribution(&bob_key.distribution(), &fp(&bob))?,
            None
        );
        // The same key again is fine (a duplicate delivery).
        assert_eq!(
            state.process_distribution(&bob_key.distribution(), &fp(&bob))?,
            None
        );
        let before = state.to_bytes()?;
        let second = GroupState::from_distribution(&admin.distribution(), &fp(&bob))?;
        assert_eq!(
            state.process_distribution(&second.distribution(), &fp(&bob)),
            Err(CryptoError::DuplicateSenderKey)
        );
        assert_eq!(
            state.process_distribution(&bob_key.distribution(), &fp(&carol)),
            Err(CryptoError::DuplicateSenderKey)
        );
        assert_eq!(*state.to_bytes()?, *before);
        assert_eq!(state.members().len(), 2);
        // A new generation starts afresh: one key each again.
        let mut admin = admin;
        let next = admin.rotate()?;
        assert!(state.process_distribution(&next, &fp(&alice))?.is_some());
        let mut bob_next = bob_key;
        let bob_next_dist = bob_next.process_distribution(&next, &fp(&alice))?;
        let bob_next_dist = bob_next_dist.ok_or(CryptoError::Internal)?;
        assert_eq!(state.process_distribution(&bob_next_dist, &fp(&bob))?, None);
        Ok(())
    }

    /// State written by version 1 (no owners) still opens, and learns owners as their
    /// keys come again.
    #[test]
    fn version_1_state_still_opens() -> Result<(), CryptoError> {
        let bob = Identity::generate();
        let mut admin = GroupState::create();
        let state = GroupState::from_distribution(&admin.distribution(), &fp(&bob))?;
        let v1 = GroupStateV1 {
            group_id: state.group_id,
            generation: state.generation,
            group_secret: state.group_secret,
            me: state.me.clone(),
            receivers: state
                .receivers
                .iter()
                .map(|r| GroupReceiverV1 {
                    member: r.member,
                    chain_key: r.chain_key,
                    iteration: r.iteration,
                    skipped: r.skipped.clone(),
                })
                .collect(),
        };
        let bytes = serialize_versioned(STATE_VERSION_1, &v1)?;
        let mut back = GroupState::from_bytes(&bytes)?;
        assert_eq!(back.receivers[0].owner, None);
        let m = admin.seal(b"still readable")?;
        assert_eq!(back.open(&m)?.1, b"still readable");
        back.process_distribution(&admin.distribution(), &fp(&bob))?;
        assert_eq!(back.receivers[0].owner, Some(*fp(&bob).as_bytes()));
        Ok(())
    }

    /// A member who holds Alice's chain key tries to pass a message off as Alice's.
    #[test]
    fn forged_and_unsigned_messages_are_rejected() -> Result<(), CryptoError> {
        let (a_id, b_id) = (Identity::generate(), Identity::generate());
        let mut alice = GroupState::create();
        let bob = GroupState::from_distribution(&alice.distribution(), &fp(&a_id))?;
        let mut carol = GroupState::from_distribution(&alice.distribution(), &fp(&a_id))?;
        alice.process_distribution(&bob.distribution(), &fp(&b_id))?;
        carol.process_distribution(&bob.distribution(), &fp(&b_id))?;

        // Bob knows Alice's chain key (he is a member) but not her signing key.
        let alice_view = bob.receivers[0].clone();
        assert_eq!(alice_view.member, alice.sender().member_id().0);
        let context = bob.context();
        let hk = bob.header_key()?;
        let (_, mk) = kdf_ck(&alice_view.chain_key)?;
        let forger = SigningKey::from_bytes(&[9u8; 32]);
        // Header claims Alice, signature by someone else.
        let mut forged = seal_message(&context, &hk, &forger, 0, &mk, b"pay bob")?;
        // Rewrite the header to name Alice (the forger can do this: it knows the header key).
        let nonce = kdf::array_at::<NONCE_LEN>(forged.as_bytes(), 0)?;
        let mut header = [0u8; HEADER_PLAIN_LEN];
        header[..32].copy_from_slice(&alice_view.member);
        let mut bytes = *forged.as_bytes();
        kdf::aead_seal(
            &hk,
            &nonce,
            &header,
            &[],
            &mut bytes[NONCE_LEN..ENC_HEADER_LEN],
        )?;
        forged = Envelope::from_bytes(&bytes)?;
        assert_eq!(carol.open(&forged), Err(CryptoError::DecryptFailed));

        // An unsigned message (zero signature) under Alice's real chain.
        let mut body = Zeroizing::new([0u8; PADDED_LEN + SIG_LEN]);
        kdf::pad_into(b"unsigned", &mut body[..PADDED_LEN])?;
        let mut out = *forged.as_bytes();
        let (head, rest) = out.split_at_mut(BODY_AT);
        seal_body(&mk, &context, head, &body[..], rest)?;
        assert_eq!(
            carol.open(&Envelope::from_bytes(&out)?),
            Err(CryptoError::DecryptFailed)
        );

        // Carol's state was not disturbed: Alice's real first message still opens.
        let real = alice.seal(b"hello")?;
        assert_eq!(
            carol.open(&real)?,
            (alice.sender().member_id(), b"hello".to_vec())
        );
        Ok(())
    }
}

//! The slot: the one deposit-and-request every up cell carries, real or dummy, sealed to
//! the client's home relay (docs/PROTOCOL.md, hum/2 §H4.3).

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::inner::{InnerAnswerKey, seal_inner};
use super::kdf::{self, AEAD_TAG_LEN, L_SLOT_AD, L_SLOT_KEYS};
use super::reply::{Layer, ReplyKeys, SlotReplier};
use super::request::REQUEST_FIELD_LEN;
use super::slot_key_pair::selector;
use super::{
    DEPOSIT_LEN, Deposit, INNER_BLOB_LEN, InnerBlob, RELAY_ID_LEN, RelayId, Request, RouteError,
    SlotKeyring, VerifiedSlotKey,
};

/// Length of the deposit field of a slot's plaintext (the largest deposit, a forward).
const DEPOSIT_FIELD_LEN: usize = RELAY_ID_LEN + INNER_BLOB_LEN;
/// Length of a slot's plaintext: kinds, deposit field, request field.
pub const OUTER_PLAIN_LEN: usize = 1 + DEPOSIT_FIELD_LEN + REQUEST_FIELD_LEN;
/// Length of a [`Slot`]: key selector, ephemeral key, sealed plaintext.
pub const SLOT_LEN: usize = 1 + 32 + OUTER_PLAIN_LEN + AEAD_TAG_LEN;

/// A sealed slot, [`SLOT_LEN`] bytes:
/// `key (1) || eph_pub (32) || AEAD(K_outer, 0, OuterPlain, "hum/2 slot" || E id || t)`.
///
/// `key` is the epoch of the home relay's slot key mod 256. Dummy and real slots look
/// alike to anyone without that key: same length, a fresh ephemeral, ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct Slot(Box<[u8; SLOT_LEN]>);

impl Slot {
    /// Wraps bytes read from an up cell or a slot batch.
    ///
    /// # Errors
    /// [`RouteError::Length`] unless `bytes` is [`SLOT_LEN`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Slot, RouteError> {
        Ok(Slot(Box::new(*kdf::exact::<SLOT_LEN>("slot", bytes)?)))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; SLOT_LEN] {
        &self.0
    }

    /// Random bytes of the same length (tests; a relay pads batches with sealed dummies).
    pub fn random() -> Slot {
        Slot(kdf::random_box())
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slot({SLOT_LEN} bytes)")
    }
}

/// What a client puts into a slot.
#[derive(Debug, Clone, Copy)]
pub enum SlotDeposit<'a> {
    /// Nothing: the home relay drops it.
    Dummy,
    /// A deposit for a recipient homed at the client's own home relay.
    Local(&'a Deposit),
    /// A deposit for a recipient homed at `dest`'s relay: sealed to `dest` inside.
    Forward {
        /// The destination relay's verified slot key of the deposit's epoch.
        dest: &'a VerifiedSlotKey,
        /// The deposit.
        deposit: &'a Deposit,
    },
}

/// What the home relay found in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenedDeposit {
    /// A dummy.
    Dummy,
    /// A deposit for this relay's own buckets.
    Local(Deposit),
    /// An inner blob to forward to `dest`.
    Forward {
        /// The destination relay.
        dest: RelayId,
        /// The blob, sealed to the destination.
        blob: InnerBlob,
    },
}

/// An opened slot: its deposit and request, and the one-use key to answer it.
#[derive(Debug)]
pub struct OpenedSlot {
    /// The deposit.
    pub deposit: OpenedDeposit,
    /// The request.
    pub request: Request,
    /// Seals the answer and reply item, two ticks later at the client.
    pub replier: SlotReplier,
}

/// The deposit kinds written in a slot (0 dummy, 1 local, 2 forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DepositKind {
    Dummy,
    Local,
    Forward,
}

/// Seals a slot to the home relay's verified slot key `home`, for the up cell that
/// answers entry relay `entry`'s down cell of tick `tick`.
///
/// Returns the slot and the keys the client keeps to open the answer and reply item of
/// the down cell of tick `tick + 2`. A fresh ephemeral key every time, dummy or not.
///
/// # Errors
/// [`RouteError::EpochMismatch`] if a forwarded deposit's epoch is not its destination
/// key's; [`RouteError::LowOrderPoint`] (not for a verified key); [`RouteError::Internal`].
pub fn seal_slot(
    home: &VerifiedSlotKey,
    entry: RelayId,
    tick: u64,
    deposit: SlotDeposit<'_>,
    request: &Request,
) -> Result<(Slot, ReplyKeys), RouteError> {
    let (plain, kind, inner) = encode_plain(home.relay(), deposit, request)?;
    let eph = StaticSecret::random_from_rng(&mut kdf::rng());
    let eph_pub = PublicKey::from(&eph);
    let shared = kdf::x25519(&eph, home.public())?;
    let okm = kdf::expand::<96>(
        &shared,
        L_SLOT_KEYS,
        &[eph_pub.as_bytes(), home.public().as_bytes()],
    )?;
    let mut out = Box::new([0u8; SLOT_LEN]);
    out[0] = selector(home.epoch());
    out[1..33].copy_from_slice(eph_pub.as_bytes());
    kdf::seal_zero_nonce(
        &kdf::take(&okm[..], 0),
        &plain[..],
        &ad(entry, tick),
        &mut out[33..],
    )?;
    let layer = Layer::sealed(&okm);
    Ok((Slot(out), ReplyKeys::new(layer, kind, inner)))
}

/// The single relay's clear form of a slot: `0 || 32 zero bytes || OuterPlain || 16 zero
/// bytes`. Only a relay without peers takes it (it sees everything anyway).
///
/// # Errors
/// As [`seal_slot`] for a forwarded deposit.
pub fn seal_clear_slot(
    home: RelayId,
    deposit: SlotDeposit<'_>,
    request: &Request,
) -> Result<(Slot, ReplyKeys), RouteError> {
    let (plain, kind, inner) = encode_plain(home, deposit, request)?;
    let mut out = Box::new([0u8; SLOT_LEN]);
    out[33..33 + OUTER_PLAIN_LEN].copy_from_slice(&plain[..]);
    Ok((Slot(out), ReplyKeys::new(Layer::Clear, kind, inner)))
}

/// Opens a slot from entry relay `entry`'s batch of tick `tick` (home role).
///
/// # Errors
/// [`RouteError::ClearSlot`] for a clear slot; [`RouteError::UnknownSlotKey`] if the
/// slot names a key not held; [`RouteError::LowOrderPoint`]; [`RouteError::DecryptFailed`]
/// (wrong key, tick or entry relay, or tampered); [`RouteError::Malformed`] and
/// [`RouteError::BucketOutOfRange`] for a plaintext that does not decode.
pub fn open_slot(
    keys: &SlotKeyring,
    entry: RelayId,
    tick: u64,
    slot: &Slot,
) -> Result<OpenedSlot, RouteError> {
    let eph: [u8; 32] = kdf::take(&slot.0[..], 1);
    if eph == [0u8; 32] {
        return Err(RouteError::ClearSlot);
    }
    let pair = keys
        .by_selector(slot.0[0])
        .ok_or(RouteError::UnknownSlotKey)?;
    let shared = kdf::x25519(pair.secret(), &PublicKey::from(eph))?;
    let okm = kdf::expand::<96>(&shared, L_SLOT_KEYS, &[&eph, pair.public().as_bytes()])?;
    let mut plain = Zeroizing::new([0u8; OUTER_PLAIN_LEN]);
    kdf::open_zero_nonce(
        &kdf::take(&okm[..], 0),
        &slot.0[33..],
        &ad(entry, tick),
        &mut plain[..],
    )?;
    decode_plain(&plain, Layer::sealed(&okm))
}

/// Opens the single relay's clear form of a slot.
///
/// # Errors
/// [`RouteError::Malformed`] unless the slot is in clear form and its plaintext decodes.
pub fn open_clear_slot(slot: &Slot) -> Result<OpenedSlot, RouteError> {
    kdf::zeros("clear slot header", &slot.0[..33])?;
    kdf::zeros("clear slot tail", &slot.0[33 + OUTER_PLAIN_LEN..])?;
    let mut plain = Zeroizing::new([0u8; OUTER_PLAIN_LEN]);
    plain.copy_from_slice(&slot.0[33..33 + OUTER_PLAIN_LEN]);
    decode_plain(&plain, Layer::Clear)
}

fn ad(entry: RelayId, tick: u64) -> [u8; 26] {
    let mut ad = [0u8; 26];
    ad[..10].copy_from_slice(L_SLOT_AD);
    ad[10..18].copy_from_slice(entry.as_bytes());
    ad[18..].copy_from_slice(&tick.to_be_bytes());
    ad
}

type Plain = Zeroizing<[u8; OUTER_PLAIN_LEN]>;

/// Writes `kinds (deposit | request << 4) || deposit field || request field`.
fn encode_plain(
    home: RelayId,
    deposit: SlotDeposit<'_>,
    request: &Request,
) -> Result<(Plain, DepositKind, Option<InnerAnswerKey>), RouteError> {
    let mut plain = Zeroizing::new([0u8; OUTER_PLAIN_LEN]);
    let field = &mut plain[1..1 + DEPOSIT_FIELD_LEN];
    let (kind, inner) = match deposit {
        SlotDeposit::Dummy => (DepositKind::Dummy, None),
        SlotDeposit::Local(d) => {
            field[..4].copy_from_slice(&d.epoch().to_be_bytes());
            d.encode_body(&mut field[4..4 + DEPOSIT_LEN]);
            (DepositKind::Local, None)
        }
        SlotDeposit::Forward { dest, deposit } => {
            let (blob, key) = seal_inner(dest, home, deposit)?;
            field[..RELAY_ID_LEN].copy_from_slice(dest.relay().as_bytes());
            field[RELAY_ID_LEN..].copy_from_slice(blob.as_bytes());
            (DepositKind::Forward, Some(key))
        }
    };
    let deposit_kind = match kind {
        DepositKind::Dummy => 0,
        DepositKind::Local => 1,
        DepositKind::Forward => 2,
    };
    plain[0] = deposit_kind | (request.kind() << 4);
    request.encode(&mut plain[1 + DEPOSIT_FIELD_LEN..]);
    Ok((plain, kind, inner))
}

fn decode_plain(plain: &[u8; OUTER_PLAIN_LEN], layer: Layer) -> Result<OpenedSlot, RouteError> {
    let field = &plain[1..1 + DEPOSIT_FIELD_LEN];
    let (deposit, kind) = match plain[0] & 0x0f {
        0 => {
            kdf::zeros("dummy deposit padding", field)?;
            (OpenedDeposit::Dummy, DepositKind::Dummy)
        }
        1 => {
            kdf::zeros("local deposit padding", &field[4 + DEPOSIT_LEN..])?;
            let epoch = kdf::u32_at(field, 0);
            let d = Deposit::decode_body(epoch, &field[4..4 + DEPOSIT_LEN])?;
            (OpenedDeposit::Local(d), DepositKind::Local)
        }
        2 => (
            OpenedDeposit::Forward {
                dest: RelayId::from_bytes(kdf::take(field, 0)),
                blob: InnerBlob::from_bytes(&field[RELAY_ID_LEN..])?,
            },
            DepositKind::Forward,
        ),
        _ => return Err(RouteError::Malformed("deposit kind")),
    };
    let request = Request::decode(plain[0] >> 4, &plain[1 + DEPOSIT_FIELD_LEN..])?;
    Ok(OpenedSlot {
        deposit,
        request,
        replier: SlotReplier::new(layer, kind),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{
        CatchUp, Copy, DeliverySecret, DepositOutcome, DepositReply, Item, RequestOutcome, TagKey,
        WrappedEnvelope, open_inner,
    };

    const ENTRY: RelayId = RelayId::from_bytes([2; 8]);
    const HOME: RelayId = RelayId::from_bytes([1; 8]);
    const DEST: RelayId = RelayId::from_bytes([3; 8]);

    fn ring(epoch: u32) -> SlotKeyring {
        let mut r = SlotKeyring::new();
        r.advance(epoch);
        r
    }

    fn key(r: &SlotKeyring, relay: RelayId, epoch: u32) -> Result<VerifiedSlotKey, RouteError> {
        r.by_epoch(epoch)
            .map(|k| k.verified(relay))
            .ok_or(RouteError::UnknownSlotKey)
    }

    fn deposit(epoch: u32) -> Result<Deposit, RouteError> {
        Deposit::new(
            epoch,
            &[Copy { bucket: 9, flag: 4 }],
            TagKey::generate().secret(epoch, 0).seed(),
            WrappedEnvelope::random(),
        )
    }

    #[test]
    fn local_forward_and_dummy_round_trip() -> Result<(), RouteError> {
        let home = ring(5);
        let dest = ring(7);
        let d = deposit(7)?;
        let catch_up = Request::CatchUp(CatchUp {
            bucket: 3,
            epoch: 4,
            detect: DeliverySecret::generate().detection_key(4),
            after: 99,
            rank: 5,
        });
        // Local, sealed to the next epoch's key.
        let local = deposit(6)?;
        let (slot, _) = seal_slot(
            &key(&home, HOME, 6)?,
            ENTRY,
            41,
            SlotDeposit::Local(&local),
            &catch_up,
        )?;
        let opened = open_slot(&home, ENTRY, 41, &slot)?;
        assert_eq!(opened.deposit, OpenedDeposit::Local(local));
        assert_eq!(opened.request, catch_up);
        // Forward: the home relay sees the destination and a blob only it cannot open.
        let (slot, keys) = seal_slot(
            &key(&home, HOME, 5)?,
            ENTRY,
            42,
            SlotDeposit::Forward {
                dest: &key(&dest, DEST, 7)?,
                deposit: &d,
            },
            &Request::None,
        )?;
        let opened = open_slot(&home, ENTRY, 42, &slot)?;
        assert!(opened.replier.is_forward());
        let OpenedDeposit::Forward { dest: to, blob } = &opened.deposit else {
            return Err(RouteError::Malformed("expected a forward"));
        };
        assert_eq!((*to, blob.epoch()), (DEST, 7));
        assert_eq!(
            open_inner(&home, HOME, blob).err(),
            Some(RouteError::UnknownSlotKey)
        );
        assert_eq!(
            open_inner(&dest, ENTRY, blob).err(),
            Some(RouteError::DecryptFailed)
        );
        let inner = open_inner(&dest, HOME, blob)?;
        assert_eq!(inner.deposit, d);
        let inner_answer = inner.replier.seal(DepositOutcome::Retry { epoch: 8 });
        let item = Item::random();
        let reply = opened.replier.seal(
            &DepositReply::Forwarded(inner_answer),
            &RequestOutcome::CatchUp {
                found: true,
                next_after: 7,
                more: false,
            },
            Some(&item),
        );
        let answer = keys.open_answer(&reply.answer)?;
        assert_eq!(answer.deposit, DepositOutcome::Retry { epoch: 8 });
        assert_eq!(keys.open_item(&reply.item), item);
        assert_ne!(reply.item, item);
        // Dummy.
        let (slot, keys) = seal_slot(
            &key(&home, HOME, 5)?,
            ENTRY,
            43,
            SlotDeposit::Dummy,
            &Request::None,
        )?;
        let opened = open_slot(&home, ENTRY, 43, &slot)?;
        assert_eq!(opened.deposit, OpenedDeposit::Dummy);
        let reply = opened.replier.seal(
            &DepositReply::Outcome(DepositOutcome::None),
            &RequestOutcome::None,
            None,
        );
        assert_eq!(keys.open_answer(&reply.answer)?, Default::default());
        Ok(())
    }

    #[test]
    fn a_home_relay_can_answer_full_for_a_forward_and_nothing_else() -> Result<(), RouteError> {
        let (home, dest) = (ring(5), ring(7));
        let d = deposit(7)?;
        let seal = || {
            seal_slot(
                &key(&home, HOME, 5)?,
                ENTRY,
                42,
                SlotDeposit::Forward {
                    dest: &key(&dest, DEST, 7)?,
                    deposit: &d,
                },
                &Request::None,
            )
        };
        for (said, read) in [
            (DepositOutcome::Full, DepositOutcome::Full),
            (DepositOutcome::Stored, DepositOutcome::Unknown),
        ] {
            let (slot, keys) = seal()?;
            let opened = open_slot(&home, ENTRY, 42, &slot)?;
            let reply =
                opened
                    .replier
                    .seal(&DepositReply::Outcome(said), &RequestOutcome::None, None);
            assert_eq!(keys.open_answer(&reply.answer)?.deposit, read);
        }
        Ok(())
    }

    #[test]
    fn wrong_tick_entry_or_key_does_not_open() -> Result<(), RouteError> {
        let home = ring(5);
        let (slot, _) = seal_slot(
            &key(&home, HOME, 5)?,
            ENTRY,
            42,
            SlotDeposit::Dummy,
            &Request::None,
        )?;
        assert_eq!(
            open_slot(&home, ENTRY, 43, &slot).err(),
            Some(RouteError::DecryptFailed)
        );
        assert_eq!(
            open_slot(&home, DEST, 42, &slot).err(),
            Some(RouteError::DecryptFailed)
        );
        assert_eq!(
            open_slot(&ring(5), ENTRY, 42, &slot).err(),
            Some(RouteError::DecryptFailed)
        );
        assert_eq!(
            open_slot(&ring(9), ENTRY, 42, &slot).err(),
            Some(RouteError::UnknownSlotKey)
        );
        Ok(())
    }

    #[test]
    fn a_forward_must_use_the_destination_key_of_its_epoch() -> Result<(), RouteError> {
        let home = ring(5);
        let dest = ring(7);
        let err = seal_slot(
            &key(&home, HOME, 5)?,
            ENTRY,
            1,
            SlotDeposit::Forward {
                dest: &key(&dest, DEST, 8)?,
                deposit: &deposit(7)?,
            },
            &Request::None,
        );
        assert_eq!(
            err.err(),
            Some(RouteError::EpochMismatch { key: 8, deposit: 7 })
        );
        Ok(())
    }

    #[test]
    fn clear_slots_only_open_in_clear() -> Result<(), RouteError> {
        let home = ring(5);
        let d = deposit(5)?;
        let (slot, keys) = seal_clear_slot(HOME, SlotDeposit::Local(&d), &Request::None)?;
        assert_eq!(
            open_slot(&home, ENTRY, 1, &slot).err(),
            Some(RouteError::ClearSlot)
        );
        let opened = open_clear_slot(&slot)?;
        assert_eq!(opened.deposit, OpenedDeposit::Local(d));
        let item = Item::random();
        let reply = opened.replier.seal(
            &DepositReply::Outcome(DepositOutcome::Full),
            &RequestOutcome::None,
            Some(&item),
        );
        assert_eq!(
            keys.open_answer(&reply.answer)?.deposit,
            DepositOutcome::Full
        );
        assert_eq!(keys.open_item(&reply.item), item);
        let (sealed, _) = seal_slot(
            &key(&home, HOME, 5)?,
            ENTRY,
            1,
            SlotDeposit::Dummy,
            &Request::None,
        )?;
        assert!(open_clear_slot(&sealed).is_err());
        Ok(())
    }

    #[test]
    fn low_order_ephemerals_are_refused() -> Result<(), RouteError> {
        let home = ring(5);
        let (slot, _) = seal_slot(
            &key(&home, HOME, 5)?,
            ENTRY,
            1,
            SlotDeposit::Dummy,
            &Request::None,
        )?;
        let mut bytes = *slot.as_bytes();
        bytes[1..33].fill(0);
        bytes[1] = 1;
        assert_eq!(
            open_slot(&home, ENTRY, 1, &Slot::from_bytes(&bytes)?).err(),
            Some(RouteError::LowOrderPoint)
        );
        Ok(())
    }
}

//! Property tests of hum/2's formats and cryptography: every encode/decode pair and every
//! seal/open pair round-trips at exact sizes, refuses the wrong key, detects any flipped
//! byte, and never panics on arbitrary bytes.

use std::sync::OnceLock;

use hum_shared::CertFingerprint;
use hum_shared::crypto::{ENVELOPE_LEN, Envelope};
use hum_shared::route::{
    ANSWER_LEN, CELL_LEN, CatchUp, Copy, CopyTag, DIRECTORY_CHUNK_LEN, Delete, DeliverySecret,
    Deposit, DepositOutcome, DepositReply, Directory, DirectoryChunk, DirectoryReassembler,
    DirectoryUpdate, DownCell, ForwardAnswers, ForwardBatch, Hello, INNER_BLOB_LEN, ITEM_LEN,
    InnerAnswer, InnerBlob, Item, LINK_HELLO_LEN, LinkConfig, LinkFrame, LinkHello, LinkRole,
    OpenedDeposit, RelayEntry, RelayId, ReplyBatch, Request, RequestOutcome, RouteError, SLOT_LEN,
    Slot, SlotBatch, SlotDeposit, SlotKey, SlotKeyPair, SlotKeyring, StreamBatch, TagKey,
    TagSecret, UpCell, VerifiedSlotKey, WRAPPED_LEN, WrapKey, WrappedEnvelope, open_clear_slot,
    open_inner, open_slot, read_frame_header, seal_clear_slot, seal_slot,
};
use proptest::prelude::*;

const ENTRY: RelayId = RelayId::from_bytes([0xe0; 8]);
const HOME: RelayId = RelayId::from_bytes([0x40; 8]);
const DEST: RelayId = RelayId::from_bytes([0xd0; 8]);
const EPOCH: u32 = 300;

/// The home and destination relays' keyrings (epochs 300 and 301), made once.
fn rings() -> &'static (SlotKeyring, SlotKeyring) {
    static RINGS: OnceLock<(SlotKeyring, SlotKeyring)> = OnceLock::new();
    RINGS.get_or_init(|| {
        let mut home = SlotKeyring::new();
        home.advance(EPOCH);
        let mut dest = SlotKeyring::new();
        dest.advance(EPOCH);
        (home, dest)
    })
}

fn key(ring: &SlotKeyring, relay: RelayId, epoch: u32) -> Result<VerifiedSlotKey, RouteError> {
    ring.by_epoch(epoch)
        .map(|k| k.verified(relay))
        .ok_or(RouteError::UnknownSlotKey)
}

/// A relay certificate and a small directory, made once (rcgen is slow in debug builds).
fn relay() -> &'static (Vec<u8>, Vec<u8>, CertFingerprint) {
    static CERT: OnceLock<(Vec<u8>, Vec<u8>, CertFingerprint)> = OnceLock::new();
    CERT.get_or_init(|| {
        let made = rcgen::generate_simple_self_signed(vec!["hum-relay".to_owned()])
            .unwrap_or_else(|e| unreachable!("rcgen: {e}"));
        let cert = made.cert.der().to_vec();
        let fp = CertFingerprint::of_certificate(&cert);
        (cert, made.signing_key.serialize_der(), fp)
    })
}

fn bytes(n: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), n)
}

fn copies() -> impl Strategy<Value = Vec<Copy>> {
    proptest::collection::vec(
        (0u16..256, any::<u8>()).prop_map(|(bucket, flag)| Copy { bucket, flag }),
        1..=64,
    )
}

fn deposit(epoch: u32) -> impl Strategy<Value = Deposit> {
    (copies(), any::<[u8; 32]>(), bytes(WRAPPED_LEN)).prop_map(move |(c, s, p)| {
        Deposit::new(
            epoch,
            &c,
            TagSecret::from_bytes(s).seed(),
            WrappedEnvelope::from_bytes(&p).unwrap_or_else(|e| unreachable!("{e}")),
        )
        .unwrap_or_else(|e| unreachable!("{e}"))
    })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::None),
        (
            0u16..256,
            any::<u32>(),
            any::<[u8; 32]>(),
            any::<u64>(),
            any::<u8>()
        )
            .prop_map(|(b, e, d, a, r)| {
                Request::CatchUp(CatchUp {
                    bucket: b,
                    epoch: e,
                    detect: hum_shared::route::DetectionKey::from_bytes(d),
                    after: a,
                    rank: r,
                })
            }),
        (
            0u16..256,
            any::<u32>(),
            any::<[u8; 16]>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(b, e, t, p)| Request::Delete(Delete {
                bucket: b,
                epoch: e,
                tag: CopyTag::from_bytes(t),
                proof: TagSecret::from_bytes(p),
            })),
    ]
}

fn outcome() -> impl Strategy<Value = DepositOutcome> {
    prop_oneof![
        Just(DepositOutcome::None),
        Just(DepositOutcome::Stored),
        Just(DepositOutcome::Full),
        any::<u32>().prop_map(|epoch| DepositOutcome::Retry { epoch }),
        Just(DepositOutcome::Unknown),
    ]
}

fn request_outcome() -> impl Strategy<Value = RequestOutcome> {
    prop_oneof![
        Just(RequestOutcome::None),
        (any::<bool>(), any::<u64>(), any::<bool>()).prop_map(|(found, next_after, more)| {
            RequestOutcome::CatchUp {
                found,
                next_after,
                more,
            }
        }),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    bytes(ITEM_LEN).prop_map(|b| Item::from_bytes(&b).unwrap_or_else(|e| unreachable!("{e}")))
}

fn slot() -> impl Strategy<Value = Slot> {
    bytes(SLOT_LEN).prop_map(|b| Slot::from_bytes(&b).unwrap_or_else(|e| unreachable!("{e}")))
}

#[derive(Debug, Clone)]
enum Kind {
    Dummy,
    Local(Deposit),
    Forward(Deposit),
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Dummy),
        deposit(EPOCH).prop_map(Kind::Local),
        deposit(EPOCH + 1).prop_map(Kind::Forward),
    ]
}

/// Seals a slot of `kind` at tick `tick`; the forward goes to the destination's key of
/// the deposit's epoch.
fn seal(
    kind: &Kind,
    request: &Request,
    tick: u64,
) -> Result<(Slot, hum_shared::route::ReplyKeys), RouteError> {
    let (home, dest) = rings();
    let dest_key = key(dest, DEST, EPOCH + 1)?;
    let deposit = match kind {
        Kind::Dummy => SlotDeposit::Dummy,
        Kind::Local(d) => SlotDeposit::Local(d),
        Kind::Forward(d) => SlotDeposit::Forward {
            dest: &dest_key,
            deposit: d,
        },
    };
    seal_slot(&key(home, HOME, EPOCH)?, ENTRY, tick, deposit, request)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn slots_round_trip_through_home_and_destination(
        kind in kind(),
        request in request(),
        tick in any::<u64>(),
        answer in outcome(),
        req_answer in request_outcome(),
        reply_item in proptest::option::of(item()),
    ) {
        let (home, dest) = rings();
        let (slot, keys) = seal(&kind, &request, tick)?;
        prop_assert_eq!(slot.as_bytes().len(), SLOT_LEN);
        let opened = open_slot(home, ENTRY, tick, &slot)?;
        prop_assert_eq!(&opened.request, &request);
        let deposit_reply = match (&kind, &opened.deposit) {
            (Kind::Dummy, OpenedDeposit::Dummy) => DepositReply::Outcome(DepositOutcome::None),
            (Kind::Local(d), OpenedDeposit::Local(got)) => {
                prop_assert_eq!(d, got);
                DepositReply::Outcome(answer)
            }
            (Kind::Forward(d), OpenedDeposit::Forward { dest: to, blob }) => {
                prop_assert_eq!(*to, DEST);
                let inner = open_inner(dest, HOME, blob)?;
                prop_assert_eq!(&inner.deposit, d);
                DepositReply::Forwarded(inner.replier.seal(answer))
            }
            (k, got) => return Err(TestCaseError::fail(format!("{k:?} opened as {got:?}"))),
        };
        let reply = opened.replier.seal(&deposit_reply, &req_answer, reply_item.as_ref());
        let got = keys.open_answer(&reply.answer)?;
        let want = if matches!(kind, Kind::Dummy) { DepositOutcome::None } else { answer };
        prop_assert_eq!(got.deposit, want);
        prop_assert_eq!(got.request, req_answer);
        if let Some(i) = &reply_item {
            prop_assert_eq!(&keys.open_item(&reply.item), i);
        }
    }

    #[test]
    fn any_flipped_slot_byte_is_refused(
        kind in kind(),
        request in request(),
        at in 0..SLOT_LEN,
        bit in 0u8..8,
    ) {
        let (home, _) = rings();
        let (slot, _) = seal(&kind, &request, 9)?;
        let mut b = *slot.as_bytes();
        b[at] ^= 1 << bit;
        prop_assert!(open_slot(home, ENTRY, 9, &Slot::from_bytes(&b)?).is_err());
    }

    #[test]
    fn wrong_keys_ticks_and_relays_are_refused(kind in kind(), tick in any::<u64>()) {
        let (home, dest) = rings();
        let (slot, _) = seal(&kind, &Request::None, tick)?;
        prop_assert_eq!(
            open_slot(home, ENTRY, tick.wrapping_add(1), &slot).err(),
            Some(RouteError::DecryptFailed)
        );
        prop_assert_eq!(
            open_slot(home, DEST, tick, &slot).err(),
            Some(RouteError::DecryptFailed)
        );
        // The destination's keys share the home's epochs but are other keys.
        prop_assert_eq!(
            open_slot(dest, ENTRY, tick, &slot).err(),
            Some(RouteError::DecryptFailed)
        );
    }

    #[test]
    fn flipped_inner_blobs_and_answers_are_detected(
        d in deposit(EPOCH + 1),
        at in 0..INNER_BLOB_LEN,
        answer_at in 0..ANSWER_LEN,
        outcome in outcome(),
    ) {
        let (home, dest) = rings();
        let (slot, keys) = seal(&Kind::Forward(d), &Request::None, 5)?;
        let opened = open_slot(home, ENTRY, 5, &slot)?;
        let OpenedDeposit::Forward { blob, .. } = &opened.deposit else {
            return Err(TestCaseError::fail("not a forward"));
        };
        let mut b = *blob.as_bytes();
        b[at] ^= 0x01;
        prop_assert!(open_inner(dest, HOME, &InnerBlob::from_bytes(&b)?).is_err());
        prop_assert_eq!(
            open_inner(dest, DEST, blob).err(),
            Some(RouteError::DecryptFailed)
        );
        let inner = open_inner(dest, HOME, blob)?;
        let inner_answer = inner.replier.seal(outcome);
        // A changed inner answer reads as Unknown; a changed outer answer does not open.
        let mut changed = *inner_answer.as_bytes();
        changed[answer_at % changed.len()] ^= 0x80;
        let reply = opened.replier.seal(
            &DepositReply::Forwarded(InnerAnswer::from_bytes(&changed)?),
            &RequestOutcome::None,
            None,
        );
        prop_assert_eq!(keys.open_answer(&reply.answer)?.deposit, DepositOutcome::Unknown);
        let mut sealed = reply.answer;
        sealed[answer_at] ^= 0x01;
        prop_assert_eq!(keys.open_answer(&sealed).err(), Some(RouteError::DecryptFailed));
    }

    #[test]
    fn clear_slots_round_trip(kind in kind(), request in request()) {
        let (_, dest) = rings();
        let dest_key = key(dest, DEST, EPOCH + 1)?;
        let deposit = match &kind {
            Kind::Dummy => SlotDeposit::Dummy,
            Kind::Local(d) => SlotDeposit::Local(d),
            Kind::Forward(d) => SlotDeposit::Forward { dest: &dest_key, deposit: d },
        };
        let (slot, keys) = seal_clear_slot(HOME, deposit, &request)?;
        let opened = open_clear_slot(&slot)?;
        prop_assert_eq!(&opened.request, &request);
        let reply = opened.replier.seal(
            &DepositReply::Outcome(DepositOutcome::None),
            &RequestOutcome::None,
            None,
        );
        prop_assert_eq!(keys.open_answer(&reply.answer)?.deposit,
            if matches!(kind, Kind::Forward(_)) { DepositOutcome::Unknown } else { DepositOutcome::None });
        prop_assert_eq!(open_slot(&rings().0, ENTRY, 0, &slot).err(), Some(RouteError::ClearSlot));
    }

    #[test]
    fn items_rewrap_and_unwrap(
        seed in any::<[u8; 32]>(),
        bucket in 0u16..256,
        env in bytes(ENVELOPE_LEN),
        wk in any::<[u8; 32]>(),
        at in 0..ITEM_LEN,
    ) {
        let seed = TagSecret::from_bytes(seed).seed();
        let wk = WrapKey::from_bytes(wk);
        let envelope = Envelope::from_bytes(&env)?;
        let item = Item::rewrap(&seed, bucket, &wk.wrap(&envelope));
        prop_assert_eq!(item.as_bytes().len(), ITEM_LEN);
        prop_assert_eq!(item.tag(), seed.copy_tag(bucket));
        prop_assert_eq!(wk.unwrap(&item.unwrap(&seed, bucket)?), envelope.clone());
        // A flipped byte is refused (tag) or changes the envelope, whose AEAD refuses it.
        let mut b = *item.as_bytes();
        b[at] ^= 0x04;
        match Item::from_bytes(&b)?.unwrap(&seed, bucket) {
            Err(e) => prop_assert_eq!(e, RouteError::DecryptFailed),
            Ok(p) => prop_assert_ne!(wk.unwrap(&p), envelope),
        }
    }

    #[test]
    fn cells_round_trip(
        home in any::<[u8; 8]>(),
        epoch in any::<u32>(),
        bucket in 0u16..256,
        slot in slot(),
        answer in bytes(ANSWER_LEN),
        item in item(),
        total in 1u8..=255,
        index in any::<u8>(),
        data in bytes(DIRECTORY_CHUNK_LEN),
    ) {
        let up = UpCell { home: RelayId::from_bytes(home), epoch, bucket, slot };
        let b = up.encode();
        prop_assert_eq!(b.len(), CELL_LEN);
        prop_assert_eq!(UpCell::decode(&b[..])?, up);
        let chunk = DirectoryChunk {
            index: index % total,
            total,
            data: data.try_into().unwrap_or([0; DIRECTORY_CHUNK_LEN]),
        };
        let down = DownCell {
            answer: answer.try_into().unwrap_or([0; ANSWER_LEN]),
            item,
            chunk,
        };
        let b = down.encode();
        prop_assert_eq!(b.len(), CELL_LEN);
        prop_assert_eq!(DownCell::decode(&b[..])?, down);
        prop_assert!(UpCell::decode(&b[..CELL_LEN - 1]).is_err());
    }

    #[test]
    fn link_frames_round_trip_at_fixed_sizes(
        capacity in 1usize..5,
        buckets in 1usize..5,
        tick in any::<u64>(),
        epoch in any::<u32>(),
        real in proptest::collection::vec(any::<bool>(), 5),
    ) {
        let cfg = LinkConfig { capacity, buckets };
        let items = |n: usize| (0..n).map(|_| Item::random()).collect::<Vec<_>>();
        let frames = [
            LinkFrame::Slots(SlotBatch { tick, slots: (0..capacity).map(|_| Slot::random()).collect() }),
            LinkFrame::Replies(ReplyBatch {
                tick,
                answers: vec![[7; ANSWER_LEN]; capacity],
                items: if tick % 2 == 1 { items(capacity) } else { vec![] },
            }),
            LinkFrame::Stream(StreamBatch { tick, epoch, items: items(buckets) }),
            LinkFrame::Forward(ForwardBatch {
                tick,
                blobs: real[..capacity].iter().map(|&r| r.then(InnerBlob::random)).collect(),
            }),
            LinkFrame::ForwardAnswers(ForwardAnswers {
                tick,
                answers: (0..capacity).map(|_| InnerAnswer::random()).collect(),
            }),
        ];
        for f in &frames {
            let b = f.encode(&cfg)?;
            let (kind, len) = read_frame_header(&b, &cfg)?;
            prop_assert_eq!(kind, f.kind());
            prop_assert_eq!(len + 5, b.len());
            prop_assert_eq!(&LinkFrame::decode(&b, &cfg)?, f);
            // The same kind with other contents has the same size.
            prop_assert_eq!(f.encode(&cfg)?.len(), b.len());
            let mut long = b.clone();
            long.push(0);
            prop_assert!(LinkFrame::decode(&long, &cfg).is_err());
            prop_assert!(LinkFrame::decode(&b[..b.len() - 1], &cfg).is_err());
            let other = LinkConfig { capacity: capacity + 1, buckets: buckets + 1 };
            prop_assert!(LinkFrame::decode(&b, &other).is_err());
        }
    }

    #[test]
    fn link_hellos_round_trip(
        relay in any::<[u8; 8]>(),
        tick_micros in 1u32..,
        tick in any::<u64>(),
        capacity in 1u16..=4096,
        buckets in 1u16..=256,
        epoch_ticks in 1u32..,
        flag_bits in 1u8..=8,
    ) {
        let h = LinkHello {
            relay: RelayId::from_bytes(relay),
            role: LinkRole::Both,
            tick_micros,
            tick,
            capacity,
            buckets,
            epoch_ticks,
            flag_bits,
        };
        let b = h.encode();
        prop_assert_eq!(b.len(), LINK_HELLO_LEN);
        prop_assert_eq!(LinkHello::decode(&b)?, h);
    }

    #[test]
    fn slot_keys_and_directory_updates_round_trip(
        epoch in any::<u32>(),
        tick in any::<u64>(),
        tick_in_epoch in 0u32..36_000,
        buckets in 1u16..=256,
        flag_bits in 1u8..=8,
        keys in 0usize..=2,
    ) {
        let (_, pkcs8, fp) = relay();
        let id = RelayId::of_fingerprint(fp);
        let slot_keys = (0..keys)
            .map(|i| SlotKeyPair::generate(epoch.wrapping_add(i as u32)).announce(id, pkcs8))
            .collect::<Result<Vec<SlotKey>, _>>()?;
        for k in &slot_keys {
            prop_assert_eq!(&SlotKey::decode(&k.encode())?, k);
        }
        let u = DirectoryUpdate {
            tick, epoch, tick_in_epoch, epoch_ticks: 36_000, buckets, flag_bits, slot_keys,
        };
        let f = LinkFrame::Directory(u);
        let cfg = LinkConfig { capacity: 1, buckets: 1 };
        let b = f.encode(&cfg)?;
        prop_assert_eq!(b.len(), 5 + hum_shared::route::DIRECTORY_UPDATE_LEN);
        prop_assert_eq!(LinkFrame::decode(&b, &cfg)?, f);
    }

    #[test]
    fn directories_round_trip_whole_and_in_chunks(
        tick in any::<u64>(),
        single in any::<bool>(),
        n in 0usize..4,
        order in any::<u64>(),
    ) {
        let (cert, pkcs8, fp) = relay();
        let id = RelayId::of_fingerprint(fp);
        let entry = RelayEntry {
            address: format!("hum://127.0.0.1:7667#{fp}").parse().map_err(|_| RouteError::Internal)?,
            certificate: cert.clone(),
            buckets: 64,
            epoch_ticks: 36_000,
            flag_bits: 5,
            epoch: 9,
            tick_in_epoch: 3,
            slot_keys: vec![SlotKeyPair::generate(9).announce(id, pkcs8)?],
        };
        let dir = Directory { tick, single, clients: n as u32, relays: vec![entry; n] };
        prop_assert_eq!(Directory::decode(&dir.encode()?)?, dir.clone());
        let hello = Hello {
            tick_micros: 100_000,
            ttl_secs: 604_800,
            tick,
            relay: ENTRY,
            directory: dir.clone(),
        };
        prop_assert_eq!(Hello::decode(&hello.encode()?)?, hello);
        let mut chunks = dir.chunks()?;
        // Any order of arrival reassembles it, once.
        let len = chunks.len();
        chunks.rotate_left((order as usize) % len);
        let mut r = DirectoryReassembler::new();
        let mut got = Vec::new();
        for c in chunks.iter().chain(chunks.iter()) {
            if let Some(d) = r.push(c)? {
                got.push(d);
            }
        }
        prop_assert_eq!(got, vec![dir]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        b in proptest::collection::vec(any::<u8>(), 0..2_600),
        header in any::<[u8; 5]>(),
    ) {
        let (home, dest) = rings();
        let _ = UpCell::decode(&b);
        let _ = DownCell::decode(&b);
        let _ = SlotKey::decode(&b);
        let _ = Hello::decode(&b);
        let _ = Hello::total_len(&b);
        let _ = Directory::decode(&b);
        let _ = LinkHello::decode(&b);
        let cfg = LinkConfig { capacity: 1, buckets: 2 };
        let _ = read_frame_header(&header, &cfg);
        let mut framed = header.to_vec();
        framed.extend_from_slice(&b);
        let _ = LinkFrame::decode(&framed, &cfg);
        let _ = LinkFrame::decode(&b, &cfg);
        let mut padded = b.clone();
        padded.resize(SLOT_LEN.max(INNER_BLOB_LEN), 0);
        let slot = Slot::from_bytes(&padded[..SLOT_LEN])?;
        prop_assert!(open_slot(home, ENTRY, 0, &slot).is_err() || padded[1..33] == [0; 32]);
        let _ = open_clear_slot(&slot);
        let blob = InnerBlob::from_bytes(&padded[..INNER_BLOB_LEN])?;
        prop_assert!(open_inner(dest, HOME, &blob).is_err());
        let (_, keys) = seal(&Kind::Dummy, &Request::None, 0)?;
        let mut answer = [0u8; ANSWER_LEN];
        answer.copy_from_slice(&padded[..ANSWER_LEN]);
        prop_assert!(keys.open_answer(&answer).is_err());
        let mut r = DirectoryReassembler::new();
        let chunk = DirectoryChunk {
            index: header[0],
            total: header[1],
            data: {
                let mut d = [0u8; DIRECTORY_CHUNK_LEN];
                let n = b.len().min(DIRECTORY_CHUNK_LEN);
                d[..n].copy_from_slice(&b[..n]);
                d
            },
        };
        let _ = r.push(&chunk);
    }
}

/// Two deposits of the same envelope (a re-send: a fresh tag secret and a fresh wrap)
/// share no 8-byte run anywhere a relay or an observer sees them: in the slot, in the
/// inner blob, or in the items the destination stores. And the same deposit sealed
/// twice shares none in its slots.
#[test]
fn two_seals_of_one_deposit_share_no_byte_pattern() -> Result<(), RouteError> {
    let (home, dest) = rings();
    let bob = DeliverySecret::from_bytes([5; 32]);
    let tk = TagKey::from_bytes([6; 32]);
    let envelope = Envelope::from_bytes(&[0x33; ENVELOPE_LEN])?;
    let attempt = |n: u64| -> Result<Deposit, RouteError> {
        let seed = tk.secret(EPOCH + 1, n).seed();
        let bucket = bob.bucket(EPOCH + 1, 64)?;
        let flag = bob.detection_key(EPOCH + 1).flag(&seed.copy_tag(bucket));
        Deposit::new(
            EPOCH + 1,
            &[Copy { bucket, flag }],
            seed,
            bob.wrap_key(EPOCH + 1).wrap(&envelope),
        )
    };
    let (a, b) = (attempt(0)?, attempt(1)?);
    let seen = |d: &Deposit| -> Result<Vec<Vec<u8>>, RouteError> {
        let (slot, _) = seal(&Kind::Forward(d.clone()), &Request::None, 3)?;
        let opened = open_slot(home, ENTRY, 3, &slot)?;
        let OpenedDeposit::Forward { blob, .. } = opened.deposit else {
            return Err(RouteError::Internal);
        };
        let stored = open_inner(dest, HOME, &blob)?.deposit.bucket_copies();
        let mut out = vec![slot.as_bytes()[1..].to_vec(), blob.as_bytes()[4..].to_vec()];
        out.extend(stored.iter().map(|c| c.item.as_bytes().to_vec()));
        out.push(d.payload().as_bytes().to_vec());
        Ok(out)
    };
    let (sa, sb) = (seen(&a)?, seen(&b)?);
    for x in &sa {
        for y in &sb {
            assert!(!shares_run(x, y, 8), "a re-send repeats an 8-byte run");
        }
    }
    // The very same deposit sealed twice: the slots still share nothing.
    let (s1, _) = seal(&Kind::Local(a.clone()), &Request::None, 3)?;
    let (s2, _) = seal(&Kind::Local(a), &Request::None, 3)?;
    assert!(!shares_run(&s1.as_bytes()[1..], &s2.as_bytes()[1..], 8));
    Ok(())
}

fn shares_run(x: &[u8], y: &[u8], n: usize) -> bool {
    let runs: std::collections::HashSet<&[u8]> = x.windows(n).collect();
    y.windows(n).any(|w| runs.contains(w))
}

/// A dummy slot and a real slot have the same length, the same key byte, and no byte
/// position a relay without the slot key could tell them apart by: across many slots,
/// every position is uniformly distributed in both kinds (but the always-clear top bit of
/// the ephemeral public key).
#[test]
fn dummy_and_real_slots_are_indistinguishable_without_the_key() -> Result<(), RouteError> {
    const N: usize = 256;
    let (home, _) = rings();
    let real = Deposit::new(
        EPOCH,
        &[Copy { bucket: 1, flag: 0 }],
        TagSecret::from_bytes([1; 32]).seed(),
        WrappedEnvelope::from_bytes(&[0u8; WRAPPED_LEN])?,
    )?;
    let mut high = [[0usize; SLOT_LEN]; 2];
    let mut zeros = [0usize; 2];
    for _ in 0..N {
        for (k, kind) in [Kind::Dummy, Kind::Local(real.clone())].iter().enumerate() {
            let (slot, _) = seal(kind, &Request::None, 1)?;
            let b = slot.as_bytes();
            assert_eq!(b.len(), SLOT_LEN);
            assert_eq!(b[0], (EPOCH % 256) as u8);
            // Without the key both fail alike.
            assert_eq!(
                open_slot(&rings().1, ENTRY, 1, &slot).err(),
                Some(RouteError::DecryptFailed)
            );
            assert!(open_slot(home, ENTRY, 1, &slot).is_ok());
            for (i, &x) in b.iter().enumerate().skip(1) {
                // An X25519 public key's top bit is always clear (in both kinds alike):
                // count the next bit there.
                let x = if i == 32 { x << 1 } else { x };
                high[k][i] += usize::from(x >= 128);
                zeros[k] += usize::from(x == 0);
            }
        }
    }
    // Binomial(256, 1/2): mean 128, sd 8; 6 sd either side.
    for (k, counts) in high.iter().enumerate() {
        for (i, &c) in counts.iter().enumerate().skip(1) {
            assert!((80..=176).contains(&c), "kind {k} position {i}: {c} of {N}");
        }
    }
    // Zero bytes: 256 * 1244 / 256 = 1244 expected each; sd about 35.
    for z in zeros {
        assert!((1_030..=1_460).contains(&z), "{z} zero bytes");
    }
    Ok(())
}

/// An entry relay's substituted slot key (its own key, signed with its own certificate,
/// put in the home relay's directory entry) is refused by a client pinning the home.
#[test]
fn an_entry_relays_substituted_slot_key_is_refused() -> Result<(), RouteError> {
    let (cert, pkcs8, fp) = relay();
    let home = RelayId::of_fingerprint(fp);
    let genuine = SlotKeyPair::generate(9);
    let mut entry = RelayEntry {
        address: format!("hum://127.0.0.1:7667#{fp}")
            .parse()
            .map_err(|_| RouteError::Internal)?,
        certificate: cert.clone(),
        buckets: 64,
        epoch_ticks: 36_000,
        flag_bits: 8,
        epoch: 9,
        tick_in_epoch: 0,
        slot_keys: vec![genuine.announce(home, pkcs8)?],
    };
    let ok = entry.verified_slot_key(9, fp)?;
    assert_eq!(ok.public(), genuine.public());
    // The entry relay's own identity.
    let made = rcgen::generate_simple_self_signed(vec!["hum-relay".to_owned()])
        .map_err(|_| RouteError::Internal)?;
    let its_cert = made.cert.der().to_vec();
    let its_key = made.signing_key.serialize_der();
    let its_pair = SlotKeyPair::generate(9);
    entry.slot_keys = vec![its_pair.announce(home, &its_key)?];
    assert_eq!(
        entry.verified_slot_key(9, fp).err(),
        Some(RouteError::BadSignature)
    );
    entry.certificate = its_cert;
    assert_eq!(
        entry.verified_slot_key(9, fp).err(),
        Some(RouteError::CertificateMismatch)
    );
    // A genuine announcement with its public key swapped.
    let mut bytes = genuine.announce(home, pkcs8)?.encode();
    bytes[12..44].copy_from_slice(its_pair.public().as_bytes());
    assert_eq!(
        SlotKey::decode(&bytes)?.verify(cert, fp).err(),
        Some(RouteError::BadSignature)
    );
    Ok(())
}

//! Criterion benchmarks of hum/2's per-slot work, which sets the relays' CPU budget:
//! X25519 alone, sealing a slot (client), opening it (home relay), opening an inner blob
//! (destination relay), rewrapping an item per bucket, and sealing the answer.
#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hum_shared::route::{
    Copy, Deposit, DepositOutcome, DepositReply, Item, OpenedDeposit, RelayId, Request,
    RequestOutcome, SlotDeposit, SlotKeyring, TagKey, WrappedEnvelope, open_inner, open_slot,
    seal_slot,
};
use x25519_dalek::{PublicKey, StaticSecret};

const ENTRY: RelayId = RelayId::from_bytes([1; 8]);
const HOME: RelayId = RelayId::from_bytes([2; 8]);
const DEST: RelayId = RelayId::from_bytes([3; 8]);

fn deposit(epoch: u32) -> Deposit {
    Deposit::new(
        epoch,
        &[Copy { bucket: 7, flag: 3 }],
        TagKey::generate().secret(epoch, 0).seed(),
        WrappedEnvelope::random(),
    )
    .unwrap()
}

fn route(c: &mut Criterion) {
    let a = StaticSecret::from([7u8; 32]);
    let b = PublicKey::from(&StaticSecret::from([9u8; 32]));
    c.bench_function("route/x25519", |bench| {
        bench.iter(|| black_box(a.diffie_hellman(black_box(&b))))
    });

    let mut home = SlotKeyring::new();
    home.advance(10);
    let mut dest = SlotKeyring::new();
    dest.advance(10);
    let home_key = home.by_epoch(10).unwrap().verified(HOME);
    let dest_key = dest.by_epoch(10).unwrap().verified(DEST);
    let d = deposit(10);

    c.bench_function("route/seal_slot_dummy", |bench| {
        bench.iter(|| {
            black_box(seal_slot(&home_key, ENTRY, 5, SlotDeposit::Dummy, &Request::None).unwrap())
        })
    });
    c.bench_function("route/seal_slot_forward", |bench| {
        bench.iter(|| {
            let deposit = SlotDeposit::Forward {
                dest: &dest_key,
                deposit: &d,
            };
            black_box(seal_slot(&home_key, ENTRY, 5, deposit, &Request::None).unwrap())
        })
    });

    let (forward_slot, _) = seal_slot(
        &home_key,
        ENTRY,
        5,
        SlotDeposit::Forward {
            dest: &dest_key,
            deposit: &d,
        },
        &Request::None,
    )
    .unwrap();
    let (dummy_slot, _) =
        seal_slot(&home_key, ENTRY, 5, SlotDeposit::Dummy, &Request::None).unwrap();
    c.bench_function("route/open_slot_home", |bench| {
        bench.iter(|| black_box(open_slot(&home, ENTRY, 5, black_box(&dummy_slot)).unwrap()))
    });
    c.bench_function("route/open_and_answer_slot_home", |bench| {
        bench.iter(|| {
            let opened = open_slot(&home, ENTRY, 5, black_box(&dummy_slot)).unwrap();
            black_box(opened.replier.seal(
                &DepositReply::Outcome(DepositOutcome::None),
                &RequestOutcome::None,
                None,
            ))
        })
    });

    let OpenedDeposit::Forward { blob, .. } =
        open_slot(&home, ENTRY, 5, &forward_slot).unwrap().deposit
    else {
        panic!("not a forward")
    };
    c.bench_function("route/open_inner_destination", |bench| {
        bench.iter(|| black_box(open_inner(&dest, HOME, black_box(&blob)).unwrap()))
    });

    let seed = TagKey::generate().secret(10, 0).seed();
    let payload = WrappedEnvelope::random();
    c.bench_function("route/item_rewrap", |bench| {
        bench.iter(|| black_box(Item::rewrap(&seed, black_box(7), &payload)))
    });
    c.bench_function("route/deposit_bucket_copies_1", |bench| {
        bench.iter_batched(
            || deposit(10),
            |d| black_box(d.bucket_copies()),
            BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = route
}
criterion_main!(benches);

//! Criterion benchmarks of the cryptographic core: one envelope sealed and opened (1:1 and
//! group), one DH ratchet step, one handshake.
#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hum_shared::crypto::{Fingerprint, GroupState, Identity, Invite, Session};

const NOW: u64 = 1_800_000_000;

fn pair() -> (Identity, Identity, Session, Session) {
    let alice = Identity::generate();
    let bob = Identity::generate();
    let (invite, secret) = alice
        .create_invite("hum://127.0.0.1:7447#ff", 600, NOW)
        .unwrap();
    let (b, first) = Session::initiate(&bob, &invite, b"hello").unwrap();
    let (a, _, _) = Session::respond(&alice, &secret, &first).unwrap();
    (alice, bob, a, b)
}

fn session(c: &mut Criterion) {
    let (alice, bob, mut a, mut b) = pair();
    let text = vec![0x42u8; Session::PLAINTEXT_CAPACITY];

    // Sealing on a throwaway pair: thousands of messages in one chain would exceed the
    // receiver's skip bound for the benchmarks below.
    let (_, _, mut sealer, _) = pair();
    c.bench_function("session/seal", |bench| {
        bench.iter(|| black_box(sealer.seal(black_box(&text)).unwrap()))
    });

    // Same chain, no DH step: Bob opens a message from a chain he already follows.
    let m0 = b.seal(b"prime").unwrap();
    a.open(&m0).unwrap();
    let m1 = b.seal(&text).unwrap();
    c.bench_function("session/open", |bench| {
        bench.iter_batched(
            || a.clone(),
            |mut a| black_box(a.open(&m1).unwrap()),
            BatchSize::SmallInput,
        )
    });

    // A message that starts a new chain: the receiver does a full DH ratchet step
    // (two X25519 and two root KDFs, a new key pair) before decrypting.
    let ma = a.seal(&text).unwrap();
    c.bench_function("session/open_with_dh_ratchet_step", |bench| {
        bench.iter_batched(
            || b.clone(),
            |mut b| black_box(b.open(&ma).unwrap()),
            BatchSize::SmallInput,
        )
    });

    let (invite, secret) = alice
        .create_invite("hum://127.0.0.1:7447#ff", 600, NOW)
        .unwrap();
    c.bench_function("handshake/initiate+respond", |bench| {
        bench.iter(|| {
            let (s, first) = Session::initiate(&bob, &invite, b"hello").unwrap();
            let (r, _, _) = Session::respond(&alice, &secret, &first).unwrap();
            black_box((s, r))
        })
    });

    let code = invite.encode();
    c.bench_function("invite/decode", |bench| {
        bench.iter(|| black_box(Invite::decode(black_box(&code), NOW).unwrap()))
    });
}

fn group(c: &mut Criterion) {
    let mut alice = GroupState::create();
    let (alice_fp, bob_fp) = (
        Fingerprint::from_bytes([1; 32]),
        Fingerprint::from_bytes([2; 32]),
    );
    let mut bob = GroupState::from_distribution(&alice.distribution(), &alice_fp).unwrap();
    alice
        .process_distribution(&bob.distribution(), &bob_fp)
        .unwrap();
    let text = vec![0x42u8; hum_shared::crypto::GroupSender::PLAINTEXT_CAPACITY];

    c.bench_function("group/seal", |bench| {
        bench.iter(|| black_box(bob.seal(black_box(&text)).unwrap()))
    });
    let m = alice.seal(&text).unwrap();
    c.bench_function("group/open", |bench| {
        bench.iter_batched(
            || bob.clone(),
            |mut bob| black_box(bob.open(&m).unwrap()),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, session, group);
criterion_main!(benches);

//! 1:1 sessions: handshake, ratchet, rollback, replay, forward secrecy and post-compromise
//! security, mailboxes, serialization.

use hum_shared::crypto::{
    CryptoError, ENVELOPE_LEN, Envelope, Identity, Invite, Session, epoch_at, safety_number,
};
use proptest::prelude::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NOW: u64 = 1_800_000_000;

struct Pair {
    alice: Identity,
    bob: Identity,
    a: Session,
    b: Session,
}

/// Alice invites, Bob accepts with "hello", Alice responds.
fn pair() -> Result<Pair, Box<dyn std::error::Error>> {
    let alice = Identity::generate();
    let bob = Identity::generate();
    let (invite, secret) = alice.create_invite("hum://127.0.0.1:7447#ff", 600, NOW)?;
    let invite = Invite::decode(&invite.encode(), NOW)?;
    let (b, first) = Session::initiate(&bob, &invite, b"hello")?;
    assert_eq!(first.as_bytes().len(), ENVELOPE_LEN);
    let (a, who, text) = Session::respond(&alice, &secret, &first)?;
    assert_eq!(who, bob.public());
    assert_eq!(text, b"hello");
    Ok(Pair { alice, bob, a, b })
}

/// Each direction has its own hum/2 tag key, the same on both sides.
#[test]
fn tag_keys_pair_up_per_direction() -> TestResult {
    let Pair { a, b, .. } = pair()?;
    assert_eq!(a.send_tag_key(), b.receive_tag_key());
    assert_eq!(b.send_tag_key(), a.receive_tag_key());
    assert_ne!(a.send_tag_key(), a.receive_tag_key());
    Ok(())
}

#[test]
fn handshake_and_both_directions() -> TestResult {
    let Pair {
        alice,
        bob,
        mut a,
        mut b,
    } = pair()?;
    assert_eq!(a.peer(), &bob.public());
    assert_eq!(b.peer(), &alice.public());
    assert_eq!(
        a.safety_number(&alice.public()),
        b.safety_number(&bob.public())
    );
    assert_eq!(
        a.safety_number(&alice.public()),
        safety_number(&bob.public(), &alice.public())
    );
    // Bob may keep talking before Alice answers.
    let m1 = b.seal(b"are you there")?;
    assert_eq!(a.open(&m1)?, b"are you there");
    for i in 0..5u8 {
        let m = a.seal(&[i; 100])?;
        assert_eq!(b.open(&m)?, vec![i; 100]);
        let m = b.seal(&[i; 7])?;
        assert_eq!(a.open(&m)?, vec![i; 7]);
    }
    Ok(())
}

#[test]
fn capacities_are_exact() -> TestResult {
    let alice = Identity::generate();
    let bob = Identity::generate();
    let (invite, secret) = alice.create_invite("r", 600, NOW)?;
    let too_long = vec![1u8; Session::INITIAL_PLAINTEXT_CAPACITY + 1];
    assert!(matches!(
        Session::initiate(&bob, &invite, &too_long),
        Err(CryptoError::PlaintextTooLong { .. })
    ));
    let full = vec![2u8; Session::INITIAL_PLAINTEXT_CAPACITY];
    let (mut b, first) = Session::initiate(&bob, &invite, &full)?;
    let (mut a, _, text) = Session::respond(&alice, &secret, &first)?;
    assert_eq!(text, full);
    let full = vec![3u8; Session::PLAINTEXT_CAPACITY];
    assert_eq!(b.open(&a.seal(&full)?)?, full);
    assert!(a.seal(&[0u8; Session::PLAINTEXT_CAPACITY + 1]).is_err());
    assert_eq!(a.open(&b.seal(b"")?)?, b"");
    Ok(())
}

#[test]
fn handshake_rejects_wrong_invite_and_tampering() -> TestResult {
    let alice = Identity::generate();
    let bob = Identity::generate();
    let (invite, secret) = alice.create_invite("r", 600, NOW)?;
    let (_other_invite, other_secret) = alice.create_invite("r", 600, NOW)?;
    let (_, first) = Session::initiate(&bob, &invite, b"hi")?;
    assert_eq!(
        Session::respond(&alice, &other_secret, &first).err(),
        Some(CryptoError::DecryptFailed)
    );
    let mallory = Identity::generate();
    assert!(Session::respond(&mallory, &secret, &first).is_err());
    for at in [0, 40, 200, 300, ENVELOPE_LEN - 1] {
        let mut bytes = *first.as_bytes();
        bytes[at] ^= 1;
        let tampered = Envelope::from_bytes(&bytes)?;
        assert!(
            Session::respond(&alice, &secret, &tampered).is_err(),
            "flip at {at}"
        );
    }
    Ok(())
}

/// A session restored from a backup (or a second process on the same profile) seals again
/// with the same message key: the body nonce is fresh, so the two ciphertexts share no
/// keystream (the zero padding would otherwise hand it over) and no Poly1305 key.
#[test]
fn a_restored_session_never_repeats_a_nonce() -> TestResult {
    let Pair { mut a, b, .. } = pair()?;
    let saved = a.to_bytes()?;
    let mut restored = Session::from_bytes(&saved)?;
    let mut cloned = a.clone();
    let first = a.seal(b"same words")?;
    let second = restored.seal(b"same words")?;
    let third = cloned.seal(b"same words")?;
    // Layout: header nonce (24), header (56), body nonce (24), body.
    let all = [first.as_bytes(), second.as_bytes(), third.as_bytes()];
    for (i, x) in all.iter().enumerate() {
        for y in &all[i + 1..] {
            assert_ne!(x[..24], y[..24], "header nonces repeat");
            assert_ne!(x[80..104], y[80..104], "body nonces repeat");
            let same = x[104..]
                .iter()
                .zip(&y[104..])
                .filter(|(p, q)| p == q)
                .count();
            assert!(
                same < 20,
                "{same} of 792 body bytes equal: keystream reused"
            );
        }
    }
    // The peer opens each (on its own copy: the second is the same message number).
    for m in [&first, &second, &third] {
        let mut reader = b.clone();
        assert_eq!(reader.open(m)?, b"same words");
    }
    Ok(())
}

#[test]
fn replay_tamper_and_rollback() -> TestResult {
    let Pair { mut a, mut b, .. } = pair()?;
    let m1 = a.seal(b"one")?;
    let m2 = a.seal(b"two")?;
    // Tampering anywhere fails, and leaves the state able to open the real message.
    for at in [0, 30, 79, 80, 103, 104, 500, ENVELOPE_LEN - 1] {
        let mut bytes = *m1.as_bytes();
        bytes[at] ^= 0x80;
        let before = b.to_bytes()?;
        assert_eq!(
            b.open(&Envelope::from_bytes(&bytes)?),
            Err(CryptoError::DecryptFailed)
        );
        assert_eq!(*b.to_bytes()?, *before, "state changed after a failed open");
    }
    assert_eq!(b.open(&m2)?, b"two");
    assert_eq!(b.open(&m1)?, b"one");
    // Replays are rejected.
    assert_eq!(b.open(&m1), Err(CryptoError::DecryptFailed));
    assert_eq!(b.open(&m2), Err(CryptoError::DecryptFailed));
    // Our own message does not open on our side.
    assert_eq!(a.open(&m1), Err(CryptoError::DecryptFailed));
    Ok(())
}

#[test]
fn skip_bound_is_enforced() -> TestResult {
    let Pair { mut a, mut b, .. } = pair()?;
    let mut last = a.seal(b"x")?;
    for _ in 0..hum_shared::crypto::MAX_SKIP + 1 {
        last = a.seal(b"x")?;
    }
    assert_eq!(b.open(&last), Err(CryptoError::DecryptFailed));
    Ok(())
}

#[test]
fn forward_secrecy() -> TestResult {
    let Pair { mut a, mut b, .. } = pair()?;
    let old: Vec<Envelope> = (0..3).map(|i| a.seal(&[i])).collect::<Result<_, _>>()?;
    for (i, m) in old.iter().enumerate() {
        assert_eq!(b.open(m)?, vec![i as u8]);
    }
    // Leak Bob's state now: it cannot open anything he already received.
    let mut leaked = Session::from_bytes(&b.to_bytes()?)?;
    for m in &old {
        assert_eq!(leaked.open(m), Err(CryptoError::DecryptFailed));
    }
    Ok(())
}

#[test]
fn post_compromise_security() -> TestResult {
    let Pair { mut a, mut b, .. } = pair()?;
    assert_eq!(b.open(&a.seal(b"warm up")?)?, b"warm up");
    // Leak Alice's state.
    let leaked_bytes = a.to_bytes()?;
    // One round trip: Bob then Alice then Bob, each with a fresh DH ratchet key.
    assert_eq!(a.open(&b.seal(b"b1")?)?, b"b1");
    assert_eq!(b.open(&a.seal(b"a1")?)?, b"a1");
    let after = b.seal(b"secret after healing")?;
    let mut leaked = Session::from_bytes(&leaked_bytes)?;
    assert_eq!(leaked.open(&after), Err(CryptoError::DecryptFailed));
    assert_eq!(a.open(&after)?, b"secret after healing");
    Ok(())
}

#[test]
fn mailboxes_match_and_rotate() -> TestResult {
    let Pair { a, b, .. } = pair()?;
    let e = epoch_at(NOW);
    assert_eq!(a.send_mailbox(e), b.receive_capability(e).mailbox_id());
    assert_eq!(b.send_mailbox(e), a.receive_capability(e).mailbox_id());
    assert_ne!(a.send_mailbox(e), b.send_mailbox(e));
    assert_ne!(a.send_mailbox(e), a.send_mailbox(e + 1));
    Ok(())
}

#[test]
fn serialization_round_trip_and_debug() -> TestResult {
    let Pair { mut a, b, .. } = pair()?;
    let bytes = b.to_bytes()?;
    let mut b2 = Session::from_bytes(&bytes)?;
    assert_eq!(b2.open(&a.seal(b"after reload")?)?, b"after reload");
    assert!(Session::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(Session::from_bytes(&[]).is_err());
    let dbg = format!("{b2:?}");
    assert!(dbg.starts_with("Session"));
    assert!(!dbg.contains("rk") && dbg.len() < 80);
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    /// Seal one message in direction (true = Alice to Bob).
    Send(bool),
    /// Deliver the queued message at this index (mod queue length) in that direction.
    Deliver(bool, usize),
    /// Drop a queued message.
    Drop(bool, usize),
    /// Deliver again something already delivered (must be rejected).
    Replay(bool, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(Op::Send),
        4 => (any::<bool>(), any::<usize>()).prop_map(|(d, i)| Op::Deliver(d, i)),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(d, i)| Op::Drop(d, i)),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(d, i)| Op::Replay(d, i)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_interleavings(ops in proptest::collection::vec(op(), 1..60)) {
        let Pair { mut a, mut b, .. } = pair().map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Queues of (envelope, plaintext) in flight, and what was delivered.
        let mut queue: [Vec<(Envelope, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
        let mut delivered: [Vec<Envelope>; 2] = [Vec::new(), Vec::new()];
        let mut counter = 0u32;
        for op in ops {
            match op {
                Op::Send(ab) => {
                    counter += 1;
                    let text = counter.to_be_bytes().to_vec();
                    let sender = if ab { &mut a } else { &mut b };
                    let env = sender.seal(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    queue[usize::from(ab)].push((env, text));
                }
                Op::Deliver(ab, i) => {
                    let q = &mut queue[usize::from(ab)];
                    if q.is_empty() { continue; }
                    let (env, text) = q.remove(i % q.len());
                    let receiver = if ab { &mut b } else { &mut a };
                    prop_assert_eq!(receiver.open(&env), Ok(text));
                    delivered[usize::from(ab)].push(env);
                }
                Op::Drop(ab, i) => {
                    let q = &mut queue[usize::from(ab)];
                    if !q.is_empty() { q.remove(i % q.len()); }
                }
                Op::Replay(ab, i) => {
                    let d = &delivered[usize::from(ab)];
                    if d.is_empty() { continue; }
                    let env = d[i % d.len()].clone();
                    let receiver = if ab { &mut b } else { &mut a };
                    prop_assert_eq!(receiver.open(&env), Err(CryptoError::DecryptFailed));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes never open and never change the session.
    #[test]
    fn random_envelopes_are_rejected_without_state_change(
        bytes in proptest::collection::vec(any::<u8>(), ENVELOPE_LEN)
    ) {
        let Pair { mut a, .. } = pair().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let env = Envelope::from_bytes(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let before = a.to_bytes()?;
        prop_assert_eq!(a.open(&env), Err(CryptoError::DecryptFailed));
        prop_assert_eq!(&*before, &*a.to_bytes()?);
    }
}

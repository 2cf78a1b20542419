//! Groups: sender keys, signatures, membership changes.

use hum_shared::crypto::{
    CryptoError, ENVELOPE_LEN, Fingerprint, GroupSender, GroupState, SenderKeyDistribution,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

// The members' identity fingerprints, as the engine knows them.
const ALICE: Fingerprint = fp(1);
const BOB: Fingerprint = fp(2);
const CAROL: Fingerprint = fp(3);

const fn fp(n: u8) -> Fingerprint {
    Fingerprint::from_bytes([n; 32])
}

/// Alice creates a group with Bob and Carol; everyone exchanges distributions.
fn three() -> Result<(GroupState, GroupState, GroupState), CryptoError> {
    let mut alice = GroupState::create();
    let mut bob = GroupState::from_distribution(&alice.distribution(), &ALICE)?;
    let mut carol = GroupState::from_distribution(&alice.distribution(), &ALICE)?;
    alice.process_distribution(&bob.distribution(), &BOB)?;
    alice.process_distribution(&carol.distribution(), &CAROL)?;
    bob.process_distribution(&carol.distribution(), &CAROL)?;
    carol.process_distribution(&bob.distribution(), &BOB)?;
    Ok((alice, bob, carol))
}

#[test]
fn everyone_reads_everyone() -> TestResult {
    let (mut alice, mut bob, mut carol) = three()?;
    let m = alice.seal(b"hi all")?;
    assert_eq!(
        bob.open(&m)?,
        (alice.sender().member_id(), b"hi all".to_vec())
    );
    assert_eq!(carol.open(&m)?.1, b"hi all");
    assert_eq!(alice.open(&m), Err(CryptoError::OwnMessage));
    let m = carol.seal(b"from carol")?;
    assert_eq!(alice.open(&m)?.1, b"from carol");
    assert_eq!(bob.open(&m)?.1, b"from carol");
    assert_eq!(alice.mailbox(7), bob.capability(7).mailbox_id());
    assert_eq!(bob.members().len(), 2);
    Ok(())
}

#[test]
fn out_of_order_replay_and_capacity() -> TestResult {
    let (mut alice, mut bob, _) = three()?;
    let ms: Vec<_> = (0..5u8)
        .map(|i| alice.seal(&[i]))
        .collect::<Result<_, _>>()?;
    for i in [3usize, 0, 4, 1, 2] {
        assert_eq!(bob.open(&ms[i])?.1, vec![i as u8]);
    }
    // Each a duplicate now: told apart from what a key still to come might open.
    for m in &ms {
        assert_eq!(bob.open(m), Err(CryptoError::Replayed));
    }
    let full = vec![1u8; GroupSender::PLAINTEXT_CAPACITY];
    assert_eq!(bob.open(&alice.seal(&full)?)?.1, full);
    assert!(matches!(
        alice.seal(&[0u8; GroupSender::PLAINTEXT_CAPACITY + 1]),
        Err(CryptoError::PlaintextTooLong { .. })
    ));
    let mut bytes = *alice.seal(b"x")?.as_bytes();
    bytes[500] ^= 1;
    let before = bob.to_bytes()?;
    assert!(
        bob.open(&hum_shared::crypto::Envelope::from_bytes(&bytes)?)
            .is_err()
    );
    assert_eq!(*before, *bob.to_bytes()?);
    Ok(())
}

#[test]
fn added_member_cannot_read_earlier_messages() -> TestResult {
    let (mut alice, mut bob, _) = three()?;
    let before = alice.seal(b"before dave")?;
    assert_eq!(bob.open(&before)?.1, b"before dave");
    // Dave joins: Alice and Bob send him their current chain state.
    let mut dave = GroupState::from_distribution(&alice.distribution(), &ALICE)?;
    dave.process_distribution(&bob.distribution(), &BOB)?;
    // Older than the chain he was given: no key that comes later opens it.
    assert_eq!(dave.open(&before), Err(CryptoError::Replayed));
    let after = alice.seal(b"welcome dave")?;
    assert_eq!(dave.open(&after)?.1, b"welcome dave");
    Ok(())
}

#[test]
fn removed_member_cannot_read_later_messages() -> TestResult {
    let (mut alice, mut bob, mut carol) = three()?;
    let old_mailbox = alice.mailbox(1);
    // Alice removes Carol: she rotates and tells Bob only.
    let alice_new = alice.rotate()?;
    let bob_new = bob
        .process_distribution(&alice_new, &ALICE)?
        .ok_or("bob must answer a rotation with his new sender key")?;
    assert_eq!(alice.process_distribution(&bob_new, &BOB)?, None);
    assert_ne!(alice.mailbox(1), old_mailbox);
    assert_eq!(alice.mailbox(1), bob.mailbox(1));
    assert_eq!(bob.generation(), 1);

    let m = alice.seal(b"carol is gone")?;
    assert_eq!(bob.open(&m)?.1, b"carol is gone");
    assert_eq!(carol.open(&m), Err(CryptoError::DecryptFailed));
    let m = bob.seal(b"indeed")?;
    assert_eq!(alice.open(&m)?.1, b"indeed");
    assert_eq!(carol.open(&m), Err(CryptoError::DecryptFailed));
    // Carol's old distribution is refused.
    assert_eq!(
        alice.process_distribution(&carol.distribution(), &CAROL),
        Err(CryptoError::StaleDistribution)
    );
    Ok(())
}

#[test]
fn distributions_and_state_serialize_without_leaking() -> TestResult {
    let (alice, mut bob, _) = three()?;
    let dist = alice.distribution();
    let back = SenderKeyDistribution::from_bytes(&dist.to_bytes()?)?;
    assert_eq!(back, dist);
    assert!(SenderKeyDistribution::from_bytes(&dist.to_bytes()?[..10]).is_err());
    let mut restored = GroupState::from_bytes(&bob.to_bytes()?)?;
    let mut alice = alice;
    let m = alice.seal(b"after restore")?;
    assert_eq!(restored.open(&m)?.1, b"after restore");
    assert_eq!(bob.open(&m)?.1, b"after restore");
    // Debug output names no key material.
    let text = format!("{dist:?} {bob:?} {:?}", bob.sender());
    let raw = dist.to_bytes()?;
    for window in raw.windows(4).skip(1).step_by(4) {
        let as_list = format!("{window:?}").trim_matches(['[', ']']).to_owned();
        assert!(!text.contains(&as_list), "debug leaked {as_list}");
    }
    assert!(!text.to_lowercase().contains("chain"));
    Ok(())
}

/// A group state restored from a backup (or a second process on the same profile) seals
/// again with the same message key: the body nonce is fresh, so the two ciphertexts share
/// no keystream, and the reader opens either.
#[test]
fn a_restored_state_never_repeats_a_nonce() -> TestResult {
    let (mut alice, bob, _) = three()?;
    let saved = alice.to_bytes()?;
    let mut restored = GroupState::from_bytes(&saved)?;
    let first = alice.seal(b"same words")?;
    let second = restored.seal(b"same words")?;
    let (a, b) = (first.as_bytes(), second.as_bytes());
    // Layout: header nonce (24), header (52), body nonce (24), body.
    assert_ne!(a[..24], b[..24], "header nonces repeat");
    assert_ne!(a[76..100], b[76..100], "body nonces repeat");
    let same = a[100..]
        .iter()
        .zip(&b[100..])
        .filter(|(x, y)| x == y)
        .count();
    assert!(
        same < 20,
        "{same} of {} body bytes equal: keystream reused",
        ENVELOPE_LEN - 100
    );
    for m in [&first, &second] {
        let mut reader = GroupState::from_bytes(&bob.to_bytes()?)?;
        assert_eq!(reader.open(m)?.1, b"same words");
    }
    Ok(())
}

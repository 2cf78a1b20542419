//! Groups: sender keys, signatures, membership changes.

use hum_shared::crypto::{CryptoError, GroupSender, GroupState, SenderKeyDistribution};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Alice creates a group with Bob and Carol; everyone exchanges distributions.
fn three() -> Result<(GroupState, GroupState, GroupState), CryptoError> {
    let mut alice = GroupState::create();
    let mut bob = GroupState::from_distribution(&alice.distribution())?;
    let mut carol = GroupState::from_distribution(&alice.distribution())?;
    alice.process_distribution(&bob.distribution())?;
    alice.process_distribution(&carol.distribution())?;
    bob.process_distribution(&carol.distribution())?;
    carol.process_distribution(&bob.distribution())?;
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
    for m in &ms {
        assert_eq!(bob.open(m), Err(CryptoError::DecryptFailed));
    }
    let full = vec![1u8; GroupSender::PLAINTEXT_CAPACITY];
    assert_eq!(bob.open(&alice.seal(&full)?)?.1, full);
    assert!(matches!(
        alice.seal(&[0u8; GroupSender::PLAINTEXT_CAPACITY + 1]),
        Err(CryptoError::PlaintextTooLong { .. })
    ));
    let mut bytes = *alice.seal(b"x")?.as_bytes();
    bytes[500] ^= 1;
    let before = bob.to_bytes();
    assert!(
        bob.open(&hum_shared::crypto::Envelope::from_bytes(&bytes)?)
            .is_err()
    );
    assert_eq!(*before, *bob.to_bytes());
    Ok(())
}

#[test]
fn added_member_cannot_read_earlier_messages() -> TestResult {
    let (mut alice, mut bob, _) = three()?;
    let before = alice.seal(b"before dave")?;
    assert_eq!(bob.open(&before)?.1, b"before dave");
    // Dave joins: Alice and Bob send him their current chain state.
    let mut dave = GroupState::from_distribution(&alice.distribution())?;
    dave.process_distribution(&bob.distribution())?;
    assert_eq!(dave.open(&before), Err(CryptoError::DecryptFailed));
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
        .process_distribution(&alice_new)?
        .ok_or("bob must answer a rotation with his new sender key")?;
    assert_eq!(alice.process_distribution(&bob_new)?, None);
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
        alice.process_distribution(&carol.distribution()),
        Err(CryptoError::StaleDistribution)
    );
    Ok(())
}

#[test]
fn distributions_and_state_serialize_without_leaking() -> TestResult {
    let (alice, mut bob, _) = three()?;
    let dist = alice.distribution();
    let back = SenderKeyDistribution::from_bytes(&dist.to_bytes())?;
    assert_eq!(back, dist);
    assert!(SenderKeyDistribution::from_bytes(&dist.to_bytes()[..10]).is_err());
    let mut restored = GroupState::from_bytes(&bob.to_bytes())?;
    let mut alice = alice;
    let m = alice.seal(b"after restore")?;
    assert_eq!(restored.open(&m)?.1, b"after restore");
    assert_eq!(bob.open(&m)?.1, b"after restore");
    // Debug output names no key material.
    let text = format!("{dist:?} {bob:?} {:?}", bob.sender());
    let raw = dist.to_bytes();
    for window in raw.windows(4).skip(1).step_by(4) {
        let as_list = format!("{window:?}").trim_matches(['[', ']']).to_owned();
        assert!(!text.contains(&as_list), "debug leaked {as_list}");
    }
    assert!(!text.to_lowercase().contains("chain"));
    Ok(())
}

//! Entry points for fuzz targets (the `fuzzing` feature; no build of hum enables it): the
//! decoders of what the engine keeps in its store and of what peers send it. Each decodes
//! arbitrary bytes the way the engine does, and checks that whatever decodes re-encodes to
//! bytes that decode to the same value. They panic only on a broken invariant.

use hum_shared::crypto::{
    Fingerprint, GroupState, Identity, InviteSecret, PublicIdentity, SenderKeyDistribution,
    Session, StoreKey,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::records::{ContactRecord, RoomRecord};
use super::wire::{AppMessage, Hello, StoredMessage};

/// Decodes `bytes` as `T` (postcard, as the engine's `dec`); what decodes must re-encode
/// canonically.
fn round_trip<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let value: T = postcard::from_bytes(bytes).ok()?;
    let encoded = postcard::to_stdvec(&value).expect("a decoded record encodes");
    let again: T = postcard::from_bytes(&encoded).expect("a re-encoded record decodes");
    let twice = postcard::to_stdvec(&again).expect("a decoded record encodes");
    assert_eq!(encoded, twice, "re-encoding is not stable");
    Some(value)
}

/// Every decoder of a stored row, on the same bytes: contacts, rooms (with their group
/// state and members), message bodies, inbox entries, sessions, group states, invite
/// secrets, the identity and the key slot.
pub fn stored_rows(bytes: &[u8]) {
    if let Some(contact) = round_trip::<ContactRecord>(bytes) {
        let _ = PublicIdentity::from_bytes(&contact.identity);
    }
    if let Some(room) = round_trip::<RoomRecord>(bytes)
        && let Some(group) = &room.group
    {
        group_state(&group.state);
        for m in &group.members {
            let _ = PublicIdentity::from_bytes(&m.identity);
        }
    }
    let _ = round_trip::<StoredMessage>(bytes);
    if let Some(msg) = round_trip::<AppMessage>(bytes) {
        group_message(&msg);
    }
    if let Ok(session) = Session::from_bytes(bytes) {
        let encoded = session.to_bytes().expect("a decoded session encodes");
        let again = Session::from_bytes(&encoded).expect("a re-encoded session decodes");
        assert_eq!(
            *encoded,
            *again.to_bytes().expect("a decoded session encodes")
        );
    }
    group_state(bytes);
    if let Ok(secret) = InviteSecret::from_bytes(bytes) {
        assert_eq!(*secret.to_bytes(), *bytes);
    }
    if let Ok(identity) = Identity::from_bytes(bytes) {
        assert_eq!(*identity.to_bytes(), *bytes);
    }
    let _ = StoreKey::slot_params(bytes);
}

fn group_state(bytes: &[u8]) {
    if let Ok(state) = GroupState::from_bytes(bytes) {
        let encoded = state.to_bytes().expect("a decoded group state encodes");
        let again = GroupState::from_bytes(&encoded).expect("a re-encoded state decodes");
        assert_eq!(
            *encoded,
            *again.to_bytes().expect("a decoded state encodes")
        );
    }
}

/// What a peer's application message goes through before the engine acts on it: the
/// message itself, then for group control its sender keys, member identities and
/// endorsements, and a sender key applied to a group state (which must be left unchanged
/// when refused).
pub fn group_control(bytes: &[u8]) {
    let _ = round_trip::<Hello>(bytes);
    if let Some(msg) = round_trip::<AppMessage>(bytes) {
        let encoded = postcard::to_stdvec(&msg).expect("a decoded message encodes");
        let again: AppMessage = postcard::from_bytes(&encoded).expect("it decodes again");
        assert!(again == msg, "a message changed through a round trip");
        group_message(&msg);
    }
}

fn group_message(msg: &AppMessage) {
    let (dist, members, endorsement) = match msg {
        AppMessage::GroupInvite { dist, members, .. } => (Some(&dist[..]), &members[..], None),
        AppMessage::GroupUpdate { dist, members, .. } => {
            (dist.as_ref().map(|d| &d[..]), &members[..], None)
        }
        AppMessage::GroupKey {
            dist, endorsement, ..
        } => (Some(&dist[..]), &[][..], Some(&endorsement[..])),
        _ => return,
    };
    let identities: Vec<PublicIdentity> = members
        .iter()
        .filter_map(|m| PublicIdentity::from_bytes(&m.identity).ok())
        .collect();
    let Some(dist) = dist.and_then(|d| SenderKeyDistribution::from_bytes(d).ok()) else {
        return;
    };
    let encoded = dist.to_bytes().expect("a decoded distribution encodes");
    let again = SenderKeyDistribution::from_bytes(&encoded).expect("it decodes again");
    assert!(again == dist, "a distribution changed through a round trip");
    if let Some(signature) = endorsement {
        for public in &identities {
            let _ = dist.check_endorsement(public, signature);
        }
    }
    let owner = Fingerprint::from_bytes([1; 32]);
    if let Ok(mut state) = GroupState::from_distribution(&dist, &owner) {
        let before = state.to_bytes().expect("a group state encodes");
        if state
            .process_distribution(&dist, &Fingerprint::from_bytes([2; 32]))
            .is_err()
        {
            assert_eq!(*before, *state.to_bytes().expect("a group state encodes"));
        }
    }
}

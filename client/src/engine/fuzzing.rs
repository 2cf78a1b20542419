//! Entry points for fuzz targets (the `fuzzing` feature; no build of hum enables it, the
//! engine's unit tests compile them to check they cover every row the store holds): the
//! decoders of what the engine keeps in its store and of what peers send it. Each decodes
//! arbitrary bytes the way the engine does, and checks that whatever decodes re-encodes to
//! bytes that decode to the same value. They panic only on a broken invariant.

use hum_shared::crypto::{
    Envelope, Fingerprint, GroupState, Identity, InviteSecret, PublicIdentity,
    SenderKeyDistribution, Session, StoreKey,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::records::{
    ContactRecord, HomeRecord, InboxRecord, InviteCheckRecord, MessageRecord, OutboxHead,
    PartRecord, ReceiptOut, RoomRecord, UsedInviteRecord,
};
use super::wire::{AppMessage, ContactHello};

/// Decodes `bytes` as `T` (postcard, as the store's `dec`); what decodes must re-encode
/// canonically.
fn round_trip<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let value: T = postcard::from_bytes(bytes).ok()?;
    let encoded = postcard::to_stdvec(&value).expect("a decoded record encodes");
    let again: T = postcard::from_bytes(&encoded).expect("a re-encoded record decodes");
    let twice = postcard::to_stdvec(&again).expect("a decoded record encodes");
    assert_eq!(encoded, twice, "re-encoding is not stable");
    Some(value)
}

/// Every decoder of what an opened store row holds, on the same bytes; returns the names
/// of the records that decoded. Schema 2 seals each row whole (docs/PROTOCOL.md §6), so
/// these are the records of every table: contacts, rooms (with their group state and
/// members), history messages, outbox heads and envelopes, parts (and the split header
/// inside), receipts to send, inbox entries (and the message inside), used and watched
/// invites, mailbox cursors, homes, sessions and invite secrets; the meta values: the identity
/// and the key slot; and the rows of a schema 1 store as its migration reads them.
pub fn stored_rows(bytes: &[u8]) -> Vec<&'static str> {
    let mut decoded = Vec::new();
    let mut saw = |name: &'static str, ok: bool| {
        if ok {
            decoded.push(name);
        }
    };
    let contact = round_trip::<ContactRecord>(bytes);
    if let Some(contact) = &contact {
        let _ = PublicIdentity::from_bytes(&contact.identity);
    }
    saw("contact", contact.is_some());
    let room = round_trip::<RoomRecord>(bytes);
    if let Some(room) = &room {
        room_record(room);
    }
    saw("room", room.is_some());
    saw("message", round_trip::<MessageRecord>(bytes).is_some());
    saw("outbox head", round_trip::<OutboxHead>(bytes).is_some());
    let part = round_trip::<PartRecord>(bytes);
    if let Some(part) = &part {
        let _ = hum_shared::part_msg_id(&part.part);
        let mut reassembler = super::core::new_reassembler(part.part.len());
        let _ = reassembler.insert(&part.part);
    }
    saw("part", part.is_some());
    saw("receipt", round_trip::<ReceiptOut>(bytes).is_some());
    let inbox = round_trip::<InboxRecord>(bytes);
    if let Some(inbox) = &inbox {
        group_control(&inbox.payload);
    }
    saw("inbox", inbox.is_some());
    saw(
        "used invite",
        round_trip::<UsedInviteRecord>(bytes).is_some(),
    );
    let check = round_trip::<InviteCheckRecord>(bytes);
    if let Some(check) = &check {
        let _ = hum_shared::crypto::Invite::decode(&check.code, check.accepted_at);
        let _ = Envelope::from_bytes(&check.answer);
    }
    saw("invite check", check.is_some());
    let seconds = round_trip::<u64>(bytes).is_some();
    saw("cursor", seconds);
    saw("kept until", seconds);
    saw("home", round_trip::<HomeRecord>(bytes).is_some());
    let envelope = Envelope::from_bytes(bytes);
    if let Ok(envelope) = &envelope {
        assert_eq!(envelope.as_bytes()[..], *bytes);
    }
    saw("envelope", envelope.is_ok());
    let session = Session::from_bytes(bytes);
    if let Ok(session) = &session {
        let encoded = session.to_bytes().expect("a decoded session encodes");
        let again = Session::from_bytes(&encoded).expect("a re-encoded session decodes");
        assert_eq!(
            *encoded,
            *again.to_bytes().expect("a decoded session encodes")
        );
    }
    saw("session", session.is_ok());
    saw("group state", group_state(bytes));
    let secret = InviteSecret::from_bytes(bytes);
    if let Ok(secret) = &secret {
        assert_eq!(*secret.to_bytes(), *bytes);
    }
    saw("invite secret", secret.is_ok());
    let identity = Identity::from_bytes(bytes);
    if let Ok(identity) = &identity {
        assert_eq!(*identity.to_bytes(), *bytes);
    }
    saw("identity", identity.is_ok());
    saw("key slot", StoreKey::slot_params(bytes).is_ok());
    let (room, used, message) = super::store::fuzz_v1_rows(bytes);
    if let Some(room) = &room {
        room_record(
            &round_trip::<RoomRecord>(&postcard::to_stdvec(room).expect("a room encodes"))
                .expect("a migrated room decodes as schema 2"),
        );
    }
    saw("schema 1 room", room.is_some());
    if let Some(used) = &used {
        round_trip::<UsedInviteRecord>(&postcard::to_stdvec(used).expect("a record encodes"))
            .expect("a migrated used invite decodes as schema 2");
    }
    saw("schema 1 used invite", used.is_some());
    let migrated = message.is_some();
    if let Some(message) = message {
        let rec = MessageRecord {
            from_me: false,
            delivery: None,
            receipts_needed: 0,
            receipts: Vec::new(),
            body: message,
        };
        let back =
            round_trip::<MessageRecord>(&postcard::to_stdvec(&rec).expect("a message encodes"))
                .expect("a migrated message decodes as schema 2");
        assert_eq!(back, rec);
    }
    saw("schema 1 message", migrated);
    decoded
}

/// What the engine reads out of a room when it loads it: its group state and the
/// identities of its members.
fn room_record(room: &RoomRecord) {
    if let Some(group) = &room.group {
        let encoded = group
            .state
            .to_bytes()
            .expect("a decoded group state encodes");
        group_state(&encoded);
        for m in &group.members {
            let _ = PublicIdentity::from_bytes(&m.identity);
        }
    }
}

/// Whether `bytes` decode as a group state (which then re-encodes stably).
fn group_state(bytes: &[u8]) -> bool {
    let Ok(state) = GroupState::from_bytes(bytes) else {
        return false;
    };
    let encoded = state.to_bytes().expect("a decoded group state encodes");
    let again = GroupState::from_bytes(&encoded).expect("a re-encoded state decodes");
    assert_eq!(
        *encoded,
        *again.to_bytes().expect("a decoded state encodes")
    );
    true
}

/// What a peer's application message goes through before the engine acts on it: the
/// message itself, then for group control its sender keys, member identities and
/// endorsements, and a sender key applied to a group state (which must be left unchanged
/// when refused).
pub fn group_control(bytes: &[u8]) {
    let _ = round_trip::<ContactHello>(bytes);
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

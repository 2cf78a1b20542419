//! The records the engine keeps sealed in its store (docs/PROTOCOL.md §6).
//!
//! Each is postcard-encoded and sealed as a whole with the store key, bound to its table,
//! row and owner; the store's columns hold nothing else but row ids and keyed tags.

use hum_shared::RelayAddr;
use hum_shared::crypto::{Fingerprint, GroupId, GroupState, MemberId};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::wire::{StoredMessage, Uid};

/// An identity fingerprint kept as its 32 bytes (the encoding a `[u8; 32]` has).
pub(crate) mod fingerprint_bytes {
    use hum_shared::crypto::Fingerprint;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(f: &Fingerprint, s: S) -> Result<S::Ok, S::Error> {
        f.as_bytes().serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fingerprint, D::Error> {
        <[u8; 32]>::deserialize(d).map(Fingerprint::from_bytes)
    }
}

/// A relay address kept as its text (`hum://host:port#fingerprint`), parsed once when the
/// record is read: the encoding is the one a `String` has, so records written before
/// read the same.
pub(crate) mod relay_text {
    use hum_shared::RelayAddr;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(a: &RelayAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(a)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RelayAddr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A group's sender-key state kept as its encoding (`GroupState::to_bytes`), in the
/// encoding a byte vector has, so records written before read the same; decoded once, when
/// the record is read.
pub(crate) mod group_state_bytes {
    use hum_shared::crypto::GroupState;
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub(crate) fn serialize<S: Serializer>(g: &GroupState, s: S) -> Result<S::Ok, S::Error> {
        let bytes = g.to_bytes().map_err(serde::ser::Error::custom)?;
        s.serialize_bytes(&bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<GroupState, D::Error> {
        let bytes = Zeroizing::new(Vec::<u8>::deserialize(d)?);
        GroupState::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// A contact: who they are and where they receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContactRecord {
    /// Local display name.
    pub(crate) name: String,
    /// Their public identity bytes.
    pub(crate) identity: Vec<u8>,
    /// The relay they receive on.
    #[serde(with = "relay_text")]
    pub(crate) relay: RelayAddr,
}

/// Where a person (a contact, a group member) receives on hum/2: the relay holding their
/// buckets and their delivery secret. One per person, whatever rooms they are in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HomeRecord {
    /// Their home relay.
    #[serde(with = "relay_text")]
    pub(crate) relay: RelayAddr,
    /// Their delivery secret, wiped when dropped.
    pub(crate) delivery: Zeroizing<[u8; 32]>,
}

impl HomeRecord {
    /// A home from a relay address and a delivery secret.
    pub(crate) fn new(relay: RelayAddr, delivery: &hum_shared::route::DeliverySecret) -> Self {
        Self {
            relay,
            delivery: Zeroizing::new(*delivery.expose_secret()),
        }
    }
}

impl std::fmt::Debug for HomeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HomeRecord")
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

/// A group member as this profile knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberRecord {
    /// Their public identity bytes.
    pub(crate) identity: Vec<u8>,
    /// Their fingerprint.
    #[serde(with = "fingerprint_bytes")]
    pub(crate) fingerprint: Fingerprint,
    /// Display name.
    pub(crate) name: String,
    /// Sender-key ids they have used (one per generation).
    pub(crate) senders: Vec<MemberId>,
}

/// A group room's state.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    /// The group id.
    pub(crate) id: GroupId,
    /// The sender-key state, parsed once when the record is read and wiped when replaced
    /// or dropped.
    #[serde(with = "group_state_bytes")]
    pub(crate) state: GroupState,
    /// The relay holding the group mailbox.
    #[serde(with = "relay_text")]
    pub(crate) relay: RelayAddr,
    /// The admin's identity fingerprint.
    #[serde(with = "fingerprint_bytes")]
    pub(crate) admin: Fingerprint,
    /// Every member except this profile.
    pub(crate) members: Vec<MemberRecord>,
    /// Whether this profile left or was removed.
    pub(crate) closed: bool,
}

/// A room: its name, its contact or group, and what is unread in it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct RoomRecord {
    /// Display name.
    pub(crate) name: String,
    /// Group state, for group rooms.
    pub(crate) group: Option<GroupRecord>,
    /// The contact, for a 1:1 room.
    pub(crate) contact: Option<i64>,
    /// Messages received and not yet read.
    pub(crate) unread: u32,
    /// Of those, how many mention this profile.
    pub(crate) mentions: u32,
}

/// Where an outgoing message of ours is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DeliveryState {
    /// In the outbox, not yet stored by the relay.
    Queued,
    /// Stored by the relay, not yet receipted.
    Sent,
    /// Receipted (in a group: by everyone it was sent to).
    Delivered,
}

impl From<DeliveryState> for crate::api::Delivery {
    fn from(d: DeliveryState) -> Self {
        match d {
            DeliveryState::Queued => Self::Queued,
            DeliveryState::Sent => Self::Sent,
            DeliveryState::Delivered => Self::Delivered,
        }
    }
}

/// One message of a room's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MessageRecord {
    /// Whether this profile sent it.
    pub(crate) from_me: bool,
    /// For our own messages: how far it got.
    pub(crate) delivery: Option<DeliveryState>,
    /// For our own messages: how many receipts make it delivered.
    pub(crate) receipts_needed: u32,
    /// For our own messages: the fingerprints of those who receipted it.
    pub(crate) receipts: Vec<[u8; 32]>,
    /// The message itself.
    pub(crate) body: StoredMessage,
}

impl MessageRecord {
    /// A message someone else wrote, or an event of the room (`body.event`): no delivery
    /// state, no receipts.
    pub(crate) fn received(body: StoredMessage) -> Self {
        Self {
            from_me: false,
            delivery: None,
            receipts_needed: 0,
            receipts: Vec::new(),
            body,
        }
    }
}

/// Where an application message goes: a contact's session or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Dest {
    /// A contact, by id.
    Contact(i64),
    /// A group room, by id.
    Group(i64),
}

/// An outbox row's routing: everything but the envelope, which is sealed on its own so
/// listing the outbox does not open every envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OutboxHead {
    /// The relay to deposit at.
    #[serde(with = "relay_text")]
    pub(crate) relay: RelayAddr,
    /// The mailbox it was sealed for (the current epoch's is used when it leaves).
    pub(crate) mailbox: [u8; 32],
    /// Whether the relay fans it out (group mailboxes).
    pub(crate) fanout: bool,
    /// Whose session or group sealed it (none for a handshake).
    pub(crate) dest: Option<Dest>,
    /// The message id its receipt names (none for receipts and handshakes).
    pub(crate) uid: Option<Uid>,
}

/// Who sent a part: a contact, or a group member (by sender-key id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Origin {
    /// A contact, by id.
    Contact(i64),
    /// A member of a group room, by sender-key id.
    Group {
        /// The room.
        room: i64,
        /// The member's sender-key id.
        member: MemberId,
    },
}

/// A part of a message still being reassembled.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PartRecord {
    /// The room it is for.
    pub(crate) room: i64,
    /// Its sender within the room (contact id or sender-key id bytes).
    pub(crate) sender: Vec<u8>,
    /// The split message's id.
    pub(crate) msg_id: u64,
    /// The part's index.
    pub(crate) idx: u16,
    /// The part as it arrived.
    pub(crate) part: Zeroizing<Vec<u8>>,
}

/// A receipt waiting to be sealed and sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReceiptOut {
    /// Where it goes.
    pub(crate) dest: Dest,
    /// The message it receipts.
    pub(crate) uid: Uid,
}

/// A received control message whose effects are not yet applied.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct InboxRecord {
    /// Who sent it.
    pub(crate) origin: Origin,
    /// The postcard `AppMessage` (it may carry sender keys).
    pub(crate) payload: Zeroizing<Vec<u8>>,
}

/// An invite of ours that has been used: its answer mailbox is still read until the invite
/// expires, to tell the inviter when someone else answers the same code.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct UsedInviteRecord {
    /// The capability of the invite's answer mailbox.
    pub(crate) capability: [u8; 32],
    /// The ephemeral key of the answer that used it (a copy of that answer is no news).
    pub(crate) answer_key: [u8; 32],
    /// When the invite expires (unix seconds): then the record goes.
    pub(crate) expires_at: u64,
}

impl Drop for UsedInviteRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.capability);
    }
}

/// An invite this profile accepted, watched until its inviter says which answer used it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct InviteCheckRecord {
    /// The invite code as accepted.
    pub(crate) code: String,
    /// When it was accepted (unix seconds): the code is read as of then.
    pub(crate) accepted_at: u64,
    /// This profile's answer, the handshake envelope.
    pub(crate) answer: Vec<u8>,
}

//! What travels inside sealed envelopes between two hum clients (docs/PROTOCOL.md §5).
//!
//! Every application message is postcard-encoded, split into parts of the envelope's
//! plaintext capacity (`hum_shared::split`), and each part sealed on its own. The first
//! message of a session (the acceptor's [`ContactHello`]) travels alone in the handshake envelope.

use hum_shared::crypto::GroupId;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A message's unique id, chosen by its sender: receipts and duplicate detection use it.
pub(crate) type Uid = [u8; 16];

/// The acceptor's first words, sealed in the handshake envelope.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContactHello {
    /// The name the acceptor goes by.
    pub(crate) name: String,
    /// The relay where the acceptor receives (its home relay),
    /// `hum://host:port#fingerprint`.
    pub(crate) relay: String,
    /// The acceptor's delivery secret (hum/2), wiped when dropped.
    pub(crate) delivery: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ContactHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactHello")
            .field("name", &self.name)
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

/// Where a group member receives, as the admin describes it: home relay and delivery
/// secret, so that whoever speaks can compute each member's bucket and flag.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberHome {
    /// The member's home relay, `hum://host:port#fingerprint`.
    pub(crate) relay: String,
    /// The member's delivery secret, wiped when dropped.
    pub(crate) delivery: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MemberHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberHome")
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

/// A member of a group as the group's admin describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Member {
    /// The member's public identity bytes.
    pub(crate) identity: Vec<u8>,
    /// The name the admin knows the member by.
    pub(crate) name: String,
    /// Where the member receives, when the admin knows (a contact made before hum/2 may
    /// not have said).
    pub(crate) home: Option<MemberHome>,
}

/// Application messages. Sender keys inside them are zeroized on drop, and `Debug` names
/// the kind only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AppMessage {
    /// A chat text, 1:1 or in a group.
    Text {
        /// Unique id.
        uid: Uid,
        /// The sender's clock, unix milliseconds.
        sent_at: i64,
        /// The text.
        text: String,
    },
    /// End-to-end receipts for messages received.
    Receipt {
        /// The ids received.
        uids: Vec<Uid>,
    },
    /// Pairwise, admin to a new member: the group, its members and the admin's sender key.
    GroupInvite {
        /// Unique id (for receipts and duplicates).
        uid: Uid,
        /// The group.
        group: GroupId,
        /// Its name.
        name: String,
        /// The relay holding the group mailbox.
        relay: String,
        /// Every member but the new one, the admin included.
        members: Vec<Member>,
        /// The admin's sender-key distribution.
        dist: Zeroizing<Vec<u8>>,
    },
    /// Pairwise, admin to members: the member list or the name changed. `dist` is the
    /// admin's new sender key when the group was re-keyed (after a removal).
    GroupUpdate {
        /// Unique id.
        uid: Uid,
        /// The group.
        group: GroupId,
        /// Its name.
        name: String,
        /// Every member but the recipient, the admin included.
        members: Vec<Member>,
        /// The admin's new distribution, after a removal.
        dist: Option<Zeroizing<Vec<u8>>>,
    },
    /// Pairwise: a member's sender key. From a member to the admin (`origin` is `None`),
    /// or forwarded by the admin (`origin` names the member, by identity fingerprint).
    GroupKey {
        /// Unique id.
        uid: Uid,
        /// The group.
        group: GroupId,
        /// The distribution.
        dist: Zeroizing<Vec<u8>>,
        /// Whose key it is, when forwarded.
        origin: Option<[u8; 32]>,
        /// For whom, when a member answers a newcomer's arrival (`None`: everyone).
        target: Option<[u8; 32]>,
        /// The key's owner's signature over it with their identity key, so whoever
        /// forwards it cannot pass another key off as theirs.
        endorsement: Vec<u8>,
    },
    /// Pairwise, admin to a member: you were removed.
    GroupRemoved {
        /// Unique id.
        uid: Uid,
        /// The group.
        group: GroupId,
    },
    /// Pairwise, member to admin: I leave.
    GroupLeave {
        /// Unique id.
        uid: Uid,
        /// The group.
        group: GroupId,
    },
    /// Pairwise: where the sender receives on hum/2, to a contact whose home it does not
    /// know (a contact made before homes were kept, by a store-schema-1 profile): that
    /// contact most likely does not know the sender's either.
    Home {
        /// The sender's home relay, `hum://host:port#fingerprint`.
        relay: String,
        /// The sender's delivery secret, wiped when dropped.
        delivery: Zeroizing<[u8; 32]>,
    },
}

impl std::fmt::Debug for AppMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text { .. } => "Text(..)",
            Self::Receipt { .. } => "Receipt(..)",
            Self::GroupInvite { .. } => "GroupInvite(..)",
            Self::GroupUpdate { .. } => "GroupUpdate(..)",
            Self::GroupKey { .. } => "GroupKey(..)",
            Self::GroupRemoved { .. } => "GroupRemoved(..)",
            Self::GroupLeave { .. } => "GroupLeave(..)",
            Self::Home { .. } => "Home(..)",
        })
    }
}

impl AppMessage {
    /// The id a receipt names, for messages that want one.
    pub(crate) fn uid(&self) -> Option<Uid> {
        match self {
            Self::Text { uid, .. }
            | Self::GroupInvite { uid, .. }
            | Self::GroupUpdate { uid, .. }
            | Self::GroupKey { uid, .. }
            | Self::GroupRemoved { uid, .. }
            | Self::GroupLeave { uid, .. } => Some(*uid),
            Self::Receipt { .. } | Self::Home { .. } => None,
        }
    }
}

/// How one stored message's body is sealed in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredMessage {
    /// The sender's display name at the time (for an event, who made the change).
    pub(crate) sender: String,
    /// The text.
    pub(crate) text: String,
    /// The sender's clock, unix milliseconds.
    pub(crate) sent_at: i64,
    /// The message's id.
    pub(crate) uid: Uid,
    /// Whether hum wrote it down: an event of the room (a member added or gone, a rename),
    /// not something a person wrote.
    pub(crate) event: bool,
}

/// A stored message as written before events were kept in history.
#[derive(Deserialize)]
struct StoredMessageBeforeEvents {
    sender: String,
    text: String,
    sent_at: i64,
    uid: Uid,
}

impl StoredMessage {
    /// Decodes a stored message, of either layout.
    pub(crate) fn decode(bytes: &[u8]) -> Option<StoredMessage> {
        postcard::from_bytes(bytes).ok().or_else(|| {
            postcard::from_bytes::<StoredMessageBeforeEvents>(bytes)
                .ok()
                .map(|m| StoredMessage {
                    sender: m.sender,
                    text: m.text,
                    sent_at: m.sent_at,
                    uid: m.uid,
                    event: false,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_messages_of_both_layouts_decode() -> Result<(), postcard::Error> {
        #[derive(Serialize)]
        struct Before<'a> {
            sender: &'a str,
            text: &'a str,
            sent_at: i64,
            uid: Uid,
        }
        let old = postcard::to_stdvec(&Before {
            sender: "bob",
            text: "hi",
            sent_at: 5,
            uid: [7; 16],
        })?;
        let m = StoredMessage::decode(&old).ok_or(postcard::Error::DeserializeBadEncoding)?;
        assert_eq!(
            (m.sender.as_str(), m.text.as_str(), m.event),
            ("bob", "hi", false)
        );
        let new = StoredMessage { event: true, ..m };
        assert_eq!(
            StoredMessage::decode(&postcard::to_stdvec(&new)?),
            Some(new)
        );
        assert_eq!(StoredMessage::decode(b"\x01"), None);
        Ok(())
    }
}

//! The records the engine keeps sealed in its store.

use serde::{Deserialize, Serialize};

/// A contact: who they are and where they receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContactRecord {
    /// Local display name.
    pub(crate) name: String,
    /// Their public identity bytes.
    pub(crate) identity: Vec<u8>,
    /// The relay they receive on.
    pub(crate) relay: String,
}

/// A group member as this profile knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberRecord {
    /// Their public identity bytes.
    pub(crate) identity: Vec<u8>,
    /// Their fingerprint.
    pub(crate) fingerprint: [u8; 32],
    /// Display name.
    pub(crate) name: String,
    /// Sender-key ids they have used (one per generation).
    pub(crate) senders: Vec<[u8; 32]>,
}

/// A group room's state.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    /// The group id.
    pub(crate) id: [u8; 16],
    /// The sealed-sender-key state (`GroupState` bytes).
    pub(crate) state: Vec<u8>,
    /// The relay holding the group mailbox.
    pub(crate) relay: String,
    /// The admin's identity fingerprint.
    pub(crate) admin: [u8; 32],
    /// Every member except this profile.
    pub(crate) members: Vec<MemberRecord>,
    /// Whether this profile left or was removed.
    pub(crate) closed: bool,
}

impl Drop for GroupRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.state);
    }
}

/// A room: its name, and its group state when it is a group.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct RoomRecord {
    /// Display name.
    pub(crate) name: String,
    /// Group state, for group rooms.
    pub(crate) group: Option<GroupRecord>,
}

/// An invite of ours that has been used: its answer mailbox is still read until the invite
/// expires, to tell the inviter when someone else answers the same code.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct UsedInviteRecord {
    /// The capability of the invite's answer mailbox.
    pub(crate) capability: [u8; 32],
    /// The ephemeral key of the answer that used it (a copy of that answer is no news).
    pub(crate) answer_key: [u8; 32],
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

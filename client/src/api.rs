//! The vocabulary between the headless engine and its faces (the TUI and `--plain`).
//!
//! A face sends [`Command`]s and receives [`Event`]s over channels; it never touches the
//! engine's state directly.

use std::fmt;

/// A room: a 1:1 conversation with a contact, or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoomId(pub i64);

/// A contact known to this profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContactId(pub i64);

/// A message in the local history (unique within the profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub i64);

/// What kind of room it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind {
    /// A 1:1 conversation with one contact.
    Direct(ContactId),
    /// A group room.
    Group,
}

/// Where an outgoing message is on its way to the recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Delivery {
    /// In the outbox, not yet accepted by the relay.
    Queued,
    /// Stored by the relay, no end-to-end receipt yet.
    Sent,
    /// The recipient's (or, in a group, every member's) receipt arrived.
    Delivered,
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
        })
    }
}

/// A room as the room list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    /// The room.
    pub id: RoomId,
    /// Its display name (the contact's nickname, or the group's name).
    pub name: String,
    /// 1:1 or group.
    pub kind: RoomKind,
    /// Members' display names, this profile excluded.
    pub members: Vec<String>,
    /// Messages received and not yet read.
    pub unread: u32,
    /// Unread messages that mention this profile's name.
    pub mentions: u32,
    /// Whether this profile has left or was removed (the room is read-only).
    pub closed: bool,
}

/// What a line of a room's history is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Something a person wrote.
    Text,
    /// A change to the room that hum wrote down: a member added, removed or gone, the
    /// group renamed, left or closed. `text` says it in full, `sender` names who made
    /// the change.
    Event,
}

/// One member of a room, as a member list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The name this profile knows them by (a contact's nickname, or the name the group's
    /// admin gave).
    pub name: String,
    /// Their identity fingerprint, to compare out of band when they are not a contact.
    pub fingerprint: String,
    /// The contact, when they are one of this profile's contacts; `None` means the group's
    /// admin vouches for them and nobody here has checked who they are.
    pub contact: Option<ContactId>,
    /// Whether this is this profile.
    pub you: bool,
    /// Whether they run the group (add, remove, rename).
    pub admin: bool,
}

/// One message as a timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    /// The message's local id.
    pub id: MessageId,
    /// The room it belongs to.
    pub room: RoomId,
    /// The sender's display name.
    pub sender: String,
    /// Whether this profile sent it.
    pub from_me: bool,
    /// The text.
    pub text: String,
    /// When it was written, in unix milliseconds (the sender's clock).
    pub sent_at: i64,
    /// Delivery state, for outgoing messages.
    pub delivery: Option<Delivery>,
    /// A written message, or an event of the room.
    pub kind: MessageKind,
}

/// The state of the link to one relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting for the first time or again.
    Connecting,
    /// On the beat.
    Up,
    /// Lost; the next attempt is in this many milliseconds.
    Down {
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
}

/// The health of one relay link, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// The relay, as `host:port`.
    pub relay: String,
    /// Its state.
    pub state: LinkState,
    /// Cells sent per second over the last seconds (steady when healthy).
    pub cells_up_per_sec: u32,
    /// Cells received per second.
    pub cells_down_per_sec: u32,
    /// Messages waiting in the outbox for this relay.
    pub queued: u32,
}

/// The hum/2 link to the entry relay, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStatus {
    /// The entry relay, as `host:port`.
    pub relay: String,
    /// The connection's state.
    pub state: LinkState,
    /// The entry relay is a single relay: entry and mailbox at once, it can see who talks
    /// to whom.
    pub single: bool,
    /// The clients behind the entry relay (the anonymity set every slot hides in), when
    /// its directory says.
    pub clients: Option<u32>,
    /// Cells per second, each way (one up for every one down).
    pub cells_per_sec: u32,
    /// Deposits not yet stored (queued or in flight).
    pub queued: u32,
}

/// What an [`Event::Error`] is about: one kind per variant of the engine's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The store failed or is damaged.
    Store,
    /// A cryptographic operation failed.
    Crypto,
    /// An invite code was refused (damaged, expired, forged, another version).
    Invite,
    /// A profile problem.
    Profile,
    /// The passphrase does not open the profile.
    WrongPassphrase,
    /// The profile is open in another process.
    InUse,
    /// The invite code is this profile's own.
    OwnInvite,
    /// The invite code is from a contact already known.
    AlreadyContact,
    /// The contact is in the group already.
    AlreadyMember,
    /// The invite code names an invalid relay.
    InviteRelay,
    /// No such room, contact, member, ...
    NoSuch(What),
    /// Only the group's admin can do that.
    NotAdmin,
    /// The room is closed.
    Closed,
    /// Nothing to send.
    Empty,
    /// The message is too long.
    TooLong,
    /// No relay is configured.
    NoRelay,
    /// A contact sent something against the rules; it was ignored.
    Refused,
    /// A relay link failed in a way waiting will not fix.
    Link,
    /// History rows do not open and were skipped.
    Damaged,
    /// A contact's invite code had been used by someone else.
    InviteUsed,
    /// An internal failure (encoding, randomness, a thread).
    Internal,
    /// The engine panicked.
    Panicked,
}

/// What a command named that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum What {
    /// A room.
    Room,
    /// A contact.
    Contact,
    /// A group member.
    Member,
    /// A group.
    Group,
    /// A contact's session.
    Session,
    /// An invite.
    Invite,
    /// A group's admin.
    GroupAdmin,
    /// The store's key slot.
    KeySlot,
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Room => "room",
            Self::Contact => "contact",
            Self::Member => "member",
            Self::Group => "group",
            Self::Session => "session",
            Self::Invite => "invite",
            Self::GroupAdmin => "group admin",
            Self::KeySlot => "key slot",
        })
    }
}

/// What a face asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Make a new invite code (answered by [`Event::Invite`]).
    CreateInvite,
    /// Accept an invite code, naming the new contact.
    AcceptInvite {
        /// The pasted code.
        code: String,
        /// The nickname to give the contact (the invite's hint when `None`).
        name: Option<String>,
    },
    /// Send a text to a room.
    Send {
        /// The room.
        room: RoomId,
        /// The text (any length: long texts are split).
        text: String,
    },
    /// Create a group room.
    CreateGroup {
        /// Its name.
        name: String,
    },
    /// Add a contact to a group.
    GroupAdd {
        /// The group.
        room: RoomId,
        /// The contact.
        contact: ContactId,
    },
    /// Remove a contact from a group (keys and mailbox rotate).
    GroupRemove {
        /// The group.
        room: RoomId,
        /// The contact.
        contact: ContactId,
    },
    /// Leave a group.
    GroupLeave {
        /// The group.
        room: RoomId,
    },
    /// Rename a group.
    GroupRename {
        /// The group.
        room: RoomId,
        /// The new name.
        name: String,
    },
    /// Give a contact a local nickname.
    RenameContact {
        /// The contact.
        contact: ContactId,
        /// The nickname.
        name: String,
    },
    /// All messages in the room have been seen.
    MarkRead {
        /// The room.
        room: RoomId,
    },
    /// Load a page of history older than `before` (newest page when `None`).
    LoadHistory {
        /// The room.
        room: RoomId,
        /// Load messages older than this one.
        before: Option<MessageId>,
        /// At most this many.
        limit: u32,
    },
    /// Search a room's history for a text (answered by [`Event::SearchResults`]).
    Search {
        /// The room, or every room when `None`.
        room: Option<RoomId>,
        /// The text to find (case-insensitive).
        query: String,
    },
    /// Show the safety number shared with a contact (answered by
    /// [`Event::SafetyNumber`]).
    Verify {
        /// The contact.
        contact: ContactId,
    },
    /// List a room's members (answered by [`Event::Members`]).
    Members {
        /// The room.
        room: RoomId,
    },
    /// Every relay link that is down tries again now, without waiting out its backoff.
    Reconnect,
    /// Answered by [`Event::Pong`] with the same token once every command sent before it
    /// has been handled: everything those commands print comes before the pong. The line
    /// mode uses it to answer commands in order and to wait for the profile to load.
    Ping {
        /// Chosen by the face, returned as is.
        token: u64,
    },
    /// Stop: flush the store and close the links.
    Quit,
}

/// What the engine tells its faces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The profile is open; these are its rooms and contacts.
    Ready {
        /// This profile's display name.
        me: String,
        /// Every room.
        rooms: Vec<RoomSummary>,
        /// Every contact, with its id and name.
        contacts: Vec<(ContactId, String)>,
    },
    /// A room appeared or changed (name, members, unread counts).
    Room(RoomSummary),
    /// A contact appeared or was renamed.
    Contact {
        /// The contact.
        id: ContactId,
        /// Its display name.
        name: String,
    },
    /// A contact is gone: it turned out not to exist on the other side (the invite code
    /// it came from had been used by someone else). Its room stays, closed.
    ContactRemoved {
        /// The contact.
        id: ContactId,
        /// Its name.
        name: String,
    },
    /// A new message, incoming or outgoing.
    Message(MessageView),
    /// An outgoing message changed delivery state.
    Delivery {
        /// The room.
        room: RoomId,
        /// The message.
        id: MessageId,
        /// The new state.
        state: Delivery,
    },
    /// A page of history, oldest first.
    History {
        /// The room.
        room: RoomId,
        /// The messages, oldest first.
        messages: Vec<MessageView>,
        /// Whether older messages remain.
        more: bool,
    },
    /// Search results, oldest first.
    SearchResults {
        /// The query.
        query: String,
        /// Matching messages.
        messages: Vec<MessageView>,
    },
    /// A relay link changed state or its rates moved.
    Link(LinkStatus),
    /// The hum/2 link changed state, or its rates or anonymity set moved.
    Route(RouteStatus),
    /// A new invite code to hand to someone.
    Invite {
        /// The code.
        code: String,
    },
    /// The safety number shared with a contact.
    SafetyNumber {
        /// The contact.
        contact: ContactId,
        /// The contact's name.
        name: String,
        /// The number, in groups of digits.
        number: String,
    },
    /// Something the user should know that is not an error.
    Notice(String),
    /// Something failed; `message` says what and what to do.
    Error {
        /// What kind of failure it is (the engine's error variant).
        kind: ErrorKind,
        /// What failed, in words for the user.
        message: String,
    },
    /// A room's members, this profile first.
    Members {
        /// The room.
        room: RoomId,
        /// Its members.
        members: Vec<MemberView>,
    },
    /// The answer to [`Command::Ping`]: every command sent before it has been handled.
    Pong {
        /// The ping's token.
        token: u64,
    },
}

/// A name as hum keeps and shows it: trimmed, without control characters (which could
/// move the cursor or hide text on a terminal), and at most [`DisplayName::MAX_CHARS`]
/// characters long. Made from anything typed or received; never empty.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// The longest name, in characters: a person's, a contact's or a group's.
    pub const MAX_CHARS: usize = 64;

    /// `raw` cleaned, or `None` when nothing is left of it.
    #[must_use]
    pub fn new(raw: &str) -> Option<Self> {
        let clean = Self::clean(raw);
        (!clean.is_empty()).then_some(Self(clean))
    }

    /// `raw` trimmed, without control characters, cut to [`Self::MAX_CHARS`] (possibly
    /// empty).
    #[must_use]
    pub fn clean(raw: &str) -> String {
        let cut: String = raw
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(Self::MAX_CHARS)
            .collect();
        cut.trim().to_owned()
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, as a `String`.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::DisplayName;

    #[test]
    fn a_display_name_is_trimmed_cleaned_and_cut() {
        assert_eq!(
            DisplayName::new("  ada\u{1b}[2J lovelace \n").map(DisplayName::into_string),
            Some("ada[2J lovelace".to_owned())
        );
        assert_eq!(DisplayName::new(" \u{7} \t"), None);
        let long = "é".repeat(DisplayName::MAX_CHARS + 10);
        assert_eq!(
            DisplayName::clean(&long).chars().count(),
            DisplayName::MAX_CHARS
        );
        // Cut first, then trimmed: no trailing space is left at the cut.
        let spaced = format!("{} tail", "a".repeat(DisplayName::MAX_CHARS - 1));
        assert!(!DisplayName::clean(&spaced).ends_with(' '));
    }
}

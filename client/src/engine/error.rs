//! Why the engine could not do something: [`EngineError`] and the errors it wraps.
//!
//! Every variant has a fieldless [`ErrorKind`] the faces receive in
//! [`Event::Error`](crate::api::Event::Error), so a test (or a face) matches on what went
//! wrong, not on the words that say it.

use std::path::PathBuf;

use hum_shared::crypto::{CryptoError, InviteError};

use super::lock;
use crate::api::{ErrorKind, What};

/// Why the engine could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed or is damaged.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A cryptographic operation failed.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// An invite code was refused (damaged, expired, forged, from another version).
    #[error("{0}")]
    Invite(#[from] InviteError),
    /// A profile problem (missing, exists, bad name, unreadable config).
    #[error("profile: {0}")]
    Profile(#[from] ProfileError),
    /// The passphrase does not open the profile.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The profile is open in another process (the TUI, `--plain`, or another copy): one
    /// profile is used by one process at a time.
    #[error("profile {profile} is in use by {}", lock::holder_text(.program, .pid))]
    InUse {
        /// The profile's name.
        profile: String,
        /// The holder's process id, when it recorded one.
        pid: Option<u32>,
        /// The holder's program name, when it recorded one.
        program: Option<String>,
    },
    /// The invite code pasted is this profile's own.
    #[error("that is your own invite code: give it to someone else")]
    OwnInvite,
    /// The invite code pasted is from someone who is a contact already.
    #[error("you already have this contact")]
    AlreadyContact,
    /// The contact to add to a group is in it already.
    #[error("{name} is already a member")]
    AlreadyMember {
        /// The contact's name.
        name: String,
    },
    /// An invite code names a relay address that does not parse.
    #[error("the invite's relay address is not valid")]
    InviteRelay,
    /// No such room, contact or member.
    #[error("no such {0}")]
    NoSuch(What),
    /// Only the group's admin can do that.
    #[error("only the group's creator can do that")]
    NotAdmin,
    /// The room is closed (left or removed).
    #[error("you are no longer in that group")]
    Closed,
    /// Nothing to send.
    #[error("nothing to send")]
    Empty,
    /// The message is too long.
    #[error("message too long (at most {0} bytes)")]
    TooLong(usize),
    /// No relay is configured.
    #[error(
        "no relay: pass --relay hum://HOST:PORT#FINGERPRINT (or --entry and --home for a mesh), or set them in the config file"
    )]
    NoRelay,
    /// The relay configuration does not hold together.
    #[error("relay configuration: {0}")]
    RelayConfig(String),
    /// A contact sent something that breaks the group's or the invite's rules; it was
    /// ignored.
    #[error("{0}")]
    Refused(Refusal),
    /// A relay link failed in a way waiting will not fix (a wrong certificate).
    #[error("{cause} (relay {relay})")]
    Link {
        /// The relay, as `host:port`.
        relay: String,
        /// What the link said.
        cause: String,
    },
    /// History rows of a room do not open and were skipped.
    #[error(
        "store: {0} message(s) of this room do not open and were skipped: the store is \
         damaged or was tampered with"
    )]
    Damaged(usize),
    /// A contact added from their invite code was never reached: the code had been used by
    /// someone else first.
    #[error(
        "{name}'s invite code had already been used by someone else, so {name} was not \
         added: ask {name} for a new code"
    )]
    InviteUsed {
        /// The contact's name.
        name: String,
    },
    /// Encoding failed.
    #[error("could not encode a message")]
    Encode,
    /// A long message could not be split into parts.
    #[error("could not split a message: {0}")]
    Split(#[from] hum_shared::SplitError),
    /// The system's random generator failed.
    #[error("no randomness available")]
    Random,
    /// The engine's thread could not be started.
    #[error("could not start the engine thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The engine panicked (a bug); what it committed to the store is kept.
    #[error("the engine panicked")]
    Panicked,
}

impl EngineError {
    /// What kind of error this is, for [`Event::Error`](crate::api::Event::Error).
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Store(_) => ErrorKind::Store,
            Self::Crypto(_) => ErrorKind::Crypto,
            Self::Invite(_) => ErrorKind::Invite,
            Self::Profile(_) => ErrorKind::Profile,
            Self::WrongPassphrase => ErrorKind::WrongPassphrase,
            Self::InUse { .. } => ErrorKind::InUse,
            Self::OwnInvite => ErrorKind::OwnInvite,
            Self::AlreadyContact => ErrorKind::AlreadyContact,
            Self::AlreadyMember { .. } => ErrorKind::AlreadyMember,
            Self::InviteRelay => ErrorKind::InviteRelay,
            Self::NoSuch(w) => ErrorKind::NoSuch(*w),
            Self::NotAdmin => ErrorKind::NotAdmin,
            Self::Closed => ErrorKind::Closed,
            Self::Empty => ErrorKind::Empty,
            Self::TooLong(_) => ErrorKind::TooLong,
            Self::NoRelay | Self::RelayConfig(_) => ErrorKind::NoRelay,
            Self::Refused(_) => ErrorKind::Refused,
            Self::Link { .. } => ErrorKind::Link,
            Self::Damaged(_) => ErrorKind::Damaged,
            Self::InviteUsed { .. } => ErrorKind::InviteUsed,
            Self::Encode | Self::Split(_) | Self::Random | Self::Thread(_) => ErrorKind::Internal,
            Self::Panicked => ErrorKind::Panicked,
        }
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sql(e))
    }
}

/// Something a contact sent that the engine refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A sender key names an id another member uses.
    #[error("a sender key claims another member's id")]
    ForeignSenderId,
    /// A member who is not the admin tried to start a new key generation.
    #[error("a member tried to re-key the group")]
    RekeyByMember,
    /// A group invite's key is for another group.
    #[error("a group invite does not match its key")]
    GroupKeyMismatch,
    /// A sender key is not signed by the member it names.
    #[error("a sender key is not endorsed by the member it names")]
    UnendorsedSenderKey,
    /// A group invite names a relay address that does not parse.
    #[error("a group invite names an invalid relay")]
    GroupRelay,
    /// An answer to an invite names a relay address that does not parse.
    #[error("a contact answered an invite with an invalid relay address; ignored")]
    AnswerRelay,
    /// A member who is not the admin invited this profile back into a group it left.
    #[error("{who} invited you back to the group {room}, which only its admin can do: ignored")]
    InviteBack {
        /// The contact who sent the invite.
        who: String,
        /// The group.
        room: String,
    },
}

/// A profile problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A profile name that is not a plain folder name.
    #[error("profile name {0:?} must be 1 to 64 letters, digits, '-' or '_'")]
    BadName(String),
    /// No home directory is known.
    #[error("no home directory: set HUM_HOME")]
    NoHome,
    /// A profile exists already where one was to be created.
    #[error("a profile already exists in {}", .0.display())]
    Exists(PathBuf),
    /// No profile where one was to be opened.
    #[error("no profile in {}", .0.display())]
    Missing(PathBuf),
    /// The display name is empty once cleaned.
    #[error("the name must not be empty")]
    EmptyName,
    /// A file or folder of the profile could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The config file does not parse.
    #[error("{}: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The config could not be written as TOML.
    #[error("the config does not encode: {0}")]
    ConfigEncode(#[from] toml::ser::Error),
    /// The embedded demo relay did not start.
    #[error("the embedded relay did not start: {0}")]
    DemoRelay(#[source] hum_relay::RelayError),
    /// A demo engine stopped before the demo was set up.
    #[error("the demo's {0} stopped")]
    DemoStopped(&'static str),
}

/// The store failed or is damaged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    /// A sealed row does not open where it is (moved, altered, or another store's).
    #[error(
        "a sealed {0} row does not open where it is: the store is damaged or was tampered with"
    )]
    RowDoesNotOpen(&'static str),
    /// A sealed row opens but its content does not decode.
    #[error("a sealed {0} row does not decode (damaged store)")]
    RowDoesNotDecode(&'static str),
    /// A sealed meta record does not open.
    #[error("a sealed {0} record does not open (wrong passphrase or damaged store)")]
    RecordDoesNotOpen(&'static str),
    /// A row of an older schema does not open or decode while migrating.
    #[error("a {0} row of the old store does not open or decode: the store is damaged")]
    OldRow(&'static str),
    /// Sealing or tagging with the store key failed.
    #[error("sealing failed")]
    Seal,
    /// The store was written by a newer hum.
    #[error(
        "the store has schema version {0}, newer than this hum knows ({known}): open it with \
         a newer hum",
        known = super::store::SCHEMA
    )]
    TooNew(i64),
    /// A value the store must have is missing or malformed.
    #[error("the store has no valid {0}")]
    Missing(&'static str),
    /// The passphrase key slot's parameters are refused.
    #[error("the passphrase key slot is refused: {0}")]
    KeySlot(CryptoError),
    /// Rows contradict each other: the store is damaged or was tampered with.
    #[error("{0}: the store is damaged or was tampered with")]
    Inconsistent(Inconsistency),
}

/// How rows of the store contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Inconsistency {
    /// A contact has no room.
    #[error("a contact has no room")]
    ContactWithoutRoom,
    /// A room names a contact that does not exist.
    #[error("the room {0:?} names a contact that does not exist")]
    RoomWithoutContact(String),
    /// A session has no contact.
    #[error("a session has no contact")]
    SessionWithoutContact,
    /// The session stored for a contact is with someone else.
    #[error("the session stored for {0} is with someone else")]
    SessionWithSomeoneElse(String),
    /// A message id is used twice.
    #[error("a message id was used twice")]
    MessageIdTwice,
    /// A row was not inserted.
    #[error("a row was not inserted")]
    NotInserted,
    /// A kept part of a long message is malformed.
    #[error("a kept part is malformed")]
    BadPart,
    /// Something received names a contact the engine does not hold.
    #[error("a received message names a contact that is not loaded")]
    ContactMissing,
    /// A contact's or message's room is not held by the engine.
    #[error("a room the engine refers to is not loaded")]
    RoomMissing,
}

impl From<Inconsistency> for EngineError {
    fn from(i: Inconsistency) -> Self {
        Self::Store(StoreError::Inconsistent(i))
    }
}

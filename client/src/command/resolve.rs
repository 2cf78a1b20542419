//! The name resolver: names as typed become rooms and contacts, exactly or by a unique
//! prefix, with the same rules and the same errors on both faces.

use std::path::PathBuf;

use crate::api::{Command, ContactId, RoomId, RoomKind, RoomSummary};
use crate::command::error::{CommandError, Noun};
use crate::command::invite::typed_path;
use crate::command::parse::{SlashCommand, split_word};
use crate::command::spec::{self, Face};

/// The item `word` names among `items` (value, name): the same name (case as typed
/// first, then in any case), else the one name it starts (in any case).
///
/// # Errors
/// [`CommandError::NoSuch`] when nothing matches, [`CommandError::Ambiguous`] when `word`
/// starts several names.
pub fn pick<'n, T: Copy>(
    word: &str,
    items: impl IntoIterator<Item = (T, &'n str)>,
    what: Noun,
) -> Result<T, CommandError> {
    let items: Vec<(T, &str)> = items.into_iter().collect();
    if let Some((t, _)) = items.iter().find(|(_, n)| *n == word) {
        return Ok(*t);
    }
    let lower = word.to_lowercase();
    if let Some((t, _)) = items.iter().find(|(_, n)| n.to_lowercase() == lower) {
        return Ok(*t);
    }
    let hits: Vec<&(T, &str)> = items
        .iter()
        .filter(|(_, n)| n.to_lowercase().starts_with(&lower))
        .collect();
    let mut names: Vec<String> = hits.iter().map(|(_, n)| n.to_string()).collect();
    names.sort();
    names.dedup();
    match (hits.first(), names.len()) {
        (Some((t, _)), 1) => Ok(*t),
        (None, _) => Err(CommandError::NoSuch {
            what,
            name: word.to_string(),
        }),
        _ => Err(CommandError::Ambiguous {
            what,
            name: word.to_string(),
            candidates: names,
        }),
    }
}

/// A command with its names resolved: what a face does next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolved {
    /// One engine command, the same on both faces.
    Engine(Command),
    /// Ask for an invite code, and write it to this new file when it comes.
    Invite(Option<PathBuf>),
    /// Open a room (the TUI shows it in the focused pane, the line mode makes it current),
    /// then send the text, if any.
    Open {
        /// The room.
        room: RoomId,
        /// A message to send there.
        text: Option<String>,
    },
    /// Leave a group (the TUI asks first).
    Leave {
        /// The group.
        room: RoomId,
        /// Its name.
        name: String,
    },
    /// Take a closed room off the room list (TUI).
    Hide(RoomId),
    /// Split the focused pane, stacked (TUI).
    Split,
    /// Split the focused pane, side by side (TUI).
    VSplit,
    /// Close the focused pane (TUI).
    Close,
    /// Switch to a theme, or list them (TUI).
    Theme(Option<String>),
    /// List the rooms (line mode).
    ListRooms,
    /// List the contacts (line mode).
    ListContacts,
    /// Show the help.
    Help,
}

/// What a face knows of rooms and contacts, and which room is current: enough to resolve
/// the names in a command.
#[derive(Debug, Clone)]
pub struct Resolver<'a> {
    face: Face,
    rooms: Vec<&'a RoomSummary>,
    contacts: Vec<(ContactId, &'a str)>,
    current: Option<RoomId>,
}

impl<'a> Resolver<'a> {
    /// A resolver over the rooms a face lists and its contacts, with the current room (the
    /// TUI's focused pane, the line mode's `/room`).
    pub fn new(
        face: Face,
        rooms: impl IntoIterator<Item = &'a RoomSummary>,
        contacts: impl IntoIterator<Item = (ContactId, &'a str)>,
        current: Option<RoomId>,
    ) -> Self {
        Resolver {
            face,
            rooms: rooms.into_iter().collect(),
            contacts: contacts.into_iter().collect(),
            current,
        }
    }

    /// The room `name` names, or the 1:1 room of the contact it names.
    ///
    /// # Errors
    /// [`CommandError::NoSuch`], [`CommandError::Ambiguous`], or
    /// [`CommandError::NoRoomYet`] for a contact without a room.
    pub fn room(&self, name: &str) -> Result<RoomId, CommandError> {
        match pick(
            name,
            self.rooms.iter().map(|r| (r.id, r.name.as_str())),
            Noun::Room,
        ) {
            Err(CommandError::NoSuch { .. }) => {
                let contact = self.contact(name).map_err(|e| match e {
                    CommandError::NoSuch { name, .. } => CommandError::NoSuch {
                        what: Noun::Room,
                        name,
                    },
                    other => other,
                })?;
                self.rooms
                    .iter()
                    .find(|r| r.kind == RoomKind::Direct(contact))
                    .map(|r| r.id)
                    .ok_or_else(|| CommandError::NoRoomYet(name.to_string()))
            }
            other => other,
        }
    }

    /// The contact `name` names.
    ///
    /// # Errors
    /// [`CommandError::NoSuch`] or [`CommandError::Ambiguous`].
    pub fn contact(&self, name: &str) -> Result<ContactId, CommandError> {
        pick(name, self.contacts.iter().copied(), Noun::Contact)
    }

    /// The group room `name` names.
    ///
    /// # Errors
    /// [`CommandError::NotAGroup`] for a 1:1 room's name, else as [`Resolver::contact`].
    pub fn group(&self, name: &str) -> Result<RoomId, CommandError> {
        let groups = self
            .rooms
            .iter()
            .filter(|r| r.kind == RoomKind::Group)
            .map(|r| (r.id, r.name.as_str()));
        match pick(name, groups, Noun::Group) {
            Err(CommandError::NoSuch { .. })
                if self
                    .rooms
                    .iter()
                    .any(|r| r.name.to_lowercase() == name.to_lowercase()) =>
            {
                Err(CommandError::NotAGroup(name.to_string()))
            }
            other => other,
        }
    }

    /// The current room.
    ///
    /// # Errors
    /// [`CommandError::NoCurrentRoom`] when none is.
    pub fn current_room(&self) -> Result<RoomId, CommandError> {
        self.current.ok_or(CommandError::NoCurrentRoom(self.face))
    }

    fn current_summary(&self) -> Option<&RoomSummary> {
        let id = self.current?;
        self.rooms.iter().copied().find(|r| r.id == id)
    }

    /// The current room when it is a group; else the error says how `sub` names one.
    fn current_group(&self, sub: &str) -> Result<RoomId, CommandError> {
        match self.current_summary() {
            Some(r) if r.kind == RoomKind::Group => Ok(r.id),
            _ => Err(CommandError::NotInGroup {
                usage: spec::find("group", Some(sub), self.face)
                    .map_or_else(|| spec::usage_of("group", self.face), |c| c.usage())
                    .replace("[GROUP]", "GROUP"),
            }),
        }
    }

    fn is_group_name(&self, name: &str) -> bool {
        self.rooms
            .iter()
            .any(|r| r.kind == RoomKind::Group && r.name.to_lowercase() == name.to_lowercase())
    }

    /// The group and contact of `/group add|remove [GROUP] CONTACT`: the whole argument as
    /// a contact of the current group, else the first word as the group.
    fn group_and_contact(&self, arg: &str, sub: &str) -> Result<(RoomId, ContactId), CommandError> {
        let current = self.current_group(sub);
        if let Ok(g) = current
            && let Ok(c) = self.contact(arg)
        {
            return Ok((g, c));
        }
        let (first, rest) = split_word(arg);
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok((current?, self.contact(arg)?));
        }
        match (self.group(first), current) {
            (Ok(g), _) => Ok((g, self.contact(rest)?)),
            (Err(_), Ok(g)) => Ok((g, self.contact(arg)?)),
            (Err(e), Err(_)) => Err(e),
        }
    }

    /// The group and new name of `/group rename [GROUP] NAME`: in a group, the first word
    /// is a group only when it names one in full.
    fn group_and_name(&self, arg: &str) -> Result<(RoomId, String), CommandError> {
        let current = self.current_group("rename");
        let (first, rest) = split_word(arg);
        let rest = rest.trim();
        match current {
            Ok(g) if rest.is_empty() || !self.is_group_name(first) => Ok((g, arg.to_string())),
            Ok(_) => Ok((self.group(first)?, rest.to_string())),
            Err(e) if rest.is_empty() => Err(e),
            Err(_) => Ok((self.group(first)?, rest.to_string())),
        }
    }

    /// The names in `cmd` resolved.
    ///
    /// # Errors
    /// A [`CommandError`] naming what is not there, is ambiguous, or is missing; for
    /// `/invite FILE`, a FILE that exists already.
    pub fn resolve(&self, cmd: SlashCommand) -> Result<Resolved, CommandError> {
        let engine = |c: Command| Ok(Resolved::Engine(c));
        match cmd {
            SlashCommand::Invite(file) => {
                let file = file.map(|f| typed_path(&f));
                match file {
                    Some(p) if p.exists() => Err(CommandError::FileExists(p)),
                    file => Ok(Resolved::Invite(file)),
                }
            }
            SlashCommand::Accept { code, name } => engine(Command::AcceptInvite { code, name }),
            SlashCommand::Msg { target, text } => Ok(Resolved::Open {
                room: self.room(&target)?,
                text: (!text.is_empty()).then_some(text),
            }),
            SlashCommand::Room(name) => Ok(Resolved::Open {
                room: self.room(&name)?,
                text: None,
            }),
            SlashCommand::GroupCreate(name) => engine(Command::CreateGroup { name }),
            SlashCommand::GroupAdd(arg) => {
                let (room, contact) = self.group_and_contact(&arg, "add")?;
                engine(Command::GroupAdd { room, contact })
            }
            SlashCommand::GroupRemove(arg) => {
                let (room, contact) = self.group_and_contact(&arg, "remove")?;
                engine(Command::GroupRemove { room, contact })
            }
            SlashCommand::GroupLeave(name) => {
                let room = match name {
                    Some(n) => self.group(&n)?,
                    None => self.current_group("leave")?,
                };
                let name = self
                    .rooms
                    .iter()
                    .find(|r| r.id == room)
                    .map_or_else(String::new, |r| r.name.clone());
                Ok(Resolved::Leave { room, name })
            }
            SlashCommand::GroupRename(arg) => {
                let (room, name) = self.group_and_name(&arg)?;
                engine(Command::GroupRename { room, name })
            }
            SlashCommand::Nick { contact, name } => engine(Command::RenameContact {
                contact: self.contact(&contact)?,
                name,
            }),
            SlashCommand::Verify(name) => {
                let contact = match (name, self.current_summary().map(|r| r.kind)) {
                    (Some(n), _) => self.contact(&n)?,
                    (None, Some(RoomKind::Direct(c))) => c,
                    (None, _) => {
                        return Err(CommandError::NotInDirect {
                            usage: "/verify CONTACT".into(),
                        });
                    }
                };
                engine(Command::Verify { contact })
            }
            SlashCommand::Members(name) => engine(Command::Members {
                room: match name {
                    Some(n) => self.room(&n)?,
                    None => self.current_room()?,
                },
            }),
            SlashCommand::Search(query) => engine(Command::Search {
                room: self.current,
                query,
            }),
            SlashCommand::History { room, limit } => engine(Command::LoadHistory {
                room: self.room(&room)?,
                before: None,
                limit,
            }),
            SlashCommand::Read(room) => engine(Command::MarkRead {
                room: self.room(&room)?,
            }),
            SlashCommand::Rooms => Ok(Resolved::ListRooms),
            SlashCommand::Contacts => Ok(Resolved::ListContacts),
            SlashCommand::Hide(name) => Ok(Resolved::Hide(match name {
                Some(n) => self.room(&n)?,
                None => self.current_room()?,
            })),
            SlashCommand::Split => Ok(Resolved::Split),
            SlashCommand::VSplit => Ok(Resolved::VSplit),
            SlashCommand::Close => Ok(Resolved::Close),
            SlashCommand::Theme(name) => Ok(Resolved::Theme(name)),
            SlashCommand::Reconnect => engine(Command::Reconnect),
            SlashCommand::Help => Ok(Resolved::Help),
            SlashCommand::Quit => engine(Command::Quit),
        }
    }
}

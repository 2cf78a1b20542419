//! What can be wrong with a command line, in words to act on.

use std::fmt;
use std::path::PathBuf;

use crate::command::spec::Face;

/// What a name was looked for among.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Noun {
    /// A command name.
    Command,
    /// A subcommand (of `/group`).
    Subcommand,
    /// A room, or a contact whose 1:1 room is meant.
    Room,
    /// A contact.
    Contact,
    /// A group room.
    Group,
    /// A theme.
    Theme,
}

impl fmt::Display for Noun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Noun::Command => "command",
            Noun::Subcommand => "subcommand",
            Noun::Room => "room or contact",
            Noun::Contact => "contact",
            Noun::Group => "group",
            Noun::Theme => "theme",
        })
    }
}

/// Why a command line cannot be run. The same words on both faces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A lone `/`.
    #[error("type a command after /, or /help")]
    Empty,
    /// No command has this name or starts with it.
    #[error("unknown command /{0} (/help lists them)")]
    UnknownCommand(String),
    /// The command exists, but only in the other face.
    #[error("/{command} is a command of {}, not of {}", .only.name(), .here.name())]
    OtherFace {
        /// The command's name.
        command: &'static str,
        /// The face that has it.
        only: Face,
        /// The face it was typed in.
        here: Face,
    },
    /// Nothing of this kind has this name or starts with it.
    #[error("no {what} named {name}")]
    NoSuch {
        /// What was looked for.
        what: Noun,
        /// The name as typed.
        name: String,
    },
    /// Several start with what was typed.
    #[error("{name} is ambiguous: {}", .candidates.join(", "))]
    Ambiguous {
        /// What was looked for.
        what: Noun,
        /// The name as typed.
        name: String,
        /// The names it could be, sorted.
        candidates: Vec<String>,
    },
    /// The arguments do not fit the command.
    #[error("usage: {0}")]
    Usage(String),
    /// The name is a room, but not a group room.
    #[error("{0} is not a group")]
    NotAGroup(String),
    /// The contact exists, but has no room (yet).
    #[error("no room with {0} yet")]
    NoRoomYet(String),
    /// A command about the current group, with no group room current.
    #[error("not in a group room: open one first, or name it ({usage})")]
    NotInGroup {
        /// How to name the group instead.
        usage: String,
    },
    /// A command about the current 1:1 room, with none current.
    #[error("not in a 1:1 room: name the contact ({usage})")]
    NotInDirect {
        /// How to name the contact instead.
        usage: String,
    },
    /// A command or message for the current room, with none current.
    #[error("no current room: {}", open_hint(*.0))]
    NoCurrentRoom(Face),
    /// The room was left or its member removed: it is read-only.
    #[error("this room is closed (you left or were removed)")]
    Closed,
    /// A number was wanted.
    #[error("{0} is not a number")]
    NotANumber(String),
    /// `/invite FILE` names a file that is there already (it is never overwritten).
    #[error("{} exists: give a new file's name", .0.display())]
    FileExists(PathBuf),
}

/// How a face makes a room current.
fn open_hint(face: Face) -> &'static str {
    match face {
        Face::Tui => "/msg NAME, or Alt-1..9 to pick one",
        Face::Plain => "/room NAME, or /msg NAME TEXT",
    }
}

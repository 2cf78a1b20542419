//! hum's slash-command language, one for both faces.
//!
//! The table of commands ([`COMMANDS`]: name, arguments, what each does, which faces have
//! it), the parser ([`parse`]), the name resolver ([`Resolver`]: rooms, contacts and
//! groups, exactly or by a unique prefix) and Tab completion ([`complete`]) are shared by
//! the TUI and `--plain`. The faces differ only in what they do with a [`Resolved`]
//! command: the TUI opens a pane where the line mode makes a room current, shows an
//! overlay where the line mode prints lines.
//!
//! ```
//! use hum::api::{Command, ContactId, RoomId, RoomKind, RoomSummary};
//! use hum::command::{Face, Resolved, Resolver, parse};
//!
//! let team = RoomSummary {
//!     id: RoomId(7),
//!     name: "team".into(),
//!     kind: RoomKind::Group,
//!     members: vec![],
//!     unread: 0,
//!     mentions: 0,
//!     closed: false,
//! };
//! let contacts = [(ContactId(2), "bob")];
//! let names = Resolver::new(Face::Plain, [&team], contacts, None);
//! let cmd = parse("/g add te bob", Face::Plain)?;
//! assert_eq!(
//!     names.resolve(cmd)?,
//!     Resolved::Engine(Command::GroupAdd { room: RoomId(7), contact: ContactId(2) })
//! );
//! # Ok::<(), hum::command::CommandError>(())
//! ```

mod complete;
mod error;
mod invite;
mod parse;
mod resolve;
mod spec;

pub use complete::{Completion, Names, common_prefix, complete};
pub use error::{CommandError, Noun};
pub use invite::{invite_code, saved_note, split_accept, typed_path, write_invite};
pub use parse::{HISTORY_LINES, SlashCommand, command_name, parse};
pub use resolve::{Resolved, Resolver, pick};
pub use spec::{
    COMMANDS, CommandSpec, Completes, Face, Faces, help_line, markdown, names_for, specs,
    specs_named,
};

#[cfg(test)]
mod tests;

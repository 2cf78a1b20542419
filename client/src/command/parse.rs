//! The parser: a line starting with `/` becomes a [`SlashCommand`], names still as typed.

use crate::command::error::{CommandError, Noun};
use crate::command::invite::{now_unix, split_accept};
use crate::command::resolve::pick;
use crate::command::spec::{self, COMMANDS, Face};

/// Lines of history `/history` prints when no number is given.
pub const HISTORY_LINES: u32 = 50;

/// A slash command as typed, before names are resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlashCommand {
    /// `/invite [FILE]`: make an invite code (and write it to FILE).
    Invite(Option<String>),
    /// `/accept CODE [NAME]`.
    Accept {
        /// The invite code, its pieces joined.
        code: String,
        /// The contact's nickname.
        name: Option<String>,
    },
    /// `/msg NAME [TEXT]`: open a contact's or group's room, and send TEXT if given.
    Msg {
        /// Contact or room name.
        target: String,
        /// The text (may be empty).
        text: String,
    },
    /// `/room ROOM`: make a room current.
    Room(String),
    /// `/group create NAME`.
    GroupCreate(String),
    /// `/group add [GROUP] CONTACT`: the words after `add` (the group is the current one
    /// unless the first word names a group).
    GroupAdd(String),
    /// `/group remove [GROUP] CONTACT`, as for `add`.
    GroupRemove(String),
    /// `/group leave [GROUP]`.
    GroupLeave(Option<String>),
    /// `/group rename [GROUP] NAME`: the words after `rename`.
    GroupRename(String),
    /// `/nick CONTACT NEWNAME`.
    Nick {
        /// The contact.
        contact: String,
        /// The new nickname.
        name: String,
    },
    /// `/verify [CONTACT]`: show the safety number.
    Verify(Option<String>),
    /// `/members [ROOM]`.
    Members(Option<String>),
    /// `/search TEXT`.
    Search(String),
    /// `/history ROOM [N]`.
    History {
        /// The room.
        room: String,
        /// How many lines.
        limit: u32,
    },
    /// `/read ROOM`.
    Read(String),
    /// `/rooms`.
    Rooms,
    /// `/contacts`.
    Contacts,
    /// `/hide [ROOM]`: take a closed room off the room list.
    Hide(Option<String>),
    /// `/split`.
    Split,
    /// `/vsplit`.
    VSplit,
    /// `/close`.
    Close,
    /// `/theme [NAME]`: switch, or list themes.
    Theme(Option<String>),
    /// `/reconnect`: links that are down try again now.
    Reconnect,
    /// `/help`.
    Help,
    /// `/quit`.
    Quit,
}

/// The first word of `s` and what follows it.
pub(crate) fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// The command a word names in `face`: exactly, by an alias, or by a unique prefix.
///
/// # Errors
/// [`CommandError::UnknownCommand`], [`CommandError::Ambiguous`], or
/// [`CommandError::OtherFace`] for a command only the other face has.
pub fn command_name(word: &str, face: Face) -> Result<&'static str, CommandError> {
    let lower = word.to_lowercase();
    if let Some(c) = spec::specs(face).find(|c| c.aliases.contains(&lower.as_str())) {
        return Ok(c.name);
    }
    let names = spec::names_for(face);
    match pick(word, names.iter().map(|n| (*n, *n)), Noun::Command) {
        Err(CommandError::NoSuch { .. }) => {
            let elsewhere = COMMANDS
                .iter()
                .find(|c| c.name == lower || c.aliases.contains(&lower.as_str()));
            Err(match elsewhere {
                Some(c) => CommandError::OtherFace {
                    command: c.name,
                    only: if face == Face::Tui {
                        Face::Plain
                    } else {
                        Face::Tui
                    },
                    here: face,
                },
                None => CommandError::UnknownCommand(word.to_string()),
            })
        }
        other => other,
    }
}

/// Parse a line that starts with `/`, for `face`.
///
/// # Errors
/// A [`CommandError`] saying what is wrong and how the command is used.
pub fn parse(line: &str, face: Face) -> Result<SlashCommand, CommandError> {
    let body = line.strip_prefix('/').unwrap_or(line).trim_start();
    let (word, rest) = split_word(body);
    if word.is_empty() {
        return Err(CommandError::Empty);
    }
    let name = command_name(word, face)?;
    let rest = rest.trim();
    let usage = || usage_error(name, None, face);
    let need = |s: &str| {
        if s.is_empty() {
            Err(usage())
        } else {
            Ok(s.to_string())
        }
    };
    let optional = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let none = |cmd: SlashCommand| {
        if rest.is_empty() {
            Ok(cmd)
        } else {
            Err(usage())
        }
    };
    match name {
        "invite" => Ok(SlashCommand::Invite(optional(rest))),
        "accept" => {
            need(rest)?;
            let (code, name) = split_accept(rest, now_unix());
            Ok(SlashCommand::Accept { code, name })
        }
        "msg" => {
            let (target, text) = split_word(rest);
            Ok(SlashCommand::Msg {
                target: need(target)?,
                text: text.trim_start().to_string(),
            })
        }
        "room" => {
            let (room, more) = split_word(rest);
            if !more.trim().is_empty() {
                return Err(usage());
            }
            Ok(SlashCommand::Room(need(room)?))
        }
        "group" => parse_group(rest, face),
        "nick" => {
            let (contact, new) = split_word(rest);
            let new = new.trim();
            if contact.is_empty() || new.is_empty() {
                return Err(usage());
            }
            Ok(SlashCommand::Nick {
                contact: contact.to_string(),
                name: new.to_string(),
            })
        }
        "verify" => Ok(SlashCommand::Verify(optional(rest))),
        "members" => Ok(SlashCommand::Members(optional(rest))),
        "search" => Ok(SlashCommand::Search(need(rest)?)),
        "history" => {
            let (room, n) = split_word(rest);
            let limit = match n.trim() {
                "" => HISTORY_LINES,
                n => n
                    .parse()
                    .map_err(|_| CommandError::NotANumber(n.to_string()))?,
            };
            Ok(SlashCommand::History {
                room: need(room)?,
                limit,
            })
        }
        "read" => Ok(SlashCommand::Read(need(rest)?)),
        "rooms" => none(SlashCommand::Rooms),
        "contacts" => none(SlashCommand::Contacts),
        "hide" => Ok(SlashCommand::Hide(optional(rest))),
        "split" => none(SlashCommand::Split),
        "vsplit" => none(SlashCommand::VSplit),
        "close" => none(SlashCommand::Close),
        "theme" => Ok(SlashCommand::Theme(optional(rest))),
        "reconnect" => none(SlashCommand::Reconnect),
        "help" => Ok(SlashCommand::Help),
        "quit" => Ok(SlashCommand::Quit),
        other => Err(CommandError::UnknownCommand(other.to_string())),
    }
}

/// How `name` (and `sub`) is used, as an error.
fn usage_error(name: &str, sub: Option<&str>, face: Face) -> CommandError {
    CommandError::Usage(
        spec::find(name, sub, face).map_or_else(|| spec::usage_of(name, face), |c| c.usage()),
    )
}

/// `/group SUB ARGS`.
fn parse_group(rest: &str, face: Face) -> Result<SlashCommand, CommandError> {
    let whole = || usage_error("group", None, face);
    let (sub, arg) = split_word(rest);
    if sub.is_empty() {
        return Err(whole());
    }
    let subs: Vec<&'static str> = spec::specs_named("group", face)
        .filter_map(|c| c.sub)
        .collect();
    let sub = pick(sub, subs.iter().map(|s| (*s, *s)), Noun::Subcommand).map_err(|e| match e {
        CommandError::NoSuch { .. } => whole(),
        other => other,
    })?;
    let arg = arg.trim();
    let need = || {
        if arg.is_empty() {
            Err(usage_error("group", Some(sub), face))
        } else {
            Ok(arg.to_string())
        }
    };
    match sub {
        "create" => Ok(SlashCommand::GroupCreate(need()?)),
        "add" => Ok(SlashCommand::GroupAdd(need()?)),
        "remove" => Ok(SlashCommand::GroupRemove(need()?)),
        "rename" => Ok(SlashCommand::GroupRename(need()?)),
        _ => Ok(SlashCommand::GroupLeave(
            (!arg.is_empty()).then(|| arg.to_string()),
        )),
    }
}

//! Slash commands: parsing (unique prefixes accepted) and Tab completion, and invite
//! codes recognised in what is typed or pasted.

use hum_shared::crypto::{Invite, InviteError};

/// A slash command as typed, before names are resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlashCommand {
    /// `/invite [FILE]`: make an invite code (and write it to FILE).
    Invite(Option<String>),
    /// `/accept CODE [NAME]`.
    Accept {
        /// The invite code.
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
    /// `/group create NAME`.
    GroupCreate(String),
    /// `/group add [GROUP] CONTACT`: the words after `add` (the group is the focused one
    /// unless the first word names a group).
    GroupAdd(String),
    /// `/group remove [GROUP] CONTACT`, as for `add`.
    GroupRemove(String),
    /// `/group leave [GROUP]`.
    GroupLeave(Option<String>),
    /// `/group rename [GROUP] NAME`, as for `add`.
    GroupRename(String),
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
    /// `/verify [NAME]`: show the safety number.
    Verify(Option<String>),
    /// `/nick CONTACT NEWNAME`.
    Nick {
        /// The contact.
        contact: String,
        /// The new nickname.
        name: String,
    },
    /// `/search TEXT`.
    Search(String),
    /// `/reconnect`: links that are down try again now.
    Reconnect,
    /// `/members`: the focused room's members.
    Members,
    /// `/help`.
    Help,
    /// `/quit`.
    Quit,
}

/// One command's name, arguments and purpose, for parsing, completion and help.
#[derive(Debug, Clone, Copy)]
pub(super) struct CommandSpec {
    /// The name, without the slash.
    pub name: &'static str,
    /// The arguments.
    pub usage: &'static str,
    /// What it does.
    pub help: &'static str,
}

/// Every slash command.
pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "accept",
        usage: "CODE [NAME]",
        help: "add a contact from their invite code",
    },
    CommandSpec {
        name: "close",
        usage: "",
        help: "close the focused pane",
    },
    CommandSpec {
        name: "group",
        usage: "create|add|remove|leave|rename [GROUP] [NAME]",
        help: "manage group rooms",
    },
    CommandSpec {
        name: "help",
        usage: "",
        help: "show keys and commands",
    },
    CommandSpec {
        name: "hide",
        usage: "[ROOM]",
        help: "take a closed room off the room list",
    },
    CommandSpec {
        name: "invite",
        usage: "[FILE]",
        help: "make an invite code to give someone (and save it to FILE)",
    },
    CommandSpec {
        name: "members",
        usage: "",
        help: "list this room's members",
    },
    CommandSpec {
        name: "msg",
        usage: "NAME [TEXT]",
        help: "open a room (and send TEXT)",
    },
    CommandSpec {
        name: "nick",
        usage: "CONTACT NEWNAME",
        help: "rename a contact (locally)",
    },
    CommandSpec {
        name: "quit",
        usage: "",
        help: "leave hum",
    },
    CommandSpec {
        name: "reconnect",
        usage: "",
        help: "try the relay again now",
    },
    CommandSpec {
        name: "search",
        usage: "TEXT",
        help: "search this room's history",
    },
    CommandSpec {
        name: "split",
        usage: "",
        help: "split the pane, stacked",
    },
    CommandSpec {
        name: "theme",
        usage: "[NAME]",
        help: "switch theme (no name: list them)",
    },
    CommandSpec {
        name: "verify",
        usage: "[NAME]",
        help: "show the safety number with a contact",
    },
    CommandSpec {
        name: "vsplit",
        usage: "",
        help: "split the pane, side by side",
    },
];

/// The `/group` subcommands.
pub(super) const GROUP_SUBCOMMANDS: &[&str] = &["add", "create", "leave", "remove", "rename"];

/// Resolve a possibly abbreviated word against a list: exact match, or unique prefix.
///
/// # Errors
/// A message for no match or an ambiguous prefix.
pub(super) fn resolve<'a>(word: &str, list: &[&'a str], what: &str) -> Result<&'a str, String> {
    let w = word.to_lowercase();
    if let Some(exact) = list.iter().find(|c| c.to_lowercase() == w) {
        return Ok(exact);
    }
    let hits: Vec<&str> = list
        .iter()
        .copied()
        .filter(|c| c.to_lowercase().starts_with(&w))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("unknown {what} {word:?}")),
        many => Err(format!("{word:?} could be: {}", many.join(", "))),
    }
}

fn usage(name: &str) -> String {
    let u = COMMANDS
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.usage)
        .unwrap_or("");
    format!("usage: /{name} {u}").trim_end().to_string()
}

/// Parse a line that starts with `/`.
///
/// # Errors
/// A message saying what is wrong and how the command is used.
pub fn parse(line: &str) -> Result<SlashCommand, String> {
    let body = line.strip_prefix('/').unwrap_or(line).trim_start();
    let (word, rest) = split_word(body);
    if word.is_empty() {
        return Err("type a command after /, or /help".into());
    }
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    let name = resolve(word, &names, "command").map_err(|e| format!("{e} (see /help)"))?;
    let rest = rest.trim();
    let need = |s: &str| {
        if s.is_empty() {
            Err(usage(name))
        } else {
            Ok(s.to_string())
        }
    };
    let none = |cmd: SlashCommand| {
        if rest.is_empty() {
            Ok(cmd)
        } else {
            Err(usage(name))
        }
    };
    match name {
        "invite" => Ok(SlashCommand::Invite(
            (!rest.is_empty()).then(|| rest.to_string()),
        )),
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
        "group" => {
            let (sub, arg) = split_word(rest);
            if sub.is_empty() {
                return Err(usage("group"));
            }
            let sub = resolve(sub, GROUP_SUBCOMMANDS, "group command")
                .map_err(|e| format!("{e}; {}", usage("group")))?;
            let arg = arg.trim();
            let need_arg = || {
                if arg.is_empty() {
                    Err(format!("usage: /group {sub} NAME"))
                } else {
                    Ok(arg.to_string())
                }
            };
            match sub {
                "create" => Ok(SlashCommand::GroupCreate(need_arg()?)),
                "add" => Ok(SlashCommand::GroupAdd(need_arg()?)),
                "remove" => Ok(SlashCommand::GroupRemove(need_arg()?)),
                "rename" => Ok(SlashCommand::GroupRename(need_arg()?)),
                _ => Ok(SlashCommand::GroupLeave(
                    (!arg.is_empty()).then(|| arg.to_string()),
                )),
            }
        }
        "split" => none(SlashCommand::Split),
        "vsplit" => none(SlashCommand::VSplit),
        "close" => none(SlashCommand::Close),
        "theme" => Ok(SlashCommand::Theme(
            (!rest.is_empty()).then(|| rest.to_string()),
        )),
        "verify" => Ok(SlashCommand::Verify(
            (!rest.is_empty()).then(|| rest.to_string()),
        )),
        "nick" => {
            let (contact, new) = split_word(rest);
            let new = new.trim();
            if contact.is_empty() || new.is_empty() {
                return Err(usage("nick"));
            }
            Ok(SlashCommand::Nick {
                contact: contact.to_string(),
                name: new.to_string(),
            })
        }
        "search" => Ok(SlashCommand::Search(need(rest)?)),
        "reconnect" => none(SlashCommand::Reconnect),
        "members" => none(SlashCommand::Members),
        "hide" => Ok(SlashCommand::Hide(
            (!rest.is_empty()).then(|| rest.to_string()),
        )),
        "help" => Ok(SlashCommand::Help),
        "quit" => Ok(SlashCommand::Quit),
        _ => Err(format!("unknown command /{name}")),
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The code's characters after `hum1-` (Crockford base32, either case).
fn code_char(c: char) -> bool {
    c.is_ascii_digit()
        || (c.is_ascii_alphabetic() && !matches!(c.to_ascii_lowercase(), 'i' | 'l' | 'o' | 'u'))
}

/// Whether a word starts like an invite code: `hum`, a version number, `-`.
fn starts_like_code(word: &str) -> bool {
    let Some(rest) = word.get(..3).filter(|p| p.eq_ignore_ascii_case("hum")) else {
        return false;
    };
    let rest = &word[rest.len()..];
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && rest[digits..].starts_with('-')
}

/// The invite code in `text` when the text is nothing but a code, perhaps copied off a
/// terminal over several lines (spaces and line breaks inside it are dropped).
pub(super) fn invite_code(text: &str) -> Option<String> {
    let code: String = text.split_whitespace().collect();
    let body = code.split_once('-').map(|(_, b)| b)?;
    (starts_like_code(&code) && body.len() >= 32 && body.chars().all(code_char)).then_some(code)
}

/// Split the words after `/accept` into the code and the contact's name. A code copied off
/// the screen arrives in pieces, one per row: the code is the most leading words that join
/// into a code whose checksum holds; the words after it are the name. When no such code is
/// there (a damaged one), the words up to the first that cannot be part of a code are taken,
/// so the engine can say what is wrong with it.
pub(super) fn split_accept(rest: &str, now_unix: u64) -> (String, Option<String>) {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let name_of = |k: usize| {
        let n = words[k..].join(" ");
        (!n.is_empty()).then_some(n)
    };
    for k in (1..=words.len()).rev() {
        let code: String = words[..k].concat();
        // These answers come only once the checksum held.
        if matches!(
            Invite::decode(&code, now_unix),
            Ok(_) | Err(InviteError::Expired { .. } | InviteError::Forged | InviteError::Malformed)
        ) {
            return (code, name_of(k));
        }
    }
    let k = if words.first().is_some_and(|w| starts_like_code(w)) {
        1 + words[1..]
            .iter()
            .take_while(|w| w.chars().all(code_char) && w.len() > 3)
            .count()
    } else {
        1
    };
    let k = k.min(words.len());
    (words[..k].concat(), name_of(k))
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// What Tab can complete at the end of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Byte offset in the line where the word being completed starts.
    pub start: usize,
    /// The candidates, sorted.
    pub candidates: Vec<String>,
}

/// Candidates for the last word of `line`: command names after `/`, group subcommands,
/// contact and room names as arguments, theme names after `/theme`, `@name` from `people`
/// (contacts and the room's members) for a word starting with `@`, and names in plain text.
pub fn complete(line: &str, names: &[String], themes: &[String], people: &[String]) -> Completion {
    let start = line
        .rfind(char::is_whitespace)
        .map(|i| i + line[i..].chars().next().map_or(1, char::len_utf8))
        .unwrap_or(0);
    let word = &line[start..];
    let lw = word.to_lowercase();
    let filter = |list: Vec<String>| {
        let mut v: Vec<String> = list
            .into_iter()
            .filter(|c| c.to_lowercase().starts_with(&lw))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    if let Some(partial) = word.strip_prefix('@') {
        let lp = partial.to_lowercase();
        let mut v: Vec<String> = people
            .iter()
            .filter(|p| p.to_lowercase().starts_with(&lp))
            .map(|p| format!("@{p}"))
            .collect();
        v.sort();
        v.dedup();
        return Completion {
            start,
            candidates: v,
        };
    }
    if let Some(body) = line.strip_prefix('/') {
        let words: Vec<&str> = body[..start.saturating_sub(1).min(body.len())]
            .split_whitespace()
            .collect();
        if start == 0 {
            let list = COMMANDS.iter().map(|c| format!("/{}", c.name)).collect();
            return Completion {
                start,
                candidates: filter(list),
            };
        }
        let cmd = words.first().and_then(|w| {
            let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
            resolve(w, &names, "command").ok()
        });
        let list: Vec<String> = match (cmd, words.len()) {
            (Some("group"), 1) => GROUP_SUBCOMMANDS.iter().map(|s| s.to_string()).collect(),
            (Some("group"), 2 | 3)
                if matches!(
                    words.get(1),
                    Some(&"add") | Some(&"remove") | Some(&"a") | Some(&"rem")
                ) =>
            {
                names.to_vec()
            }
            (Some("msg" | "verify" | "nick" | "hide"), 1) => names.to_vec(),
            (Some("theme"), 1) => themes.to_vec(),
            _ => Vec::new(),
        };
        return Completion {
            start,
            candidates: filter(list),
        };
    }
    if word.is_empty() {
        return Completion {
            start,
            candidates: Vec::new(),
        };
    }
    Completion {
        start,
        candidates: filter(names.to_vec()),
    }
}

/// The longest prefix shared by every candidate (by characters, case as in the first).
pub(super) fn common_prefix(c: &[String]) -> String {
    let Some(first) = c.first() else {
        return String::new();
    };
    let mut n = first.len();
    for s in &c[1..] {
        n = first
            .char_indices()
            .zip(s.chars())
            .take_while(|((_, a), b)| a.to_lowercase().eq(b.to_lowercase()))
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(n);
    }
    first[..n].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(parse("/invite"), Ok(SlashCommand::Invite(None)));
        assert_eq!(
            parse("/invite code.txt"),
            Ok(SlashCommand::Invite(Some("code.txt".into())))
        );
        assert_eq!(
            parse("/accept hum1abc Bob Smith"),
            Ok(SlashCommand::Accept {
                code: "hum1abc".into(),
                name: Some("Bob Smith".into())
            })
        );
        assert_eq!(
            parse("/accept hum1abc"),
            Ok(SlashCommand::Accept {
                code: "hum1abc".into(),
                name: None
            })
        );
        assert_eq!(
            parse("/msg alice hi there"),
            Ok(SlashCommand::Msg {
                target: "alice".into(),
                text: "hi there".into()
            })
        );
        assert_eq!(
            parse("/group create team"),
            Ok(SlashCommand::GroupCreate("team".into()))
        );
        assert_eq!(
            parse("/group add bob"),
            Ok(SlashCommand::GroupAdd("bob".into()))
        );
        assert_eq!(
            parse("/group remove bob"),
            Ok(SlashCommand::GroupRemove("bob".into()))
        );
        assert_eq!(parse("/group leave"), Ok(SlashCommand::GroupLeave(None)));
        assert_eq!(
            parse("/g l team"),
            Ok(SlashCommand::GroupLeave(Some("team".into())))
        );
        assert_eq!(
            parse("/group add team bob"),
            Ok(SlashCommand::GroupAdd("team bob".into()))
        );
        assert_eq!(parse("/hide"), Ok(SlashCommand::Hide(None)));
        assert_eq!(
            parse("/group rename crew"),
            Ok(SlashCommand::GroupRename("crew".into()))
        );
        assert_eq!(parse("/split"), Ok(SlashCommand::Split));
        assert_eq!(parse("/vsplit"), Ok(SlashCommand::VSplit));
        assert_eq!(parse("/close"), Ok(SlashCommand::Close));
        assert_eq!(
            parse("/theme light"),
            Ok(SlashCommand::Theme(Some("light".into())))
        );
        assert_eq!(parse("/theme"), Ok(SlashCommand::Theme(None)));
        assert_eq!(parse("/verify"), Ok(SlashCommand::Verify(None)));
        assert_eq!(
            parse("/verify bob"),
            Ok(SlashCommand::Verify(Some("bob".into())))
        );
        assert_eq!(
            parse("/nick bob Robert"),
            Ok(SlashCommand::Nick {
                contact: "bob".into(),
                name: "Robert".into()
            })
        );
        assert_eq!(
            parse("/search needle in"),
            Ok(SlashCommand::Search("needle in".into()))
        );
        assert_eq!(parse("/help"), Ok(SlashCommand::Help));
        assert_eq!(parse("/quit"), Ok(SlashCommand::Quit));
    }

    #[test]
    fn unique_prefixes() {
        assert_eq!(parse("/q"), Ok(SlashCommand::Quit));
        assert_eq!(parse("/inv"), Ok(SlashCommand::Invite(None)));
        assert_eq!(parse("/VS"), Ok(SlashCommand::VSplit));
        assert_eq!(
            parse("/g c team"),
            Ok(SlashCommand::GroupCreate("team".into()))
        );
        assert_eq!(
            parse("/g rem bob"),
            Ok(SlashCommand::GroupRemove("bob".into()))
        );
        assert_eq!(parse("/sp"), Ok(SlashCommand::Split));
        assert_eq!(parse("/se x"), Ok(SlashCommand::Search("x".into())));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = parse("/s").err().unwrap_or_default();
        assert!(e.contains("search") && e.contains("split"), "{e}");
        let e = parse("/frobnicate").err().unwrap_or_default();
        assert!(e.contains("unknown command"), "{e}");
        assert_eq!(parse("/accept"), Err("usage: /accept CODE [NAME]".into()));
        assert_eq!(parse("/msg"), Err("usage: /msg NAME [TEXT]".into()));
        assert_eq!(
            parse("/nick bob"),
            Err("usage: /nick CONTACT NEWNAME".into())
        );
        assert!(
            parse("/group re x")
                .err()
                .unwrap_or_default()
                .contains("remove, rename")
        );
        assert_eq!(
            parse("/group create"),
            Err("usage: /group create NAME".into())
        );
        assert_eq!(parse("/quit"), Ok(SlashCommand::Quit));
        assert!(parse("/split now").is_err());
        assert!(parse("/").is_err());
    }

    #[test]
    fn completes_commands_names_and_themes() {
        let names = vec![
            "alice".to_string(),
            "albert".to_string(),
            "team".to_string(),
        ];
        let themes = vec!["dark".to_string(), "light".to_string()];
        let c = complete("/inv", &names, &themes, &[]);
        assert_eq!(c.candidates, vec!["/invite"]);
        assert_eq!(c.start, 0);
        let c = complete("/s", &names, &themes, &[]);
        assert_eq!(c.candidates, vec!["/search", "/split"]);
        let c = complete("/msg al", &names, &themes, &[]);
        assert_eq!(
            (c.start, c.candidates),
            (5, vec!["albert".to_string(), "alice".to_string()])
        );
        let c = complete("/group a", &names, &themes, &[]);
        assert_eq!(c.candidates, vec!["add"]);
        let c = complete("/group add t", &names, &themes, &[]);
        assert_eq!(c.candidates, vec!["team"]);
        let c = complete("/theme l", &names, &themes, &[]);
        assert_eq!(c.candidates, vec!["light"]);
        let c = complete("hi te", &names, &themes, &[]);
        assert_eq!((c.start, c.candidates), (3, vec!["team".to_string()]));
        assert_eq!(common_prefix(&["albert".into(), "alice".into()]), "al");
        let people = vec!["carol".to_string(), "Cathy".to_string()];
        let c = complete("hi @ca", &names, &themes, &people);
        assert_eq!(
            (c.start, c.candidates),
            (3, vec!["@Cathy".to_string(), "@carol".to_string()])
        );
        let c = complete("/msg team @ca", &names, &themes, &people);
        assert_eq!(c.candidates.len(), 2);
    }
}

//! Slash commands: parsing (unique prefixes accepted) and Tab completion.

/// A slash command as typed, before names are resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlashCommand {
    /// `/invite`: make an invite code.
    Invite,
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
    /// `/group add NAME`.
    GroupAdd(String),
    /// `/group remove NAME`.
    GroupRemove(String),
    /// `/group leave`.
    GroupLeave,
    /// `/group rename NAME`.
    GroupRename(String),
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
        usage: "create|add|remove|leave|rename [NAME]",
        help: "manage group rooms",
    },
    CommandSpec {
        name: "help",
        usage: "",
        help: "show keys and commands",
    },
    CommandSpec {
        name: "invite",
        usage: "",
        help: "make an invite code to give someone",
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
        "invite" => none(SlashCommand::Invite),
        "accept" => {
            let (code, name_part) = split_word(rest);
            let code = need(code)?;
            let nick = name_part.trim();
            Ok(SlashCommand::Accept {
                code,
                name: (!nick.is_empty()).then(|| nick.to_string()),
            })
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
                _ if arg.is_empty() => Ok(SlashCommand::GroupLeave),
                _ => Err("usage: /group leave".into()),
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
        "help" => Ok(SlashCommand::Help),
        "quit" => Ok(SlashCommand::Quit),
        _ => Err(format!("unknown command /{name}")),
    }
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
/// contact and room names as arguments, theme names after `/theme`, and names in plain
/// text.
pub fn complete(line: &str, names: &[String], themes: &[String]) -> Completion {
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
            (Some("group"), 2)
                if matches!(
                    words.get(1),
                    Some(&"add") | Some(&"remove") | Some(&"a") | Some(&"rem")
                ) =>
            {
                names.to_vec()
            }
            (Some("msg" | "verify" | "nick"), 1) => names.to_vec(),
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
        assert_eq!(parse("/invite"), Ok(SlashCommand::Invite));
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
        assert_eq!(parse("/group leave"), Ok(SlashCommand::GroupLeave));
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
        assert_eq!(parse("/inv"), Ok(SlashCommand::Invite));
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
        let c = complete("/inv", &names, &themes);
        assert_eq!(c.candidates, vec!["/invite"]);
        assert_eq!(c.start, 0);
        let c = complete("/s", &names, &themes);
        assert_eq!(c.candidates, vec!["/search", "/split"]);
        let c = complete("/msg al", &names, &themes);
        assert_eq!(
            (c.start, c.candidates),
            (5, vec!["albert".to_string(), "alice".to_string()])
        );
        let c = complete("/group a", &names, &themes);
        assert_eq!(c.candidates, vec!["add"]);
        let c = complete("/group add t", &names, &themes);
        assert_eq!(c.candidates, vec!["team"]);
        let c = complete("/theme l", &names, &themes);
        assert_eq!(c.candidates, vec!["light"]);
        let c = complete("hi te", &names, &themes);
        assert_eq!((c.start, c.candidates), (3, vec!["team".to_string()]));
        assert_eq!(common_prefix(&["albert".into(), "alice".into()]), "al");
    }
}

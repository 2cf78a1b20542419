//! The table of commands: name, arguments, what each does and which faces have it. The
//! parser, completion, the TUI's help overlay, the line mode's `/help` and the command
//! tables of docs/KEYS.md and docs/PLAIN.md all come from it.

/// One of hum's two faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Face {
    /// The ratatui TUI.
    Tui,
    /// The line mode, `hum --plain`.
    Plain,
}

impl Face {
    /// The face in words, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Face::Tui => "the TUI",
            Face::Plain => "the line mode (hum --plain)",
        }
    }
}

/// Which faces have a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Faces {
    /// The TUI and the line mode.
    Both,
    /// Only the TUI (panes, themes, the room list).
    Tui,
    /// Only the line mode (listings and history as lines).
    Plain,
}

impl Faces {
    /// Whether `face` has the command.
    pub fn has(self, face: Face) -> bool {
        matches!(
            (self, face),
            (Faces::Both, _) | (Faces::Tui, Face::Tui) | (Faces::Plain, Face::Plain)
        )
    }
}

/// What Tab offers for a command's leading arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completes {
    /// Nothing (free text, codes, files).
    Nothing,
    /// Contact, room and group names, for this many leading arguments.
    Names(usize),
    /// Theme names, for the first argument.
    Themes,
}

/// One command: `/name [sub] args`, what it does, and where it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// The name, without the slash.
    pub name: &'static str,
    /// The subcommand, for `/group`'s.
    pub sub: Option<&'static str>,
    /// The arguments as the help shows them (`[X]` is optional).
    pub args: &'static str,
    /// What it does.
    pub help: &'static str,
    /// The faces that have it.
    pub faces: Faces,
    /// Other names that work in full (not as prefixes).
    pub aliases: &'static [&'static str],
    /// What Tab completes in its arguments.
    pub completes: Completes,
}

impl CommandSpec {
    /// `/name sub args`, as typed.
    pub fn usage(&self) -> String {
        let mut s = format!("/{}", self.name);
        for part in [self.sub.unwrap_or(""), self.args] {
            if !part.is_empty() {
                s.push(' ');
                s.push_str(part);
            }
        }
        s
    }
}

const fn spec(
    name: &'static str,
    sub: Option<&'static str>,
    args: &'static str,
    help: &'static str,
    faces: Faces,
) -> CommandSpec {
    CommandSpec {
        name,
        sub,
        args,
        help,
        faces,
        aliases: &[],
        completes: Completes::Nothing,
    }
}

const fn names(mut s: CommandSpec, n: usize) -> CommandSpec {
    s.completes = Completes::Names(n);
    s
}

const fn alias(mut s: CommandSpec, aliases: &'static [&'static str]) -> CommandSpec {
    s.aliases = aliases;
    s
}

/// Every command of both faces, in the order the help lists them.
pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "invite",
        None,
        "[FILE]",
        "make an invite code to give one person (and save it to FILE)",
        Faces::Both,
    ),
    spec(
        "accept",
        None,
        "CODE [NAME]",
        "add a contact from their invite code, calling them NAME (spaces and line breaks inside the code are ignored)",
        Faces::Both,
    ),
    names(
        spec(
            "msg",
            None,
            "NAME [TEXT]",
            "open the room of a contact or group, and send TEXT if given",
            Faces::Both,
        ),
        1,
    ),
    names(
        alias(
            spec(
                "room",
                None,
                "ROOM",
                "make ROOM current: lines not starting with / go there",
                Faces::Plain,
            ),
            &["join"],
        ),
        1,
    ),
    spec(
        "group",
        Some("create"),
        "NAME",
        "create a group room and open it",
        Faces::Both,
    ),
    names(
        spec(
            "group",
            Some("add"),
            "[GROUP] CONTACT",
            "add a contact to the current group, or to GROUP (admin only)",
            Faces::Both,
        ),
        2,
    ),
    names(
        spec(
            "group",
            Some("remove"),
            "[GROUP] CONTACT",
            "remove a member from the current group, or from GROUP (admin only; every key rotates)",
            Faces::Both,
        ),
        2,
    ),
    names(
        spec(
            "group",
            Some("leave"),
            "[GROUP]",
            "leave the current group, or GROUP",
            Faces::Both,
        ),
        1,
    ),
    names(
        spec(
            "group",
            Some("rename"),
            "[GROUP] NAME",
            "rename the current group, or GROUP, named in full (admin only)",
            Faces::Both,
        ),
        1,
    ),
    names(
        spec(
            "nick",
            None,
            "CONTACT NEWNAME",
            "rename a contact (locally)",
            Faces::Both,
        ),
        1,
    ),
    names(
        spec(
            "verify",
            None,
            "[CONTACT]",
            "show the safety number to compare with a contact (the current 1:1 room's by default)",
            Faces::Both,
        ),
        1,
    ),
    names(
        spec(
            "members",
            None,
            "[ROOM]",
            "list a room's members (the current room's by default): you, the admin, and who is not your contact, with their fingerprint",
            Faces::Both,
        ),
        1,
    ),
    spec(
        "search",
        None,
        "TEXT",
        "search the current room's history (every room's when none is current)",
        Faces::Both,
    ),
    names(
        spec(
            "history",
            None,
            "ROOM [N]",
            "the last N lines of the room's history (default 50): messages and events",
            Faces::Plain,
        ),
        1,
    ),
    names(
        spec("read", None, "ROOM", "mark a room read", Faces::Plain),
        1,
    ),
    spec("rooms", None, "", "list the rooms", Faces::Plain),
    spec("contacts", None, "", "list the contacts", Faces::Plain),
    names(
        spec(
            "hide",
            None,
            "[ROOM]",
            "take a closed room (one you left or were removed from) off the room list; its history stays, and it stays hidden after a restart",
            Faces::Tui,
        ),
        1,
    ),
    spec(
        "split",
        None,
        "",
        "split the focused pane, stacked",
        Faces::Tui,
    ),
    spec(
        "vsplit",
        None,
        "",
        "split the focused pane, side by side",
        Faces::Tui,
    ),
    spec("close", None, "", "close the focused pane", Faces::Tui),
    CommandSpec {
        completes: Completes::Themes,
        ..spec(
            "theme",
            None,
            "[NAME]",
            "switch theme and remember it in the profile's config file (no name: list them)",
            Faces::Tui,
        )
    },
    spec(
        "reconnect",
        None,
        "",
        "relay links that are down try again now, without waiting out the backoff",
        Faces::Both,
    ),
    spec(
        "help",
        None,
        "",
        "list the commands (and, in the TUI, the keys)",
        Faces::Both,
    ),
    alias(spec("quit", None, "", "leave hum", Faces::Both), &["exit"]),
];

/// The commands `face` has, in table order.
pub fn specs(face: Face) -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS.iter().filter(move |c| c.faces.has(face))
}

/// The command names `face` has, each once, in table order.
pub fn names_for(face: Face) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for c in specs(face) {
        if !v.contains(&c.name) {
            v.push(c.name);
        }
    }
    v
}

/// The specs of command `name` that `face` has (several for `/group`).
pub fn specs_named(name: &str, face: Face) -> impl Iterator<Item = &'static CommandSpec> {
    specs(face).filter(move |c| c.name == name)
}

/// The one spec of `name` (and `sub`) that `face` has.
pub(crate) fn find(name: &str, sub: Option<&str>, face: Face) -> Option<&'static CommandSpec> {
    specs_named(name, face).find(|c| c.sub == sub)
}

/// `/name` and its subcommands as one usage line (`/group create|add|... [GROUP] ...`).
pub(crate) fn usage_of(name: &str, face: Face) -> String {
    let subs: Vec<&str> = specs_named(name, face).filter_map(|c| c.sub).collect();
    match (subs.is_empty(), find(name, None, face)) {
        (false, _) => format!("/{name} {} ...", subs.join("|")),
        (true, Some(c)) => c.usage(),
        (true, None) => format!("/{name}"),
    }
}

/// The line mode's `/help`: every command it has, on one line.
pub fn help_line(face: Face) -> String {
    let all: Vec<String> = specs(face).map(CommandSpec::usage).collect();
    format!("commands: {}", all.join(" | "))
}

/// The Markdown table of `face`'s commands, as docs/KEYS.md (TUI) and docs/PLAIN.md (line
/// mode) hold it.
pub fn markdown(face: Face) -> String {
    let mut s = String::from("| command | what it does |\n| --- | --- |\n");
    for c in specs(face) {
        let mut cmd = format!("`{}`", c.usage());
        for a in c.aliases {
            cmd.push_str(&format!(" (or `/{a}`)"));
        }
        s.push_str(&format!("| {cmd} | {} |\n", c.help));
    }
    s
}

//! The line mode, `hum --plain`: commands in on stdin, one event per line out on stdout.
//!
//! For scripts, screen readers and tests. The format is stable and documented in
//! docs/PLAIN.md: tab-separated fields, the first naming the event; tabs, newlines and
//! backslashes inside fields are escaped as `\t`, `\n` and `\\`.

use std::collections::HashMap;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::api::{
    Command, ContactId, Event, LinkState, MemberView, MessageKind, MessageView, RoomId, RoomKind,
    RoomSummary,
};

/// Why the line mode stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlainError {
    /// Writing to stdout failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

/// Escapes one field.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape`] (for `/msg` texts that need a newline).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// What the line mode knows of rooms and contacts, to resolve names.
#[derive(Debug, Default)]
pub struct Directory {
    rooms: HashMap<RoomId, RoomSummary>,
    contacts: HashMap<ContactId, String>,
    current: Option<RoomId>,
}

impl Directory {
    /// Takes what an event tells about rooms and contacts.
    pub fn learn(&mut self, e: &Event) {
        match e {
            Event::Ready {
                rooms, contacts, ..
            } => {
                for r in rooms {
                    self.rooms.insert(r.id, r.clone());
                }
                for (id, n) in contacts {
                    self.contacts.insert(*id, n.clone());
                }
            }
            Event::Room(r) => {
                self.rooms.insert(r.id, r.clone());
            }
            Event::Contact { id, name } => {
                self.contacts.insert(*id, name.clone());
            }
            Event::ContactRemoved { id, .. } => {
                self.contacts.remove(id);
            }
            _ => {}
        }
    }

    /// Makes a room current; returns the notice line saying so.
    fn make_current(&mut self, id: RoomId) -> String {
        self.current = Some(id);
        format!("notice\tcurrent room is {}", escape(&self.room_name(id)))
    }

    fn room_name(&self, id: RoomId) -> String {
        self.rooms
            .get(&id)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| format!("#{}", id.0))
    }

    /// A room by exact name, else by unique prefix.
    ///
    /// # Errors
    /// A message saying no room or several rooms match.
    pub fn room(&self, name: &str) -> Result<RoomId, String> {
        if let Some(r) = self.rooms.values().find(|r| r.name == name) {
            return Ok(r.id);
        }
        let hits: Vec<&RoomSummary> = self
            .rooms
            .values()
            .filter(|r| r.name.starts_with(name))
            .collect();
        match hits.as_slice() {
            [one] => Ok(one.id),
            [] => Err(format!("no room or contact named {name}")),
            many => Err(format!(
                "{name} is ambiguous: {}",
                many.iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// A contact by exact name, else by unique prefix.
    ///
    /// # Errors
    /// A message saying no contact or several contacts match.
    pub fn contact(&self, name: &str) -> Result<ContactId, String> {
        if let Some((id, _)) = self.contacts.iter().find(|(_, n)| n.as_str() == name) {
            return Ok(*id);
        }
        let hits: Vec<(&ContactId, &String)> = self
            .contacts
            .iter()
            .filter(|(_, n)| n.starts_with(name))
            .collect();
        match hits.as_slice() {
            [(id, _)] => Ok(**id),
            [] => Err(format!("no contact named {name}")),
            many => Err(format!(
                "{name} is ambiguous: {}",
                many.iter()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn group(&self, name: &str) -> Result<RoomId, String> {
        let id = self.room(name)?;
        match self.rooms.get(&id).map(|r| r.kind) {
            Some(RoomKind::Group) => Ok(id),
            _ => Err(format!("{name} is not a group")),
        }
    }
}

/// The help text of the line mode.
pub const HELP: &str = "commands: /invite | /accept CODE [NAME] | /msg ROOM TEXT | /room ROOM (then plain lines go there) | \
/group create NAME | /group add GROUP CONTACT | /group remove GROUP CONTACT | /group leave GROUP | \
/group rename GROUP NAME | /nick CONTACT NAME | /history ROOM [N] | /search TEXT | /verify CONTACT | \
/members [ROOM] | /read ROOM | /rooms | /contacts | /reconnect | /help | /quit";

/// What one input line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A command for the engine.
    Command(Command),
    /// Lines to print right away (listings, help).
    Print(Vec<String>),
    /// Set the current room.
    Current(RoomId),
    /// Nothing (an empty line).
    Nothing,
}

/// Parses one input line.
///
/// # Errors
/// A message saying what is wrong with the line.
pub fn parse(dir: &Directory, line: &str) -> Result<Parsed, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Parsed::Nothing);
    }
    let Some(rest) = line.strip_prefix('/') else {
        let room = dir
            .current
            .ok_or("no current room: use /room NAME or /msg NAME TEXT")?;
        return Ok(Parsed::Command(Command::Send {
            room,
            text: unescape(line),
        }));
    };
    let (cmd, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let args = args.trim();
    let words: Vec<&str> = args.split_whitespace().collect();
    let usage = |u: &str| Err(format!("usage: {u}"));
    match cmd {
        "invite" => Ok(Parsed::Command(Command::CreateInvite)),
        "accept" => match words.as_slice() {
            [code] => Ok(Parsed::Command(Command::AcceptInvite {
                code: (*code).to_owned(),
                name: None,
            })),
            [code, name] => Ok(Parsed::Command(Command::AcceptInvite {
                code: (*code).to_owned(),
                name: Some((*name).to_owned()),
            })),
            _ => usage("/accept CODE [NAME]"),
        },
        "msg" => {
            let Some((name, text)) = args.split_once(' ') else {
                return usage("/msg ROOM TEXT");
            };
            Ok(Parsed::Command(Command::Send {
                room: dir.room(name)?,
                text: unescape(text),
            }))
        }
        "room" | "join" => match words.as_slice() {
            [name] => Ok(Parsed::Current(dir.room(name)?)),
            _ => usage("/room ROOM"),
        },
        "group" => match words.as_slice() {
            ["create", name @ ..] if !name.is_empty() => {
                Ok(Parsed::Command(Command::CreateGroup {
                    name: name.join(" "),
                }))
            }
            ["add", g, c] => Ok(Parsed::Command(Command::GroupAdd {
                room: dir.group(g)?,
                contact: dir.contact(c)?,
            })),
            ["remove", g, c] => Ok(Parsed::Command(Command::GroupRemove {
                room: dir.group(g)?,
                contact: dir.contact(c)?,
            })),
            ["leave", g] => Ok(Parsed::Command(Command::GroupLeave {
                room: dir.group(g)?,
            })),
            ["rename", g, name @ ..] if !name.is_empty() => {
                Ok(Parsed::Command(Command::GroupRename {
                    room: dir.group(g)?,
                    name: name.join(" "),
                }))
            }
            _ => usage(
                "/group create NAME | add GROUP CONTACT | remove GROUP CONTACT | leave GROUP | rename GROUP NAME",
            ),
        },
        "nick" => match words.as_slice() {
            [c, n] => Ok(Parsed::Command(Command::RenameContact {
                contact: dir.contact(c)?,
                name: (*n).to_owned(),
            })),
            _ => usage("/nick CONTACT NAME"),
        },
        "history" => match words.as_slice() {
            [r] => Ok(Parsed::Command(Command::LoadHistory {
                room: dir.room(r)?,
                before: None,
                limit: 50,
            })),
            [r, n] => {
                let limit = n.parse().map_err(|_| format!("{n} is not a number"))?;
                Ok(Parsed::Command(Command::LoadHistory {
                    room: dir.room(r)?,
                    before: None,
                    limit,
                }))
            }
            _ => usage("/history ROOM [N]"),
        },
        "search" if !args.is_empty() => Ok(Parsed::Command(Command::Search {
            room: None,
            query: args.to_owned(),
        })),
        "search" => usage("/search TEXT"),
        "verify" => match words.as_slice() {
            [c] => Ok(Parsed::Command(Command::Verify {
                contact: dir.contact(c)?,
            })),
            _ => usage("/verify CONTACT"),
        },
        "members" => match words.as_slice() {
            [r] => Ok(Parsed::Command(Command::Members { room: dir.room(r)? })),
            [] => match dir.current {
                Some(room) => Ok(Parsed::Command(Command::Members { room })),
                None => usage("/members ROOM"),
            },
            _ => usage("/members ROOM"),
        },
        "read" => match words.as_slice() {
            [r] => Ok(Parsed::Command(Command::MarkRead { room: dir.room(r)? })),
            _ => usage("/read ROOM"),
        },
        "rooms" => {
            let mut rooms: Vec<&RoomSummary> = dir.rooms.values().collect();
            rooms.sort_by_key(|r| r.id);
            Ok(Parsed::Print(rooms.into_iter().map(room_line).collect()))
        }
        "contacts" => {
            let mut c: Vec<(&ContactId, &String)> = dir.contacts.iter().collect();
            c.sort();
            Ok(Parsed::Print(
                c.into_iter()
                    .map(|(id, n)| format!("contact\t{}\t{}", id.0, escape(n)))
                    .collect(),
            ))
        }
        "reconnect" => Ok(Parsed::Command(Command::Reconnect)),
        "help" => Ok(Parsed::Print(vec![format!("notice\t{HELP}")])),
        "quit" | "exit" => Ok(Parsed::Command(Command::Quit)),
        other => Err(format!("unknown command /{other}; /help lists them")),
    }
}

fn room_line(r: &RoomSummary) -> String {
    let kind = match r.kind {
        RoomKind::Direct(_) => "direct",
        RoomKind::Group => "group",
    };
    format!(
        "room\t{}\t{kind}\t{}\t{}\t{}\t{}\t{}",
        r.id.0,
        escape(&r.name),
        r.unread,
        r.mentions,
        escape(&r.members.join(",")),
        if r.closed { "closed" } else { "open" }
    )
}

fn message_line(dir: &Directory, m: &MessageView) -> String {
    if m.kind == MessageKind::Event {
        return format!(
            "event\t{}\t{}\t{}\t{}\t{}",
            escape(&dir.room_name(m.room)),
            m.id.0,
            m.sent_at,
            escape(&m.sender),
            escape(&m.text)
        );
    }
    format!(
        "message\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        escape(&dir.room_name(m.room)),
        m.id.0,
        escape(&m.sender),
        m.sent_at,
        if m.from_me { "out" } else { "in" },
        m.delivery
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into()),
        escape(&m.text)
    )
}

fn member_line(room: &str, m: &MemberView) -> String {
    let who = match (m.you, m.contact) {
        (true, _) => "you",
        (false, Some(_)) => "contact",
        (false, None) => "not-contact",
    };
    format!(
        "member\t{room}\t{}\t{}\t{who}\t{}",
        escape(&m.name),
        m.fingerprint,
        if m.admin { "admin" } else { "member" }
    )
}

/// Formats one event as its lines (none for events the line mode leaves out).
pub fn format_event(
    dir: &Directory,
    e: &Event,
    last_link: &mut HashMap<String, LinkState>,
) -> Vec<String> {
    match e {
        Event::Ready { me, rooms, .. } => {
            let mut v = vec![format!("ready\t{}", escape(me))];
            v.extend(rooms.iter().map(room_line));
            v
        }
        Event::Room(r) => vec![room_line(r)],
        Event::Contact { id, name } => vec![format!("contact\t{}\t{}", id.0, escape(name))],
        Event::ContactRemoved { id, name } => {
            vec![format!("contact-removed\t{}\t{}", id.0, escape(name))]
        }
        Event::Message(m) => vec![message_line(dir, m)],
        Event::Delivery { room, id, state } => {
            vec![format!(
                "delivery\t{}\t{}\t{state}",
                escape(&dir.room_name(*room)),
                id.0
            )]
        }
        Event::History {
            room,
            messages,
            more,
        } => {
            let mut v = vec![format!(
                "history\t{}\t{}\t{}",
                escape(&dir.room_name(*room)),
                messages.len(),
                if *more { "more" } else { "end" }
            )];
            v.extend(messages.iter().map(|m| message_line(dir, m)));
            v
        }
        Event::SearchResults { query, messages } => {
            let mut v = vec![format!("search\t{}\t{}", escape(query), messages.len())];
            v.extend(messages.iter().map(|m| message_line(dir, m)));
            v
        }
        Event::Link(l) => {
            // Only state changes: the rates move every second.
            if last_link.insert(l.relay.clone(), l.state) == Some(l.state) {
                return Vec::new();
            }
            let state = match l.state {
                LinkState::Connecting => "connecting".to_owned(),
                LinkState::Up => "up".to_owned(),
                LinkState::Down { retry_in_ms } => format!("down\tretry_in_ms={retry_in_ms}"),
            };
            vec![format!("link\t{}\t{state}", escape(&l.relay))]
        }
        Event::Invite { code } => vec![format!("invite\t{code}")],
        Event::SafetyNumber { name, number, .. } => {
            vec![format!("safety\t{}\t{}", escape(name), escape(number))]
        }
        Event::Notice(n) => vec![format!("notice\t{}", escape(n))],
        Event::Error { message } => vec![format!("error\t{}", escape(message))],
        Event::Members { room, members } => {
            let room = escape(&dir.room_name(*room));
            let mut v = vec![format!("members\t{room}\t{}", members.len())];
            v.extend(members.iter().map(|m| member_line(&room, m)));
            v
        }
        Event::Pong { .. } => Vec::new(),
    }
}

/// How the line mode starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlainOptions {
    /// A room to make current once the profile has loaded, if it exists then (the demo
    /// makes its contact's room current, so typing a message at once works).
    pub current_room: Option<String>,
    /// Notices printed first (what the embedded relay listens on).
    pub notices: Vec<String>,
}

async fn write_lines<W: AsyncWrite + Unpin>(
    output: &mut W,
    lines: &[String],
) -> Result<(), PlainError> {
    for l in lines {
        output.write_all(l.as_bytes()).await?;
        output.write_all(b"\n").await?;
    }
    output.flush().await?;
    Ok(())
}

/// Runs the line mode until `/quit`, the end of input, or the engine stopping.
///
/// # Errors
/// [`PlainError::Io`] when stdout fails.
pub async fn run<R: AsyncBufRead + Unpin, W: AsyncWrite + Unpin>(
    input: R,
    output: W,
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<Event>,
) -> Result<(), PlainError> {
    run_with(input, output, commands, events, PlainOptions::default()).await
}

/// Like [`run`], with options.
///
/// Input is read one line at a time, and the next line only once the engine has handled
/// the previous one's command (a [`Command::Ping`] after each): a command's answers and
/// errors always come before those of the next, and nothing is read before the profile
/// has loaded, so commands piped in at once act on the loaded rooms and contacts.
///
/// # Errors
/// [`PlainError::Io`] when stdout fails.
pub async fn run_with<R: AsyncBufRead + Unpin, W: AsyncWrite + Unpin>(
    input: R,
    mut output: W,
    commands: mpsc::Sender<Command>,
    mut events: mpsc::Receiver<Event>,
    options: PlainOptions,
) -> Result<(), PlainError> {
    let mut dir = Directory::default();
    let mut links = HashMap::new();
    let mut lines = input.lines();
    let notices: Vec<String> = options
        .notices
        .iter()
        .map(|n| format!("notice\t{}", escape(n)))
        .collect();
    write_lines(&mut output, &notices).await?;
    // The first ping is answered once the profile has loaded (and whatever was sent to
    // the engine before this face started has been handled).
    let mut pings = 0u64;
    let mut waiting = Some(pings);
    let mut loaded = false;
    if commands.send(Command::Ping { token: pings }).await.is_err() {
        waiting = None;
    }
    let mut input_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if input_open && waiting.is_none() => {
                let line = match line {
                    Ok(Some(l)) => l,
                    Ok(None) | Err(_) => {
                        // End of input: let queued messages leave, then stop.
                        input_open = false;
                        let _ = commands.send(Command::Quit).await;
                        continue;
                    }
                };
                match parse(&dir, &line) {
                    Ok(Parsed::Command(c)) => {
                        let quit = c == Command::Quit;
                        if commands.send(c).await.is_err() || quit {
                            input_open = false;
                            continue;
                        }
                        pings += 1;
                        if commands.send(Command::Ping { token: pings }).await.is_ok() {
                            waiting = Some(pings);
                        }
                    }
                    Ok(Parsed::Print(v)) => write_lines(&mut output, &v).await?,
                    Ok(Parsed::Current(r)) => {
                        write_lines(&mut output, &[dir.make_current(r)]).await?;
                    }
                    Ok(Parsed::Nothing) => {}
                    Err(msg) => {
                        write_lines(&mut output, &[format!("error\t{}", escape(&msg))]).await?;
                    }
                }
            }
            e = events.recv() => {
                let Some(e) = e else { break };
                if let Event::Pong { token } = e {
                    if waiting == Some(token) {
                        waiting = None;
                    }
                    if !loaded && token == 0 {
                        loaded = true;
                        if let Some(name) = &options.current_room
                            && let Ok(r) = dir.room(name)
                        {
                            write_lines(&mut output, &[dir.make_current(r)]).await?;
                        }
                    }
                    continue;
                }
                dir.learn(&e);
                let v = format_event(&dir, &e, &mut links);
                write_lines(&mut output, &v).await?;
            }
        }
    }
    output.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory {
        let mut d = Directory::default();
        d.learn(&Event::Ready {
            me: "me".into(),
            rooms: vec![
                RoomSummary {
                    id: RoomId(1),
                    name: "alice".into(),
                    kind: RoomKind::Direct(ContactId(1)),
                    members: vec!["alice".into()],
                    unread: 0,
                    mentions: 0,
                    closed: false,
                },
                RoomSummary {
                    id: RoomId(2),
                    name: "ops".into(),
                    kind: RoomKind::Group,
                    members: vec![],
                    unread: 0,
                    mentions: 0,
                    closed: false,
                },
            ],
            contacts: vec![
                (ContactId(1), "alice".into()),
                (ContactId(2), "alfred".into()),
            ],
        });
        d
    }

    #[test]
    fn escaping_round_trips() {
        for s in ["plain", "tab\there", "line\nbreak", "back\\slash\\n", ""] {
            assert_eq!(unescape(&escape(s)), s);
            assert!(!escape(s).contains('\t') && !escape(s).contains('\n'));
        }
    }

    #[test]
    fn commands_parse_with_names_and_prefixes() {
        let d = dir();
        assert_eq!(
            parse(&d, "/msg alice hello there"),
            Ok(Parsed::Command(Command::Send {
                room: RoomId(1),
                text: "hello there".into()
            }))
        );
        assert_eq!(
            parse(&d, "/msg op two\\nlines"),
            Ok(Parsed::Command(Command::Send {
                room: RoomId(2),
                text: "two\nlines".into()
            }))
        );
        assert_eq!(
            parse(&d, "/group add ops alfred"),
            Ok(Parsed::Command(Command::GroupAdd {
                room: RoomId(2),
                contact: ContactId(2)
            }))
        );
        assert!(parse(&d, "/group add alice alfred").is_err_and(|e| e.contains("not a group")));
        assert!(parse(&d, "/group remove ops al").is_err_and(|e| e.contains("ambiguous")));
        assert!(parse(&d, "/msg nobody hi").is_err_and(|e| e.contains("no room")));
        assert!(parse(&d, "/frobnicate").is_err_and(|e| e.contains("unknown command")));
        assert!(parse(&d, "hello").is_err_and(|e| e.contains("no current room")));
        assert_eq!(parse(&d, "/room ops"), Ok(Parsed::Current(RoomId(2))));
        assert_eq!(parse(&d, ""), Ok(Parsed::Nothing));
        assert_eq!(parse(&d, "/quit"), Ok(Parsed::Command(Command::Quit)));
    }

    #[test]
    fn events_become_tab_separated_lines() {
        let d = dir();
        let mut links = HashMap::new();
        let m = MessageView {
            id: crate::api::MessageId(7),
            room: RoomId(1),
            sender: "alice".into(),
            from_me: false,
            text: "a\tb".into(),
            sent_at: 5,
            delivery: None,
            kind: MessageKind::Text,
        };
        assert_eq!(
            format_event(&d, &Event::Message(m), &mut links),
            vec!["message\talice\t7\talice\t5\tin\t-\ta\\tb"]
        );
        let link = |state| {
            Event::Link(crate::api::LinkStatus {
                relay: "r:1".into(),
                state,
                cells_up_per_sec: 10,
                cells_down_per_sec: 10,
                queued: 0,
            })
        };
        assert_eq!(
            format_event(&d, &link(LinkState::Up), &mut links),
            vec!["link\tr:1\tup"]
        );
        assert!(format_event(&d, &link(LinkState::Up), &mut links).is_empty());
    }
}

//! The line mode, `hum --plain`: commands in on stdin, one event per line out on stdout.
//!
//! For scripts, screen readers and tests. The format is stable and documented in
//! docs/PLAIN.md: tab-separated fields, the first naming the event; tabs, newlines and
//! backslashes inside fields are escaped as `\t`, `\n` and `\\`.

use std::collections::HashMap;
use std::path::PathBuf;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::api::{
    Command, ContactId, Event, LinkState, MemberView, MessageKind, MessageView, RoomId, RoomKind,
    RoomSummary,
};
use crate::command::{self, CommandError, Face, Resolved, Resolver};

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

    /// Names in commands resolved against the rooms and contacts known, and the current
    /// room.
    pub fn resolver(&self) -> Resolver<'_> {
        let mut rooms: Vec<&RoomSummary> = self.rooms.values().collect();
        rooms.sort_by_key(|r| r.id);
        let mut contacts: Vec<(ContactId, &str)> = self
            .contacts
            .iter()
            .map(|(id, n)| (*id, n.as_str()))
            .collect();
        contacts.sort();
        Resolver::new(Face::Plain, rooms, contacts, self.current)
    }
}

/// What one input line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A command for the engine.
    Command(Command),
    /// Lines to print right away (listings, help).
    Print(Vec<String>),
    /// Set the current room.
    Current(RoomId),
    /// Ask for an invite code, and write it to this new file when it comes.
    Invite(Option<PathBuf>),
    /// Nothing (an empty line).
    Nothing,
}

/// Parses one input line: a slash command of the line mode (see [`crate::command`]), or a
/// message for the current room.
///
/// # Errors
/// A [`CommandError`] saying what is wrong with the line.
pub fn parse(dir: &Directory, line: &str) -> Result<Parsed, CommandError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Parsed::Nothing);
    }
    if !line.starts_with('/') {
        let room = dir
            .current
            .ok_or(CommandError::NoCurrentRoom(Face::Plain))?;
        return Ok(Parsed::Command(Command::Send {
            room,
            text: unescape(line),
        }));
    }
    let cmd = command::parse(line, Face::Plain)?;
    let tui_only = |command| {
        Err(CommandError::OtherFace {
            command,
            only: Face::Tui,
            here: Face::Plain,
        })
    };
    Ok(match dir.resolver().resolve(cmd)? {
        Resolved::Engine(c) => Parsed::Command(c),
        Resolved::Invite(file) => Parsed::Invite(file),
        Resolved::Open {
            room,
            text: Some(text),
        } => Parsed::Command(Command::Send {
            room,
            text: unescape(&text),
        }),
        Resolved::Open { room, text: None } => Parsed::Current(room),
        Resolved::Leave { room, .. } => Parsed::Command(Command::GroupLeave { room }),
        Resolved::ListRooms => {
            let mut rooms: Vec<&RoomSummary> = dir.rooms.values().collect();
            rooms.sort_by_key(|r| r.id);
            Parsed::Print(rooms.into_iter().map(room_line).collect())
        }
        Resolved::ListContacts => {
            let mut c: Vec<(&ContactId, &String)> = dir.contacts.iter().collect();
            c.sort();
            Parsed::Print(
                c.into_iter()
                    .map(|(id, n)| format!("contact\t{}\t{}", id.0, escape(n)))
                    .collect(),
            )
        }
        Resolved::Help => Parsed::Print(vec![format!(
            "notice\t{}",
            escape(&command::help_line(Face::Plain))
        )]),
        Resolved::Hide(_) => return tui_only("hide"),
        Resolved::Split => return tui_only("split"),
        Resolved::VSplit => return tui_only("vsplit"),
        Resolved::Close => return tui_only("close"),
        Resolved::Theme(_) => return tui_only("theme"),
    })
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

/// A link's state as its fields: `connecting`, `up`, or `down` and `retry_in_ms=N`.
fn state_field(state: LinkState) -> String {
    match state {
        LinkState::Connecting => "connecting".to_owned(),
        LinkState::Up => "up".to_owned(),
        LinkState::Down { retry_in_ms } => format!("down\tretry_in_ms={retry_in_ms}"),
    }
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
            vec![format!(
                "link\t{}\t{}",
                escape(&l.relay),
                state_field(l.state)
            )]
        }
        // The hum/2 link: state changes only, as for `link` (a single relay is named
        // once, in a `notice`).
        Event::Route(r) => {
            if last_link.insert(format!("route {}", r.relay), r.state) == Some(r.state) {
                return Vec::new();
            }
            vec![format!(
                "route\t{}\t{}",
                escape(&r.relay),
                state_field(r.state)
            )]
        }
        Event::Invite { code } => vec![format!("invite\t{code}")],
        Event::SafetyNumber { name, number, .. } => {
            vec![format!("safety\t{}\t{}", escape(name), escape(number))]
        }
        Event::Notice(n) => vec![format!("notice\t{}", escape(n))],
        Event::Error { message, .. } => vec![format!("error\t{}", escape(message))],
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
    // Where `/invite FILE` wants the next code.
    let mut invite_file: Option<PathBuf> = None;
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
                let command = match parse(&dir, &line) {
                    Ok(Parsed::Command(c)) => c,
                    Ok(Parsed::Invite(file)) => {
                        invite_file = file;
                        Command::CreateInvite
                    }
                    Ok(Parsed::Print(v)) => {
                        write_lines(&mut output, &v).await?;
                        continue;
                    }
                    Ok(Parsed::Current(r)) => {
                        write_lines(&mut output, &[dir.make_current(r)]).await?;
                        continue;
                    }
                    Ok(Parsed::Nothing) => continue,
                    Err(e) => {
                        let line = format!("error\t{}", escape(&e.to_string()));
                        write_lines(&mut output, &[line]).await?;
                        continue;
                    }
                };
                let quit = command == Command::Quit;
                if commands.send(command).await.is_err() || quit {
                    input_open = false;
                    continue;
                }
                pings += 1;
                if commands.send(Command::Ping { token: pings }).await.is_ok() {
                    waiting = Some(pings);
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
                            && let Ok(r) = dir.resolver().room(name)
                        {
                            write_lines(&mut output, &[dir.make_current(r)]).await?;
                        }
                    }
                    continue;
                }
                dir.learn(&e);
                let v = format_event(&dir, &e, &mut links);
                write_lines(&mut output, &v).await?;
                if let Event::Invite { code } = &e
                    && let Some(path) = invite_file.take()
                {
                    let written = command::write_invite(&path, code).map_err(|e| e.to_string());
                    let line = match command::saved_note(&path, written) {
                        Ok(notice) => format!("notice\t{}", escape(&notice)),
                        Err(error) => format!("error\t{}", escape(&error)),
                    };
                    write_lines(&mut output, &[line]).await?;
                }
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
    fn commands_parse_with_names_and_prefixes() -> Result<(), String> {
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
        let says =
            |line: &str, what: &str| parse(&d, line).is_err_and(|e| e.to_string().contains(what));
        assert!(says("/group add alice alfred", "not a group"));
        assert!(says("/group remove ops al", "ambiguous"));
        assert!(says("/msg nobody hi", "no room"));
        assert!(says("/frobnicate", "unknown command"));
        assert!(says("hello", "no current room"));
        assert!(
            says("/split", "TUI"),
            "the TUI's commands say where they are"
        );
        assert_eq!(parse(&d, "/room ops"), Ok(Parsed::Current(RoomId(2))));
        assert_eq!(parse(&d, ""), Ok(Parsed::Nothing));
        assert_eq!(parse(&d, "/quit"), Ok(Parsed::Command(Command::Quit)));
        assert_eq!(
            parse(&d, "/q"),
            Ok(Parsed::Command(Command::Quit)),
            "prefixes"
        );
        assert_eq!(parse(&d, "/msg ops"), Ok(Parsed::Current(RoomId(2))));
        assert_eq!(
            parse(&d, "/invite /nonexistent/code.txt"),
            Ok(Parsed::Invite(Some("/nonexistent/code.txt".into())))
        );
        let help = parse(&d, "/help");
        let Ok(Parsed::Print(lines)) = &help else {
            return Err(format!("/help gave {help:?}"));
        };
        assert_eq!(lines.len(), 1, "one line: scripts count answers");
        assert!(lines[0].starts_with("notice\tcommands: /invite [FILE]"));
        assert!(lines[0].contains("/history ROOM [N]") && !lines[0].contains("/theme"));
        Ok(())
    }

    #[test]
    fn in_the_current_group_group_commands_need_no_group_name() {
        let mut d = dir();
        assert_eq!(parse(&d, "/room ops"), Ok(Parsed::Current(RoomId(2))));
        d.make_current(RoomId(2));
        assert_eq!(
            parse(&d, "/group add alfred"),
            Ok(Parsed::Command(Command::GroupAdd {
                room: RoomId(2),
                contact: ContactId(2)
            }))
        );
        assert_eq!(
            parse(&d, "/group leave"),
            Ok(Parsed::Command(Command::GroupLeave { room: RoomId(2) }))
        );
        assert_eq!(
            parse(&d, "/members"),
            Ok(Parsed::Command(Command::Members { room: RoomId(2) }))
        );
        // The other order works too, as before.
        assert_eq!(
            parse(&d, "/group remove ops alice"),
            Ok(Parsed::Command(Command::GroupRemove {
                room: RoomId(2),
                contact: ContactId(1)
            }))
        );
        assert_eq!(
            parse(&d, "hi all"),
            Ok(Parsed::Command(Command::Send {
                room: RoomId(2),
                text: "hi all".into()
            }))
        );
    }

    /// An engine that answers pings and makes invite codes, for `run_with`.
    async fn fake_engine(
        mut commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
        ready: Event,
    ) {
        while let Some(c) = commands.recv().await {
            let answer = match c {
                Command::Ping { token: 0 } => {
                    let _ = events.send(ready.clone()).await;
                    Event::Pong { token: 0 }
                }
                Command::Ping { token } => Event::Pong { token },
                Command::CreateInvite => Event::Invite {
                    code: "hum1-testcode".into(),
                },
                Command::Quit => break,
                _ => continue,
            };
            if events.send(answer).await.is_err() {
                break;
            }
        }
    }

    #[tokio::test]
    async fn invite_file_writes_the_code_and_says_so_before_the_next_answer()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("hum-plain-invite-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("code.txt");
        let (ctx, crx) = mpsc::channel(16);
        let (etx, erx) = mpsc::channel(16);
        let ready = Event::Ready {
            me: "me".into(),
            rooms: vec![],
            contacts: vec![],
        };
        let engine = tokio::spawn(fake_engine(crx, etx, ready));
        let input = format!("/invite {p}\n/invite {p}\n/rooms\n", p = path.display());
        let mut output = Vec::new();
        run(input.as_bytes(), &mut output, ctx, erx).await?;
        engine.await?;
        let out = String::from_utf8(output)?;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            vec![
                "ready\tme",
                "invite\thum1-testcode",
                &format!("notice\tinvite code saved to {}", path.display()),
                &format!("error\t{} exists: give a new file's name", path.display()),
            ],
            "{out}"
        );
        assert_eq!(std::fs::read_to_string(&path)?, "hum1-testcode\n");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
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
        let route = |state| {
            Event::Route(crate::api::RouteStatus {
                relay: "r:1".into(),
                state,
                single: true,
                clients: Some(3),
                cells_per_sec: 10,
                queued: 0,
            })
        };
        // The hum/2 link to the same relay has a state of its own.
        assert_eq!(
            format_event(&d, &route(LinkState::Connecting), &mut links),
            vec!["route\tr:1\tconnecting"]
        );
        assert_eq!(
            format_event(&d, &route(LinkState::Down { retry_in_ms: 900 }), &mut links),
            vec!["route\tr:1\tdown\tretry_in_ms=900"]
        );
        assert!(
            format_event(&d, &route(LinkState::Down { retry_in_ms: 900 }), &mut links).is_empty()
        );
    }
}

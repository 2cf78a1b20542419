//! The command language: every command parsed on both faces, prefixes, aliases, errors,
//! the resolver's rules, completion, and the docs' command tables.

use super::*;
use crate::api::{Command, ContactId, RoomId, RoomKind, RoomSummary};

fn tui(line: &str) -> Result<SlashCommand, CommandError> {
    parse(line, Face::Tui)
}

fn plain(line: &str) -> Result<SlashCommand, CommandError> {
    parse(line, Face::Plain)
}

fn both(line: &str, want: SlashCommand) {
    assert_eq!(tui(line), Ok(want.clone()), "TUI: {line}");
    assert_eq!(plain(line), Ok(want), "line mode: {line}");
}

fn err(r: Result<SlashCommand, CommandError>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn parses_every_command() {
    use SlashCommand as S;
    both("/invite", S::Invite(None));
    both("/invite code.txt", S::Invite(Some("code.txt".into())));
    both(
        "/accept hum1abc Bob Smith",
        S::Accept {
            code: "hum1abc".into(),
            name: Some("Bob Smith".into()),
        },
    );
    both(
        "/accept hum1abc",
        S::Accept {
            code: "hum1abc".into(),
            name: None,
        },
    );
    both(
        "/msg alice hi there",
        S::Msg {
            target: "alice".into(),
            text: "hi there".into(),
        },
    );
    both(
        "/msg alice",
        S::Msg {
            target: "alice".into(),
            text: String::new(),
        },
    );
    both("/group create team", S::GroupCreate("team".into()));
    both("/group create my team", S::GroupCreate("my team".into()));
    both("/group add bob", S::GroupAdd("bob".into()));
    both("/group add team bob", S::GroupAdd("team bob".into()));
    both("/group remove bob", S::GroupRemove("bob".into()));
    both("/group leave", S::GroupLeave(None));
    both("/g l team", S::GroupLeave(Some("team".into())));
    both("/group rename crew", S::GroupRename("crew".into()));
    both(
        "/nick bob Robert",
        S::Nick {
            contact: "bob".into(),
            name: "Robert".into(),
        },
    );
    both("/verify", S::Verify(None));
    both("/verify bob", S::Verify(Some("bob".into())));
    both("/members", S::Members(None));
    both("/members team", S::Members(Some("team".into())));
    both("/search needle in", S::Search("needle in".into()));
    both("/reconnect", S::Reconnect);
    both("/help", S::Help);
    both("/quit", S::Quit);
    // The TUI's own.
    assert_eq!(tui("/hide"), Ok(S::Hide(None)));
    assert_eq!(tui("/hide old"), Ok(S::Hide(Some("old".into()))));
    assert_eq!(tui("/split"), Ok(S::Split));
    assert_eq!(tui("/vsplit"), Ok(S::VSplit));
    assert_eq!(tui("/close"), Ok(S::Close));
    assert_eq!(tui("/theme light"), Ok(S::Theme(Some("light".into()))));
    assert_eq!(tui("/theme"), Ok(S::Theme(None)));
    // The line mode's own.
    assert_eq!(plain("/room ops"), Ok(S::Room("ops".into())));
    assert_eq!(plain("/join ops"), Ok(S::Room("ops".into())));
    assert_eq!(
        plain("/history bob"),
        Ok(S::History {
            room: "bob".into(),
            limit: HISTORY_LINES
        })
    );
    assert_eq!(
        plain("/history bob 5"),
        Ok(S::History {
            room: "bob".into(),
            limit: 5
        })
    );
    assert_eq!(plain("/read bob"), Ok(S::Read("bob".into())));
    assert_eq!(plain("/rooms"), Ok(S::Rooms));
    assert_eq!(plain("/contacts"), Ok(S::Contacts));
    assert_eq!(plain("/exit"), Ok(S::Quit));
}

#[test]
fn every_command_of_the_table_parses_on_its_faces() {
    for c in COMMANDS {
        // The usage with its arguments filled in: optional ones left out, the rest a word.
        let line = c
            .usage()
            .split_whitespace()
            .filter(|w| !w.starts_with('['))
            .map(|w| match w {
                "N" => "5",
                w if w.chars().all(|ch| ch.is_ascii_uppercase()) => "x",
                w => w,
            })
            .collect::<Vec<_>>()
            .join(" ");
        for face in [Face::Tui, Face::Plain] {
            let r = parse(&line, face);
            if c.faces.has(face) {
                assert!(r.is_ok(), "{line} in {face:?}: {r:?}");
            } else {
                assert!(
                    matches!(r, Err(CommandError::OtherFace { only, here, .. }) if here == face && only != face),
                    "{line} in {face:?}: {r:?}"
                );
            }
        }
    }
}

#[test]
fn unique_prefixes() {
    use SlashCommand as S;
    both("/q", S::Quit);
    both("/inv", S::Invite(None));
    both("/g c team", S::GroupCreate("team".into()));
    both("/g rem bob", S::GroupRemove("bob".into()));
    both("/se x", S::Search("x".into()));
    both(
        "/acc hum1x",
        S::Accept {
            code: "hum1x".into(),
            name: None,
        },
    );
    assert_eq!(tui("/VS"), Ok(S::VSplit));
    assert_eq!(tui("/sp"), Ok(S::Split));
    // Prefixes count among the face's own commands: the line mode has no /split.
    assert_eq!(plain("/s x"), Ok(S::Search("x".into())));
    assert_eq!(
        plain("/room x"),
        Ok(S::Room("x".into())),
        "exact beats longer names"
    );
    assert!(matches!(
        plain("/roo x"),
        Err(CommandError::Ambiguous { .. })
    ));
    assert_eq!(plain("/rooms"), Ok(S::Rooms));
    // Aliases work in full only.
    assert!(matches!(
        plain("/jo x"),
        Err(CommandError::UnknownCommand(_))
    ));
    assert_eq!(tui("/exit"), Ok(S::Quit));
}

#[test]
fn errors_say_what_is_wrong() {
    let e = err(tui("/s"));
    assert!(e.contains("search") && e.contains("split"), "{e}");
    assert!(matches!(
        tui("/s"),
        Err(CommandError::Ambiguous {
            what: Noun::Command,
            ..
        })
    ));
    let e = err(tui("/frobnicate"));
    assert!(e.contains("unknown command"), "{e}");
    assert_eq!(err(tui("/accept")), "usage: /accept CODE [NAME]");
    assert_eq!(err(tui("/msg")), "usage: /msg NAME [TEXT]");
    assert_eq!(err(tui("/nick bob")), "usage: /nick CONTACT NEWNAME");
    assert!(err(tui("/group re x")).contains("remove, rename"));
    assert_eq!(err(tui("/group create")), "usage: /group create NAME");
    assert_eq!(
        err(plain("/group add")),
        "usage: /group add [GROUP] CONTACT"
    );
    assert!(err(tui("/group")).starts_with("usage: /group create|add|remove|leave|rename"));
    assert!(err(tui("/group frob x")).starts_with("usage: /group"));
    assert!(tui("/split now").is_err());
    assert!(plain("/rooms all").is_err());
    assert!(plain("/room a b").is_err());
    assert_eq!(tui("/"), Err(CommandError::Empty));
    assert_eq!(
        plain("/history bob many"),
        Err(CommandError::NotANumber("many".into()))
    );
    // A command of the other face says where it is.
    let e = plain("/theme light");
    assert_eq!(
        e,
        Err(CommandError::OtherFace {
            command: "theme",
            only: Face::Tui,
            here: Face::Plain
        })
    );
    assert!(err(e).contains("TUI"));
    assert!(err(tui("/rooms")).contains("line mode"));
    assert!(err(tui("/join x")).contains("line mode"));
}

fn summary(id: i64, name: &str, kind: RoomKind) -> RoomSummary {
    RoomSummary {
        id: RoomId(id),
        name: name.into(),
        kind,
        members: vec![],
        unread: 0,
        mentions: 0,
        closed: false,
    }
}

struct World {
    rooms: Vec<RoomSummary>,
    contacts: Vec<(ContactId, String)>,
}

fn world() -> World {
    World {
        rooms: vec![
            summary(1, "alice", RoomKind::Direct(ContactId(1))),
            summary(2, "ops", RoomKind::Group),
            summary(3, "Team", RoomKind::Group),
            summary(4, "albert", RoomKind::Direct(ContactId(3))),
        ],
        contacts: vec![
            (ContactId(1), "alice".into()),
            (ContactId(2), "alfred".into()),
            (ContactId(3), "albert".into()),
            (ContactId(4), "Bob Smith".into()),
        ],
    }
}

impl World {
    fn at(&self, face: Face, current: Option<i64>) -> Resolver<'_> {
        Resolver::new(
            face,
            &self.rooms,
            self.contacts.iter().map(|(id, n)| (*id, n.as_str())),
            current.map(RoomId),
        )
    }
}

fn run(r: &Resolver<'_>, face: Face, line: &str) -> Result<Resolved, CommandError> {
    r.resolve(parse(line, face)?)
}

fn engine(c: Command) -> Result<Resolved, CommandError> {
    Ok(Resolved::Engine(c))
}

#[test]
fn names_resolve_exactly_then_by_any_case_then_by_unique_prefix() {
    let w = world();
    let r = w.at(Face::Plain, None);
    assert_eq!(r.room("alice"), Ok(RoomId(1)));
    assert_eq!(r.room("team"), Ok(RoomId(3)), "any case");
    assert_eq!(r.room("op"), Ok(RoomId(2)));
    assert_eq!(r.contact("alf"), Ok(ContactId(2)));
    assert_eq!(r.contact("bob smith"), Ok(ContactId(4)));
    assert_eq!(
        r.room("al"),
        Err(CommandError::Ambiguous {
            what: Noun::Room,
            name: "al".into(),
            candidates: vec!["albert".into(), "alice".into()],
        })
    );
    let e = r.contact("al");
    assert!(
        e.as_ref()
            .is_err_and(|e| e.to_string() == "al is ambiguous: albert, alfred, alice"),
        "{e:?}"
    );
    assert_eq!(
        r.room("nobody"),
        Err(CommandError::NoSuch {
            what: Noun::Room,
            name: "nobody".into()
        })
    );
    assert!(
        r.room("nobody")
            .is_err_and(|e| e.to_string() == "no room or contact named nobody")
    );
    // A contact without a room.
    assert_eq!(
        r.room("alfred"),
        Err(CommandError::NoRoomYet("alfred".into()))
    );
    assert_eq!(r.group("o"), Ok(RoomId(2)));
    assert_eq!(
        r.group("alice"),
        Err(CommandError::NotAGroup("alice".into()))
    );
    // Only groups count for a group: "al" is not ambiguous there, it is nothing.
    assert!(matches!(
        r.group("al"),
        Err(CommandError::NoSuch {
            what: Noun::Group,
            ..
        })
    ));
    assert_eq!(
        pick("x", [(1, "x"), (2, "X")], Noun::Theme),
        Ok(1),
        "case as typed first"
    );
    assert_eq!(pick("X", [(1, "x"), (2, "X")], Noun::Theme), Ok(2));
}

#[test]
fn every_command_resolves_the_same_on_both_faces() {
    let w = world();
    for face in [Face::Tui, Face::Plain] {
        let r = w.at(face, Some(1));
        let run = |line: &str| run(&r, face, line);
        assert_eq!(
            run("/accept hum1xyz Carol"),
            engine(Command::AcceptInvite {
                code: "hum1xyz".into(),
                name: Some("Carol".into())
            })
        );
        assert_eq!(
            run("/msg ops hello there"),
            Ok(Resolved::Open {
                room: RoomId(2),
                text: Some("hello there".into())
            })
        );
        assert_eq!(
            run("/msg al"),
            Err(CommandError::Ambiguous {
                what: Noun::Room,
                name: "al".into(),
                candidates: vec!["albert".into(), "alice".into()]
            })
        );
        assert_eq!(
            run("/msg ops"),
            Ok(Resolved::Open {
                room: RoomId(2),
                text: None
            })
        );
        assert_eq!(
            run("/group create crew"),
            engine(Command::CreateGroup {
                name: "crew".into()
            })
        );
        assert_eq!(
            run("/nick alf Alfie"),
            engine(Command::RenameContact {
                contact: ContactId(2),
                name: "Alfie".into()
            })
        );
        assert_eq!(
            run("/verify"),
            engine(Command::Verify {
                contact: ContactId(1)
            })
        );
        assert_eq!(
            run("/verify alb"),
            engine(Command::Verify {
                contact: ContactId(3)
            })
        );
        assert_eq!(
            run("/members"),
            engine(Command::Members { room: RoomId(1) })
        );
        assert_eq!(
            run("/members te"),
            engine(Command::Members { room: RoomId(3) })
        );
        assert_eq!(
            run("/search needle"),
            engine(Command::Search {
                room: Some(RoomId(1)),
                query: "needle".into()
            })
        );
        assert_eq!(run("/reconnect"), engine(Command::Reconnect));
        assert_eq!(run("/quit"), engine(Command::Quit));
        assert_eq!(run("/help"), Ok(Resolved::Help));
        assert_eq!(run("/invite"), Ok(Resolved::Invite(None)));
        assert_eq!(
            run("/invite /nonexistent/hum/code.txt"),
            Ok(Resolved::Invite(Some("/nonexistent/hum/code.txt".into())))
        );
        let here = std::env::temp_dir();
        assert_eq!(
            run(&format!("/invite {}", here.display())),
            Err(CommandError::FileExists(here.clone())),
            "never overwritten"
        );
        // Not in a group: the group is named, or it is an error saying how.
        assert_eq!(
            run("/group add ops alf"),
            engine(Command::GroupAdd {
                room: RoomId(2),
                contact: ContactId(2)
            })
        );
        assert_eq!(
            run("/group add alf"),
            Err(CommandError::NotInGroup {
                usage: "/group add GROUP CONTACT".into()
            })
        );
        assert_eq!(
            run("/group add alice alf"),
            Err(CommandError::NotAGroup("alice".into()))
        );
        assert_eq!(
            run("/g rem ops al"),
            Err(CommandError::Ambiguous {
                what: Noun::Contact,
                name: "al".into(),
                candidates: vec!["albert".into(), "alfred".into(), "alice".into()]
            })
        );
        assert_eq!(
            run("/group rename ops crew"),
            engine(Command::GroupRename {
                room: RoomId(2),
                name: "crew".into()
            })
        );
        assert!(matches!(
            run("/group rename crew"),
            Err(CommandError::NotInGroup { .. })
        ));
        assert_eq!(
            run("/group leave op"),
            Ok(Resolved::Leave {
                room: RoomId(2),
                name: "ops".into()
            })
        );
        assert!(matches!(
            run("/group leave"),
            Err(CommandError::NotInGroup { .. })
        ));
    }
}

#[test]
fn in_a_group_its_commands_need_no_group_name() {
    let w = world();
    for face in [Face::Tui, Face::Plain] {
        let r = w.at(face, Some(3));
        let run = |line: &str| run(&r, face, line);
        assert_eq!(
            run("/group add alf"),
            engine(Command::GroupAdd {
                room: RoomId(3),
                contact: ContactId(2)
            })
        );
        // A contact's name with a space is a contact, not GROUP CONTACT.
        assert_eq!(
            run("/group add Bob Smith"),
            engine(Command::GroupAdd {
                room: RoomId(3),
                contact: ContactId(4)
            })
        );
        // The other order still names another group.
        assert_eq!(
            run("/group remove ops alice"),
            engine(Command::GroupRemove {
                room: RoomId(2),
                contact: ContactId(1)
            })
        );
        assert_eq!(
            run("/group rename the crew"),
            engine(Command::GroupRename {
                room: RoomId(3),
                name: "the crew".into()
            }),
            "in a group, a first word that is no group's full name is part of the name"
        );
        assert_eq!(
            run("/group rename ops crew"),
            engine(Command::GroupRename {
                room: RoomId(2),
                name: "crew".into()
            })
        );
        assert_eq!(
            run("/group leave"),
            Ok(Resolved::Leave {
                room: RoomId(3),
                name: "Team".into()
            })
        );
        assert!(matches!(
            run("/verify"),
            Err(CommandError::NotInDirect { .. })
        ));
    }
}

#[test]
fn face_commands_resolve() {
    let w = world();
    let r = w.at(Face::Tui, Some(2));
    assert_eq!(run(&r, Face::Tui, "/hide"), Ok(Resolved::Hide(RoomId(2))));
    assert_eq!(
        run(&r, Face::Tui, "/hide te"),
        Ok(Resolved::Hide(RoomId(3)))
    );
    assert_eq!(run(&r, Face::Tui, "/split"), Ok(Resolved::Split));
    assert_eq!(run(&r, Face::Tui, "/vsplit"), Ok(Resolved::VSplit));
    assert_eq!(run(&r, Face::Tui, "/close"), Ok(Resolved::Close));
    assert_eq!(
        run(&r, Face::Tui, "/theme gr"),
        Ok(Resolved::Theme(Some("gr".into())))
    );
    let r = w.at(Face::Plain, None);
    assert_eq!(
        run(&r, Face::Plain, "/room ali"),
        Ok(Resolved::Open {
            room: RoomId(1),
            text: None
        })
    );
    assert_eq!(
        run(&r, Face::Plain, "/history ops 3"),
        engine(Command::LoadHistory {
            room: RoomId(2),
            before: None,
            limit: 3
        })
    );
    assert_eq!(
        run(&r, Face::Plain, "/read albert"),
        engine(Command::MarkRead { room: RoomId(4) })
    );
    assert_eq!(run(&r, Face::Plain, "/rooms"), Ok(Resolved::ListRooms));
    assert_eq!(
        run(&r, Face::Plain, "/contacts"),
        Ok(Resolved::ListContacts)
    );
    // No current room: what needs one says how to pick one, in the face's words.
    assert_eq!(
        run(&r, Face::Plain, "/members"),
        Err(CommandError::NoCurrentRoom(Face::Plain))
    );
    assert!(
        CommandError::NoCurrentRoom(Face::Plain)
            .to_string()
            .contains("/room NAME")
    );
    assert!(
        CommandError::NoCurrentRoom(Face::Tui)
            .to_string()
            .contains("Alt-1..9")
    );
    assert_eq!(
        run(&r, Face::Plain, "/search x"),
        engine(Command::Search {
            room: None,
            query: "x".into()
        }),
        "no current room: every room"
    );
}

#[test]
fn completes_commands_names_and_themes() {
    let names = vec![
        "alice".to_string(),
        "albert".to_string(),
        "team".to_string(),
    ];
    let themes = vec!["dark".to_string(), "light".to_string()];
    let people = vec!["carol".to_string(), "Cathy".to_string()];
    let from = Names {
        names: &names,
        themes: &themes,
        people: &[],
    };
    let c = complete("/inv", Face::Tui, from);
    assert_eq!(c.candidates, vec!["/invite"]);
    assert_eq!(c.start, 0);
    let c = complete("/s", Face::Tui, from);
    assert_eq!(c.candidates, vec!["/search", "/split"]);
    assert_eq!(
        complete("/s", Face::Plain, from).candidates,
        vec!["/search"]
    );
    let c = complete("/msg al", Face::Tui, from);
    assert_eq!(
        (c.start, c.candidates),
        (5, vec!["albert".to_string(), "alice".to_string()])
    );
    assert!(
        complete("/msg alice al", Face::Tui, from)
            .candidates
            .is_empty(),
        "TEXT"
    );
    let c = complete("/group a", Face::Tui, from);
    assert_eq!(c.candidates, vec!["add"]);
    let c = complete("/group add t", Face::Tui, from);
    assert_eq!(c.candidates, vec!["team"]);
    let c = complete("/g a team al", Face::Tui, from);
    assert_eq!(c.candidates.len(), 2, "GROUP CONTACT: both are names");
    assert!(
        complete("/group create t", Face::Tui, from)
            .candidates
            .is_empty()
    );
    let c = complete("/theme l", Face::Tui, from);
    assert_eq!(c.candidates, vec!["light"]);
    let c = complete("hi te", Face::Tui, from);
    assert_eq!((c.start, c.candidates), (3, vec!["team".to_string()]));
    assert_eq!(common_prefix(&["albert".into(), "alice".into()]), "al");
    let from = Names {
        people: &people,
        ..from
    };
    let c = complete("hi @ca", Face::Tui, from);
    assert_eq!(
        (c.start, c.candidates),
        (3, vec!["@Cathy".to_string(), "@carol".to_string()])
    );
    let c = complete("/msg team @ca", Face::Tui, from);
    assert_eq!(c.candidates.len(), 2);
}

#[test]
fn the_table_is_consistent() {
    for (i, c) in COMMANDS.iter().enumerate() {
        assert!(!c.help.is_empty(), "{}", c.usage());
        assert!(
            COMMANDS[..i]
                .iter()
                .all(|o| (o.name, o.sub) != (c.name, c.sub)),
            "{} twice",
            c.usage()
        );
        for a in c.aliases {
            assert!(
                COMMANDS.iter().all(|o| o.name != *a),
                "alias {a} is a command's name"
            );
        }
    }
    let line = help_line(Face::Plain);
    assert!(!line.contains('\n'));
    for c in specs(Face::Plain) {
        assert!(line.contains(&c.usage()), "{line}");
    }
    assert!(!line.contains("/theme"), "{line}");
}

/// The text between `<!-- commands: FACE -->` and `<!-- end commands -->` in a doc.
fn doc_table(doc: &str, face: &str) -> Option<String> {
    let open = format!("<!-- commands: {face} -->\n");
    let from = doc.find(&open)? + open.len();
    let len = doc[from..].find("<!-- end commands -->")?;
    Some(doc[from..from + len].to_string())
}

#[test]
fn the_docs_list_every_command_of_the_table() -> Result<(), Box<dyn std::error::Error>> {
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs");
    for (file, face, tag) in [
        ("KEYS.md", Face::Tui, "tui"),
        ("PLAIN.md", Face::Plain, "plain"),
    ] {
        let doc = std::fs::read_to_string(format!("{docs}/{file}"))?;
        let table = doc_table(&doc, tag).ok_or(format!("{file}: no command table"))?;
        let want = markdown(face);
        assert!(
            table == want,
            "docs/{file}'s command table is not the help table's; it should read:\n{want}"
        );
    }
    Ok(())
}

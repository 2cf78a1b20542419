//! Daily habits: earlier input, the first unread, search jumps, mentions, @-completion,
//! the theme remembered.

use super::*;

#[test]
fn up_and_down_recall_earlier_input_per_room() {
    let mut a = app(80, 24);
    typed(&mut a, "first");
    drive(&mut a, key(KeyCode::Enter));
    typed(&mut a, "second");
    drive(&mut a, key(KeyCode::Enter));
    drive(&mut a, alt('2'));
    typed(&mut a, "to bob");
    drive(&mut a, key(KeyCode::Enter));
    typed(&mut a, "draft");
    drive(&mut a, key(KeyCode::Up));
    assert_eq!(a.input_text(), "to bob");
    drive(&mut a, key(KeyCode::Down));
    assert_eq!(a.input_text(), "draft");
    drive(&mut a, ctrl('c'));
    drive(&mut a, alt('1'));
    drive(&mut a, key(KeyCode::Up));
    assert_eq!(a.input_text(), "second");
    drive(&mut a, key(KeyCode::Up));
    assert_eq!(a.input_text(), "first");
    let cmds = drive(&mut a, key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Send {
            room: RoomId(1),
            text: "first".into()
        }]
    );
}

fn busy_room(unread: u32) -> App {
    let mut a = empty_app(80, 24);
    ready(
        &mut a,
        vec![
            room(1, "alice", RoomKind::Direct(ContactId(1)), 0, 0),
            room(2, "bob", RoomKind::Direct(ContactId(2)), unread, 0),
        ],
        vec![(ContactId(1), "alice".into()), (ContactId(2), "bob".into())],
    );
    a
}

#[test]
fn opening_a_room_lands_on_the_first_unread() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = busy_room(30);
    let cmds = drive(&mut a, alt('2'));
    assert!(cmds.contains(&Command::LoadHistory {
        room: RoomId(2),
        before: None,
        limit: 200
    }));
    let history: Vec<MessageView> = (0..60)
        .map(|i| msg(100 + i, 2, "bob", &format!("line {i}"), 600 + i))
        .collect();
    drive(
        &mut a,
        Action::Engine(Event::History {
            room: RoomId(2),
            messages: history,
            more: false,
        }),
    );
    let s = render(&a, 80, 24)?;
    let rows: Vec<&str> = s.lines().collect();
    let marker = rows
        .iter()
        .position(|r| r.contains(" new "))
        .ok_or("no marker")?;
    assert!(marker <= 2, "the marker is at the top:\n{s}");
    assert!(s.contains("line 30"), "the first unread shows:\n{s}");
    assert!(!s.contains("line 59"), "not the newest:\n{s}");
    // A room whose unread messages all fit stays at the bottom.
    let mut b = busy_room(2);
    drive(&mut b, alt('2'));
    drive(
        &mut b,
        Action::Engine(Event::History {
            room: RoomId(2),
            messages: (0..5)
                .map(|i| msg(100 + i, 2, "bob", &format!("line {i}"), 600 + i))
                .collect(),
            more: false,
        }),
    );
    assert_eq!(b.panes().focused().scroll, 0);
    Ok(())
}

#[test]
fn search_results_scroll_and_enter_opens_the_message() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(80, 24);
    let results: Vec<MessageView> = (0..30)
        .map(|i| msg(1000 + i, 1, "alice", &format!("needle {i}"), 700 + i))
        .collect();
    for m in &results {
        drive(&mut a, Action::Engine(Event::Message(m.clone())));
    }
    drive(&mut a, alt('2'));
    drive(
        &mut a,
        Action::Engine(Event::SearchResults {
            query: "needle".into(),
            messages: results.clone(),
        }),
    );
    let s = render(&a, 80, 24)?;
    assert!(s.contains("needle 29"), "the newest is chosen:\n{s}");
    for _ in 0..25 {
        drive(&mut a, key(KeyCode::Up));
    }
    let s = render(&a, 80, 24)?;
    assert!(s.contains("needle 4"), "scrolled:\n{s}");
    assert!(!s.contains("needle 29"), "scrolled:\n{s}");
    assert!(matches!(
        a.overlay,
        Some(Overlay::Search(SearchView { selected: 4, .. }))
    ));
    // Enter opens the room at that message, marked.
    drive(&mut a, key(KeyCode::Enter));
    assert!(a.overlay.is_none());
    assert_eq!(a.focused_room(), Some(RoomId(1)));
    assert_eq!(a.panes().focused().highlight, Some(MessageId(1004)));
    assert!(a.panes().focused().scroll > 0, "scrolled up to it");
    let mut t = Terminal::new(TestBackend::new(80, 24))?;
    t.draw(|f| view(&a, f))?;
    let s = t.backend().to_string();
    assert!(s.contains("needle 4 "), "{s}");
    let buf = t.backend().buffer();
    let hl = a.theme().style(Role::Highlight);
    let y = s
        .lines()
        .position(|l| l.contains("needle 4 "))
        .ok_or("no row")? as u16;
    let marked = (0..80).any(|x| {
        let c = &buf[(x, y)];
        c.symbol() == "n"
            && c.bg == hl.bg.unwrap_or_default()
            && c.modifier.contains(hl.add_modifier)
    });
    assert!(marked, "the message is marked");
    Ok(())
}

#[test]
fn a_result_older_than_the_loaded_page_loads_pages_until_it_is_there() {
    let mut a = busy_room(0);
    drive(&mut a, alt('2'));
    drive(
        &mut a,
        Action::Engine(Event::History {
            room: RoomId(2),
            messages: (500..700)
                .map(|i| msg(i, 2, "bob", &format!("m {i}"), i))
                .collect(),
            more: true,
        }),
    );
    drive(
        &mut a,
        Action::Engine(Event::SearchResults {
            query: "old".into(),
            messages: vec![msg(120, 2, "bob", "old one", 120)],
        }),
    );
    let cmds = drive(&mut a, key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::LoadHistory {
            room: RoomId(2),
            before: Some(MessageId(500)),
            limit: 200
        }]
    );
    let cmds = drive(
        &mut a,
        Action::Engine(Event::History {
            room: RoomId(2),
            messages: (300..500)
                .map(|i| msg(i, 2, "bob", &format!("m {i}"), i))
                .collect(),
            more: true,
        }),
    );
    assert_eq!(
        cmds,
        vec![Command::LoadHistory {
            room: RoomId(2),
            before: Some(MessageId(300)),
            limit: 200
        }]
    );
    let cmds = drive(
        &mut a,
        Action::Engine(Event::History {
            room: RoomId(2),
            messages: (100..300)
                .map(|i| {
                    let text = if i == 120 {
                        "old one".to_string()
                    } else {
                        format!("m {i}")
                    };
                    msg(i, 2, "bob", &text, i)
                })
                .collect(),
            more: true,
        }),
    );
    assert!(cmds.is_empty(), "found: {cmds:?}");
    assert!(a.panes().focused().scroll > 500);
    let s = render(&a, 80, 24).unwrap_or_default();
    assert!(s.contains("old one"), "{s}");
}

#[test]
fn tab_completes_at_names_with_group_members() {
    let mut a = app(80, 24);
    drive(&mut a, alt('3'));
    drive(
        &mut a,
        Action::Engine(Event::Room(RoomSummary {
            members: vec!["alice".into(), "bob".into(), "zoe".into()],
            ..room(3, "team", RoomKind::Group, 0, 0)
        })),
    );
    typed(&mut a, "thanks @z");
    drive(&mut a, key(KeyCode::Tab));
    assert_eq!(
        a.input_text(),
        "thanks @zoe ",
        "zoe is a member, not a contact"
    );
    drive(&mut a, ctrl('c'));
    typed(&mut a, "@b");
    drive(&mut a, key(KeyCode::Tab));
    assert_eq!(a.input_text(), "@bob ");
}

#[test]
fn the_theme_is_remembered_in_the_config_file() -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("theme-config");
    let config = dir.join("config.toml");
    std::fs::write(&config, "relay = \"hum://x:1#abc\"\n")?;
    let opts = UiOptions {
        config_file: Some(config.clone()),
        ..UiOptions::default()
    };
    let mut a = App::with_env(&opts, ColorMode::TrueColor, false);
    typed(&mut a, "/theme gruvbox");
    drive_with(&Runner::new(&opts), &mut a, key(KeyCode::Enter));
    assert_eq!(a.theme().name, "gruvbox");
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|f| f.text == "theme gruvbox (remembered)"),
        "{:?}",
        a.flash
    );
    let c = crate::engine::ProfileConfig::load(&config)?;
    assert_eq!(c.theme.as_deref(), Some("gruvbox"));
    assert_eq!(c.relay.as_deref(), Some("hum://x:1#abc"), "the rest stays");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn folders_follow_hum_home_and_never_the_working_directory() {
    let home = std::path::Path::new("/tmp/hh");
    let o = UiOptions::standard_in(Some(home));
    assert_eq!(o.themes_dirs, vec![home.join("themes")]);
    assert_eq!(o.keymap_file, Some(home.join("keys.toml")));
    let o = UiOptions::standard_in(None);
    assert!(
        o.themes_dirs.iter().all(|d| d.is_absolute()),
        "{:?}",
        o.themes_dirs
    );
}

#[test]
fn a_weak_passphrase_is_warned_about_and_may_be_kept() -> Result<(), Box<dyn std::error::Error>> {
    let k = |c| KeyEvent::new(c, KeyModifiers::NONE);
    let mut p = Prompt::new(PromptKind::Onboarding, Theme::default_dark(), None, None);
    p.paste("ada");
    p.update(k(KeyCode::Enter));
    p.paste("a");
    assert_eq!(p.update(k(KeyCode::Enter)), PromptOutcome::Continue);
    let mut t = Terminal::new(TestBackend::new(80, 24))?;
    t.draw(|f| p.view(f))?;
    let s = t.backend().to_string();
    assert!(s.contains("Weak passphrase"), "{s}");
    assert_snapshot!(s);
    // Enter again keeps it: the next field is the repeat.
    p.update(k(KeyCode::Enter));
    p.paste("a");
    match p.update(k(KeyCode::Enter)) {
        PromptOutcome::Done(name, pass) => {
            assert_eq!(name, "ada");
            assert_eq!(pass.as_str(), "a");
        }
        other => return Err(format!("expected Done, got {other:?}").into()),
    }
    // A strong one goes through at once; a common one is called weak even when long.
    assert!(prompt::weakness("tangerine orbit calmly 1987 kettle", "ada").is_none());
    assert!(prompt::weakness("password123456", "ada").is_some());
    Ok(())
}

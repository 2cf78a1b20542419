//! Tests of the whole UI state: keys to commands, and TestBackend snapshots.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use insta::assert_snapshot;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::api::{
    ContactId, Delivery, LinkState, LinkStatus, MessageId, MessageView, RoomId, RoomKind,
    RoomSummary,
};

const DAY: i64 = 20_781 * 86_400_000; // Tue 2026-11-24, 00:00 UTC

/// A room as the engine sums it up (a group has alice and bob).
pub(super) fn room(id: i64, name: &str, kind: RoomKind, unread: u32, mentions: u32) -> RoomSummary {
    RoomSummary {
        id: RoomId(id),
        name: name.into(),
        kind,
        members: if kind == RoomKind::Group {
            vec!["alice".into(), "bob".into()]
        } else {
            vec![name.into()]
        },
        unread,
        mentions,
        closed: false,
    }
}

/// A text message `mins` minutes into the test day (`me` sends delivered ones).
pub(super) fn msg(id: i64, room: i64, sender: &str, text: &str, mins: i64) -> MessageView {
    MessageView {
        id: MessageId(id),
        room: RoomId(room),
        sender: sender.into(),
        from_me: sender == "me",
        text: text.into(),
        sent_at: DAY + mins * 60_000,
        delivery: (sender == "me").then_some(Delivery::Delivered),
        kind: crate::api::MessageKind::Text,
    }
}

fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn alt(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT))
}

/// Handle an action as the TUI's loop does: the effects on files carried out by `runner`
/// and what came of them handled in turn. Every effect, in order.
fn effects_with(runner: &Runner, app: &mut App, action: Action) -> Vec<Effect> {
    let mut all = Vec::new();
    let mut queue = std::collections::VecDeque::from([action]);
    while let Some(a) = queue.pop_front() {
        for e in app.update(a) {
            queue.extend(runner.perform(&e));
            all.push(e);
        }
    }
    all
}

/// The commands among effects.
fn commands(effects: Vec<Effect>) -> Vec<Command> {
    effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Engine(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// Handle an action as the TUI's loop does (files as `runner` has them); what goes to
/// the engine.
fn drive_with(runner: &Runner, app: &mut App, action: Action) -> Vec<Command> {
    commands(effects_with(runner, app, action))
}

/// Handle an action as the TUI's loop does, with no layout or config file; what goes to
/// the engine.
fn drive(app: &mut App, action: Action) -> Vec<Command> {
    drive_with(&Runner::default(), app, action)
}

/// The engine's `Ready` for the profile "me", with these rooms and contacts.
fn ready(
    app: &mut App,
    rooms: Vec<RoomSummary>,
    contacts: Vec<(ContactId, String)>,
) -> Vec<Command> {
    let me = "me".into();
    drive(
        app,
        Action::Engine(Event::Ready {
            me,
            rooms,
            contacts,
        }),
    )
}

fn typed(app: &mut App, s: &str) -> Vec<Command> {
    let mut out = Vec::new();
    for c in s.chars() {
        out.extend(drive(app, key(KeyCode::Char(c))));
    }
    out
}

fn empty_app(w: u16, h: u16) -> App {
    let mut app = App::with_env(&UiOptions::default(), ColorMode::TrueColor, false);
    drive(&mut app, Action::Resize(w, h));
    app
}

/// A profile with three rooms, a conversation with wide characters, and two relays.
fn app(w: u16, h: u16) -> App {
    let mut app = empty_app(w, h);
    ready(
        &mut app,
        vec![
            room(1, "alice", RoomKind::Direct(ContactId(1)), 0, 0),
            room(2, "bob", RoomKind::Direct(ContactId(2)), 3, 0),
            room(3, "team", RoomKind::Group, 5, 1),
        ],
        vec![(ContactId(1), "alice".into()), (ContactId(2), "bob".into())],
    );
    let mut history = vec![
        msg(
            1,
            1,
            "alice",
            "hi! did the relay come up?",
            -60 * 24 + 23 * 60 + 50,
        ),
        msg(
            2,
            1,
            "me",
            "yes, hum://127.0.0.1:7800 on my box",
            -60 * 24 + 23 * 60 + 52,
        ),
        msg(3, 1, "alice", "🎉 great. 日本語も大丈夫？", 9 * 60 + 1),
        msg(4, 1, "me", "family: 👩‍👩‍👧 and 👍🏽 — 中文字符也可以", 9 * 60 + 2),
        msg(
            5,
            1,
            "alice",
            "a longer line to show wrapping: the cells keep flowing at the same rate whether we talk or not, so a watcher learns nothing from the timing",
            9 * 60 + 3,
        ),
    ];
    let last = history.pop();
    drive(
        &mut app,
        Action::Engine(Event::History {
            room: RoomId(1),
            messages: history,
            more: false,
        }),
    );
    if let Some(m) = last {
        drive(&mut app, Action::Engine(Event::Message(m)));
    }
    drive(
        &mut app,
        Action::Engine(Event::Message(MessageView {
            delivery: Some(Delivery::Queued),
            kind: crate::api::MessageKind::Text,
            ..msg(6, 1, "me", "sending while offline", 9 * 60 + 4)
        })),
    );
    drive(
        &mut app,
        Action::Engine(Event::History {
            room: RoomId(3),
            messages: vec![
                msg(10, 3, "bob", "standup in 5", 8 * 60),
                msg(11, 3, "alice", "me: can you share the invite?", 8 * 60 + 2),
            ],
            more: true,
        }),
    );
    drive(
        &mut app,
        Action::Engine(Event::Link(LinkStatus {
            relay: "relay.example:7800".into(),
            state: LinkState::Up,
            cells_up_per_sec: 10,
            cells_down_per_sec: 10,
            queued: 1,
        })),
    );
    app
}

fn render(app: &App, w: u16, h: u16) -> Result<String, Box<dyn std::error::Error>> {
    let mut t = Terminal::new(TestBackend::new(w, h))?;
    t.draw(|f| view(app, f))?;
    Ok(t.backend().to_string())
}

/// The status bar's row, as the terminal shows it: the row above the prompt.
fn status_row(app: &App, w: u16, h: u16) -> Result<String, Box<dyn std::error::Error>> {
    let screen = render(app, w, h)?;
    let row = screen
        .lines()
        .nth(usize::from(h) - 2)
        .ok_or("no status row")?
        .to_string();
    Ok(row)
}

fn route(single: bool, state: LinkState, clients: Option<u32>) -> Action {
    Action::Engine(Event::Route(crate::api::RouteStatus {
        relay: "entry.example:7667".into(),
        state,
        single,
        clients,
        cells_per_sec: 10,
        queued: 0,
    }))
}

/// On a single relay the status bar says plainly that it can see who you talk to, at
/// any width; through a mesh it names the entry relay and how many clients the slots
/// hide among; hum/1's link, up, gives way to it, and shows again when it is down.
#[test]
fn the_status_bar_says_what_the_hum2_link_hides_among() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(120, 40);
    let before = status_row(&a, 120, 40)?;
    assert!(before.contains("relay.example:7800"), "{before}");
    drive(&mut a, route(true, LinkState::Up, Some(2)));
    let row = status_row(&a, 120, 40)?;
    assert!(row.contains("entry.example:7667 ↑10/s"), "{row}");
    assert!(row.contains(status::SINGLE), "{row}");
    assert!(!row.contains("relay.example:7800"), "{row}");
    assert!(!row.contains("one of"), "{row}");
    drive(&mut a, Action::Resize(60, 20));
    let narrow = status_row(&a, 60, 20)?;
    assert!(narrow.contains(status::SINGLE), "{narrow}");

    let mut m = app(120, 40);
    drive(&mut m, route(false, LinkState::Up, Some(57)));
    let row = status_row(&m, 120, 40)?;
    assert!(row.contains("entry.example:7667"), "{row}");
    assert!(row.contains("one of 57"), "{row}");
    assert!(!row.contains("single relay"), "{row}");
    drive(&mut m, route(false, LinkState::Up, Some(12)));
    let row = status_row(&m, 120, 40)?;
    assert!(row.contains("only 12 here: little to hide among"), "{row}");
    assert!(!row.contains("one of"), "{row}");
    drive(
        &mut m,
        Action::Engine(Event::Link(LinkStatus {
            relay: "relay.example:7800".into(),
            state: LinkState::Down { retry_in_ms: 2500 },
            cells_up_per_sec: 0,
            cells_down_per_sec: 0,
            queued: 0,
        })),
    );
    drive(
        &mut m,
        route(false, LinkState::Down { retry_in_ms: 1200 }, Some(57)),
    );
    let row = status_row(&m, 120, 40)?;
    assert!(row.contains("✗ entry.example:7667 down, retry 2s"), "{row}");
    assert!(row.contains("✗ down, retry 3s"), "{row}");
    assert!(!row.contains("one of"), "{row}");
    Ok(())
}

#[test]
fn main_screen_80x24() -> Result<(), Box<dyn std::error::Error>> {
    assert_snapshot!(render(&app(80, 24), 80, 24)?);
    Ok(())
}

#[test]
fn main_screen_120x40() -> Result<(), Box<dyn std::error::Error>> {
    assert_snapshot!(render(&app(120, 40), 120, 40)?);
    Ok(())
}

#[test]
fn main_screen_40x12_collapses_the_room_list() -> Result<(), Box<dyn std::error::Error>> {
    assert_snapshot!(render(&app(40, 12), 40, 12)?);
    Ok(())
}

#[test]
fn resize_from_120x40_to_60x20() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(120, 40);
    drive(&mut a, Action::Resize(60, 20));
    assert_snapshot!(render(&a, 60, 20)?);
    Ok(())
}

#[test]
fn empty_profile_shows_how_to_invite() -> Result<(), Box<dyn std::error::Error>> {
    let opts = UiOptions {
        demo_hint: Some("demo: a contact named echo answers".into()),
        ..UiOptions::default()
    };
    let mut a = App::with_env(&opts, ColorMode::TrueColor, false);
    drive(&mut a, Action::Resize(80, 24));
    ready(&mut a, vec![], vec![]);
    assert_snapshot!(render(&a, 80, 24)?);
    Ok(())
}

#[test]
fn help_overlay() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(100, 50);
    drive(&mut a, key(KeyCode::F(1)));
    assert!(matches!(a.overlay, Some(Overlay::Help(_))));
    assert_snapshot!(render(&a, 100, 50)?);
    drive(&mut a, key(KeyCode::Esc));
    assert!(a.overlay.is_none());
    Ok(())
}

#[test]
fn split_layout() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(120, 40);
    drive(&mut a, ctrl('w'));
    drive(&mut a, key(KeyCode::Char('v')));
    drive(&mut a, alt('3'));
    drive(&mut a, ctrl('w'));
    drive(&mut a, key(KeyCode::Char('s')));
    drive(&mut a, alt('2'));
    assert_eq!(a.panes().len(), 3);
    assert_snapshot!(render(&a, 120, 40)?);
    Ok(())
}

#[test]
fn invite_overlay_prints_the_code_on_its_own() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(80, 24);
    let code = "hum1-".to_string() + &"qz7x".repeat(30);
    drive(&mut a, Action::Engine(Event::Invite { code: code.clone() }));
    let screen = render(&a, 80, 24)?;
    assert_snapshot!(screen);
    Ok(())
}

#[test]
fn onboarding_screen() -> Result<(), Box<dyn std::error::Error>> {
    let mut p = Prompt::new(PromptKind::Onboarding, Theme::default_dark(), None, None);
    for c in "ada".chars() {
        p.update(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    p.update(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    for c in "secret".chars() {
        p.update(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    let mut t = Terminal::new(TestBackend::new(80, 24))?;
    t.draw(|f| p.view(f))?;
    assert_snapshot!(t.backend().to_string());
    Ok(())
}

#[test]
fn onboarding_flow() -> Result<(), String> {
    let k = |c| KeyEvent::new(c, KeyModifiers::NONE);
    let strong = "violet harbour kettle 1931 drift";
    let mut p = Prompt::new(PromptKind::Onboarding, Theme::default_dark(), None, None);
    assert_eq!(p.update(k(KeyCode::Enter)), PromptOutcome::Continue); // empty name refused
    for c in "ada".chars() {
        p.update(k(KeyCode::Char(c)));
    }
    p.update(k(KeyCode::Enter));
    p.paste(strong);
    p.update(k(KeyCode::Enter));
    p.paste("something else entirely 42");
    assert_eq!(p.update(k(KeyCode::Enter)), PromptOutcome::Continue); // mismatch
    p.paste(strong);
    p.update(k(KeyCode::Enter));
    p.paste(strong);
    match p.update(k(KeyCode::Enter)) {
        PromptOutcome::Done(name, pass) => {
            assert_eq!(name, "ada");
            assert_eq!(pass.as_str(), strong);
        }
        other => return Err(format!("expected Done, got {other:?}")),
    }
    let mut u = Prompt::new(
        PromptKind::Unlock,
        Theme::default_dark(),
        Some("wrong passphrase".into()),
        None,
    );
    assert_eq!(u.update(k(KeyCode::Esc)), PromptOutcome::Cancelled);
    Ok(())
}

#[test]
fn unlock_screen_shows_the_error() -> Result<(), Box<dyn std::error::Error>> {
    let p = Prompt::new(
        PromptKind::Unlock,
        Theme::default_dark(),
        Some("wrong passphrase".into()),
        None,
    );
    let mut t = Terminal::new(TestBackend::new(80, 24))?;
    t.draw(|f| p.view(f))?;
    let s = t.backend().to_string();
    assert!(s.contains("wrong passphrase"), "{s}");
    Ok(())
}

// ----- keys and commands -----

#[test]
fn ready_loads_history_and_marks_read() {
    let mut a = empty_app(80, 24);
    let cmds = ready(
        &mut a,
        vec![room(5, "zed", RoomKind::Direct(ContactId(9)), 2, 0)],
        vec![(ContactId(9), "zed".into())],
    );
    assert_eq!(
        cmds,
        vec![
            Command::LoadHistory {
                room: RoomId(5),
                before: None,
                limit: 200
            },
            Command::MarkRead { room: RoomId(5) },
        ]
    );
    assert_eq!(a.focused_room(), Some(RoomId(5)));
}

#[test]
fn enter_sends_to_the_focused_room() {
    let mut a = app(80, 24);
    typed(&mut a, "hello 👋");
    let cmds = drive(&mut a, key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Send {
            room: RoomId(1),
            text: "hello 👋".into()
        }]
    );
    assert_eq!(a.input_text(), "");
    // Alt-Enter makes a newline; the message keeps it.
    typed(&mut a, "a");
    drive(
        &mut a,
        Action::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT)),
    );
    typed(&mut a, "b");
    let cmds = drive(&mut a, key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Send {
            room: RoomId(1),
            text: "a\nb".into()
        }]
    );
    // A doubled slash sends a literal slash.
    typed(&mut a, "//shrug");
    let cmds = drive(&mut a, key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Send {
            room: RoomId(1),
            text: "/shrug".into()
        }]
    );
}

#[test]
fn question_mark_is_help_only_on_an_empty_input() {
    let mut a = app(80, 24);
    typed(&mut a, "why?");
    assert!(a.overlay.is_none());
    assert_eq!(a.input_text(), "why?");
    drive(&mut a, ctrl('c'));
    assert_eq!(a.input_text(), "");
    typed(&mut a, "?");
    assert!(matches!(a.overlay, Some(Overlay::Help(_))));
}

#[test]
fn emacs_keys_edit_the_input() {
    let mut a = app(80, 24);
    typed(&mut a, "hello world");
    drive(&mut a, ctrl('a'));
    drive(&mut a, ctrl('k'));
    assert_eq!(a.input_text(), "");
    typed(&mut a, "one two");
    drive(&mut a, ctrl('w'));
    // Ctrl-W is the pane prefix here, not delete-word: the next key is a pane key.
    assert!(a.pane_prefix_pending());
    drive(&mut a, key(KeyCode::Esc));
    drive(&mut a, ctrl('u'));
    assert_eq!(a.input_text(), "");
}

#[test]
fn rooms_by_number_next_and_activity() {
    let mut a = app(80, 24);
    let cmds = drive(&mut a, alt('2'));
    assert_eq!(a.focused_room(), Some(RoomId(2)));
    assert!(cmds.contains(&Command::MarkRead { room: RoomId(2) }));
    drive(&mut a, ctrl('n'));
    assert_eq!(a.focused_room(), Some(RoomId(3)));
    drive(&mut a, ctrl('p'));
    drive(&mut a, ctrl('p'));
    assert_eq!(a.focused_room(), Some(RoomId(1)));
    // A mention elsewhere: Alt-a goes there first.
    drive(
        &mut a,
        Action::Engine(Event::Message(msg(20, 2, "bob", "me, look", 600))),
    );
    drive(
        &mut a,
        Action::Engine(Event::Message(msg(21, 3, "alice", "hey me!", 601))),
    );
    drive(&mut a, alt('a'));
    assert_eq!(a.focused_room(), Some(RoomId(2)));
    drive(&mut a, alt('a'));
    assert_eq!(a.focused_room(), Some(RoomId(3)));
    drive(&mut a, alt('a'));
    assert!(a.flash.as_ref().is_some_and(|f| f.text == "no activity"));
    assert!(drive(&mut a, alt('9')).is_empty());
    assert!(a.flash.as_ref().is_some_and(|f| f.error));
}

#[test]
fn mentions_ring_the_bell_and_count() {
    let mut a = app(80, 24);
    let mention = Action::Engine(Event::Message(msg(30, 2, "bob", "ping me please", 700)));
    let effects = a.update(mention);
    assert_eq!(
        effects.iter().filter(|e| **e == Effect::Bell).count(),
        1,
        "{effects:?}"
    );
    assert!(!a.update(Action::Tick).contains(&Effect::Bell), "rung once");
    let bob = a
        .room(RoomId(2))
        .map(|r| (r.summary.unread, r.summary.mentions));
    assert_eq!(bob, Some((4, 1)));
    // Over SSH (desktop off) there are no desktop notifications.
    assert!(!effects.iter().any(|e| matches!(e, Effect::Notify(_))));
    // Elsewhere there is one, and the bell can be turned off.
    let opts = UiOptions {
        bell_on_mention: false,
        ..UiOptions::default()
    };
    let mut b = App::with_env(&opts, ColorMode::TrueColor, true);
    ready(
        &mut b,
        vec![room(2, "bob", RoomKind::Direct(ContactId(2)), 0, 0)],
        vec![(ContactId(2), "bob".into())],
    );
    drive(&mut b, alt('2'));
    let effects = b.update(Action::Engine(Event::Message(msg(
        31, 2, "bob", "me?", 701,
    ))));
    assert!(!effects.contains(&Effect::Bell), "{effects:?}");
    assert!(
        effects.contains(&Effect::Notify("bob in bob: me?".into())),
        "{effects:?}"
    );
}

#[test]
fn pane_keys_split_move_resize_close() {
    let mut a = app(120, 40);
    drive(&mut a, ctrl('w'));
    drive(&mut a, key(KeyCode::Char('v')));
    assert_eq!((a.panes().len(), a.panes().focus()), (2, 1));
    drive(&mut a, ctrl('w'));
    drive(&mut a, key(KeyCode::Char('h')));
    assert_eq!(a.panes().focus(), 0);
    drive(&mut a, ctrl('w'));
    drive(&mut a, key(KeyCode::Char('l')));
    assert_eq!(a.panes().focus(), 1);
    let before = a
        .panes()
        .rects(a.areas(ratatui::layout::Rect::new(0, 0, 120, 40)).panes);
    drive(&mut a, ctrl('w'));
    drive(&mut a, key(KeyCode::Char('+')));
    let after = a
        .panes()
        .rects(a.areas(ratatui::layout::Rect::new(0, 0, 120, 40)).panes);
    assert!(after[1].1.width > before[1].1.width);
    drive(&mut a, ctrl('w'));
    let effects = a.update(key(KeyCode::Char('q')));
    assert_eq!(a.panes().len(), 1);
    assert_eq!(
        effects,
        vec![Effect::SaveLayout(a.panes().clone())],
        "the layout is saved"
    );
    drive(&mut a, ctrl('w'));
    drive(&mut a, key(KeyCode::Char('q')));
    assert!(a.flash.as_ref().is_some_and(|f| f.error));
}

#[test]
fn layout_is_saved_and_restored() -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("layout");
    let path = dir.join("layout.toml");
    let mut a = app(120, 40);
    ready(&mut a, vec![], vec![]);
    drive(&mut a, alt('3'));
    drive(&mut a, ctrl('w'));
    drive(&mut a, key(KeyCode::Char('v')));
    drive(&mut a, alt('2'));
    a.panes().save(&path)?;
    let opts = UiOptions {
        layout_file: Some(path),
        ..UiOptions::default()
    };
    let b = App::with_env(&opts, ColorMode::TrueColor, false);
    assert_eq!(b.panes().to_toml()?, a.panes().to_toml()?);
    Ok(())
}

#[test]
fn scrolling_past_the_top_asks_for_history() {
    let mut a = app(80, 24);
    drive(&mut a, alt('3'));
    let cmds = drive(&mut a, key(KeyCode::PageUp));
    assert_eq!(
        cmds,
        vec![Command::LoadHistory {
            room: RoomId(3),
            before: Some(MessageId(10)),
            limit: 200
        }]
    );
    // Asked once until the page arrives.
    assert!(drive(&mut a, key(KeyCode::PageUp)).is_empty());
    let older: Vec<MessageView> = (0..40)
        .map(|i| msg(100 + i, 3, "bob", &format!("old {i}"), -100 + i))
        .collect();
    let older: Vec<MessageView> = older
        .into_iter()
        .map(|mut m| {
            m.id = MessageId(m.id.0 - 100);
            m
        })
        .collect();
    drive(
        &mut a,
        Action::Engine(Event::History {
            room: RoomId(3),
            messages: older,
            more: false,
        }),
    );
    drive(&mut a, key(KeyCode::PageUp));
    assert!(a.panes().focused().scroll > 0);
    // New rows below keep a scrolled pane where it was.
    let before = a.panes().focused().scroll;
    drive(
        &mut a,
        Action::Engine(Event::Message(msg(500, 3, "bob", "new one", 900))),
    );
    // (a day separator and the message: the last loaded one is from the day before)
    assert_eq!(a.panes().focused().scroll, before + 2);
    drive(&mut a, key(KeyCode::End));
    assert_eq!(a.panes().focused().scroll, 0);
    drive(&mut a, key(KeyCode::Home));
    assert!(a.panes().focused().scroll > 0);
}

#[test]
fn mention_jumps() {
    let mut a = app(80, 24);
    for i in 0..50 {
        let text = if i == 10 {
            "hey me, here".to_string()
        } else {
            format!("line {i}")
        };
        drive(
            &mut a,
            Action::Engine(Event::Message(msg(1000 + i, 1, "alice", &text, 600 + i))),
        );
    }
    drive(&mut a, alt('p'));
    let s = a.panes().focused().scroll;
    assert!(s > 30, "{s}");
    // The message landed on is marked.
    assert_eq!(a.panes().focused().highlight, Some(MessageId(1010)));
    assert!(render(&a, 80, 24).is_ok_and(|s| s.contains("hey me, here")));
    drive(&mut a, alt('p'));
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|f| f.text == "no older mention")
    );
    drive(&mut a, alt('n'));
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|f| f.text == "no newer mention")
    );
}

#[test]
fn long_paste_asks_first() {
    let mut a = app(80, 24);
    drive(&mut a, Action::Paste("one\ntwo".into()));
    assert_eq!(a.input_text(), "one\ntwo");
    drive(&mut a, ctrl('c'));
    let big = (1..=6)
        .map(|i| format!("line {i}"))
        .collect::<Vec<_>>()
        .join("\n");
    drive(&mut a, Action::Paste(big.clone()));
    assert!(matches!(
        a.overlay,
        Some(Overlay::Paste(PasteGuard { lines: 6, .. }))
    ));
    assert!(drive(&mut a, key(KeyCode::Char('n'))).is_empty());
    assert!(a.overlay.is_none());
    assert_eq!(a.input_text(), "");
    // Dropped, and Ctrl-Z brings it back.
    drive(&mut a, ctrl('z'));
    assert_eq!(a.input_text(), big);
    drive(&mut a, ctrl('c'));
    drive(&mut a, Action::Paste(big.clone()));
    let cmds = drive(&mut a, key(KeyCode::Char('y')));
    assert_eq!(
        cmds,
        vec![Command::Send {
            room: RoomId(1),
            text: big.clone()
        }]
    );
}

#[test]
fn a_paste_goes_in_at_the_cursor_and_keeps_what_was_typed() {
    let mut a = app(80, 24);
    let big = (1..=6)
        .map(|i| format!("line {i}"))
        .collect::<Vec<_>>()
        .join("\n");
    typed(&mut a, "look: ");
    drive(&mut a, Action::Paste(format!("{big}\n")));
    let cmds = drive(&mut a, key(KeyCode::Char('y')));
    assert_eq!(
        cmds,
        vec![Command::Send {
            room: RoomId(1),
            text: format!("look: {big}")
        }],
        "the typed text stays, the trailing newline goes"
    );
    // `e` keeps the paste in the input to edit.
    typed(&mut a, "x");
    drive(&mut a, Action::Paste(big.clone()));
    drive(&mut a, key(KeyCode::Char('e')));
    assert_eq!(a.input_text(), format!("x{big}"));
}

#[test]
fn a_trailing_newline_in_a_paste_is_not_a_line() {
    let mut a = app(80, 24);
    drive(&mut a, Action::Paste("hello\n".into()));
    assert_eq!(a.input_text(), "hello");
    let cmds = drive(&mut a, key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Send {
            room: RoomId(1),
            text: "hello".into()
        }]
    );
}

#[test]
fn a_paste_over_the_limit_is_kept_and_can_go_split() {
    let mut a = app(80, 24);
    let line = "x".repeat(99) + "\n";
    let huge = line.repeat(1000); // 100,000 bytes
    let huge = huge.trim_end().to_string();
    drive(&mut a, Action::Paste(huge.clone()));
    assert!(
        matches!(a.overlay, Some(Overlay::TooLong(TooLong { bytes, .. })) if bytes == huge.len()),
        "{:?}",
        a.overlay
    );
    let s = render(&a, 80, 24).unwrap_or_default();
    assert!(s.contains("at most 64 KiB"), "{s}");
    // e: kept in the input, nothing sent.
    assert!(drive(&mut a, key(KeyCode::Char('e'))).is_empty());
    assert_eq!(a.input_text(), huge);
    // Enter on it asks again instead of failing; n drops it, Ctrl-Z brings it back.
    assert!(drive(&mut a, key(KeyCode::Enter)).is_empty());
    assert!(matches!(a.overlay, Some(Overlay::TooLong(_))));
    drive(&mut a, key(KeyCode::Char('n')));
    assert_eq!(a.input_text(), "");
    drive(&mut a, ctrl('z'));
    assert_eq!(a.input_text(), huge);
    // s: sent as parts that each fit, cut at line ends, nothing lost.
    drive(&mut a, key(KeyCode::Enter));
    let cmds = drive(&mut a, key(KeyCode::Char('s')));
    let parts: Vec<&str> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Send { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(parts.len(), 2);
    assert!(
        parts
            .iter()
            .all(|p| p.len() <= crate::engine::MAX_TEXT_BYTES)
    );
    assert_eq!(parts.join("\n"), huge);
    assert_eq!(a.input_text(), "");
}

#[test]
fn slash_commands_map_to_engine_commands() {
    let mut a = app(80, 24);
    let run = |a: &mut App, line: &str| {
        typed(a, line);
        drive(a, key(KeyCode::Enter))
    };
    assert_eq!(run(&mut a, "/inv"), vec![Command::CreateInvite]);
    assert_eq!(
        run(&mut a, "/accept hum1xyz Carol"),
        vec![Command::AcceptInvite {
            code: "hum1xyz".into(),
            name: Some("Carol".into())
        }]
    );
    let cmds = run(&mut a, "/msg bo hello bob");
    assert_eq!(a.focused_room(), Some(RoomId(2)));
    assert!(cmds.contains(&Command::Send {
        room: RoomId(2),
        text: "hello bob".into()
    }));
    assert_eq!(
        run(&mut a, "/verify"),
        vec![Command::Verify {
            contact: ContactId(2)
        }]
    );
    assert_eq!(
        run(&mut a, "/verify alice"),
        vec![Command::Verify {
            contact: ContactId(1)
        }]
    );
    assert_eq!(
        run(&mut a, "/nick bob Robert"),
        vec![Command::RenameContact {
            contact: ContactId(2),
            name: "Robert".into()
        }]
    );
    // Group commands need a group room.
    assert!(run(&mut a, "/group add alice").is_empty());
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|f| f.error && f.text.contains("group"))
    );
    drive(&mut a, ctrl('c'));
    drive(&mut a, alt('3'));
    assert_eq!(
        run(&mut a, "/group add alice"),
        vec![Command::GroupAdd {
            room: RoomId(3),
            contact: ContactId(1)
        }]
    );
    assert_eq!(
        run(&mut a, "/group remove bob"),
        vec![Command::GroupRemove {
            room: RoomId(3),
            contact: ContactId(2)
        }]
    );
    assert_eq!(
        run(&mut a, "/group rename crew"),
        vec![Command::GroupRename {
            room: RoomId(3),
            name: "crew".into()
        }]
    );
    // Leaving asks first.
    assert!(run(&mut a, "/group leave").is_empty());
    assert!(matches!(a.overlay, Some(Overlay::Confirm(_))));
    assert_eq!(
        drive(&mut a, key(KeyCode::Char('y'))),
        vec![Command::GroupLeave { room: RoomId(3) }]
    );
    assert!(run(&mut a, "/g l").is_empty());
    assert!(drive(&mut a, key(KeyCode::Char('n'))).is_empty());
    assert!(a.overlay.is_none());
    assert_eq!(
        run(&mut a, "/group create ops"),
        vec![Command::CreateGroup { name: "ops".into() }]
    );
    assert_eq!(
        run(&mut a, "/search needle"),
        vec![Command::Search {
            room: Some(RoomId(3)),
            query: "needle".into()
        }]
    );
    run(&mut a, "/vsplit");
    assert_eq!(a.panes().len(), 2);
    run(&mut a, "/close");
    assert_eq!(a.panes().len(), 1);
    run(&mut a, "/theme light");
    assert_eq!(a.theme().name, "light");
    // Unknown names and bad usage: an inline error, the input kept for fixing.
    assert!(run(&mut a, "/msg nobody hi").is_empty());
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|f| f.error && f.text.contains("nobody"))
    );
    assert_eq!(a.input_text(), "/msg nobody hi");
    drive(&mut a, ctrl('c'));
    assert!(run(&mut a, "/theme nope").is_empty());
    assert!(a.flash.as_ref().is_some_and(|f| f.error));
    drive(&mut a, ctrl('c'));
    typed(&mut a, "/quit");
    assert_eq!(
        a.update(key(KeyCode::Enter)),
        vec![Effect::Engine(Command::Quit), Effect::Quit]
    );
}

#[test]
fn tab_completes_commands_and_names() {
    let mut a = app(80, 24);
    typed(&mut a, "/inv");
    drive(&mut a, key(KeyCode::Tab));
    assert_eq!(a.input_text(), "/invite ");
    drive(&mut a, ctrl('c'));
    typed(&mut a, "/msg a");
    drive(&mut a, key(KeyCode::Tab));
    assert_eq!(a.input_text(), "/msg alice ");
    drive(&mut a, ctrl('c'));
    typed(&mut a, "/s");
    drive(&mut a, key(KeyCode::Tab));
    assert_eq!(a.input_text(), "/s");
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|f| f.text.contains("/search") && f.text.contains("/split"))
    );
    drive(&mut a, key(KeyCode::Tab));
    assert_eq!(a.input_text(), "/search");
    drive(&mut a, key(KeyCode::Tab));
    assert_eq!(a.input_text(), "/split");
}

#[test]
fn ctrl_s_searches_the_room() {
    let mut a = app(80, 24);
    drive(&mut a, ctrl('s'));
    assert_eq!(a.mode(), InputMode::Search);
    typed(&mut a, "relay");
    let cmds = drive(&mut a, key(KeyCode::Enter));
    assert_eq!(
        cmds,
        vec![Command::Search {
            room: Some(RoomId(1)),
            query: "relay".into()
        }]
    );
    assert_eq!(a.mode(), InputMode::Message);
    drive(
        &mut a,
        Action::Engine(Event::SearchResults {
            query: "relay".into(),
            messages: vec![msg(1, 1, "alice", "the relay", 5)],
        }),
    );
    assert!(matches!(a.overlay, Some(Overlay::Search(_))));
}

#[test]
fn ctrl_c_twice_quits() {
    let mut a = app(80, 24);
    assert!(drive(&mut a, ctrl('c')).is_empty());
    assert_eq!(drive(&mut a, ctrl('c')), vec![Command::Quit]);
}

#[test]
fn delivery_states_read_without_colour() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(80, 24);
    let s = render(&a, 80, 24)?;
    assert!(s.contains("sending while offline …"), "{s}");
    drive(
        &mut a,
        Action::Engine(Event::Delivery {
            room: RoomId(1),
            id: MessageId(6),
            state: Delivery::Sent,
        }),
    );
    let s = render(&a, 80, 24)?;
    assert!(s.contains("sending while offline ✓"), "{s}");
    Ok(())
}

#[test]
fn links_in_the_status_bar() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(80, 24);
    drive(
        &mut a,
        Action::Engine(Event::Link(LinkStatus {
            relay: "relay.example:7800".into(),
            state: LinkState::Down { retry_in_ms: 2500 },
            cells_up_per_sec: 0,
            cells_down_per_sec: 0,
            queued: 2,
        })),
    );
    let s = render(&a, 80, 24)?;
    assert!(s.contains("✗ relay.example:7800 down, retry 3s"), "{s}");
    assert!(s.contains("2 queued"), "{s}");
    Ok(())
}

#[test]
fn keymap_file_rebinds() -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("keymap");
    let path = dir.join("keys.toml");
    std::fs::write(&path, "[keys]\n\"ctrl-j\" = \"room-next\"\n")?;
    let opts = UiOptions {
        keymap_file: Some(path),
        ..UiOptions::default()
    };
    let mut a = App::with_env(&opts, ColorMode::TrueColor, false);
    ready(
        &mut a,
        vec![
            room(1, "a", RoomKind::Group, 0, 0),
            room(2, "b", RoomKind::Group, 0, 0),
        ],
        vec![],
    );
    drive(&mut a, ctrl('j'));
    assert_eq!(a.focused_room(), Some(RoomId(2)));
    Ok(())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hum-ui-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

#[tokio::test]
async fn theme_hot_reload_keeps_the_last_good_theme() -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("themes");
    let path = dir.join("mine.toml");
    std::fs::write(&path, "[styles]\ntext = \"#102030\"\n")?;
    let opts = UiOptions {
        theme: Some("mine".into()),
        themes_dirs: vec![dir.clone()],
        ..UiOptions::default()
    };
    let mut a = App::with_env(&opts, ColorMode::TrueColor, false);
    let rgb = |a: &App| a.theme().style(Role::Text).fg;
    assert_eq!(rgb(&a), Some(ratatui::style::Color::Rgb(0x10, 0x20, 0x30)));
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let _w = watch_themes(&opts.themes_dirs, tx)?;
    // Wait (bounded) until an action carries the wanted result.
    async fn wait_for(
        rx: &mut tokio::sync::mpsc::Receiver<ThemeChange>,
        a: &mut App,
        done: impl Fn(&App) -> bool,
    ) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(change)) =
                tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
            {
                drive(a, Action::ThemeLoaded(change));
            }
            if done(a) {
                return true;
            }
        }
        false
    }
    std::fs::write(&path, "[styles]\ntext = \"#405060\"\n")?;
    assert!(
        wait_for(&mut rx, &mut a, |a| rgb(a)
            == Some(ratatui::style::Color::Rgb(0x40, 0x50, 0x60)))
        .await,
        "the edit was not picked up"
    );
    std::fs::write(&path, "[styles]\ntext = \"not a colour\"\n")?;
    assert!(
        wait_for(&mut rx, &mut a, |a| a.theme_error().is_some()).await,
        "the error was not shown"
    );
    assert_eq!(rgb(&a), Some(ratatui::style::Color::Rgb(0x40, 0x50, 0x60)));
    let s = render(&a, 80, 24)?;
    assert!(s.contains("theme error"), "{s}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn no_color_strips_every_colour() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = App::with_env(&UiOptions::default(), ColorMode::None, false);
    drive(&mut a, Action::Resize(80, 24));
    let mut t = Terminal::new(TestBackend::new(80, 24))?;
    t.draw(|f| view(&a, f))?;
    for cell in t.backend().buffer().content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset);
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
    Ok(())
}

mod display;
mod groups;
mod habits;
mod invite;

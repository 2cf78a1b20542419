//! Groups in the TUI: create opens, both argument orders, leave asks, closed rooms hide.

use super::*;

fn run(a: &mut App, line: &str) -> Vec<Command> {
    typed(a, line);
    drive(a, key(KeyCode::Enter))
}

fn group(id: i64, name: &str, closed: bool) -> RoomSummary {
    RoomSummary {
        closed,
        ..room(id, name, RoomKind::Group, 0, 0)
    }
}

#[test]
fn group_create_opens_the_group_so_add_works_next() {
    let mut a = app(80, 24);
    assert_eq!(
        run(&mut a, "/group create ops"),
        vec![Command::CreateGroup { name: "ops".into() }]
    );
    assert_eq!(a.focused_room(), Some(RoomId(1)));
    drive(
        &mut a,
        Action::Engine(Event::Room(RoomSummary {
            members: vec![],
            ..group(9, "ops", false)
        })),
    );
    assert_eq!(a.focused_room(), Some(RoomId(9)), "the new group is open");
    assert_eq!(
        run(&mut a, "/group add bob"),
        vec![Command::GroupAdd {
            room: RoomId(9),
            contact: ContactId(2)
        }]
    );
    // A group someone else adds us to does not steal the pane.
    drive(
        &mut a,
        Action::Engine(Event::Room(group(10, "other", false))),
    );
    assert_eq!(a.focused_room(), Some(RoomId(9)));
}

#[test]
fn group_add_takes_the_line_modes_order_too() {
    let mut a = app(80, 24);
    assert_eq!(a.focused_room(), Some(RoomId(1)), "not in a group room");
    assert_eq!(
        run(&mut a, "/group add team bob"),
        vec![Command::GroupAdd {
            room: RoomId(3),
            contact: ContactId(2)
        }]
    );
    assert_eq!(
        run(&mut a, "/g rem te alice"),
        vec![Command::GroupRemove {
            room: RoomId(3),
            contact: ContactId(1)
        }]
    );
    assert_eq!(
        run(&mut a, "/group rename team crew"),
        vec![Command::GroupRename {
            room: RoomId(3),
            name: "crew".into()
        }]
    );
    // Leaving a named group asks too.
    assert!(run(&mut a, "/group leave team").is_empty());
    let s = render(&a, 80, 24).unwrap_or_default();
    assert!(s.contains("Leave #team?"), "{s}");
    assert_eq!(
        drive(&mut a, key(KeyCode::Enter)),
        vec![Command::GroupLeave { room: RoomId(3) }]
    );
    assert!(a.flash.as_ref().is_some_and(|f| f.text.contains("leaving")));
    // Once the engine has closed it, the notice says so and what can be done.
    drive(&mut a, Action::Engine(Event::Room(group(3, "team", true))));
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|f| f.text.contains("closed") && f.text.contains("/hide")),
        "{:?}",
        a.flash
    );
}

#[test]
fn a_failed_command_is_selected_not_glued_to_the_next() {
    let mut a = app(80, 24);
    assert!(run(&mut a, "/group add nobody").is_empty());
    assert!(a.flash.as_ref().is_some_and(|f| f.error));
    assert_eq!(a.input_text(), "/group add nobody", "kept for fixing");
    // Typing replaces it.
    assert_eq!(
        run(&mut a, "/group add team bob"),
        vec![Command::GroupAdd {
            room: RoomId(3),
            contact: ContactId(2)
        }]
    );
    assert_eq!(a.input_text(), "");
    // A parse error too; an arrow key keeps the text to edit it.
    assert!(run(&mut a, "/frobnicate").is_empty());
    drive(&mut a, key(KeyCode::Left));
    typed(&mut a, "X");
    assert_eq!(a.input_text(), "/frobnicatXe");
}

#[test]
fn closed_rooms_can_be_hidden_and_stay_hidden() -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("hide");
    let layout = dir.join("layout.toml");
    let opts = UiOptions {
        layout_file: Some(layout.clone()),
        ..UiOptions::default()
    };
    let mut a = App::with_env(&opts, ColorMode::TrueColor, false);
    drive(&mut a, Action::Resize(80, 24));
    let ready = Event::Ready {
        me: "me".into(),
        rooms: vec![
            room(1, "alice", RoomKind::Direct(ContactId(1)), 0, 0),
            group(2, "old", true),
            group(3, "team", false),
        ],
        contacts: vec![(ContactId(1), "alice".into())],
    };
    drive(&mut a, Action::Engine(ready.clone()));
    // An open room cannot be hidden.
    assert!(run(&mut a, "/hide team").is_empty());
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|f| f.error && f.text.contains("open"))
    );
    drive(&mut a, ctrl('c'));
    drive(&mut a, alt('2'));
    assert_eq!(a.focused_room(), Some(RoomId(2)));
    typed(&mut a, "/hide");
    let effects = effects_with(&Runner::new(&opts), &mut a, key(KeyCode::Enter));
    assert!(
        effects.contains(&Effect::SaveLayout(a.panes().clone())),
        "the layout is saved: {effects:?}"
    );
    assert_eq!(a.focused_room(), Some(RoomId(1)), "the pane moves on");
    let s = render(&a, 80, 24)?;
    assert!(!s.contains("# old"), "{s}");
    // Numbers follow the list: Alt-2 is now team.
    drive(&mut a, alt('2'));
    assert_eq!(a.focused_room(), Some(RoomId(3)));
    let mut b = App::with_env(&opts, ColorMode::TrueColor, false);
    drive(&mut b, Action::Resize(80, 24));
    drive(&mut b, Action::Engine(ready));
    assert!(
        !render(&b, 80, 24)?.contains("# old"),
        "hidden after a restart"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

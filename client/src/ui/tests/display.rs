//! What is drawn: help, tabs, joined emoji, hints, notices.

use super::*;

#[test]
fn help_wraps_at_80_columns_and_shows_its_hint_on_every_page()
-> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(80, 24);
    drive(&mut a, key(KeyCode::F(1)));
    let s = render(&a, 80, 24)?;
    assert_snapshot!(s);
    assert!(s.contains("scroll"), "the hint is on the first page:\n{s}");
    // Nothing is cut: every description's last word is on screen somewhere in the pages.
    let mut pages = s.clone();
    for _ in 0..10 {
        drive(&mut a, key(KeyCode::PageDown));
        let p = render(&a, 80, 24)?;
        assert!(p.contains("scroll"), "the hint is on every page:\n{p}");
        pages.push_str(&p);
    }
    for c in crate::command::specs(crate::command::Face::Tui) {
        let last = c.help.split_whitespace().last().unwrap_or("");
        assert!(pages.contains(last), "{} cut: {pages}", c.name);
    }
    assert!(pages.contains("to FILE)"), "{pages}");
    // Scrolling stops at the end: one Up shows a different page.
    let end = render(&a, 80, 24)?;
    drive(&mut a, key(KeyCode::Up));
    assert_ne!(render(&a, 80, 24)?, end);
    Ok(())
}

#[test]
fn help_does_not_list_ctrl_w_among_the_editing_keys() -> Result<(), Box<dyn std::error::Error>> {
    let a = app(100, 60);
    let lines = overlay::help::lines(a.theme(), &a.keymap, 90);
    let text: Vec<String> = lines
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect();
    let emacs = text
        .iter()
        .find(|l| l.contains("Emacs"))
        .ok_or("no Emacs line")?;
    assert!(!emacs.contains("/w"), "{emacs}");
    assert!(
        text.iter()
            .any(|l| l.contains("ctrl-w") && l.contains("pane"))
    );
    Ok(())
}

#[test]
fn help_fits_a_narrow_screen() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(40, 12);
    drive(&mut a, key(KeyCode::F(1)));
    let s = render(&a, 40, 12)?;
    assert!(!s.contains('…'), "nothing cut:\n{s}");
    Ok(())
}

#[test]
fn tabs_in_messages_are_kept() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(80, 24);
    drive(
        &mut a,
        Action::Engine(Event::Message(msg(
            40,
            1,
            "alice",
            "name\tqty\nfig\t3",
            600,
        ))),
    );
    let s = render(&a, 80, 24)?;
    assert!(s.contains("name    qty"), "{s}");
    assert!(s.contains("fig     3"), "{s}");
    Ok(())
}

#[test]
fn joined_emoji_keep_the_border_in_line() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(80, 24);
    drive(
        &mut a,
        Action::Engine(Event::Message(msg(
            41,
            1,
            "alice",
            "👨‍👩‍👧‍👦👩‍👩‍👧 household 👩‍❤️‍👨",
            601,
        ))),
    );
    let mut t = Terminal::new(TestBackend::new(80, 24))?;
    t.draw(|f| view(&a, f))?;
    // No cell holds a joined sequence, whose width terminals disagree about.
    for cell in t.backend().buffer().content() {
        assert!(!cell.symbol().contains('\u{200d}'), "{:?}", cell.symbol());
    }
    let s = t.backend().to_string();
    let row = s
        .lines()
        .find(|l| l.contains("household"))
        .ok_or("no row")?;
    assert!(row.contains("👨👩👧👦👩👩👧 household"), "{row}");
    Ok(())
}

#[test]
fn the_demo_hint_fits_80_columns() -> Result<(), Box<dyn std::error::Error>> {
    let hint = "Demo: hum-guide answers you. Type and press Enter; /vsplit opens a second pane; ? shows every key.";
    let opts = UiOptions {
        demo_hint: Some(hint.into()),
        ..UiOptions::default()
    };
    let mut a = App::with_env(&opts, ColorMode::TrueColor, false);
    drive(&mut a, Action::Resize(80, 24));
    drive(
        &mut a,
        Action::Engine(Event::Ready {
            me: "you".into(),
            rooms: vec![room(1, "hum-guide", RoomKind::Direct(ContactId(1)), 0, 0)],
            contacts: vec![(ContactId(1), "hum-guide".into())],
        }),
    );
    drive(
        &mut a,
        Action::Engine(Event::History {
            room: RoomId(1),
            messages: vec![],
            more: false,
        }),
    );
    let s = render(&a, 80, 24)?;
    assert!(s.contains("shows every key."), "{s}");
    Ok(())
}

#[test]
fn a_mention_stands_out_in_the_text() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(80, 24);
    drive(
        &mut a,
        Action::Engine(Event::Message(msg(
            42,
            1,
            "alice",
            "ping @me about it",
            602,
        ))),
    );
    let mut t = Terminal::new(TestBackend::new(80, 24))?;
    t.draw(|f| view(&a, f))?;
    let buf = t.backend().buffer();
    let mention = a.theme().style(Role::Mention);
    let (w, h) = (buf.area.width, buf.area.height);
    let mut found = None;
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        if let Some(i) = line.find("ping @me") {
            found = Some((line[..i].chars().count() as u16, y));
        }
    }
    let (x, y) = found.ok_or("no row")?;
    let at = |dx: u16| &buf[(x + dx, y)];
    assert_eq!(at(5).fg, mention.fg.unwrap_or_default(), "@ is marked");
    assert_eq!(at(6).fg, mention.fg.unwrap_or_default(), "m is marked");
    assert_ne!(at(0).fg, mention.fg.unwrap_or_default(), "ping is not");
    Ok(())
}

#[test]
fn a_long_input_wraps_over_rows() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = app(80, 24);
    let long = format!("start {} end", "word ".repeat(30));
    typed(&mut a, &long);
    let area = ratatui::layout::Rect::new(0, 0, 80, 24);
    assert_eq!(a.areas(area).input.height, 3);
    let s = render(&a, 80, 24)?;
    assert!(s.contains("alice› start word"), "{s}");
    assert!(s.contains("word  end"), "{s}");
    Ok(())
}

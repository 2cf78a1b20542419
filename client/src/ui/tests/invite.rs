//! Invite codes as a person handles them: copied off the screen one row per line, pasted
//! after `/accept` or alone, written to a file.

use super::*;

/// A code as long as a real one (about 590 characters).
fn real_code() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let relay = "hum://relay.example.org:7667#".to_string() + &"f".repeat(52);
    hum_shared::crypto::Identity::generate()
        .create_invite_with_nickname(&relay, Some("alice"), 86_400, now)
        .map(|(i, _)| i.encode())
        .unwrap_or_default()
}

/// The code as a terminal copy of `w` columns gives it: one line per row.
fn rows(code: &str, w: usize) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(w)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_code_copied_as_rows_and_pasted_after_accept_is_one_code() {
    let code = real_code();
    assert!(code.len() > 500, "{}", code.len());
    for w in [80, 120, 40] {
        let mut a = app(80, 24);
        typed(&mut a, "/accept ");
        drive(&mut a, Action::Paste(rows(&code, w) + "\n"));
        assert!(a.overlay.is_none(), "no paste guard: {:?}", a.overlay);
        assert!(a.input_text().starts_with("/accept hum2-"));
        let cmds = drive(&mut a, key(KeyCode::Enter));
        assert_eq!(
            cmds,
            vec![Command::AcceptInvite {
                code: code.clone(),
                name: None
            }],
            "at {w} columns"
        );
    }
    // With a name typed after the paste.
    let mut a = app(80, 24);
    typed(&mut a, "/acc ");
    drive(&mut a, Action::Paste(rows(&code, 80)));
    typed(&mut a, " Alice Smith");
    assert_eq!(
        drive(&mut a, key(KeyCode::Enter)),
        vec![Command::AcceptInvite {
            code: code.clone(),
            name: Some("Alice Smith".into())
        }]
    );
    // "/accept" with no space yet: the code does not stick to the command.
    let mut a = app(80, 24);
    typed(&mut a, "/accept");
    drive(&mut a, Action::Paste(rows(&code, 80)));
    assert_eq!(
        drive(&mut a, key(KeyCode::Enter)),
        vec![Command::AcceptInvite {
            code: code.clone(),
            name: None
        }]
    );
}

#[test]
fn a_code_pasted_alone_is_offered_for_accepting_never_sent()
-> Result<(), Box<dyn std::error::Error>> {
    let code = real_code();
    let mut a = app(80, 24);
    drive(&mut a, Action::Paste(rows(&code, 80)));
    assert!(
        matches!(a.overlay, Some(Overlay::Confirm(_))),
        "{:?}",
        a.overlay
    );
    let s = render(&a, 80, 24)?;
    assert!(s.contains("Accept this invite code?"), "{s}");
    assert_eq!(
        drive(&mut a, key(KeyCode::Char('y'))),
        vec![Command::AcceptInvite {
            code: code.clone(),
            name: None
        }]
    );
    // No: the text comes back to the input; Enter asks again and sends nothing.
    drive(&mut a, Action::Paste(rows(&code, 120)));
    assert!(drive(&mut a, key(KeyCode::Char('n'))).is_empty());
    assert!(a.input_text().starts_with("hum2-"));
    assert!(drive(&mut a, key(KeyCode::Enter)).is_empty());
    assert!(matches!(a.overlay, Some(Overlay::Confirm(_))));
    // Typed (or pasted without bracketed paste) and Enter: asked too, never a message.
    let mut b = app(80, 24);
    typed(&mut b, &code);
    let cmds = drive(&mut b, key(KeyCode::Enter));
    assert!(
        !cmds.iter().any(|c| matches!(c, Command::Send { .. })),
        "{cmds:?}"
    );
    assert_eq!(
        drive(&mut b, key(KeyCode::Enter)),
        vec![Command::AcceptInvite { code, name: None }]
    );
    // A message that only mentions a code's prefix is a message.
    let mut c = app(80, 24);
    typed(&mut c, "hum1-abc is how codes start");
    assert!(matches!(
        drive(&mut c, key(KeyCode::Enter)).as_slice(),
        [Command::Send { .. }]
    ));
    Ok(())
}

#[test]
fn the_invite_window_shows_the_code_in_plain_rows_and_wraps_it_as_one_line()
-> Result<(), Box<dyn std::error::Error>> {
    let code = real_code();
    for (w, h) in [(80u16, 24u16), (120, 40)] {
        let mut a = app(w, h);
        typed(&mut a, "/invite");
        drive(&mut a, key(KeyCode::Enter));
        assert!(a.flash.as_ref().is_some_and(|f| f.text.contains("making")));
        drive(&mut a, Action::Engine(Event::Invite { code: code.clone() }));
        // The notice is done once the code is shown.
        assert!(a.flash.is_none(), "{:?}", a.flash);
        let s = render(&a, w, h)?;
        let screen: Vec<&str> = s.lines().map(|l| l.trim_matches('"')).collect();
        let first = screen
            .iter()
            .position(|l| l.starts_with("hum2-"))
            .ok_or("no code on screen")?;
        let n = code.len().div_ceil(usize::from(w));
        let copied: String = screen[first..first + n]
            .iter()
            .map(|l| l.trim_end())
            .collect();
        assert_eq!(copied, code, "at {w}x{h}: the rows are the code, no border");
        // The same rows, for the terminal to wrap as one line.
        let area = ratatui::layout::Rect::new(0, 0, w, h);
        assert_eq!(
            view::invite_soft_wrap(&a, area),
            Some((first as u16, code.clone()))
        );
        assert!(s.contains("/invite FILE"), "{s}");
    }
    Ok(())
}

#[test]
fn the_invite_window_scrolls_on_a_small_screen() -> Result<(), Box<dyn std::error::Error>> {
    let code = real_code();
    let mut a = app(40, 12);
    drive(&mut a, Action::Engine(Event::Invite { code: code.clone() }));
    let s = render(&a, 40, 12)?;
    assert!(s.contains("rows 1-"), "{s}");
    assert!(s.contains("↑↓ scrolls"), "{s}");
    assert!(s.contains("widen the"), "{s}");
    let total = code.len().div_ceil(40);
    let mut seen = String::new();
    let area = ratatui::layout::Rect::new(0, 0, 40, 12);
    let (_, top) = view::invite_soft_wrap(&a, area).ok_or("no code")?;
    seen.push_str(&top);
    // Down to the end: every row of the code comes into view.
    drive(&mut a, key(KeyCode::End));
    let (_, bottom) = view::invite_soft_wrap(&a, area).ok_or("no code")?;
    assert!(code.ends_with(&bottom), "the last rows show");
    assert!(
        top.len() + bottom.len() >= code.len(),
        "{total} rows reachable"
    );
    let s = render(&a, 40, 12)?;
    assert!(s.contains(&format!("of {total}")), "{s}");
    assert!(matches!(a.overlay, Some(Overlay::Invite(InviteView { scroll, .. })) if scroll > 0));
    drive(&mut a, key(KeyCode::Esc));
    assert!(a.overlay.is_none());
    Ok(())
}

#[test]
fn invite_file_writes_the_code() -> Result<(), Box<dyn std::error::Error>> {
    let dir = scratch("invite-file");
    let path = dir.join("code.txt");
    let mut a = app(80, 24);
    typed(&mut a, &format!("/invite {}", path.display()));
    assert_eq!(
        drive(&mut a, key(KeyCode::Enter)),
        vec![Command::CreateInvite]
    );
    let code = real_code();
    let shown = Action::Engine(Event::Invite { code: code.clone() });
    let effects = effects_with(&Runner::default(), &mut a, shown);
    assert_eq!(std::fs::read_to_string(&path)?, format!("{code}\n"));
    assert!(a.flash.as_ref().is_some_and(|f| f.text.contains("saved")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
    }
    // An existing file is not overwritten.
    drive(&mut a, key(KeyCode::Esc));
    typed(&mut a, &format!("/invite {}", path.display()));
    assert!(drive(&mut a, key(KeyCode::Enter)).is_empty());
    assert!(
        a.flash
            .as_ref()
            .is_some_and(|f| f.error && f.text.contains("exists"))
    );
    // The codes shown are kept for printing once the terminal is back.
    assert!(effects.contains(&Effect::PrintOnExit(code)), "{effects:?}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn accept_splits_code_and_name_by_the_checksum() {
    let code = real_code();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let spaced = rows(&code, 80).replace('\n', " ");
    assert_eq!(
        crate::command::split_accept(&format!("{spaced} Dave"), now),
        (code.clone(), Some("Dave".to_string()))
    );
    // A damaged code is passed on whole, so the engine can say what is wrong.
    let cut = &code[..code.len() - 10];
    let (c, _) = crate::command::split_accept(&rows(cut, 80).replace('\n', " "), now);
    assert_eq!(c, cut);
}

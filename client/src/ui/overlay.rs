//! Boxes drawn over the panes, each its own component with its state, its keys and its
//! drawing: help, an invite code, a safety number, search results, a room's members, and
//! the questions (a long paste, a too-long input, yes or no). A key on an overlay gives
//! back the overlay to keep (if any) and an [`Intent`] for the rest of the UI.

pub(super) mod confirm;
pub(super) mod help;
pub(super) mod invite;
pub(super) mod members;
pub(super) mod search;

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::api::{Command, MessageId, RoomId};
use crate::ui::chat::RoomState;
use crate::ui::keymap::{Key, Keymap};
use crate::ui::theme::{Role, Theme};

pub use confirm::{Confirm, PasteGuard, TooLong};
pub use help::Help;
pub use invite::InviteView;
pub use members::{MembersView, SafetyView};
pub use search::SearchView;

/// A box drawn over the panes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// Keys and commands.
    Help(Help),
    /// A fresh invite code to copy.
    Invite(InviteView),
    /// A safety number to compare.
    Safety(SafetyView),
    /// Search results.
    Search(SearchView),
    /// A room's members.
    Members(MembersView),
    /// A long paste, already in the input, waiting for confirmation.
    Paste(PasteGuard),
    /// The input is longer than one message can be.
    TooLong(TooLong),
    /// A question answered with y or n.
    Confirm(Confirm),
}

/// What an overlay's key asks of the rest of the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Intent {
    /// Run the input as Enter does.
    Submit,
    /// Take the paste from `from` back out of the input (all of the input when `None`),
    /// and say `notice`.
    Drop {
        /// Where the paste starts.
        from: Option<(usize, usize)>,
        /// What to say.
        notice: &'static str,
    },
    /// Send the input as several messages.
    SendSplit,
    /// Say something.
    Notice(String),
    /// Ask the engine, then say `done`.
    Engine {
        /// The commands.
        commands: Vec<Command>,
        /// The notice after.
        done: String,
    },
    /// Put this text back in the input.
    Restore(String),
    /// Open a room at a message, marked.
    JumpTo(RoomId, MessageId),
}

/// What overlays read to draw and to scroll.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cx<'a> {
    /// The theme.
    pub(super) theme: &'a Theme,
    /// The keymap (the help lists it).
    pub(super) keymap: &'a Keymap,
    /// The offset from UTC for times.
    pub(super) tz: i64,
    /// The rooms (search results name theirs).
    pub(super) rooms: &'a [RoomState],
    /// The screen.
    pub(super) screen: Rect,
}

impl Overlay {
    /// Handle a key: the overlay to keep showing (none closes it) and what to do next.
    pub(super) fn key(self, key: &Key, cx: &Cx<'_>) -> (Option<Overlay>, Option<Intent>) {
        let page = cx.screen.height.saturating_sub(4).max(1) as isize;
        match self {
            Overlay::Help(h) => (h.key(key, page, cx).map(Overlay::Help), None),
            Overlay::Invite(i) => (i.key(key, page, cx).map(Overlay::Invite), None),
            Overlay::Search(s) => {
                let (s, intent) = s.key(key, page);
                (s.map(Overlay::Search), intent)
            }
            Overlay::Paste(p) => (None, p.key(key)),
            Overlay::TooLong(t) => (None, Some(t.key(key))),
            Overlay::Confirm(c) => (None, c.key(key)),
            // Any key closes these.
            Overlay::Safety(_) | Overlay::Members(_) => (None, None),
        }
    }

    /// Draw it over `cx.screen`.
    pub(super) fn draw(&self, cx: &Cx<'_>, frame: &mut Frame<'_>) {
        match self {
            Overlay::Help(h) => h.draw(cx, frame),
            Overlay::Invite(i) => i.draw(cx, frame),
            Overlay::Safety(s) => s.draw(cx, frame),
            Overlay::Search(s) => s.draw(cx, frame),
            Overlay::Members(m) => m.draw(cx, frame),
            Overlay::Paste(p) => p.draw(cx, frame),
            Overlay::TooLong(t) => t.draw(cx, frame),
            Overlay::Confirm(c) => c.draw(cx, frame),
        }
    }
}

/// A rectangle centred in `area`, at most `w` x `h`.
pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Lines in a bordered box `w` wide (at most the screen), as high as they wrap, centred.
pub(super) fn boxed(
    cx: &Cx<'_>,
    frame: &mut Frame<'_>,
    title: &str,
    lines: Vec<Line<'static>>,
    w: u16,
) {
    let inner_w = w.min(cx.screen.width).saturating_sub(2).max(1);
    let rows: u16 = lines
        .iter()
        .map(|l| (l.width() as u16).div_ceil(inner_w).max(1))
        .sum();
    let r = centered(cx.screen, w, rows + 2);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(format!(" {title} "))
                .border_style(cx.theme.style(Role::BorderFocused))
                .style(cx.theme.style(Role::Overlay)),
        ),
        r,
    );
}

/// `k  what   k  what` with the keys standing out.
pub(super) fn keys_line(t: &Theme, keys: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (k, what) in keys {
        spans.push(Span::styled(k.to_string(), t.style(Role::Prompt)));
        spans.push(Span::raw(format!(" {what}   ")));
    }
    Line::from(spans)
}

/// How a key moves in a list or a scrolled text: by rows, a page, or to an end.
pub(super) fn list_step(key: &Key, page: isize) -> Option<isize> {
    if !key.mods.is_empty() && key.mods != KeyModifiers::SHIFT {
        return None;
    }
    match key.code {
        KeyCode::Up | KeyCode::Char('k') => Some(-1),
        KeyCode::Down | KeyCode::Char('j') => Some(1),
        KeyCode::PageUp => Some(-page),
        KeyCode::PageDown | KeyCode::Char(' ') => Some(page),
        KeyCode::Home => Some(isize::MIN),
        KeyCode::End => Some(isize::MAX),
        _ => None,
    }
}

/// `at` moved by `d`, kept within `0..=max`.
pub(super) fn step_by(at: usize, d: isize, max: usize) -> usize {
    let to = if d < 0 {
        at.saturating_sub(d.unsigned_abs())
    } else {
        at.saturating_add(d.unsigned_abs())
    };
    to.min(max)
}

/// A scroll offset moved by a key, within `0..=max`; `None` for other keys.
pub(super) fn scrolled(scroll: u16, key: &Key, page: isize, max: u16) -> Option<u16> {
    list_step(key, page)
        .map(|d| u16::try_from(step_by(usize::from(scroll), d, usize::from(max))).unwrap_or(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MessageKind, MessageView};

    fn key(code: KeyCode) -> Key {
        Key {
            code,
            mods: KeyModifiers::NONE,
        }
    }

    fn with_cx<T>(w: u16, h: u16, f: impl FnOnce(&Cx<'_>) -> T) -> T {
        let theme = Theme::default_dark();
        let keymap = Keymap::default();
        f(&Cx {
            theme: &theme,
            keymap: &keymap,
            tz: 0,
            rooms: &[],
            screen: Rect::new(0, 0, w, h),
        })
    }

    fn press(o: Overlay, code: KeyCode, w: u16, h: u16) -> (Option<Overlay>, Option<Intent>) {
        with_cx(w, h, |cx| o.key(&key(code), cx))
    }

    #[test]
    fn help_scrolls_within_its_text_and_any_other_key_closes_it() -> Result<(), String> {
        let help = Overlay::Help(Help::default());
        let (o, i) = press(help.clone(), KeyCode::Down, 80, 24);
        assert_eq!((o, i), (Some(Overlay::Help(Help { scroll: 1 })), None));
        let (o, _) = press(help.clone(), KeyCode::End, 80, 24);
        let Some(Overlay::Help(end)) = o else {
            return Err(format!("End keeps the help open: {o:?}"));
        };
        assert!(end.scroll > 10, "{end:?}");
        let (o, _) = press(Overlay::Help(end), KeyCode::PageDown, 80, 24);
        assert_eq!(o, Some(Overlay::Help(end)), "no further than the end");
        // On a tall screen it fits: nothing to scroll.
        let (o, _) = press(help.clone(), KeyCode::Down, 100, 200);
        assert_eq!(o, Some(Overlay::Help(Help { scroll: 0 })));
        assert_eq!(press(help, KeyCode::Esc, 80, 24), (None, None));
        Ok(())
    }

    #[test]
    fn an_invite_code_scrolls_only_when_the_screen_is_too_small() {
        let code = "hum1-".to_string() + &"qz7x".repeat(150);
        let invite = Overlay::Invite(InviteView::new(code.clone()));
        let (o, _) = press(invite.clone(), KeyCode::Down, 40, 12);
        assert!(matches!(
            o,
            Some(Overlay::Invite(InviteView { scroll: 1, .. }))
        ));
        let (o, _) = press(invite.clone(), KeyCode::Down, 120, 40);
        assert!(matches!(
            o,
            Some(Overlay::Invite(InviteView { scroll: 0, .. }))
        ));
        assert_eq!(press(invite, KeyCode::Char('x'), 40, 12), (None, None));
    }

    fn found(id: i64) -> MessageView {
        MessageView {
            id: MessageId(id),
            room: RoomId(id % 2),
            sender: "bob".into(),
            from_me: false,
            text: format!("needle {id}"),
            sent_at: 0,
            delivery: None,
            kind: MessageKind::Text,
        }
    }

    #[test]
    fn search_results_move_the_choice_and_enter_jumps_to_it() -> Result<(), String> {
        let view = SearchView::new("needle".into(), (0..5).map(found).collect());
        assert_eq!(view.selected, 4, "the newest is chosen");
        let (o, i) = press(Overlay::Search(view), KeyCode::Up, 80, 24);
        assert_eq!(i, None);
        let Some(Overlay::Search(up)) = o else {
            return Err(format!("Up keeps the results open: {o:?}"));
        };
        assert_eq!(up.selected, 3);
        let (o, _) = press(Overlay::Search(up.clone()), KeyCode::Home, 80, 24);
        assert!(matches!(
            o,
            Some(Overlay::Search(SearchView { selected: 0, .. }))
        ));
        assert_eq!(
            press(Overlay::Search(up), KeyCode::Enter, 80, 24),
            (None, Some(Intent::JumpTo(RoomId(1), MessageId(3))))
        );
        let none = Overlay::Search(SearchView::new("x".into(), vec![]));
        assert_eq!(press(none, KeyCode::Enter, 80, 24), (None, None));
        Ok(())
    }

    #[test]
    fn questions_answer_with_what_to_do_next() {
        let guard = Overlay::Paste(PasteGuard {
            lines: 6,
            from: (0, 3),
        });
        assert_eq!(
            press(guard.clone(), KeyCode::Char('y'), 80, 24),
            (None, Some(Intent::Submit))
        );
        assert_eq!(
            press(guard.clone(), KeyCode::Char('e'), 80, 24),
            (None, None)
        );
        assert_eq!(
            press(guard, KeyCode::Char('n'), 80, 24),
            (
                None,
                Some(Intent::Drop {
                    from: Some((0, 3)),
                    notice: "paste dropped (Ctrl-Z brings it back)"
                })
            )
        );
        let long = Overlay::TooLong(TooLong {
            bytes: 100_000,
            from: None,
        });
        assert_eq!(
            press(long.clone(), KeyCode::Char('s'), 80, 24),
            (None, Some(Intent::SendSplit))
        );
        assert!(matches!(
            press(long.clone(), KeyCode::Char('n'), 80, 24),
            (None, Some(Intent::Drop { from: None, .. }))
        ));
        assert_eq!(
            press(long, KeyCode::Char('e'), 80, 24),
            (
                None,
                Some(Intent::Notice(
                    "kept in the input: 98 of at most 64 KiB".into()
                ))
            )
        );
        let ask = Confirm::accept("hum1-abc".into(), "hum1-abc".into());
        assert_eq!(
            press(Overlay::Confirm(ask.clone()), KeyCode::Enter, 80, 24),
            (
                None,
                Some(Intent::Engine {
                    commands: vec![Command::AcceptInvite {
                        code: "hum1-abc".into(),
                        name: None
                    }],
                    done: ask.done.clone()
                })
            )
        );
        assert_eq!(
            press(Overlay::Confirm(ask.clone()), KeyCode::Char('n'), 80, 24),
            (None, Some(Intent::Restore("hum1-abc".into())))
        );
        let no_keep = Confirm { keep: None, ..ask };
        assert_eq!(
            press(Overlay::Confirm(no_keep), KeyCode::Esc, 80, 24),
            (None, None)
        );
        let safety = Overlay::Safety(SafetyView {
            name: "bob".into(),
            number: "1 2 3".into(),
        });
        assert_eq!(press(safety, KeyCode::Down, 80, 24), (None, None));
    }

    #[test]
    fn steps_stay_in_range() {
        assert_eq!(step_by(2, -5, 10), 0);
        assert_eq!(step_by(2, isize::MAX, 10), 10);
        assert_eq!(step_by(2, 3, 10), 5);
        assert_eq!(list_step(&key(KeyCode::Char('x')), 5), None);
        let ctrl_j = Key {
            code: KeyCode::Char('j'),
            mods: KeyModifiers::CONTROL,
        };
        assert_eq!(list_step(&ctrl_j, 5), None, "a chord is not a step");
    }
}

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

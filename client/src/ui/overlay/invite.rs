//! The invite overlay: a fresh code full width, from the first column and without a border,
//! so that the terminal's selection copies it whole; a window of its rows that scrolls on a
//! screen too small for it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};

use crate::ui::keymap::Key;
use crate::ui::overlay::{Cx, scrolled};
use crate::ui::text;
use crate::ui::theme::{Role, Theme};

/// A fresh invite code to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteView {
    /// The code.
    pub code: String,
    /// Rows of the code scrolled past (when the screen is too small for all of it).
    pub scroll: u16,
}

impl InviteView {
    /// The code, from its first row.
    pub(in crate::ui) fn new(code: String) -> Self {
        InviteView { code, scroll: 0 }
    }

    /// A key: scrolled, or closed (`None`) by any other key.
    pub(super) fn key(self, key: &Key, page: isize, cx: &Cx<'_>) -> Option<Self> {
        let l = layout(cx.theme, &self.code, cx.screen, 0);
        let max = u16::try_from(l.total - usize::from(l.rows)).unwrap_or(0);
        let scroll = scrolled(self.scroll, key, page, max)?;
        Some(InviteView { scroll, ..self })
    }

    /// The code rows shown on `screen` as one string, and the screen row where they start:
    /// written again straight to the terminal from the first column, the terminal wraps
    /// them itself and keeps them as one line, so a copy gives the code on one line.
    pub(in crate::ui) fn soft_wrap(&self, theme: &Theme, screen: Rect) -> (u16, String) {
        let l = layout(theme, &self.code, screen, self.scroll);
        (l.code_y, l.code_rows(&self.code).concat())
    }

    /// Draw it.
    pub(super) fn draw(&self, cx: &Cx<'_>, frame: &mut Frame<'_>) {
        let (t, area) = (cx.theme, cx.screen);
        let l = layout(t, &self.code, area, self.scroll);
        frame.render_widget(Clear, l.rect);
        frame.render_widget(
            Paragraph::new(l.head.clone()).style(t.style(Role::Overlay)),
            Rect {
                height: l.code_y - l.rect.y,
                ..l.rect
            },
        );
        // The code from the first column, plain, one row under the other: the terminal
        // is also told to wrap it as one line (see `soft_wrap`).
        for (i, row) in l.code_rows(&self.code).into_iter().enumerate() {
            let y = l.code_y + i as u16;
            frame.render_widget(
                Line::styled(row, Style::reset()),
                Rect::new(area.x, y, area.width, 1),
            );
        }
        let foot_y = l.code_y + l.rows;
        frame.render_widget(
            Paragraph::new(l.foot.clone()).style(t.style(Role::Overlay)),
            Rect {
                y: foot_y,
                height: (l.rect.y + l.rect.height).saturating_sub(foot_y),
                ..l.rect
            },
        );
    }
}

/// Where the invite overlay puts its parts on a screen of `area`.
struct InviteLayout {
    /// The rows the overlay covers (full width).
    rect: Rect,
    /// What is said above the code.
    head: Vec<Line<'static>>,
    /// The first row of the code.
    code_y: u16,
    /// The first code row shown (scrolled past the ones before).
    first: usize,
    /// How many code rows are shown.
    rows: u16,
    /// How many rows the whole code takes.
    total: usize,
    /// What is said under the code.
    foot: Vec<Line<'static>>,
    width: usize,
}

impl InviteLayout {
    /// The code's rows that are shown, as the screen cuts them.
    fn code_rows(&self, code: &str) -> Vec<String> {
        let chars: Vec<char> = code.chars().collect();
        chars
            .chunks(self.width.max(1))
            .skip(self.first)
            .take(usize::from(self.rows))
            .map(|c| c.iter().collect())
            .collect()
    }
}

fn wrapped(s: &str, w: usize, style: Style) -> Vec<Line<'static>> {
    text::wrap(s, w)
        .into_iter()
        .map(|r| Line::styled(r, style))
        .collect()
}

/// The invite overlay's layout: the code whole when it fits, else a window of its rows
/// that scrolls, with a word on how to see it whole.
fn layout(t: &Theme, code: &str, area: Rect, scroll: u16) -> InviteLayout {
    let w = usize::from(area.width.max(1));
    let total = text::width(code).div_ceil(w).max(1);
    let rule = Line::styled("─".repeat(w), t.style(Role::Border));
    let mut head = vec![rule.clone()];
    head.extend(wrapped(
        "Your invite code: give it to one person, over a channel you trust.",
        w,
        t.style(Role::TitleFocused),
    ));
    head.extend(wrapped(
        "They paste it into hum (alone, or after /accept). It works once.",
        w,
        t.style(Role::Text),
    ));
    head.push(Line::raw(""));
    let mut foot = vec![Line::raw("")];
    foot.extend(wrapped(
        "Esc closes. /invite FILE saves a code to FILE; hum prints it again when it quits.",
        w,
        t.style(Role::Dim),
    ));
    foot.push(rule);
    let fits = head.len() + total + foot.len() <= usize::from(area.height);
    let (first, rows) = if fits {
        (0, total)
    } else {
        foot = wrapped(
            "Too small to show it whole: widen the terminal, or /invite FILE.",
            w,
            t.style(Role::Dim),
        );
        let room = usize::from(area.height)
            .saturating_sub(1 + foot.len())
            .max(1);
        let rows = room.min(total);
        let first = usize::from(scroll).min(total - rows);
        head = wrapped(
            &format!(
                "Code rows {}-{} of {total}, ↑↓ scrolls:",
                first + 1,
                first + rows
            ),
            w,
            t.style(Role::TitleFocused),
        );
        head.truncate(1);
        (first, rows)
    };
    let rows16 = u16::try_from(rows).unwrap_or(u16::MAX);
    let h = (u16::try_from(head.len() + foot.len()).unwrap_or(u16::MAX))
        .saturating_add(rows16)
        .min(area.height);
    let rect = Rect {
        x: area.x,
        y: area.y + (area.height - h) / 2,
        width: area.width,
        height: h,
    };
    let code_y = (rect.y + u16::try_from(head.len()).unwrap_or(0)).min(rect.bottom());
    InviteLayout {
        rect,
        head,
        code_y,
        first,
        rows: rows16.min(rect.bottom().saturating_sub(code_y)),
        total,
        foot,
        width: w,
    }
}

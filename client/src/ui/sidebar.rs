//! The room list: number, kind, name and activity badges, hotlist style.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::api::RoomKind;
use crate::ui::app::App;
use crate::ui::text;
use crate::ui::theme::Role;

/// The activity badge of a room: `@N` for mentions, else the unread count.
pub(super) fn badge(unread: u32, mentions: u32) -> Option<String> {
    if mentions > 0 {
        Some(format!("@{mentions}"))
    } else if unread > 0 {
        Some(unread.to_string())
    } else {
        None
    }
}

/// Draw the room list.
pub(super) fn draw(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let t = app.theme();
    let title = if app.me().is_empty() {
        " hum ".to_string()
    } else {
        format!(
            " hum · {} ",
            text::truncate(app.me(), area.width.saturating_sub(9) as usize)
        )
    };
    let block = Block::default()
        .borders(Borders::RIGHT | Borders::TOP)
        .border_style(t.style(Role::Border))
        .title(Span::styled(title, t.style(Role::Title)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let selected = app.focused_room();
    let mut lines = Vec::new();
    for (i, r) in app.listed().enumerate() {
        let s = &r.summary;
        let num = if i < 9 {
            format!("{}", i + 1)
        } else {
            " ".into()
        };
        let kind = match s.kind {
            RoomKind::Group => "#",
            RoomKind::Direct(_) => " ",
        };
        let badge = badge(s.unread, s.mentions);
        let bw = badge.as_ref().map_or(0, |b| text::width(b) + 1);
        let name_w = w.saturating_sub(3 + bw);
        let name = text::pad_right(&text::display(&s.name), name_w);
        let base = if Some(s.id) == selected {
            t.style(Role::RoomSelected)
        } else if s.closed {
            t.style(Role::Dim)
        } else if s.mentions > 0 {
            t.style(Role::Mention)
        } else if s.unread > 0 {
            t.style(Role::Unread)
        } else {
            t.style(Role::Room)
        };
        let mut spans = vec![Span::styled(format!("{num}{kind} {name}"), base)];
        if let Some(b) = badge {
            let role = if s.mentions > 0 {
                Role::Mention
            } else {
                Role::Unread
            };
            spans.push(Span::styled(" ", base));
            spans.push(Span::styled(b, t.style(role)));
        }
        lines.push(Line::from(spans));
    }
    if app.listed().next().is_none() {
        lines.push(Line::styled("no rooms yet", t.style(Role::Dim)));
        lines.push(Line::styled("/invite", t.style(Role::Dim)));
        lines.push(Line::styled("/accept CODE", t.style(Role::Dim)));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

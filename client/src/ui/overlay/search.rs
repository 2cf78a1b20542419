//! Search results: the matches, the chosen one marked; Enter opens its room there.

use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::api::MessageView;
use crate::ui::keymap::Key;
use crate::ui::overlay::{Cx, Intent, centered, list_step, step_by};
use crate::ui::text;
use crate::ui::theme::Role;

/// Search results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchView {
    /// The query.
    pub query: String,
    /// Matches, oldest first.
    pub results: Vec<MessageView>,
    /// The chosen match (Enter opens its room there).
    pub selected: usize,
}

impl SearchView {
    /// The results, the newest chosen.
    pub(in crate::ui) fn new(query: String, results: Vec<MessageView>) -> Self {
        SearchView {
            query,
            selected: results.len().saturating_sub(1),
            results,
        }
    }

    /// A key: moves the choice; Enter opens the chosen message; any other key closes.
    pub(super) fn key(self, key: &Key, page: isize) -> (Option<Self>, Option<Intent>) {
        if key.code == KeyCode::Enter {
            let jump = self
                .results
                .get(self.selected)
                .map(|m| Intent::JumpTo(m.room, m.id));
            return (None, jump);
        }
        match list_step(key, page) {
            Some(d) => {
                let max = self.results.len().saturating_sub(1);
                let selected = step_by(self.selected, d, max);
                (Some(SearchView { selected, ..self }), None)
            }
            None => (None, None),
        }
    }

    /// Draw it.
    pub(super) fn draw(&self, cx: &Cx<'_>, frame: &mut Frame<'_>) {
        let (t, area) = (cx.theme, cx.screen);
        let w = area.width.saturating_sub(4).max(20);
        let avail = usize::from(area.height.saturating_sub(4)).max(1);
        let mut lines = Vec::new();
        if self.results.is_empty() {
            lines.push(Line::styled(
                format!("nothing matches {:?}", self.query),
                t.style(Role::Dim),
            ));
        }
        let room_name = |id| {
            cx.rooms
                .iter()
                .find(|r| r.summary.id == id)
                .map_or(String::new(), |r| r.summary.name.clone())
        };
        let start = (self.selected + 1).saturating_sub(avail);
        let inner = usize::from(w.saturating_sub(2));
        for (i, m) in self.results.iter().enumerate().skip(start).take(avail) {
            let body = text::display(&m.text).replace('\n', " ");
            let head = format!(
                "{} {} {}: ",
                text::clock(m.sent_at, cx.tz),
                room_name(m.room),
                m.sender
            );
            let body = text::truncate(&body, inner.saturating_sub(text::width(&head)));
            let (hs, bs) = if i == self.selected {
                (t.style(Role::Highlight), t.style(Role::Highlight))
            } else {
                (t.style(Role::Dim), t.style(Role::Text))
            };
            lines.push(Line::from(vec![
                Span::styled(head, hs),
                Span::styled(body, bs),
            ]));
        }
        let rows = u16::try_from(lines.len()).unwrap_or(u16::MAX);
        let r = centered(area, w, rows + 2);
        frame.render_widget(Clear, r);
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::bordered()
                    .title(format!(" search: {} ({}) ", self.query, self.results.len()))
                    .title_bottom(Line::styled(
                        " ↑↓ choose · Enter opens it · Esc closes ",
                        t.style(Role::Dim),
                    ))
                    .border_style(t.style(Role::BorderFocused))
                    .style(t.style(Role::Overlay)),
            ),
            r,
        );
    }
}

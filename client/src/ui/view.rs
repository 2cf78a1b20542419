//! Drawing the whole screen from the state, without side effects.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::api::RoomKind;
use crate::ui::app::App;
use crate::ui::sidebar;
use crate::ui::status;
use crate::ui::text;
use crate::ui::theme::Role;
use crate::ui::timeline;

/// Draw the screen.
pub fn view(app: &App, frame: &mut Frame<'_>) {
    let area = frame.area();
    let a = app.areas(area);
    if let Some(s) = a.sidebar {
        sidebar::draw(app, frame, s);
    }
    for (pane, r) in app.panes().rects(a.panes) {
        draw_pane(app, frame, pane, r);
    }
    if let (Some(r), Some(f)) = (a.flash, &app.flash) {
        let role = if f.error { Role::Error } else { Role::Notice };
        let text = text::truncate(&f.text, r.width as usize);
        frame.render_widget(
            Paragraph::new(Line::styled(text, app.theme().style(role))),
            r,
        );
    }
    status::draw(app, frame, a.status, a.sidebar.is_none());
    draw_input(app, frame, a.input);
    if let Some(o) = &app.overlay {
        o.draw(&app.overlay_cx(area), frame);
    }
}

/// The code rows the invite overlay shows on a screen of `area`, as one string, and the
/// screen row where they start, when it is open: written again straight to the terminal
/// from the first column, the terminal wraps them itself and keeps them as one line, so a
/// copy gives the code on one line.
pub(super) fn invite_soft_wrap(app: &App, area: Rect) -> Option<(u16, String)> {
    match &app.overlay {
        Some(crate::ui::overlay::Overlay::Invite(i)) => Some(i.soft_wrap(app.theme(), area)),
        _ => None,
    }
}

fn draw_pane(app: &App, frame: &mut Frame<'_>, pane: usize, r: Rect) {
    let t = app.theme();
    let focused = pane == app.panes().focus();
    let (border, title_style) = if focused {
        (t.style(Role::BorderFocused), t.style(Role::TitleFocused))
    } else {
        (t.style(Role::Border), t.style(Role::Title))
    };
    let p = app.panes().get(pane);
    let room = p.and_then(|p| p.room).and_then(|id| app.room(id));
    let scroll = p.map_or(0, |p| p.scroll);
    let title = match room {
        Some(r) => {
            let s = &r.summary;
            let mut title = match s.kind {
                RoomKind::Group => format!("#{}", s.name),
                RoomKind::Direct(_) => s.name.clone(),
            };
            if s.kind == RoomKind::Group && !s.members.is_empty() {
                title.push_str(&format!(" ({})", s.members.len() + 1));
            }
            if s.closed {
                title.push_str(" [closed]");
            }
            if scroll > 0 {
                title.push_str(&format!(" ↑{scroll}"));
            }
            title
        }
        None => "hum".into(),
    };
    let marker = if focused { "▸ " } else { "" };
    let title = text::truncate(
        &format!(" {marker}{title} "),
        r.width.saturating_sub(2) as usize,
    );
    let block = Block::bordered()
        .border_style(border)
        .title(Span::styled(title, title_style));
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let h = inner.height as usize;
    let Some(room) = room else {
        let mut lines = vec![
            Line::styled("No room here yet.", t.style(Role::Text)),
            Line::styled("/invite makes a code to give someone;", t.style(Role::Dim)),
            Line::styled(
                "/accept CODE NAME adds them from theirs.",
                t.style(Role::Dim),
            ),
        ];
        if let Some(h) = app.demo_hint() {
            lines.push(Line::raw(""));
            lines.push(Line::styled(h.to_string(), t.style(Role::Notice)));
        }
        frame.render_widget(
            Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
        return;
    };
    let ctx = app.pane_ctx(pane, inner.width as usize);
    let (rows, exhausted) = timeline::tail_rows(&room.timeline, &ctx, scroll + h);
    let mut lines: Vec<Line<'static>> = rows.into_iter().take(h).collect();
    if exhausted && lines.len() < h {
        let mut top = Vec::new();
        if room.timeline.loading {
            top.push(Line::styled("loading…", t.style(Role::Dim)));
        } else if room.timeline.more {
            top.push(Line::styled("PgUp for older messages", t.style(Role::Dim)));
        } else if room.timeline.messages.is_empty() {
            top.push(Line::styled(
                "No messages yet. Say hello.",
                t.style(Role::Dim),
            ));
            if let Some(hint) = app.demo_hint() {
                for row in text::wrap(hint, inner.width as usize) {
                    top.push(Line::styled(row, t.style(Role::Notice)));
                }
            }
        }
        top.truncate(h - lines.len());
        top.append(&mut lines);
        lines = top;
    }
    // Bottom-align: the newest row sits on the last line.
    let pad = h.saturating_sub(lines.len());
    let r = Rect {
        y: inner.y + pad as u16,
        height: inner.height - pad as u16,
        ..inner
    };
    frame.render_widget(Paragraph::new(lines), r);
}

fn draw_input(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let t = app.theme();
    let prompt = app.input_prompt(area.width);
    let pw = text::width(&prompt) as u16;
    let p = Rect {
        width: pw.min(area.width),
        height: 1,
        ..area
    };
    frame.render_widget(
        Paragraph::new(Span::styled(prompt, t.style(Role::Prompt))),
        p,
    );
    let rest = Rect {
        x: area.x + p.width,
        width: area.width - p.width,
        ..area
    };
    frame.render_widget(app.input.widget(), rest);
}

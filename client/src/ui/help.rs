//! The help overlay: every key binding and every slash command.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::ui::app::App;
use crate::ui::commands::COMMANDS;
use crate::ui::text;
use crate::ui::theme::Role;

/// The help text's lines.
pub(super) fn lines(app: &App) -> Vec<Line<'static>> {
    let t = &app.theme;
    let keys = app.keymap.describe();
    let kw = keys
        .iter()
        .map(|(k, _)| text::width(k))
        .max()
        .unwrap_or(8)
        .min(22);
    let mut out = vec![Line::styled("Keys", t.style(Role::TitleFocused))];
    for (k, d) in keys {
        out.push(Line::from(vec![
            Span::styled(
                format!("  {}", text::pad_right(&k, kw)),
                t.style(Role::Prompt),
            ),
            Span::styled(format!("  {d}"), t.style(Role::Text)),
        ]));
    }
    out.push(Line::styled(
        "  Input: Emacs keys (ctrl-a/e/b/f/k/u/w/y, alt-b/f)",
        t.style(Role::Dim),
    ));
    out.push(Line::raw(""));
    out.push(Line::styled(
        "Commands (unique prefixes work: /q, /inv)",
        t.style(Role::TitleFocused),
    ));
    for c in COMMANDS {
        let cmd = format!("/{} {}", c.name, c.usage);
        out.push(Line::from(vec![
            Span::styled(
                format!("  {}", text::pad_right(cmd.trim_end(), 42)),
                t.style(Role::Prompt),
            ),
            Span::styled(format!("  {}", c.help), t.style(Role::Text)),
        ]));
    }
    out.push(Line::raw(""));
    out.push(Line::styled(
        "Esc closes · ↑↓ PgUp PgDn scroll",
        t.style(Role::Dim),
    ));
    out
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

/// Draw the help overlay.
pub(super) fn draw(app: &App, frame: &mut Frame<'_>, area: Rect, scroll: u16) {
    let lines = lines(app);
    let r = centered(area, 92, lines.len() as u16 + 2);
    let block = Block::bordered()
        .title(" help ")
        .border_style(app.theme.style(Role::BorderFocused))
        .style(app.theme.style(Role::Overlay));
    let max = (lines.len() as u16).saturating_sub(r.height.saturating_sub(2));
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((scroll.min(max), 0)),
        r,
    );
}

//! The help overlay: every key binding and every slash command of the TUI, wrapped to the
//! screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::command::{self, Face};
use crate::ui::keymap::{Key, Keymap};
use crate::ui::overlay::{Cx, centered, scrolled};
use crate::ui::text;
use crate::ui::theme::{Role, Theme};

/// The help overlay, scrolled this many rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Help {
    /// Rows scrolled.
    pub scroll: u16,
}

/// The widest the help box gets.
const WIDTH: u16 = 92;

/// A name and what it does, as rows `inner` cells wide: the text wraps beside the name, or
/// under it when the screen is narrow.
fn entry(
    name: &str,
    what: &str,
    name_w: usize,
    inner: usize,
    styles: (Style, Style),
) -> Vec<Line<'static>> {
    let (ns, ws) = styles;
    let beside = inner.saturating_sub(name_w + 4);
    if beside >= 18 {
        let mut out = Vec::new();
        if text::width(name) > name_w {
            // A long name on a row of its own, the text under it, beside the column.
            out.extend(
                text::wrap(name, inner.saturating_sub(2).max(8))
                    .into_iter()
                    .map(|r| Line::styled(format!("  {r}"), ns)),
            );
            for row in text::wrap(what, beside) {
                out.push(Line::from(vec![
                    Span::raw(" ".repeat(name_w + 4)),
                    Span::styled(row, ws),
                ]));
            }
            return out;
        }
        for (i, row) in text::wrap(what, beside).into_iter().enumerate() {
            let left = if i == 0 {
                format!("  {}  ", text::pad_right(name, name_w))
            } else {
                " ".repeat(name_w + 4)
            };
            out.push(Line::from(vec![
                Span::styled(left, ns),
                Span::styled(row, ws),
            ]));
        }
        return out;
    }
    let mut out: Vec<Line<'static>> = text::wrap(name, inner.saturating_sub(2).max(8))
        .into_iter()
        .map(|r| Line::styled(format!("  {r}"), ns))
        .collect();
    out.extend(
        text::wrap(what, inner.saturating_sub(4).max(8))
            .into_iter()
            .map(|r| Line::styled(format!("    {r}"), ws)),
    );
    out
}

/// A paragraph of prose, wrapped with a two-cell indent.
fn prose(s: &str, inner: usize, style: Style) -> Vec<Line<'static>> {
    text::wrap(s, inner.saturating_sub(2).max(8))
        .into_iter()
        .map(|r| Line::styled(format!("  {r}"), style))
        .collect()
}

/// The help text's lines for a box `inner` cells wide inside its border.
pub(in crate::ui) fn lines(t: &Theme, keymap: &Keymap, inner: usize) -> Vec<Line<'static>> {
    let pair = (t.style(Role::Prompt), t.style(Role::Text));
    let keys = keymap.describe();
    let kw = keys
        .iter()
        .map(|(k, _)| text::width(k))
        .max()
        .unwrap_or(8)
        .min(22)
        .min(inner / 3);
    let mut out = vec![Line::styled("Keys", t.style(Role::TitleFocused))];
    for (k, d) in keys {
        out.extend(entry(&k, &d, kw, inner, pair));
    }
    out.extend(prose(
        "Input: Emacs keys (ctrl-a/e/b/f/k/u/y, alt-b/f/d, alt-backspace; ctrl-z undoes). \
         Up/Down recall what you typed in this room. Tab completes commands, names and @name.",
        inner,
        t.style(Role::Dim),
    ));
    out.push(Line::raw(""));
    out.push(Line::styled(
        "Commands (unique prefixes work: /q, /inv)",
        t.style(Role::TitleFocused),
    ));
    let cmds: Vec<(String, &str)> = command::specs(Face::Tui)
        .map(|c| (c.usage(), c.help))
        .collect();
    let cw = cmds
        .iter()
        .map(|(c, _)| text::width(c))
        .max()
        .unwrap_or(8)
        .min(24)
        .min(inner / 2);
    for (c, h) in cmds {
        out.extend(entry(&c, h, cw, inner, pair));
    }
    out
}

impl Help {
    /// The help box within the screen, and how many lines the text has.
    fn frame_rect(cx: &Cx<'_>) -> (Rect, usize) {
        let w = WIDTH.min(cx.screen.width);
        let inner = usize::from(w.saturating_sub(2));
        let n = lines(cx.theme, cx.keymap, inner).len();
        let h = u16::try_from(n).unwrap_or(u16::MAX).saturating_add(2);
        (centered(cx.screen, w, h), n)
    }

    /// How far the help text scrolls on the screen.
    fn max_scroll(cx: &Cx<'_>) -> u16 {
        let (r, n) = Self::frame_rect(cx);
        u16::try_from(n.saturating_sub(usize::from(r.height.saturating_sub(2)))).unwrap_or(u16::MAX)
    }

    /// A key: scrolled, or closed (`None`) by any other key.
    pub(super) fn key(self, key: &Key, page: isize, cx: &Cx<'_>) -> Option<Self> {
        scrolled(self.scroll, key, page, Self::max_scroll(cx)).map(|scroll| Help { scroll })
    }

    /// Draw it; the hint under it shows on every page.
    pub(super) fn draw(&self, cx: &Cx<'_>, frame: &mut Frame<'_>) {
        let (r, n) = Self::frame_rect(cx);
        let inner = usize::from(r.width.saturating_sub(2));
        let lines = lines(cx.theme, cx.keymap, inner);
        let max = Self::max_scroll(cx);
        let scroll = self.scroll.min(max);
        let shown = usize::from(r.height.saturating_sub(2));
        let (from, to) = (
            usize::from(scroll) + 1,
            (usize::from(scroll) + shown).min(n),
        );
        let hint = if max == 0 {
            " Esc closes ".to_string()
        } else {
            let long = format!(" Esc closes · ↑↓ PgUp PgDn scroll · {from}-{to} of {n} ");
            if text::width(&long) <= inner {
                long
            } else {
                format!(" Esc · ↑↓ scroll · {from}-{to}/{n} ")
            }
        };
        let block = Block::bordered()
            .title(" help ")
            .title_bottom(Line::styled(
                text::truncate(&hint, inner),
                cx.theme.style(Role::Dim),
            ))
            .border_style(cx.theme.style(Role::BorderFocused))
            .style(cx.theme.style(Role::Overlay));
        frame.render_widget(Clear, r);
        frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), r);
    }
}

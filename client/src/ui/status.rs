//! The status bar: the hum/2 link to the entry relay (and, when it is a single relay, that
//! it can see who you talk to), hum/1's links while they carry anything, the cell rate,
//! queued messages, and the hotlist when the room list is collapsed.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::api::{LinkState, LinkStatus, RouteStatus};
use crate::ui::app::App;
use crate::ui::sidebar;
use crate::ui::text;
use crate::ui::theme::Role;

/// One link as text: a glyph that reads without colour, the relay, and its rates.
pub(super) fn link_text(l: &LinkStatus, short: bool) -> (String, Role) {
    let (glyph, word, role) = match l.state {
        LinkState::Up => ("●", "up".to_string(), Role::LinkUp),
        LinkState::Connecting => ("◌", "connecting".to_string(), Role::LinkConnecting),
        LinkState::Down { retry_in_ms } => (
            "✗",
            format!("down, retry {}s", retry_in_ms.div_ceil(1000)),
            Role::LinkDown,
        ),
    };
    let rates = format!("↑{} ↓{}/s", l.cells_up_per_sec, l.cells_down_per_sec);
    let text = match (short, l.state) {
        (true, LinkState::Up) => format!("{glyph} {rates}"),
        (true, _) => format!("{glyph} {word}"),
        (false, LinkState::Up) => format!("{glyph} {} {rates}", l.relay),
        (false, _) => format!("{glyph} {} {word}", l.relay),
    };
    (text, role)
}

/// Below this many clients behind the entry relay, the status bar says they are few
/// (docs/PROTOCOL.md, hum/2 §H10: the count claims little below about 50).
const FEW: u32 = 50;

/// What a single relay is, said plainly: it is entry and mailbox at once.
pub(super) const SINGLE: &str = "single relay: it can see who you talk to";

/// The hum/2 link as text: its glyph, the entry relay and its rate, and either that the
/// relay is a single relay or how many clients its slots hide among. Each part with its
/// role.
pub(super) fn route_text(r: &RouteStatus, short: bool) -> Vec<(String, Role)> {
    let mut parts = Vec::new();
    let (glyph, role) = match r.state {
        LinkState::Up => ("●", Role::LinkUp),
        LinkState::Connecting => ("◌", Role::LinkConnecting),
        LinkState::Down { .. } => ("✗", Role::LinkDown),
    };
    let state = match r.state {
        LinkState::Up => format!("↑{}/s", r.cells_per_sec),
        LinkState::Connecting => "connecting".into(),
        LinkState::Down { retry_in_ms } => {
            format!("down, retry {}s", retry_in_ms.div_ceil(1000))
        }
    };
    parts.push(if short {
        (format!("{glyph} {state}"), role)
    } else {
        (format!("{glyph} {} {state}", r.relay), role)
    });
    if r.single {
        parts.push((SINGLE.into(), Role::LinkConnecting));
    } else if let (Some(n), LinkState::Up) = (r.clients, r.state) {
        // The entry relay's own count: below a few dozen it hides little.
        if n >= FEW {
            parts.push((format!("one of {n}"), Role::Status));
        } else {
            parts.push((
                format!("only {n} here: little to hide among"),
                Role::LinkConnecting,
            ));
        }
    }
    parts
}

/// Draw the status bar.
pub(super) fn draw(app: &App, frame: &mut Frame<'_>, area: Rect, hotlist: bool) {
    let t = app.theme();
    let bar = t.style(Role::Status);
    let w = area.width as usize;
    let mut spans: Vec<Span<'static>> = Vec::new();
    let route = app.route();
    // Beside the hum/2 link, hum/1's links show only when they are not up: they carry
    // what hum/2 cannot yet, and their trouble is worth seeing.
    let links: Vec<&LinkStatus> = app
        .links()
        .iter()
        .filter(|l| route.is_none() || l.state != LinkState::Up)
        .collect();
    let short = w < 70 || links.len() + usize::from(route.is_some()) > 1;
    if let Some(r) = route {
        for (s, role) in route_text(r, w < 70) {
            spans.push(Span::styled(format!(" {s}"), t.style(role)));
        }
    } else if links.is_empty() {
        spans.push(Span::styled(
            " ◌ no relay yet",
            t.style(Role::LinkConnecting),
        ));
    }
    for l in links {
        let (s, role) = link_text(l, short);
        spans.push(Span::styled(format!(" {s}"), t.style(role)));
    }
    let queued: u32 =
        app.links().iter().map(|l| l.queued).sum::<u32>() + route.map_or(0, |r| r.queued);
    if queued > 0 {
        spans.push(Span::styled(format!("  … {queued} queued"), bar));
    }
    if hotlist {
        let mut hot = Vec::new();
        for (i, r) in app.listed().enumerate() {
            if let Some(b) = sidebar::badge(r.summary.unread, r.summary.mentions) {
                let role = if r.summary.mentions > 0 {
                    Role::Mention
                } else {
                    Role::Unread
                };
                hot.push(Span::styled(
                    format!(" [{}:{} {b}]", i + 1, text::truncate(&r.summary.name, 8)),
                    t.style(role),
                ));
            }
        }
        spans.extend(hot);
    }
    if let Some(e) = app.theme_error() {
        spans.push(Span::styled(
            format!("  theme error: {e}"),
            t.style(Role::Error),
        ));
    }
    let used: usize = spans.iter().map(|s| text::width(&s.content)).sum();
    let right = if app.pane_prefix_pending() {
        " ^W… ".to_string()
    } else {
        format!(" {} ", app.theme().name)
    };
    if used + text::width(&right) < w {
        spans.push(Span::styled(
            " ".repeat(w - used - text::width(&right)),
            bar,
        ));
        spans.push(Span::styled(right, bar));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

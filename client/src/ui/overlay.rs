//! Overlays other than help: an invite code to copy, a safety number, search results and
//! the long-paste confirmation.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::ui::app::{App, Overlay};
use crate::ui::help;
use crate::ui::text;
use crate::ui::theme::Role;

/// Draw an overlay (help included).
pub(super) fn draw(app: &App, frame: &mut Frame<'_>, area: Rect, overlay: &Overlay) {
    let t = &app.theme;
    let boxed = |frame: &mut Frame<'_>, title: &str, lines: Vec<Line<'static>>, w: u16| {
        let inner_w = w.min(area.width).saturating_sub(2).max(1);
        let rows: u16 = lines
            .iter()
            .map(|l| (l.width() as u16).div_ceil(inner_w).max(1))
            .sum();
        let r = help::centered(area, w, rows + 2);
        frame.render_widget(Clear, r);
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                Block::bordered()
                    .title(format!(" {title} "))
                    .border_style(t.style(Role::BorderFocused))
                    .style(t.style(Role::Overlay)),
            ),
            r,
        );
    };
    match overlay {
        Overlay::Help { scroll } => help::draw(app, frame, area, *scroll),
        Overlay::Invite(code) => {
            // The code is printed from the first column, without a border, so that a
            // terminal selection copies it whole.
            let head = vec![
                Line::styled(
                    "Your invite code: give it to one person, over a channel you trust.",
                    t.style(Role::TitleFocused),
                ),
                Line::styled(
                    "They type: /accept CODE NAME. It works once. Esc closes.",
                    t.style(Role::Text),
                ),
                Line::raw(""),
            ];
            let code_rows = (text::width(code) as u16)
                .div_ceil(area.width.max(1))
                .max(1);
            let h = (head.len() as u16 + code_rows + 1).min(area.height);
            let r = Rect {
                x: area.x,
                y: area.y + (area.height - h) / 2,
                width: area.width,
                height: h,
            };
            frame.render_widget(Clear, r);
            let mut lines = head;
            lines.push(Line::styled(code.clone(), t.style(Role::Highlight)));
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .style(t.style(Role::Overlay)),
                r,
            );
        }
        Overlay::Safety { name, number } => {
            let lines = vec![
                Line::styled(
                    format!("Safety number with {name}"),
                    t.style(Role::TitleFocused),
                ),
                Line::raw(""),
                Line::styled(number.clone(), t.style(Role::Highlight)),
                Line::raw(""),
                Line::styled(
                    "Compare it with theirs in person or on a call.",
                    t.style(Role::Text),
                ),
                Line::styled(
                    "Same number: nobody is in the middle. Esc closes.",
                    t.style(Role::Dim),
                ),
            ];
            boxed(frame, "verify", lines, 60);
        }
        Overlay::Search { query, results } => {
            let mut lines = Vec::new();
            if results.is_empty() {
                lines.push(Line::styled(
                    format!("nothing matches {query:?}"),
                    t.style(Role::Dim),
                ));
            }
            let room_name = |id| {
                app.room(id)
                    .map_or(String::new(), |r| r.summary.name.clone())
            };
            for m in results
                .iter()
                .rev()
                .take(area.height.saturating_sub(4) as usize)
                .rev()
            {
                lines.push(Line::from(vec![
                    Span::styled(text::clock(m.sent_at, app.tz_offset()), t.style(Role::Time)),
                    Span::styled(format!(" {} ", room_name(m.room)), t.style(Role::Dim)),
                    Span::styled(m.sender.clone(), t.nick(&m.sender)),
                    Span::styled(format!(": {}", m.text), t.style(Role::Text)),
                ]));
            }
            boxed(
                frame,
                &format!("search: {query} ({})", results.len()),
                lines,
                area.width.saturating_sub(4).max(20),
            );
        }
        Overlay::Members { room, members } => {
            let mut lines = Vec::with_capacity(members.len() + 3);
            let strangers = members.iter().any(|m| !m.you && m.contact.is_none());
            for m in members {
                let mut spans = vec![
                    Span::raw("  "),
                    Span::styled(m.name.clone(), t.nick(&m.name)),
                ];
                let mut tags = Vec::new();
                if m.you {
                    tags.push("you");
                }
                if m.admin {
                    tags.push("admin");
                }
                if !tags.is_empty() {
                    spans.push(Span::styled(
                        format!("  ({})", tags.join(", ")),
                        t.style(Role::Dim),
                    ));
                }
                if !m.you && m.contact.is_none() {
                    spans.push(Span::styled("  not your contact", t.style(Role::Mention)));
                    spans.push(Span::styled(
                        format!("  {}", m.fingerprint),
                        t.style(Role::Dim),
                    ));
                }
                lines.push(Line::from(spans));
            }
            lines.push(Line::raw(""));
            if strangers {
                lines.push(Line::styled(
                    "Not your contact: only the admin vouches for them; compare the fingerprint with them to be sure.",
                    t.style(Role::Text),
                ));
            }
            lines.push(Line::styled("Esc closes.", t.style(Role::Dim)));
            boxed(
                frame,
                &format!("members of {room} ({})", members.len()),
                lines,
                area.width.saturating_sub(4).clamp(20, 76),
            );
        }
        Overlay::Paste(p) => {
            let n = p.lines().count();
            let lines = vec![
                Line::styled(
                    format!("Send a paste of {n} lines?"),
                    t.style(Role::TitleFocused),
                ),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("y", t.style(Role::Prompt)),
                    Span::raw(" send   "),
                    Span::styled("e", t.style(Role::Prompt)),
                    Span::raw(" edit first   "),
                    Span::styled("n", t.style(Role::Prompt)),
                    Span::raw(" drop"),
                ]),
            ];
            boxed(frame, "paste", lines, 44);
        }
    }
}

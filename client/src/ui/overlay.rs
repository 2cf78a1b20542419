//! Overlays other than help: an invite code to copy, a safety number, search results and
//! the long-paste confirmation.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::engine::MAX_TEXT_BYTES;
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
        Overlay::Invite { code, scroll } => {
            let l = invite_layout(app, code, area, *scroll);
            frame.render_widget(Clear, l.rect);
            frame.render_widget(
                Paragraph::new(l.head.clone()).style(t.style(Role::Overlay)),
                Rect {
                    height: l.code_y - l.rect.y,
                    ..l.rect
                },
            );
            // The code from the first column, plain, one row under the other: the terminal
            // is also told to wrap it as one line (see `invite_soft_wrap`).
            for (i, row) in l.code_rows(code).into_iter().enumerate() {
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
        Overlay::Search {
            query,
            results,
            selected,
        } => {
            let w = area.width.saturating_sub(4).max(20);
            let avail = usize::from(area.height.saturating_sub(4)).max(1);
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
            let start = (selected + 1).saturating_sub(avail);
            let inner = usize::from(w.saturating_sub(2));
            for (i, m) in results.iter().enumerate().skip(start).take(avail) {
                let chosen = i == *selected;
                let body = text::display(&m.text).replace('\n', " ");
                let head = format!(
                    "{} {} {}: ",
                    text::clock(m.sent_at, app.tz_offset()),
                    room_name(m.room),
                    m.sender
                );
                let body = text::truncate(&body, inner.saturating_sub(text::width(&head)));
                let (hs, bs) = if chosen {
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
            let r = help::centered(area, w, rows + 2);
            frame.render_widget(Clear, r);
            frame.render_widget(
                Paragraph::new(lines).block(
                    Block::bordered()
                        .title(format!(" search: {query} ({}) ", results.len()))
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
        Overlay::Paste { lines: n, .. } => {
            let lines = vec![
                Line::styled(
                    format!("Send a paste of {n} lines?"),
                    t.style(Role::TitleFocused),
                ),
                Line::raw(""),
                keys_line(t, &[("y", "send"), ("e", "edit first"), ("n", "drop")]),
            ];
            boxed(frame, "paste", lines, 44);
        }
        Overlay::TooLong { bytes, .. } => {
            let max = MAX_TEXT_BYTES;
            let parts = split_text_count(*bytes, max);
            let lines = vec![
                Line::styled(
                    format!(
                        "This is {} KiB; one message holds at most {} KiB.",
                        bytes.div_ceil(1024),
                        max / 1024
                    ),
                    t.style(Role::TitleFocused),
                ),
                Line::raw(""),
                keys_line(
                    t,
                    &[
                        ("s", &format!("send it as {parts}+ messages")),
                        ("e", "keep it to shorten"),
                    ],
                ),
                keys_line(t, &[("n", "drop it (Ctrl-Z brings it back)")]),
            ];
            boxed(frame, "too long", lines, 58);
        }
        Overlay::Confirm(c) => {
            let lines = vec![
                Line::styled(c.question.clone(), t.style(Role::TitleFocused)),
                Line::styled(c.detail.clone(), t.style(Role::Text)),
                Line::raw(""),
                keys_line(t, &[("y", "yes"), ("n", "no")]),
            ];
            boxed(frame, "confirm", lines, 60);
        }
    }
}

/// `k  what   k  what` with the keys standing out.
fn keys_line(t: &crate::ui::theme::Theme, keys: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (k, what) in keys {
        spans.push(Span::styled(k.to_string(), t.style(Role::Prompt)));
        spans.push(Span::raw(format!(" {what}   ")));
    }
    Line::from(spans)
}

/// How many messages of at most `max` bytes a text of `bytes` takes, at least.
fn split_text_count(bytes: usize, max: usize) -> usize {
    bytes.div_ceil(max.max(1))
}

/// Where the invite overlay puts its parts on a screen of `area`.
pub(super) struct InviteLayout {
    /// The rows the overlay covers (full width).
    pub(super) rect: Rect,
    /// What is said above the code.
    pub(super) head: Vec<Line<'static>>,
    /// The first row of the code.
    pub(super) code_y: u16,
    /// The first code row shown (scrolled past the ones before).
    pub(super) first: usize,
    /// How many code rows are shown.
    pub(super) rows: u16,
    /// How many rows the whole code takes.
    pub(super) total: usize,
    /// What is said under the code.
    pub(super) foot: Vec<Line<'static>>,
    width: usize,
}

impl InviteLayout {
    /// The code's rows that are shown, as the screen cuts them.
    pub(super) fn code_rows(&self, code: &str) -> Vec<String> {
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
pub(super) fn invite_layout(app: &App, code: &str, area: Rect, scroll: u16) -> InviteLayout {
    let t = &app.theme;
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

/// How far the invite code scrolls on a screen of `area` (0 when it fits).
pub(super) fn invite_max_scroll(app: &App, code: &str, area: Rect) -> u16 {
    let l = invite_layout(app, code, area, 0);
    u16::try_from(l.total - usize::from(l.rows)).unwrap_or(0)
}

/// The code rows shown by the invite overlay as one string, and the screen row where it
/// starts: written again straight to the terminal from the first column, the terminal
/// wraps it itself and keeps it as one line, so a copy gives the code on one line.
pub(super) fn invite_soft_wrap(app: &App, area: Rect) -> Option<(u16, String)> {
    let Some(Overlay::Invite { code, scroll }) = &app.overlay else {
        return None;
    };
    let l = invite_layout(app, code, area, *scroll);
    Some((l.code_y, l.code_rows(code).concat()))
}

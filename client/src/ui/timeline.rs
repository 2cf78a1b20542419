//! A room's messages and how they become rows on screen: sender with a hashed colour,
//! time, delivery glyph, day separators, the unread marker, wrapping, and columns that
//! collapse as the pane narrows. Rows are built from the newest message up, so a frame
//! costs what is visible, not what is loaded.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::api::{Delivery, MessageId, MessageKind, MessageView};
use crate::ui::text;
use crate::ui::theme::{Role, Theme};

/// The messages of one room that the UI holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Loaded messages, oldest first.
    pub messages: Vec<MessageView>,
    /// Whether older messages remain in the engine's store.
    pub more: bool,
    /// Whether a page of history has been asked for and not yet arrived.
    pub loading: bool,
    /// Whether the newest page was asked for at least once.
    pub requested: bool,
    /// The first message not yet read when the room was opened.
    pub marker: Option<MessageId>,
    /// Unread count to place the marker at when history arrives.
    pub pending_marker: u32,
}

impl Timeline {
    /// Add a message, keeping ids unique and the order by id.
    pub fn push(&mut self, m: MessageView) {
        if let Some(old) = self
            .messages
            .iter_mut()
            .rev()
            .take(64)
            .find(|x| x.id == m.id)
        {
            *old = m;
            return;
        }
        if self.messages.last().is_none_or(|l| l.id < m.id) {
            self.messages.push(m);
        } else {
            let at = self.messages.partition_point(|x| x.id < m.id);
            if self.messages.get(at).is_some_and(|x| x.id == m.id) {
                self.messages[at] = m;
            } else {
                self.messages.insert(at, m);
            }
        }
    }

    /// Merge a page of history (oldest first).
    pub fn merge_history(&mut self, page: Vec<MessageView>, more: bool) {
        self.loading = false;
        self.requested = true;
        self.more = more;
        let first = self.messages.first().map(|m| m.id);
        let (older, rest): (Vec<_>, Vec<_>) = page
            .into_iter()
            .partition(|m| first.is_none_or(|f| m.id < f));
        if !older.is_empty() {
            let mut older = older;
            older.append(&mut self.messages);
            self.messages = older;
        }
        for m in rest {
            self.push(m);
        }
        if self.pending_marker > 0 {
            self.set_marker(self.pending_marker);
        }
    }

    /// Put the unread marker before the last `unread` messages.
    pub fn set_marker(&mut self, unread: u32) {
        let n = self.messages.len();
        let unread = unread as usize;
        if unread == 0 {
            self.marker = None;
            self.pending_marker = 0;
        } else if unread <= n {
            self.marker = Some(self.messages[n - unread].id);
            self.pending_marker = 0;
        } else {
            self.marker = self.messages.first().map(|m| m.id);
            self.pending_marker = unread as u32;
        }
    }

    /// Set a message's delivery state.
    pub fn set_delivery(&mut self, id: MessageId, state: Delivery) {
        if let Some(m) = self.messages.iter_mut().rev().find(|m| m.id == id) {
            m.delivery = Some(state);
        }
    }
}

/// What rows depend on besides the messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowCtx<'a> {
    /// Colours.
    pub(super) theme: &'a Theme,
    /// This profile's name (for mentions).
    pub(super) me: &'a str,
    /// Offset from UTC in seconds for times and days.
    pub(super) tz: i64,
    /// The pane's inner width.
    pub(super) width: usize,
    /// A message to mark (a search result or mention jumped to).
    pub(super) highlight: Option<MessageId>,
}

/// Whether `text` mentions `me` as a word (case-insensitive).
pub(super) fn mentions(text: &str, me: &str) -> bool {
    !mention_ranges(text, me).is_empty()
}

/// Where `text` names `me` as a word (case-insensitive), as byte ranges; an `@` just
/// before the name belongs to the range.
pub(super) fn mention_ranges(text: &str, me: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if me.is_empty() {
        return out;
    }
    let same = |a: char, b: char| a == b || a.to_lowercase().eq(b.to_lowercase());
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        let whole = me.chars().all(|mc| match chars.get(j) {
            Some((_, c)) if same(*c, mc) => {
                j += 1;
                true
            }
            _ => false,
        });
        let before = i == 0 || !chars[i - 1].1.is_alphanumeric();
        let after = chars.get(j).is_none_or(|(_, c)| !c.is_alphanumeric());
        if whole && before && after {
            let start = if i > 0 && chars[i - 1].1 == '@' {
                chars[i - 1].0
            } else {
                chars[i].0
            };
            out.push((start, chars.get(j).map_or(text.len(), |(b, _)| *b)));
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// A row of message text as spans: the mentions of `me` (when given) stand out.
/// The delivery glyph after a message's last row.
fn push_glyph(spans: &mut Vec<Span<'static>>, glyph: Option<(&'static str, Role)>, t: &Theme) {
    if let Some((g, role)) = glyph {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(g, t.style(role)));
    }
}

fn body_spans(row: String, style: Style, me: Option<&str>, mention: Style) -> Vec<Span<'static>> {
    let ranges = me.map(|me| mention_ranges(&row, me)).unwrap_or_default();
    if ranges.is_empty() {
        return vec![Span::styled(row, style)];
    }
    let mut out = Vec::with_capacity(ranges.len() * 2 + 1);
    let mut at = 0;
    for (s, e) in ranges {
        if s > at {
            out.push(Span::styled(row[at..s].to_string(), style));
        }
        out.push(Span::styled(row[s..e].to_string(), mention));
        at = e;
    }
    if at < row.len() {
        out.push(Span::styled(row[at..].to_string(), style));
    }
    out
}

/// The glyph of a delivery state: readable without colour.
pub(super) fn delivery_glyph(d: Delivery) -> (&'static str, Role) {
    match d {
        Delivery::Queued => ("…", Role::Queued),
        Delivery::Sent => ("✓", Role::Sent),
        Delivery::Delivered => ("✓✓", Role::Delivered),
    }
}

/// The rows of a room event: its time, then the sentence, dimmed, without a sender column.
fn event_rows(m: &MessageView, ctx: &RowCtx<'_>) -> Vec<Line<'static>> {
    let t = ctx.theme;
    let w = ctx.width.max(4);
    let style = t.style(Role::Dim);
    let text = format!("· {}", m.text);
    if w < 36 {
        return text::wrap(&text, w)
            .into_iter()
            .map(|row| Line::styled(row, style))
            .collect();
    }
    text::wrap(&text, w.saturating_sub(6).max(4))
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let time = if i == 0 {
                Span::styled(text::clock(m.sent_at, ctx.tz), t.style(Role::Time))
            } else {
                Span::raw(" ".repeat(5))
            };
            Line::from(vec![time, Span::raw(" "), Span::styled(row, style)])
        })
        .collect()
}

/// The rows of one message.
pub(super) fn message_rows(m: &MessageView, ctx: &RowCtx<'_>) -> Vec<Line<'static>> {
    if m.kind == MessageKind::Event {
        return event_rows(m, ctx);
    }
    let t = ctx.theme;
    let w = ctx.width.max(4);
    let mentioned = !m.from_me && mentions(&m.text, ctx.me);
    let nick_style = if mentioned {
        t.style(Role::Mention)
    } else {
        t.nick(&m.sender)
    };
    let text_style = if ctx.highlight == Some(m.id) {
        t.style(Role::Highlight)
    } else {
        t.style(Role::Text)
    };
    let me = mentioned.then_some(ctx.me);
    let mention_style = t
        .style(Role::Mention)
        .add_modifier(ratatui::style::Modifier::UNDERLINED);
    let body = text::display(&m.text);
    let sender = text::display(&m.sender);
    let glyph = m.delivery.filter(|_| m.from_me).map(delivery_glyph);
    let glyph_w = glyph.map_or(0, |(g, _)| text::width(g) + 1);
    let mut out = Vec::new();
    if w >= 36 {
        let nick_w = (w / 6).clamp(6, 12);
        let prefix_w = 6 + nick_w + 3;
        let body_w = w.saturating_sub(prefix_w + glyph_w).max(4);
        let rows = text::wrap(&body, body_w);
        let last = rows.len().saturating_sub(1);
        for (i, row) in rows.into_iter().enumerate() {
            let mut spans = Vec::with_capacity(5);
            if i == 0 {
                spans.push(Span::styled(
                    text::clock(m.sent_at, ctx.tz),
                    t.style(Role::Time),
                ));
                spans.push(Span::raw(" "));
                let nick = text::truncate(&sender, nick_w);
                let pad = nick_w.saturating_sub(text::width(&nick));
                spans.push(Span::raw(" ".repeat(pad)));
                spans.push(Span::styled(nick, nick_style));
            } else {
                spans.push(Span::raw(" ".repeat(6 + nick_w)));
            }
            spans.push(Span::styled(" │ ", t.style(Role::Dim)));
            spans.extend(body_spans(row, text_style, me, mention_style));
            push_glyph(&mut spans, glyph.filter(|_| i == last), t);
            out.push(Line::from(spans));
        }
    } else {
        // Narrow: "nick: text", continuation rows indented.
        let nick = text::truncate(&sender, (w / 3).max(3));
        let head = text::width(&nick) + 2;
        let first_w = w.saturating_sub(head + glyph_w).max(2);
        let mut rows = text::wrap(&body, first_w);
        if rows.len() > 1 {
            let rest = rows[1..].join(" ");
            rows.truncate(1);
            rows.extend(text::wrap(&rest, w.saturating_sub(2 + glyph_w).max(2)));
        }
        let last = rows.len().saturating_sub(1);
        for (i, row) in rows.into_iter().enumerate() {
            let mut spans = Vec::with_capacity(4);
            if i == 0 {
                spans.push(Span::styled(nick.clone(), nick_style));
                spans.push(Span::styled(": ", t.style(Role::Dim)));
            } else {
                spans.push(Span::raw("  "));
            }
            spans.extend(body_spans(row, text_style, me, mention_style));
            push_glyph(&mut spans, glyph.filter(|_| i == last), t);
            out.push(Line::from(spans));
        }
    }
    out
}

fn rule(label: &str, width: usize, style: Style) -> Line<'static> {
    let lw = text::width(label) + 2;
    if width <= lw + 2 {
        return Line::styled(text::truncate(label, width), style);
    }
    let left = (width - lw) / 2;
    let right = width - lw - left;
    Line::styled(
        format!("{} {label} {}", "─".repeat(left), "─".repeat(right)),
        style,
    )
}

/// The rows shown before message `i`: a day separator when the day changes, and the unread
/// marker.
pub(super) fn preface_rows(tl: &Timeline, i: usize, ctx: &RowCtx<'_>) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let Some(m) = tl.messages.get(i) else {
        return out;
    };
    let (day, _) = text::day_and_secs(m.sent_at, ctx.tz);
    let prev_day = i
        .checked_sub(1)
        .and_then(|p| tl.messages.get(p))
        .map(|p| text::day_and_secs(p.sent_at, ctx.tz).0);
    if prev_day != Some(day) {
        out.push(rule(
            &text::date(day),
            ctx.width,
            ctx.theme.style(Role::DaySeparator),
        ));
    }
    if tl.marker == Some(m.id) {
        out.push(rule("new", ctx.width, ctx.theme.style(Role::UnreadMarker)));
    }
    out
}

/// How many rows message `i` takes with its preface.
pub(super) fn count_rows(tl: &Timeline, i: usize, ctx: &RowCtx<'_>) -> usize {
    tl.messages.get(i).map_or(0, |m| {
        message_rows(m, ctx).len() + preface_rows(tl, i, ctx).len()
    })
}

/// The newest `need` rows, oldest first, and whether every loaded message fit.
pub(super) fn tail_rows(
    tl: &Timeline,
    ctx: &RowCtx<'_>,
    need: usize,
) -> (Vec<Line<'static>>, bool) {
    let mut rev: Vec<Line<'static>> = Vec::with_capacity(need + 8);
    for i in (0..tl.messages.len()).rev() {
        if rev.len() >= need {
            rev.reverse();
            let cut = rev.len() - need;
            rev.drain(..cut);
            return (rev, false);
        }
        let rows = message_rows(&tl.messages[i], ctx);
        rev.extend(rows.into_iter().rev());
        rev.extend(preface_rows(tl, i, ctx).into_iter().rev());
    }
    rev.reverse();
    let exhausted = rev.len() <= need;
    if rev.len() > need {
        let cut = rev.len() - need;
        rev.drain(..cut);
    }
    (rev, exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RoomId;

    fn msg(id: i64, text: &str) -> MessageView {
        MessageView {
            id: MessageId(id),
            room: RoomId(1),
            sender: "bob".into(),
            from_me: false,
            text: text.into(),
            sent_at: 20_781 * 86_400_000 + id * 60_000,
            delivery: None,
            kind: MessageKind::Text,
        }
    }

    #[test]
    fn mention_words() {
        assert_eq!(
            mention_ranges("hi @Alice, alice", "alice"),
            vec![(3, 9), (11, 16)]
        );
        assert!(mention_ranges("malice", "alice").is_empty());
        assert!(mentions("hey Alice!", "alice"));
        assert!(!mentions("malice", "alice"));
        assert!(mentions("alice", "alice"));
        assert!(!mentions("x", ""));
    }

    #[test]
    fn push_and_history_keep_order_and_dedupe() {
        let mut tl = Timeline::default();
        tl.push(msg(5, "e"));
        tl.push(msg(3, "c"));
        tl.push(msg(5, "e2"));
        tl.merge_history(vec![msg(1, "a"), msg(2, "b"), msg(3, "c")], false);
        let ids: Vec<i64> = tl.messages.iter().map(|m| m.id.0).collect();
        assert_eq!(ids, vec![1, 2, 3, 5]);
        assert_eq!(tl.messages[3].text, "e2");
        tl.set_marker(2);
        assert_eq!(tl.marker, Some(MessageId(3)));
    }

    #[test]
    fn tail_rows_stop_early() {
        let theme = Theme::default_dark();
        let ctx = RowCtx {
            theme: &theme,
            me: "me",
            tz: 0,
            width: 60,
            highlight: None,
        };
        let mut tl = Timeline::default();
        for i in 0..1000 {
            tl.push(msg(i, "hello"));
        }
        let (rows, exhausted) = tail_rows(&tl, &ctx, 10);
        assert_eq!(rows.len(), 10);
        assert!(!exhausted);
        let (rows, exhausted) = tail_rows(&tl, &ctx, 5000);
        assert!(exhausted);
        assert_eq!(rows.len(), 1001); // one day separator
    }
}

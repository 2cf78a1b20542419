//! What the engine told about people: a safety number to compare, a room's members.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::api::MemberView;
use crate::ui::overlay::{Cx, boxed};
use crate::ui::theme::Role;

/// A safety number to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyView {
    /// The contact.
    pub name: String,
    /// The number.
    pub number: String,
}

impl SafetyView {
    /// Draw it.
    pub(super) fn draw(&self, cx: &Cx<'_>, frame: &mut Frame<'_>) {
        let t = cx.theme;
        let lines = vec![
            Line::styled(
                format!("Safety number with {}", self.name),
                t.style(Role::TitleFocused),
            ),
            Line::raw(""),
            Line::styled(self.number.clone(), t.style(Role::Highlight)),
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
        boxed(cx, frame, "verify", lines, 60);
    }
}

/// A room's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersView {
    /// The room's name.
    pub room: String,
    /// Its members, this profile first.
    pub members: Vec<MemberView>,
}

impl MembersView {
    /// Draw it: who is you, the admin, and who is not your contact (with the fingerprint to
    /// compare).
    pub(super) fn draw(&self, cx: &Cx<'_>, frame: &mut Frame<'_>) {
        let t = cx.theme;
        let mut lines = Vec::with_capacity(self.members.len() + 3);
        let strangers = self.members.iter().any(|m| !m.you && m.contact.is_none());
        for m in &self.members {
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
            cx,
            frame,
            &format!("members of {} ({})", self.room, self.members.len()),
            lines,
            cx.screen.width.saturating_sub(4).clamp(20, 76),
        );
    }
}

//! Questions: a long paste to send, an input too long for one message, a yes or no.

use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::text::Line;

use crate::api::Command;
use crate::engine::MAX_TEXT_BYTES;
use crate::ui::keymap::Key;
use crate::ui::overlay::{Cx, Intent, boxed, keys_line};
use crate::ui::theme::Role;

/// A long paste, already in the input, waiting for confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasteGuard {
    /// Its lines.
    pub lines: usize,
    /// Where in the input it starts (row, column), to take it out again.
    pub from: (usize, usize),
}

impl PasteGuard {
    /// `y` or Enter sends the input, `e` or Esc keeps it to edit, anything else drops the
    /// paste.
    pub(super) fn key(self, key: &Key) -> Option<Intent> {
        match key.code {
            KeyCode::Char('y') | KeyCode::Enter => Some(Intent::Submit),
            KeyCode::Char('e') | KeyCode::Esc => None,
            _ => Some(Intent::Drop {
                from: Some(self.from),
                notice: "paste dropped (Ctrl-Z brings it back)",
            }),
        }
    }

    /// Draw it.
    pub(super) fn draw(&self, cx: &Cx<'_>, frame: &mut Frame<'_>) {
        let t = cx.theme;
        let lines = vec![
            Line::styled(
                format!("Send a paste of {} lines?", self.lines),
                t.style(Role::TitleFocused),
            ),
            Line::raw(""),
            keys_line(t, &[("y", "send"), ("e", "edit first"), ("n", "drop")]),
        ];
        boxed(cx, frame, "paste", lines, 44);
    }
}

/// The input is longer than one message can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// Its length in bytes.
    pub bytes: usize,
    /// Where a paste that made it so starts in the input, to take it out again.
    pub from: Option<(usize, usize)>,
}

impl TooLong {
    /// `s` sends it as several messages, `n` drops it, anything else keeps it.
    pub(super) fn key(self, key: &Key) -> Intent {
        match key.code {
            KeyCode::Char('s') => Intent::SendSplit,
            KeyCode::Char('n') => Intent::Drop {
                from: self.from,
                notice: "dropped (Ctrl-Z brings it back)",
            },
            _ => Intent::Notice(format!(
                "kept in the input: {} of at most {} KiB",
                self.bytes.div_ceil(1024),
                MAX_TEXT_BYTES / 1024
            )),
        }
    }

    /// Draw it.
    pub(super) fn draw(&self, cx: &Cx<'_>, frame: &mut Frame<'_>) {
        let t = cx.theme;
        let parts = self.bytes.div_ceil(MAX_TEXT_BYTES);
        let lines = vec![
            Line::styled(
                format!(
                    "This is {} KiB; one message holds at most {} KiB.",
                    self.bytes.div_ceil(1024),
                    MAX_TEXT_BYTES / 1024
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
        boxed(cx, frame, "too long", lines, 58);
    }
}

/// What is said once an invite code is accepted.
pub(in crate::ui) const ACCEPTED: &str =
    "invite accepted; the contact appears once the handshake is done";

/// A question for the user, and what a yes does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// The question.
    pub question: String,
    /// A line under it.
    pub detail: String,
    /// What the engine is asked on yes.
    pub yes: Vec<Command>,
    /// The notice after yes.
    pub done: String,
    /// The text put back in the input on no.
    pub keep: Option<String>,
}

impl Confirm {
    /// Whether to accept an invite code that was pasted or typed alone; on no, `keep` goes
    /// back into the input.
    pub(in crate::ui) fn accept(code: String, keep: String) -> Self {
        Confirm {
            question: "Accept this invite code?".into(),
            detail: format!(
                "{}… adds the person who made it as a contact.",
                code.chars().take(24).collect::<String>()
            ),
            yes: vec![Command::AcceptInvite { code, name: None }],
            done: ACCEPTED.into(),
            keep: Some(keep),
        }
    }

    /// `y` or Enter: yes; anything else: no.
    pub(super) fn key(self, key: &Key) -> Option<Intent> {
        match key.code {
            KeyCode::Char('y') | KeyCode::Enter => Some(Intent::Engine {
                commands: self.yes,
                done: self.done,
            }),
            _ => self.keep.map(Intent::Restore),
        }
    }

    /// Draw it.
    pub(super) fn draw(&self, cx: &Cx<'_>, frame: &mut Frame<'_>) {
        let t = cx.theme;
        let lines = vec![
            Line::styled(self.question.clone(), t.style(Role::TitleFocused)),
            Line::styled(self.detail.clone(), t.style(Role::Text)),
            Line::raw(""),
            keys_line(t, &[("y", "yes"), ("n", "no")]),
        ];
        boxed(cx, frame, "confirm", lines, 60);
    }
}

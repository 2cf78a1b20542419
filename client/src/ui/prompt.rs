//! The first-run and unlock screens: a few masked fields, drawn and driven like the main
//! screen (state, `update` by key, `view` without side effects).

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui_textarea::TextArea;
use zeroize::Zeroizing;

use crate::ui::overlay;
use crate::ui::theme::{Role, Theme};

/// Which screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// Create a profile: name, passphrase, passphrase again.
    Onboarding,
    /// Unlock a profile: passphrase.
    Unlock,
}

/// What a key did.
#[derive(Debug, PartialEq, Eq)]
pub enum PromptOutcome {
    /// Keep going.
    Continue,
    /// The user gave up (Esc, Ctrl-C).
    Cancelled,
    /// Done: the name (empty when unlocking) and the passphrase.
    Done(String, Zeroizing<String>),
}

/// The prompt screen's state.
#[derive(Debug)]
pub struct Prompt {
    kind: PromptKind,
    step: usize,
    fields: Vec<TextArea<'static>>,
    error: Option<String>,
    theme: Theme,
    hint: Option<String>,
    /// The passphrase last warned about: Enter again with the same one keeps it.
    warned: Option<Zeroizing<String>>,
}

/// Passphrases shorter than this are called weak.
const MIN_PASSPHRASE_CHARS: usize = 10;

/// What is weak about a passphrase, in words, or `None` when it looks strong enough: it
/// is short, or zxcvbn's estimate (which knows common passwords, names, keyboard runs
/// and the profile's own name) scores it under 3 of 4.
pub(super) fn weakness(pass: &str, name: &str) -> Option<String> {
    let chars = pass.chars().count();
    let est = zxcvbn::zxcvbn(pass, &[name]);
    let score = u8::from(est.score());
    if chars >= MIN_PASSPHRASE_CHARS && score >= 3 {
        return None;
    }
    let time = est.crack_times().offline_slow_hashing_1e4_per_second();
    let mut why = format!(
        "Weak passphrase ({chars} character{}): whoever copies your profile could guess it \
         in {time}.",
        if chars == 1 { "" } else { "s" }
    );
    if let Some(w) = est.feedback().and_then(|f| f.warning()) {
        why.push_str(&format!(" {w}"));
    }
    Some(why)
}

fn field(masked: bool, theme: &Theme) -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_cursor_line_style(Style::default());
    t.set_style(theme.style(Role::Input));
    if masked {
        t.set_mask_char('•');
    }
    t
}

impl Prompt {
    /// A prompt of `kind`, showing `error` (e.g. "wrong passphrase") and a hint line.
    pub fn new(
        kind: PromptKind,
        theme: Theme,
        error: Option<String>,
        hint: Option<String>,
    ) -> Self {
        let fields = match kind {
            PromptKind::Onboarding => vec![
                field(false, &theme),
                field(true, &theme),
                field(true, &theme),
            ],
            PromptKind::Unlock => vec![field(true, &theme)],
        };
        let step = 0;
        Prompt {
            kind,
            step,
            fields,
            error,
            theme,
            hint,
            warned: None,
        }
    }

    fn labels(&self) -> &'static [&'static str] {
        match self.kind {
            PromptKind::Onboarding => &[
                "Your name (others see it)",
                "Passphrase",
                "Passphrase again",
            ],
            PromptKind::Unlock => &["Passphrase"],
        }
    }

    fn value(&self, i: usize) -> String {
        self.fields
            .get(i)
            .map(|f| f.lines().join(""))
            .unwrap_or_default()
    }

    /// Handle a key.
    pub fn update(&mut self, ev: KeyEvent) -> PromptOutcome {
        if ev.kind == KeyEventKind::Release {
            return PromptOutcome::Continue;
        }
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match ev.code {
            KeyCode::Esc => return PromptOutcome::Cancelled,
            KeyCode::Char('c') if ctrl => return PromptOutcome::Cancelled,
            KeyCode::Up | KeyCode::BackTab => {
                self.step = self.step.saturating_sub(1);
                return PromptOutcome::Continue;
            }
            KeyCode::Enter | KeyCode::Tab | KeyCode::Down => return self.next(),
            _ => {}
        }
        if let Some(f) = self.fields.get_mut(self.step) {
            f.input(ev);
        }
        PromptOutcome::Continue
    }

    fn next(&mut self) -> PromptOutcome {
        let v = self.value(self.step);
        match (self.kind, self.step) {
            (PromptKind::Onboarding, 0) if v.trim().is_empty() => {
                self.error = Some("a name, please".into());
            }
            (PromptKind::Onboarding, 1) | (PromptKind::Unlock, 0) if v.is_empty() => {
                self.error = Some("the passphrase cannot be empty".into());
            }
            (PromptKind::Onboarding, 1) => {
                let insisted = self.warned.as_ref().is_some_and(|w| w.as_str() == v);
                match weakness(&v, &self.value(0)) {
                    Some(why) if !insisted => {
                        self.error = Some(format!(
                            "{why} Type a longer one, or press Enter again to keep it."
                        ));
                        self.warned = Some(Zeroizing::new(v));
                    }
                    _ => {
                        self.error = None;
                        self.step += 1;
                    }
                }
            }
            (PromptKind::Onboarding, 2) => {
                if v != self.value(1) {
                    self.warned = None;
                    self.error = Some("the two passphrases differ; type them again".into());
                    self.fields[1] = field(true, &self.theme);
                    self.fields[2] = field(true, &self.theme);
                    self.step = 1;
                } else {
                    return PromptOutcome::Done(
                        self.value(0).trim().to_string(),
                        Zeroizing::new(v),
                    );
                }
            }
            (PromptKind::Unlock, 0) => {
                return PromptOutcome::Done(String::new(), Zeroizing::new(v));
            }
            _ => {
                self.error = None;
                self.step += 1;
            }
        }
        PromptOutcome::Continue
    }

    /// Paste into the active field (a password manager's paste); newlines are dropped.
    pub fn paste(&mut self, text: &str) {
        let clean: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
        if let Some(f) = self.fields.get_mut(self.step) {
            f.insert_str(&clean);
        }
    }

    /// Draw the screen.
    pub fn view(&self, frame: &mut Frame<'_>) {
        let t = &self.theme;
        let area = frame.area();
        let n = self.fields.len() as u16;
        let r = overlay::centered(area, 64, 13 + 2 * n);
        let title = match self.kind {
            PromptKind::Onboarding => " welcome to hum ",
            PromptKind::Unlock => " unlock hum ",
        };
        let block = Block::bordered()
            .title(title)
            .border_style(t.style(Role::BorderFocused));
        let inner = block.inner(r);
        frame.render_widget(block, r);
        let mut rows = vec![Constraint::Length(2)];
        rows.extend((0..n).map(|_| Constraint::Length(2)));
        rows.push(Constraint::Length(4));
        rows.push(Constraint::Fill(1));
        let parts = Layout::vertical(rows).split(inner);
        let intro = match self.kind {
            PromptKind::Onboarding => {
                "No profile yet. It stays on this machine, sealed with your passphrase."
            }
            PromptKind::Unlock => "Your profile is sealed. Type its passphrase.",
        };
        frame.render_widget(
            Paragraph::new(Line::styled(intro, t.style(Role::Text))).wrap(Wrap { trim: true }),
            parts[0],
        );
        for (i, f) in self.fields.iter().enumerate() {
            let active = i == self.step;
            let [label, input] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)])
                .areas(parts[i + 1]);
            let style = if active {
                t.style(Role::Prompt)
            } else {
                t.style(Role::Dim)
            };
            let mark = if active { "› " } else { "  " };
            frame.render_widget(
                Line::styled(format!("{mark}{}", self.labels()[i]), style),
                label,
            );
            let input = ratatui::layout::Rect {
                x: input.x + 2,
                width: input.width.saturating_sub(2),
                ..input
            };
            if active {
                frame.render_widget(f, input);
            } else {
                let masked = f.mask_char().map_or_else(
                    || f.lines().join(""),
                    |c| c.to_string().repeat(f.lines().join("").chars().count()),
                );
                frame.render_widget(Line::styled(masked, t.style(Role::Dim)), input);
            }
        }
        let status = match &self.error {
            Some(e) => Line::styled(e.clone(), t.style(Role::Error)),
            None => Line::styled("Enter: next · Esc: quit", t.style(Role::Dim)),
        };
        frame.render_widget(
            Paragraph::new(status).wrap(Wrap { trim: true }),
            parts[n as usize + 1],
        );
        let mut next = Vec::new();
        if self.kind == PromptKind::Onboarding {
            next.push(Line::styled(
                "Next: /invite makes a code to give a friend;",
                t.style(Role::Notice),
            ));
            next.push(Line::styled(
                "/accept CODE adds a friend from theirs.",
                t.style(Role::Notice),
            ));
        }
        if let Some(h) = &self.hint {
            next.push(Line::styled(h.clone(), t.style(Role::Dim)));
        }
        frame.render_widget(
            Paragraph::new(next).wrap(Wrap { trim: true }),
            parts[n as usize + 2],
        );
    }
}

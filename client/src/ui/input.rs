//! The input line: Emacs editing, earlier input per room, Tab completion, pastes, and what
//! Enter means (a message, a command, an invite code, a search).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui_textarea::{CursorMove, DataCursor, TextArea};

use crate::api::RoomId;
use crate::command::{self, Face, Names};
use crate::engine::MAX_TEXT_BYTES;
use crate::ui::effect::Out;
use crate::ui::keymap::Key;
use crate::ui::recall::Recall;
use crate::ui::text;
use crate::ui::theme::{Role, Theme};

/// A paste with more lines than this asks before it is sent.
pub(super) const PASTE_CONFIRM_LINES: usize = 5;

const PLACEHOLDER: &str = "type a message · /help · ? keys";

/// Where the input's text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// Messages and slash commands.
    Message,
    /// A search query (Ctrl-S).
    Search,
}

/// Where Tab is in cycling through candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cycle {
    start: usize,
    candidates: Vec<String>,
    index: usize,
    produced: String,
}

/// What a paste became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pasted {
    /// It is in the input.
    Inserted,
    /// It is an invite code alone: to offer for accepting (`keep` goes back on no).
    Code {
        /// The code.
        code: String,
        /// The text as pasted.
        keep: String,
    },
    /// It made the input longer than a message can be (it is in the input, from `from`).
    TooLong {
        /// The input's length in bytes.
        bytes: usize,
        /// Where the paste starts.
        from: (usize, usize),
    },
    /// It has many lines (it is in the input, from `from`): to confirm.
    Long {
        /// Its lines.
        lines: usize,
        /// Where the paste starts.
        from: (usize, usize),
    },
}

/// What Enter found in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entered {
    /// Nothing to do.
    Nothing,
    /// A search query (search mode; the input is empty again).
    Search(String),
    /// A slash command line (kept in the input until it ran).
    Command(String),
    /// An invite code alone (the input is empty; `keep` is what was typed).
    Code {
        /// The code.
        code: String,
        /// The text as typed.
        keep: String,
    },
    /// Longer than a message can be (kept in the input).
    TooLong(usize),
    /// A message to send (kept in the input until it was sent).
    Message(String),
}

/// The input line and its habits.
#[derive(Debug)]
pub(super) struct InputBox {
    area: TextArea<'static>,
    mode: InputMode,
    recall: Recall,
    cycle: Option<Cycle>,
}

fn text_area(theme: &Theme, placeholder: &str) -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_cursor_line_style(Style::default());
    t.set_style(theme.style(Role::Input));
    t.set_placeholder_text(placeholder);
    t.set_placeholder_style(theme.style(Role::Dim));
    t.set_selection_style(theme.style(Role::Highlight));
    t.set_tab_length(text::TAB_STOP as u8);
    t.set_wrap_mode(ratatui_textarea::WrapMode::WordOrGlyph);
    t
}

impl InputBox {
    /// An empty input for messages.
    pub(super) fn new(theme: &Theme) -> Self {
        InputBox {
            area: text_area(theme, PLACEHOLDER),
            mode: InputMode::Message,
            recall: Recall::default(),
            cycle: None,
        }
    }

    /// What the input is for.
    pub(super) fn mode(&self) -> InputMode {
        self.mode
    }

    /// The text area, to draw.
    pub(super) fn widget(&self) -> &TextArea<'static> {
        &self.area
    }

    /// The text, lines joined with newlines.
    pub(super) fn text(&self) -> String {
        self.area.lines().join("\n")
    }

    /// Whether nothing is typed.
    pub(super) fn is_empty(&self) -> bool {
        self.area.lines().iter().all(String::is_empty)
    }

    /// Put `text` in the input, the cursor at its end.
    pub(super) fn set(&mut self, text: &str, theme: &Theme) {
        let placeholder = match self.mode {
            InputMode::Message => PLACEHOLDER,
            InputMode::Search => "search this room",
        };
        let mut t = text_area(theme, placeholder);
        t.insert_str(text);
        t.move_cursor(CursorMove::Bottom);
        t.move_cursor(CursorMove::End);
        self.area = t;
    }

    /// The same text in a new theme's colours.
    pub(super) fn restyle(&mut self, theme: &Theme) {
        let text = self.text();
        self.set(&text, theme);
    }

    /// Empty the input (Ctrl-Z brings it back).
    pub(super) fn clear(&mut self) {
        self.area.clear();
    }

    /// Select the whole text: what is typed next replaces it.
    pub(super) fn select_all(&mut self) {
        self.area.select_all();
    }

    /// A line break at the cursor.
    pub(super) fn newline(&mut self) {
        self.area.insert_newline();
    }

    /// Tab cycling stops (another key than Tab).
    pub(super) fn stop_cycling(&mut self) {
        self.cycle = None;
    }

    /// Ctrl-C: empty the input; false when it was empty already.
    pub(super) fn interrupt(&mut self) -> bool {
        if self.is_empty() {
            return false;
        }
        self.recall.stop();
        self.area.clear();
        true
    }

    /// Ctrl-S: the input takes a search query.
    pub(super) fn start_search(&mut self, theme: &Theme) {
        self.mode = InputMode::Search;
        self.set("", theme);
    }

    /// Esc: back to messages from a search; false when not searching.
    pub(super) fn cancel_search(&mut self, theme: &Theme) -> bool {
        if self.mode != InputMode::Search {
            return false;
        }
        self.mode = InputMode::Message;
        self.set("", theme);
        true
    }

    /// Emacs line editing: the text area's keys, with readline's meaning where they differ;
    /// Up on the first line and Down on the last walk earlier input of `room`.
    pub(super) fn edit(
        &mut self,
        key: &Key,
        ev: KeyEvent,
        room: Option<RoomId>,
        theme: &Theme,
        out: &mut Out,
    ) {
        if key.mods.is_empty() && self.mode == InputMode::Message {
            let row = self.area.cursor().0;
            let last = self.area.lines().len().saturating_sub(1);
            match key.code {
                KeyCode::Up if row == 0 => {
                    let now = self.text();
                    match self.recall.older(room, &now) {
                        Some(t) => self.set(&t, theme),
                        None => out.notice("no earlier input in this room"),
                    }
                    return;
                }
                KeyCode::Down if row == last && self.recall.browsing() => {
                    if let Some(t) = self.recall.newer(room) {
                        self.set(&t, theme);
                    }
                    return;
                }
                _ => {}
            }
        }
        self.recall.stop();
        if key.mods == KeyModifiers::CONTROL {
            match key.code {
                KeyCode::Char('u') => {
                    self.area.delete_line_by_head();
                    return;
                }
                KeyCode::Char('_') | KeyCode::Char('z') => {
                    self.area.undo();
                    return;
                }
                _ => {}
            }
        }
        self.area.input(ev);
    }

    /// Take text inserted from `from` to the cursor back out, as an edit that Ctrl-Z
    /// undoes.
    pub(super) fn take_out(&mut self, from: (usize, usize)) {
        self.area.cancel_selection();
        self.area.start_selection();
        self.area.move_cursor(CursorMove::Jump(
            u16::try_from(from.0).unwrap_or(u16::MAX),
            u16::try_from(from.1).unwrap_or(u16::MAX),
        ));
        self.area.cut();
    }

    /// Whether the input holds `/accept` (or a prefix of it) and its arguments so far:
    /// `Some(true)` when a space must come before a pasted code.
    fn accept_typed(&self) -> Option<bool> {
        let text = self.text();
        let body = text.strip_prefix('/')?;
        let word = body.split_whitespace().next().unwrap_or("");
        let accept =
            word.len() >= 2 && command::command_name(word, Face::Tui).is_ok_and(|n| n == "accept");
        accept.then(|| !body.ends_with(char::is_whitespace) && body.trim_end() == word)
    }

    /// Take a paste: in at the cursor, its trailing line break dropped; the rows of an
    /// invite code after `/accept` join into one code; a code alone is not inserted.
    pub(super) fn paste(&mut self, text: &str) -> Pasted {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        // A trailing line break (a copied line) is not a line of the message.
        let text = text.trim_end_matches('\n');
        if text.is_empty() || self.mode == InputMode::Search {
            self.area.insert_str(text.replace('\n', " "));
            return Pasted::Inserted;
        }
        self.recall.stop();
        self.cycle = None;
        if let Some(space) = self.accept_typed() {
            // Rows of a code copied off a terminal: one code.
            if space {
                self.area.insert_char(' ');
            }
            self.area.insert_str(text.replace('\n', " "));
            return Pasted::Inserted;
        }
        if self.text().trim().is_empty()
            && let Some(code) = command::invite_code(text)
        {
            return Pasted::Code {
                code,
                keep: text.to_string(),
            };
        }
        let DataCursor(row, col) = self.area.cursor();
        self.area.insert_str(text);
        let bytes = self.text().len();
        let lines = text.lines().count();
        if bytes > MAX_TEXT_BYTES {
            Pasted::TooLong {
                bytes,
                from: (row, col),
            }
        } else if lines > PASTE_CONFIRM_LINES {
            Pasted::Long {
                lines,
                from: (row, col),
            }
        } else {
            Pasted::Inserted
        }
    }

    /// Tab: complete the last word from `from`, or cycle through the candidates of the
    /// last Tab.
    pub(super) fn complete(&mut self, from: Names<'_>, theme: &Theme, out: &mut Out) {
        let lines = self.area.lines().to_vec();
        let line = lines.last().cloned().unwrap_or_default();
        let prior = &lines[..lines.len().saturating_sub(1)];
        let rebuild = |last: String| {
            let mut all = prior.to_vec();
            all.push(last);
            all.join("\n")
        };
        if let Some(c) = self.cycle.as_mut()
            && c.produced == line
            && !c.candidates.is_empty()
        {
            c.index = (c.index + 1) % c.candidates.len();
            let new = format!("{}{}", &line[..c.start], c.candidates[c.index]);
            c.produced = new.clone();
            self.set(&rebuild(new), theme);
            return;
        }
        let c = command::complete(&line, Face::Tui, from);
        match c.candidates.len() {
            0 => out.notice("no completion"),
            1 => {
                let new = format!("{}{} ", &line[..c.start], c.candidates[0]);
                self.set(&rebuild(new), theme);
            }
            n => {
                let new = format!(
                    "{}{}",
                    &line[..c.start],
                    command::common_prefix(&c.candidates)
                );
                out.notice(c.candidates.join("  "));
                self.set(&rebuild(new.clone()), theme);
                self.cycle = Some(Cycle {
                    start: c.start,
                    candidates: c.candidates,
                    index: n - 1,
                    produced: new,
                });
            }
        }
    }

    /// Enter: what the input holds, remembered for Up in `room`.
    pub(super) fn enter(&mut self, room: Option<RoomId>, theme: &Theme) -> Entered {
        let text = self.text();
        if self.mode == InputMode::Search {
            self.mode = InputMode::Message;
            self.set("", theme);
            let query = text.trim();
            return if query.is_empty() {
                Entered::Nothing
            } else {
                Entered::Search(query.to_string())
            };
        }
        if text.trim().is_empty() {
            return Entered::Nothing;
        }
        self.recall.push(room, &text);
        if text.starts_with('/') && !text.starts_with("//") {
            return Entered::Command(text.trim_end().to_string());
        }
        let body = message_body(&text).trim_end_matches('\n').to_string();
        if let Some(code) = command::invite_code(&body) {
            self.area.clear();
            return Entered::Code { code, keep: text };
        }
        if body.len() > MAX_TEXT_BYTES {
            return Entered::TooLong(body.len());
        }
        Entered::Message(body)
    }

    /// The input as messages of at most [`MAX_TEXT_BYTES`] each, for a text too long for
    /// one.
    pub(super) fn parts(&self) -> Vec<String> {
        split_text(message_body(&self.text()), MAX_TEXT_BYTES)
    }

    /// Remember the input for Up in `room`.
    pub(super) fn remember(&mut self, room: Option<RoomId>) {
        let text = self.text();
        self.recall.push(room, &text);
    }

    /// How many rows the input takes on a screen of `area` after `prompt`: its lines as
    /// they wrap, up to a third of the screen (then it scrolls to the cursor).
    pub(super) fn rows(&self, area: Rect, prompt: &str) -> u16 {
        let w = usize::from(area.width)
            .saturating_sub(text::width(prompt))
            .max(1);
        let rows: usize = self
            .area
            .lines()
            .iter()
            .map(|l| {
                // A huge paste is counted by width alone: wrapping it on every key costs.
                if l.len() > 8192 {
                    text::width(l).div_ceil(w).max(1)
                } else {
                    text::wrap(l, w).len().max(1)
                }
            })
            .sum();
        let max = (area.height / 3).clamp(1, 8);
        u16::try_from(rows).unwrap_or(u16::MAX).clamp(1, max)
    }
}

/// `//text` is a message starting with `/`.
fn message_body(text: &str) -> &str {
    if text.starts_with("//") {
        &text[1..]
    } else {
        text
    }
}

/// Cut a text into parts of at most `max` bytes, at line ends where it can, else at spaces,
/// else at a character boundary.
pub(super) fn split_text(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let head = &rest[..cut];
        let at = head
            .rfind('\n')
            .or_else(|| head.rfind(' '))
            .filter(|i| *i > 0)
            .map_or(cut, |i| i + 1);
        out.push(rest[..at].trim_end_matches('\n').to_string());
        rest = &rest[at..];
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_event(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn press(i: &mut InputBox, code: KeyCode, room: Option<RoomId>) -> Out {
        let ev = key_event(code);
        let mut out = Out::default();
        i.edit(
            &Key::from_event(&ev),
            ev,
            room,
            &Theme::default_dark(),
            &mut out,
        );
        out
    }

    fn typed(i: &mut InputBox, s: &str) {
        for c in s.chars() {
            press(i, KeyCode::Char(c), None);
        }
    }

    fn code() -> String {
        "hum1-".to_string() + &"qz7x".repeat(10)
    }

    #[test]
    fn enter_tells_messages_commands_codes_and_searches_apart() {
        let t = Theme::default_dark();
        let mut i = InputBox::new(&t);
        assert_eq!(i.enter(None, &t), Entered::Nothing);
        typed(&mut i, "hello");
        assert_eq!(i.enter(None, &t), Entered::Message("hello".into()));
        assert_eq!(i.text(), "hello", "kept until it is sent");
        i.set("//shrug", &t);
        assert_eq!(i.enter(None, &t), Entered::Message("/shrug".into()));
        i.set("/msg bob hi  ", &t);
        assert_eq!(i.enter(None, &t), Entered::Command("/msg bob hi".into()));
        i.set(&code(), &t);
        assert_eq!(
            i.enter(None, &t),
            Entered::Code {
                code: code(),
                keep: code()
            }
        );
        assert!(i.is_empty(), "a code is never left to be sent");
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        i.set(&long, &t);
        assert_eq!(i.enter(None, &t), Entered::TooLong(MAX_TEXT_BYTES + 1));
        assert_eq!(i.text(), long);
        i.start_search(&t);
        assert_eq!(i.mode(), InputMode::Search);
        typed(&mut i, " needle ");
        assert_eq!(i.enter(None, &t), Entered::Search("needle".into()));
        assert_eq!((i.mode(), i.text()), (InputMode::Message, String::new()));
        i.start_search(&t);
        assert!(i.cancel_search(&t));
        assert!(!i.cancel_search(&t), "not searching any more");
    }

    #[test]
    fn pastes_go_in_at_the_cursor_and_say_what_they_are() {
        let t = Theme::default_dark();
        let mut i = InputBox::new(&t);
        assert_eq!(i.paste("a\r\nb\n"), Pasted::Inserted);
        assert_eq!(i.text(), "a\nb", "the trailing line break is not a line");
        i.clear();
        typed(&mut i, "look: ");
        let six = "1\n2\n3\n4\n5\n6";
        assert_eq!(
            i.paste(six),
            Pasted::Long {
                lines: 6,
                from: (0, 6)
            }
        );
        i.take_out((0, 6));
        assert_eq!(i.text(), "look: ");
        i.clear();
        // A code alone is offered, not inserted; after /accept its rows join.
        let rows = code().replace("qz7x", "qz7x\n");
        assert_eq!(
            i.paste(&rows),
            Pasted::Code {
                code: code(),
                keep: rows.trim_end().to_string()
            }
        );
        assert!(i.is_empty());
        typed(&mut i, "/acc");
        assert_eq!(i.paste(&rows), Pasted::Inserted);
        assert!(i.text().starts_with("/acc hum1-qz7x qz7x"), "{}", i.text());
        i.clear();
        let huge = "y".repeat(MAX_TEXT_BYTES + 10);
        assert_eq!(
            i.paste(&huge),
            Pasted::TooLong {
                bytes: MAX_TEXT_BYTES + 10,
                from: (0, 0)
            }
        );
        i.clear();
        i.start_search(&t);
        assert_eq!(i.paste("two\nwords"), Pasted::Inserted);
        assert_eq!(i.text(), "two words", "a query is one line");
    }

    #[test]
    fn up_and_down_walk_earlier_input_of_the_room() {
        let t = Theme::default_dark();
        let mut i = InputBox::new(&t);
        let (r1, r2) = (Some(RoomId(1)), Some(RoomId(2)));
        for (room, text) in [(r1, "one"), (r1, "two"), (r2, "elsewhere")] {
            i.set(text, &t);
            i.enter(room, &t);
            i.clear();
        }
        typed(&mut i, "draft");
        press(&mut i, KeyCode::Up, r1);
        assert_eq!(i.text(), "two");
        press(&mut i, KeyCode::Up, r1);
        assert_eq!(i.text(), "one");
        let out = press(&mut i, KeyCode::Up, r1);
        assert_eq!(i.text(), "one");
        assert!(out.flash.is_some_and(|f| f.text.contains("no earlier")));
        press(&mut i, KeyCode::Down, r1);
        press(&mut i, KeyCode::Down, r1);
        assert_eq!(i.text(), "draft", "past the newest, what was typed");
        i.clear();
        press(&mut i, KeyCode::Up, r2);
        assert_eq!(i.text(), "elsewhere");
    }

    #[test]
    fn tab_completes_and_cycles_through_candidates() {
        let t = Theme::default_dark();
        let mut i = InputBox::new(&t);
        let names = vec!["alice".to_string(), "albert".to_string()];
        let from = Names {
            names: &names,
            themes: &[],
            people: &[],
        };
        typed(&mut i, "/msg al");
        let mut out = Out::default();
        i.complete(from, &t, &mut out);
        assert_eq!(i.text(), "/msg al");
        assert!(out.flash.is_some_and(|f| f.text == "albert  alice"));
        i.complete(from, &t, &mut Out::default());
        assert_eq!(i.text(), "/msg albert");
        i.complete(from, &t, &mut Out::default());
        assert_eq!(i.text(), "/msg alice");
        i.stop_cycling();
        i.set("/msg alic", &t);
        i.complete(from, &t, &mut Out::default());
        assert_eq!(
            i.text(),
            "/msg alice ",
            "one candidate: completed, a space after"
        );
        i.set("zzz", &t);
        let mut out = Out::default();
        i.complete(from, &t, &mut out);
        assert!(out.flash.is_some_and(|f| f.text == "no completion"));
    }

    #[test]
    fn ctrl_c_clears_then_says_it_was_empty() {
        let t = Theme::default_dark();
        let mut i = InputBox::new(&t);
        typed(&mut i, "x");
        assert!(i.interrupt());
        assert!(i.is_empty());
        assert!(!i.interrupt());
    }

    #[test]
    fn a_long_text_splits_at_line_ends_and_loses_nothing() {
        let text = "aaaa\nbbbb\ncccc dddd";
        let parts = split_text(text, 6);
        assert_eq!(parts, vec!["aaaa", "bbbb", "cccc ", "dddd"]);
        assert!(parts.iter().all(|p| p.len() <= 6));
        let wide = "日本語日本語";
        let parts = split_text(wide, 7);
        assert_eq!(parts.concat(), wide, "cut at character boundaries");
    }

    #[test]
    fn rows_grow_with_the_text_up_to_a_third_of_the_screen() {
        let t = Theme::default_dark();
        let mut i = InputBox::new(&t);
        let area = Rect::new(0, 0, 40, 30);
        assert_eq!(i.rows(area, "› "), 1);
        i.set(&"word ".repeat(20), &t);
        assert_eq!(i.rows(area, "› "), 3);
        i.set(&"word ".repeat(400), &t);
        assert_eq!(i.rows(area, "› "), 8, "at most eight rows");
    }
}

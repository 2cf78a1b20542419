//! The UI's state and its `update`: every [`Action`] changes the state and may ask the
//! engine for something by returning [`Command`]s. Drawing lives in `view`, which has no
//! side effects.

use std::path::PathBuf;

use ratatui::crossterm::event::{KeyEvent, MouseEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui_textarea::{CursorMove, TextArea};

use crate::api::{
    Command, ContactId, Event, LinkStatus, MemberView, MessageKind, MessageView, RoomId, RoomKind,
    RoomSummary,
};
use crate::ui::UiOptions;
use crate::ui::action::Action;
use crate::ui::commands::{self, SlashCommand};
use crate::ui::keymap::{Key, KeyAction, Keymap};
use crate::ui::panes::{Panes, SplitDir, Towards};
use crate::ui::theme::{self, ColorMode, Role, Theme};
use crate::ui::timeline::{self, RowCtx, Timeline};

/// Messages asked for per page of history.
pub(super) const HISTORY_PAGE: u32 = 200;
/// A paste with more lines than this asks before it is sent.
pub(super) const PASTE_CONFIRM_LINES: usize = 5;

/// A room the UI knows: what the engine said about it, and its loaded messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    /// The engine's summary (name, members, unread counts).
    pub summary: RoomSummary,
    /// Its messages.
    pub timeline: Timeline,
}

/// A box drawn over the panes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// Keys and commands.
    Help {
        /// Rows scrolled.
        scroll: u16,
    },
    /// A fresh invite code to copy.
    Invite(String),
    /// A safety number to compare.
    Safety {
        /// The contact.
        name: String,
        /// The number.
        number: String,
    },
    /// Search results.
    Search {
        /// The query.
        query: String,
        /// Matches, oldest first.
        results: Vec<MessageView>,
    },
    /// A long paste waiting for confirmation.
    Paste(String),
    /// A room's members.
    Members {
        /// The room's name.
        room: String,
        /// Its members, this profile first.
        members: Vec<MemberView>,
    },
}

/// Where the input's text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// Messages and slash commands.
    Message,
    /// A search query (Ctrl-S).
    Search,
}

/// A line under the panes: a notice or an inline error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// Whether it is an error.
    pub error: bool,
    /// The text.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CompletionState {
    start: usize,
    candidates: Vec<String>,
    index: usize,
    produced: String,
}

/// The screen's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// The room list, when wide enough.
    pub sidebar: Option<Rect>,
    /// The panes.
    pub panes: Rect,
    /// The notice line, when there is one.
    pub flash: Option<Rect>,
    /// The status bar.
    pub status: Rect,
    /// The input.
    pub input: Rect,
}

/// Everything the TUI shows and remembers.
#[derive(Debug)]
pub struct App {
    /// This profile's display name.
    pub me: String,
    /// Rooms in room-list order.
    pub rooms: Vec<RoomState>,
    /// Contacts by id.
    pub contacts: Vec<(ContactId, String)>,
    /// The pane layout.
    pub panes: Panes,
    /// Relay links for the status bar.
    pub links: Vec<LinkStatus>,
    /// The input line.
    pub input: TextArea<'static>,
    /// What the input is for.
    pub mode: InputMode,
    /// The overlay on top, if any.
    pub overlay: Option<Overlay>,
    /// The notice or error line.
    pub flash: Option<Flash>,
    /// The theme in use.
    pub theme: Theme,
    /// The last theme file error (the previous theme stays).
    pub theme_error: Option<String>,
    /// Key bindings.
    pub keymap: Keymap,
    /// Terminal size.
    pub size: (u16, u16),
    /// Set when the UI should leave.
    pub quit: bool,
    themes_dirs: Vec<PathBuf>,
    color: ColorMode,
    pane_prefix: bool,
    interrupt_armed: bool,
    completion: Option<CompletionState>,
    bell_on_mention: bool,
    bell: bool,
    notifications: Vec<String>,
    desktop: bool,
    layout_dirty: bool,
    demo_hint: Option<String>,
    tz: i64,
    ready: bool,
}

fn new_input(theme: &Theme, placeholder: &str) -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_cursor_line_style(Style::default());
    t.set_style(theme.style(Role::Input));
    t.set_placeholder_text(placeholder);
    t.set_placeholder_style(theme.style(Role::Dim));
    t
}

const PLACEHOLDER: &str = "type a message · /help · ? keys";

impl App {
    /// A UI state from the options, with colours as the terminal reports
    /// (COLORTERM, TERM, NO_COLOR) and desktop notifications off over SSH.
    pub fn new(opts: &UiOptions) -> Self {
        let ssh = std::env::var_os("SSH_CONNECTION").is_some();
        Self::with_env(opts, ColorMode::detect(), !ssh)
    }

    /// A UI state with an explicit colour mode and desktop-notification switch (tests).
    pub fn with_env(opts: &UiOptions, color: ColorMode, desktop: bool) -> Self {
        let mut flash = None;
        let theme_name = opts.theme.clone().unwrap_or_else(|| "dark".into());
        let theme = match Theme::find(&theme_name, &opts.themes_dirs) {
            Ok(t) => t,
            Err(e) => {
                flash = Some(Flash {
                    error: true,
                    text: format!("theme: {e}"),
                });
                Theme::default_dark()
            }
        }
        .degrade(color);
        let keymap = match opts.keymap_file.as_deref().map(Keymap::load) {
            Some(Ok(k)) => k,
            Some(Err(e)) => {
                flash = Some(Flash {
                    error: true,
                    text: format!("keymap: {e}"),
                });
                Keymap::default()
            }
            None => Keymap::default(),
        };
        let panes = opts
            .layout_file
            .as_deref()
            .and_then(Panes::load)
            .unwrap_or_default();
        App {
            me: String::new(),
            rooms: Vec::new(),
            contacts: Vec::new(),
            panes,
            links: Vec::new(),
            input: new_input(&theme, PLACEHOLDER),
            mode: InputMode::Message,
            overlay: None,
            flash,
            theme,
            theme_error: None,
            keymap,
            size: (80, 24),
            quit: false,
            themes_dirs: opts.themes_dirs.clone(),
            color,
            pane_prefix: false,
            interrupt_armed: false,
            completion: None,
            bell_on_mention: opts.bell_on_mention,
            bell: false,
            notifications: Vec::new(),
            desktop,
            layout_dirty: false,
            demo_hint: opts.demo_hint.clone(),
            tz: 0,
            ready: false,
        }
    }

    /// Whether the engine's `Ready` has arrived.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// A line of guidance for first screens, if any.
    pub fn demo_hint(&self) -> Option<&str> {
        self.demo_hint.as_deref()
    }

    /// The offset from UTC used for times (seconds).
    pub fn tz_offset(&self) -> i64 {
        self.tz
    }

    /// Set the offset from UTC used for times (seconds).
    pub fn set_tz_offset(&mut self, secs: i64) {
        self.tz = secs;
    }

    /// Whether the pane prefix (Ctrl-W) is waiting for its second key.
    pub fn pane_prefix_pending(&self) -> bool {
        self.pane_prefix
    }

    /// Take the pending bell (a mention arrived and the bell is on).
    pub fn take_bell(&mut self) -> bool {
        std::mem::take(&mut self.bell)
    }

    /// Take pending desktop notifications (empty over SSH).
    pub fn take_notifications(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notifications)
    }

    /// Whether the layout changed since the last call (so it can be saved).
    pub fn take_layout_dirty(&mut self) -> bool {
        std::mem::take(&mut self.layout_dirty)
    }

    /// The theme folders.
    pub fn themes_dirs(&self) -> &[PathBuf] {
        &self.themes_dirs
    }

    /// A room by id.
    pub fn room(&self, id: RoomId) -> Option<&RoomState> {
        self.rooms.iter().find(|r| r.summary.id == id)
    }

    fn room_mut(&mut self, id: RoomId) -> Option<&mut RoomState> {
        self.rooms.iter_mut().find(|r| r.summary.id == id)
    }

    /// The room in the focused pane.
    pub fn focused_room(&self) -> Option<RoomId> {
        self.panes.focused().room
    }

    /// The input's text, lines joined with newlines.
    pub fn input_text(&self) -> String {
        self.input.lines().join("\n")
    }

    fn input_empty(&self) -> bool {
        self.input.lines().iter().all(String::is_empty)
    }

    fn set_input(&mut self, text: &str) {
        let placeholder = match self.mode {
            InputMode::Message => PLACEHOLDER,
            InputMode::Search => "search this room",
        };
        let mut t = new_input(&self.theme, placeholder);
        t.insert_str(text);
        t.move_cursor(CursorMove::Bottom);
        t.move_cursor(CursorMove::End);
        self.input = t;
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.flash = Some(Flash {
            error: false,
            text: text.into(),
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.flash = Some(Flash {
            error: true,
            text: text.into(),
        });
    }

    /// How the screen of `area` divides.
    pub fn areas(&self, area: Rect) -> Areas {
        let input_rows = (self.input.lines().len() as u16).clamp(1, 4);
        let input_rows = input_rows.min(area.height.saturating_sub(5).max(1));
        let flash_rows = u16::from(self.flash.is_some() && area.height >= 8);
        let [main, flash, status, input] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(flash_rows),
            Constraint::Length(1),
            Constraint::Length(input_rows),
        ])
        .areas(area);
        let (sidebar, panes) = if area.width >= 60 {
            let w = (area.width / 5).clamp(16, 24);
            let [s, p] =
                Layout::horizontal([Constraint::Length(w), Constraint::Fill(1)]).areas(main);
            (Some(s), p)
        } else {
            (None, main)
        };
        Areas {
            sidebar,
            panes,
            flash: (flash_rows > 0).then_some(flash),
            status,
            input,
        }
    }

    fn panes_area(&self) -> Rect {
        self.areas(Rect::new(0, 0, self.size.0, self.size.1)).panes
    }

    /// The inner size (inside the border) of a pane.
    fn pane_inner(&self, pane: usize) -> (usize, usize) {
        self.panes
            .rects(self.panes_area())
            .into_iter()
            .find(|(p, _)| *p == pane)
            .map_or((40, 10), |(_, r)| {
                (
                    r.width.saturating_sub(2) as usize,
                    r.height.saturating_sub(2) as usize,
                )
            })
    }

    /// Row context for a pane's width.
    pub fn row_ctx(&self, width: usize) -> RowCtx<'_> {
        RowCtx {
            theme: &self.theme,
            me: &self.me,
            tz: self.tz,
            width,
        }
    }

    fn visible(&self, room: RoomId) -> bool {
        self.panes
            .ids()
            .iter()
            .any(|p| self.panes.get(*p).is_some_and(|x| x.room == Some(room)))
    }

    /// Handle one action; the commands are for the engine.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        let mut out = Vec::new();
        match action {
            Action::Key(k) => self.on_key(k, &mut out),
            Action::Paste(text) => self.on_paste(text),
            Action::Mouse(m) => self.on_mouse(m, &mut out),
            Action::Resize(w, h) => self.size = (w, h),
            Action::Engine(ev) => self.on_event(ev, &mut out),
            Action::ThemeLoaded { name, result } => {
                if name == self.theme.name {
                    match result {
                        Ok(t) => {
                            self.theme = t.degrade(self.color);
                            self.theme_error = None;
                            self.restyle_input();
                            self.notice(format!("theme {name} reloaded"));
                        }
                        Err(e) => {
                            self.theme_error = Some(e.clone());
                            self.error(format!("theme kept: {e}"));
                        }
                    }
                }
            }
            Action::Tick => {}
            Action::Quit => {
                self.quit = true;
                out.push(Command::Quit);
            }
        }
        out
    }

    fn restyle_input(&mut self) {
        let text = self.input_text();
        self.set_input(&text);
    }

    // ----- engine events -----

    fn on_event(&mut self, ev: Event, out: &mut Vec<Command>) {
        match ev {
            Event::Ready {
                me,
                rooms,
                contacts,
            } => {
                self.me = me;
                self.contacts = contacts;
                for r in rooms {
                    self.upsert_room(r);
                }
                self.ready = true;
                // Panes restored from a layout may name rooms that are gone.
                let ids: Vec<RoomId> = self.rooms.iter().map(|r| r.summary.id).collect();
                let first = ids.first().copied();
                for (_, p) in self.panes.iter_mut() {
                    if p.room.is_none_or(|r| !ids.contains(&r)) {
                        p.room = first;
                    }
                }
                let shown: Vec<RoomId> = ids.iter().copied().filter(|r| self.visible(*r)).collect();
                for r in shown {
                    self.open_room(r, out);
                }
            }
            Event::Room(summary) => {
                let id = summary.id;
                let is_new = self.room(id).is_none();
                self.upsert_room(summary);
                if is_new && self.focused_room().is_none() {
                    self.panes.focused_mut().room = Some(id);
                    self.layout_dirty = true;
                    self.open_room(id, out);
                } else if self.visible(id) && self.room(id).is_some_and(|r| r.summary.unread > 0) {
                    self.mark_read(id, out);
                }
            }
            Event::Contact { id, name } => {
                if let Some(c) = self.contacts.iter_mut().find(|(c, _)| *c == id) {
                    c.1 = name;
                } else {
                    self.contacts.push((id, name));
                }
            }
            Event::ContactRemoved { id, .. } => self.contacts.retain(|(c, _)| *c != id),
            Event::Message(m) => self.on_message(m, out),
            Event::Delivery { room, id, state } => {
                if let Some(r) = self.room_mut(room) {
                    r.timeline.set_delivery(id, state);
                }
            }
            Event::History {
                room,
                messages,
                more,
            } => {
                if let Some(r) = self.room_mut(room) {
                    r.timeline.merge_history(messages, more);
                }
            }
            Event::SearchResults { query, messages } => {
                self.overlay = Some(Overlay::Search {
                    query,
                    results: messages,
                });
            }
            Event::Link(status) => {
                if let Some(l) = self.links.iter_mut().find(|l| l.relay == status.relay) {
                    *l = status;
                } else {
                    self.links.push(status);
                }
            }
            Event::Invite { code } => self.overlay = Some(Overlay::Invite(code)),
            Event::SafetyNumber { name, number, .. } => {
                self.overlay = Some(Overlay::Safety { name, number });
            }
            Event::Notice(text) => self.notice(text),
            Event::Error { message } => self.error(message),
            Event::Members { room, members } => {
                let room = self
                    .room(room)
                    .map_or_else(String::new, |r| r.summary.name.clone());
                self.overlay = Some(Overlay::Members { room, members });
            }
            Event::Pong { .. } => {}
        }
    }

    fn upsert_room(&mut self, summary: RoomSummary) {
        if let Some(r) = self.room_mut(summary.id) {
            r.summary = summary;
        } else {
            self.rooms.push(RoomState {
                summary,
                timeline: Timeline::default(),
            });
        }
    }

    fn on_message(&mut self, m: MessageView, out: &mut Vec<Command>) {
        let room = m.room;
        if self.room(room).is_none() {
            self.upsert_room(RoomSummary {
                id: room,
                name: m.sender.clone(),
                kind: RoomKind::Group,
                members: Vec::new(),
                unread: 0,
                mentions: 0,
                closed: false,
            });
        }
        let mention =
            !m.from_me && m.kind == MessageKind::Text && timeline::mentions(&m.text, &self.me);
        let visible = self.visible(room);
        let from_me = m.from_me;
        let kind = m.kind;
        let (sender, text) = (m.sender.clone(), m.text.clone());
        let mut room_name = String::new();
        if let Some(r) = self.room_mut(room) {
            r.timeline.push(m);
            if from_me {
                r.timeline.marker = None;
            } else if !visible && kind == MessageKind::Text {
                r.summary.unread += 1;
                r.summary.mentions += u32::from(mention);
            }
            room_name = r.summary.name.clone();
        }
        // Panes scrolled up in this room keep showing the same rows.
        let scrolled: Vec<(usize, usize)> = self
            .panes
            .ids()
            .into_iter()
            .filter_map(|p| self.panes.get(p).map(|x| (p, x.clone())))
            .filter(|(_, x)| x.room == Some(room) && x.scroll > 0)
            .map(|(p, _)| (p, self.pane_inner(p).0))
            .collect();
        for (p, w) in scrolled {
            let added = self.room(room).map_or(0, |r| {
                let n = r.timeline.messages.len();
                timeline::count_rows(&r.timeline, n.saturating_sub(1), &self.row_ctx(w))
            });
            self.panes.scroll_pane(p, added);
        }
        if !from_me && visible {
            out.push(Command::MarkRead { room });
        }
        if mention {
            if self.bell_on_mention {
                self.bell = true;
            }
            if self.desktop {
                self.notifications
                    .push(format!("{sender} in {room_name}: {text}"));
            }
        }
    }

    fn mark_read(&mut self, room: RoomId, out: &mut Vec<Command>) {
        if let Some(r) = self.room_mut(room) {
            r.summary.unread = 0;
            r.summary.mentions = 0;
        }
        out.push(Command::MarkRead { room });
    }

    /// A room was put in a pane: load its history, place the unread marker, mark it read.
    fn open_room(&mut self, room: RoomId, out: &mut Vec<Command>) {
        let Some(r) = self.room_mut(room) else {
            return;
        };
        let unread = r.summary.unread;
        if !r.timeline.requested {
            r.timeline.requested = true;
            r.timeline.loading = true;
            r.timeline.pending_marker = unread;
            out.push(Command::LoadHistory {
                room,
                before: None,
                limit: HISTORY_PAGE,
            });
        } else if unread > 0 {
            r.timeline.set_marker(unread);
        }
        if unread > 0 || r.summary.mentions > 0 {
            self.mark_read(room, out);
        }
    }

    fn show_room(&mut self, room: RoomId, out: &mut Vec<Command>) {
        let p = self.panes.focused_mut();
        if p.room != Some(room) {
            p.room = Some(room);
            p.scroll = 0;
            self.layout_dirty = true;
        }
        self.open_room(room, out);
    }

    // ----- keys -----

    fn on_key(&mut self, ev: KeyEvent, out: &mut Vec<Command>) {
        if ev.kind == ratatui::crossterm::event::KeyEventKind::Release {
            return;
        }
        let key = Key::from_event(&ev);
        if let Some(overlay) = self.overlay.take() {
            self.on_overlay_key(overlay, &key, out);
            return;
        }
        if self.pane_prefix {
            self.pane_prefix = false;
            if key.code == ratatui::crossterm::event::KeyCode::Esc {
                return;
            }
            match self.keymap.lookup_pane(&key) {
                Some(a) => self.do_key(a, out),
                None => self.error(format!("{} is not a pane key (? for help)", key.name())),
            }
            return;
        }
        let action = self
            .keymap
            .lookup(&key)
            .filter(|_| !key.is_text() || self.input_empty());
        if action != Some(KeyAction::Interrupt) {
            self.interrupt_armed = false;
        }
        if action != Some(KeyAction::Complete) {
            self.completion = None;
        }
        match action {
            Some(a) => self.do_key(a, out),
            None => {
                if self.flash.as_ref().is_some_and(|f| !f.error) || key.is_text() {
                    self.flash = None;
                }
                self.edit(&key, ev);
            }
        }
    }

    /// Emacs line editing: the text area's keys, with readline's meaning where they differ.
    fn edit(&mut self, key: &Key, ev: KeyEvent) {
        use ratatui::crossterm::event::{KeyCode, KeyModifiers};
        if key.mods == KeyModifiers::CONTROL {
            match key.code {
                KeyCode::Char('u') => {
                    self.input.delete_line_by_head();
                    return;
                }
                KeyCode::Char('_') | KeyCode::Char('z') => {
                    self.input.undo();
                    return;
                }
                _ => {}
            }
        }
        self.input.input(ev);
    }

    fn on_overlay_key(&mut self, overlay: Overlay, key: &Key, out: &mut Vec<Command>) {
        use ratatui::crossterm::event::KeyCode;
        match overlay {
            Overlay::Paste(text) => match key.code {
                KeyCode::Char('y') | KeyCode::Enter => {
                    self.send_text(text, out);
                }
                KeyCode::Char('e') => {
                    self.input.insert_str(&text);
                }
                _ => self.notice("paste dropped"),
            },
            Overlay::Help { scroll } => match key.code {
                KeyCode::Down | KeyCode::Char('j') => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_add(1),
                    });
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_sub(1),
                    });
                }
                KeyCode::PageDown | KeyCode::Char(' ') => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_add(10),
                    });
                }
                KeyCode::PageUp => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_sub(10),
                    });
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn do_key(&mut self, a: KeyAction, out: &mut Vec<Command>) {
        let area = self.panes_area();
        match a {
            KeyAction::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            KeyAction::Submit => self.submit(out),
            KeyAction::Newline => self.input.insert_newline(),
            KeyAction::Complete => self.complete(),
            KeyAction::Cancel => {
                self.flash = None;
                if self.mode == InputMode::Search {
                    self.mode = InputMode::Message;
                    self.set_input("");
                }
            }
            KeyAction::Interrupt => {
                if !self.input_empty() {
                    self.set_input("");
                } else if self.interrupt_armed {
                    self.quit = true;
                    out.push(Command::Quit);
                } else {
                    self.interrupt_armed = true;
                    self.notice("Ctrl-C again to quit (or /quit)");
                }
            }
            KeyAction::PanePrefix => self.pane_prefix = true,
            KeyAction::PaneLeft => self.move_focus(Towards::Left, area),
            KeyAction::PaneDown => self.move_focus(Towards::Down, area),
            KeyAction::PaneUp => self.move_focus(Towards::Up, area),
            KeyAction::PaneRight => self.move_focus(Towards::Right, area),
            KeyAction::PaneNext => {
                self.panes.focus_next();
                self.layout_dirty = true;
            }
            KeyAction::Split => self.split(SplitDir::Stacked),
            KeyAction::VSplit => self.split(SplitDir::SideBySide),
            KeyAction::ClosePane => self.close_pane(),
            KeyAction::Grow | KeyAction::Shrink => {
                let d = if a == KeyAction::Grow { 5 } else { -5 };
                if self.panes.resize(d) {
                    self.layout_dirty = true;
                } else {
                    self.notice("only one pane: Ctrl-W s or v splits it");
                }
            }
            KeyAction::Equalize => {
                self.panes.equalize();
                self.layout_dirty = true;
            }
            KeyAction::RoomNext | KeyAction::RoomPrev => {
                let n = self.rooms.len();
                if n > 0 {
                    let cur = self
                        .focused_room()
                        .and_then(|r| self.rooms.iter().position(|x| x.summary.id == r));
                    let i = match (cur, a == KeyAction::RoomNext) {
                        (Some(i), true) => (i + 1) % n,
                        (Some(i), false) => (i + n - 1) % n,
                        (None, _) => 0,
                    };
                    let id = self.rooms[i].summary.id;
                    self.show_room(id, out);
                }
            }
            KeyAction::Room(n) => match self.rooms.get(usize::from(n).saturating_sub(1)) {
                Some(r) => {
                    let id = r.summary.id;
                    self.show_room(id, out);
                }
                None => self.error(format!("no room {n}")),
            },
            KeyAction::NextActivity => self.next_activity(out),
            KeyAction::NextMention => self.jump_mention(true),
            KeyAction::PrevMention => self.jump_mention(false),
            KeyAction::PageUp => {
                let (_, h) = self.pane_inner(self.panes.focus());
                self.scroll_by(h.saturating_sub(1).max(1) as isize, out);
            }
            KeyAction::PageDown => {
                let (_, h) = self.pane_inner(self.panes.focus());
                self.scroll_by(-(h.saturating_sub(1).max(1) as isize), out);
            }
            KeyAction::Top => self.scroll_by(isize::MAX / 2, out),
            KeyAction::Bottom => self.panes.focused_mut().scroll = 0,
            KeyAction::Search => {
                self.mode = InputMode::Search;
                self.set_input("");
                self.notice("search: type, then Enter (Esc cancels)");
            }
        }
    }

    fn move_focus(&mut self, t: Towards, area: Rect) {
        if self.panes.focus_towards(t, area) {
            self.layout_dirty = true;
        }
    }

    fn split(&mut self, dir: SplitDir) {
        self.panes.split(dir);
        self.layout_dirty = true;
    }

    fn close_pane(&mut self) {
        if self.panes.close() {
            self.layout_dirty = true;
        } else {
            self.error("the last pane stays open");
        }
    }

    /// Scroll the focused pane up (positive) or down by rows; ask for older history when
    /// scrolling past the oldest loaded message.
    fn scroll_by(&mut self, delta: isize, out: &mut Vec<Command>) {
        let pane = self.panes.focus();
        let (w, h) = self.pane_inner(pane);
        let Some(room) = self.focused_room() else {
            return;
        };
        let cur = self.panes.focused().scroll;
        let want = if delta >= 0 {
            cur.saturating_add(delta as usize)
        } else {
            cur.saturating_sub(delta.unsigned_abs())
        };
        let (total, exhausted, more, loading, first) = match self.room(room) {
            Some(r) => {
                let ctx = self.row_ctx(w);
                let need = want.saturating_add(h).min(1 << 24);
                let (rows, exhausted) = timeline::tail_rows(&r.timeline, &ctx, need);
                (
                    rows.len(),
                    exhausted,
                    r.timeline.more,
                    r.timeline.loading,
                    r.timeline.messages.first().map(|m| m.id),
                )
            }
            None => return,
        };
        let max = total.saturating_sub(h);
        let scroll = if exhausted { want.min(max) } else { want };
        self.panes.focused_mut().scroll = scroll;
        if exhausted && delta > 0 && want > max && more && !loading {
            if let Some(r) = self.room_mut(room) {
                r.timeline.loading = true;
            }
            out.push(Command::LoadHistory {
                room,
                before: first,
                limit: HISTORY_PAGE,
            });
            self.notice("loading older messages…");
        }
    }

    fn next_activity(&mut self, out: &mut Vec<Command>) {
        let n = self.rooms.len();
        let cur = self
            .focused_room()
            .and_then(|r| self.rooms.iter().position(|x| x.summary.id == r))
            .unwrap_or(n.saturating_sub(1));
        let after = |pred: &dyn Fn(&RoomState) -> bool| {
            (1..=n)
                .map(|k| (cur + k) % n.max(1))
                .find(|i| self.rooms.get(*i).is_some_and(pred))
        };
        let target =
            after(&|r| r.summary.mentions > 0).or_else(|| after(&|r| r.summary.unread > 0));
        match target.and_then(|i| self.rooms.get(i)).map(|r| r.summary.id) {
            Some(id) => self.show_room(id, out),
            None => self.notice("no activity"),
        }
    }

    fn jump_mention(&mut self, newer: bool) {
        let pane = self.panes.focus();
        let (w, _) = self.pane_inner(pane);
        let Some(room) = self.focused_room() else {
            return;
        };
        let cur = self.panes.focused().scroll;
        let Some(r) = self.room(room) else {
            return;
        };
        let ctx = self.row_ctx(w);
        let tl = &r.timeline;
        let mut below = 0usize;
        let mut offsets = Vec::new();
        for i in (0..tl.messages.len()).rev() {
            let m = &tl.messages[i];
            if !m.from_me && timeline::mentions(&m.text, &self.me) {
                offsets.push(below);
            }
            below += timeline::count_rows(tl, i, &ctx);
        }
        let target = if newer {
            offsets.iter().copied().filter(|o| *o < cur).max()
        } else {
            offsets.iter().copied().filter(|o| *o > cur).min()
        };
        match target {
            Some(o) => self.panes.focused_mut().scroll = o,
            None => self.notice(if newer {
                "no newer mention"
            } else {
                "no older mention"
            }),
        }
    }

    fn on_paste(&mut self, text: String) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        if text.lines().count() > PASTE_CONFIRM_LINES {
            self.overlay = Some(Overlay::Paste(text));
        } else {
            self.input.insert_str(&text);
        }
    }

    fn on_mouse(&mut self, m: ratatui::crossterm::event::MouseEvent, out: &mut Vec<Command>) {
        let area = self.areas(Rect::new(0, 0, self.size.0, self.size.1));
        let pos = ratatui::layout::Position::new(m.column, m.row);
        let hit = self
            .panes
            .rects(area.panes)
            .into_iter()
            .find(|(_, r)| r.contains(pos))
            .map(|(p, _)| p);
        match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                if let Some(p) = hit {
                    while self.panes.focus() != p {
                        self.panes.focus_next();
                    }
                }
                let d = if m.kind == MouseEventKind::ScrollUp {
                    3
                } else {
                    -3
                };
                self.scroll_by(d, out);
            }
            MouseEventKind::Down(_) => {
                if let Some(p) = hit {
                    while self.panes.focus() != p {
                        self.panes.focus_next();
                    }
                } else if let Some(s) = area.sidebar
                    && s.contains(pos)
                {
                    let i = usize::from(m.row.saturating_sub(s.y + 1));
                    if let Some(id) = self.rooms.get(i).map(|r| r.summary.id) {
                        self.show_room(id, out);
                    }
                }
            }
            _ => {}
        }
    }

    // ----- input -----

    fn complete(&mut self) {
        let line = self.input.lines().last().cloned().unwrap_or_default();
        let prior: Vec<String> = self
            .input
            .lines()
            .iter()
            .rev()
            .skip(1)
            .rev()
            .cloned()
            .collect();
        let rebuild = |last: String| {
            let mut all = prior.clone();
            all.push(last);
            all.join("\n")
        };
        if let Some(c) = self.completion.as_mut()
            && c.produced == line
            && !c.candidates.is_empty()
        {
            c.index = (c.index + 1) % c.candidates.len();
            let new = format!("{}{}", &line[..c.start], c.candidates[c.index]);
            c.produced = new.clone();
            self.set_input(&rebuild(new));
            return;
        }
        let mut names: Vec<String> = self.contacts.iter().map(|(_, n)| n.clone()).collect();
        names.extend(self.rooms.iter().map(|r| r.summary.name.clone()));
        let themes = theme::names(&self.themes_dirs);
        let c = commands::complete(&line, &names, &themes);
        match c.candidates.len() {
            0 => self.notice("no completion"),
            1 => {
                let new = format!("{}{} ", &line[..c.start], c.candidates[0]);
                self.set_input(&rebuild(new));
            }
            _ => {
                let prefix = commands::common_prefix(&c.candidates);
                let new = format!("{}{}", &line[..c.start], prefix);
                self.notice(c.candidates.join("  "));
                self.completion = Some(CompletionState {
                    start: c.start,
                    candidates: c.candidates,
                    index: usize::MAX,
                    produced: new.clone(),
                });
                if let Some(s) = self.completion.as_mut() {
                    s.index = s.candidates.len() - 1;
                }
                self.set_input(&rebuild(new));
            }
        }
    }

    fn submit(&mut self, out: &mut Vec<Command>) {
        let text = self.input_text();
        if self.mode == InputMode::Search {
            self.mode = InputMode::Message;
            self.set_input("");
            if !text.trim().is_empty() {
                out.push(Command::Search {
                    room: self.focused_room(),
                    query: text.trim().to_string(),
                });
            }
            return;
        }
        if text.trim().is_empty() {
            return;
        }
        if text.starts_with('/') && !text.starts_with("//") {
            match commands::parse(text.trim_end()) {
                Ok(cmd) => {
                    if self.run_command(cmd, out) {
                        self.set_input("");
                    }
                }
                Err(e) => self.error(e),
            }
            return;
        }
        let text = text.strip_prefix('/').map_or(text.clone(), str::to_string);
        if self.send_text(text, out) {
            self.set_input("");
        }
    }

    fn send_text(&mut self, text: String, out: &mut Vec<Command>) -> bool {
        let Some(room) = self.focused_room() else {
            self.error("no room here: /msg NAME, or Alt-1..9 to pick one");
            return false;
        };
        if self.room(room).is_some_and(|r| r.summary.closed) {
            self.error("this room is closed (you left or were removed)");
            return false;
        }
        self.panes.focused_mut().scroll = 0;
        out.push(Command::Send { room, text });
        true
    }

    fn find_contact(&self, name: &str) -> Result<ContactId, String> {
        let names: Vec<&str> = self.contacts.iter().map(|(_, n)| n.as_str()).collect();
        let n = commands::resolve(name, &names, "contact")?;
        self.contacts
            .iter()
            .find(|(_, c)| c == n)
            .map(|(id, _)| *id)
            .ok_or_else(|| format!("unknown contact {name:?}"))
    }

    fn find_room(&self, name: &str) -> Result<RoomId, String> {
        let names: Vec<&str> = self.rooms.iter().map(|r| r.summary.name.as_str()).collect();
        if let Ok(n) = commands::resolve(name, &names, "room")
            && let Some(r) = self.rooms.iter().find(|r| r.summary.name == n)
        {
            return Ok(r.summary.id);
        }
        let c = self
            .find_contact(name)
            .map_err(|_| format!("no room or contact {name:?}"))?;
        self.rooms
            .iter()
            .find(|r| r.summary.kind == RoomKind::Direct(c))
            .map(|r| r.summary.id)
            .ok_or_else(|| format!("no room with {name:?} yet"))
    }

    fn focused_group(&self) -> Result<RoomId, String> {
        match self.focused_room().and_then(|r| self.room(r)) {
            Some(r) if r.summary.kind == RoomKind::Group => Ok(r.summary.id),
            _ => Err("not in a group room: open one first (Alt-1..9, /msg NAME)".into()),
        }
    }

    /// Run a parsed slash command; false when it failed (the input stays for fixing).
    fn run_command(&mut self, cmd: SlashCommand, out: &mut Vec<Command>) -> bool {
        let r: Result<(), String> = (|| {
            match cmd {
                SlashCommand::Invite => {
                    out.push(Command::CreateInvite);
                    self.notice("making an invite code…");
                }
                SlashCommand::Accept { code, name } => {
                    out.push(Command::AcceptInvite { code, name });
                    self.notice("invite accepted; the contact appears once the handshake is done");
                }
                SlashCommand::Msg { target, text } => {
                    let room = self.find_room(&target)?;
                    self.show_room(room, out);
                    if !text.is_empty() {
                        self.send_text(text, out);
                    }
                }
                SlashCommand::GroupCreate(name) => out.push(Command::CreateGroup { name }),
                SlashCommand::GroupAdd(name) => {
                    let room = self.focused_group()?;
                    let contact = self.find_contact(&name)?;
                    out.push(Command::GroupAdd { room, contact });
                }
                SlashCommand::GroupRemove(name) => {
                    let room = self.focused_group()?;
                    let contact = self.find_contact(&name)?;
                    out.push(Command::GroupRemove { room, contact });
                }
                SlashCommand::GroupLeave => {
                    let room = self.focused_group()?;
                    out.push(Command::GroupLeave { room });
                }
                SlashCommand::GroupRename(name) => {
                    let room = self.focused_group()?;
                    out.push(Command::GroupRename { room, name });
                }
                SlashCommand::Split => self.split(SplitDir::Stacked),
                SlashCommand::VSplit => self.split(SplitDir::SideBySide),
                SlashCommand::Close => {
                    if !self.panes.close() {
                        return Err("the last pane stays open".into());
                    }
                    self.layout_dirty = true;
                }
                SlashCommand::Theme(None) => {
                    let names = theme::names(&self.themes_dirs);
                    self.notice(format!(
                        "themes: {} (now: {})",
                        names.join(", "),
                        self.theme.name
                    ));
                }
                SlashCommand::Theme(Some(name)) => {
                    let names = theme::names(&self.themes_dirs);
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    let name = commands::resolve(&name, &refs, "theme")?.to_string();
                    let t = Theme::find(&name, &self.themes_dirs)?;
                    self.theme = t.degrade(self.color);
                    self.theme_error = None;
                    self.restyle_input();
                    self.notice(format!("theme {name}"));
                }
                SlashCommand::Verify(name) => {
                    let contact = match name {
                        Some(n) => self.find_contact(&n)?,
                        None => match self
                            .focused_room()
                            .and_then(|r| self.room(r))
                            .map(|r| r.summary.kind)
                        {
                            Some(RoomKind::Direct(c)) => c,
                            _ => return Err("usage: /verify NAME (or open a 1:1 room)".into()),
                        },
                    };
                    out.push(Command::Verify { contact });
                }
                SlashCommand::Nick { contact, name } => {
                    let contact = self.find_contact(&contact)?;
                    out.push(Command::RenameContact { contact, name });
                }
                SlashCommand::Search(query) => {
                    out.push(Command::Search {
                        room: self.focused_room(),
                        query,
                    });
                }
                SlashCommand::Reconnect => out.push(Command::Reconnect),
                SlashCommand::Members => match self.focused_room() {
                    Some(room) => out.push(Command::Members { room }),
                    None => return Err("no room here: open one first (Alt-1..9, /msg NAME)".into()),
                },
                SlashCommand::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
                SlashCommand::Quit => {
                    self.quit = true;
                    out.push(Command::Quit);
                }
            }
            Ok(())
        })();
        match r {
            Ok(()) => true,
            Err(e) => {
                self.error(e);
                false
            }
        }
    }
}

//! The UI's state and its `update`: every [`Action`] changes the state and may ask the
//! engine for something by returning [`Command`]s. Drawing lives in `view`, which has no
//! side effects.

use std::path::PathBuf;

use ratatui::crossterm::event::{KeyEvent, MouseEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui_textarea::{CursorMove, TextArea};

use crate::api::{
    Command, ContactId, Event, LinkStatus, MemberView, MessageId, MessageKind, MessageView, RoomId,
    RoomKind, RoomSummary,
};
use crate::engine::{MAX_TEXT_BYTES, ProfileConfig};
use crate::ui::UiOptions;
use crate::ui::action::Action;
use crate::ui::commands::{self, SlashCommand};
use crate::ui::keymap::{Key, KeyAction, Keymap};
use crate::ui::panes::{Goal, Panes, SplitDir, Towards};
use crate::ui::recall::Recall;
use crate::ui::text;
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
    Invite {
        /// The code.
        code: String,
        /// Rows of the code scrolled past (when the screen is too small for all of it).
        scroll: u16,
    },
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
        /// The chosen match (Enter opens its room there).
        selected: usize,
    },
    /// A room's members.
    Members {
        /// The room's name.
        room: String,
        /// Its members, this profile first.
        members: Vec<MemberView>,
    },
    /// A long paste, already in the input, waiting for confirmation.
    Paste {
        /// Its lines.
        lines: usize,
        /// Where in the input it starts (row, column), to take it out again.
        from: (usize, usize),
    },
    /// The input is longer than one message can be.
    TooLong {
        /// Its length in bytes.
        bytes: usize,
        /// Where a paste that made it so starts in the input, to take it out again.
        from: Option<(usize, usize)>,
    },
    /// A question answered with y or n.
    Confirm(Confirm),
}

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
    recall: Recall,
    open_group: Option<String>,
    invite_file: Option<PathBuf>,
    invites: Vec<String>,
    config_file: Option<PathBuf>,
}

fn new_input(theme: &Theme, placeholder: &str) -> TextArea<'static> {
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
            recall: Recall::default(),
            open_group: None,
            invite_file: None,
            invites: Vec::new(),
            config_file: opts.config_file.clone(),
        }
    }

    /// The invite codes shown in this session, to print when the TUI has given the
    /// terminal back.
    pub fn take_invites(&mut self) -> Vec<String> {
        std::mem::take(&mut self.invites)
    }

    /// The rooms on the room list (hidden ones left out), in order.
    pub fn listed(&self) -> impl Iterator<Item = &RoomState> {
        self.rooms
            .iter()
            .filter(|r| !self.panes.is_hidden(r.summary.id))
    }

    fn listed_ids(&self) -> Vec<RoomId> {
        self.listed().map(|r| r.summary.id).collect()
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

    /// The prompt before the input on a screen `width` wide: the room's name, or
    /// `search›`.
    pub fn input_prompt(&self, width: u16) -> String {
        match self.mode {
            InputMode::Search => "search› ".to_string(),
            InputMode::Message => {
                let name = self
                    .focused_room()
                    .and_then(|r| self.room(r))
                    .map_or(String::new(), |r| r.summary.name.clone());
                if name.is_empty() {
                    "› ".into()
                } else {
                    format!("{}› ", text::truncate(&name, usize::from(width / 4)))
                }
            }
        }
    }

    /// How many rows the input takes on a screen of `area`: its lines as they wrap, up to
    /// a third of the screen (then it scrolls to the cursor).
    fn input_rows(&self, area: Rect) -> u16 {
        let w = usize::from(area.width)
            .saturating_sub(text::width(&self.input_prompt(area.width)))
            .max(1);
        let rows: usize = self
            .input
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

    /// How the screen of `area` divides.
    pub fn areas(&self, area: Rect) -> Areas {
        let input_rows = self.input_rows(area);
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
            highlight: None,
        }
    }

    /// Row context for a pane: its width and its marked message.
    pub fn pane_ctx(&self, pane: usize, width: usize) -> RowCtx<'_> {
        RowCtx {
            highlight: self.panes.get(pane).and_then(|p| p.highlight),
            ..self.row_ctx(width)
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
                let created = is_new
                    && summary.kind == RoomKind::Group
                    && self.open_group.as_deref() == Some(summary.name.as_str());
                if !summary.closed && self.panes.unhide(id) {
                    self.layout_dirty = true;
                }
                let closed_now = summary.closed && self.room(id).is_some_and(|r| !r.summary.closed);
                let name = summary.name.clone();
                if closed_now {
                    // The end of "leaving #team…", or a removal by the admin.
                    self.notice(format!(
                        "#{name} is closed: its history stays, /hide takes it off the list"
                    ));
                }
                self.upsert_room(summary);
                if created {
                    // `/group create NAME` opens the new group, so `/group add` works next.
                    self.open_group = None;
                    self.show_room(id, out);
                    self.notice(format!("#{name} created: /group add NAME adds a contact"));
                } else if is_new && self.focused_room().is_none() {
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
                self.settle(room, out);
            }
            Event::SearchResults { query, messages } => {
                self.overlay = Some(Overlay::Search {
                    query,
                    selected: messages.len().saturating_sub(1),
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
            Event::Invite { code } => {
                // The code is here: "making an invite code…" is done.
                if self.flash.as_ref().is_some_and(|f| !f.error) {
                    self.flash = None;
                }
                if let Some(path) = self.invite_file.take() {
                    match write_invite(&path, &code) {
                        Ok(()) => self.notice(format!("invite code saved to {}", path.display())),
                        Err(e) => self.error(format!("the invite code was not saved: {e}")),
                    }
                }
                self.invites.push(code.clone());
                self.overlay = Some(Overlay::Invite { code, scroll: 0 });
            }
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

    /// A room was put in a pane: load its history, place the unread marker, mark it read;
    /// with unread messages, the panes showing it land on the first of them.
    fn open_room(&mut self, room: RoomId, out: &mut Vec<Command>) {
        let Some(r) = self.room_mut(room) else {
            return;
        };
        let unread = r.summary.unread;
        let mentions = r.summary.mentions;
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
        if unread > 0 {
            for (_, p) in self.panes.iter_mut() {
                if p.room == Some(room) && p.scroll == 0 && p.goal.is_none() {
                    p.goal = Some(Goal::Unread);
                }
            }
        }
        if unread > 0 || mentions > 0 {
            self.mark_read(room, out);
        }
        self.settle(room, out);
    }

    fn show_room(&mut self, room: RoomId, out: &mut Vec<Command>) {
        let p = self.panes.focused_mut();
        if p.room != Some(room) {
            p.room = Some(room);
            p.scroll = 0;
            p.highlight = None;
            p.goal = None;
            self.layout_dirty = true;
        }
        self.open_room(room, out);
    }

    /// Open `room` in the focused pane at message `id`, marked; older pages are loaded
    /// until it is there.
    fn jump_to(&mut self, room: RoomId, id: MessageId, out: &mut Vec<Command>) {
        self.show_room(room, out);
        let p = self.panes.focused_mut();
        p.highlight = Some(id);
        p.goal = Some(Goal::Message(id));
        self.settle(room, out);
    }

    /// Rows of message `i` and below it (to the newest), in a timeline drawn `width` wide.
    fn rows_from(&self, room: RoomId, width: usize, i: usize) -> (usize, usize) {
        let Some(r) = self.room(room) else {
            return (0, 0);
        };
        let ctx = self.row_ctx(width);
        let tl = &r.timeline;
        let below = (i + 1..tl.messages.len())
            .map(|j| timeline::count_rows(tl, j, &ctx))
            .sum();
        (below, timeline::count_rows(tl, i, &ctx))
    }

    /// Ask for the page of `room`'s history before its oldest loaded message.
    fn load_older(&mut self, room: RoomId, out: &mut Vec<Command>) {
        let Some(r) = self.room_mut(room) else {
            return;
        };
        r.timeline.loading = true;
        out.push(Command::LoadHistory {
            room,
            before: r.timeline.messages.first().map(|m| m.id),
            limit: HISTORY_PAGE,
        });
    }

    /// Scroll the panes of `room` that wait for a goal, once its messages are there; ask for
    /// older pages while a sought message is not loaded yet.
    fn settle(&mut self, room: RoomId, out: &mut Vec<Command>) {
        let Some(r) = self.room(room) else {
            return;
        };
        if r.timeline.loading {
            return;
        }
        let (marker, more) = (
            r.timeline
                .marker
                .and_then(|m| r.timeline.messages.iter().position(|x| x.id == m)),
            r.timeline.more,
        );
        let waiting: Vec<(usize, Goal)> = self
            .panes
            .ids()
            .into_iter()
            .filter_map(|p| {
                let pane = self.panes.get(p)?;
                (pane.room == Some(room)).then_some((p, pane.goal?))
            })
            .collect();
        for (p, goal) in waiting {
            let (w, h) = self.pane_inner(p);
            let scroll = match goal {
                Goal::Unread => marker.map(|i| {
                    let (below, own) = self.rows_from(room, w, i);
                    (below + own).saturating_sub(h)
                }),
                Goal::Message(id) => {
                    let at = self
                        .room(room)
                        .and_then(|r| r.timeline.messages.iter().position(|m| m.id == id));
                    match at {
                        Some(i) => {
                            let (below, own) = self.rows_from(room, w, i);
                            Some((below + own / 2).saturating_sub(h / 2))
                        }
                        None if more => {
                            self.load_older(room, out);
                            return;
                        }
                        None => {
                            self.notice("that message is not in the history any more");
                            None
                        }
                    }
                }
            };
            if let Some((_, pane)) = self.panes.iter_mut().find(|(i, _)| **i == p) {
                pane.goal = None;
                if let Some(s) = scroll {
                    pane.scroll = s;
                }
            }
        }
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
        let room = self.focused_room();
        if key.mods.is_empty() && self.mode == InputMode::Message {
            // Up on the first line and Down on the last walk earlier input, as in a shell.
            let row = self.input.cursor().0;
            let last = self.input.lines().len().saturating_sub(1);
            match key.code {
                KeyCode::Up if row == 0 => {
                    let now = self.input_text();
                    match self.recall.older(room, &now) {
                        Some(t) => self.set_input(&t),
                        None => self.notice("no earlier input in this room"),
                    }
                    return;
                }
                KeyCode::Down if row == last && self.recall.browsing() => {
                    if let Some(t) = self.recall.newer(room) {
                        self.set_input(&t);
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
        let screen = Rect::new(0, 0, self.size.0, self.size.1);
        let page = self.size.1.saturating_sub(4).max(1) as isize;
        match overlay {
            Overlay::Paste { from, .. } => match key.code {
                KeyCode::Char('y') | KeyCode::Enter => self.submit(out),
                KeyCode::Char('e') | KeyCode::Esc => {}
                _ => {
                    self.take_out(from);
                    self.notice("paste dropped (Ctrl-Z brings it back)");
                }
            },
            Overlay::TooLong { bytes, from } => match key.code {
                KeyCode::Char('s') => {
                    let text = self.input_text();
                    // `//text` is a message starting with `/`, as at Enter.
                    let body = if text.starts_with("//") {
                        &text[1..]
                    } else {
                        &text
                    };
                    let parts = split_text(body, MAX_TEXT_BYTES);
                    let n = parts.len();
                    let mut sent = true;
                    for part in parts {
                        sent &= self.send_text(part, out);
                    }
                    if sent {
                        self.recall.push(self.focused_room(), &text);
                        self.input.clear();
                        self.notice(format!("sent as {n} messages"));
                    }
                }
                KeyCode::Char('n') => {
                    match from {
                        Some(f) => self.take_out(f),
                        None => {
                            self.input.clear();
                        }
                    }
                    self.notice("dropped (Ctrl-Z brings it back)");
                }
                _ => self.notice(format!(
                    "kept in the input: {} of at most {} KiB",
                    kib(bytes),
                    MAX_TEXT_BYTES / 1024
                )),
            },
            Overlay::Confirm(c) => match key.code {
                KeyCode::Char('y') | KeyCode::Enter => {
                    out.extend(c.yes);
                    self.notice(c.done);
                }
                _ => {
                    if let Some(text) = c.keep {
                        self.set_input(&text);
                    }
                }
            },
            Overlay::Help { scroll } => {
                if let Some(d) = list_step(key, page) {
                    let max = crate::ui::help::max_scroll(self, screen);
                    self.overlay = Some(Overlay::Help {
                        scroll: step_by(usize::from(scroll), d, usize::from(max)) as u16,
                    });
                }
            }
            Overlay::Invite { code, scroll } => {
                if let Some(d) = list_step(key, page) {
                    let max = crate::ui::overlay::invite_max_scroll(self, &code, screen);
                    self.overlay = Some(Overlay::Invite {
                        scroll: step_by(usize::from(scroll), d, usize::from(max)) as u16,
                        code,
                    });
                }
            }
            Overlay::Search {
                query,
                results,
                selected,
            } => {
                if key.code == KeyCode::Enter {
                    if let Some(m) = results.get(selected) {
                        let (room, id) = (m.room, m.id);
                        self.jump_to(room, id, out);
                    }
                } else if let Some(d) = list_step(key, page) {
                    let max = results.len().saturating_sub(1);
                    self.overlay = Some(Overlay::Search {
                        selected: step_by(selected, d, max),
                        query,
                        results,
                    });
                }
            }
            Overlay::Safety { .. } | Overlay::Members { .. } => {}
        }
    }

    /// Take text inserted from `from` to the cursor back out of the input, as an edit that
    /// Ctrl-Z undoes.
    fn take_out(&mut self, from: (usize, usize)) {
        self.input.cancel_selection();
        self.input.start_selection();
        self.input.move_cursor(CursorMove::Jump(
            u16::try_from(from.0).unwrap_or(u16::MAX),
            u16::try_from(from.1).unwrap_or(u16::MAX),
        ));
        self.input.cut();
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
                    self.recall.stop();
                    self.input.clear();
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
                let ids = self.listed_ids();
                let n = ids.len();
                if n > 0 {
                    let cur = self
                        .focused_room()
                        .and_then(|r| ids.iter().position(|x| *x == r));
                    let i = match (cur, a == KeyAction::RoomNext) {
                        (Some(i), true) => (i + 1) % n,
                        (Some(i), false) => (i + n - 1) % n,
                        (None, _) => 0,
                    };
                    self.show_room(ids[i], out);
                }
            }
            KeyAction::Room(n) => match self.listed_ids().get(usize::from(n).saturating_sub(1)) {
                Some(id) => self.show_room(*id, out),
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
            KeyAction::Bottom => {
                let p = self.panes.focused_mut();
                p.scroll = 0;
                p.highlight = None;
            }
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
        let (total, exhausted, more, loading) = match self.room(room) {
            Some(r) => {
                let ctx = self.row_ctx(w);
                let need = want.saturating_add(h).min(1 << 24);
                let (rows, exhausted) = timeline::tail_rows(&r.timeline, &ctx, need);
                (rows.len(), exhausted, r.timeline.more, r.timeline.loading)
            }
            None => return,
        };
        let max = total.saturating_sub(h);
        let scroll = if exhausted { want.min(max) } else { want };
        self.panes.focused_mut().scroll = scroll;
        if exhausted && delta > 0 && want > max && more && !loading {
            self.load_older(room, out);
            self.notice("loading older messages…");
        }
    }

    fn next_activity(&mut self, out: &mut Vec<Command>) {
        let listed: Vec<&RoomState> = self.listed().collect();
        let n = listed.len();
        let cur = self
            .focused_room()
            .and_then(|r| listed.iter().position(|x| x.summary.id == r))
            .unwrap_or(n.saturating_sub(1));
        let after = |pred: &dyn Fn(&RoomState) -> bool| {
            (1..=n)
                .map(|k| (cur + k) % n.max(1))
                .find(|i| listed.get(*i).is_some_and(|r| pred(r)))
        };
        let target =
            after(&|r| r.summary.mentions > 0).or_else(|| after(&|r| r.summary.unread > 0));
        match target.and_then(|i| listed.get(i)).map(|r| r.summary.id) {
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
                offsets.push((below, m.id));
            }
            below += timeline::count_rows(tl, i, &ctx);
        }
        let target = if newer {
            offsets.iter().copied().filter(|(o, _)| *o < cur).max()
        } else {
            offsets.iter().copied().filter(|(o, _)| *o > cur).min()
        };
        match target {
            Some((o, id)) => {
                let p = self.panes.focused_mut();
                p.scroll = o;
                p.highlight = Some(id);
            }
            None => self.notice(if newer {
                "no newer mention"
            } else {
                "no older mention"
            }),
        }
    }

    fn on_paste(&mut self, text: String) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        // A trailing line break (a copied line) is not a line of the message.
        let text = text.trim_end_matches('\n');
        if text.is_empty() || self.mode == InputMode::Search {
            self.input.insert_str(text.replace('\n', " "));
            return;
        }
        self.recall.stop();
        self.completion = None;
        let before = self.input_text();
        if let Some(space) = self.input_is_accept() {
            // Rows of a code copied off a terminal: one code.
            if space {
                self.input.insert_char(' ');
            }
            self.input.insert_str(text.replace('\n', " "));
            return;
        }
        if before.trim().is_empty()
            && let Some(code) = commands::invite_code(text)
        {
            self.offer_accept(code, text.to_string());
            return;
        }
        let ratatui_textarea::DataCursor(row, col) = self.input.cursor();
        self.input.insert_str(text);
        let bytes = self.input_text().len();
        if bytes > MAX_TEXT_BYTES {
            self.overlay = Some(Overlay::TooLong {
                bytes,
                from: Some((row, col)),
            });
        } else if text.lines().count() > PASTE_CONFIRM_LINES {
            self.overlay = Some(Overlay::Paste {
                lines: text.lines().count(),
                from: (row, col),
            });
        }
    }

    /// Whether the input holds `/accept` (or a prefix of it) and its arguments so far:
    /// `Some(true)` when a space must come before a pasted code.
    fn input_is_accept(&self) -> Option<bool> {
        let text = self.input_text();
        let body = text.strip_prefix('/')?;
        let word = body.split_whitespace().next().unwrap_or("");
        let names: Vec<&str> = commands::COMMANDS.iter().map(|c| c.name).collect();
        let accept = word.len() >= 2
            && commands::resolve(word, &names, "command").is_ok_and(|n| n == "accept");
        accept.then(|| !body.ends_with(char::is_whitespace) && body.trim_end() == word)
    }

    /// Ask whether to accept an invite code that was pasted or typed alone; on no, `keep`
    /// goes back into the input.
    fn offer_accept(&mut self, code: String, keep: String) {
        self.overlay = Some(Overlay::Confirm(Confirm {
            question: "Accept this invite code?".into(),
            detail: format!(
                "{}… adds the person who made it as a contact.",
                code.chars().take(24).collect::<String>()
            ),
            yes: vec![Command::AcceptInvite { code, name: None }],
            done: "invite accepted; the contact appears once the handshake is done".into(),
            keep: Some(keep),
        }));
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
                    if let Some(id) = self.listed_ids().get(i).copied() {
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
        let mut people: Vec<String> = self.contacts.iter().map(|(_, n)| n.clone()).collect();
        if let Some(r) = self.focused_room().and_then(|r| self.room(r)) {
            people.extend(r.summary.members.iter().cloned());
        }
        let mut names = people.clone();
        names.extend(self.listed().map(|r| r.summary.name.clone()));
        let themes = theme::names(&self.themes_dirs);
        let c = commands::complete(&line, &names, &themes, &people);
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
        let room = self.focused_room();
        self.recall.push(room, &text);
        if text.starts_with('/') && !text.starts_with("//") {
            let ok = match commands::parse(text.trim_end()) {
                Ok(cmd) => self.run_command(cmd, out),
                Err(e) => {
                    self.error(e);
                    false
                }
            };
            if ok {
                self.input.clear();
            } else {
                // Kept for fixing, selected: what is typed next replaces it.
                self.input.select_all();
            }
            return;
        }
        let body = text.strip_prefix('/').unwrap_or(&text);
        let body = body.trim_end_matches('\n').to_string();
        if let Some(code) = commands::invite_code(&body) {
            self.input.clear();
            self.offer_accept(code, text);
            return;
        }
        if body.len() > MAX_TEXT_BYTES {
            self.overlay = Some(Overlay::TooLong {
                bytes: body.len(),
                from: None,
            });
            return;
        }
        if self.send_text(body, out) {
            self.input.clear();
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
        let p = self.panes.focused_mut();
        p.scroll = 0;
        p.highlight = None;
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

    /// Remember the theme in the profile's config file; false when there is none.
    fn save_theme(&self, name: &str) -> Result<bool, String> {
        let Some(path) = &self.config_file else {
            return Ok(false);
        };
        let mut config = ProfileConfig::load(path).map_err(|e| e.to_string())?;
        config.theme = Some(name.to_string());
        config.save(path).map_err(|e| e.to_string())?;
        Ok(true)
    }

    fn find_group(&self, name: &str) -> Result<RoomId, String> {
        let groups: Vec<&RoomState> = self
            .listed()
            .filter(|r| r.summary.kind == RoomKind::Group)
            .collect();
        let names: Vec<&str> = groups.iter().map(|r| r.summary.name.as_str()).collect();
        let n = commands::resolve(name, &names, "group")?;
        groups
            .iter()
            .find(|r| r.summary.name == n)
            .map(|r| r.summary.id)
            .ok_or_else(|| format!("unknown group {name:?}"))
    }

    fn is_group_name(&self, name: &str) -> bool {
        self.listed()
            .any(|r| r.summary.kind == RoomKind::Group && r.summary.name.eq_ignore_ascii_case(name))
    }

    /// The group and contact of `/group add|remove`: `CONTACT` in the focused group, or
    /// `GROUP CONTACT` (the line mode's order) anywhere.
    fn group_and_contact(&self, arg: &str) -> Result<(RoomId, ContactId), String> {
        if let Ok(room) = self.focused_group()
            && let Ok(contact) = self.find_contact(arg)
        {
            return Ok((room, contact));
        }
        if let Some((g, rest)) = arg.split_once(char::is_whitespace)
            && let Ok(room) = self.find_group(g)
        {
            return Ok((room, self.find_contact(rest.trim())?));
        }
        let room = self.focused_group().map_err(|_| {
            "usage: /group add GROUP CONTACT, or /group add CONTACT in a group room".to_string()
        })?;
        Ok((room, self.find_contact(arg)?))
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
                SlashCommand::Invite(file) => {
                    if let Some(f) = file {
                        let path = typed_path(&f);
                        if path.exists() {
                            return Err(format!(
                                "{} exists: give a new file's name",
                                path.display()
                            ));
                        }
                        self.invite_file = Some(path);
                    }
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
                SlashCommand::GroupCreate(name) => {
                    self.open_group = Some(name.trim().to_string());
                    out.push(Command::CreateGroup { name });
                }
                SlashCommand::GroupAdd(arg) => {
                    let (room, contact) = self.group_and_contact(&arg)?;
                    out.push(Command::GroupAdd { room, contact });
                }
                SlashCommand::GroupRemove(arg) => {
                    let (room, contact) = self.group_and_contact(&arg)?;
                    out.push(Command::GroupRemove { room, contact });
                }
                SlashCommand::GroupLeave(name) => {
                    let room = match name {
                        Some(n) => self.find_group(&n)?,
                        None => self.focused_group()?,
                    };
                    let name = self
                        .room(room)
                        .map_or(String::new(), |r| r.summary.name.clone());
                    self.overlay = Some(Overlay::Confirm(Confirm {
                        question: format!("Leave #{name}?"),
                        detail: "Its messages stop coming; the room stays, read-only (/hide takes it off the list).".into(),
                        yes: vec![Command::GroupLeave { room }],
                        done: format!("leaving #{name}…"),
                        keep: None,
                    }));
                }
                SlashCommand::GroupRename(arg) => {
                    let (room, name) = match arg.split_once(char::is_whitespace) {
                        Some((g, rest)) if self.is_group_name(g) => {
                            (self.find_group(g)?, rest.trim().to_string())
                        }
                        _ => (self.focused_group()?, arg),
                    };
                    out.push(Command::GroupRename { room, name });
                }
                SlashCommand::Hide(name) => {
                    let room = match name {
                        Some(n) => self.find_room(&n)?,
                        None => self
                            .focused_room()
                            .ok_or_else(|| "usage: /hide ROOM".to_string())?,
                    };
                    let Some(r) = self.room(room) else {
                        return Err("no such room".into());
                    };
                    if !r.summary.closed {
                        return Err(format!(
                            "{} is open: only a room you left or were removed from can be hidden",
                            r.summary.name
                        ));
                    }
                    let name = r.summary.name.clone();
                    self.panes.hide(room);
                    self.layout_dirty = true;
                    let next = self.listed_ids().first().copied();
                    for (_, p) in self.panes.iter_mut() {
                        if p.room == Some(room) {
                            *p = crate::ui::panes::Pane {
                                room: next,
                                ..Default::default()
                            };
                        }
                    }
                    if let Some(n) = next {
                        self.open_room(n, out);
                    }
                    self.notice(format!("{name} is off the room list; its history stays"));
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
                    match self.save_theme(&name) {
                        Ok(true) => self.notice(format!("theme {name} (remembered)")),
                        Ok(false) => self.notice(format!("theme {name}")),
                        Err(e) => self.error(format!("theme {name}, not remembered: {e}")),
                    }
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

/// How a key moves in a list or a scrolled text: by rows, a page, or to an end.
fn list_step(key: &Key, page: isize) -> Option<isize> {
    use ratatui::crossterm::event::KeyCode;
    if !key.mods.is_empty() && key.mods != ratatui::crossterm::event::KeyModifiers::SHIFT {
        return None;
    }
    match key.code {
        KeyCode::Up | KeyCode::Char('k') => Some(-1),
        KeyCode::Down | KeyCode::Char('j') => Some(1),
        KeyCode::PageUp => Some(-page),
        KeyCode::PageDown | KeyCode::Char(' ') => Some(page),
        KeyCode::Home => Some(isize::MIN),
        KeyCode::End => Some(isize::MAX),
        _ => None,
    }
}

/// `at` moved by `d`, kept within `0..=max`.
fn step_by(at: usize, d: isize, max: usize) -> usize {
    let to = if d < 0 {
        at.saturating_sub(d.unsigned_abs())
    } else {
        at.saturating_add(d.unsigned_abs())
    };
    to.min(max)
}

/// Kibibytes, rounded up.
fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
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

/// Write an invite code to a new file that only this user can read.
fn write_invite(path: &std::path::Path, code: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    writeln!(f, "{code}")
}

/// A path as typed: `~/` is the home folder.
fn typed_path(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), directories::BaseDirs::new()) {
        (Some(rest), Some(b)) => b.home_dir().join(rest),
        _ => PathBuf::from(p),
    }
}

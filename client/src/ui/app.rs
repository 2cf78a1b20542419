//! The TUI's state, composed of its components, and its `update`: every [`Action`] goes to
//! the component it is for, and comes back as the [`Effect`]s for the runtime to carry out.
//! Drawing lives in `view`, which has no side effects.
//!
//! The components: the rooms and panes (`chat`), the input line (`input`), the overlays
//! (`overlay`), command execution (`exec`) and the theme (`skin`). The app routes between
//! them: keys to an open overlay first, then to the keymap's actions or the input; what an
//! overlay asks for next ([`Intent`]) to the part that does it.

use ratatui::crossterm::event::{KeyEvent, KeyEventKind};
use ratatui::layout::{Constraint, Layout, Rect};

use crate::api::{Command, Event, LinkStatus, RoomId};
use crate::command::Names;
use crate::ui::action::{Action, Saved};
use crate::ui::chat::{Chat, Look, RoomState};
use crate::ui::effect::{Effect, Flash, Out};
use crate::ui::exec::{Exec, Parts};
use crate::ui::input::{Entered, InputBox, InputMode, Pasted};
use crate::ui::keymap::{Key, KeyAction, Keymap};
use crate::ui::options::UiOptions;
use crate::ui::overlay::{
    self, Confirm, Help, Intent, InviteView, MembersView, Overlay, PasteGuard, SafetyView,
    SearchView, TooLong,
};
use crate::ui::panes::Panes;
use crate::ui::skin::Skin;
use crate::ui::text;
use crate::ui::theme::{ColorMode, Theme};
use crate::ui::timeline::RowCtx;

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
    pub(super) chat: Chat,
    pub(super) input: InputBox,
    pub(super) skin: Skin,
    exec: Exec,
    /// The overlay on top, if any.
    pub overlay: Option<Overlay>,
    /// The notice or error line.
    pub flash: Option<Flash>,
    /// Key bindings.
    pub keymap: Keymap,
    /// Terminal size.
    pub size: (u16, u16),
    pane_prefix: bool,
    interrupt_armed: bool,
    demo_hint: Option<String>,
    tz: i64,
}

/// What the chat needs to count rows, from the app's fields (a macro, so that the theme is
/// borrowed alone and the chat can be borrowed mutably beside it).
macro_rules! look {
    ($app:ident) => {
        Look {
            theme: &$app.skin.theme,
            tz: $app.tz,
            area: $app.panes_area(),
        }
    };
}

impl App {
    /// A UI state from the options, with colours as the terminal reports
    /// (COLORTERM, TERM, NO_COLOR) and desktop notifications off over SSH.
    pub fn new(opts: &UiOptions) -> Self {
        let ssh = std::env::var_os("SSH_CONNECTION").is_some();
        Self::with_env(opts, ColorMode::detect(), !ssh)
    }

    /// A UI state with an explicit colour mode and desktop-notification switch (tests).
    pub fn with_env(opts: &UiOptions, color: ColorMode, desktop: bool) -> Self {
        let name = opts.theme.as_deref().unwrap_or("dark");
        let (skin, theme_problem) = Skin::new(name, &opts.themes_dirs, color);
        let mut flash = theme_problem.map(|text| Flash { error: true, text });
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
            chat: Chat::new(panes, opts.bell_on_mention, desktop),
            input: InputBox::new(&skin.theme),
            skin,
            exec: Exec::default(),
            overlay: None,
            flash,
            keymap,
            size: (80, 24),
            pane_prefix: false,
            interrupt_armed: false,
            demo_hint: opts.demo_hint.clone(),
            tz: opts.tz_offset_secs,
        }
    }

    // ----- what the view and tests read -----

    /// This profile's display name.
    pub fn me(&self) -> &str {
        &self.chat.me
    }

    /// The theme in use.
    pub fn theme(&self) -> &Theme {
        &self.skin.theme
    }

    /// The last theme file error (the previous theme stays).
    pub fn theme_error(&self) -> Option<&str> {
        self.skin.error.as_deref()
    }

    /// The pane layout.
    pub fn panes(&self) -> &Panes {
        &self.chat.panes
    }

    /// Relay links for the status bar.
    pub fn links(&self) -> &[LinkStatus] {
        &self.chat.links
    }

    /// The hum/2 link for the status bar, once the engine runs one.
    pub fn route(&self) -> Option<&crate::api::RouteStatus> {
        self.chat.route.as_ref()
    }

    /// The rooms on the room list (hidden ones left out), in order.
    pub fn listed(&self) -> impl Iterator<Item = &RoomState> {
        self.chat.listed()
    }

    /// A room by id.
    pub fn room(&self, id: RoomId) -> Option<&RoomState> {
        self.chat.room(id)
    }

    /// The room in the focused pane.
    pub fn focused_room(&self) -> Option<RoomId> {
        self.chat.focused_room()
    }

    /// Whether the engine's `Ready` has arrived.
    pub fn is_ready(&self) -> bool {
        self.chat.is_ready()
    }

    /// What the input is for.
    pub fn mode(&self) -> InputMode {
        self.input.mode()
    }

    /// The input's text, lines joined with newlines.
    pub fn input_text(&self) -> String {
        self.input.text()
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

    /// The prompt before the input on a screen `width` wide: the room's name, or
    /// `search›`.
    pub fn input_prompt(&self, width: u16) -> String {
        match self.input.mode() {
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

    /// How the screen of `area` divides.
    pub fn areas(&self, area: Rect) -> Areas {
        let input_rows = self.input.rows(area, &self.input_prompt(area.width));
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

    fn screen(&self) -> Rect {
        Rect::new(0, 0, self.size.0, self.size.1)
    }

    fn panes_area(&self) -> Rect {
        self.areas(self.screen()).panes
    }

    /// Row context for a pane: its width and its marked message.
    pub(super) fn pane_ctx(&self, pane: usize, width: usize) -> RowCtx<'_> {
        let look = look!(self);
        RowCtx {
            highlight: self.chat.panes.get(pane).and_then(|p| p.highlight),
            ..self.chat.row_ctx(&look, width)
        }
    }

    /// What overlays read, on a screen of `screen`.
    pub(super) fn overlay_cx(&self, screen: Rect) -> overlay::Cx<'_> {
        overlay::Cx {
            theme: &self.skin.theme,
            keymap: &self.keymap,
            tz: self.tz,
            rooms: &self.chat.rooms,
            screen,
        }
    }

    // ----- update -----

    /// Handle one action; what it asks of the world comes back as effects, in order.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let mut out = Out::default();
        match action {
            Action::Key(k) => self.on_key(k, &mut out),
            Action::Paste(text) => self.on_paste(&text),
            Action::Mouse(m) => {
                let sidebar = self.areas(self.screen()).sidebar;
                let look = look!(self);
                self.chat.on_mouse(m, sidebar, &look, &mut out);
            }
            Action::Resize(w, h) => self.size = (w, h),
            Action::Engine(ev) => self.on_event(ev, &mut out),
            Action::ThemeLoaded(change) => match self.skin.reloaded(change) {
                Some(Ok(name)) => {
                    self.input.restyle(&self.skin.theme);
                    out.notice(format!("theme {name} reloaded"));
                }
                Some(Err(e)) => out.error(format!("theme kept: {e}")),
                None => {}
            },
            Action::Saved(saved) => on_saved(saved, &mut out),
            Action::Tick => {}
            Action::Quit => quit(&mut out),
        }
        if let Some(f) = out.flash.take() {
            self.flash = Some(f);
        }
        if out.layout_changed {
            out.effect(Effect::SaveLayout(self.chat.panes.clone()));
        }
        out.effects
    }

    fn on_event(&mut self, ev: Event, out: &mut Out) {
        match ev {
            Event::SearchResults { query, messages } => {
                self.overlay = Some(Overlay::Search(SearchView::new(query, messages)));
            }
            Event::Invite { code } => {
                // The code is here: "making an invite code…" is done.
                if self.flash.as_ref().is_some_and(|f| !f.error) {
                    self.flash = None;
                }
                if let Some(path) = self.exec.take_invite_file() {
                    out.effect(Effect::WriteInvite {
                        path,
                        code: code.clone(),
                    });
                }
                out.effect(Effect::PrintOnExit(code.clone()));
                self.overlay = Some(Overlay::Invite(InviteView::new(code)));
            }
            Event::SafetyNumber { name, number, .. } => {
                self.overlay = Some(Overlay::Safety(SafetyView { name, number }));
            }
            Event::Members { room, members } => {
                let room = self
                    .room(room)
                    .map_or_else(String::new, |r| r.summary.name.clone());
                self.overlay = Some(Overlay::Members(MembersView { room, members }));
            }
            Event::Notice(text) => out.notice(text),
            Event::Error { message, .. } => out.error(message),
            Event::Pong { .. } => {}
            other => {
                let look = look!(self);
                self.chat.on_event(other, &look, out);
            }
        }
    }

    fn on_key(&mut self, ev: KeyEvent, out: &mut Out) {
        if ev.kind == KeyEventKind::Release {
            return;
        }
        let key = Key::from_event(&ev);
        if let Some(open) = self.overlay.take() {
            let (keep, intent) = open.key(&key, &self.overlay_cx(self.screen()));
            self.overlay = keep;
            if let Some(i) = intent {
                self.on_intent(i, out);
            }
            return;
        }
        if self.pane_prefix {
            self.pane_prefix = false;
            if key.code == ratatui::crossterm::event::KeyCode::Esc {
                return;
            }
            match self.keymap.lookup_pane(&key) {
                Some(a) => self.do_key(a, out),
                None => out.error(format!("{} is not a pane key (? for help)", key.name())),
            }
            return;
        }
        let action = self
            .keymap
            .lookup(&key)
            .filter(|_| !key.is_text() || self.input.is_empty());
        if action != Some(KeyAction::Interrupt) {
            self.interrupt_armed = false;
        }
        if action != Some(KeyAction::Complete) {
            self.input.stop_cycling();
        }
        match action {
            Some(a) => self.do_key(a, out),
            None => {
                if self.flash.as_ref().is_some_and(|f| !f.error) || key.is_text() {
                    self.flash = None;
                }
                let room = self.focused_room();
                self.input.edit(&key, ev, room, &self.skin.theme, out);
            }
        }
    }

    fn do_key(&mut self, a: KeyAction, out: &mut Out) {
        match a {
            KeyAction::Help => self.overlay = Some(Overlay::Help(Help::default())),
            KeyAction::Submit => self.submit(out),
            KeyAction::Newline => self.input.newline(),
            KeyAction::Complete => {
                let (names, people) = self.chat.names();
                let themes = self.skin.names();
                let from = Names {
                    names: &names,
                    themes: &themes,
                    people: &people,
                };
                self.input.complete(from, &self.skin.theme, out);
            }
            KeyAction::Cancel => {
                self.flash = None;
                self.input.cancel_search(&self.skin.theme);
            }
            KeyAction::Interrupt => {
                if self.input.interrupt() {
                    return;
                }
                if self.interrupt_armed {
                    quit(out);
                } else {
                    self.interrupt_armed = true;
                    out.notice("Ctrl-C again to quit (or /quit)");
                }
            }
            KeyAction::PanePrefix => self.pane_prefix = true,
            KeyAction::Search => {
                self.input.start_search(&self.skin.theme);
                out.notice("search: type, then Enter (Esc cancels)");
            }
            pane_or_room => {
                let look = look!(self);
                self.chat.key(pane_or_room, &look, out);
            }
        }
    }

    fn on_paste(&mut self, text: &str) {
        self.overlay = match self.input.paste(text) {
            Pasted::Inserted => return,
            Pasted::Code { code, keep } => Some(Overlay::Confirm(Confirm::accept(code, keep))),
            Pasted::TooLong { bytes, from } => Some(Overlay::TooLong(TooLong {
                bytes,
                from: Some(from),
            })),
            Pasted::Long { lines, from } => Some(Overlay::Paste(PasteGuard { lines, from })),
        };
    }

    /// Enter: send the message, run the command, search, or ask about a code.
    fn submit(&mut self, out: &mut Out) {
        let room = self.focused_room();
        match self.input.enter(room, &self.skin.theme) {
            Entered::Nothing => {}
            Entered::Search(query) => out.engine(Command::Search { room, query }),
            Entered::Command(line) => {
                let parts = Parts {
                    panes: self.panes_area(),
                    tz: self.tz,
                    chat: &mut self.chat,
                    skin: &mut self.skin,
                    input: &mut self.input,
                    overlay: &mut self.overlay,
                };
                match self.exec.run(&line, parts, out) {
                    Ok(()) => self.input.clear(),
                    Err(e) => {
                        out.error(e);
                        // Kept for fixing, selected: what is typed next replaces it.
                        self.input.select_all();
                    }
                }
            }
            Entered::Code { code, keep } => {
                self.overlay = Some(Overlay::Confirm(Confirm::accept(code, keep)));
            }
            Entered::TooLong(bytes) => {
                self.overlay = Some(Overlay::TooLong(TooLong { bytes, from: None }));
            }
            Entered::Message(body) => match self.chat.send(body, out) {
                Ok(()) => self.input.clear(),
                Err(e) => out.error(e),
            },
        }
    }

    fn on_intent(&mut self, intent: Intent, out: &mut Out) {
        match intent {
            Intent::Submit => self.submit(out),
            Intent::Drop { from, notice } => {
                match from {
                    Some(f) => self.input.take_out(f),
                    None => self.input.clear(),
                }
                out.notice(notice);
            }
            Intent::SendSplit => {
                let parts = self.input.parts();
                let n = parts.len();
                for part in parts {
                    if let Err(e) = self.chat.send(part, out) {
                        out.error(e);
                        return;
                    }
                }
                self.input.remember(self.focused_room());
                self.input.clear();
                out.notice(format!("sent as {n} messages"));
            }
            Intent::Notice(text) => out.notice(text),
            Intent::Engine { commands, done } => {
                for c in commands {
                    out.engine(c);
                }
                out.notice(done);
            }
            Intent::Restore(text) => self.input.set(&text, &self.skin.theme),
            Intent::JumpTo(room, id) => {
                let look = look!(self);
                self.chat.jump_to(room, id, &look, out);
            }
        }
    }
}

/// Leave: the engine flushes and stops, then the TUI goes.
fn quit(out: &mut Out) {
    out.engine(Command::Quit);
    out.effect(Effect::Quit);
}

/// Say how a file the UI asked for was written.
fn on_saved(saved: Saved, out: &mut Out) {
    match saved {
        Saved::Theme { name, result } => match result {
            Ok(()) => out.notice(format!("theme {name} (remembered)")),
            Err(e) => out.error(format!("theme {name}, not remembered: {e}")),
        },
        Saved::Invite { path, result } => match crate::command::saved_note(&path, result) {
            Ok(notice) => out.notice(notice),
            Err(e) => out.error(e),
        },
    }
}

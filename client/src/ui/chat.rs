//! The rooms and the panes that show them: what the engine says about rooms, contacts,
//! messages and history, and the keys that move between rooms, scroll and split panes.

use ratatui::crossterm::event::{MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use crate::api::{
    Command, ContactId, Event, LinkStatus, MessageId, MessageKind, MessageView, RoomId, RoomKind,
    RoomSummary, RouteStatus,
};
use crate::command::{CommandError, Face, Resolver};
use crate::ui::effect::{Effect, Out};
use crate::ui::keymap::KeyAction;
use crate::ui::panes::{Goal, Pane, Panes, SplitDir, Towards};
use crate::ui::theme::Theme;
use crate::ui::timeline::{self, RowCtx, Timeline};

/// Messages asked for per page of history.
pub(super) const HISTORY_PAGE: u32 = 200;

/// A room the UI knows: what the engine said about it, and its loaded messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    /// The engine's summary (name, members, unread counts).
    pub summary: RoomSummary,
    /// Its messages.
    pub timeline: Timeline,
}

/// What rows look like and where the panes are: enough to count a pane's rows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Look<'a> {
    /// The theme.
    pub(super) theme: &'a Theme,
    /// The offset from UTC for times.
    pub(super) tz: i64,
    /// Where the panes are on the screen.
    pub(super) area: Rect,
}

/// The rooms, contacts and links the engine told of, and the panes showing rooms.
#[derive(Debug)]
pub(super) struct Chat {
    /// This profile's display name.
    pub(super) me: String,
    /// Rooms in room-list order.
    pub(super) rooms: Vec<RoomState>,
    /// Contacts by id.
    pub(super) contacts: Vec<(ContactId, String)>,
    /// The pane layout.
    pub(super) panes: Panes,
    /// Relay links for the status bar.
    pub(super) links: Vec<LinkStatus>,
    /// The hum/2 link for the status bar, once the engine runs one.
    pub(super) route: Option<RouteStatus>,
    ready: bool,
    /// A group `/group create` asked for: it opens when it appears.
    open_group: Option<String>,
    bell_on_mention: bool,
    desktop: bool,
}

impl Chat {
    /// No rooms yet, panes as restored; mentions ring the bell and make desktop
    /// notifications as asked.
    pub(super) fn new(panes: Panes, bell_on_mention: bool, desktop: bool) -> Self {
        Chat {
            me: String::new(),
            rooms: Vec::new(),
            contacts: Vec::new(),
            panes,
            links: Vec::new(),
            route: None,
            ready: false,
            open_group: None,
            bell_on_mention,
            desktop,
        }
    }

    /// Whether the engine's `Ready` has arrived.
    pub(super) fn is_ready(&self) -> bool {
        self.ready
    }

    /// The rooms on the room list (hidden ones left out), in order.
    pub(super) fn listed(&self) -> impl Iterator<Item = &RoomState> {
        self.rooms
            .iter()
            .filter(|r| !self.panes.is_hidden(r.summary.id))
    }

    fn listed_ids(&self) -> Vec<RoomId> {
        self.listed().map(|r| r.summary.id).collect()
    }

    /// A room by id.
    pub(super) fn room(&self, id: RoomId) -> Option<&RoomState> {
        self.rooms.iter().find(|r| r.summary.id == id)
    }

    fn room_mut(&mut self, id: RoomId) -> Option<&mut RoomState> {
        self.rooms.iter_mut().find(|r| r.summary.id == id)
    }

    /// The room in the focused pane.
    pub(super) fn focused_room(&self) -> Option<RoomId> {
        self.panes.focused().room
    }

    fn visible(&self, room: RoomId) -> bool {
        self.panes
            .ids()
            .iter()
            .any(|p| self.panes.get(*p).is_some_and(|x| x.room == Some(room)))
    }

    /// Names in commands resolved against the listed rooms, the contacts and the focused
    /// room.
    pub(super) fn resolver(&self) -> Resolver<'_> {
        Resolver::new(
            Face::Tui,
            self.listed().map(|r| &r.summary),
            self.contacts.iter().map(|(id, n)| (*id, n.as_str())),
            self.focused_room(),
        )
    }

    /// What Tab completes from: every contact, room and member name, and the people
    /// (contacts and the focused room's members) for `@name`.
    pub(super) fn names(&self) -> (Vec<String>, Vec<String>) {
        let mut people: Vec<String> = self.contacts.iter().map(|(_, n)| n.clone()).collect();
        if let Some(r) = self.focused_room().and_then(|r| self.room(r)) {
            people.extend(r.summary.members.iter().cloned());
        }
        let mut names = people.clone();
        names.extend(self.listed().map(|r| r.summary.name.clone()));
        (names, people)
    }

    /// Expect the group `/group create NAME` asked for: it opens when it appears.
    pub(super) fn expect_group(&mut self, name: &str) {
        self.open_group = Some(name.trim().to_string());
    }

    /// Row context for a timeline drawn `width` wide.
    pub(super) fn row_ctx<'a>(&'a self, look: &Look<'a>, width: usize) -> RowCtx<'a> {
        RowCtx {
            theme: look.theme,
            me: &self.me,
            tz: look.tz,
            width,
            highlight: None,
        }
    }

    /// The inner size (inside the border) of a pane.
    fn pane_inner(&self, look: &Look<'_>, pane: usize) -> (usize, usize) {
        self.panes
            .rects(look.area)
            .into_iter()
            .find(|(p, _)| *p == pane)
            .map_or((40, 10), |(_, r)| {
                (
                    r.width.saturating_sub(2) as usize,
                    r.height.saturating_sub(2) as usize,
                )
            })
    }

    // ----- engine events -----

    /// Take what the engine says about rooms, contacts, messages, history and links
    /// (other events are not the chat's).
    pub(super) fn on_event(&mut self, ev: Event, look: &Look<'_>, out: &mut Out) {
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
                    self.open_room(r, look, out);
                }
            }
            Event::Room(summary) => self.on_room(summary, look, out),
            Event::Contact { id, name } => {
                if let Some(c) = self.contacts.iter_mut().find(|(c, _)| *c == id) {
                    c.1 = name;
                } else {
                    self.contacts.push((id, name));
                }
            }
            Event::ContactRemoved { id, .. } => self.contacts.retain(|(c, _)| *c != id),
            Event::Message(m) => self.on_message(m, look, out),
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
                self.settle(room, look, out);
            }
            Event::Route(status) => self.route = Some(status),
            Event::Link(status) => {
                if let Some(l) = self.links.iter_mut().find(|l| l.relay == status.relay) {
                    *l = status;
                } else {
                    self.links.push(status);
                }
            }
            _ => {}
        }
    }

    fn on_room(&mut self, summary: RoomSummary, look: &Look<'_>, out: &mut Out) {
        let id = summary.id;
        let is_new = self.room(id).is_none();
        let created = is_new
            && summary.kind == RoomKind::Group
            && self.open_group.as_deref() == Some(summary.name.as_str());
        if !summary.closed && self.panes.unhide(id) {
            out.layout();
        }
        let closed_now = summary.closed && self.room(id).is_some_and(|r| !r.summary.closed);
        let name = summary.name.clone();
        if closed_now {
            // The end of "leaving #team…", or a removal by the admin.
            out.notice(format!(
                "#{name} is closed: its history stays, /hide takes it off the list"
            ));
        }
        self.upsert_room(summary);
        if created {
            // `/group create NAME` opens the new group, so `/group add` works next.
            self.open_group = None;
            self.show_room(id, look, out);
            out.notice(format!("#{name} created: /group add NAME adds a contact"));
        } else if is_new && self.focused_room().is_none() {
            self.panes.focused_mut().room = Some(id);
            out.layout();
            self.open_room(id, look, out);
        } else if self.visible(id) && self.room(id).is_some_and(|r| r.summary.unread > 0) {
            self.mark_read(id, out);
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

    fn on_message(&mut self, m: MessageView, look: &Look<'_>, out: &mut Out) {
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
            .filter(|p| {
                self.panes
                    .get(*p)
                    .is_some_and(|x| x.room == Some(room) && x.scroll > 0)
            })
            .map(|p| (p, self.pane_inner(look, p).0))
            .collect();
        for (p, w) in scrolled {
            let added = self.room(room).map_or(0, |r| {
                let n = r.timeline.messages.len();
                timeline::count_rows(&r.timeline, n.saturating_sub(1), &self.row_ctx(look, w))
            });
            self.panes.scroll_pane(p, added);
        }
        if !from_me && visible {
            out.engine(Command::MarkRead { room });
        }
        if mention {
            if self.bell_on_mention {
                out.effect(Effect::Bell);
            }
            if self.desktop {
                out.effect(Effect::Notify(format!("{sender} in {room_name}: {text}")));
            }
        }
    }

    fn mark_read(&mut self, room: RoomId, out: &mut Out) {
        if let Some(r) = self.room_mut(room) {
            r.summary.unread = 0;
            r.summary.mentions = 0;
        }
        out.engine(Command::MarkRead { room });
    }

    /// A room was put in a pane: load its history, place the unread marker, mark it read;
    /// with unread messages, the panes showing it land on the first of them.
    fn open_room(&mut self, room: RoomId, look: &Look<'_>, out: &mut Out) {
        let Some(r) = self.room_mut(room) else {
            return;
        };
        let unread = r.summary.unread;
        let mentions = r.summary.mentions;
        if !r.timeline.requested {
            r.timeline.requested = true;
            r.timeline.loading = true;
            r.timeline.pending_marker = unread;
            out.engine(Command::LoadHistory {
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
        self.settle(room, look, out);
    }

    /// Show `room` in the focused pane.
    pub(super) fn show_room(&mut self, room: RoomId, look: &Look<'_>, out: &mut Out) {
        let p = self.panes.focused_mut();
        if p.room != Some(room) {
            p.room = Some(room);
            p.scroll = 0;
            p.highlight = None;
            p.goal = None;
            out.layout();
        }
        self.open_room(room, look, out);
    }

    /// Open `room` in the focused pane at message `id`, marked; older pages are loaded
    /// until it is there.
    pub(super) fn jump_to(&mut self, room: RoomId, id: MessageId, look: &Look<'_>, out: &mut Out) {
        self.show_room(room, look, out);
        let p = self.panes.focused_mut();
        p.highlight = Some(id);
        p.goal = Some(Goal::Message(id));
        self.settle(room, look, out);
    }

    /// Rows of message `i` and below it (to the newest), in a timeline drawn `width` wide.
    fn rows_from(&self, room: RoomId, look: &Look<'_>, width: usize, i: usize) -> (usize, usize) {
        let Some(r) = self.room(room) else {
            return (0, 0);
        };
        let ctx = self.row_ctx(look, width);
        let tl = &r.timeline;
        let below = (i + 1..tl.messages.len())
            .map(|j| timeline::count_rows(tl, j, &ctx))
            .sum();
        (below, timeline::count_rows(tl, i, &ctx))
    }

    /// Ask for the page of `room`'s history before its oldest loaded message.
    fn load_older(&mut self, room: RoomId, out: &mut Out) {
        let Some(r) = self.room_mut(room) else {
            return;
        };
        r.timeline.loading = true;
        out.engine(Command::LoadHistory {
            room,
            before: r.timeline.messages.first().map(|m| m.id),
            limit: HISTORY_PAGE,
        });
    }

    /// Scroll the panes of `room` that wait for a goal, once its messages are there; ask for
    /// older pages while a sought message is not loaded yet.
    fn settle(&mut self, room: RoomId, look: &Look<'_>, out: &mut Out) {
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
            let (w, h) = self.pane_inner(look, p);
            let scroll = match goal {
                Goal::Unread => marker.map(|i| {
                    let (below, own) = self.rows_from(room, look, w, i);
                    (below + own).saturating_sub(h)
                }),
                Goal::Message(id) => {
                    let at = self
                        .room(room)
                        .and_then(|r| r.timeline.messages.iter().position(|m| m.id == id));
                    match at {
                        Some(i) => {
                            let (below, own) = self.rows_from(room, look, w, i);
                            Some((below + own / 2).saturating_sub(h / 2))
                        }
                        None if more => {
                            self.load_older(room, out);
                            return;
                        }
                        None => {
                            out.notice("that message is not in the history any more");
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

    /// Send a message to the focused room.
    ///
    /// # Errors
    /// No room is focused, or it is closed.
    pub(super) fn send(&mut self, text: String, out: &mut Out) -> Result<(), CommandError> {
        let room = self
            .focused_room()
            .ok_or(CommandError::NoCurrentRoom(Face::Tui))?;
        if self.room(room).is_some_and(|r| r.summary.closed) {
            return Err(CommandError::Closed);
        }
        let p = self.panes.focused_mut();
        p.scroll = 0;
        p.highlight = None;
        out.engine(Command::Send { room, text });
        Ok(())
    }

    /// Take a closed room off the room list; the panes showing it move on to the first
    /// listed room. Its name.
    ///
    /// # Errors
    /// The room is open (only a room left or closed by its admin can be hidden).
    pub(super) fn hide(
        &mut self,
        room: RoomId,
        look: &Look<'_>,
        out: &mut Out,
    ) -> Result<String, String> {
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
        out.layout();
        let next = self.listed_ids().first().copied();
        for (_, p) in self.panes.iter_mut() {
            if p.room == Some(room) {
                *p = Pane {
                    room: next,
                    ..Default::default()
                };
            }
        }
        if let Some(n) = next {
            self.open_room(n, look, out);
        }
        Ok(name)
    }

    // ----- keys -----

    /// Split the focused pane.
    pub(super) fn split(&mut self, dir: SplitDir, out: &mut Out) {
        self.panes.split(dir);
        out.layout();
    }

    /// Close the focused pane.
    ///
    /// # Errors
    /// It is the last one.
    pub(super) fn close_pane(&mut self, out: &mut Out) -> Result<(), &'static str> {
        if !self.panes.close() {
            return Err("the last pane stays open");
        }
        out.layout();
        Ok(())
    }

    /// Handle a key action about rooms, panes and scrolling; false when it is not one.
    pub(super) fn key(&mut self, a: KeyAction, look: &Look<'_>, out: &mut Out) -> bool {
        match a {
            KeyAction::PaneLeft => self.move_focus(Towards::Left, look, out),
            KeyAction::PaneDown => self.move_focus(Towards::Down, look, out),
            KeyAction::PaneUp => self.move_focus(Towards::Up, look, out),
            KeyAction::PaneRight => self.move_focus(Towards::Right, look, out),
            KeyAction::PaneNext => {
                self.panes.focus_next();
                out.layout();
            }
            KeyAction::Split => self.split(SplitDir::Stacked, out),
            KeyAction::VSplit => self.split(SplitDir::SideBySide, out),
            KeyAction::ClosePane => {
                if let Err(e) = self.close_pane(out) {
                    out.error(e);
                }
            }
            KeyAction::Grow | KeyAction::Shrink => {
                let d = if a == KeyAction::Grow { 5 } else { -5 };
                if self.panes.resize(d) {
                    out.layout();
                } else {
                    out.notice("only one pane: Ctrl-W s or v splits it");
                }
            }
            KeyAction::Equalize => {
                self.panes.equalize();
                out.layout();
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
                    self.show_room(ids[i], look, out);
                }
            }
            KeyAction::Room(n) => match self.listed_ids().get(usize::from(n).saturating_sub(1)) {
                Some(id) => self.show_room(*id, look, out),
                None => out.error(format!("no room {n}")),
            },
            KeyAction::NextActivity => self.next_activity(look, out),
            KeyAction::NextMention => self.jump_mention(true, look, out),
            KeyAction::PrevMention => self.jump_mention(false, look, out),
            KeyAction::PageUp | KeyAction::PageDown => {
                let (_, h) = self.pane_inner(look, self.panes.focus());
                let page = h.saturating_sub(1).max(1) as isize;
                let d = if a == KeyAction::PageUp { page } else { -page };
                self.scroll_by(d, look, out);
            }
            KeyAction::Top => self.scroll_by(isize::MAX / 2, look, out),
            KeyAction::Bottom => {
                let p = self.panes.focused_mut();
                p.scroll = 0;
                p.highlight = None;
            }
            _ => return false,
        }
        true
    }

    fn move_focus(&mut self, t: Towards, look: &Look<'_>, out: &mut Out) {
        if self.panes.focus_towards(t, look.area) {
            out.layout();
        }
    }

    /// Scroll the focused pane up (positive) or down by rows; ask for older history when
    /// scrolling past the oldest loaded message.
    fn scroll_by(&mut self, delta: isize, look: &Look<'_>, out: &mut Out) {
        let (w, h) = self.pane_inner(look, self.panes.focus());
        let Some(room) = self.focused_room() else {
            return;
        };
        let cur = self.panes.focused().scroll;
        let want = if delta >= 0 {
            cur.saturating_add(delta as usize)
        } else {
            cur.saturating_sub(delta.unsigned_abs())
        };
        let Some(r) = self.room(room) else {
            return;
        };
        let need = want.saturating_add(h).min(1 << 24);
        let (rows, exhausted) = timeline::tail_rows(&r.timeline, &self.row_ctx(look, w), need);
        let (total, more, loading) = (rows.len(), r.timeline.more, r.timeline.loading);
        let max = total.saturating_sub(h);
        self.panes.focused_mut().scroll = if exhausted { want.min(max) } else { want };
        if exhausted && delta > 0 && want > max && more && !loading {
            self.load_older(room, out);
            out.notice("loading older messages…");
        }
    }

    fn next_activity(&mut self, look: &Look<'_>, out: &mut Out) {
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
            Some(id) => self.show_room(id, look, out),
            None => out.notice("no activity"),
        }
    }

    fn jump_mention(&mut self, newer: bool, look: &Look<'_>, out: &mut Out) {
        let (w, _) = self.pane_inner(look, self.panes.focus());
        let Some(r) = self.focused_room().and_then(|r| self.room(r)) else {
            return;
        };
        let cur = self.panes.focused().scroll;
        let ctx = self.row_ctx(look, w);
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
            None => out.notice(if newer {
                "no newer mention"
            } else {
                "no older mention"
            }),
        }
    }

    /// The mouse: the wheel scrolls the pane under it, a click focuses a pane or opens the
    /// room clicked in the room list.
    pub(super) fn on_mouse(
        &mut self,
        m: MouseEvent,
        sidebar: Option<Rect>,
        look: &Look<'_>,
        out: &mut Out,
    ) {
        let pos = Position::new(m.column, m.row);
        let hit = self
            .panes
            .rects(look.area)
            .into_iter()
            .find(|(_, r)| r.contains(pos))
            .map(|(p, _)| p);
        let focus = |panes: &mut Panes, p: usize| {
            while panes.focus() != p {
                panes.focus_next();
            }
        };
        match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                if let Some(p) = hit {
                    focus(&mut self.panes, p);
                }
                let d = if m.kind == MouseEventKind::ScrollUp {
                    3
                } else {
                    -3
                };
                self.scroll_by(d, look, out);
            }
            MouseEventKind::Down(_) => {
                if let Some(p) = hit {
                    focus(&mut self.panes, p);
                } else if let Some(s) = sidebar
                    && s.contains(pos)
                {
                    let i = usize::from(m.row.saturating_sub(s.y + 1));
                    if let Some(id) = self.listed_ids().get(i).copied() {
                        self.show_room(id, look, out);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Delivery;
    use crate::ui::tests::{msg, room};

    fn summary(id: i64, name: &str, kind: RoomKind, unread: u32) -> RoomSummary {
        room(id, name, kind, unread, 0)
    }

    fn message(id: i64, room: i64, sender: &str, text: &str) -> MessageView {
        msg(id, room, sender, text, 0)
    }

    /// A chat with alice (1:1, room 1), bob (1:1, room 2, two unread) and team (group,
    /// room 3), its pane on alice; the effects of getting there dropped.
    fn chat(bell: bool, desktop: bool) -> Chat {
        let mut c = Chat::new(Panes::default(), bell, desktop);
        on(
            &mut c,
            Event::Ready {
                me: "me".into(),
                rooms: vec![
                    summary(1, "alice", RoomKind::Direct(ContactId(1)), 0),
                    summary(2, "bob", RoomKind::Direct(ContactId(2)), 2),
                    summary(3, "team", RoomKind::Group, 0),
                ],
                contacts: vec![(ContactId(1), "alice".into()), (ContactId(2), "bob".into())],
            },
        );
        c
    }

    fn with_look<T>(f: impl FnOnce(&Look<'_>) -> T) -> T {
        let theme = Theme::default_dark();
        f(&Look {
            theme: &theme,
            tz: 0,
            area: Rect::new(0, 0, 60, 12),
        })
    }

    fn on(c: &mut Chat, ev: Event) -> Out {
        let mut out = Out::default();
        with_look(|look| c.on_event(ev, look, &mut out));
        out
    }

    fn key(c: &mut Chat, a: KeyAction) -> (bool, Out) {
        let mut out = Out::default();
        let handled = with_look(|look| c.key(a, look, &mut out));
        (handled, out)
    }

    fn commands(out: &Out) -> Vec<Command> {
        out.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Engine(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn ready_fills_the_pane_and_loads_its_history() {
        let mut c = Chat::new(Panes::default(), true, false);
        let out = on(
            &mut c,
            Event::Ready {
                me: "me".into(),
                rooms: vec![summary(5, "zed", RoomKind::Direct(ContactId(9)), 2)],
                contacts: vec![(ContactId(9), "zed".into())],
            },
        );
        assert!(c.is_ready());
        assert_eq!(c.focused_room(), Some(RoomId(5)));
        assert_eq!(
            commands(&out),
            vec![
                Command::LoadHistory {
                    room: RoomId(5),
                    before: None,
                    limit: HISTORY_PAGE
                },
                Command::MarkRead { room: RoomId(5) }
            ]
        );
    }

    #[test]
    fn messages_count_as_unread_elsewhere_and_are_read_here() {
        let mut c = chat(true, true);
        let out = on(&mut c, Event::Message(message(10, 1, "alice", "hi")));
        assert_eq!(commands(&out), vec![Command::MarkRead { room: RoomId(1) }]);
        let out = on(&mut c, Event::Message(message(11, 3, "alice", "hey me!")));
        assert!(commands(&out).is_empty(), "team is not shown");
        let team = c
            .room(RoomId(3))
            .map(|r| (r.summary.unread, r.summary.mentions));
        assert_eq!(team, Some((1, 1)));
        assert!(out.effects.contains(&Effect::Bell));
        assert!(
            out.effects
                .contains(&Effect::Notify("alice in team: hey me!".into()))
        );
        // My own messages are neither unread nor mentions.
        let out = on(&mut c, Event::Message(message(12, 3, "me", "me too")));
        assert!(out.effects.is_empty(), "{:?}", out.effects);
        let out = on(
            &mut c,
            Event::Delivery {
                room: RoomId(3),
                id: MessageId(12),
                state: Delivery::Sent,
            },
        );
        assert!(out.effects.is_empty());
        let state = c
            .room(RoomId(3))
            .and_then(|r| r.timeline.messages.last())
            .and_then(|m| m.delivery);
        assert_eq!(state, Some(Delivery::Sent));
        // Without the bell and over SSH: neither.
        let mut quiet = chat(false, false);
        let out = on(&mut quiet, Event::Message(message(13, 3, "alice", "me?")));
        assert!(out.effects.is_empty(), "{:?}", out.effects);
    }

    #[test]
    fn a_created_group_opens_and_other_new_rooms_do_not_take_the_pane() {
        let mut c = chat(true, false);
        c.expect_group("ops ");
        let out = on(&mut c, Event::Room(summary(9, "other", RoomKind::Group, 0)));
        assert_eq!(c.focused_room(), Some(RoomId(1)));
        assert!(out.flash.is_none());
        let out = on(&mut c, Event::Room(summary(10, "ops", RoomKind::Group, 0)));
        assert_eq!(c.focused_room(), Some(RoomId(10)));
        assert!(out.layout_changed);
        assert!(out.flash.is_some_and(|f| f.text.contains("/group add")));
        // Closed: said once, with what can be done.
        let closed = RoomSummary {
            closed: true,
            ..summary(10, "ops", RoomKind::Group, 0)
        };
        let out = on(&mut c, Event::Room(closed.clone()));
        assert!(out.flash.is_some_and(|f| f.text.contains("/hide")));
        assert!(on(&mut c, Event::Room(closed)).flash.is_none());
    }

    #[test]
    fn contacts_come_are_renamed_and_go() {
        let mut c = chat(true, false);
        on(
            &mut c,
            Event::Contact {
                id: ContactId(2),
                name: "bobby".into(),
            },
        );
        on(
            &mut c,
            Event::Contact {
                id: ContactId(7),
                name: "carol".into(),
            },
        );
        assert_eq!(c.resolver().contact("bobby"), Ok(ContactId(2)));
        assert_eq!(c.resolver().contact("car"), Ok(ContactId(7)));
        on(
            &mut c,
            Event::ContactRemoved {
                id: ContactId(7),
                name: "carol".into(),
            },
        );
        assert!(c.resolver().contact("carol").is_err());
    }

    #[test]
    fn sending_needs_an_open_room() {
        let mut c = Chat::new(Panes::default(), true, false);
        let mut out = Out::default();
        assert_eq!(
            c.send("hi".into(), &mut out),
            Err(CommandError::NoCurrentRoom(Face::Tui))
        );
        let mut c = chat(true, false);
        c.panes.focused_mut().scroll = 5;
        c.send("hi".into(), &mut out).ok();
        assert_eq!(
            commands(&out),
            vec![Command::Send {
                room: RoomId(1),
                text: "hi".into()
            }]
        );
        assert_eq!(c.panes.focused().scroll, 0, "back to the newest");
        on(
            &mut c,
            Event::Room(RoomSummary {
                closed: true,
                ..summary(1, "alice", RoomKind::Direct(ContactId(1)), 0)
            }),
        );
        assert_eq!(c.send("hi".into(), &mut out), Err(CommandError::Closed));
    }

    #[test]
    fn only_closed_rooms_hide_and_the_pane_moves_on() {
        let mut c = chat(true, false);
        let mut out = Out::default();
        let r = with_look(|look| c.hide(RoomId(1), look, &mut out));
        assert!(r.is_err_and(|e| e.contains("is open")));
        on(
            &mut c,
            Event::Room(RoomSummary {
                closed: true,
                ..summary(1, "alice", RoomKind::Direct(ContactId(1)), 0)
            }),
        );
        let mut out = Out::default();
        let r = with_look(|look| c.hide(RoomId(1), look, &mut out));
        assert_eq!(r, Ok("alice".into()));
        assert!(out.layout_changed);
        assert_eq!(c.focused_room(), Some(RoomId(2)), "the first listed room");
        assert_eq!(c.listed().count(), 2);
        assert!(c.resolver().room("alice").is_err(), "names what is listed");
    }

    #[test]
    fn room_and_pane_keys() {
        let mut c = chat(true, false);
        assert!(key(&mut c, KeyAction::RoomPrev).0);
        assert_eq!(c.focused_room(), Some(RoomId(3)), "wraps around");
        key(&mut c, KeyAction::RoomNext);
        assert_eq!(c.focused_room(), Some(RoomId(1)));
        let (_, out) = key(&mut c, KeyAction::NextActivity);
        assert_eq!(c.focused_room(), Some(RoomId(2)), "bob has unread messages");
        assert!(commands(&out).contains(&Command::MarkRead { room: RoomId(2) }));
        let (_, out) = key(&mut c, KeyAction::Room(9));
        assert!(out.flash.is_some_and(|f| f.error && f.text == "no room 9"));
        let (_, out) = key(&mut c, KeyAction::ClosePane);
        assert!(out.flash.is_some_and(|f| f.error), "the last pane stays");
        let (_, out) = key(&mut c, KeyAction::Grow);
        assert!(out.flash.is_some_and(|f| f.text.contains("only one pane")));
        let (_, out) = key(&mut c, KeyAction::VSplit);
        assert!(out.layout_changed);
        assert_eq!(c.panes.len(), 2);
        let (_, out) = key(&mut c, KeyAction::PaneLeft);
        assert!(out.layout_changed);
        assert_eq!(c.panes.focus(), 0);
        assert!(!key(&mut c, KeyAction::Help).0, "not the chat's");
        assert!(!key(&mut c, KeyAction::Submit).0);
    }

    #[test]
    fn scrolling_past_the_oldest_asks_once_for_older_history() {
        let mut c = chat(true, false);
        on(
            &mut c,
            Event::History {
                room: RoomId(1),
                messages: (1..=30)
                    .map(|i| message(i, 1, "alice", &format!("line {i}")))
                    .collect(),
                more: true,
            },
        );
        let (_, out) = key(&mut c, KeyAction::PageUp);
        assert!(commands(&out).is_empty(), "there is more loaded to show");
        assert!(c.panes.focused().scroll > 0);
        let (_, out) = key(&mut c, KeyAction::Top);
        assert_eq!(
            commands(&out),
            vec![Command::LoadHistory {
                room: RoomId(1),
                before: Some(MessageId(1)),
                limit: HISTORY_PAGE
            }]
        );
        let (_, out) = key(&mut c, KeyAction::Top);
        assert!(commands(&out).is_empty(), "asked once until it comes");
        key(&mut c, KeyAction::Bottom);
        assert_eq!(c.panes.focused().scroll, 0);
    }

    #[test]
    fn a_click_in_the_room_list_opens_the_room() {
        let mut c = chat(true, false);
        let sidebar = Rect::new(0, 0, 16, 12);
        let click = MouseEvent {
            kind: MouseEventKind::Down(ratatui::crossterm::event::MouseButton::Left),
            column: 3,
            row: 3,
            modifiers: ratatui::crossterm::event::KeyModifiers::NONE,
        };
        let mut out = Out::default();
        let theme = Theme::default_dark();
        let look = Look {
            theme: &theme,
            tz: 0,
            area: Rect::new(16, 0, 44, 12),
        };
        c.on_mouse(click, Some(sidebar), &look, &mut out);
        assert_eq!(c.focused_room(), Some(RoomId(3)), "the third row");
    }
}

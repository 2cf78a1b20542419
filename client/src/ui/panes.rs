//! Split panes: a binary tree of splits with one room per leaf, focus movement by
//! direction, resizing, and a layout file that survives restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ratatui::layout::Rect;
use serde::{Deserialize, Serialize};

use crate::api::{MessageId, RoomId};

/// How a split divides its area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitDir {
    /// One pane above the other (`/split`, Ctrl-W s).
    Stacked,
    /// Side by side (`/vsplit`, Ctrl-W v).
    SideBySide,
}

/// A node of the layout tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(super) enum Node {
    /// One pane.
    Leaf {
        /// The pane's id.
        pane: usize,
    },
    /// Two parts.
    Split {
        /// Which way.
        dir: SplitDir,
        /// The first part's share, in percent.
        percent: u16,
        /// Top or left.
        first: Box<Node>,
        /// Bottom or right.
        second: Box<Node>,
    },
}

/// Where a pane scrolls once its room's messages are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// The first unread message, at the top of the pane.
    Unread,
    /// This message, in the middle of the pane and marked.
    Message(MessageId),
}

/// What a pane shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pane {
    /// The room, if any.
    pub room: Option<RoomId>,
    /// Rows scrolled up from the newest message (0: following new messages).
    pub scroll: usize,
    /// The message marked in this pane (a search result or a mention jumped to).
    pub highlight: Option<MessageId>,
    /// Where to scroll once the messages are there.
    pub goal: Option<Goal>,
}

/// A direction to move the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Towards {
    /// Left.
    Left,
    /// Down.
    Down,
    /// Up.
    Up,
    /// Right.
    Right,
}

/// The layout: the tree, each pane's state, and which pane has the focus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panes {
    root: Node,
    panes: BTreeMap<usize, Pane>,
    focus: usize,
    next: usize,
    hidden: BTreeSet<RoomId>,
}

/// The layout file's contents.
#[derive(Debug, Serialize, Deserialize)]
struct LayoutFile {
    focus: usize,
    root: Node,
    #[serde(default)]
    rooms: BTreeMap<String, i64>,
    /// Closed rooms taken off the room list.
    #[serde(default)]
    hidden: Vec<i64>,
}

impl Default for Panes {
    fn default() -> Self {
        let mut panes = BTreeMap::new();
        panes.insert(0, Pane::default());
        Panes {
            root: Node::Leaf { pane: 0 },
            panes,
            focus: 0,
            next: 1,
            hidden: BTreeSet::new(),
        }
    }
}

fn leaves(node: &Node, out: &mut Vec<usize>) {
    match node {
        Node::Leaf { pane } => out.push(*pane),
        Node::Split { first, second, .. } => {
            leaves(first, out);
            leaves(second, out);
        }
    }
}

fn split_rect(area: Rect, dir: SplitDir, percent: u16) -> (Rect, Rect) {
    // The first part takes `percent` of the length along the split, at least one cell and
    // at most all but one.
    let cut = |len: u16| {
        let n = (u32::from(len) * u32::from(percent) / 100) as u16;
        n.clamp(1.min(len), len.saturating_sub(1).max(1))
    };
    match dir {
        SplitDir::Stacked => {
            let h = cut(area.height);
            (
                Rect { height: h, ..area },
                Rect {
                    y: area.y + h,
                    height: area.height.saturating_sub(h),
                    ..area
                },
            )
        }
        SplitDir::SideBySide => {
            let w = cut(area.width);
            (
                Rect { width: w, ..area },
                Rect {
                    x: area.x + w,
                    width: area.width.saturating_sub(w),
                    ..area
                },
            )
        }
    }
}

fn rects(node: &Node, area: Rect, out: &mut Vec<(usize, Rect)>) {
    match node {
        Node::Leaf { pane } => out.push((*pane, area)),
        Node::Split {
            dir,
            percent,
            first,
            second,
        } => {
            let (a, b) = split_rect(area, *dir, *percent);
            rects(first, a, out);
            rects(second, b, out);
        }
    }
}

/// Replace the leaf `target` by `with`; true when found.
fn replace_leaf(node: &mut Node, target: usize, with: &mut Option<Node>) -> bool {
    match node {
        Node::Leaf { pane } if *pane == target => {
            if let Some(w) = with.take() {
                *node = w;
            }
            true
        }
        Node::Leaf { .. } => false,
        Node::Split { first, second, .. } => {
            replace_leaf(first, target, with) || replace_leaf(second, target, with)
        }
    }
}

/// Remove the leaf `target`, its sibling taking the parent's place; true when done.
fn remove_leaf(node: &mut Node, target: usize) -> bool {
    let Node::Split { first, second, .. } = node else {
        return false;
    };
    if matches!(**first, Node::Leaf { pane } if pane == target) {
        *node = (**second).clone();
        return true;
    }
    if matches!(**second, Node::Leaf { pane } if pane == target) {
        *node = (**first).clone();
        return true;
    }
    remove_leaf(first, target) || remove_leaf(second, target)
}

fn contains(node: &Node, target: usize) -> bool {
    match node {
        Node::Leaf { pane } => *pane == target,
        Node::Split { first, second, .. } => contains(first, target) || contains(second, target),
    }
}

/// Change the share of the innermost split around `target` in `dir`... or any direction
/// when `dir` is `None`; true when a split was found.
fn resize(node: &mut Node, target: usize, delta: i16) -> bool {
    let Node::Split {
        percent,
        first,
        second,
        ..
    } = node
    else {
        return false;
    };
    if resize(first, target, delta) || resize(second, target, delta) {
        return true;
    }
    let sign = if contains(first, target) {
        1
    } else if contains(second, target) {
        -1
    } else {
        return false;
    };
    *percent = (i32::from(*percent) + i32::from(delta) * sign).clamp(10, 90) as u16;
    true
}

fn equalize(node: &mut Node) {
    if let Node::Split {
        percent,
        first,
        second,
        ..
    } = node
    {
        *percent = 50;
        equalize(first);
        equalize(second);
    }
}

impl Panes {
    /// The focused pane's id.
    pub fn focus(&self) -> usize {
        self.focus
    }

    /// The focused pane.
    pub fn focused(&self) -> &Pane {
        self.panes.get(&self.focus).unwrap_or(&EMPTY)
    }

    /// The focused pane, to change it.
    pub fn focused_mut(&mut self) -> &mut Pane {
        self.panes.entry(self.focus).or_default()
    }

    /// A pane by id.
    pub fn get(&self, id: usize) -> Option<&Pane> {
        self.panes.get(&id)
    }

    /// Every pane, by id.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&usize, &mut Pane)> {
        self.panes.iter_mut()
    }

    /// How many panes there are.
    pub fn len(&self) -> usize {
        self.panes.len()
    }

    /// Whether there are no panes (never: the last one cannot be closed).
    pub fn is_empty(&self) -> bool {
        self.panes.is_empty()
    }

    /// Every pane's area within `area`, in tree order.
    pub fn rects(&self, area: Rect) -> Vec<(usize, Rect)> {
        let mut out = Vec::new();
        rects(&self.root, area, &mut out);
        out
    }

    /// Split the focused pane; the new pane shows the same room and takes the focus.
    pub fn split(&mut self, dir: SplitDir) {
        let id = self.next;
        self.next += 1;
        let room = self.focused().room;
        self.panes.insert(
            id,
            Pane {
                room,
                ..Pane::default()
            },
        );
        let mut with = Some(Node::Split {
            dir,
            percent: 50,
            first: Box::new(Node::Leaf { pane: self.focus }),
            second: Box::new(Node::Leaf { pane: id }),
        });
        replace_leaf(&mut self.root, self.focus, &mut with);
        self.focus = id;
    }

    /// Close the focused pane; false when it is the last one.
    pub fn close(&mut self) -> bool {
        if self.panes.len() <= 1 {
            return false;
        }
        let order = self.order();
        let at = order.iter().position(|p| *p == self.focus).unwrap_or(0);
        if !remove_leaf(&mut self.root, self.focus) {
            return false;
        }
        self.panes.remove(&self.focus);
        let order = self.order();
        self.focus = order[at.saturating_sub(1).min(order.len() - 1)];
        true
    }

    /// Scroll a pane up by `rows` (to keep its view when rows arrive below).
    pub fn scroll_pane(&mut self, pane: usize, rows: usize) {
        if let Some(p) = self.panes.get_mut(&pane) {
            p.scroll = p.scroll.saturating_add(rows);
        }
    }

    /// Every pane id, in tree order.
    pub fn ids(&self) -> Vec<usize> {
        self.order()
    }

    fn order(&self) -> Vec<usize> {
        let mut out = Vec::new();
        leaves(&self.root, &mut out);
        out
    }

    /// Focus the next pane in tree order.
    pub fn focus_next(&mut self) {
        let order = self.order();
        if let Some(i) = order.iter().position(|p| *p == self.focus) {
            self.focus = order[(i + 1) % order.len()];
        }
    }

    /// Focus the nearest pane in a direction, as laid out in `area`.
    pub fn focus_towards(&mut self, towards: Towards, area: Rect) -> bool {
        let rs = self.rects(area);
        let Some((_, cur)) = rs.iter().find(|(p, _)| *p == self.focus).copied() else {
            return false;
        };
        let overlaps = |a0: u16, a1: u16, b0: u16, b1: u16| a0 < b1 && b0 < a1;
        let best = rs
            .iter()
            .filter(|(p, _)| *p != self.focus)
            .filter_map(|(p, r)| {
                let d = match towards {
                    Towards::Left if r.right() <= cur.x => cur.x - r.right(),
                    Towards::Right if r.x >= cur.right() => r.x - cur.right(),
                    Towards::Up if r.bottom() <= cur.y => cur.y - r.bottom(),
                    Towards::Down if r.y >= cur.bottom() => r.y - cur.bottom(),
                    _ => return None,
                };
                let ok = match towards {
                    Towards::Left | Towards::Right => {
                        overlaps(r.y, r.bottom(), cur.y, cur.bottom())
                    }
                    Towards::Up | Towards::Down => overlaps(r.x, r.right(), cur.x, cur.right()),
                };
                ok.then_some((d, *p))
            })
            .min();
        match best {
            Some((_, p)) => {
                self.focus = p;
                true
            }
            None => false,
        }
    }

    /// Grow (positive) or shrink the focused pane by `delta` percent of its split.
    pub fn resize(&mut self, delta: i16) -> bool {
        resize(&mut self.root, self.focus, delta)
    }

    /// Make every split even.
    pub fn equalize(&mut self) {
        equalize(&mut self.root);
    }

    /// The layout as TOML (tree, focus and each pane's room).
    ///
    /// # Errors
    /// When it cannot be serialised (it always can).
    pub fn to_toml(&self) -> Result<String, String> {
        let file = LayoutFile {
            focus: self.focus,
            root: self.root.clone(),
            rooms: self
                .panes
                .iter()
                .filter_map(|(id, p)| p.room.map(|r| (id.to_string(), r.0)))
                .collect(),
            hidden: self.hidden.iter().map(|r| r.0).collect(),
        };
        toml::to_string(&file).map_err(|e| e.to_string())
    }

    /// Read a layout written by [`Panes::to_toml`].
    ///
    /// # Errors
    /// When the text is not a valid layout.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: LayoutFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut ids = Vec::new();
        leaves(&file.root, &mut ids);
        let mut seen = ids.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != ids.len() || !ids.contains(&file.focus) {
            return Err("layout: pane ids repeat or the focus is not a pane".into());
        }
        let panes = ids
            .iter()
            .map(|id| {
                let room = file.rooms.get(&id.to_string()).map(|r| RoomId(*r));
                (
                    *id,
                    Pane {
                        room,
                        ..Pane::default()
                    },
                )
            })
            .collect();
        Ok(Panes {
            root: file.root,
            panes,
            focus: file.focus,
            next: seen.last().map_or(0, |m| m + 1),
            hidden: file.hidden.into_iter().map(RoomId).collect(),
        })
    }

    /// Take a room off the room list (it stays in the store).
    pub fn hide(&mut self, room: RoomId) {
        self.hidden.insert(room);
    }

    /// Put a room back on the room list; true when it was hidden.
    pub fn unhide(&mut self, room: RoomId) -> bool {
        self.hidden.remove(&room)
    }

    /// Whether a room is off the room list.
    pub fn is_hidden(&self, room: RoomId) -> bool {
        self.hidden.contains(&room)
    }

    /// Save the layout to a file (creating its folder).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = self.to_toml()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Load a layout file, if there is a good one.
    pub fn load(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        Self::from_toml(&text).ok()
    }
}

static EMPTY: Pane = Pane {
    room: None,
    scroll: 0,
    highlight: None,
    goal: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn area() -> Rect {
        Rect::new(0, 0, 100, 40)
    }

    #[test]
    fn split_focus_move_and_close() {
        let mut p = Panes::default();
        p.focused_mut().room = Some(RoomId(7));
        p.split(SplitDir::SideBySide);
        assert_eq!(p.focus(), 1);
        assert_eq!(p.focused().room, Some(RoomId(7)));
        p.split(SplitDir::Stacked);
        assert_eq!(p.focus(), 2);
        // 0 | (1 / 2)
        assert!(p.focus_towards(Towards::Up, area()));
        assert_eq!(p.focus(), 1);
        assert!(p.focus_towards(Towards::Left, area()));
        assert_eq!(p.focus(), 0);
        assert!(!p.focus_towards(Towards::Left, area()));
        assert!(p.focus_towards(Towards::Right, area()));
        assert!(p.focus_towards(Towards::Down, area()));
        assert_eq!(p.focus(), 2);
        assert!(p.close());
        assert_eq!(p.len(), 2);
        assert!(p.close());
        assert!(!p.close());
        assert_eq!(p.rects(area()), vec![(0, area())]);
    }

    #[test]
    fn resize_and_equalize() {
        let mut p = Panes::default();
        p.split(SplitDir::SideBySide);
        assert!(p.resize(10));
        let r = p.rects(area());
        assert_eq!(r[1].1.width, 60);
        p.equalize();
        assert_eq!(p.rects(area())[1].1.width, 50);
        let mut single = Panes::default();
        assert!(!single.resize(10));
    }

    #[test]
    fn layout_round_trips() -> Result<(), String> {
        let mut p = Panes::default();
        p.focused_mut().room = Some(RoomId(3));
        p.split(SplitDir::Stacked);
        p.focused_mut().room = Some(RoomId(4));
        p.split(SplitDir::SideBySide);
        p.hide(RoomId(9));
        let text = p.to_toml()?;
        let q = Panes::from_toml(&text)?;
        assert_eq!(q.rects(area()), p.rects(area()));
        assert_eq!(q.focus(), p.focus());
        assert_eq!(q.get(0).and_then(|x| x.room), Some(RoomId(3)));
        assert!(q.is_hidden(RoomId(9)) && !q.is_hidden(RoomId(3)));
        assert!(Panes::from_toml("focus = 9\n[root]\nkind = \"leaf\"\npane = 0\n").is_err());
        Ok(())
    }
}

//! Earlier input, recalled with Up and Down as in a shell, one list per room. Kept in
//! memory only: nothing typed is written to disk.

use std::collections::HashMap;

use crate::api::RoomId;

/// Entries kept per room.
const KEEP: usize = 100;

/// What was typed in each room, and where Up and Down are in it.
#[derive(Debug, Default)]
pub(super) struct Recall {
    rooms: HashMap<Option<RoomId>, Vec<String>>,
    /// While browsing: the room, how far back (1 = the newest entry), and the text that
    /// was in the input before the first Up.
    at: Option<(Option<RoomId>, usize, String)>,
}

impl Recall {
    /// Remember a line submitted in `room` (not twice in a row).
    pub(super) fn push(&mut self, room: Option<RoomId>, text: &str) {
        self.at = None;
        if text.trim().is_empty() {
            return;
        }
        let list = self.rooms.entry(room).or_default();
        if list.last().is_some_and(|l| l == text) {
            return;
        }
        list.push(text.to_string());
        if list.len() > KEEP {
            list.remove(0);
        }
    }

    /// The entry before the one shown (Up), given the input's text now; `None` at the
    /// oldest.
    pub(super) fn older(&mut self, room: Option<RoomId>, current: &str) -> Option<String> {
        let list = self.rooms.get(&room)?;
        let (back, draft) = match self.at.take() {
            Some((r, back, draft)) if r == room => (back, draft),
            _ => (0, current.to_string()),
        };
        let want = back + 1;
        if want > list.len() {
            self.at = Some((room, back, draft));
            return None;
        }
        let text = list[list.len() - want].clone();
        self.at = Some((room, want, draft));
        Some(text)
    }

    /// The entry after the one shown (Down); past the newest, the text typed before the
    /// first Up. `None` when not browsing.
    pub(super) fn newer(&mut self, room: Option<RoomId>) -> Option<String> {
        let (r, back, draft) = self.at.take()?;
        if r != room {
            return None;
        }
        if back <= 1 {
            return Some(draft);
        }
        let list = self.rooms.get(&room)?;
        let text = list.get(list.len().checked_sub(back - 1)?)?.clone();
        self.at = Some((room, back - 1, draft));
        Some(text)
    }

    /// Whether Up has been pressed since the last line was submitted or typed.
    pub(super) fn browsing(&self) -> bool {
        self.at.is_some()
    }

    /// Stop browsing (the user edits the recalled text).
    pub(super) fn stop(&mut self) {
        self.at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_and_down_walk_one_room_and_restore_the_draft() {
        let a = Some(RoomId(1));
        let b = Some(RoomId(2));
        let mut r = Recall::default();
        r.push(a, "one");
        r.push(a, "two");
        r.push(a, "two");
        r.push(b, "elsewhere");
        assert_eq!(r.older(a, "draft").as_deref(), Some("two"));
        assert_eq!(r.older(a, "two").as_deref(), Some("one"));
        assert_eq!(r.older(a, "one"), None);
        assert_eq!(r.newer(a).as_deref(), Some("two"));
        assert_eq!(r.newer(a).as_deref(), Some("draft"));
        assert_eq!(r.newer(a), None);
        assert_eq!(r.older(b, "").as_deref(), Some("elsewhere"));
        assert_eq!(r.older(Some(RoomId(3)), ""), None);
    }
}

//! Key bindings: what each key does, rebindable from a TOML file.
//!
//! ```toml
//! # ~/.config/hum/keys.toml
//! pane_prefix = "ctrl-w"      # the key that starts a pane command
//! [keys]                      # keys anywhere
//! "ctrl-n" = "room-next"
//! "alt-j" = "none"            # unbind
//! [pane]                      # keys after the pane prefix
//! "h" = "pane-left"
//! ```
//!
//! Key names: modifiers `ctrl-`, `alt-`, `shift-` before a character or one of
//! `enter esc tab backtab backspace delete insert home end pageup pagedown up down left
//! right space f1`..`f12`.

use std::collections::HashMap;
use std::path::Path;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

/// Something a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAction {
    /// Show or hide the help overlay.
    Help,
    /// Send the input (or run its command).
    Submit,
    /// Insert a newline into the input.
    Newline,
    /// Complete a command, contact or room name.
    Complete,
    /// Close an overlay, cancel search or a pane prefix.
    Cancel,
    /// Clear the input; twice on an empty input quits.
    Interrupt,
    /// Start a pane command (the next key says which).
    PanePrefix,
    /// Focus the pane to the left.
    PaneLeft,
    /// Focus the pane below.
    PaneDown,
    /// Focus the pane above.
    PaneUp,
    /// Focus the pane to the right.
    PaneRight,
    /// Focus the next pane.
    PaneNext,
    /// Split the focused pane, one above the other.
    Split,
    /// Split the focused pane, side by side.
    VSplit,
    /// Close the focused pane.
    ClosePane,
    /// Give the focused pane more room.
    Grow,
    /// Give the focused pane less room.
    Shrink,
    /// Make every split even.
    Equalize,
    /// Show the next room in the focused pane.
    RoomNext,
    /// Show the previous room in the focused pane.
    RoomPrev,
    /// Show room number N (1-based) in the focused pane.
    Room(u8),
    /// Go to the next room with activity (mentions first).
    NextActivity,
    /// Scroll to the next message that mentions this profile.
    NextMention,
    /// Scroll to the previous message that mentions this profile.
    PrevMention,
    /// Scroll up a page.
    PageUp,
    /// Scroll down a page.
    PageDown,
    /// Scroll to the oldest loaded message.
    Top,
    /// Scroll to the newest message.
    Bottom,
    /// Search the focused room.
    Search,
}

impl KeyAction {
    /// The action's name in a keymap file.
    pub fn name(self) -> String {
        match self {
            KeyAction::Help => "help".into(),
            KeyAction::Submit => "submit".into(),
            KeyAction::Newline => "newline".into(),
            KeyAction::Complete => "complete".into(),
            KeyAction::Cancel => "cancel".into(),
            KeyAction::Interrupt => "interrupt".into(),
            KeyAction::PanePrefix => "pane-prefix".into(),
            KeyAction::PaneLeft => "pane-left".into(),
            KeyAction::PaneDown => "pane-down".into(),
            KeyAction::PaneUp => "pane-up".into(),
            KeyAction::PaneRight => "pane-right".into(),
            KeyAction::PaneNext => "pane-next".into(),
            KeyAction::Split => "split".into(),
            KeyAction::VSplit => "vsplit".into(),
            KeyAction::ClosePane => "close-pane".into(),
            KeyAction::Grow => "grow".into(),
            KeyAction::Shrink => "shrink".into(),
            KeyAction::Equalize => "equalize".into(),
            KeyAction::RoomNext => "room-next".into(),
            KeyAction::RoomPrev => "room-prev".into(),
            KeyAction::Room(n) => format!("room-{n}"),
            KeyAction::NextActivity => "next-activity".into(),
            KeyAction::NextMention => "next-mention".into(),
            KeyAction::PrevMention => "prev-mention".into(),
            KeyAction::PageUp => "page-up".into(),
            KeyAction::PageDown => "page-down".into(),
            KeyAction::Top => "top".into(),
            KeyAction::Bottom => "bottom".into(),
            KeyAction::Search => "search".into(),
        }
    }

    /// What the action does, for the help overlay.
    pub fn describe(self) -> String {
        match self {
            KeyAction::Help => "help (this screen)".into(),
            KeyAction::Submit => "send the message or run the command".into(),
            KeyAction::Newline => "newline in the message".into(),
            KeyAction::Complete => "complete command, contact or room".into(),
            KeyAction::Cancel => "close overlay / cancel".into(),
            KeyAction::Interrupt => "clear input (twice: quit)".into(),
            KeyAction::PanePrefix => "pane command prefix".into(),
            KeyAction::PaneLeft => "focus pane left".into(),
            KeyAction::PaneDown => "focus pane below".into(),
            KeyAction::PaneUp => "focus pane above".into(),
            KeyAction::PaneRight => "focus pane right".into(),
            KeyAction::PaneNext => "focus next pane".into(),
            KeyAction::Split => "split pane (stacked)".into(),
            KeyAction::VSplit => "split pane (side by side)".into(),
            KeyAction::ClosePane => "close pane".into(),
            KeyAction::Grow => "grow pane".into(),
            KeyAction::Shrink => "shrink pane".into(),
            KeyAction::Equalize => "equal pane sizes".into(),
            KeyAction::RoomNext => "next room".into(),
            KeyAction::RoomPrev => "previous room".into(),
            KeyAction::Room(n) => format!("room {n}"),
            KeyAction::NextActivity => "next room with activity".into(),
            KeyAction::NextMention => "next mention".into(),
            KeyAction::PrevMention => "previous mention".into(),
            KeyAction::PageUp => "scroll up".into(),
            KeyAction::PageDown => "scroll down".into(),
            KeyAction::Top => "oldest loaded message".into(),
            KeyAction::Bottom => "newest message".into(),
            KeyAction::Search => "search this room".into(),
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        if let Some(n) = s.strip_prefix("room-").and_then(|n| n.parse::<u8>().ok()) {
            return (1..=9).contains(&n).then_some(KeyAction::Room(n));
        }
        ALL_ACTIONS.iter().copied().find(|a| a.name() == s)
    }
}

const ALL_ACTIONS: [KeyAction; 28] = [
    KeyAction::Help,
    KeyAction::Submit,
    KeyAction::Newline,
    KeyAction::Complete,
    KeyAction::Cancel,
    KeyAction::Interrupt,
    KeyAction::PanePrefix,
    KeyAction::PaneLeft,
    KeyAction::PaneDown,
    KeyAction::PaneUp,
    KeyAction::PaneRight,
    KeyAction::PaneNext,
    KeyAction::Split,
    KeyAction::VSplit,
    KeyAction::ClosePane,
    KeyAction::Grow,
    KeyAction::Shrink,
    KeyAction::Equalize,
    KeyAction::RoomNext,
    KeyAction::RoomPrev,
    KeyAction::NextActivity,
    KeyAction::NextMention,
    KeyAction::PrevMention,
    KeyAction::PageUp,
    KeyAction::PageDown,
    KeyAction::Top,
    KeyAction::Bottom,
    KeyAction::Search,
];

/// A key with its modifiers, as bindings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Ctrl, Alt, Shift (Shift only for non-character keys).
    pub mods: KeyModifiers,
}

impl Key {
    /// Normalise a terminal key event: characters carry their case, not Shift.
    pub fn from_event(ev: &KeyEvent) -> Self {
        let mut mods =
            ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match ev.code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            c => c,
        };
        Key { code, mods }
    }

    /// Parse a key name such as `ctrl-w`, `alt-1`, `shift-enter`, `f1`, `?`.
    ///
    /// # Errors
    /// When the name is not a key.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if lower.len() > 1 && lower.starts_with("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[5..];
            } else if lower.len() > 1 && lower.starts_with("alt-") {
                mods |= KeyModifiers::ALT;
                rest = &rest[4..];
            } else if lower.len() > 1 && lower.starts_with("shift-") {
                mods |= KeyModifiers::SHIFT;
                rest = &rest[6..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(if mods.contains(KeyModifiers::CONTROL) {
                c.to_ascii_lowercase()
            } else {
                c
            }),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" => KeyCode::Insert,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pageup" | "pgup" => KeyCode::PageUp,
                "pagedown" | "pgdn" => KeyCode::PageDown,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "space" => KeyCode::Char(' '),
                f if f.starts_with('f') => f[1..]
                    .parse::<u8>()
                    .ok()
                    .filter(|n| (1..=12).contains(n))
                    .map(KeyCode::F)
                    .ok_or_else(|| format!("not a key: {s:?}"))?,
                _ => return Err(format!("not a key: {s:?}")),
            },
        };
        if matches!(code, KeyCode::Char(_)) {
            mods.remove(KeyModifiers::SHIFT);
        }
        Ok(Key { code, mods })
    }

    /// The key's name, as [`Key::parse`] reads it.
    pub fn name(&self) -> String {
        let mut s = String::new();
        if self.mods.contains(KeyModifiers::CONTROL) {
            s.push_str("ctrl-");
        }
        if self.mods.contains(KeyModifiers::ALT) {
            s.push_str("alt-");
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            s.push_str("shift-");
        }
        match self.code {
            KeyCode::Char(' ') => s.push_str("space"),
            KeyCode::Char(c) => s.push(c),
            KeyCode::F(n) => s.push_str(&format!("f{n}")),
            KeyCode::PageUp => s.push_str("pageup"),
            KeyCode::PageDown => s.push_str("pagedown"),
            c => s.push_str(&format!("{c:?}").to_ascii_lowercase()),
        }
        s
    }

    /// A plain printable character without Ctrl or Alt: typed text unless the input is
    /// empty.
    pub fn is_text(&self) -> bool {
        matches!(self.code, KeyCode::Char(_))
            && !self
                .mods
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    }
}

/// The bindings in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    keys: HashMap<Key, KeyAction>,
    pane: HashMap<Key, KeyAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    pane_prefix: Option<String>,
    #[serde(default)]
    keys: HashMap<String, String>,
    #[serde(default)]
    pane: HashMap<String, String>,
}

const DEFAULT_KEYS: &[(&str, &str)] = &[
    ("f1", "help"),
    ("?", "help"),
    ("enter", "submit"),
    ("alt-enter", "newline"),
    ("shift-enter", "newline"),
    ("tab", "complete"),
    ("esc", "cancel"),
    ("ctrl-c", "interrupt"),
    ("ctrl-w", "pane-prefix"),
    ("ctrl-n", "room-next"),
    ("ctrl-p", "room-prev"),
    ("alt-1", "room-1"),
    ("alt-2", "room-2"),
    ("alt-3", "room-3"),
    ("alt-4", "room-4"),
    ("alt-5", "room-5"),
    ("alt-6", "room-6"),
    ("alt-7", "room-7"),
    ("alt-8", "room-8"),
    ("alt-9", "room-9"),
    ("alt-a", "next-activity"),
    ("alt-n", "next-mention"),
    ("alt-p", "prev-mention"),
    ("pageup", "page-up"),
    ("pagedown", "page-down"),
    ("home", "top"),
    ("end", "bottom"),
    ("ctrl-home", "top"),
    ("ctrl-end", "bottom"),
    ("ctrl-s", "search"),
];

const DEFAULT_PANE: &[(&str, &str)] = &[
    ("h", "pane-left"),
    ("j", "pane-down"),
    ("k", "pane-up"),
    ("l", "pane-right"),
    ("left", "pane-left"),
    ("down", "pane-down"),
    ("up", "pane-up"),
    ("right", "pane-right"),
    ("w", "pane-next"),
    ("ctrl-w", "pane-next"),
    ("s", "split"),
    ("v", "vsplit"),
    ("q", "close-pane"),
    ("c", "close-pane"),
    ("+", "grow"),
    (">", "grow"),
    ("-", "shrink"),
    ("<", "shrink"),
    ("=", "equalize"),
];

fn bind(map: &mut HashMap<Key, KeyAction>, key: &str, action: &str) -> Result<(), String> {
    let k = Key::parse(key)?;
    if action == "none" {
        map.remove(&k);
        return Ok(());
    }
    let a = KeyAction::from_name(action)
        .ok_or_else(|| format!("{key:?}: unknown action {action:?}"))?;
    map.insert(k, a);
    Ok(())
}

impl Default for Keymap {
    fn default() -> Self {
        let mut km = Keymap {
            keys: HashMap::new(),
            pane: HashMap::new(),
        };
        for (k, a) in DEFAULT_KEYS {
            // The defaults are known good; a failure would be caught by the tests.
            let _ = bind(&mut km.keys, k, a);
        }
        for (k, a) in DEFAULT_PANE {
            let _ = bind(&mut km.pane, k, a);
        }
        km
    }
}

impl Keymap {
    /// The defaults with a keymap file's changes on top.
    ///
    /// # Errors
    /// A message naming the bad key or action.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: KeymapFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut km = Keymap::default();
        if let Some(p) = file.pane_prefix {
            km.keys.retain(|_, a| *a != KeyAction::PanePrefix);
            bind(&mut km.keys, &p, "pane-prefix")?;
        }
        for (k, a) in &file.keys {
            bind(&mut km.keys, k, a)?;
        }
        for (k, a) in &file.pane {
            bind(&mut km.pane, k, a)?;
        }
        Ok(km)
    }

    /// Read a keymap file; a missing file gives the defaults.
    ///
    /// # Errors
    /// When the file exists and cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(t) => Self::parse(&t).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// What a key does outside a pane prefix.
    pub fn lookup(&self, key: &Key) -> Option<KeyAction> {
        self.keys.get(key).copied()
    }

    /// What a key does right after the pane prefix.
    pub fn lookup_pane(&self, key: &Key) -> Option<KeyAction> {
        self.pane.get(key).copied()
    }

    /// Every binding as (keys, description), sorted for the help overlay; pane keys are
    /// shown after the prefix.
    pub fn describe(&self) -> Vec<(String, String)> {
        let prefix = self
            .keys
            .iter()
            .filter(|(_, a)| **a == KeyAction::PanePrefix)
            .map(|(k, _)| k.name())
            .min()
            .unwrap_or_else(|| "ctrl-w".into());
        let mut by_action: Vec<(KeyAction, Vec<String>)> = Vec::new();
        let mut add = |a: KeyAction, name: String| {
            if let Some(e) = by_action.iter_mut().find(|(x, _)| *x == a) {
                e.1.push(name);
            } else {
                by_action.push((a, vec![name]));
            }
        };
        for (k, a) in &self.keys {
            add(*a, k.name());
        }
        for (k, a) in &self.pane {
            add(*a, format!("{prefix} {}", k.name()));
        }
        let order = |a: &KeyAction| {
            ALL_ACTIONS.iter().position(|x| x == a).unwrap_or(match a {
                KeyAction::Room(n) => 100 + *n as usize,
                _ => 200,
            })
        };
        by_action.sort_by_key(|(a, _)| order(a));
        let mut out = Vec::new();
        let mut rooms = Vec::new();
        for (a, mut keys) in by_action {
            keys.sort_by_key(|k| (k.len(), k.clone()));
            if let KeyAction::Room(_) = a {
                rooms.extend(keys);
                continue;
            }
            out.push((keys.join(" "), a.describe()));
        }
        if !rooms.is_empty() {
            let text = if rooms.len() > 2 {
                format!("{}..{}", rooms[0], rooms[rooms.len() - 1])
            } else {
                rooms.join(" ")
            };
            out.insert(out.len().min(20), (text, "room by number".into()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bind() {
        let km = Keymap::default();
        assert_eq!(km.keys.len(), DEFAULT_KEYS.len());
        assert_eq!(km.pane.len(), DEFAULT_PANE.len());
    }

    #[test]
    fn parse_key_names() -> Result<(), String> {
        let k = Key::parse("ctrl-w")?;
        assert_eq!(k.code, KeyCode::Char('w'));
        assert_eq!(k.mods, KeyModifiers::CONTROL);
        assert_eq!(Key::parse("alt-1")?.mods, KeyModifiers::ALT);
        assert_eq!(Key::parse("f1")?.code, KeyCode::F(1));
        assert_eq!(Key::parse("?")?.code, KeyCode::Char('?'));
        assert_eq!(Key::parse("-")?.code, KeyCode::Char('-'));
        assert_eq!(Key::parse("shift-enter")?.mods, KeyModifiers::SHIFT);
        assert!(Key::parse("ctrl-nope").is_err());
        for name in ["ctrl-w", "alt-enter", "pageup", "f12", "space"] {
            assert_eq!(Key::parse(name)?.name(), name);
        }
        Ok(())
    }

    #[test]
    fn events_normalise() {
        let ev = KeyEvent::new(
            KeyCode::Char('W'),
            KeyModifiers::CONTROL | KeyModifiers::SHIFT,
        );
        assert_eq!(
            Key::from_event(&ev),
            Key {
                code: KeyCode::Char('w'),
                mods: KeyModifiers::CONTROL
            }
        );
        let ev = KeyEvent::new(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert!(Key::from_event(&ev).is_text());
    }

    #[test]
    fn file_rebinds_and_unbinds() -> Result<(), String> {
        let km = Keymap::parse(
            "pane_prefix = \"ctrl-b\"\n[keys]\n\"ctrl-j\" = \"room-next\"\n\"ctrl-n\" = \"none\"\n[pane]\n\"x\" = \"close-pane\"\n",
        )?;
        assert_eq!(
            km.lookup(&Key::parse("ctrl-b")?),
            Some(KeyAction::PanePrefix)
        );
        assert_eq!(km.lookup(&Key::parse("ctrl-w")?), None);
        assert_eq!(km.lookup(&Key::parse("ctrl-j")?), Some(KeyAction::RoomNext));
        assert_eq!(km.lookup(&Key::parse("ctrl-n")?), None);
        assert_eq!(
            km.lookup_pane(&Key::parse("x")?),
            Some(KeyAction::ClosePane)
        );
        assert!(Keymap::parse("[keys]\n\"ctrl-j\" = \"fly\"\n").is_err());
        assert!(Keymap::parse("[keyz]\n").is_err());
        Ok(())
    }
}

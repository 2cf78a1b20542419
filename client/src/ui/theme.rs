//! Themes: TOML files with semantic names, colour degradation and NO_COLOR.
//!
//! A theme file names roles (`border_focused`, `mention`, `delivered`...) and gives each a
//! colour (`"#rrggbb"`, a name such as `"lightred"`, an index `"208"`, or `"default"`) or a
//! table `{ fg = "...", bg = "...", bold = true, italic, underline, reversed, dim }`.
//! `nicks = [...]` lists the colours that senders' names are hashed onto. Roles a file
//! leaves out keep the built-in dark values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// A semantic role a theme gives a style to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Ordinary text.
    Text,
    /// Secondary text (hints, empty states).
    Dim,
    /// The border of an unfocused pane.
    Border,
    /// The border of the focused pane.
    BorderFocused,
    /// The title of an unfocused pane.
    Title,
    /// The title of the focused pane.
    TitleFocused,
    /// A room in the room list.
    Room,
    /// The room shown in the focused pane, in the room list.
    RoomSelected,
    /// A room with unread messages.
    Unread,
    /// A mention marker, and a message that mentions this profile.
    Mention,
    /// The input prompt.
    Prompt,
    /// The input text.
    Input,
    /// Message times.
    Time,
    /// Day separators.
    DaySeparator,
    /// The unread marker line.
    UnreadMarker,
    /// A queued message's glyph.
    Queued,
    /// A sent message's glyph.
    Sent,
    /// A delivered message's glyph.
    Delivered,
    /// The status bar.
    Status,
    /// A link that is up.
    LinkUp,
    /// A link that is connecting.
    LinkConnecting,
    /// A link that is down.
    LinkDown,
    /// Inline errors.
    Error,
    /// Inline notices.
    Notice,
    /// Search matches and selected lines in overlays.
    Highlight,
    /// Overlays (help, invite, search results).
    Overlay,
}

impl Role {
    /// Every role, in file order.
    pub const ALL: [Role; 26] = [
        Role::Text,
        Role::Dim,
        Role::Border,
        Role::BorderFocused,
        Role::Title,
        Role::TitleFocused,
        Role::Room,
        Role::RoomSelected,
        Role::Unread,
        Role::Mention,
        Role::Prompt,
        Role::Input,
        Role::Time,
        Role::DaySeparator,
        Role::UnreadMarker,
        Role::Queued,
        Role::Sent,
        Role::Delivered,
        Role::Status,
        Role::LinkUp,
        Role::LinkConnecting,
        Role::LinkDown,
        Role::Error,
        Role::Notice,
        Role::Highlight,
        Role::Overlay,
    ];

    /// The role's key in a theme file.
    pub fn key(self) -> &'static str {
        match self {
            Role::Text => "text",
            Role::Dim => "dim",
            Role::Border => "border",
            Role::BorderFocused => "border_focused",
            Role::Title => "title",
            Role::TitleFocused => "title_focused",
            Role::Room => "room",
            Role::RoomSelected => "room_selected",
            Role::Unread => "unread",
            Role::Mention => "mention",
            Role::Prompt => "prompt",
            Role::Input => "input",
            Role::Time => "time",
            Role::DaySeparator => "day_separator",
            Role::UnreadMarker => "unread_marker",
            Role::Queued => "queued",
            Role::Sent => "sent",
            Role::Delivered => "delivered",
            Role::Status => "status",
            Role::LinkUp => "link_up",
            Role::LinkConnecting => "link_connecting",
            Role::LinkDown => "link_down",
            Role::Error => "error",
            Role::Notice => "notice",
            Role::Highlight => "highlight",
            Role::Overlay => "overlay",
        }
    }

    fn index(self) -> usize {
        Role::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// 24-bit colour.
    TrueColor,
    /// The xterm 256-colour palette.
    Ansi256,
    /// The 16 basic colours.
    Ansi16,
    /// No colour at all (NO_COLOR, or a dumb terminal): modifiers only.
    None,
}

impl ColorMode {
    /// Decide from the environment: NO_COLOR, COLORTERM and TERM.
    pub fn detect() -> Self {
        Self::from_env(|k| std::env::var(k).ok())
    }

    /// Decide from a lookup of environment variables (testable).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        if get("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return ColorMode::None;
        }
        let colorterm = get("COLORTERM").unwrap_or_default().to_ascii_lowercase();
        if colorterm == "truecolor" || colorterm == "24bit" {
            return ColorMode::TrueColor;
        }
        let term = get("TERM").unwrap_or_default().to_ascii_lowercase();
        if term == "dumb" {
            ColorMode::None
        } else if term.contains("256") || term.contains("direct") {
            ColorMode::Ansi256
        } else {
            ColorMode::Ansi16
        }
    }
}

/// A loaded theme: one style per [`Role`] and the palette for senders' names.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    /// The theme's name (its file stem).
    pub name: String,
    styles: Vec<Style>,
    nicks: Vec<Style>,
}

/// A theme file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    styles: BTreeMap<String, StyleSpec>,
    #[serde(default)]
    nicks: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StyleSpec {
    Fg(String),
    Full(StyleTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleTable {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reversed: bool,
    #[serde(default)]
    dim: bool,
}

fn parse_color(s: &str) -> Result<Color, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "default" | "reset" | "" => Ok(Color::Reset),
        other => Color::from_str(other).map_err(|_| format!("not a colour: {s:?}")),
    }
}

impl StyleSpec {
    fn to_style(&self) -> Result<Style, String> {
        match self {
            StyleSpec::Fg(c) => Ok(Style::new().fg(parse_color(c)?)),
            StyleSpec::Full(t) => {
                let mut style = Style::new();
                if let Some(fg) = &t.fg {
                    style = style.fg(parse_color(fg)?);
                }
                if let Some(bg) = &t.bg {
                    style = style.bg(parse_color(bg)?);
                }
                let mut m = Modifier::empty();
                for (on, bit) in [
                    (t.bold, Modifier::BOLD),
                    (t.italic, Modifier::ITALIC),
                    (t.underline, Modifier::UNDERLINED),
                    (t.reversed, Modifier::REVERSED),
                    (t.dim, Modifier::DIM),
                ] {
                    if on {
                        m |= bit;
                    }
                }
                Ok(style.add_modifier(m))
            }
        }
    }
}

/// The themes that ship with hum, by name.
pub(super) const BUILTIN: [(&str, &str); 5] = [
    ("dark", include_str!("../../../themes/dark.toml")),
    ("light", include_str!("../../../themes/light.toml")),
    ("gruvbox", include_str!("../../../themes/gruvbox.toml")),
    (
        "high-contrast",
        include_str!("../../../themes/high-contrast.toml"),
    ),
    (
        "monochrome",
        include_str!("../../../themes/monochrome.toml"),
    ),
];

impl Theme {
    /// A theme without colour: what every role falls back to before the dark theme.
    fn base() -> Self {
        let b = Style::new().add_modifier(Modifier::BOLD);
        let styles = Role::ALL
            .iter()
            .map(|r| match r {
                Role::BorderFocused | Role::TitleFocused | Role::Mention | Role::Unread => b,
                Role::RoomSelected | Role::Status | Role::Highlight => {
                    Style::new().add_modifier(Modifier::REVERSED)
                }
                Role::Dim | Role::Time | Role::DaySeparator => {
                    Style::new().add_modifier(Modifier::DIM)
                }
                _ => Style::new(),
            })
            .collect();
        Theme {
            name: "base".into(),
            styles,
            nicks: vec![Style::new()],
        }
    }

    /// The built-in dark theme, the default.
    pub fn default_dark() -> Self {
        Self::parse("dark", BUILTIN[0].1).unwrap_or_else(|_| Self::base())
    }

    /// Parse a theme file's text over the built-in dark theme.
    ///
    /// # Errors
    /// A message naming the bad key or value.
    pub fn parse(name: &str, text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            // Also what a file looks like halfway through being saved.
            return Err("the theme file is empty".into());
        }
        let file: ThemeFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut theme = if name == "dark" {
            Self::base()
        } else {
            Self::default_dark()
        };
        theme.name = name.to_string();
        let base = Self::base();
        for (key, spec) in &file.styles {
            let role = Role::ALL
                .iter()
                .find(|r| r.key() == key)
                .ok_or_else(|| format!("unknown style {key:?}"))?;
            // The base modifiers stay, so roles read apart without colour too.
            let style = spec.to_style().map_err(|e| format!("{key}: {e}"))?;
            theme.styles[role.index()] = base.style(*role).patch(style);
        }
        if !file.nicks.is_empty() {
            theme.nicks = file
                .nicks
                .iter()
                .map(|c| parse_color(c).map(|c| Style::new().fg(c)))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("nicks: {e}"))?;
        }
        Ok(theme)
    }

    /// Read and parse a theme file.
    ///
    /// # Errors
    /// A message with the path and what is wrong.
    pub fn load_file(path: &Path) -> Result<Self, String> {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&name, &text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Find a theme by name: the first `NAME.toml` in `dirs`, else a built-in one.
    ///
    /// # Errors
    /// When no such theme exists, or its file is broken.
    pub fn find(name: &str, dirs: &[PathBuf]) -> Result<Self, String> {
        if let Some(path) = find_file(name, dirs) {
            return Self::load_file(&path);
        }
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| format!("no theme named {name:?} (try: {})", names(dirs).join(", ")))
            .and_then(|(n, text)| Self::parse(n, text))
    }

    /// The style of a role.
    pub fn style(&self, role: Role) -> Style {
        self.styles[role.index()]
    }

    /// The style of a sender's name: a stable hash of the name onto the palette.
    pub fn nick(&self, name: &str) -> Style {
        // FNV-1a: stable across runs and platforms.
        let mut h: u32 = 0x811c_9dc5;
        for b in name.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        let n = self.nicks.len().max(1);
        self.nicks
            .get(h as usize % n)
            .copied()
            .unwrap_or_default()
            .add_modifier(Modifier::BOLD)
    }

    /// This theme as a terminal of `mode` can show it.
    pub fn degrade(mut self, mode: ColorMode) -> Self {
        for s in self.styles.iter_mut().chain(self.nicks.iter_mut()) {
            *s = degrade_style(*s, mode);
        }
        self
    }
}

/// Where `NAME.toml` is in `dirs`, if anywhere.
pub(super) fn find_file(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(format!("{name}.toml")))
        .find(|p| p.is_file())
}

/// Every theme name: the built-in ones and those in `dirs`, sorted.
pub(super) fn names(dirs: &[PathBuf]) -> Vec<String> {
    let mut out: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    for d in dirs {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml")
                    && let Some(stem) = p.file_stem()
                {
                    out.push(stem.to_string_lossy().into_owned());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Keeps the theme folders watched; dropping it stops the watching.
#[derive(Debug)]
pub struct ThemeWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// A theme file that changed on disk and was read again.
#[derive(Debug, Clone)]
pub struct ThemeChange {
    /// The theme's name (the file stem).
    pub name: String,
    /// The theme, or what is wrong with the file.
    pub result: Result<Theme, String>,
}

/// Watch theme folders: each `.toml` written there is read again and sent as a
/// [`ThemeChange`] (the app applies it when it is the theme in use). Folders that do not
/// exist are skipped.
///
/// # Errors
/// When the watcher cannot start.
pub fn watch(
    dirs: &[PathBuf],
    tx: tokio::sync::mpsc::Sender<ThemeChange>,
) -> Result<ThemeWatcher, String> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else {
            return;
        };
        if !matches!(ev.kind, EventKind::Create(_) | EventKind::Modify(_)) {
            return;
        }
        for path in ev.paths {
            if path.extension().is_none_or(|x| x != "toml") || !path.is_file() {
                continue;
            }
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Let a save that writes in several steps finish.
            std::thread::sleep(std::time::Duration::from_millis(30));
            let result = Theme::load_file(&path);
            let _ = tx.try_send(ThemeChange { name, result });
        }
    })
    .map_err(|e| e.to_string())?;
    for d in dirs.iter().filter(|d| d.is_dir()) {
        w.watch(d, RecursiveMode::NonRecursive)
            .map_err(|e| format!("{}: {e}", d.display()))?;
    }
    Ok(ThemeWatcher { _watcher: w })
}

fn degrade_style(mut s: Style, mode: ColorMode) -> Style {
    if mode == ColorMode::None {
        s.fg = None;
        s.bg = None;
        return s;
    }
    s.fg = s.fg.map(|c| degrade_color(c, mode));
    s.bg = s.bg.map(|c| degrade_color(c, mode));
    s
}

/// A colour as a terminal of `mode` can show it.
pub(super) fn degrade_color(c: Color, mode: ColorMode) -> Color {
    match (mode, c) {
        (ColorMode::TrueColor, c) => c,
        (ColorMode::None, _) => Color::Reset,
        (ColorMode::Ansi256, Color::Rgb(r, g, b)) => Color::Indexed(rgb_to_256(r, g, b)),
        (ColorMode::Ansi16, Color::Rgb(r, g, b)) => rgb_to_16(r, g, b),
        (ColorMode::Ansi16, Color::Indexed(i)) => {
            let (r, g, b) = indexed_to_rgb(i);
            rgb_to_16(r, g, b)
        }
        (_, c) => c,
    }
}

const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

fn rgb_to_256(r: u8, g: u8, b: u8) -> u8 {
    let near = |v: u8| {
        CUBE.iter()
            .enumerate()
            .min_by_key(|(_, c)| (i32::from(**c) - i32::from(v)).abs())
            .map(|(i, _)| i as u8)
            .unwrap_or(0)
    };
    let (ri, gi, bi) = (near(r), near(g), near(b));
    let cube = 16 + 36 * ri + 6 * gi + bi;
    let cube_rgb = (CUBE[ri as usize], CUBE[gi as usize], CUBE[bi as usize]);
    let avg = (u16::from(r) + u16::from(g) + u16::from(b)) / 3;
    let gray_i = (avg.saturating_sub(8) / 10).min(23) as u8;
    let gray_v = 8 + 10 * gray_i;
    if dist((r, g, b), (gray_v, gray_v, gray_v)) < dist((r, g, b), cube_rgb) {
        232 + gray_i
    } else {
        cube
    }
}

fn dist(a: (u8, u8, u8), b: (u8, u8, u8)) -> i32 {
    let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
    d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2)
}

const BASIC16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

fn rgb_to_16(r: u8, g: u8, b: u8) -> Color {
    BASIC16
        .iter()
        .min_by_key(|(_, rgb)| dist((r, g, b), *rgb))
        .map(|(c, _)| *c)
        .unwrap_or(Color::Reset)
}

fn indexed_to_rgb(i: u8) -> (u8, u8, u8) {
    match i {
        0..=15 => BASIC16[i as usize].1,
        16..=231 => {
            let i = i - 16;
            (
                CUBE[(i / 36) as usize],
                CUBE[((i / 6) % 6) as usize],
                CUBE[(i % 6) as usize],
            )
        }
        _ => {
            let v = 8 + 10 * (i - 232);
            (v, v, v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() -> Result<(), String> {
        for (name, text) in BUILTIN {
            let t = Theme::parse(name, text)?;
            assert_eq!(t.name, name);
        }
        Ok(())
    }

    #[test]
    fn parse_reports_bad_keys_and_colours() {
        let e = Theme::parse("x", "[styles]\nnope = \"red\"\n").err();
        assert!(e.is_some_and(|e| e.contains("nope")));
        let e = Theme::parse("x", "[styles]\ntext = \"#zzz\"\n").err();
        assert!(e.is_some_and(|e| e.contains("text")));
        assert!(Theme::parse("x", "styles = [").is_err());
    }

    #[test]
    fn table_styles_and_fallback() -> Result<(), String> {
        let t = Theme::parse(
            "x",
            "[styles]\nmention = { fg = \"#ff0000\", bold = true, underline = true }\n",
        )?;
        let m = t.style(Role::Mention);
        assert_eq!(m.fg, Some(Color::Rgb(255, 0, 0)));
        assert!(
            m.add_modifier
                .contains(Modifier::BOLD | Modifier::UNDERLINED)
        );
        // Roles left out come from the dark theme.
        assert_eq!(t.style(Role::Text), Theme::default_dark().style(Role::Text));
        Ok(())
    }

    #[test]
    fn color_mode_from_env() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            ColorMode::from_env(env(&[("NO_COLOR", "1"), ("COLORTERM", "truecolor")])),
            ColorMode::None
        );
        assert_eq!(
            ColorMode::from_env(env(&[("NO_COLOR", ""), ("COLORTERM", "truecolor")])),
            ColorMode::TrueColor
        );
        assert_eq!(
            ColorMode::from_env(env(&[("TERM", "xterm-256color")])),
            ColorMode::Ansi256
        );
        assert_eq!(
            ColorMode::from_env(env(&[("TERM", "screen")])),
            ColorMode::Ansi16
        );
        assert_eq!(
            ColorMode::from_env(env(&[("TERM", "dumb")])),
            ColorMode::None
        );
    }

    #[test]
    fn degradation() {
        assert_eq!(
            degrade_color(Color::Rgb(255, 0, 0), ColorMode::Ansi256),
            Color::Indexed(196)
        );
        assert_eq!(
            degrade_color(Color::Rgb(128, 128, 128), ColorMode::Ansi256),
            Color::Indexed(244)
        );
        assert_eq!(
            degrade_color(Color::Rgb(250, 10, 10), ColorMode::Ansi16),
            Color::LightRed
        );
        assert_eq!(
            degrade_color(Color::Indexed(21), ColorMode::Ansi16),
            Color::Blue
        );
        assert_eq!(degrade_color(Color::Green, ColorMode::Ansi16), Color::Green);
        let t = Theme::default_dark().degrade(ColorMode::None);
        for r in Role::ALL {
            assert_eq!(t.style(r).fg, None, "{}", r.key());
            assert_eq!(t.style(r).bg, None, "{}", r.key());
        }
        // Without colour the focused border still reads differently.
        assert_ne!(t.style(Role::BorderFocused), t.style(Role::Border));
    }

    #[test]
    fn nick_colours_are_stable() {
        let t = Theme::default_dark();
        assert_eq!(t.nick("alice"), t.nick("alice"));
    }
}

//! How the TUI is set up: theme, folders, files, habits.

use std::path::{Path, PathBuf};

/// How the TUI is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiOptions {
    /// The theme's name (`dark` when `None`).
    pub theme: Option<String>,
    /// Folders holding `NAME.toml` themes, searched in order before the built-in ones, and
    /// watched for edits.
    pub themes_dirs: Vec<PathBuf>,
    /// A keymap file (TOML, see docs/KEYS.md); the defaults when `None` or missing.
    pub keymap_file: Option<PathBuf>,
    /// Where the pane layout is saved and restored from.
    pub layout_file: Option<PathBuf>,
    /// Ring the terminal bell when a message mentions this profile.
    pub bell_on_mention: bool,
    /// Capture the mouse (wheel scrolls, clicks focus); off by default so the terminal's
    /// own selection works.
    pub mouse: bool,
    /// A line of guidance shown on first screens (e.g. how to invite).
    pub demo_hint: Option<String>,
    /// The local time's offset from UTC in seconds, for message times (0 shows UTC).
    pub tz_offset_secs: i64,
    /// The profile's config file, where `/theme NAME` is remembered.
    pub config_file: Option<PathBuf>,
}

impl Default for UiOptions {
    fn default() -> Self {
        UiOptions {
            theme: None,
            themes_dirs: Vec::new(),
            keymap_file: None,
            layout_file: None,
            bell_on_mention: true,
            mouse: false,
            demo_hint: None,
            tz_offset_secs: 0,
            config_file: None,
        }
    }
}

impl UiOptions {
    /// The defaults with hum's folders filled in: with `HUM_HOME` set, its `themes/`,
    /// `keys.toml` and `layout.toml`; otherwise the XDG places, `~/.config/hum/themes/`,
    /// `~/.config/hum/keys.toml` and `~/.local/share/hum/layout.toml`. Themes are never
    /// read from the working directory.
    pub fn standard() -> Self {
        Self::standard_in(std::env::var_os("HUM_HOME").map(PathBuf::from).as_deref())
    }

    /// [`UiOptions::standard`] with `HUM_HOME` given (`None`: not set).
    pub fn standard_in(hum_home: Option<&Path>) -> Self {
        let mut o = UiOptions::default();
        if let Some(home) = hum_home {
            o.themes_dirs.push(home.join("themes"));
            o.keymap_file = Some(home.join("keys.toml"));
            o.layout_file = Some(home.join("layout.toml"));
        } else if let Some(d) = directories::ProjectDirs::from("", "", "hum") {
            o.themes_dirs.push(d.config_dir().join("themes"));
            o.keymap_file = Some(d.config_dir().join("keys.toml"));
            o.layout_file = Some(d.data_dir().join("layout.toml"));
        }
        o
    }
}

//! Everything that can happen to the UI, as one enum: terminal input, engine events, time,
//! and what came of the effects the runtime carried out.

use std::path::PathBuf;

use ratatui::crossterm::event::{KeyEvent, MouseEvent};

use crate::api::Event;
use crate::ui::theme::ThemeChange;

/// One thing for [`crate::ui::App::update`] to handle.
#[derive(Debug, Clone)]
pub enum Action {
    /// A key was pressed.
    Key(KeyEvent),
    /// Text was pasted (bracketed paste).
    Paste(String),
    /// A mouse event (only when mouse support is on).
    Mouse(MouseEvent),
    /// The terminal is now this many columns and rows.
    Resize(u16, u16),
    /// The engine said something.
    Engine(Event),
    /// A theme file changed on disk and was read again.
    ThemeLoaded(ThemeChange),
    /// A file effect was carried out.
    Saved(Saved),
    /// Time passed (countdowns, the clock).
    Tick,
    /// Leave now (SIGTERM, or the engine went away).
    Quit,
}

/// How a file the UI asked for was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// The theme was remembered in the profile's config file.
    Theme {
        /// The theme.
        name: String,
        /// What went wrong, if anything.
        result: Result<(), String>,
    },
    /// An invite code was written to a file.
    Invite {
        /// The file.
        path: PathBuf,
        /// What went wrong, if anything.
        result: Result<(), String>,
    },
}

//! Everything that can happen to the UI, as one enum: terminal input, engine events, time.

use ratatui::crossterm::event::{KeyEvent, MouseEvent};

use crate::api::Event;
use crate::ui::theme::Theme;

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
    ThemeLoaded {
        /// The theme's name (the file stem).
        name: String,
        /// The theme, or what is wrong with the file.
        result: Result<Theme, String>,
    },
    /// Time passed (countdowns, the clock).
    Tick,
    /// Leave now (SIGTERM, or the engine went away).
    Quit,
}

//! Owning the terminal: raw mode and the alternate screen through `ratatui::init`, plus
//! bracketed paste, optional mouse capture and Shift-Enter reporting; everything undone on
//! drop, on panic and on SIGTERM.

use std::io::{Write, stdout};
use std::pin::Pin;

use futures_core::Stream;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    EventStream, KeyboardEnhancementFlags, PopKeyboardEnhancementFlags,
    PushKeyboardEnhancementFlags,
};
use ratatui::crossterm::execute;

/// The terminal, set up for the TUI until dropped.
pub(crate) struct Guard {
    term: DefaultTerminal,
    mouse: bool,
    keyboard: bool,
}

fn undo(mouse: bool, keyboard: bool) {
    let mut out = stdout();
    if keyboard {
        let _ = execute!(out, PopKeyboardEnhancementFlags);
    }
    if mouse {
        let _ = execute!(out, DisableMouseCapture);
    }
    let _ = execute!(out, DisableBracketedPaste);
}

impl Guard {
    /// Enter raw mode and the alternate screen.
    pub(crate) fn enter(mouse: bool) -> std::io::Result<Self> {
        let term = ratatui::try_init()?;
        let keyboard = matches!(
            ratatui::crossterm::terminal::supports_keyboard_enhancement(),
            Ok(true)
        );
        let mut out = stdout();
        execute!(out, EnableBracketedPaste)?;
        if mouse {
            execute!(out, EnableMouseCapture)?;
        }
        if keyboard {
            execute!(
                out,
                PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
            )?;
        }
        // ratatui's hook leaves raw mode and the alternate screen; undo ours first.
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            undo(mouse, keyboard);
            prev(info);
        }));
        Ok(Guard {
            term,
            mouse,
            keyboard,
        })
    }
}

impl std::ops::Deref for Guard {
    type Target = DefaultTerminal;
    fn deref(&self) -> &DefaultTerminal {
        &self.term
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut DefaultTerminal {
        &mut self.term
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        undo(self.mouse, self.keyboard);
        let _ = ratatui::try_restore();
    }
}

/// The next terminal event.
pub(crate) async fn next_event(s: &mut EventStream) -> Option<std::io::Result<Event>> {
    std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// SIGTERM, where there is such a thing.
pub(crate) struct Sigterm {
    #[cfg(unix)]
    sig: tokio::signal::unix::Signal,
}

impl Sigterm {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Sigterm {
            #[cfg(unix)]
            sig: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        {
            self.sig.recv().await;
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }
}

/// Write `text` from the first column of row `y` in plain style and let the terminal wrap
/// it, so that it keeps the rows as one line (a copy gives the text unbroken). The cursor
/// is put back where it was.
pub(crate) fn soft_wrap(y: u16, text: &str) -> std::io::Result<()> {
    use ratatui::crossterm::cursor::{MoveTo, RestorePosition, SavePosition};
    use ratatui::crossterm::style::{Attribute, Print, ResetColor, SetAttribute};
    let mut out = stdout();
    execute!(
        out,
        SavePosition,
        MoveTo(0, y),
        SetAttribute(Attribute::Reset),
        ResetColor,
        Print(text),
        RestorePosition
    )
}

/// Ring the terminal bell.
pub(crate) fn bell() {
    let mut out = stdout();
    let _ = out.write_all(b"\x07");
    let _ = out.flush();
}

/// A desktop notification (OSC 9), only called when not over SSH.
pub(crate) fn notify(text: &str) {
    let clean: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    let mut out = stdout();
    let _ = write!(out, "\x1b]9;hum: {clean}\x07");
    let _ = out.flush();
}

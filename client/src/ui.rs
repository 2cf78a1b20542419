//! The terminal face of hum: a ratatui TUI over the engine's channels.
//!
//! Terminal events, engine events, theme-file changes and a clock tick become one
//! [`Action`]; [`App::update`] changes the state and returns every side effect as an
//! [`Effect`] (a command for the engine, the bell, a file to write, quitting), which the
//! runtime here carries out ([`Runner`] for the files); [`view`] draws the state without
//! side effects. [`App`] works without a terminal, so tests drive it and draw it on
//! ratatui's `TestBackend`.
//!
//! Slash commands are the language of [`crate::command`], shared with `--plain`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hum::ui::UiError> {
//! let (_event_tx, events) = tokio::sync::mpsc::channel(64);
//! let (commands, _command_rx) = tokio::sync::mpsc::channel(64);
//! hum::ui::run(events, commands, hum::ui::UiOptions::standard()).await
//! # }
//! ```

mod action;
mod app;
mod chat;
mod effect;
mod exec;
mod input;
mod keymap;
mod options;
mod overlay;
mod panes;
mod prompt;
mod recall;
mod sidebar;
mod skin;
mod status;
mod terminal;
mod text;
mod theme;
mod timeline;
mod view;

use std::io::Write;
use std::time::Duration;

use ratatui::crossterm::event::{Event as TermEvent, EventStream};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::api::{Command, Event};

pub use action::{Action, Saved};
pub use app::{App, Areas};
pub use chat::RoomState;
pub use effect::{Effect, Flash, Runner};
pub use input::InputMode;
pub use keymap::{Key, KeyAction, Keymap};
pub use options::UiOptions;
pub use overlay::{
    Confirm, Help, InviteView, MembersView, Overlay, PasteGuard, SafetyView, SearchView, TooLong,
};
pub use panes::{Pane, Panes, SplitDir, Towards};
pub use prompt::{Prompt, PromptKind, PromptOutcome};
pub use theme::{ColorMode, Role, Theme, ThemeChange, ThemeWatcher, watch as watch_themes};
pub use timeline::Timeline;
pub use view::view;

/// Why the TUI stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UiError {
    /// The terminal could not be read or written.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// The engine's channels closed before the user quit.
    #[error("the engine stopped")]
    EngineStopped,
}

/// Run the TUI until `/quit` (or SIGTERM, or the engine stops): owns the terminal and
/// restores it on the way out, on panic too.
///
/// # Errors
/// [`UiError::Terminal`] when the terminal fails, [`UiError::EngineStopped`] when the
/// engine's event channel closes first.
pub async fn run(
    mut events: mpsc::Receiver<Event>,
    commands: mpsc::Sender<Command>,
    opts: UiOptions,
) -> Result<(), UiError> {
    let mut app = App::new(&opts);
    let (theme_tx, mut theme_rx) = mpsc::channel(16);
    let _watcher = match theme::watch(&opts.themes_dirs, theme_tx) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(cause = %e, "theme folders are not watched");
            None
        }
    };
    let mut term = terminal::Guard::enter(opts.mouse)?;
    let size = term.size()?;
    app.update(Action::Resize(size.width, size.height));
    draw(&mut term, &app)?;
    let mut stream = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = terminal::Sigterm::new()?;
    let runner = Runner::new(&opts);
    let mut engine_gone = false;
    let mut quit = false;
    let mut codes = Vec::new();
    while !quit {
        let mut actions = std::collections::VecDeque::with_capacity(4);
        tokio::select! {
            ev = terminal::next_event(&mut stream) => match ev {
                Some(Ok(e)) => actions.extend(to_action(e)),
                Some(Err(e)) => return Err(e.into()),
                None => actions.push_back(Action::Quit),
            },
            ev = events.recv() => match ev {
                Some(e) => {
                    actions.push_back(Action::Engine(e));
                    // Draw once for a burst of engine events.
                    while actions.len() < 512 {
                        match events.try_recv() {
                            Ok(e) => actions.push_back(Action::Engine(e)),
                            Err(_) => break,
                        }
                    }
                }
                None => {
                    engine_gone = true;
                    actions.push_back(Action::Quit);
                }
            },
            Some(c) = theme_rx.recv() => actions.push_back(Action::ThemeLoaded(c)),
            _ = tick.tick() => actions.push_back(Action::Tick),
            _ = sigterm.recv() => actions.push_back(Action::Quit),
        }
        while let Some(a) = actions.pop_front() {
            for effect in app.update(a) {
                match effect {
                    Effect::Engine(c) => {
                        if commands.send(c).await.is_err() {
                            engine_gone = true;
                            quit = true;
                        }
                    }
                    Effect::Quit => quit = true,
                    Effect::Bell => terminal::bell(),
                    Effect::Notify(n) => terminal::notify(&n),
                    Effect::PrintOnExit(code) => codes.push(code),
                    on_files => actions.extend(runner.perform(&on_files)),
                }
            }
        }
        if !quit {
            draw(&mut term, &app)?;
        }
    }
    drop(term);
    if !codes.is_empty() {
        // The terminal is back: the codes can be copied from here too, one line each.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "hum: the invite code{} made in this session (each works once, for one person):",
            if codes.len() > 1 { "s" } else { "" }
        );
        for c in codes {
            let _ = writeln!(out, "{c}");
        }
    }
    if engine_gone {
        Err(UiError::EngineStopped)
    } else {
        Ok(())
    }
}

/// Draw a frame; an invite code on screen is also written for the terminal to wrap.
fn draw(term: &mut terminal::Guard, app: &App) -> Result<(), UiError> {
    let frame = term.draw(|f| view(app, f))?;
    if let Some((y, text)) = view::invite_soft_wrap(app, frame.area) {
        terminal::soft_wrap(y, &text)?;
    }
    Ok(())
}

fn to_action(e: TermEvent) -> Option<Action> {
    match e {
        TermEvent::Key(k) => Some(Action::Key(k)),
        TermEvent::Paste(s) => Some(Action::Paste(s)),
        TermEvent::Mouse(m) => Some(Action::Mouse(m)),
        TermEvent::Resize(w, h) => Some(Action::Resize(w, h)),
        _ => None,
    }
}

async fn prompt_loop(
    kind: PromptKind,
    opts: &UiOptions,
    error: Option<String>,
) -> Result<Option<(String, Zeroizing<String>)>, UiError> {
    let name = opts.theme.clone().unwrap_or_else(|| "dark".into());
    let theme = Theme::find(&name, &opts.themes_dirs)
        .unwrap_or_else(|_| Theme::default_dark())
        .degrade(ColorMode::detect());
    let mut p = Prompt::new(kind, theme, error, opts.demo_hint.clone());
    let mut term = terminal::Guard::enter(false)?;
    let mut stream = EventStream::new();
    let mut sigterm = terminal::Sigterm::new()?;
    loop {
        term.draw(|f| p.view(f))?;
        tokio::select! {
            ev = terminal::next_event(&mut stream) => match ev {
                Some(Ok(TermEvent::Key(k))) => match p.update(k) {
                    PromptOutcome::Continue => {}
                    PromptOutcome::Cancelled => return Ok(None),
                    PromptOutcome::Done(name, pass) => return Ok(Some((name, pass))),
                },
                Some(Ok(TermEvent::Paste(s))) => p.paste(&s),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(None),
            },
            _ = sigterm.recv() => return Ok(None),
        }
    }
}

/// The first-run screen: asks a name and a passphrase (masked, twice) and says how to
/// invite a contact next. `None` when the user quits.
///
/// # Errors
/// [`UiError::Terminal`] when the terminal fails.
pub async fn onboarding(opts: UiOptions) -> Result<Option<(String, Zeroizing<String>)>, UiError> {
    prompt_loop(PromptKind::Onboarding, &opts, None).await
}

/// The unlock screen for an existing profile, showing `error` from the previous attempt
/// (e.g. "wrong passphrase"). `None` when the user quits.
///
/// # Errors
/// [`UiError::Terminal`] when the terminal fails.
pub async fn unlock(
    opts: UiOptions,
    error: Option<String>,
) -> Result<Option<Zeroizing<String>>, UiError> {
    Ok(prompt_loop(PromptKind::Unlock, &opts, error)
        .await?
        .map(|(_, pass)| pass))
}

#[cfg(test)]
mod tests;

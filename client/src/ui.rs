//! The terminal face of hum: a ratatui TUI over the engine's channels.
//!
//! Terminal events, engine events, theme-file changes and a clock tick become one
//! [`Action`]; [`App::update`] changes the state and returns the [`Command`]s for the
//! engine; [`view`] draws the state without side effects. [`App`] works without a
//! terminal, so tests drive it and draw it on ratatui's `TestBackend`.
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
mod commands;
mod help;
mod keymap;
mod overlay;
mod panes;
mod prompt;
mod recall;
mod sidebar;
mod status;
mod terminal;
mod text;
mod theme;
mod timeline;
mod view;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use ratatui::crossterm::event::{Event as TermEvent, EventStream};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::api::{Command, Event};

pub use action::Action;
pub use app::{App, Areas, Flash, InputMode, Overlay, RoomState};
pub use commands::{SlashCommand, complete, parse as parse_command};
pub use keymap::{Key, KeyAction, Keymap};
pub use panes::{Pane, Panes, SplitDir, Towards};
pub use prompt::{Prompt, PromptKind, PromptOutcome};
pub use theme::{ColorMode, Role, Theme, ThemeWatcher, watch as watch_themes};
pub use timeline::Timeline;
pub use view::view;

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
    pub fn standard_in(hum_home: Option<&std::path::Path>) -> Self {
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
    app.set_tz_offset(opts.tz_offset_secs);
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
    let mut engine_gone = false;
    loop {
        let mut actions = Vec::with_capacity(4);
        tokio::select! {
            ev = terminal::next_event(&mut stream) => match ev {
                Some(Ok(e)) => actions.extend(to_action(e)),
                Some(Err(e)) => return Err(e.into()),
                None => actions.push(Action::Quit),
            },
            ev = events.recv() => match ev {
                Some(e) => {
                    actions.push(Action::Engine(e));
                    // Draw once for a burst of engine events.
                    while actions.len() < 512 {
                        match events.try_recv() {
                            Ok(e) => actions.push(Action::Engine(e)),
                            Err(_) => break,
                        }
                    }
                }
                None => {
                    engine_gone = true;
                    actions.push(Action::Quit);
                }
            },
            Some(a) = theme_rx.recv() => actions.push(a),
            _ = tick.tick() => actions.push(Action::Tick),
            _ = sigterm.recv() => actions.push(Action::Quit),
        }
        for a in actions {
            for c in app.update(a) {
                if commands.send(c).await.is_err() {
                    engine_gone = true;
                    app.quit = true;
                }
            }
        }
        if app.take_bell() {
            terminal::bell();
        }
        for n in app.take_notifications() {
            terminal::notify(&n);
        }
        if app.take_layout_dirty()
            && let Some(path) = &opts.layout_file
            && let Err(e) = app.panes.save(path)
        {
            tracing::warn!(cause = %e, "layout not saved");
        }
        if app.quit {
            break;
        }
        draw(&mut term, &app)?;
    }
    drop(term);
    let codes = app.take_invites();
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
    if let Some((y, text)) = overlay::invite_soft_wrap(app, frame.area) {
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

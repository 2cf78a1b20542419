//! What handling an action asks of the world, as values: [`App::update`] returns a list of
//! [`Effect`]s and the runtime carries them out (the engine's channel, the terminal, files).
//! [`Runner`] does the ones on files, so tests run them as the TUI does.
//!
//! [`App::update`]: crate::ui::App::update

use std::path::PathBuf;

use crate::api::Command;
use crate::engine::ProfileConfig;
use crate::ui::action::{Action, Saved};
use crate::ui::options::UiOptions;
use crate::ui::panes::Panes;

/// One side effect of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send a command to the engine.
    Engine(Command),
    /// Leave the TUI (the engine was sent [`Command::Quit`] before).
    Quit,
    /// Ring the terminal bell (a message mentions this profile).
    Bell,
    /// Show a desktop notification.
    Notify(String),
    /// Save the pane layout (and the hidden rooms).
    SaveLayout(Panes),
    /// Remember the theme in the profile's config file.
    SaveTheme(String),
    /// Write an invite code to a new file only this user can read.
    WriteInvite {
        /// The file.
        path: PathBuf,
        /// The code.
        code: String,
    },
    /// An invite code was shown: print it again once the terminal is given back.
    PrintOnExit(String),
}

/// A line under the panes: a notice or an inline error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// Whether it is an error.
    pub error: bool,
    /// The text.
    pub text: String,
}

/// What the parts of the UI produce while handling one action: effects, and the line to
/// show under the panes (the last one said wins).
#[derive(Debug, Default)]
pub(super) struct Out {
    pub(super) effects: Vec<Effect>,
    pub(super) flash: Option<Flash>,
    pub(super) layout_changed: bool,
}

impl Out {
    /// Ask the engine for something.
    pub(super) fn engine(&mut self, c: Command) {
        self.effects.push(Effect::Engine(c));
    }

    /// Ask for another effect.
    pub(super) fn effect(&mut self, e: Effect) {
        self.effects.push(e);
    }

    /// Say something.
    pub(super) fn notice(&mut self, text: impl Into<String>) {
        self.flash = Some(Flash {
            error: false,
            text: text.into(),
        });
    }

    /// Say what went wrong.
    pub(super) fn error(&mut self, text: impl ToString) {
        self.flash = Some(Flash {
            error: true,
            text: text.to_string(),
        });
    }

    /// The pane layout changed and should be saved.
    pub(super) fn layout(&mut self) {
        self.layout_changed = true;
    }
}

/// Carries out the effects on files, with the files the options name.
#[derive(Debug, Clone, Default)]
pub struct Runner {
    layout_file: Option<PathBuf>,
    config_file: Option<PathBuf>,
}

impl Runner {
    /// A runner for the files of `opts`.
    pub fn new(opts: &UiOptions) -> Self {
        Runner {
            layout_file: opts.layout_file.clone(),
            config_file: opts.config_file.clone(),
        }
    }

    /// Carry out `effect` when it is one on files; how it went comes back as an action
    /// for the app, when there is something to say. Other effects are left alone.
    pub fn perform(&self, effect: &Effect) -> Option<Action> {
        match effect {
            Effect::SaveLayout(panes) => {
                if let Some(path) = &self.layout_file
                    && let Err(e) = panes.save(path)
                {
                    tracing::warn!(cause = %e, "layout not saved");
                }
                None
            }
            Effect::SaveTheme(name) => {
                let path = self.config_file.as_ref()?;
                let result = ProfileConfig::load(path)
                    .and_then(|mut c| {
                        c.theme = Some(name.clone());
                        c.save(path)
                    })
                    .map_err(|e| e.to_string());
                Some(Action::Saved(Saved::Theme {
                    name: name.clone(),
                    result,
                }))
            }
            Effect::WriteInvite { path, code } => Some(Action::Saved(Saved::Invite {
                path: path.clone(),
                result: crate::command::write_invite(path, code).map_err(|e| e.to_string()),
            })),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a file effect's outcome says, if it is one.
    fn saved(a: Option<Action>) -> Option<Saved> {
        match a {
            Some(Action::Saved(s)) => Some(s),
            _ => None,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hum-effect-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    #[test]
    fn the_layout_is_saved_where_the_options_say() -> Result<(), Box<dyn std::error::Error>> {
        let dir = scratch("layout");
        let file = dir.join("layout.toml");
        let mut panes = Panes::default();
        panes.split(crate::ui::panes::SplitDir::SideBySide);
        assert!(
            Runner::default()
                .perform(&Effect::SaveLayout(panes.clone()))
                .is_none()
        );
        assert!(!file.exists(), "no layout file, nothing written");
        let runner = Runner::new(&UiOptions {
            layout_file: Some(file.clone()),
            ..UiOptions::default()
        });
        assert!(runner.perform(&Effect::SaveLayout(panes.clone())).is_none());
        assert_eq!(Panes::load(&file), Some(panes));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn the_theme_is_remembered_and_the_rest_of_the_config_kept()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = scratch("theme");
        let file = dir.join("config.toml");
        std::fs::write(&file, "bell = false\n")?;
        let save = Effect::SaveTheme("light".into());
        assert!(Runner::default().perform(&save).is_none(), "no config file");
        let runner = Runner::new(&UiOptions {
            config_file: Some(file.clone()),
            ..UiOptions::default()
        });
        assert_eq!(
            saved(runner.perform(&save)),
            Some(Saved::Theme {
                name: "light".into(),
                result: Ok(())
            })
        );
        let c = ProfileConfig::load(&file)?;
        assert_eq!((c.theme.as_deref(), c.bell), (Some("light"), Some(false)));
        // A config file hum cannot read: said, not lost.
        std::fs::write(&file, "nonsense = 1\n")?;
        let r = saved(runner.perform(&save));
        assert!(
            matches!(&r, Some(Saved::Theme { result: Err(_), .. })),
            "{r:?}"
        );
        assert_eq!(std::fs::read_to_string(&file)?, "nonsense = 1\n");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn an_invite_file_is_written_once() -> Result<(), Box<dyn std::error::Error>> {
        let dir = scratch("invite");
        let path = dir.join("code.txt");
        let write = Effect::WriteInvite {
            path: path.clone(),
            code: "hum1-abc".into(),
        };
        let runner = Runner::default();
        assert_eq!(
            saved(runner.perform(&write)),
            Some(Saved::Invite {
                path: path.clone(),
                result: Ok(())
            })
        );
        assert_eq!(std::fs::read_to_string(&path)?, "hum1-abc\n");
        let again = saved(runner.perform(&write));
        assert!(
            matches!(&again, Some(Saved::Invite { result: Err(e), .. }) if e.contains("code.txt")),
            "{again:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&path)?,
            "hum1-abc\n",
            "not overwritten"
        );
        // Effects that are not on files are the runtime's.
        for e in [
            Effect::Quit,
            Effect::Bell,
            Effect::Notify("x".into()),
            Effect::PrintOnExit("hum1-abc".into()),
            Effect::Engine(Command::Reconnect),
        ] {
            assert!(runner.perform(&e).is_none(), "{e:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn the_last_word_said_is_the_one_shown() {
        let mut out = Out::default();
        out.notice("first");
        out.error("second");
        assert_eq!(
            out.flash,
            Some(Flash {
                error: true,
                text: "second".into()
            })
        );
        assert!(!out.layout_changed);
        out.layout();
        assert!(out.layout_changed);
    }
}

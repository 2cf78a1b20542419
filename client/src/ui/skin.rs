//! The theme in use: chosen by name, switched by `/theme`, reloaded when its file changes,
//! degraded to what the terminal shows.

use std::path::PathBuf;

use crate::ui::theme::{self, ColorMode, Theme, ThemeChange};

/// The theme in use and where themes come from.
#[derive(Debug)]
pub(super) struct Skin {
    /// The theme, degraded to the terminal's colours.
    pub(super) theme: Theme,
    /// The last theme file error (the previous theme stays).
    pub(super) error: Option<String>,
    dirs: Vec<PathBuf>,
    color: ColorMode,
}

impl Skin {
    /// The theme `name` from `dirs` (or the built-ins), and what went wrong when it is not
    /// there (the dark theme is used then).
    pub(super) fn new(name: &str, dirs: &[PathBuf], color: ColorMode) -> (Self, Option<String>) {
        let (theme, problem) = match Theme::find(name, dirs) {
            Ok(t) => (t, None),
            Err(e) => (Theme::default_dark(), Some(format!("theme: {e}"))),
        };
        let skin = Skin {
            theme: theme.degrade(color),
            error: None,
            dirs: dirs.to_vec(),
            color,
        };
        (skin, problem)
    }

    /// Every theme's name.
    pub(super) fn names(&self) -> Vec<String> {
        theme::names(&self.dirs)
    }

    /// Switch to the theme `name` names (a unique prefix works); its full name.
    pub(super) fn switch(&mut self, name: &str) -> Result<String, String> {
        let names = self.names();
        let name = crate::command::pick(
            name,
            names.iter().map(|n| (n.as_str(), n.as_str())),
            crate::command::Noun::Theme,
        )
        .map_err(|e| e.to_string())?
        .to_string();
        self.theme = Theme::find(&name, &self.dirs)?.degrade(self.color);
        self.error = None;
        Ok(name)
    }

    /// Take a theme file read again: applied when it is the theme in use. `Some(Ok)` when
    /// it was applied, `Some(Err)` when the file is broken and the theme stays.
    pub(super) fn reloaded(&mut self, change: ThemeChange) -> Option<Result<String, String>> {
        if change.name != self.theme.name {
            return None;
        }
        Some(match change.result {
            Ok(t) => {
                self.theme = t.degrade(self.color);
                self.error = None;
                Ok(change.name)
            }
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_theme_falls_back_to_dark_and_says_so() {
        let (skin, problem) = Skin::new("nope", &[], ColorMode::TrueColor);
        assert_eq!(skin.theme.name, "dark");
        assert!(problem.is_some_and(|p| p.starts_with("theme: ")));
        let (skin, problem) = Skin::new("light", &[], ColorMode::TrueColor);
        assert_eq!((skin.theme.name.as_str(), problem), ("light", None));
    }

    #[test]
    fn switching_takes_a_prefix_and_keeps_the_theme_on_a_mistake() {
        let (mut skin, _) = Skin::new("dark", &[], ColorMode::TrueColor);
        assert_eq!(skin.switch("GRU"), Ok("gruvbox".into()));
        assert_eq!(skin.theme.name, "gruvbox");
        assert!(skin.switch("zzz").is_err_and(|e| e == "no theme named zzz"));
        assert_eq!(skin.theme.name, "gruvbox");
        assert!(skin.names().contains(&"high-contrast".to_string()));
    }

    #[test]
    fn a_reloaded_file_applies_only_to_the_theme_in_use() {
        let (mut skin, _) = Skin::new("dark", &[], ColorMode::None);
        let light = Theme::find("light", &[]).map_err(|e| e.to_string());
        let other = ThemeChange {
            name: "light".into(),
            result: light,
        };
        assert_eq!(skin.reloaded(other), None);
        let broken = ThemeChange {
            name: "dark".into(),
            result: Err("line 1: bad colour".into()),
        };
        assert_eq!(
            skin.reloaded(broken),
            Some(Err("line 1: bad colour".into()))
        );
        assert_eq!(skin.error.as_deref(), Some("line 1: bad colour"));
        let fixed = ThemeChange {
            name: "dark".into(),
            result: Ok(Theme::default_dark()),
        };
        assert_eq!(skin.reloaded(fixed), Some(Ok("dark".into())));
        assert_eq!(skin.error, None);
        // Degraded as the terminal shows it: no colour at all here.
        let text = skin.theme.style(crate::ui::theme::Role::Text);
        assert!(text.fg.is_none_or(|c| c == ratatui::style::Color::Reset));
    }
}

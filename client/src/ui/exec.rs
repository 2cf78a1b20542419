//! Running a slash command typed in the TUI: the shared language parses it and resolves its
//! names; what the resolved command does here (panes, overlays, the theme) is decided here.

use std::path::PathBuf;

use ratatui::layout::Rect;

use crate::api::Command;
use crate::command::{self, Face, Resolved};
use crate::ui::chat::{Chat, Look};
use crate::ui::effect::{Effect, Out};
use crate::ui::input::InputBox;
use crate::ui::overlay::{Confirm, Help, Overlay};
use crate::ui::panes::SplitDir;
use crate::ui::skin::Skin;

fn look(skin: &Skin, tz: i64, area: Rect) -> Look<'_> {
    Look {
        theme: &skin.theme,
        tz,
        area,
    }
}

/// The parts of the UI a command can change.
pub(super) struct Parts<'a> {
    pub(super) chat: &'a mut Chat,
    pub(super) skin: &'a mut Skin,
    pub(super) input: &'a mut InputBox,
    pub(super) overlay: &'a mut Option<Overlay>,
    /// The offset from UTC for times.
    pub(super) tz: i64,
    /// Where the panes are.
    pub(super) panes: Rect,
}

/// Runs slash commands; remembers where `/invite FILE` wants the code.
#[derive(Debug, Default)]
pub(super) struct Exec {
    invite_file: Option<PathBuf>,
}

impl Exec {
    /// The file the next invite code goes to, if `/invite FILE` asked for one.
    pub(super) fn take_invite_file(&mut self) -> Option<PathBuf> {
        self.invite_file.take()
    }

    /// Run a command line (it starts with `/`).
    ///
    /// # Errors
    /// What is wrong, in words for the error line (the input stays, for fixing).
    pub(super) fn run(&mut self, line: &str, p: Parts<'_>, out: &mut Out) -> Result<(), String> {
        let cmd = command::parse(line, Face::Tui).map_err(|e| e.to_string())?;
        let resolved = p.chat.resolver().resolve(cmd).map_err(|e| e.to_string())?;
        match resolved {
            Resolved::Engine(c) => {
                match &c {
                    Command::CreateGroup { name } => p.chat.expect_group(name),
                    Command::AcceptInvite { .. } => out
                        .notice("invite accepted; the contact appears once the handshake is done"),
                    _ => {}
                }
                let quit = c == Command::Quit;
                out.engine(c);
                if quit {
                    out.effect(Effect::Quit);
                }
            }
            Resolved::Invite(file) => {
                self.invite_file = file;
                out.engine(Command::CreateInvite);
                out.notice("making an invite code…");
            }
            Resolved::Open { room, text } => {
                p.chat.show_room(room, &look(p.skin, p.tz, p.panes), out);
                if let Some(text) = text {
                    p.chat.send(text, out).map_err(|e| e.to_string())?;
                }
            }
            Resolved::Leave { room, name } => {
                *p.overlay = Some(Overlay::Confirm(Confirm {
                    question: format!("Leave #{name}?"),
                    detail: "Its messages stop coming; the room stays, read-only (/hide takes it off the list).".into(),
                    yes: vec![Command::GroupLeave { room }],
                    done: format!("leaving #{name}…"),
                    keep: None,
                }));
            }
            Resolved::Hide(room) => {
                let name = p.chat.hide(room, &look(p.skin, p.tz, p.panes), out)?;
                out.notice(format!("{name} is off the room list; its history stays"));
            }
            Resolved::Split => p.chat.split(SplitDir::Stacked, out),
            Resolved::VSplit => p.chat.split(SplitDir::SideBySide, out),
            Resolved::Close => p.chat.close_pane(out)?,
            Resolved::Theme(None) => out.notice(format!(
                "themes: {} (now: {})",
                p.skin.names().join(", "),
                p.skin.theme.name
            )),
            Resolved::Theme(Some(name)) => {
                let name = p.skin.switch(&name)?;
                p.input.restyle(&p.skin.theme);
                out.notice(format!("theme {name}"));
                out.effect(Effect::SaveTheme(name));
            }
            Resolved::Help => *p.overlay = Some(Overlay::Help(Help::default())),
            Resolved::ListRooms | Resolved::ListContacts => {
                return Err("that is a command of the line mode (hum --plain)".into());
            }
        }
        Ok(())
    }
}

//! Running a slash command typed in the TUI: the shared language parses it and resolves its
//! names; what the resolved command does here (panes, overlays, the theme) is decided here.

use std::path::PathBuf;

use ratatui::layout::Rect;

use crate::api::Command;
use crate::command::{self, Face, Resolved};
use crate::ui::chat::{Chat, Look};
use crate::ui::effect::{Effect, Out};
use crate::ui::input::InputBox;
use crate::ui::overlay::{Confirm, Help, Overlay, confirm};
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
                    Command::AcceptInvite { .. } => out.notice(confirm::ACCEPTED),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ContactId, Event, RoomId, RoomKind, RoomSummary};
    use crate::ui::panes::Panes;
    use crate::ui::theme::ColorMode;

    /// The parts a command touches, with alice (room 1) focused and team (room 3).
    struct World {
        exec: Exec,
        chat: Chat,
        skin: Skin,
        input: InputBox,
        overlay: Option<Overlay>,
    }

    fn summary(id: i64, name: &str, kind: RoomKind) -> RoomSummary {
        crate::ui::tests::room(id, name, kind, 0, 0)
    }

    fn world() -> World {
        let (skin, _) = Skin::new("dark", &[], ColorMode::TrueColor);
        let mut chat = Chat::new(Panes::default(), true, false);
        let ready = Event::Ready {
            me: "me".into(),
            rooms: vec![
                summary(1, "alice", RoomKind::Direct(ContactId(1))),
                summary(3, "team", RoomKind::Group),
            ],
            contacts: vec![(ContactId(1), "alice".into())],
        };
        let area = Rect::new(0, 0, 80, 20);
        chat.on_event(ready, &look(&skin, 0, area), &mut Out::default());
        World {
            exec: Exec::default(),
            chat,
            input: InputBox::new(&skin.theme),
            skin,
            overlay: None,
        }
    }

    impl World {
        fn run(&mut self, line: &str) -> (Result<(), String>, Out) {
            let mut out = Out::default();
            let parts = Parts {
                chat: &mut self.chat,
                skin: &mut self.skin,
                input: &mut self.input,
                overlay: &mut self.overlay,
                tz: 0,
                panes: Rect::new(0, 0, 80, 20),
            };
            let r = self.exec.run(line, parts, &mut out);
            (r, out)
        }
    }

    #[test]
    fn commands_become_effects_and_overlays() -> Result<(), String> {
        let mut w = world();
        let (r, out) = w.run("/inv /nonexistent/hum/code.txt");
        assert_eq!(r, Ok(()));
        assert_eq!(out.effects, vec![Effect::Engine(Command::CreateInvite)]);
        assert!(out.flash.is_some_and(|f| f.text.contains("making")));
        assert_eq!(
            w.exec.take_invite_file(),
            Some(PathBuf::from("/nonexistent/hum/code.txt"))
        );
        assert_eq!(w.exec.take_invite_file(), None, "for one code");
        let (_, out) = w.run("/msg te hello");
        assert_eq!(w.chat.focused_room(), Some(RoomId(3)));
        assert!(out.effects.contains(&Effect::Engine(Command::Send {
            room: RoomId(3),
            text: "hello".into()
        })));
        let (_, out) = w.run("/group leave");
        assert!(out.effects.is_empty(), "asked first");
        let Some(Overlay::Confirm(ask)) = &w.overlay else {
            return Err(format!("no question: {:?}", w.overlay));
        };
        assert_eq!(ask.yes, vec![Command::GroupLeave { room: RoomId(3) }]);
        w.overlay = None;
        let (_, out) = w.run("/help");
        assert!(out.effects.is_empty());
        assert_eq!(w.overlay, Some(Overlay::Help(Help::default())));
        let (_, out) = w.run("/quit");
        assert_eq!(
            out.effects,
            vec![Effect::Engine(Command::Quit), Effect::Quit]
        );
        Ok(())
    }

    #[test]
    fn a_created_group_is_opened_when_it_comes() {
        let mut w = world();
        let (_, out) = w.run("/group create ops");
        assert_eq!(
            out.effects,
            vec![Effect::Engine(Command::CreateGroup { name: "ops".into() })]
        );
        let area = Rect::new(0, 0, 80, 20);
        let ops = Event::Room(summary(9, "ops", RoomKind::Group));
        w.chat
            .on_event(ops, &look(&w.skin, 0, area), &mut Out::default());
        assert_eq!(w.chat.focused_room(), Some(RoomId(9)));
    }

    #[test]
    fn panes_and_themes() {
        let mut w = world();
        let (_, out) = w.run("/vsplit");
        assert!(out.layout_changed);
        assert_eq!(w.chat.panes.len(), 2);
        assert_eq!(w.run("/close").0, Ok(()));
        assert_eq!(w.run("/close").0, Err("the last pane stays open".into()));
        let (_, out) = w.run("/theme");
        assert!(out.flash.is_some_and(|f| f.text.contains("gruvbox")));
        let (r, out) = w.run("/theme gr");
        assert_eq!(r, Ok(()));
        assert_eq!(w.skin.theme.name, "gruvbox");
        assert_eq!(out.effects, vec![Effect::SaveTheme("gruvbox".into())]);
        assert!(
            w.run("/theme nope")
                .0
                .is_err_and(|e| e.contains("no theme"))
        );
        assert_eq!(w.skin.theme.name, "gruvbox", "kept");
    }

    #[test]
    fn mistakes_are_errors_and_do_nothing() {
        let mut w = world();
        for (line, says) in [
            ("/hide", "is open"),
            ("/rooms", "line mode"),
            ("/msg nobody hi", "no room or contact named nobody"),
            ("/group add alice", "not in a group room"),
            ("/frob", "unknown command"),
            ("/nick alice", "usage: /nick CONTACT NEWNAME"),
        ] {
            let (r, out) = w.run(line);
            assert!(r.as_ref().is_err_and(|e| e.contains(says)), "{line}: {r:?}");
            assert!(out.effects.is_empty(), "{line}: {:?}", out.effects);
        }
        assert!(w.overlay.is_none());
    }
}

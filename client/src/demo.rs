//! `hum --demo`: a throwaway profile, an embedded relay on loopback, and a demo contact
//! that answers, so a newcomer sees the whole loop on one machine.
//!
//! The demo contact is a second engine in the same process: it invites you (your profile
//! accepts at once), answers what you write, and opens a group room with you.

use std::path::Path;
use std::time::Duration;

use hum_shared::crypto::KdfParams;
use tokio::sync::mpsc;

use crate::api::{Command, Event, MessageKind, RoomId, RoomKind};
use crate::engine::{self, EngineError, EngineHandle, ProfileError, ProfilePaths};

/// The demo contact's name.
pub const BOT: &str = "hum-guide";

/// What the demo contact says first.
const WELCOME: &[&str] = &[
    "Hi! I am a demo contact running on this machine. Everything between us is end-to-end encrypted and padded into fixed-size cells.",
    "Type a message and press Enter: watch it go queued (…), sent (✓) and delivered (✓✓).",
    "Try /help for commands, /vsplit to see two rooms side by side, and /invite to make a code for a real friend.",
];

/// A running demo: the embedded relay, the demo contact, and your profile's engine.
#[derive(Debug)]
pub struct Demo {
    /// The embedded relay.
    pub relay: hum_relay::RelayHandle,
    /// Your engine.
    pub engine: EngineHandle,
    /// The demo contact's task.
    pub bot: tokio::task::JoinHandle<()>,
}

/// Starts the demo in `dir` (a throwaway folder): relay, demo contact and your profile
/// named `you`.
///
/// # Errors
/// When the relay, either profile or either engine cannot start.
pub async fn start(dir: &Path, you: &str) -> Result<Demo, EngineError> {
    let mut config = hum_relay::Config::ephemeral(Duration::from_millis(100));
    config.max_lag = 600;
    let relay = hum_relay::Relay::bind(config)
        .await
        .map_err(ProfileError::DemoRelay)?
        .spawn();
    let relays = engine::Relays::single(relay.address().clone());
    // Both profiles are throwaway (a temporary folder, a known passphrase, deleted on
    // exit), so they use the fast test KDF; no build of hum ever opens them again.
    let bot_paths = ProfilePaths::in_dir(BOT, dir.join(BOT));
    let bot_profile = engine::create_with(&bot_paths, BOT, b"demo", KdfParams::INSECURE_FAST)?;
    // The demo contact's receipts leave after a second on average, not half a minute, so
    // a newcomer sees ✓✓ soon: on a relay inside this process there is nobody to hide
    // the timing from.
    let bot_options = engine::EngineOptions {
        receipt_delay: Duration::from_secs(1),
        ..engine::EngineOptions::default()
    };
    let mut bot = engine::start_with(bot_profile, relays.clone(), bot_options)?;
    let me_paths = ProfilePaths::in_dir("you", dir.join("you"));
    let me_profile = engine::create_with(&me_paths, you, b"demo", KdfParams::INSECURE_FAST)?;
    let engine = engine::start(me_profile, relays)?;

    bot.commands
        .send(Command::CreateInvite)
        .await
        .map_err(|_| ProfileError::DemoStopped("contact"))?;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), bot.events.recv()).await {
            Ok(Some(Event::Invite { code })) => break code,
            Ok(Some(_)) => {}
            _ => {
                return Err(ProfileError::DemoStopped("contact").into());
            }
        }
    };
    engine
        .commands
        .send(Command::AcceptInvite {
            code,
            name: Some(BOT.into()),
        })
        .await
        .map_err(|_| ProfileError::DemoStopped("engine"))?;
    let bot_task = tokio::spawn(run_bot(bot.commands.clone(), bot.events));
    Ok(Demo {
        relay,
        engine,
        bot: bot_task,
    })
}

/// The demo contact's behaviour: greet, answer, open a group.
async fn run_bot(commands: mpsc::Sender<Command>, mut events: mpsc::Receiver<Event>) {
    let mut direct: Option<RoomId> = None;
    let mut group: Option<RoomId> = None;
    let mut you = None;
    let mut count = 0u32;
    while let Some(e) = events.recv().await {
        match e {
            Event::Room(r) if matches!(r.kind, RoomKind::Direct(_)) && direct.is_none() => {
                direct = Some(r.id);
                if let RoomKind::Direct(c) = r.kind {
                    you = Some(c);
                }
                for line in WELCOME {
                    let _ = commands
                        .send(Command::Send {
                            room: r.id,
                            text: (*line).into(),
                        })
                        .await;
                }
                let _ = commands
                    .send(Command::CreateGroup {
                        name: "demo-room".into(),
                    })
                    .await;
            }
            Event::Room(r) if r.kind == RoomKind::Group && group.is_none() => {
                group = Some(r.id);
                if let Some(c) = you {
                    let _ = commands
                        .send(Command::GroupAdd {
                            room: r.id,
                            contact: c,
                        })
                        .await;
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    let text = "This is a group room: sender keys, every message signed. Open it beside our chat with /vsplit.";
                    let _ = commands
                        .send(Command::Send {
                            room: r.id,
                            text: text.into(),
                        })
                        .await;
                }
            }
            Event::Message(m) if !m.from_me && m.kind == MessageKind::Text => {
                count += 1;
                let reply = match m.text.trim() {
                    t if t.ends_with('?') => "Good question. The relay only ever sees fixed-size cells on a steady beat, so it cannot tell.".to_owned(),
                    t if t.len() > 200 => format!("That was {} characters, split into equal parts and sealed one by one.", t.chars().count()),
                    t => format!("You said: {t} (message {count}, delivered end to end)"),
                };
                let _ = commands
                    .send(Command::Send {
                        room: m.room,
                        text: reply,
                    })
                    .await;
            }
            _ => {}
        }
    }
}

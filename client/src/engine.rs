//! The headless engine: profiles, sessions, the outbox, the store and the relay links.
//!
//! [`start`] runs the engine's state machine on a thread of its own and its relay links as
//! tokio tasks; a face talks to it through [`EngineHandle`]'s channels only.

mod core;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod link;
mod lock;
mod profile;
mod records;
#[cfg(test)]
mod scratch;
mod store;
mod wire;

use std::time::Duration;

use tokio::sync::mpsc;

use crate::api::{Command, Event};
pub use profile::{
    ProfileConfig, ProfilePaths, ReplacementCost, Unlocked, create, create_with, seed_history,
    time_key_replacement, unlock, unlock_with,
};

/// The longest text one message carries, in bytes; a longer one is refused.
pub const MAX_TEXT_BYTES: usize = core::MAX_TEXT;

/// Why the engine could not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed or is damaged.
    #[error("store: {0}")]
    Store(String),
    /// The passphrase does not open the profile.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// A profile problem (missing, exists, bad name, unreadable config).
    #[error("profile: {0}")]
    Profile(String),
    /// The profile is open in another process (the TUI, `--plain`, or another copy): one
    /// profile is used by one process at a time.
    #[error("profile {profile} is in use by {}", lock::holder_text(.program, .pid))]
    InUse {
        /// The profile's name.
        profile: String,
        /// The holder's process id, when it recorded one.
        pid: Option<u32>,
        /// The holder's program name, when it recorded one.
        program: Option<String>,
    },
    /// An invite code or contact problem, in words the user can act on.
    #[error("{0}")]
    Invite(String),
    /// A cryptographic operation failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// No such room, contact or member.
    #[error("no such {0}")]
    Unknown(&'static str),
    /// Only the group's admin can do that.
    #[error("only the group's creator can do that")]
    NotAdmin,
    /// The room is closed (left or removed).
    #[error("you are no longer in that group")]
    Closed,
    /// Nothing to send.
    #[error("nothing to send")]
    Empty,
    /// The message is too long.
    #[error("message too long (at most {0} bytes)")]
    TooLong(usize),
    /// Encoding failed.
    #[error("could not encode a message")]
    Encode,
    /// The system's random generator failed.
    #[error("no randomness available")]
    Random,
    /// No relay is configured.
    #[error("no relay: pass --relay hum://HOST:PORT#FINGERPRINT or set relay in the config file")]
    NoRelay,
}

/// What drives the engine's state machine.
#[derive(Debug)]
pub(crate) enum Input {
    /// A face's command.
    Command(Command),
    /// An operation from a relay.
    Down {
        /// The relay's address.
        relay: String,
        /// The operation.
        op: hum_shared::Down,
    },
    /// A link is on the beat.
    LinkUp {
        /// The relay's address.
        relay: String,
        /// The relay's tick at connect.
        tick: u64,
        /// The relay's tick length.
        tick_micros: u32,
    },
    /// A link is down.
    LinkDown {
        /// The relay's address.
        relay: String,
        /// When the next attempt is.
        retry_in_ms: u64,
        /// Why, when waiting will not help (a wrong certificate fingerprint).
        cause: Option<String>,
    },
    /// Cell rates of a link over the last second.
    Rates {
        /// The relay's address.
        relay: String,
        /// Cells sent per second.
        up: u32,
        /// Cells received per second.
        down: u32,
    },
    /// A periodic nudge: flush receipts, retry, roll epochs.
    Timer,
}

/// The running engine.
#[derive(Debug)]
pub struct EngineHandle {
    /// Send commands here.
    pub commands: mpsc::Sender<Command>,
    /// Events arrive here.
    pub events: mpsc::Receiver<Event>,
    thread: Option<std::thread::JoinHandle<Result<(), EngineError>>>,
}

impl EngineHandle {
    /// Waits for the engine to stop (after [`Command::Quit`]).
    ///
    /// # Errors
    /// The error that stopped the engine, if one did.
    pub async fn join(mut self) -> Result<(), EngineError> {
        EngineJoin {
            thread: self.thread.take(),
        }
        .join()
        .await
    }

    /// Splits into the command sender and event receiver, detaching the engine thread.
    pub fn split(mut self) -> (mpsc::Sender<Command>, mpsc::Receiver<Event>, EngineJoin) {
        let thread = self.thread.take();
        (
            self.commands.clone(),
            std::mem::replace(&mut self.events, mpsc::channel(1).1),
            EngineJoin { thread },
        )
    }
}

/// Waits for a detached engine to stop.
#[derive(Debug)]
pub struct EngineJoin {
    thread: Option<std::thread::JoinHandle<Result<(), EngineError>>>,
}

impl EngineJoin {
    /// Waits for the engine thread.
    ///
    /// # Errors
    /// The error that stopped the engine, if one did.
    pub async fn join(mut self) -> Result<(), EngineError> {
        let Some(t) = self.thread.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || {
            t.join()
                .unwrap_or(Err(EngineError::Store("the engine panicked".into())))
        })
        .await
        .unwrap_or(Err(EngineError::Store(
            "the engine could not be joined".into(),
        )))
    }
}

/// Starts the engine on an unlocked profile, with `home_relay` as the relay it receives
/// on. Must be called inside a tokio runtime.
///
/// # Errors
/// [`EngineError::NoRelay`] when `home_relay` is not a relay address; store errors while
/// loading.
pub fn start(profile: Unlocked, home_relay: &str) -> Result<EngineHandle, EngineError> {
    start_with(profile, home_relay, EngineOptions::default())
}

/// How the engine behaves where the defaults may not suit (tests shorten the waits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// How long a message the relay stored may go without its end-to-end receipt before
    /// it is deposited again (then twice as long each time, up to a day). It covers what
    /// the relay lost without a restart, such as envelopes expired while the recipient
    /// was away longer than the relay keeps them.
    pub resend_after: Duration,
    /// How soon after a write the store's WAL is copied into the database file and
    /// truncated: the longest that replaced key material (an old ratchet or sender-key
    /// state, a used invite prekey) stays on disk while the engine runs, give or take the
    /// engine's quarter-second timer. A clean stop truncates at once.
    pub checkpoint_every: Duration,
    /// How long an invite code this profile makes stays valid. An answer that arrives
    /// later is refused, and the invite's secret is deleted once it expires.
    pub invite_ttl: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            resend_after: Duration::from_secs(600),
            checkpoint_every: Duration::from_secs(1),
            invite_ttl: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Like [`start`], with options.
///
/// # Errors
/// As [`start`].
pub fn start_with(
    profile: Unlocked,
    home_relay: &str,
    options: EngineOptions,
) -> Result<EngineHandle, EngineError> {
    if home_relay.parse::<hum_shared::RelayAddr>().is_err() {
        return Err(EngineError::NoRelay);
    }
    let rt = tokio::runtime::Handle::current();
    let (input_tx, mut input_rx) = mpsc::unbounded_channel::<Input>();
    let (event_tx, mut event_rx) = mpsc::unbounded_channel::<Event>();
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(256);
    let (face_tx, face_rx) = mpsc::channel::<Event>(4096);

    let links_tx = input_tx.clone();
    // Each link runs on a thread of its own with its own small runtime, so the answer to a
    // beat never waits behind the UI, the engine or anything else the client is doing:
    // its timing must not tell whether the user is busy.
    let spawn: core::LinkSpawner = Box::new(move |relay, queue, stop| {
        let relay = relay.to_owned();
        let inputs = links_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("hum-link".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(link::run(relay, queue, inputs, stop)),
                    Err(e) => tracing::error!(cause = %e, "a link runtime could not start"),
                }
            });
        if let Err(e) = spawned {
            tracing::error!(cause = %e, "a link thread could not start");
        }
    });
    let mut core = core::Core::new(profile, home_relay.to_owned(), event_tx, spawn, options)?;

    // Commands and a timer join the links' inputs.
    let cmd_inputs = input_tx.clone();
    rt.spawn(async move {
        while let Some(c) = cmd_rx.recv().await {
            let quit = c == Command::Quit;
            if cmd_inputs.send(Input::Command(c)).is_err() || quit {
                break;
            }
        }
        // The face is gone: stop the engine cleanly.
        let _ = cmd_inputs.send(Input::Command(Command::Quit));
    });
    let timer_inputs = input_tx;
    rt.spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(250));
        loop {
            every.tick().await;
            if timer_inputs.send(Input::Timer).is_err() {
                break;
            }
        }
    });
    rt.spawn(async move {
        while let Some(e) = event_rx.recv().await {
            if face_tx.send(e).await.is_err() {
                break;
            }
        }
    });

    let thread = std::thread::Builder::new()
        .name("hum-engine".into())
        .spawn(move || -> Result<(), EngineError> {
            core.start()?;
            while let Some(input) = input_rx.blocking_recv() {
                match core.handle(input) {
                    Ok(true) => {}
                    Ok(false) => return Ok(()),
                    Err(e) => {
                        tracing::error!(cause = %e, "the engine stopped");
                        return Err(e);
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| EngineError::Store(format!("could not start the engine thread: {e}")))?;
    Ok(EngineHandle {
        commands: cmd_tx,
        events: face_rx,
        thread: Some(thread),
    })
}

//! Helpers for whole-system tests: temporary folders, in-process relays and engines, and
//! waiting for events with a deadline.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hum::api::{
    Command, ContactId, Delivery, ErrorKind, Event, MessageId, MessageKind, MessageView, RoomId,
    RoomSummary,
};
use hum::engine::ProfilePaths;
use hum_shared::crypto::{KdfParams, KdfPolicy};
use tokio::sync::mpsc;

/// A folder removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty folder under the system's temp dir.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn new(tag: &str) -> Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("hum-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How long the helpers that wait for one step of a conversation wait.
pub const STEP: Duration = Duration::from_secs(30);

/// A relay configuration for tests: loopback, a free port, a short tick and a generous lag
/// allowance (test machines are busy).
pub fn relay_config(tick: Duration) -> hum_relay::Config {
    let mut c = hum_relay::Config::ephemeral(tick);
    c.max_lag = 2_000;
    c
}

/// The engine options of a test user: the defaults, but a contact's receipts leave after
/// a tenth of a second on average (not half a minute), and the hum/2 link catches up and
/// deletes at once (not after random waits of up to 40 s), so a test waiting for
/// "delivered" or for what came while a user was away waits for the link, not for the
/// delays that hide its timing.
#[must_use]
pub fn options() -> hum::engine::EngineOptions {
    hum::engine::EngineOptions {
        receipt_delay: Duration::from_millis(100),
        route_pace: hum::engine::RoutePace::Immediate,
        ..Default::default()
    }
}

/// One test user: a profile and its running engine.
#[derive(Debug)]
pub struct Peer {
    /// Display name.
    pub name: String,
    /// Where its profile lives.
    pub paths: ProfilePaths,
    /// Commands go here.
    pub commands: mpsc::Sender<Command>,
    /// Events come from here.
    pub events: mpsc::Receiver<Event>,
    /// Events seen but not consumed by a wait.
    pub seen: Vec<Event>,
    /// The engine, to wait for when quitting: the profile stays locked until it stops.
    pub join: Option<hum::engine::EngineJoin>,
}

impl Peer {
    /// Creates a profile in `dir` and starts its engine on `relay`.
    ///
    /// # Errors
    /// When the profile or engine cannot start.
    pub fn create(dir: &Path, name: &str, relay: &str) -> Result<Self> {
        Self::create_with(dir, name, relay, options())
    }

    /// Re-opens an existing profile (after a stop) and starts its engine.
    ///
    /// # Errors
    /// When the profile or engine cannot start.
    pub fn reopen(dir: &Path, name: &str, relay: &str) -> Result<Self> {
        let paths = ProfilePaths::in_dir(name, dir.join(name));
        let unlocked =
            hum::engine::unlock_with(&paths, b"test passphrase", KdfPolicy::InsecureForTests)?;
        Self::run(name, paths, unlocked, relay, options())
    }

    /// Like [`Peer::create`], with engine options.
    ///
    /// # Errors
    /// When the profile or engine cannot start.
    pub fn create_with(
        dir: &Path,
        name: &str,
        relay: &str,
        options: hum::engine::EngineOptions,
    ) -> Result<Self> {
        let paths = ProfilePaths::in_dir(name, dir.join(name));
        let unlocked =
            hum::engine::create_with(&paths, name, b"test passphrase", KdfParams::INSECURE_FAST)?;
        Self::run(name, paths, unlocked, relay, options)
    }

    /// Creates a profile in `dir` and starts its engine with the hum/2 link on, entering
    /// at `entry` and homed at `home` (a mesh's two relays).
    ///
    /// # Errors
    /// When the profile or engine cannot start.
    pub fn create_mesh(
        dir: &Path,
        name: &str,
        entry: &hum_shared::RelayAddr,
        home: &hum_shared::RelayAddr,
        options: hum::engine::EngineOptions,
    ) -> Result<Self> {
        let paths = ProfilePaths::in_dir(name, dir.join(name));
        let unlocked =
            hum::engine::create_with(&paths, name, b"test passphrase", KdfParams::INSECURE_FAST)?;
        let relays = hum::engine::Relays {
            entry: entry.clone(),
            home: home.clone(),
        };
        Self::start(name, paths, unlocked, relays, options)
    }

    fn run(
        name: &str,
        paths: ProfilePaths,
        unlocked: hum::engine::Unlocked,
        relay: &str,
        options: hum::engine::EngineOptions,
    ) -> Result<Self> {
        let relays = hum::engine::Relays::single(relay.parse()?);
        Self::start(name, paths, unlocked, relays, options)
    }

    fn start(
        name: &str,
        paths: ProfilePaths,
        unlocked: hum::engine::Unlocked,
        relays: hum::engine::Relays,
        options: hum::engine::EngineOptions,
    ) -> Result<Self> {
        let (commands, events, join) = hum::engine::start_with(unlocked, relays, options)?.split();
        Ok(Self {
            name: name.to_owned(),
            paths,
            commands,
            events,
            seen: Vec::new(),
            join: Some(join),
        })
    }

    /// Sends a command.
    ///
    /// # Errors
    /// When the engine is gone.
    pub async fn send(&self, c: Command) -> Result<()> {
        self.commands.send(c).await.context("the engine is gone")
    }

    /// Waits up to `limit` for an event `f` picks, keeping the others in `seen`.
    ///
    /// # Errors
    /// On timeout or when the engine stops.
    pub async fn wait<T>(
        &mut self,
        limit: Duration,
        what: &str,
        mut f: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T> {
        if let Some(i) = self.seen.iter().position(|e| f(e).is_some()) {
            let e = self.seen.remove(i);
            if let Some(t) = f(&e) {
                return Ok(t);
            }
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let e = match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => e,
                Ok(None) => bail!("{}: the engine stopped while waiting for {what}", self.name),
                Err(_) => bail!(
                    "{}: timed out waiting for {what}; errors seen: {:?}",
                    self.name,
                    self.errors()
                ),
            };
            if let Some(t) = f(&e) {
                return Ok(t);
            }
            self.seen.push(e);
            if self.seen.len() > 100_000 {
                self.seen.drain(..50_000);
            }
        }
    }

    /// Errors seen so far.
    pub fn errors(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Error { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// Waits for the next error and returns its kind and text.
    ///
    /// # Errors
    /// On timeout.
    pub async fn next_error(&mut self, limit: Duration) -> Result<(ErrorKind, String)> {
        self.wait(limit, "an error", |e| match e {
            Event::Error { kind, message } => Some((*kind, message.clone())),
            _ => None,
        })
        .await
    }

    /// Sends `text` to `room`.
    ///
    /// # Errors
    /// When the engine is gone.
    pub async fn say(&self, room: RoomId, text: impl Into<String>) -> Result<()> {
        self.send(Command::Send {
            room,
            text: text.into(),
        })
        .await
    }

    /// Waits for the next message someone else wrote (a text, not a room event).
    ///
    /// # Errors
    /// On timeout.
    pub async fn next_message(&mut self) -> Result<MessageView> {
        self.wait(STEP, "a message", |e| match e {
            Event::Message(m) if !m.from_me && m.kind == MessageKind::Text => Some(m.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for the next text `sender` wrote, in any room, and returns it.
    ///
    /// # Errors
    /// On timeout.
    pub async fn next_text(&mut self, sender: &str) -> Result<String> {
        self.wait(STEP, &format!("a text from {sender}"), |e| match e {
            Event::Message(m)
                if !m.from_me && m.kind == MessageKind::Text && m.sender == sender =>
            {
                Some(m.text.clone())
            }
            _ => None,
        })
        .await
    }

    /// Sends `text` to `room` and returns the id of the message as it is queued.
    ///
    /// # Errors
    /// On timeout or when the engine is gone.
    pub async fn say_queued(&mut self, room: RoomId, text: impl Into<String>) -> Result<MessageId> {
        self.say(room, text).await?;
        self.wait(STEP, "own message queued", |e| match e {
            Event::Message(m)
                if m.from_me && m.room == room && m.delivery == Some(Delivery::Queued) =>
            {
                Some(m.id)
            }
            _ => None,
        })
        .await
    }

    /// Waits until the message `id` reaches `state`.
    ///
    /// # Errors
    /// On timeout.
    pub async fn delivery(&mut self, id: MessageId, state: Delivery) -> Result<()> {
        self.wait(STEP, &format!("{state}"), |e| {
            matches!(e, Event::Delivery { id: i, state: s, .. } if *i == id && *s == state)
                .then_some(())
        })
        .await
    }

    /// Waits until a message in `room` is delivered.
    ///
    /// # Errors
    /// On timeout.
    pub async fn delivered_in(&mut self, room: RoomId) -> Result<()> {
        self.delivery_in(room, Delivery::Delivered).await
    }

    /// Waits until a message in `room` is sent: its relays (every member's, for a group)
    /// stored it.
    ///
    /// # Errors
    /// On timeout.
    pub async fn sent_in(&mut self, room: RoomId) -> Result<()> {
        self.delivery_in(room, Delivery::Sent).await
    }

    /// Waits until a message in `room` reaches `state`.
    async fn delivery_in(&mut self, room: RoomId, state: Delivery) -> Result<()> {
        self.wait(STEP, "a delivery", |e| {
            matches!(e, Event::Delivery { room: r, state: s, .. } if *r == room && *s == state)
                .then_some(())
        })
        .await
    }

    /// Waits for a room change `f` accepts and returns the room.
    ///
    /// # Errors
    /// On timeout.
    pub async fn room_where(
        &mut self,
        what: &str,
        f: impl Fn(&RoomSummary) -> bool,
    ) -> Result<RoomSummary> {
        self.wait(STEP, what, |e| match e {
            Event::Room(r) if f(r) => Some(r.clone()),
            _ => None,
        })
        .await
    }

    /// Loads the newest `limit` messages of `room`, oldest first.
    ///
    /// # Errors
    /// On timeout.
    pub async fn history(&mut self, room: RoomId, limit: u32) -> Result<Vec<MessageView>> {
        self.send(Command::LoadHistory {
            room,
            before: None,
            limit,
        })
        .await?;
        self.wait(STEP, "the history", |e| match e {
            Event::History {
                room: r, messages, ..
            } if *r == room => Some(messages.clone()),
            _ => None,
        })
        .await
    }

    /// Makes an invite code.
    ///
    /// # Errors
    /// On timeout.
    pub async fn invite(&mut self) -> Result<String> {
        self.send(Command::CreateInvite).await?;
        self.wait(Duration::from_secs(10), "an invite", |e| match e {
            Event::Invite { code } => Some(code.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for a contact named `name` and returns its id and room.
    ///
    /// # Errors
    /// On timeout.
    pub async fn contact(&mut self, name: &str) -> Result<(ContactId, RoomId)> {
        let cid = self
            .wait(
                Duration::from_secs(20),
                &format!("contact {name}"),
                |e| match e {
                    Event::Contact { id, name: n } if n == name => Some(*id),
                    _ => None,
                },
            )
            .await?;
        let room = self
            .wait(
                Duration::from_secs(20),
                &format!("room of {name}"),
                |e| match e {
                    Event::Room(r) if r.kind == hum::api::RoomKind::Direct(cid) => Some(r.id),
                    _ => None,
                },
            )
            .await?;
        Ok((cid, room))
    }

    /// Stops the engine and waits until it has stopped (and closed the profile).
    ///
    /// # Errors
    /// When it is already gone, or stopped with an error.
    pub async fn quit(mut self) -> Result<()> {
        self.send(Command::Quit).await?;
        if let Some(join) = self.join.take() {
            join.join().await?;
        }
        Ok(())
    }
}

/// Makes `a` and `b` contacts: `a` invites, `b` accepts. Returns (b as seen by a, a as
/// seen by b), each with its room.
///
/// # Errors
/// On timeout.
pub async fn befriend(
    a: &mut Peer,
    b: &mut Peer,
) -> Result<((ContactId, RoomId), (ContactId, RoomId))> {
    let code = a.invite().await?;
    b.send(Command::AcceptInvite { code, name: None }).await?;
    let a_in_b = b.contact(&a.name).await?;
    let b_in_a = a.contact(&b.name).await?;
    Ok((b_in_a, a_in_b))
}

/// Pins the calling thread (and the threads it starts afterwards) to one CPU core,
/// counted from the last when `from_last` (so the relay and the observer can have a core
/// of their own, as if on other machines). Returns whether it could.
pub fn pin_to_core(index: usize, from_last: bool) -> bool {
    let Some(mut cores) = core_affinity::get_core_ids() else {
        return false;
    };
    if cores.len() < 2 {
        return false;
    }
    if from_last {
        cores.reverse();
    }
    cores
        .get(index)
        .is_some_and(|c| core_affinity::set_for_current(*c))
}

/// A relay running on a thread with a runtime of its own, as if on another machine. It
/// stops when the returned guard is dropped.
#[derive(Debug)]
pub struct OwnThreadRelay {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for OwnThreadRelay {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a relay on a thread of its own; returns its guard and address.
///
/// # Errors
/// When the thread, the runtime or the relay cannot start.
pub fn relay_on_own_thread(
    config: hum_relay::Config,
) -> Result<(OwnThreadRelay, hum_shared::RelayAddr)> {
    relay_on_own_thread_with(config, None)
}

/// Like [`relay_on_own_thread`], listening on `listener` when one is given (a port bound
/// before the relay starts, as a mesh's relays need).
///
/// # Errors
/// When the thread, the runtime or the relay cannot start.
pub fn relay_on_own_thread_with(
    config: hum_relay::Config,
    listener: Option<std::net::TcpListener>,
) -> Result<(OwnThreadRelay, hum_shared::RelayAddr)> {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            pin_to_core(0, true);
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = addr_tx.send(Err(anyhow::Error::from(e)));
                    return;
                }
            };
            rt.block_on(async move {
                let bound = match listener.map(tokio::net::TcpListener::from_std) {
                    Some(Ok(l)) => hum_relay::Relay::bind_on(config, l).await,
                    Some(Err(e)) => Err(hum_relay::RelayError::Io(e)),
                    None => hum_relay::Relay::bind(config).await,
                };
                match bound {
                    Ok(relay) => {
                        let handle = relay.spawn();
                        let _ = addr_tx.send(Ok(handle.address().clone()));
                        let _ = stop_rx.await;
                        handle.shutdown().await;
                    }
                    Err(e) => {
                        let _ = addr_tx.send(Err(e.into()));
                    }
                }
            });
        })?;
    let addr = addr_rx.recv()??;
    Ok((
        OwnThreadRelay {
            stop: Some(stop_tx),
            thread: Some(thread),
        },
        addr,
    ))
}

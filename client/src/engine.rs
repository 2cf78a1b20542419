//! The headless engine: profiles, sessions, the outbox, the store and the relay links.
//!
//! [`start`] runs the engine's state machine on a thread of its own and its relay links as
//! tokio tasks; a face talks to it through [`EngineHandle`]'s channels only.

mod core;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod link;
mod lock;
mod profile;
mod records;
mod route_link;
#[cfg(test)]
mod scratch;
mod store;
mod wire;

use std::collections::HashMap;
use std::time::Duration;

use hum_shared::RelayAddr;
use tokio::sync::mpsc;

use crate::api::{Command, Event};
pub use error::{EngineError, Inconsistency, ProfileError, Refusal, StoreError};
pub use profile::{
    ProfileConfig, ProfilePaths, ReplacementCost, Unlocked, create, create_with, seed_history,
    time_key_replacement, unlock, unlock_with,
};

/// The longest text one message carries, in bytes; a longer one is refused.
pub const MAX_TEXT_BYTES: usize = core::MAX_TEXT;

/// What drives the engine's state machine.
#[derive(Debug)]
pub(crate) enum Input {
    /// A face's command.
    Command(Command),
    /// An operation from a relay.
    Down {
        /// The relay's address.
        relay: RelayAddr,
        /// The operation.
        op: hum_shared::Down,
    },
    /// A link is on the beat.
    LinkUp {
        /// The relay's address.
        relay: RelayAddr,
        /// The link's connection, counted from 1: operations sent for an older one are
        /// dropped.
        conn: u64,
        /// The relay's tick at connect.
        tick: u64,
        /// The relay's tick length.
        tick_micros: u32,
    },
    /// A link is down.
    LinkDown {
        /// The relay's address.
        relay: RelayAddr,
        /// When the next attempt is.
        retry_in_ms: u64,
        /// Why, when waiting will not help (a wrong certificate fingerprint).
        cause: Option<String>,
    },
    /// Cell rates of a link over the last second.
    Rates {
        /// The relay's address.
        relay: RelayAddr,
        /// Cells sent per second.
        up: u32,
        /// Cells received per second.
        down: u32,
    },
    /// A report of the hum/2 link.
    Route(route_link::RouteReport),
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
        tokio::task::spawn_blocking(move || t.join().unwrap_or(Err(EngineError::Panicked)))
            .await
            .unwrap_or(Err(EngineError::Panicked))
    }
}

/// One running link, as the runtime holds it.
struct LinkTask {
    ops: mpsc::Sender<link::LinkOp>,
    /// Operations the link's channel had no room for yet, oldest first: the engine never
    /// waits on a link, and nothing is dropped while the link lives.
    waiting: std::collections::VecDeque<link::LinkOp>,
    control: tokio::sync::watch::Sender<link::LinkControl>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LinkTask {
    /// Hands the link what its channel has room for, in order. What does not fit waits
    /// for the next input (the timer brings one every 250 ms); a link that is gone takes
    /// nothing more.
    fn flush(&mut self) {
        flush_waiting(&mut self.waiting, &self.ops);
    }
}

/// Hands `ops` what its channel has room for from `waiting`, in order; what does not fit
/// stays first in line, and nothing piles up for a channel that is closed.
fn flush_waiting<T>(waiting: &mut std::collections::VecDeque<T>, ops: &mpsc::Sender<T>) {
    while let Some(op) = waiting.pop_front() {
        match ops.try_send(op) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(op)) => {
                waiting.push_front(op);
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                waiting.clear();
                return;
            }
        }
    }
}

/// The hum/2 link as the runtime holds it.
struct RouteTask {
    link: route_link::RouteLink,
    /// Operations its channel had no room for yet, oldest first (as [`LinkTask`]'s).
    waiting: std::collections::VecDeque<route_link::RouteOp>,
}

impl RouteTask {
    /// Hands the link what its channel has room for, in order.
    fn flush(&mut self) {
        flush_waiting(&mut self.waiting, &self.link.ops);
    }
}

/// The thin runtime around the core, on the engine's thread: it reads the clock, hands
/// the core its inputs, and carries out the effects it returns (events to the faces,
/// operations to the links, links opened and stopped). It decides nothing.
struct Runtime {
    events: mpsc::UnboundedSender<Event>,
    inputs: mpsc::UnboundedSender<Input>,
    links: HashMap<RelayAddr, LinkTask>,
    route: Option<RouteTask>,
}

impl Runtime {
    /// Runs the core until it stops.
    fn run(
        &mut self,
        mut core: core::Core,
        inputs: &mut mpsc::UnboundedReceiver<Input>,
    ) -> Result<(), EngineError> {
        let mut effects = Vec::new();
        let started = core.start(core::Now::system(), &mut effects);
        self.apply(&mut effects);
        started?;
        while let Some(input) = inputs.blocking_recv() {
            let step = core.handle(input, core::Now::system(), &mut effects);
            self.apply(&mut effects);
            match step {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => {
                    tracing::error!(cause = %e, "the engine stopped");
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, effects: &mut Vec<core::Effect>) {
        self.apply_effects(effects);
        for l in self.links.values_mut() {
            l.flush();
        }
        if let Some(r) = &mut self.route {
            r.flush();
        }
    }

    fn apply_effects(&mut self, effects: &mut Vec<core::Effect>) {
        for effect in effects.drain(..) {
            match effect {
                core::Effect::Emit(e) => {
                    let _ = self.events.send(e);
                }
                core::Effect::OpenLink { relay } => self.open_link(relay),
                core::Effect::Send { relay, conn, op } => {
                    if let Some(l) = self.links.get_mut(&relay) {
                        l.waiting.push_back(link::LinkOp { conn, op });
                    }
                }
                core::Effect::Reconnect { relay } => {
                    if let Some(l) = self.links.get(&relay) {
                        l.control.send_modify(|c| c.retries += 1);
                    }
                }
                core::Effect::ReconnectRoute => {
                    if let Some(r) = &self.route {
                        r.link.control.send_modify(|c| c.retries += 1);
                    }
                }
                core::Effect::StopLinks => {
                    for l in self.links.values() {
                        l.control.send_modify(|c| c.stop = true);
                    }
                    if let Some(r) = &self.route {
                        r.link.control.send_modify(|c| c.stop = true);
                    }
                }
                core::Effect::OpenRoute(setup) => self.open_route(*setup),
                core::Effect::Route(op) => {
                    if let Some(r) = &mut self.route {
                        r.waiting.push_back(op);
                    }
                }
            }
        }
    }

    /// Starts a link on a thread of its own with its own small runtime, so the answer to
    /// a beat never waits behind the UI, the engine or anything else the client is doing:
    /// its timing must not tell whether the user is busy.
    fn open_link(&mut self, relay: RelayAddr) {
        if self.links.contains_key(&relay) {
            return;
        }
        let (ops, ops_rx) = mpsc::channel(link::LINK_QUEUE);
        let (control, control_rx) = tokio::sync::watch::channel(link::LinkControl::default());
        let inputs = self.inputs.clone();
        let name = relay.clone();
        let spawned = std::thread::Builder::new()
            .name("hum-link".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(link::run(
                        name,
                        link::LinkOps::new(ops_rx),
                        inputs,
                        control_rx,
                    )),
                    Err(e) => tracing::error!(cause = %e, "a link runtime could not start"),
                }
            });
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(cause = %e, "a link thread could not start");
                None
            }
        };
        self.links.insert(
            relay,
            LinkTask {
                ops,
                waiting: std::collections::VecDeque::new(),
                control,
                thread,
            },
        );
    }

    /// Starts the hum/2 link on a thread of its own; its reports come back as inputs.
    fn open_route(&mut self, setup: route_link::RouteSetup) {
        if self.route.is_some() {
            return;
        }
        let inputs = self.inputs.clone();
        let reports = route_link::Reports::new(move |r| inputs.send(Input::Route(r)).is_ok());
        match route_link::RouteLink::spawn(setup, reports) {
            Ok(link) => {
                self.route = Some(RouteTask {
                    link,
                    waiting: std::collections::VecDeque::new(),
                });
                below_the_link();
            }
            Err(e) => tracing::error!(cause = %e, "the hum/2 link thread could not start"),
        }
    }

    /// Stops every link and waits for its thread.
    fn stop_links(&mut self) {
        if let Some(mut r) = self.route.take() {
            r.link.stop();
        }
        for (_, mut l) in self.links.drain() {
            l.control.send_modify(|c| c.stop = true);
            drop(l.ops);
            if let Some(t) = l.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Where a profile connects and where it receives (docs/RELAY.md, roles): one
/// connection, to the entry relay, carries everything; the home relay holds the profile's
/// buckets. A single relay is both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relays {
    /// The relay the client connects to.
    pub entry: RelayAddr,
    /// The relay that holds what others send this profile.
    pub home: RelayAddr,
}

impl Relays {
    /// One relay as entry and home (`--relay`, the embedded relay, the demo).
    pub fn single(relay: RelayAddr) -> Self {
        Self {
            entry: relay.clone(),
            home: relay,
        }
    }

    /// From a configuration: `relay` alone (a single relay), or `entry` and `home` (a
    /// mesh). `Ok(None)` when nothing is configured.
    ///
    /// # Errors
    /// [`EngineError::RelayConfig`] for an address that does not parse, `relay` given
    /// with `entry` or `home`, or one of `entry` and `home` without the other.
    pub fn from_config(
        relay: Option<&str>,
        entry: Option<&str>,
        home: Option<&str>,
    ) -> Result<Option<Self>, EngineError> {
        let parse = |which: &'static str, a: &str| {
            a.parse::<RelayAddr>()
                .map_err(|e| EngineError::RelayConfig(format!("{which}: {e}")))
        };
        match (relay, entry, home) {
            (None, None, None) => Ok(None),
            (Some(r), None, None) => Ok(Some(Self::single(parse("relay", r)?))),
            (None, Some(e), Some(h)) => Ok(Some(Self {
                entry: parse("entry", e)?,
                home: parse("home", h)?,
            })),
            (Some(_), _, _) => Err(EngineError::RelayConfig(
                "relay names a single relay; give it alone, or entry and home instead".into(),
            )),
            (None, Some(_), None) | (None, None, Some(_)) => Err(EngineError::RelayConfig(
                "entry and home go together: the relay you connect to and the one you receive on"
                    .into(),
            )),
        }
    }

    /// Whether entry and home are the same relay (which must then be a single relay).
    pub fn is_single(&self) -> bool {
        self.entry == self.home
    }
}

/// Starts the engine on an unlocked profile, connecting to `relays.entry` and receiving
/// on `relays.home`. Must be called inside a tokio runtime.
///
/// # Errors
/// Store errors while loading.
pub fn start(profile: Unlocked, relays: Relays) -> Result<EngineHandle, EngineError> {
    start_with(profile, relays, EngineOptions::default())
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
    /// Whether the engine runs the hum/2 link (one connection to the entry relay,
    /// docs/ENGINE.md), on by default. With it, hum/1's links carry only what hum/2
    /// cannot yet (contacts whose home is not known, an invite's used notice), and only
    /// to a single relay that is entry and home at once. Off, hum/1 carries everything.
    pub route_link: bool,
    /// With the hum/2 link: the mean of the random wait (exponential) before a contact's
    /// receipts leave, unless a text to them takes them along sooner.
    pub receipt_delay: Duration,
    /// With the hum/2 link: the pace of its loops, catch-ups and deletes.
    pub route_pace: RoutePace,
}

/// The pace of the hum/2 link's own traffic: its loops, each epoch's catch-up and the
/// deletes of what was read (docs/PROTOCOL.md, hum/2 §H5 and §H6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoutePace {
    /// The design's: a loop every minute on average, each catch-up after a random wait
    /// of up to 40 s, each delete after a mean 30 s. The waits hide when a user came
    /// online and what they read.
    #[default]
    Design,
    /// No loops; catch-ups and deletes at once. For tests only: it shows the relays when
    /// this client came online and what it read.
    Immediate,
}

impl RoutePace {
    /// The session behaviour, given the entry relay's tick in microseconds.
    pub(crate) fn behaviour(self) -> fn(u32) -> hum_shared::route::session::Behaviour {
        use hum_shared::route::session::Behaviour;
        match self {
            Self::Design => Behaviour::design,
            Self::Immediate => |_| Behaviour::immediate(),
        }
    }
}

impl Default for EngineOptions {
    /// The design's options. Builds with debug assertions (`cargo build`, `cargo test`)
    /// honour `HUM_INSECURE_FAST_ROUTE`, so that tests which drive the real binary need
    /// not wait out the hum/2 link's random delays: with it set, the link paces itself
    /// [`RoutePace::Immediate`] and receipts wait a tenth of a second on average. Release
    /// builds do not contain this code.
    fn default() -> Self {
        let design = Self {
            resend_after: Duration::from_secs(600),
            checkpoint_every: Duration::from_secs(1),
            invite_ttl: Duration::from_secs(7 * 86_400),
            route_link: true,
            receipt_delay: Duration::from_secs(30),
            route_pace: RoutePace::Design,
        };
        #[cfg(debug_assertions)]
        if std::env::var_os("HUM_INSECURE_FAST_ROUTE").is_some() {
            return Self {
                receipt_delay: Duration::from_millis(100),
                route_pace: RoutePace::Immediate,
                ..design
            };
        }
        design
    }
}

/// The nice value the engine thread drops to once its hum/2 link runs: well below the
/// link thread (which keeps the default), so that when the machine is busy the link's
/// wake-up at its write deadline does not queue behind the engine's own work (history
/// loads, sealing, the store): the answer's timing must not tell that the user is busy.
const ENGINE_NICE: i32 = 10;

/// Lowers the calling thread (the engine's) to [`ENGINE_NICE`]. On Linux a nice value
/// belongs to a thread: this one and the threads it starts later run lower, the link
/// thread started before keeps its own. Raising it back would need a privilege, so it
/// is lowered once, after the link started. A refusal only costs that protection.
fn below_the_link() {
    let Ok(now) = rustix::process::getpriority_process(None) else {
        return;
    };
    if now < ENGINE_NICE
        && let Err(e) = rustix::process::setpriority_process(None, ENGINE_NICE)
    {
        tracing::debug!(cause = %e, "the engine thread kept its priority");
    }
}

/// Like [`start`], with options.
///
/// # Errors
/// As [`start`].
pub fn start_with(
    profile: Unlocked,
    relays: Relays,
    options: EngineOptions,
) -> Result<EngineHandle, EngineError> {
    let rt = tokio::runtime::Handle::current();
    let (input_tx, mut input_rx) = mpsc::unbounded_channel::<Input>();
    let (event_tx, mut event_rx) = mpsc::unbounded_channel::<Event>();
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(256);
    let (face_tx, face_rx) = mpsc::channel::<Event>(4096);

    let now = core::Now::system();
    let core = core::Core::new(profile, relays, options, now)?;
    let mut runtime = Runtime {
        events: event_tx,
        inputs: input_tx.clone(),
        links: HashMap::new(),
        route: None,
    };

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
            let result = runtime.run(core, &mut input_rx);
            // Every link stops (told so, or its control gone with the runtime's), and is
            // waited for: a quit returns once every link has closed its connection.
            runtime.stop_links();
            result
        })
        .map_err(EngineError::Thread)?;
    Ok(EngineHandle {
        commands: cmd_tx,
        events: face_rx,
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str =
        "hum://127.0.0.1:7667#0000000000000000000000000000000000000000000000000000000000000000";
    const B: &str =
        "hum://127.0.0.1:7668#1111111111111111111111111111111111111111111111111111111111111111";

    /// `relay` alone is a single relay, `entry` with `home` a mesh; anything else says
    /// what is wrong.
    #[test]
    fn relays_come_from_relay_or_from_entry_and_home() -> Result<(), EngineError> {
        assert_eq!(Relays::from_config(None, None, None)?, None);
        let single = Relays::from_config(Some(A), None, None)?.ok_or(EngineError::NoRelay)?;
        assert!(single.is_single());
        assert_eq!(single.entry.to_string(), A);
        let mesh = Relays::from_config(None, Some(A), Some(B))?.ok_or(EngineError::NoRelay)?;
        assert!(!mesh.is_single());
        assert_eq!(
            (mesh.entry.to_string(), mesh.home.to_string()),
            (A.into(), B.into())
        );
        for (r, e, h) in [
            (Some(A), Some(A), None),
            (Some(A), None, Some(B)),
            (None, Some(A), None),
            (None, None, Some(B)),
            (None, Some("nonsense"), Some(B)),
            (Some("hum://x"), None, None),
        ] {
            let err = Relays::from_config(r, e, h);
            assert!(
                matches!(err, Err(EngineError::RelayConfig(_))),
                "{r:?} {e:?} {h:?}: {err:?}"
            );
        }
        Ok(())
    }

    /// A link whose channel is full holds the engine up no longer: what does not fit
    /// waits, in order, and goes as the link takes what it has.
    #[test]
    fn operations_a_full_link_has_no_room_for_wait_in_order() {
        let (ops, mut rx) = mpsc::channel(2);
        let (control, _control_rx) = tokio::sync::watch::channel(link::LinkControl::default());
        let mut l = LinkTask {
            ops,
            waiting: std::collections::VecDeque::new(),
            control,
            thread: None,
        };
        let op = |after: u64| link::LinkOp {
            conn: 1,
            op: hum_shared::Up::Subscribe {
                capability: hum_shared::crypto::Capability::from_bytes([7; 32]),
                after,
            },
        };
        let after = |o: link::LinkOp| match o.op {
            hum_shared::Up::Subscribe { after, .. } => after,
            _ => u64::MAX,
        };
        l.waiting.extend((0..5).map(op));
        l.flush();
        assert_eq!(l.waiting.len(), 3);
        let mut got = Vec::new();
        while let Ok(o) = rx.try_recv() {
            got.push(after(o));
        }
        l.flush();
        while let Ok(o) = rx.try_recv() {
            got.push(after(o));
        }
        l.flush();
        while let Ok(o) = rx.try_recv() {
            got.push(after(o));
        }
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        assert!(l.waiting.is_empty());
        // A link that is gone takes nothing more, and nothing piles up for it.
        drop(rx);
        l.waiting.extend((0..3).map(op));
        l.flush();
        assert!(l.waiting.is_empty());
    }

    /// A panicked engine thread is told apart from a store failure.
    #[tokio::test]
    async fn a_panicked_engine_says_so() {
        let thread = std::thread::spawn(|| -> Result<(), EngineError> {
            std::panic::resume_unwind(Box::new("a bug"))
        });
        let join = EngineJoin {
            thread: Some(thread),
        };
        let result = join.join().await;
        assert!(matches!(result, Err(EngineError::Panicked)), "{result:?}");
        assert_eq!(
            result.err().map(|e| e.kind()),
            Some(crate::api::ErrorKind::Panicked)
        );
    }
}

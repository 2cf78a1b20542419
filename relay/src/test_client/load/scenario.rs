//! The load run: a known world of users chatting over real relays, with churn, across
//! epoch changes, writing the ground truth as it goes and measuring what a user would
//! notice (latency, delivery, catch-up after an absence, bytes on the wire).
//!
//! Time-like settings come in two kinds. Rates that make the load (conversations,
//! loops) and protocol delays (receipts, catch-ups) are real time. Durations that decide
//! who is online across which epoch (sessions, absences, the epoch itself) may be
//! scaled down together, so that a run of minutes crosses epoch changes with the churn
//! an hour-long epoch would see.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hum_shared::route::RelayId;
use tokio::sync::{Semaphore, mpsc};

use super::super::{
    Behaviour, Closed, Event, NotStarted, Origin, Profile, Rng, SendKind, Target, TestClient, Via,
    padded_parts,
};
use super::figures::{CatchUpRow, Percentiles, Report};
use super::source;
use super::truth::{SendRecord, To, Truth};
use super::world::{Shape, Topology, World};

/// What the run does.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The world.
    pub shape: Shape,
    /// Seed of the world and of every behaviour (keys are always fresh).
    pub seed: u64,
    /// The relays' tick.
    pub tick: Duration,
    /// The mailbox relays' bucket count.
    pub buckets: u16,
    /// The mailbox relays' ticks per epoch.
    pub epoch_ticks: u32,
    /// The main phase: churn and chat.
    pub run: Duration,
    /// The last phase, at most: everyone online, no new conversations, until every
    /// message is delivered and every catch-up done.
    pub settle: Duration,
    /// Mean session (exponential).
    pub session_mean: Duration,
    /// Mean time offline between sessions (exponential).
    pub offline_mean: Duration,
    /// Share of users away for the whole main phase (back in the last phase).
    pub away_share: f64,
    /// Mean time between the conversations an online user starts.
    pub conversation_every: Duration,
    /// Mean texts per conversation (at least one).
    pub burst: f64,
    /// Mean gap between the texts of a conversation.
    pub gap: Duration,
    /// Chance that a text from a contact is answered (a tenth of that in a group).
    pub reply_chance: f64,
    /// Mean time before an answer.
    pub think: Duration,
    /// Share of conversations held in one of the user's groups (if it has any).
    pub group_share: f64,
    /// Mean time between a client's loops.
    pub loop_every: Duration,
    /// Mean delay of a receipt sent on its own.
    pub receipt_delay: Duration,
    /// Mean delay before each epoch's catch-up.
    pub catch_up_delay: Duration,
    /// TLS handshakes at a time.
    pub connect_gate: usize,
}

impl Spec {
    /// The proof's load for `users` users at `tick`, epochs of `epoch_ticks`, with
    /// sessions and absences divided by `scale` (an hour-long epoch at 100 ms is 36,000
    /// ticks; at scale 12, 3,000 ticks and a mean session of 2.5 minutes).
    pub fn proof(users: usize, tick: Duration, scale: f64) -> Self {
        let scale = scale.max(1.0);
        let scaled = |secs: f64| Duration::from_secs_f64(secs / scale);
        let epoch_secs = 3_600.0 / scale;
        let epoch_ticks = (epoch_secs / tick.as_secs_f64()).round().max(1.0) as u32;
        Self {
            shape: Shape {
                users,
                contacts: (2, 10),
                groups: 30,
                group_size: (3, 20),
            },
            seed: 1,
            tick,
            buckets: 8,
            epoch_ticks,
            run: Duration::from_secs_f64(epoch_secs * 2.2),
            settle: Duration::from_secs(180),
            session_mean: scaled(30.0 * 60.0),
            offline_mean: scaled(15.0 * 60.0),
            away_share: 0.05,
            conversation_every: Duration::from_secs(300),
            burst: 3.0,
            gap: Duration::from_secs(8),
            reply_chance: 0.5,
            think: Duration::from_secs(15),
            group_share: 0.2,
            loop_every: Duration::from_secs(60),
            receipt_delay: Duration::from_secs(30),
            catch_up_delay: Duration::from_secs(20),
            connect_gate: 32,
        }
    }

    fn ticks(&self, d: Duration) -> f64 {
        d.as_secs_f64() / self.tick.as_secs_f64().max(1e-6)
    }

    fn behaviour(&self) -> Behaviour {
        Behaviour {
            loop_every: Some(self.ticks(self.loop_every)).filter(|t| *t > 0.0),
            receipt_delay: self.ticks(self.receipt_delay),
            catch_up_delay: self.ticks(self.catch_up_delay),
            catch_up_exponential: false,
        }
    }
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The ground truth could not be written.
    #[error("truth: {0}")]
    Truth(#[from] std::io::Error),
    /// Not one client got going.
    #[error("no client could connect: {0}")]
    NoClients(String),
}

/// What the run is doing, for a sampler beside it.
#[derive(Debug, Default)]
pub struct Progress {
    /// Clients connected now.
    pub online: AtomicUsize,
    /// 0 starting, 1 main phase, 2 settling, 3 done.
    pub phase: AtomicUsize,
}

/// Unix milliseconds now.
fn now_ms() -> u64 {
    super::super::unix_ms()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    /// A session starts or ends.
    Flip(usize),
    /// A user starts a conversation.
    Converse(usize),
    /// The next text of a conversation: user, target, texts left after this one.
    Text(usize, Target, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Offline,
    Connecting,
    Online,
    Closing,
    /// The profile was lost (a session task failed); counted, never back.
    Lost,
}

struct Seat {
    state: State,
    profile: Option<Profile>,
    client: Option<TestClient>,
    /// Away for the whole main phase.
    away: bool,
    /// When the current session started (or the last one ended).
    since: u64,
    /// When the user went offline (its absence started).
    left: u64,
    next_msg: u64,
}

/// One text, for the figures.
struct Message {
    parts: u16,
    queued: u64,
    backlog_free: bool,
    main: bool,
    /// Sent to a group.
    group: bool,
    /// Whether any of its parts was deposited.
    left: bool,
    /// Recipient: parts got, all live, when whole.
    got: HashMap<usize, (HashSet<u16>, bool, Option<u64>)>,
}

enum Transition {
    Up(usize, Result<TestClient, NotStarted>),
    Down(usize, Result<Box<Closed>, String>),
}

/// A returning user whose catch-up is timed.
struct Return {
    user: usize,
    start: u64,
    missed: u32,
    /// Texts for it queued while it was away and not whole when it came back.
    waiting: HashSet<(usize, u64)>,
    done: Option<u64>,
}

/// The run.
struct Run<'a, W: Write> {
    spec: &'a Spec,
    topology: &'a Topology,
    world: World,
    truth: &'a mut Truth<W>,
    progress: &'a Progress,
    rng: Rng,
    seats: Vec<Seat>,
    queue: BinaryHeap<Reverse<(u64, u64, Action)>>,
    seq: u64,
    gate: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Transition>,
    rx: mpsc::UnboundedReceiver<Transition>,
    phase: usize,
    messages: HashMap<(usize, u64), Message>,
    /// Outgoing id to (user, message) of texts, for answers.
    report: Report,
    /// Home relay to (epoch, first ms seen in it).
    epochs: HashMap<RelayId, (u32, u64)>,
    /// Each home relay's epoch changes seen: (epoch, ms).
    changes: Vec<(RelayId, u32, u64)>,
    first_epoch: HashMap<RelayId, u32>,
    returns: Vec<Return>,
    bytes: (u64, f64),
    /// Seed digests of attempts not yet answered, by user and outgoing id.
    unanswered: HashMap<(usize, u64), String>,
    /// Unix ms of every attempt's deposit, by seed digest.
    deposited: HashMap<String, u64>,
}

/// Runs the load of `spec` over `topology`, writing the ground truth to `truth`.
///
/// # Errors
/// [`LoadError`] when the truth cannot be written or no client gets going.
pub async fn run<W: Write>(
    spec: &Spec,
    topology: &Topology,
    truth: &mut Truth<W>,
    progress: &Progress,
) -> Result<Report, LoadError> {
    let mut rng = Rng::seeded(spec.seed);
    let world = World::generate(spec.shape, topology, &mut rng);
    let profiles = world.profiles(&topology.homes(), spec.behaviour(), &mut rng);
    let (tx, rx) = mpsc::unbounded_channel();
    let seats = profiles
        .into_iter()
        .map(|p| Seat {
            state: State::Offline,
            profile: Some(p),
            client: None,
            away: false,
            since: 0,
            left: 0,
            next_msg: 1,
        })
        .collect();
    let mut run = Run {
        spec,
        topology,
        world,
        truth,
        progress,
        rng: rng.fork(),
        seats,
        queue: BinaryHeap::new(),
        seq: 0,
        gate: Arc::new(Semaphore::new(spec.connect_gate.max(1))),
        tx,
        rx,
        phase: 0,
        messages: HashMap::new(),
        report: Report::default(),
        epochs: HashMap::new(),
        changes: Vec::new(),
        first_epoch: HashMap::new(),
        returns: Vec::new(),
        bytes: (0, 0.0),
        unanswered: HashMap::new(),
        deposited: HashMap::new(),
    };
    run.go().await?;
    Ok(run.report)
}

impl<W: Write> Run<'_, W> {
    fn at(&mut self, ms: u64, action: Action) {
        self.seq += 1;
        self.queue.push(Reverse((ms, self.seq, action)));
    }

    fn after(&mut self, now: u64, mean: Duration, action: Action) {
        let wait = self.rng.exp(mean.as_secs_f64() * 1_000.0).round() as u64;
        self.at(now + wait.max(1), action);
    }

    fn lane(&self, user: usize) -> &(hum_shared::RelayAddr, hum_shared::RelayAddr) {
        &self.topology.lanes[self.world.users[user].lane]
    }

    async fn go(&mut self) -> Result<(), LoadError> {
        let start = now_ms();
        self.write_world(start)?;
        let n = self.seats.len();
        let on = self.spec.session_mean.as_secs_f64();
        let p_on = on / (on + self.spec.offline_mean.as_secs_f64()).max(1e-9);
        let mut initial = Vec::new();
        for u in 0..n {
            if self.rng.chance(self.spec.away_share) {
                self.seats[u].away = true;
                self.seats[u].left = start;
            } else if self.rng.chance(p_on) {
                initial.push(u);
            } else {
                self.seats[u].left = start;
                self.after(start, self.spec.offline_mean, Action::Flip(u));
            }
        }
        for &u in &initial {
            self.connect(u);
        }
        // Start: until everyone who starts online is going (and has told us its epoch).
        let mut tick = tokio::time::interval(self.spec.tick);
        let deadline = start + 60_000;
        loop {
            tick.tick().await;
            let now = now_ms();
            self.transitions(now)?;
            self.drain(now)?;
            let pending = initial
                .iter()
                .filter(|&&u| {
                    matches!(self.seats[u].state, State::Connecting)
                        || self.seats[u]
                            .client
                            .as_ref()
                            .is_some_and(|c| c.status().epoch == 0)
                })
                .count();
            if pending == 0 || now > deadline {
                break;
            }
        }
        if self.first_epoch.is_empty() {
            return Err(LoadError::NoClients(format!(
                "{} sessions refused",
                self.report.refused
            )));
        }
        // Those who start offline were last online in the epoch the run starts in.
        for u in 0..n {
            let home = RelayId::of_fingerprint(&self.lane(u).1.fingerprint);
            let epoch = self.first_epoch.get(&home).copied();
            if let (Some(p), Some(e)) = (self.seats[u].profile.as_mut(), epoch) {
                p.set_last_epoch(e);
            }
        }
        let main_start = now_ms();
        for &u in &initial {
            self.after(main_start, self.spec.session_mean, Action::Flip(u));
            self.after(
                main_start,
                self.spec.conversation_every,
                Action::Converse(u),
            );
        }
        self.phase = 1;
        self.progress.phase.store(1, Ordering::Relaxed);
        let main_end = main_start + self.spec.run.as_millis() as u64;
        loop {
            tick.tick().await;
            let now = now_ms();
            self.actions(now);
            self.transitions(now)?;
            self.drain(now)?;
            if now >= main_end {
                break;
            }
        }
        // Settle: everyone back, no new conversations.
        self.phase = 2;
        self.progress.phase.store(2, Ordering::Relaxed);
        self.queue
            .retain(|Reverse((_, _, a))| matches!(a, Action::Text(..)));
        let settle_end = now_ms() + self.spec.settle.as_millis() as u64;
        loop {
            tick.tick().await;
            let now = now_ms();
            for u in 0..n {
                if self.seats[u].state == State::Offline {
                    self.connect(u);
                }
            }
            self.actions(now);
            self.transitions(now)?;
            self.drain(now)?;
            if now >= settle_end || (now > main_end + 5_000 && self.settled()) {
                break;
            }
        }
        // Done: close every session.
        self.phase = 3;
        self.progress.phase.store(3, Ordering::Relaxed);
        let now = now_ms();
        for u in 0..n {
            if self.seats[u].state == State::Online {
                self.disconnect(u, now)?;
            }
        }
        let close_end = now + 10_000;
        while self
            .seats
            .iter()
            .any(|s| matches!(s.state, State::Closing | State::Connecting))
            && now_ms() < close_end
        {
            tick.tick().await;
            self.transitions(now_ms())?;
        }
        self.finish(main_start, main_end)
    }

    /// Everything whole, nothing owed: every outbox empty, every catch-up done.
    fn settled(&self) -> bool {
        let all_here = self
            .seats
            .iter()
            .all(|s| matches!(s.state, State::Online | State::Lost));
        all_here
            && self
                .seats
                .iter()
                .all(|s| s.client.as_ref().is_none_or(|c| c.status().outbox == 0))
            && self
                .messages
                .values()
                .all(|m| m.got.values().all(|(_, _, whole)| whole.is_some()))
    }

    fn write_world(&mut self, ms: u64) -> Result<(), LoadError> {
        for u in 0..self.world.users.len() {
            let (entry, home) = self.lane(u).clone();
            self.truth.user(
                ms,
                u,
                RelayId::of_fingerprint(&entry.fingerprint),
                RelayId::of_fingerprint(&home.fingerprint),
            )?;
        }
        for &(a, b) in &self.world.edges.clone() {
            self.truth.contact(ms, a, b)?;
        }
        for (g, members) in self.world.groups.clone().iter().enumerate() {
            self.truth.group(ms, g, members)?;
        }
        Ok(())
    }

    fn connect(&mut self, u: usize) {
        let Some(profile) = self.seats[u].profile.take() else {
            return;
        };
        self.seats[u].state = State::Connecting;
        let entry = self.lane(u).0.clone();
        let (tx, gate) = (self.tx.clone(), Arc::clone(&self.gate));
        tokio::spawn(async move {
            let _permit = gate.acquire().await;
            let r = TestClient::start(&entry, Some(source(u)), profile).await;
            let _ = tx.send(Transition::Up(u, r));
        });
    }

    fn disconnect(&mut self, u: usize, now: u64) -> Result<(), LoadError> {
        let Some(mut client) = self.seats[u].client.take() else {
            return Ok(());
        };
        self.seats[u].state = State::Closing;
        // What came before the end still counts.
        let events = client.drain_stamped();
        self.events(u, events, now)?;
        let (bytes_in, bytes_out) = client.bytes();
        let seconds = (now.saturating_sub(self.seats[u].since)) as f64 / 1_000.0;
        if seconds > 10.0 {
            self.bytes.0 += bytes_in + bytes_out;
            self.bytes.1 += seconds;
        }
        self.truth
            .session(now, u, client.local_addr(), self.seats[u].since, Some(now))?;
        self.seats[u].since = now;
        self.seats[u].left = now;
        self.progress.online.fetch_sub(1, Ordering::Relaxed);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let r = client
                .close()
                .await
                .map(Box::new)
                .map_err(|e| e.to_string());
            let _ = tx.send(Transition::Down(u, r));
        });
        Ok(())
    }

    fn transitions(&mut self, now: u64) -> Result<(), LoadError> {
        while let Ok(t) = self.rx.try_recv() {
            match t {
                Transition::Up(u, Ok(client)) => {
                    self.report.sessions += 1;
                    self.progress.online.fetch_add(1, Ordering::Relaxed);
                    let seat = &mut self.seats[u];
                    seat.state = State::Online;
                    seat.since = now;
                    seat.client = Some(client);
                    let left = self.seats[u].left;
                    self.returned(u, left, now);
                }
                Transition::Up(u, Err(not)) => {
                    self.report.refused += 1;
                    self.seats[u].profile = Some(*not.profile);
                    self.seats[u].state = State::Offline;
                    // Try again a little later.
                    if self.phase == 1 {
                        self.at(now + 1_000, Action::Flip(u));
                    }
                }
                Transition::Down(u, Ok(closed)) => {
                    let Closed { profile, events } = *closed;
                    self.seats[u].profile = Some(profile);
                    self.seats[u].state = State::Offline;
                    self.events(u, events, now)?;
                }
                Transition::Down(u, Err(_)) => {
                    self.report.lost += 1;
                    self.seats[u].state = State::Lost;
                }
            }
        }
        Ok(())
    }

    /// A user is back after an absence that began at `left`: time its catch-up.
    fn returned(&mut self, u: usize, left: u64, now: u64) {
        if self.phase == 0 {
            return;
        }
        let home = RelayId::of_fingerprint(&self.lane(u).1.fingerprint);
        let missed = self
            .changes
            .iter()
            .filter(|(h, _, at)| *h == home && *at > left && *at <= now)
            .count() as u32;
        let waiting: HashSet<(usize, u64)> = self
            .messages
            .iter()
            .filter(|(_, m)| m.queued < now)
            .filter(|(_, m)| m.got.get(&u).is_some_and(|g| g.2.is_none()))
            .map(|(k, _)| *k)
            .collect();
        if !waiting.is_empty() {
            self.returns.push(Return {
                user: u,
                start: now,
                missed,
                waiting,
                done: None,
            });
        }
    }

    fn actions(&mut self, now: u64) {
        while let Some(Reverse((ms, _, _))) = self.queue.peek() {
            if *ms > now {
                break;
            }
            let Some(Reverse((_, _, action))) = self.queue.pop() else {
                break;
            };
            match action {
                Action::Flip(u) => self.flip(u, now),
                Action::Converse(u) => self.converse(u, now),
                Action::Text(u, target, left) => {
                    if self.seats[u].state != State::Online {
                        continue;
                    }
                    self.text(u, target, now);
                    if left > 0 {
                        self.after(now, self.spec.gap, Action::Text(u, target, left - 1));
                    }
                }
            }
        }
    }

    fn flip(&mut self, u: usize, now: u64) {
        if self.phase != 1 || self.seats[u].away {
            return;
        }
        match self.seats[u].state {
            State::Online => {
                if self.disconnect(u, now).is_err() {
                    return;
                }
                self.after(now, self.spec.offline_mean, Action::Flip(u));
            }
            State::Offline => {
                self.connect(u);
                self.after(now, self.spec.session_mean, Action::Flip(u));
                self.after(now, self.spec.conversation_every, Action::Converse(u));
            }
            State::Connecting | State::Closing => self.at(now + 1_000, Action::Flip(u)),
            State::Lost => {}
        }
    }

    fn converse(&mut self, u: usize, now: u64) {
        if self.phase != 1 || self.seats[u].state != State::Online {
            return;
        }
        self.after(now, self.spec.conversation_every, Action::Converse(u));
        let user = &self.world.users[u];
        let (contacts, groups) = (user.contacts.len(), user.groups.len());
        let target = if groups > 0 && self.rng.chance(self.spec.group_share) {
            Target::Group(self.rng.below(groups))
        } else if contacts > 0 {
            Target::Contact(self.rng.below(contacts))
        } else {
            return;
        };
        let more = self.rng.exp((self.spec.burst - 1.0).max(0.0)).round() as u32;
        self.text(u, target, now);
        if more > 0 {
            self.after(now, self.spec.gap, Action::Text(u, target, more - 1));
        }
    }

    /// Parts of a text: mostly one, some up to four, a few up to sixteen.
    fn parts(&mut self) -> u16 {
        let r = self.rng.unit();
        if r < 0.85 {
            1
        } else if r < 0.97 {
            self.rng.between(2, 4) as u16
        } else {
            self.rng.between(5, 16) as u16
        }
    }

    fn text(&mut self, u: usize, target: Target, now: u64) {
        let Some(backlog_free) = self.seats[u]
            .client
            .as_ref()
            .map(|c| c.status().outbox == 0)
        else {
            return;
        };
        let msg = self.seats[u].next_msg;
        self.seats[u].next_msg += 1;
        let parts = self.parts();
        if let Some(client) = self.seats[u].client.as_ref() {
            client.send_text(target, msg, parts);
        }
        let recipients: Vec<usize> = match target {
            Target::Contact(c) => self.world.users[u]
                .contacts
                .get(c)
                .copied()
                .into_iter()
                .collect(),
            Target::Group(g) => self.world.users[u]
                .groups
                .get(g)
                .map(|&g| {
                    self.world.groups[g]
                        .iter()
                        .copied()
                        .filter(|&m| m != u)
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        self.report.texts += 1;
        self.messages.insert(
            (u, msg),
            Message {
                parts: padded_parts(parts),
                queued: now,
                backlog_free,
                main: self.phase == 1,
                group: matches!(target, Target::Group(_)),
                left: false,
                got: recipients
                    .into_iter()
                    .map(|r| (r, (HashSet::new(), true, None)))
                    .collect(),
            },
        );
    }

    fn drain(&mut self, now: u64) -> Result<(), LoadError> {
        for u in 0..self.seats.len() {
            let Some(client) = self.seats[u].client.as_mut() else {
                continue;
            };
            let events = client.drain_stamped();
            let status = client.status();
            if status.epoch != 0 {
                self.epoch_seen(u, status.epoch, now);
            }
            self.events(u, events, now)?;
        }
        Ok(())
    }

    fn epoch_seen(&mut self, u: usize, epoch: u32, now: u64) {
        let home = RelayId::of_fingerprint(&self.lane(u).1.fingerprint);
        self.first_epoch.entry(home).or_insert(epoch);
        match self.epochs.get(&home) {
            Some((e, _)) if *e >= epoch => {}
            Some(_) => {
                self.epochs.insert(home, (epoch, now));
                self.changes.push((home, epoch, now));
                if self.phase == 1 {
                    let offline = self
                        .seats
                        .iter()
                        .filter(|s| s.state != State::Online)
                        .count();
                    self.report
                        .offline_at_change
                        .push(offline as f64 / self.seats.len().max(1) as f64);
                }
            }
            None => {
                self.epochs.insert(home, (epoch, now));
            }
        }
    }

    /// The user who sent what `u` received from `from`.
    fn sender_of(&self, u: usize, from: Origin) -> Option<(usize, To)> {
        let user = &self.world.users[u];
        match from {
            Origin::Contact(c) => user.contacts.get(c).map(|&v| (v, To::User(u))),
            Origin::Member(g, m) => {
                let group = *user.groups.get(g)?;
                self.world.groups[group]
                    .get(m)
                    .map(|&v| (v, To::Group(group)))
            }
            _ => None,
        }
    }

    fn events(&mut self, u: usize, events: Vec<(u64, Event)>, now: u64) -> Result<(), LoadError> {
        for (ms, e) in events {
            match e {
                Event::Deposited {
                    id,
                    kind,
                    target,
                    msg,
                    parts,
                    seed,
                    payload,
                    slot,
                    ..
                } => {
                    let to = match target {
                        Target::Contact(c) => self.world.users[u]
                            .contacts
                            .get(c)
                            .map_or(To::Nobody, |&v| To::User(v)),
                        Target::Group(g) => self.world.users[u]
                            .groups
                            .get(g)
                            .map_or(To::Nobody, |&g| To::Group(g)),
                        _ => To::Nobody,
                    };
                    self.truth.send(&SendRecord {
                        ms,
                        user: u,
                        kind,
                        to,
                        seed: &seed,
                        payload: &payload,
                        slot: &slot,
                        parts,
                    })?;
                    self.report.count_deposit(kind);
                    self.unanswered.insert((u, id), seed.clone());
                    self.deposited.insert(seed, ms);
                    if kind == SendKind::Text
                        && let Some(m) = self.messages.get_mut(&(u, msg))
                    {
                        m.left = true;
                    }
                }
                Event::Received {
                    from,
                    kind,
                    msg,
                    part,
                    seed,
                    tick,
                    via,
                    again,
                    ..
                } => {
                    self.truth.receive(ms, u, &seed, tick)?;
                    if kind != SendKind::Text || again {
                        continue;
                    }
                    let Some((sender, to)) = self.sender_of(u, from) else {
                        continue;
                    };
                    self.part_arrived(u, (sender, msg), part, &seed, via, ms);
                    self.maybe_reply(u, from, to, now);
                }
                Event::Stored { id } => {
                    self.report.stored += 1;
                    self.answered(u, id, ms, "stored")?;
                }
                Event::Full { id } => {
                    self.report.full += 1;
                    self.answered(u, id, ms, "full")?;
                }
                Event::Unknown { id } => {
                    self.report.unknown += 1;
                    self.answered(u, id, ms, "unknown")?;
                }
                Event::Retry { id, .. } => {
                    self.report.retry += 1;
                    self.answered(u, id, ms, "retry")?;
                }
                Event::Unsendable { .. } => self.report.unsendable += 1,
                Event::CaughtUp { .. } => self.report.caught_up += 1,
                Event::Ended(_) if self.seats[u].state == State::Online => {
                    self.report.dropped += 1;
                    self.disconnect(u, now)?;
                    if self.phase == 1 && !self.seats[u].away {
                        self.at(now + 2_000, Action::Flip(u));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn answered(&mut self, u: usize, id: u64, ms: u64, answer: &str) -> Result<(), LoadError> {
        if let Some(seed) = self.unanswered.remove(&(u, id)) {
            self.truth.answer(ms, u, &seed, answer)?;
        }
        Ok(())
    }

    /// Part `part` of text `key` reached `u` in the attempt whose seed digest is `seed`.
    fn part_arrived(
        &mut self,
        u: usize,
        key: (usize, u64),
        part: u16,
        seed: &str,
        via: Via,
        ms: u64,
    ) {
        let tick_ms = self.spec.tick.as_secs_f64() * 1_000.0;
        let left = self.deposited.get(seed).copied();
        let Some(m) = self.messages.get_mut(&key) else {
            return;
        };
        let Some(got) = m.got.get_mut(&u) else {
            return;
        };
        got.0.insert(part);
        got.1 &= via == Via::Live;
        if got.2.is_some() || got.0.len() < usize::from(m.parts) {
            return;
        }
        got.2 = Some(ms);
        let live = got.1;
        let seat = &self.seats[u];
        if m.main && live {
            // From the deposit of the attempt that arrived (an earlier one may have
            // waited in the outbox of a session that closed), to a recipient online all
            // along (one that came back got it from its bucket's backlog).
            let online = |left: u64| seat.state == State::Online && seat.since <= left;
            if let (1, true, Some(left)) = (m.parts, m.backlog_free, left)
                && online(left)
            {
                let ticks = ms.saturating_sub(left) as f64 / tick_ms;
                if m.group {
                    self.report.latency_group.push(ticks);
                } else {
                    self.report.latency.push(ticks);
                }
            }
            self.report
                .latency_queued
                .push(ms.saturating_sub(m.queued) as f64 / tick_ms);
        }
        for r in &mut self.returns {
            if r.user == u && r.waiting.remove(&key) && r.waiting.is_empty() {
                r.done = Some(ms);
            }
        }
    }

    fn maybe_reply(&mut self, u: usize, from: Origin, to: To, now: u64) {
        if self.phase != 1 || self.seats[u].state != State::Online {
            return;
        }
        let (target, chance) = match (from, to) {
            (Origin::Contact(c), _) => (Target::Contact(c), self.spec.reply_chance),
            (Origin::Member(g, _), To::Group(_)) => {
                (Target::Group(g), self.spec.reply_chance / 10.0)
            }
            _ => return,
        };
        if self.rng.chance(chance) {
            self.after(now, self.spec.think, Action::Text(u, target, 0));
        }
    }

    fn finish(&mut self, main_start: u64, main_end: u64) -> Result<(), LoadError> {
        let now = now_ms();
        // Every user's bucket in every epoch of its home relay the run saw.
        for u in 0..self.world.users.len() {
            let home = self.lane(u).1.clone();
            let id = RelayId::of_fingerprint(&home.fingerprint);
            let (Some(&first), Some(&(last, _))) =
                (self.first_epoch.get(&id), self.epochs.get(&id))
            else {
                continue;
            };
            for e in first..=last {
                if let Ok(b) = self.world.users[u].card.secret.bucket(e, self.spec.buckets) {
                    self.truth.bucket(now, u, id, e, b)?;
                }
            }
        }
        let r = &mut self.report;
        r.users = self.world.users.len();
        r.edges = self.world.edges.len();
        r.groups = self.world.groups.len();
        r.main_ms = main_end.saturating_sub(main_start);
        r.epochs = self
            .changes
            .iter()
            .map(|(_, e, _)| *e)
            .collect::<HashSet<u32>>()
            .len();
        let (mut whole, mut pairs) = (0, 0);
        for m in self.messages.values().filter(|m| m.main) {
            pairs += m.got.len();
            whole += m.got.values().filter(|g| g.2.is_some()).count();
            let missing = m.got.values().filter(|g| g.2.is_none()).count();
            if m.left {
                for g in m.got.values().filter(|g| g.2.is_none()) {
                    r.undelivered[if g.0.is_empty() { 1 } else { 2 }] += 1;
                }
            } else {
                r.undelivered[0] += missing;
            }
        }
        r.delivered = (whole, pairs);
        let mut rows: HashMap<u32, Vec<f64>> = HashMap::new();
        let mut open: HashMap<u32, usize> = HashMap::new();
        for ret in &self.returns {
            match ret.done {
                Some(done) => rows
                    .entry(ret.missed)
                    .or_default()
                    .push((done.saturating_sub(ret.start)) as f64 / 1_000.0),
                None => *open.entry(ret.missed).or_default() += 1,
            }
        }
        let mut keys: Vec<u32> = rows.keys().chain(open.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        r.catch_up = keys
            .into_iter()
            .map(|k| CatchUpRow {
                missed: k,
                seconds: Percentiles::of(rows.remove(&k).unwrap_or_default()),
                unfinished: open.get(&k).copied().unwrap_or(0),
            })
            .collect();
        r.bytes_per_day = if self.bytes.1 > 0.0 {
            self.bytes.0 as f64 / self.bytes.1 * 86_400.0
        } else {
            0.0
        };
        r.tick_ms = self.spec.tick.as_secs_f64() * 1_000.0;
        r.epoch_ticks = self.spec.epoch_ticks;
        Ok(())
    }
}

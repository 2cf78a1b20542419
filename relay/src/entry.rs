//! The entry role (docs/PROTOCOL.md, hum/2 §H4; HUM2 design 4.5): faces clients. Per
//! tick it gives each client its down cell (the answer of `t - 2`, the live item of its
//! bucket on even ticks or its reply item on odd ones, a chunk of the directory), takes
//! its up cell (clear home relay and bucket, sealed slot), and at half a tick builds for
//! every mailbox relay a batch of exactly that link's capacity, padded with dummies it
//! seals itself and shuffled, whose replies it puts back by position.
//!
//! It holds no message state beyond the current tick's slots and replies in flight:
//! what it knows of a client is its address, when it came, its home relay and bucket.
//! This file is the role's state, without I/O; `entry/client.rs` serves one client,
//! `beat.rs` and `link.rs` drive the rest.

pub(crate) mod client;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use hum_shared::RelayAddr;
use hum_shared::route::{
    ANSWER_LEN, Directory, DirectoryChunk, DirectoryUpdate, DownCell, Hello, Item, Refusal,
    RelayEntry, RelayId, Reply, ReplyBatch, Slot, StreamBatch, UpCell, VerifiedSlotKey,
};

use crate::random;

/// How many even ticks' live batches a home keeps for late connection tasks: enough for
/// a task as far behind as the default `max_lag` (30 ticks) allows before it is dropped.
const LIVE_KEPT: usize = 16;
/// A directory made afresh only because the client count moved waits this many whole
/// rounds of its chunks since the last one, and at least [`COUNT_EVERY_MIN`] ticks: a
/// client puts the directory together from one chunk a tick, and one that changed in
/// mid-round is read only once every chunk has come round again, so a count that moved
/// every few ticks would keep every client from reading a new directory (slot keys
/// included) at all.
const COUNT_EVERY_ROUNDS: u64 = 4;
/// The fewest ticks between two directories made only for the client count.
const COUNT_EVERY_MIN: u64 = 50;

/// A client's connection number (for the entry role's own bookkeeping only).
pub(crate) type ConnId = u64;

/// One client as the entry role knows it.
#[derive(Debug)]
struct Client {
    peer: SocketAddr,
    since: SystemTime,
    home: Option<(RelayId, u32, u16)>,
    /// The slot of the up cell answering the down cell of that tick.
    slot: Option<(u64, Slot)>,
    /// Replies to its slots, by tick, until they go out two ticks later.
    replies: VecDeque<(u64, Reply)>,
}

/// A mailbox relay the entry role sends slots to (a peer, or itself when single).
#[derive(Debug)]
struct Home {
    address: RelayAddr,
    capacity: usize,
    certificate: Option<Vec<u8>>,
    /// Its last directory update, and our tick when it came.
    update: Option<(DirectoryUpdate, u64)>,
    keys: Vec<VerifiedSlotKey>,
    up: bool,
    clients: usize,
    streams: VecDeque<Arc<StreamBatch>>,
    /// The live batches of the last few even ticks, newest last: a connection task that
    /// sends its owed cells late still gives each cell its own tick's item.
    live: VecDeque<(u64, Arc<StreamBatch>)>,
    /// Batches in flight: tick and which client sits at each position.
    pending: VecDeque<(u64, Vec<Option<ConnId>>)>,
}

impl Home {
    fn clock_at(&self, tick: u64) -> Option<(u32, u32)> {
        let (u, at) = self.update.as_ref()?;
        let per = u64::from(u.epoch_ticks.max(1));
        let total = u64::from(u.tick_in_epoch) + tick.saturating_sub(*at);
        Some((
            u32::try_from(u64::from(u.epoch) + total / per).unwrap_or(u32::MAX),
            u32::try_from(total % per).unwrap_or(0),
        ))
    }
}

/// What the entry role sends one mailbox relay for one tick: the real slots, and what
/// it needs to pad them.
#[derive(Debug)]
pub(crate) struct BatchJob {
    pub(crate) home: RelayId,
    pub(crate) tick: u64,
    pub(crate) capacity: usize,
    /// The relay's slot key of its current epoch (none: no update yet, or single).
    pub(crate) key: Option<VerifiedSlotKey>,
    pub(crate) slots: Vec<(ConnId, Slot)>,
    /// Clients homed there whose up cell for this tick had not come (a dummy takes its
    /// place: a client, or a load generator, that falls behind).
    pub(crate) missing: usize,
}

#[derive(Debug)]
struct State {
    next_conn: ConnId,
    clients: HashMap<ConnId, Client>,
    homes: HashMap<RelayId, Home>,
    directory: Directory,
    chunks: Arc<Vec<DirectoryChunk>>,
    /// The last tick whose batches were taken.
    batched: Option<u64>,
    /// The last tick started.
    started: Option<u64>,
}

/// The entry role of one relay.
#[derive(Debug)]
pub(crate) struct Entry {
    id: RelayId,
    single: bool,
    state: Mutex<State>,
}

/// What a seized entry relay yields about one client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldClient {
    /// Its address.
    pub peer: SocketAddr,
    /// When it connected.
    pub since: SystemTime,
    /// Its home relay, epoch and bucket, as its last up cell said in clear.
    pub home: Option<(RelayId, u32, u16)>,
}

impl Entry {
    /// An entry role that sends slots to `homes` (address and capacity); the single
    /// relay names itself.
    pub(crate) fn new(id: RelayId, single: bool, homes: Vec<(RelayAddr, usize)>) -> Self {
        let homes = homes
            .into_iter()
            .map(|(address, capacity)| {
                let id = RelayId::of_fingerprint(&address.fingerprint);
                let home = Home {
                    address,
                    capacity,
                    certificate: None,
                    update: None,
                    keys: Vec::new(),
                    up: false,
                    clients: 0,
                    streams: VecDeque::new(),
                    live: VecDeque::new(),
                    pending: VecDeque::new(),
                };
                (id, home)
            })
            .collect();
        let directory = Directory {
            tick: 0,
            single,
            clients: 0,
            relays: Vec::new(),
        };
        let chunks = Arc::new(directory.chunks().unwrap_or_default());
        Self {
            id,
            single,
            state: Mutex::new(State {
                next_conn: 1,
                clients: HashMap::new(),
                homes,
                directory,
                chunks,
                batched: None,
                started: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a client that just connected.
    pub(crate) fn register(&self, peer: SocketAddr) -> ConnId {
        let mut s = self.lock();
        let id = s.next_conn;
        s.next_conn += 1;
        s.clients.insert(
            id,
            Client {
                peer,
                since: SystemTime::now(),
                home: None,
                slot: None,
                replies: VecDeque::new(),
            },
        );
        id
    }

    /// Forgets a client that left.
    pub(crate) fn unregister(&self, conn: ConnId) {
        let mut s = self.lock();
        if let Some(c) = s.clients.remove(&conn)
            && let Some((home, _, _)) = c.home
            && let Some(h) = s.homes.get_mut(&home)
        {
            h.clients = h.clients.saturating_sub(1);
        }
    }

    /// The home relay, epoch and bucket a client's last up cell named.
    pub(crate) fn home_of(&self, conn: ConnId) -> Option<(RelayId, u32, u16)> {
        self.lock().clients.get(&conn).and_then(|c| c.home)
    }

    /// The hello for a client connecting at tick `tick`.
    pub(crate) fn hello(&self, tick: u64, tick_micros: u32, ttl_secs: u32) -> Hello {
        Hello {
            tick_micros,
            ttl_secs,
            tick,
            relay: self.id,
            directory: self.lock().directory.clone(),
        }
    }

    /// Takes a client's up cell, which answers the down cell of tick `tick`.
    pub(crate) fn on_up(&self, conn: ConnId, tick: u64, cell: UpCell) -> Result<(), Refusal> {
        let mut guard = self.lock();
        let s = &mut *guard;
        let Some(client) = s.clients.get_mut(&conn) else {
            return Ok(());
        };
        let before = client.home.map(|(h, _, _)| h);
        if before != Some(cell.home) {
            if cell.home == self.id && !self.single {
                return Err(Refusal::HomeIsEntry);
            }
            let home = s.homes.get_mut(&cell.home).ok_or(Refusal::UnknownHome)?;
            if home.clients >= home.capacity {
                return Err(Refusal::HomeFull);
            }
            home.clients += 1;
            if let Some(old) = before.and_then(|b| s.homes.get_mut(&b)) {
                old.clients = old.clients.saturating_sub(1);
            }
        }
        client.home = Some((cell.home, cell.epoch, cell.bucket));
        client.slot = Some((tick, cell.slot));
        Ok(())
    }

    /// The down cell of tick `tick` for a client.
    pub(crate) fn down_cell(&self, conn: ConnId, tick: u64) -> DownCell {
        let mut guard = self.lock();
        let s = &mut *guard;
        let chunk = match s
            .chunks
            .get(usize::try_from(tick % s.chunks.len().max(1) as u64).unwrap_or(0))
        {
            Some(c) => c.clone(),
            None => DirectoryChunk {
                index: 0,
                total: 1,
                data: [0; hum_shared::route::DIRECTORY_CHUNK_LEN],
            },
        };
        let Some(client) = s.clients.get_mut(&conn) else {
            return random_cell(chunk);
        };
        while client.replies.front().is_some_and(|(t, _)| *t + 2 < tick) {
            client.replies.pop_front();
        }
        let reply = match client.replies.front() {
            Some((t, _)) if *t + 2 == tick => client.replies.pop_front().map(|(_, r)| r),
            _ => None,
        };
        let answer: [u8; ANSWER_LEN] = reply.as_ref().map_or_else(random::answer, |r| r.answer);
        let item = if tick.is_multiple_of(2) {
            client
                .home
                .and_then(|(home, _, bucket)| {
                    let (_, live) = s.homes.get(&home)?.live.iter().find(|(t, _)| *t == tick)?;
                    live.items.get(usize::from(bucket)).cloned()
                })
                .unwrap_or_else(Item::random)
        } else {
            reply.map_or_else(Item::random, |r| r.item)
        };
        DownCell {
            answer,
            item,
            chunk,
        }
    }

    /// The start of tick `tick`: on each even tick every home relay's next stream batch
    /// becomes that tick's live one. A late beat that skipped ticks starts the even
    /// ones it skipped too, so the stream keeps its pace and every owed cell its item.
    pub(crate) fn tick_start(&self, tick: u64) {
        let mut guard = self.lock();
        let s = &mut *guard;
        let first = match s.started {
            Some(last) if last >= tick => return,
            Some(last) => (last + 1).max(tick.saturating_sub(2 * LIVE_KEPT as u64)),
            None => tick,
        };
        s.started = Some(tick);
        for t in (first..=tick).filter(|t| t.is_multiple_of(2)) {
            for home in s.homes.values_mut() {
                if let Some(batch) = home.streams.pop_front() {
                    home.live.push_back((t, batch));
                }
                while home.live.len() > LIVE_KEPT {
                    home.live.pop_front();
                }
            }
        }
    }

    /// Half a tick into `tick`: the slots of every home relay whose link is up, taken
    /// out of the clients' state. Once per tick: a beat that runs late can fire twice in
    /// one tick, and a second batch of a tick would hold no client's slot, only overfill
    /// the home relay's replay guard for that tick (every slot of it refused as bad).
    pub(crate) fn take_batches(&self, tick: u64) -> Vec<BatchJob> {
        let mut guard = self.lock();
        let s = &mut *guard;
        if s.batched.is_some_and(|b| b >= tick) {
            return Vec::new();
        }
        s.batched = Some(tick);
        let mut jobs: HashMap<RelayId, BatchJob> = HashMap::new();
        for (&id, home) in &s.homes {
            if !home.up {
                continue;
            }
            let key = home
                .clock_at(tick)
                .and_then(|(epoch, _)| home.keys.iter().find(|k| k.epoch() == epoch).cloned());
            jobs.insert(
                id,
                BatchJob {
                    home: id,
                    tick,
                    capacity: home.capacity,
                    key,
                    slots: Vec::new(),
                    missing: 0,
                },
            );
        }
        for (&conn, client) in &mut s.clients {
            let Some((home, _, _)) = client.home else {
                continue;
            };
            match client.slot.take() {
                Some((t, slot)) if t == tick => {
                    if let Some(job) = jobs.get_mut(&home)
                        && job.slots.len() < job.capacity
                    {
                        job.slots.push((conn, slot));
                    }
                }
                // None, or not this tick's (it would not open anyway).
                _ => {
                    if let Some(job) = jobs.get_mut(&home) {
                        job.missing += 1;
                    }
                }
            }
        }
        jobs.into_values().collect()
    }

    /// Remembers which client sits at each position of the batch of `tick` sent to
    /// `home`.
    pub(crate) fn sent(&self, home: RelayId, tick: u64, order: Vec<Option<ConnId>>) {
        let mut s = self.lock();
        if let Some(h) = s.homes.get_mut(&home) {
            h.pending.push_back((tick, order));
            while h.pending.len() > 4 {
                h.pending.pop_front();
            }
        }
    }

    /// Puts a reply batch's answers (and items) back to their clients by position.
    /// Returns false when no batch of that tick is in flight (late or unknown).
    pub(crate) fn on_replies(&self, home: RelayId, batch: ReplyBatch) -> bool {
        let mut guard = self.lock();
        let s = &mut *guard;
        let Some(h) = s.homes.get_mut(&home) else {
            return false;
        };
        let Some(at) = h.pending.iter().position(|(t, _)| *t == batch.tick) else {
            return false;
        };
        let Some((tick, order)) = h.pending.remove(at) else {
            return false;
        };
        let mut items = batch.items.into_iter();
        for (conn, answer) in order.into_iter().zip(batch.answers) {
            let item = items.next();
            let Some(client) = conn.and_then(|c| s.clients.get_mut(&c)) else {
                continue;
            };
            client.replies.push_back((
                tick,
                Reply {
                    answer,
                    item: item.unwrap_or_else(Item::random),
                },
            ));
        }
        true
    }

    /// A stream batch from `home`: queued (at most two) for the next even tick.
    pub(crate) fn on_stream(&self, home: RelayId, batch: Arc<StreamBatch>) {
        let mut s = self.lock();
        if let Some(h) = s.homes.get_mut(&home) {
            h.streams.push_back(batch);
            while h.streams.len() > 2 {
                h.streams.pop_front();
            }
        }
    }

    /// A link to `home` came up, with its certificate.
    pub(crate) fn link_up(&self, home: RelayId, certificate: Vec<u8>) {
        let mut s = self.lock();
        if let Some(h) = s.homes.get_mut(&home) {
            h.up = true;
            h.certificate = Some(certificate);
        }
    }

    /// The relay's own mailbox role, whose certificate is its own; `serves` when the
    /// relay is single and so its clients' home.
    pub(crate) fn own_mailbox(&self, id: RelayId, certificate: Vec<u8>, serves: bool) {
        let mut s = self.lock();
        if let Some(h) = s.homes.get_mut(&id) {
            h.up = serves;
            h.certificate = Some(certificate);
        }
    }

    /// The link to `home` went down: what was in flight is lost (clients read random
    /// answers as `Unknown`), the stream stops.
    pub(crate) fn link_down(&self, home: RelayId) {
        let mut s = self.lock();
        if let Some(h) = s.homes.get_mut(&home) {
            h.up = false;
            h.pending.clear();
            h.streams.clear();
            h.live.clear();
        }
    }

    /// A directory update from `home` at our tick `tick`: keys are checked against the
    /// certificate the link presented and the fingerprint pinned in the relays file.
    /// The directory is made afresh when the update changed something, or when the
    /// number of connected clients moved and the directory is old enough that every
    /// client has read it ([`COUNT_EVERY_ROUNDS`]). Returns whether it changed.
    pub(crate) fn on_directory(&self, home: RelayId, update: DirectoryUpdate, tick: u64) -> bool {
        let mut guard = self.lock();
        let s = &mut *guard;
        let Some(h) = s.homes.get_mut(&home) else {
            return false;
        };
        let Some(cert) = &h.certificate else {
            return false;
        };
        let keys: Vec<VerifiedSlotKey> = update
            .slot_keys
            .iter()
            .filter_map(|k| k.verify(cert, &h.address.fingerprint).ok())
            .collect();
        if keys.len() != update.slot_keys.len() {
            tracing::warn!("a mailbox relay announced a slot key that does not verify");
        }
        let predicted = h.clock_at(tick);
        let count_every = (COUNT_EVERY_ROUNDS * s.chunks.len() as u64).max(COUNT_EVERY_MIN);
        let recount = s.directory.clients != connected(s.clients.len())
            && tick >= s.directory.tick.saturating_add(count_every);
        let same = h.update.as_ref().is_some_and(|(u, _)| {
            u.slot_keys == update.slot_keys
                && u.buckets == update.buckets
                && u.epoch_ticks == update.epoch_ticks
                && u.flag_bits == update.flag_bits
        }) && predicted == Some((update.epoch, update.tick_in_epoch))
            && !recount;
        h.keys = keys;
        h.update = Some((update, tick));
        if !same {
            self.rebuild(s, tick);
        }
        !same
    }

    /// Rebuilds the directory as of tick `tick`.
    fn rebuild(&self, s: &mut State, tick: u64) {
        let mut relays: Vec<RelayEntry> = s
            .homes
            .values()
            .filter_map(|h| {
                let (u, _) = h.update.as_ref()?;
                let (epoch, tick_in_epoch) = h.clock_at(tick)?;
                Some(RelayEntry {
                    address: h.address.clone(),
                    certificate: h.certificate.clone()?,
                    buckets: u.buckets,
                    epoch_ticks: u.epoch_ticks,
                    flag_bits: u.flag_bits,
                    epoch,
                    tick_in_epoch,
                    slot_keys: u.slot_keys.clone(),
                })
            })
            .collect();
        relays.sort_by_key(RelayEntry::id);
        let directory = Directory {
            tick,
            single: self.single,
            clients: connected(s.clients.len()),
            relays,
        };
        match directory.chunks() {
            Ok(chunks) => {
                s.chunks = Arc::new(chunks);
                s.directory = directory;
            }
            Err(err) => tracing::error!(cause = %err, "cannot build the directory"),
        }
    }

    /// What a seized entry relay yields: every client's address, arrival and home.
    pub(crate) fn held(&self) -> Vec<HeldClient> {
        self.lock()
            .clients
            .values()
            .map(|c| HeldClient {
                peer: c.peer,
                since: c.since,
                home: c.home,
            })
            .collect()
    }
}

/// The connected clients, as the directory counts them.
fn connected(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A down cell of random bytes, for a client the role no longer knows.
fn random_cell(chunk: DirectoryChunk) -> DownCell {
    DownCell {
        answer: random::answer(),
        item: Item::random(),
        chunk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hum_shared::CertFingerprint;

    /// An entry role with one home relay of capacity 4, its link up.
    fn one_home() -> (Entry, RelayId) {
        let home = RelayAddr {
            host: "127.0.0.1".to_owned(),
            port: 1,
            fingerprint: CertFingerprint([2; 32]),
        };
        let home_id = RelayId::of_fingerprint(&home.fingerprint);
        let entry = Entry::new(
            RelayId::of_fingerprint(&CertFingerprint([1; 32])),
            false,
            vec![(home, 4)],
        );
        entry.link_up(home_id, Vec::new());
        (entry, home_id)
    }

    #[test]
    fn batches_are_taken_once_per_tick_however_often_the_half_tick_fires() {
        let (entry, home_id) = one_home();
        let jobs = |t| {
            entry
                .take_batches(t)
                .iter()
                .map(|j| (j.home, j.tick))
                .collect::<Vec<_>>()
        };
        assert_eq!(jobs(7), [(home_id, 7)]);
        // Late: the half tick of 7 fired once 8 had begun, then 8's own on time.
        assert_eq!(jobs(8), [(home_id, 8)]);
        assert!(jobs(8).is_empty());
        assert!(jobs(7).is_empty());
        assert_eq!(jobs(9), [(home_id, 9)]);
    }

    #[test]
    fn the_client_count_refreshes_the_directory_only_once_clients_could_read_it()
    -> Result<(), rcgen::Error> {
        let made = rcgen::generate_simple_self_signed(vec!["hum-relay".to_owned()])?;
        let cert = made.cert.der().to_vec();
        let home = RelayAddr {
            host: "127.0.0.1".to_owned(),
            port: 1,
            fingerprint: CertFingerprint::of_certificate(&cert),
        };
        let home_id = RelayId::of_fingerprint(&home.fingerprint);
        let entry = Entry::new(
            RelayId::of_fingerprint(&CertFingerprint([1; 32])),
            false,
            vec![(home, 8)],
        );
        entry.link_up(home_id, cert);
        // The mailbox relay's update, the same every time but for its clock.
        let update = |tick: u64| DirectoryUpdate {
            tick,
            epoch: 0,
            tick_in_epoch: u32::try_from(tick).unwrap_or(0),
            epoch_ticks: 100_000,
            buckets: 8,
            flag_bits: 8,
            slot_keys: Vec::new(),
        };
        let clients = || entry.hello(0, 1, 1).directory.clients;
        let peer = |p| SocketAddr::from(([127, 0, 0, 1], p));
        entry.register(peer(1));
        assert!(entry.on_directory(home_id, update(10), 10));
        assert_eq!(clients(), 1);
        // Clients come and go every few ticks: the directory stays as every client is
        // putting it together, and takes the new count once it is old enough.
        for (i, t) in (20..60).step_by(10).enumerate() {
            entry.register(peer(2 + i as u16));
            assert!(!entry.on_directory(home_id, update(t), t), "tick {t}");
            assert_eq!(clients(), 1);
        }
        assert!(entry.on_directory(home_id, update(60), 60));
        assert_eq!(clients(), 5);
        assert!(!entry.on_directory(home_id, update(200), 200));
        Ok(())
    }

    #[test]
    fn a_batch_counts_the_clients_whose_slot_had_not_come() {
        let (entry, home_id) = one_home();
        let conns: Vec<ConnId> = (0..3)
            .map(|i| entry.register(SocketAddr::from(([127, 0, 0, 1], 9 + i))))
            .collect();
        let up = || UpCell {
            home: home_id,
            epoch: 0,
            bucket: 1,
            slot: Slot::random(),
        };
        for &c in &conns {
            assert!(entry.on_up(c, 4, up()).is_ok());
        }
        let counts = |t| {
            entry
                .take_batches(t)
                .iter()
                .map(|j| (j.slots.len(), j.missing))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(4), [(3, 0)]);
        // Tick 5: one client on time, one a tick late (its slot of 4 again), one silent.
        assert!(entry.on_up(conns[0], 5, up()).is_ok());
        assert!(entry.on_up(conns[1], 4, up()).is_ok());
        assert_eq!(counts(5), [(1, 2)]);
        // A client that never named a home is not counted.
        entry.register(SocketAddr::from(([127, 0, 0, 1], 20)));
        assert_eq!(counts(6), [(0, 3)]);
    }

    #[test]
    fn a_late_cell_gets_the_live_item_of_its_own_tick_and_skipped_ticks_keep_the_pace() {
        let (entry, home_id) = one_home();
        let conn = entry.register(SocketAddr::from(([127, 0, 0, 1], 9)));
        let up = UpCell {
            home: home_id,
            epoch: 0,
            bucket: 1,
            slot: Slot::random(),
        };
        assert!(entry.on_up(conn, 9, up).is_ok());
        let batches: Vec<Arc<StreamBatch>> = (0..3u64)
            .map(|tick| {
                Arc::new(StreamBatch {
                    tick,
                    epoch: 0,
                    items: vec![Item::random(), Item::random()],
                })
            })
            .collect();
        // The stream queues at most two batches ahead.
        entry.on_stream(home_id, Arc::clone(&batches[0]));
        entry.on_stream(home_id, Arc::clone(&batches[1]));
        entry.tick_start(10);
        entry.on_stream(home_id, Arc::clone(&batches[2]));
        entry.tick_start(11);
        // A late beat: 12 and 13 were never published, 14 is.
        entry.tick_start(14);
        // The connection task sends its owed cells only now, each for its own tick.
        let item = |t| entry.down_cell(conn, t).item;
        assert!(
            item(10) == batches[0].items[1],
            "tick 10 has the first batch"
        );
        assert!(
            item(12) == batches[1].items[1],
            "the skipped tick 12 has the second"
        );
        assert!(item(14) == batches[2].items[1], "tick 14 has the third");
        // A tick no batch was started for gets random bytes, not another tick's item.
        let other = item(16);
        assert!(batches.iter().all(|b| b.items[1] != other));
    }
}

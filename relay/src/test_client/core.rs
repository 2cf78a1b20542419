//! The test client's state machine: bytes in (the hello, each down cell), bytes out
//! (each up cell). No I/O, no clock: the runner feeds it.

use std::collections::{HashMap, HashSet, VecDeque};

use hum_shared::RelayAddr;
use hum_shared::crypto::Envelope;
use hum_shared::route::{
    CatchUp, Copy, CopyTag, DeliverySecret, Deposit, DepositOutcome, Directory,
    DirectoryReassembler, DownCell, GroupTagKey, Hello, Item, Refusal, RelayEntry, RelayId,
    ReplyKeys, Request, RequestOutcome, SlotDeposit, TagKey, UpCell, WrapKey, seal_clear_slot,
    seal_slot,
};

use super::{Card, ClientError, Event, Via};

/// Tags a receiver keeps ready per sender and epoch.
const WINDOW: u64 = 64;
/// Catch-up requests per epoch, whatever they find.
const PAGES: u32 = 8;
/// Longest body a test message carries (an envelope less its length prefix).
pub const MAX_BODY: usize = hum_shared::ENVELOPE_LEN - 2;

/// How a receiver unwraps what a sender wrapped.
#[derive(Clone)]
pub(crate) enum Unwrap {
    /// Under the receiver's own wrap key (1:1).
    Mine,
    /// Under the group's wrap key.
    Group(GroupTagKey),
}

/// One sender whose items this client recognises.
struct Inbound {
    key: TagKey,
    unwrap: Unwrap,
    /// Per epoch, the first counter not yet seen.
    next: HashMap<u32, u64>,
}

/// A message waiting in the outbox: one deposit for one destination relay.
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub(crate) id: u64,
    pub(crate) to: Vec<Card>,
    pub(crate) key: TagKey,
    pub(crate) group: Option<GroupTagKey>,
    pub(crate) body: Vec<u8>,
    pub(crate) epoch: Option<u32>,
}

struct InFlight {
    keys: ReplyKeys,
    message: Option<Outgoing>,
    catch_up: bool,
}

struct CatchUpJob {
    epoch: u32,
    after: u64,
    asked: u32,
    more: bool,
    in_flight: bool,
}

/// The test client's state.
pub(crate) struct Core {
    me: DeliverySecret,
    home: RelayAddr,
    home_id: RelayId,
    pins: Vec<RelayAddr>,
    entry: RelayId,
    tick: u64,
    directory: Directory,
    reassembler: DirectoryReassembler,
    outbox: VecDeque<Outgoing>,
    in_flight: HashMap<u64, InFlight>,
    counters: HashMap<([u8; 32], u32), u64>,
    inbound: Vec<Inbound>,
    table: HashMap<CopyTag, (usize, u32, u64)>,
    table_key: Vec<(u32, u16, usize)>,
    seen: HashSet<CopyTag>,
    catch_ups: VecDeque<CatchUpJob>,
    /// The home relay's epoch at the last cell, to catch up the one before at a change.
    last_epoch: Option<u32>,
    pub(crate) events: Vec<Event>,
}

impl Core {
    /// A client of `me`, homed at `home`, that pins `pins` (every relay it may deposit
    /// to), after the entry relay's hello.
    pub(crate) fn new(
        me: DeliverySecret,
        home: RelayAddr,
        pins: Vec<RelayAddr>,
        hello: Hello,
    ) -> Self {
        let home_id = RelayId::of_fingerprint(&home.fingerprint);
        Self {
            me,
            home,
            home_id,
            pins,
            entry: hello.relay,
            tick: hello.tick,
            directory: hello.directory,
            reassembler: DirectoryReassembler::new(),
            outbox: VecDeque::new(),
            in_flight: HashMap::new(),
            counters: HashMap::new(),
            inbound: Vec::new(),
            table: HashMap::new(),
            table_key: Vec::new(),
            seen: HashSet::new(),
            catch_ups: VecDeque::new(),
            last_epoch: None,
            events: Vec::new(),
        }
    }

    /// The home relay's fingerprint.
    pub(crate) fn home_fingerprint(&self) -> hum_shared::CertFingerprint {
        self.home.fingerprint
    }

    /// The tick of the last down cell.
    pub(crate) fn current_tick(&self) -> u64 {
        self.tick
    }

    /// Whether the entry relay is a single relay.
    pub(crate) fn single(&self) -> bool {
        self.directory.single
    }

    fn entry_of(&self, id: &RelayId) -> Option<&RelayEntry> {
        self.directory.entry(id)
    }

    /// `relay`'s epoch at the current tick.
    pub(crate) fn epoch_at(&self, relay: &RelayId) -> Option<u32> {
        let e = self.entry_of(relay)?;
        Some(
            e.clock_after(self.tick.saturating_sub(self.directory.tick))
                .0,
        )
    }

    /// This client's bucket at its home relay in `epoch`.
    pub(crate) fn bucket(&self, epoch: u32) -> Option<u16> {
        let e = self.entry_of(&self.home_id)?;
        self.me.bucket(epoch, e.buckets).ok()
    }

    pub(crate) fn expect(&mut self, key: TagKey, unwrap: Unwrap) {
        self.inbound.push(Inbound {
            key,
            unwrap,
            next: HashMap::new(),
        });
        self.table_key.clear();
    }

    pub(crate) fn queue(&mut self, m: Outgoing) {
        self.outbox.push_back(m);
    }

    pub(crate) fn catch_up(&mut self, epoch: u32) {
        self.catch_ups.push_back(CatchUpJob {
            epoch,
            after: 0,
            asked: 0,
            more: true,
            in_flight: false,
        });
    }

    pub(crate) fn outbox_len(&self) -> usize {
        self.outbox.len()
            + self
                .in_flight
                .values()
                .filter(|f| f.message.is_some())
                .count()
    }

    /// The epochs whose tags the table holds: the home relay's current and previous one,
    /// and every epoch being caught up.
    fn wanted(&self) -> Vec<(u32, u16, usize)> {
        let Some(now) = self.epoch_at(&self.home_id) else {
            return Vec::new();
        };
        let mut epochs = vec![now, now.saturating_sub(1)];
        epochs.extend(self.catch_ups.iter().map(|c| c.epoch));
        epochs.sort_unstable();
        epochs.dedup();
        epochs
            .into_iter()
            .filter_map(|e| self.bucket(e).map(|b| (e, b, self.inbound.len())))
            .collect()
    }

    fn refresh_table(&mut self) {
        let wanted = self.wanted();
        if wanted == self.table_key {
            return;
        }
        self.table.clear();
        for &(epoch, bucket, _) in &wanted {
            for (i, inbound) in self.inbound.iter().enumerate() {
                let from = inbound.next.get(&epoch).copied().unwrap_or(0);
                for n in from..from + WINDOW {
                    let tag = inbound.key.secret(epoch, n).seed().copy_tag(bucket);
                    self.table.insert(tag, (i, epoch, n));
                }
            }
        }
        self.table_key = wanted;
    }

    /// Recognises an item by its tag; a match is unwrapped and reported once.
    fn recognise(&mut self, item: &Item, via: Via) {
        let tag = item.tag();
        let Some(&(i, epoch, n)) = self.table.get(&tag) else {
            return;
        };
        if !self.seen.insert(tag) {
            self.events.push(Event::Duplicate);
            return;
        }
        let Some(bucket) = self.bucket(epoch) else {
            return;
        };
        let inbound = &mut self.inbound[i];
        let seed = inbound.key.secret(epoch, n).seed();
        let Ok(wrapped) = item.unwrap(&seed, bucket) else {
            return;
        };
        let wrap: WrapKey = match &inbound.unwrap {
            Unwrap::Mine => self.me.wrap_key(epoch),
            Unwrap::Group(g) => g.wrap_key(epoch),
        };
        let envelope = wrap.unwrap(&wrapped);
        let bytes = envelope.as_bytes();
        let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]])).min(MAX_BODY);
        let body = bytes[2..2 + len].to_vec();
        let next = inbound.next.entry(epoch).or_insert(0);
        if n + 1 > *next {
            *next = n + 1;
            self.table_key.clear();
        }
        self.events.push(Event::Received {
            sender: i,
            body,
            via,
            epoch,
        });
    }

    /// Takes the down cell of the next tick and returns the up cell that answers it.
    pub(crate) fn on_down(
        &mut self,
        bytes: &[u8],
    ) -> Result<Box<[u8; hum_shared::route::CELL_LEN]>, ClientError> {
        if let Some(r) = Refusal::decode(bytes) {
            return Err(ClientError::Refused(r));
        }
        self.tick += 1;
        let t = self.tick;
        let cell = DownCell::decode(bytes).map_err(|_| ClientError::BadCell)?;
        if let Ok(Some(dir)) = self.reassembler.push(&cell.chunk) {
            self.directory = dir;
            self.table_key.clear();
        }
        // At an epoch change, catch up the epoch that ended: what its live stream did not
        // carry before the change is there (every client does this, online or not).
        let now = self.epoch_at(&self.home_id);
        if let (Some(prev), Some(now)) = (self.last_epoch, now)
            && now > prev
        {
            self.catch_up(prev);
        }
        if now.is_some() {
            self.last_epoch = now;
        }
        self.refresh_table();
        let answered = self.in_flight.remove(&(t.wrapping_sub(2)));
        if let Some(f) = answered {
            self.answer(&f, &cell.answer);
            if t % 2 == 1 {
                let item = f.keys.open_item(&cell.item);
                self.recognise(&item, Via::CatchUp);
            }
        }
        if t.is_multiple_of(2) {
            self.recognise(&cell.item, Via::Live);
        }
        self.in_flight.retain(|&k, _| k + 2 >= t);
        self.up(t)
    }

    fn answer(&mut self, f: &InFlight, sealed: &[u8; hum_shared::route::ANSWER_LEN]) {
        let answer = f.keys.open_answer(sealed).unwrap_or_default();
        if f.catch_up
            && let RequestOutcome::CatchUp {
                next_after, more, ..
            } = answer.request
            && let Some(job) = self.catch_ups.front_mut()
        {
            job.after = next_after;
            job.more = more;
            job.asked += 1;
            job.in_flight = false;
            if job.asked >= PAGES && !job.more {
                let epoch = job.epoch;
                self.catch_ups.pop_front();
                self.table_key.clear();
                self.events.push(Event::CaughtUp { epoch });
            }
        } else if f.catch_up
            && let Some(job) = self.catch_ups.front_mut()
        {
            // The answer was lost: ask the same page again.
            job.in_flight = false;
        }
        let Some(m) = &f.message else {
            return;
        };
        let id = m.id;
        match answer.deposit {
            DepositOutcome::Stored => self.events.push(Event::Stored { id }),
            DepositOutcome::Full => {
                self.events.push(Event::Full { id });
                self.outbox.push_back(m.clone());
            }
            DepositOutcome::Retry { epoch } => {
                self.events.push(Event::Retry { id, epoch });
                let mut again = m.clone();
                again.epoch = None;
                self.outbox.push_back(again);
            }
            DepositOutcome::None | DepositOutcome::Unknown => {
                self.events.push(Event::Unknown { id });
                self.outbox.push_back(m.clone());
            }
        }
    }

    fn request(&mut self, t: u64) -> Request {
        if t.is_multiple_of(2) {
            return Request::None;
        }
        let Some(job) = self.catch_ups.front_mut() else {
            return Request::None;
        };
        if job.in_flight {
            return Request::None;
        }
        let (epoch, after) = (job.epoch, job.after);
        let Some(bucket) = self.bucket(epoch) else {
            return Request::None;
        };
        if let Some(job) = self.catch_ups.front_mut() {
            job.in_flight = true;
        }
        Request::CatchUp(CatchUp {
            bucket,
            epoch,
            detect: self.me.detection_key(epoch),
            after,
        })
    }

    fn up(&mut self, t: u64) -> Result<Box<[u8; hum_shared::route::CELL_LEN]>, ClientError> {
        let known = self
            .epoch_at(&self.home_id)
            .and_then(|e| Some((e, self.bucket(e)?)));
        let Some((home_epoch, bucket)) = known else {
            // The directory does not list the home relay yet: keep the beat with a slot
            // of random bytes until it does.
            return Ok(UpCell {
                home: self.home_id,
                epoch: 0,
                bucket: 0,
                slot: hum_shared::route::Slot::random(),
            }
            .encode());
        };
        let request = self.request(t);
        let catch_up = matches!(request, Request::CatchUp(_));
        let message = self.outbox.pop_front();
        let deposit = match &message {
            Some(m) => match self.deposit(m) {
                Ok(d) => Some(d),
                Err(err) => {
                    self.events.push(Event::Unsendable {
                        id: m.id,
                        why: err.to_string(),
                    });
                    None
                }
            },
            None => None,
        };
        let message = message.filter(|_| deposit.is_some());
        let dest = message
            .as_ref()
            .and_then(|m| m.to.first())
            .map(|c| RelayId::of_fingerprint(&c.home.fingerprint));
        let sealed = if self.single() {
            let d = match &deposit {
                Some(d) => SlotDeposit::Local(d),
                None => SlotDeposit::Dummy,
            };
            seal_clear_slot(self.home_id, d, &request).map_err(ClientError::from)
        } else {
            self.seal(t, deposit.as_ref(), dest, &request)
        };
        let (slot, keys) = match sealed {
            Ok(s) => s,
            Err(err) => {
                // No key to seal to (yet): keep the beat with random bytes, keep the
                // message for a later slot.
                if let Some(m) = message {
                    self.events.push(Event::Unsendable {
                        id: m.id,
                        why: err.to_string(),
                    });
                    self.outbox.push_back(m);
                }
                return Ok(UpCell {
                    home: self.home_id,
                    epoch: home_epoch,
                    bucket,
                    slot: hum_shared::route::Slot::random(),
                }
                .encode());
            }
        };
        self.in_flight.insert(
            t,
            InFlight {
                keys,
                message,
                catch_up,
            },
        );
        Ok(UpCell {
            home: self.home_id,
            epoch: home_epoch,
            bucket,
            slot,
        }
        .encode())
    }

    /// Seals a slot to the home relay, forwarding `deposit` to `dest` when that is
    /// another relay.
    fn seal(
        &self,
        t: u64,
        deposit: Option<&Deposit>,
        dest: Option<RelayId>,
        request: &Request,
    ) -> Result<(hum_shared::route::Slot, ReplyKeys), ClientError> {
        let home_epoch = self.epoch_at(&self.home_id).ok_or(ClientError::NoHome)?;
        let home_key = self
            .entry_of(&self.home_id)
            .ok_or(ClientError::NoHome)?
            .verified_slot_key(home_epoch, &self.home.fingerprint)?;
        let dest_key;
        let d = match (deposit, dest) {
            (Some(d), Some(dest)) if dest == self.home_id => SlotDeposit::Local(d),
            (Some(d), Some(dest)) => {
                let pin = self.pin(&dest).ok_or(ClientError::NoHome)?;
                dest_key = self
                    .entry_of(&dest)
                    .ok_or(ClientError::NoHome)?
                    .verified_slot_key(d.epoch(), &pin)?;
                SlotDeposit::Forward {
                    dest: &dest_key,
                    deposit: d,
                }
            }
            _ => SlotDeposit::Dummy,
        };
        Ok(seal_slot(&home_key, self.entry, t, d, request)?)
    }

    fn pin(&self, id: &RelayId) -> Option<hum_shared::CertFingerprint> {
        self.pins
            .iter()
            .chain(std::iter::once(&self.home))
            .find(|a| RelayId::of_fingerprint(&a.fingerprint) == *id)
            .map(|a| a.fingerprint)
    }

    /// The deposit of one attempt: a fresh counter (so a fresh tag seed), each
    /// recipient's bucket and flag in the destination's epoch, the body wrapped anew.
    fn deposit(&mut self, m: &Outgoing) -> Result<Deposit, ClientError> {
        let dest =
            m.to.first()
                .map(|c| RelayId::of_fingerprint(&c.home.fingerprint))
                .ok_or(ClientError::NoHome)?;
        let entry = self.entry_of(&dest).ok_or(ClientError::NoHome)?;
        let buckets = entry.buckets;
        let epoch = match m.epoch {
            Some(e) => e,
            None => self.epoch_at(&dest).ok_or(ClientError::NoHome)?,
        };
        let counter = self
            .counters
            .entry((*m.key.expose_secret(), epoch))
            .or_insert(0);
        let n = *counter;
        *counter += 1;
        let seed = m.key.secret(epoch, n).seed();
        let copies =
            m.to.iter()
                .map(|c| {
                    let bucket = c.secret.bucket(epoch, buckets)?;
                    let flag = c.secret.detection_key(epoch).flag(&seed.copy_tag(bucket));
                    Ok(Copy { bucket, flag })
                })
                .collect::<Result<Vec<_>, hum_shared::route::RouteError>>()?;
        let mut bytes = [0u8; hum_shared::ENVELOPE_LEN];
        let len = m.body.len().min(MAX_BODY);
        bytes[..2].copy_from_slice(&(len as u16).to_be_bytes());
        bytes[2..2 + len].copy_from_slice(&m.body[..len]);
        let envelope = Envelope::from_bytes(&bytes).map_err(|_| ClientError::BadCell)?;
        let wrap = match (&m.group, m.to.first()) {
            (Some(g), _) => g.wrap_key(epoch),
            (None, Some(c)) => c.secret.wrap_key(epoch),
            (None, None) => return Err(ClientError::NoHome),
        };
        Ok(Deposit::new(epoch, &copies, seed, wrap.wrap(&envelope))?)
    }
}

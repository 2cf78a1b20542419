//! The test client's state machine: bytes in (the hello, each down cell), bytes out
//! (each up cell). No I/O, no clock: the runner feeds it, one down cell per tick, and
//! every delay is counted in those ticks.
//!
//! What a user keeps between sessions is its [`Profile`]: contacts, groups, the outbox,
//! tag counters, what it has seen, the catch-ups it owes. A session is a [`Core`] made
//! from a profile and an entry relay's hello; when the session ends the profile comes
//! back out, with whatever was in flight returned to the outbox.

use std::collections::{HashMap, HashSet, VecDeque};

use hum_shared::RelayAddr;
use hum_shared::crypto::Envelope;
use hum_shared::route::{
    CatchUp, Copy, CopyTag, Deposit, DepositOutcome, Directory, DirectoryReassembler, DownCell,
    GroupTagKey, Hello, Item, Refusal, RelayEntry, RelayId, ReplyKeys, Request, RequestOutcome,
    SlotDeposit, TagKey, UpCell, WrapKey, log_digest, seal_clear_slot, seal_slot,
};

use super::rng::Rng;
use super::{Card, ClientError, Event, Via};

/// Tags a receiver keeps ready per sender and epoch past the last counter seen (and,
/// below it, every counter not seen yet: an attempt that comes after a later one, as
/// when a client back from an absence gets the end of a text live before its catch-up
/// brings the start).
const WINDOW: u64 = 64;
/// Catch-up requests per epoch, whatever they find.
const PAGES: u32 = 8;
/// Bytes before a message's body in the envelope: length (2), kind (1), message (8),
/// part (2), parts (2), receipt count (1).
const HEADER: usize = 16;
/// Receipts one message carries at most (8 bytes each, before the body).
const MAX_ACKS: usize = 32;
/// Longest body a raw test message carries.
pub const MAX_BODY: usize = hum_shared::ENVELOPE_LEN - HEADER;
/// Outgoing ids the client makes itself (parts, receipts, loops) have this bit set, so
/// they never meet the ids a caller gives raw messages.
const OWN_IDS: u64 = 1 << 63;

/// What a real deposit attempt carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendKind {
    /// A raw test message ([`super::TestClient::send`]).
    Raw,
    /// One part of a text to a contact or a group.
    Text,
    /// A receipt for a contact's texts, sent on its own after a delay.
    Receipt,
    /// A loop: into the sender's own bucket, read by nobody but the sender.
    Loop,
}

impl SendKind {
    fn byte(self) -> u8 {
        match self {
            SendKind::Raw => 0,
            SendKind::Text => 1,
            SendKind::Receipt => 2,
            SendKind::Loop => 3,
        }
    }

    fn of(byte: u8) -> SendKind {
        match byte {
            1 => SendKind::Text,
            2 => SendKind::Receipt,
            3 => SendKind::Loop,
            _ => SendKind::Raw,
        }
    }
}

/// Whom a deposit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Target {
    /// Cards a raw message named.
    Cards,
    /// A contact, by its index in the profile.
    Contact(usize),
    /// A group, by its index in the profile.
    Group(usize),
    /// The sender itself (a loop).
    Own,
}

/// Who sent an item the client recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// A sender named by [`super::TestClient::expect_from`] or `expect_group`.
    Raw,
    /// A contact, by its index in the profile.
    Contact(usize),
    /// A member of a group: the group's and the member's index.
    Member(usize, usize),
    /// The client's own loop.
    Own,
}

/// How a client behaves on its own, in ticks of its entry relay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    /// Mean ticks between loop deposits (a Poisson process); `None`: no loops.
    pub loop_every: Option<f64>,
    /// Mean ticks before a receipt goes out on its own (exponential), unless a text to
    /// that contact carries it first.
    pub receipt_delay: f64,
    /// Mean ticks before each epoch's catch-up starts (exponential, one draw per epoch).
    pub catch_up_delay: f64,
}

impl Default for Behaviour {
    /// No loops; receipts and catch-ups at once.
    fn default() -> Self {
        Self {
            loop_every: None,
            receipt_delay: 0.0,
            catch_up_delay: 0.0,
        }
    }
}

/// The part classes a message's part count is padded to: 1, 4, 16, then multiples of 16.
pub fn padded_parts(parts: u16) -> u16 {
    match parts {
        0 | 1 => 1,
        2..=4 => 4,
        5..=16 => 16,
        n => n.div_ceil(16).saturating_mul(16),
    }
}

/// How a receiver unwraps what a sender wrapped.
#[derive(Clone)]
pub(crate) enum Unwrap {
    /// Under the receiver's own wrap key (1:1).
    Mine,
    /// Under the group's wrap key.
    Group(GroupTagKey),
}

/// One sender whose items this client recognises.
#[derive(Clone)]
struct Inbound {
    key: TagKey,
    unwrap: Unwrap,
    from: Origin,
    /// Per epoch, the first counter not yet seen.
    next: HashMap<u32, u64>,
}

/// What a deposit says about itself, inside the envelope and in the ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) kind: SendKind,
    pub(crate) target: Target,
    pub(crate) msg: u64,
    pub(crate) part: u16,
    pub(crate) parts: u16,
    pub(crate) acks: Vec<u64>,
}

impl Meta {
    pub(crate) fn raw() -> Self {
        Self {
            kind: SendKind::Raw,
            target: Target::Cards,
            msg: 0,
            part: 0,
            parts: 1,
            acks: Vec::new(),
        }
    }
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
    pub(crate) meta: Meta,
}

struct InFlight {
    keys: ReplyKeys,
    message: Option<Outgoing>,
    catch_up: bool,
}

#[derive(Debug, Clone, Copy)]
struct CatchUpJob {
    epoch: u32,
    /// The tick from which it may start.
    due: u64,
    after: u64,
    asked: u32,
    more: bool,
    in_flight: bool,
}

/// A contact: its card, our tag key towards it, the receipts we owe it.
#[derive(Clone)]
struct Contact {
    card: Card,
    send: TagKey,
    /// Its texts we received whole and have not yet receipted.
    owed: Vec<u64>,
    /// When the owed receipts go out on their own.
    due: Option<u64>,
}

/// A group: every member's card (ours included) and our keys in it.
#[derive(Clone)]
struct Group {
    members: Vec<Card>,
    send: TagKey,
    key: GroupTagKey,
}

/// What a user keeps between sessions.
#[derive(Clone)]
pub struct Profile {
    me: Card,
    pins: Vec<RelayAddr>,
    behaviour: Behaviour,
    rng: Rng,
    outbox: VecDeque<Outgoing>,
    counters: HashMap<([u8; 32], u32), u64>,
    inbound: Vec<Inbound>,
    contacts: Vec<Contact>,
    groups: Vec<Group>,
    seen: HashSet<CopyTag>,
    /// Parts of texts received, per sender and message, to receipt whole messages and
    /// drop a part that comes twice under two tags.
    parts: HashMap<(usize, u64), HashSet<u16>>,
    catch_ups: VecDeque<CatchUpJob>,
    /// The home relay's epoch at the last cell of any session.
    last_epoch: Option<u32>,
    next_own: u64,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("contacts", &self.contacts.len())
            .field("groups", &self.groups.len())
            .field("outbox", &self.outbox.len())
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// A new user with card `me` that pins `pins` (every relay it may deposit to),
    /// behaving as `behaviour`, its delays drawn from `rng`.
    pub fn new(me: Card, pins: Vec<RelayAddr>, behaviour: Behaviour, rng: Rng) -> Self {
        let mut p = Self {
            me,
            pins,
            behaviour,
            rng,
            outbox: VecDeque::new(),
            counters: HashMap::new(),
            inbound: Vec::new(),
            contacts: Vec::new(),
            groups: Vec::new(),
            seen: HashSet::new(),
            parts: HashMap::new(),
            catch_ups: VecDeque::new(),
            last_epoch: None,
            next_own: 0,
        };
        if behaviour.loop_every.is_some() {
            let key = p.me.secret.loop_tag_key();
            p.expect(key, Unwrap::Mine, Origin::Own);
        }
        p
    }

    /// The user's card.
    pub fn card(&self) -> &Card {
        &self.me
    }

    /// Adds a contact with card `card`; we send to it under `send` and recognise what it
    /// sends under `receive`. Returns the contact's index.
    pub fn add_contact(&mut self, card: Card, send: TagKey, receive: TagKey) -> usize {
        let i = self.contacts.len();
        self.contacts.push(Contact {
            card,
            send,
            owed: Vec::new(),
            due: None,
        });
        self.expect(receive, Unwrap::Mine, Origin::Contact(i));
        i
    }

    /// Adds a group: every member's card (ours included, so we see our own texts) and
    /// tag key, our own place among them, and the group's key. Returns its index.
    pub fn add_group(&mut self, members: &[(Card, TagKey)], me: usize, key: GroupTagKey) -> usize {
        let g = self.groups.len();
        for (m, (_, k)) in members.iter().enumerate() {
            self.expect(k.clone(), Unwrap::Group(key.clone()), Origin::Member(g, m));
        }
        let send = members
            .get(me)
            .map_or_else(TagKey::generate, |(_, k)| k.clone());
        self.groups.push(Group {
            members: members.iter().map(|(c, _)| c.clone()).collect(),
            send,
            key,
        });
        g
    }

    /// Says the user was last online in its home relay's `epoch`, so its next session
    /// catches up from there.
    pub fn set_last_epoch(&mut self, epoch: u32) {
        self.last_epoch = Some(epoch);
    }

    /// The home relay's epoch at the last cell the user saw.
    pub fn last_epoch(&self) -> Option<u32> {
        self.last_epoch
    }

    /// Messages waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Epochs whose catch-up is owed or under way.
    pub fn catch_ups_owed(&self) -> Vec<u32> {
        self.catch_ups.iter().map(|j| j.epoch).collect()
    }

    /// Senders recognised so far (contacts, group members, own loops).
    pub(crate) fn senders(&self) -> usize {
        self.inbound.len()
    }

    fn expect(&mut self, key: TagKey, unwrap: Unwrap, from: Origin) -> usize {
        self.inbound.push(Inbound {
            key,
            unwrap,
            from,
            next: HashMap::new(),
        });
        self.inbound.len() - 1
    }

    fn own_id(&mut self) -> u64 {
        self.next_own += 1;
        OWN_IDS | self.next_own
    }

    /// Queues text `msg` of `parts` parts (padded to its class) to `target`, a contact
    /// or a group; a text to a contact carries the receipts we owe it. Returns the
    /// padded part count (0 when the target does not exist).
    pub(crate) fn queue_text(&mut self, target: Target, msg: u64, parts: u16) -> u16 {
        let padded = padded_parts(parts);
        let (mut acks, dests) = match target {
            Target::Contact(c) => {
                let Some(contact) = self.contacts.get_mut(c) else {
                    return 0;
                };
                let take = contact.owed.len().min(MAX_ACKS);
                let acks: Vec<u64> = contact.owed.drain(..take).collect();
                if contact.owed.is_empty() {
                    contact.due = None;
                }
                let dest = (
                    vec![contact.card.clone()],
                    contact.send.clone(),
                    None::<GroupTagKey>,
                );
                (acks, vec![dest])
            }
            Target::Group(g) => {
                let Some(group) = self.groups.get(g) else {
                    return 0;
                };
                // One deposit per destination relay, with a copy per member homed there,
                // the relays in random order.
                let mut by_relay: Vec<Vec<Card>> = Vec::new();
                for c in &group.members {
                    match by_relay
                        .iter_mut()
                        .find(|r| r[0].home.fingerprint == c.home.fingerprint)
                    {
                        Some(r) => r.push(c.clone()),
                        None => by_relay.push(vec![c.clone()]),
                    }
                }
                let (send, key) = (group.send.clone(), group.key.clone());
                self.rng.shuffle(&mut by_relay);
                let dests = by_relay
                    .into_iter()
                    .map(|cards| (cards, send.clone(), Some(key.clone())))
                    .collect();
                (Vec::new(), dests)
            }
            Target::Cards | Target::Own => return 0,
        };
        for part in 0..padded {
            for (to, key, group) in &dests {
                let meta = Meta {
                    kind: SendKind::Text,
                    target,
                    msg,
                    part,
                    parts: padded,
                    acks: std::mem::take(&mut acks),
                };
                let id = self.own_id();
                self.outbox.push_back(Outgoing {
                    id,
                    to: to.clone(),
                    key: key.clone(),
                    group: group.clone(),
                    body: Vec::new(),
                    epoch: None,
                    meta,
                });
            }
        }
        padded
    }

    /// Receipts whose time has come go out on their own; a loop, when the Poisson
    /// process says so.
    fn on_tick(&mut self, tick: u64) {
        for c in 0..self.contacts.len() {
            let contact = &mut self.contacts[c];
            if contact.due.is_none_or(|d| d > tick) || contact.owed.is_empty() {
                continue;
            }
            let take = contact.owed.len().min(MAX_ACKS);
            let acks: Vec<u64> = contact.owed.drain(..take).collect();
            contact.due = if contact.owed.is_empty() {
                None
            } else {
                Some(tick + 1)
            };
            let (to, key) = (contact.card.clone(), contact.send.clone());
            let id = self.own_id();
            self.outbox.push_back(Outgoing {
                id,
                to: vec![to],
                key,
                group: None,
                body: Vec::new(),
                epoch: None,
                meta: Meta {
                    kind: SendKind::Receipt,
                    target: Target::Contact(c),
                    msg: id,
                    part: 0,
                    parts: 1,
                    acks,
                },
            });
        }
        if let Some(every) = self.behaviour.loop_every
            && every > 0.0
            && self.rng.chance(1.0 / every)
        {
            let id = self.own_id();
            let mut body = vec![0u8; MAX_BODY];
            body.iter_mut().for_each(|b| *b = self.rng.next_u64() as u8);
            self.outbox.push_back(Outgoing {
                id,
                to: vec![self.me.clone()],
                key: self.me.secret.loop_tag_key(),
                group: None,
                body,
                epoch: None,
                meta: Meta {
                    kind: SendKind::Loop,
                    target: Target::Own,
                    msg: 0,
                    part: 0,
                    parts: 1,
                    acks: Vec::new(),
                },
            });
        }
    }

    /// Owes a catch-up of `epoch` from `due + delay` on (once per epoch).
    fn owe_catch_up(&mut self, epoch: u32, from: u64, delay: bool) {
        if self.catch_ups.iter().any(|j| j.epoch == epoch) {
            return;
        }
        let wait = if delay {
            self.rng.exp(self.behaviour.catch_up_delay).round() as u64
        } else {
            0
        };
        let job = CatchUpJob {
            epoch,
            due: from + wait,
            after: 0,
            asked: 0,
            more: true,
            in_flight: false,
        };
        // In order of due tick, behind a job already under way.
        let started = usize::from(self.catch_ups.front().is_some_and(|j| j.asked > 0));
        let at = self
            .catch_ups
            .iter()
            .skip(started)
            .position(|j| j.due > job.due)
            .map_or(self.catch_ups.len(), |p| p + started);
        self.catch_ups.insert(at, job);
    }

    /// A text part (or receipt) came whole from `inbound`: `true` if it is new.
    fn note_part(&mut self, inbound: usize, meta: &Meta, tick: u64) -> bool {
        let got = self.parts.entry((inbound, meta.msg)).or_default();
        if !got.insert(meta.part) {
            return false;
        }
        let whole = got.len() >= usize::from(meta.parts);
        if let (true, SendKind::Text, Origin::Contact(c)) =
            (whole, meta.kind, self.inbound[inbound].from)
        {
            let delay = self.rng.exp(self.behaviour.receipt_delay).round() as u64;
            if let Some(contact) = self.contacts.get_mut(c) {
                contact.owed.push(meta.msg);
                if contact.due.is_none() {
                    contact.due = Some(tick + delay.max(1));
                }
            }
        }
        true
    }
}

/// The tags a receiver looks items up by, for one epoch and bucket: sender and counter.
struct Table {
    epoch: u32,
    bucket: u16,
    senders: usize,
    tags: HashMap<CopyTag, (usize, u64)>,
}

impl Table {
    fn add(&mut self, p: &Profile, i: usize, counters: std::ops::Range<u64>) {
        Self::add_to(&mut self.tags, p, i, self.epoch, self.bucket, counters);
    }

    /// Adds sender `i`'s tags of `counters`, but those already seen.
    fn add_to(
        tags: &mut HashMap<CopyTag, (usize, u64)>,
        p: &Profile,
        i: usize,
        epoch: u32,
        bucket: u16,
        counters: std::ops::Range<u64>,
    ) {
        let key = &p.inbound[i].key;
        for n in counters {
            let tag = key.secret(epoch, n).seed().copy_tag(bucket);
            if !p.seen.contains(&tag) {
                tags.insert(tag, (i, n));
            }
        }
    }
}

/// The test client's state in one session.
pub(crate) struct Core {
    p: Profile,
    home_id: RelayId,
    entry: RelayId,
    tick: u64,
    directory: Directory,
    reassembler: DirectoryReassembler,
    in_flight: HashMap<u64, InFlight>,
    /// One table per (epoch, bucket) wanted: the tags of every sender's attempts.
    tables: Vec<Table>,
    /// Whether the missed epochs were owed (once the home relay's epoch is known).
    resumed: bool,
    pub(crate) events: Vec<Event>,
}

impl Core {
    /// A session of `profile`, after the entry relay's hello.
    pub(crate) fn new(profile: Profile, hello: Hello) -> Self {
        let home_id = RelayId::of_fingerprint(&profile.me.home.fingerprint);
        Self {
            p: profile,
            home_id,
            entry: hello.relay,
            tick: hello.tick,
            directory: hello.directory,
            reassembler: DirectoryReassembler::new(),
            in_flight: HashMap::new(),
            tables: Vec::new(),
            resumed: false,
            events: Vec::new(),
        }
    }

    /// The session ends: what was in flight goes back to the front of the outbox (an
    /// answer may have been lost; the receiver drops a part it already has).
    pub(crate) fn into_profile(mut self) -> Profile {
        let mut ticks: Vec<u64> = self.in_flight.keys().copied().collect();
        ticks.sort_unstable();
        for t in ticks.into_iter().rev() {
            if let Some(f) = self.in_flight.remove(&t)
                && let Some(m) = f.message
            {
                self.p.outbox.push_front(m);
            }
        }
        for j in &mut self.p.catch_ups {
            j.in_flight = false;
        }
        self.p
    }

    /// The home relay's fingerprint.
    pub(crate) fn home_fingerprint(&self) -> hum_shared::CertFingerprint {
        self.p.me.home.fingerprint
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
        self.p.me.secret.bucket(epoch, e.buckets).ok()
    }

    pub(crate) fn expect(&mut self, key: TagKey, unwrap: Unwrap) -> usize {
        self.p.expect(key, unwrap, Origin::Raw)
    }

    pub(crate) fn queue(&mut self, m: Outgoing) {
        self.p.outbox.push_back(m);
    }

    pub(crate) fn queue_text(&mut self, target: Target, msg: u64, parts: u16) -> u16 {
        self.p.queue_text(target, msg, parts)
    }

    /// Catches up `epoch` as soon as the catch-ups before it are done.
    pub(crate) fn catch_up(&mut self, epoch: u32) {
        self.p.owe_catch_up(epoch, self.tick, false);
    }

    pub(crate) fn outbox_len(&self) -> usize {
        self.p.outbox.len()
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
        epochs.extend(self.p.catch_ups.iter().map(|c| c.epoch));
        epochs.sort_unstable();
        epochs.dedup();
        epochs
            .into_iter()
            .filter_map(|e| self.bucket(e).map(|b| (e, b, self.p.inbound.len())))
            .collect()
    }

    /// Keeps one tag table per wanted (epoch, bucket, senders): the tables of epochs no
    /// longer wanted go, a new one is built (an epoch change builds one epoch's, not all).
    fn refresh_table(&mut self) {
        let wanted = self.wanted();
        self.tables
            .retain(|t| wanted.contains(&(t.epoch, t.bucket, t.senders)));
        for &(epoch, bucket, senders) in &wanted {
            if self.tables.iter().any(|t| t.epoch == epoch) {
                continue;
            }
            let mut table = Table {
                epoch,
                bucket,
                senders,
                tags: HashMap::new(),
            };
            for i in 0..self.p.inbound.len() {
                let next = self.p.inbound[i].next.get(&epoch).copied().unwrap_or(0);
                table.add(&self.p, i, 0..next + WINDOW);
            }
            self.tables.push(table);
        }
    }

    /// Recognises an item by its tag; a match is unwrapped and reported once.
    fn recognise(&mut self, item: &Item, via: Via) {
        let tag = item.tag();
        let Some((t, (i, n))) = self
            .tables
            .iter()
            .enumerate()
            .find_map(|(t, table)| table.tags.get(&tag).map(|&v| (t, v)))
        else {
            return;
        };
        let epoch = self.tables[t].epoch;
        if !self.p.seen.insert(tag) {
            self.events.push(Event::Duplicate);
            return;
        }
        let Some(bucket) = self.bucket(epoch) else {
            return;
        };
        let inbound = &self.p.inbound[i];
        let seed = inbound.key.secret(epoch, n).seed();
        let Ok(wrapped) = item.unwrap(&seed, bucket) else {
            return;
        };
        let wrap: WrapKey = match &inbound.unwrap {
            Unwrap::Mine => self.p.me.secret.wrap_key(epoch),
            Unwrap::Group(g) => g.wrap_key(epoch),
        };
        let from = inbound.from;
        let (meta, body) = parse(&wrap.unwrap(&wrapped), from);
        // Slide this sender's window past the counter just seen.
        let next = self.p.inbound[i].next.get(&epoch).copied().unwrap_or(0);
        if n + 1 > next {
            self.p.inbound[i].next.insert(epoch, n + 1);
            let table = &mut self.tables[t];
            Table::add_to(
                &mut table.tags,
                &self.p,
                i,
                epoch,
                bucket,
                next + WINDOW..n + 1 + WINDOW,
            );
        }
        let fresh = match meta.kind {
            SendKind::Raw | SendKind::Loop => true,
            SendKind::Text | SendKind::Receipt => self.p.note_part(i, &meta, self.tick),
        };
        self.events.push(Event::Received {
            sender: i,
            body,
            via,
            epoch,
            from,
            kind: meta.kind,
            msg: meta.msg,
            part: meta.part,
            parts: meta.parts,
            acks: meta.acks,
            seed: log_digest(seed.as_bytes()),
            tick: self.tick,
            again: !fresh,
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
        }
        self.epochs(t);
        self.p.on_tick(t);
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

    /// Owes the catch-ups the home relay's clock calls for: at an epoch change the epoch
    /// that ended (every client does this, online or not); in a session after an
    /// absence, every epoch since the last one seen, the current one included.
    fn epochs(&mut self, t: u64) {
        let Some(now) = self.epoch_at(&self.home_id) else {
            return;
        };
        match self.p.last_epoch {
            Some(last) if !self.resumed => {
                for e in last..=now {
                    self.p.owe_catch_up(e, t, true);
                }
            }
            Some(prev) if now > prev => {
                self.p.owe_catch_up(prev, t, true);
            }
            _ => {}
        }
        self.resumed = true;
        self.p.last_epoch = Some(now);
    }

    fn answer(&mut self, f: &InFlight, sealed: &[u8; hum_shared::route::ANSWER_LEN]) {
        let answer = f.keys.open_answer(sealed).unwrap_or_default();
        if f.catch_up
            && let RequestOutcome::CatchUp {
                next_after, more, ..
            } = answer.request
            && let Some(job) = self.p.catch_ups.front_mut()
        {
            job.after = next_after;
            job.more = more;
            job.asked += 1;
            job.in_flight = false;
            if job.asked >= PAGES && !job.more {
                let epoch = job.epoch;
                self.p.catch_ups.pop_front();
                self.events.push(Event::CaughtUp { epoch });
            }
        } else if f.catch_up
            && let Some(job) = self.p.catch_ups.front_mut()
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
                self.p.outbox.push_back(m.clone());
            }
            DepositOutcome::Retry { epoch } => {
                self.events.push(Event::Retry { id, epoch });
                let mut again = m.clone();
                again.epoch = None;
                self.p.outbox.push_back(again);
            }
            DepositOutcome::None | DepositOutcome::Unknown => {
                self.events.push(Event::Unknown { id });
                self.p.outbox.push_back(m.clone());
            }
        }
    }

    fn request(&mut self, t: u64) -> Request {
        if t.is_multiple_of(2) {
            return Request::None;
        }
        let Some(job) = self.p.catch_ups.front().copied() else {
            return Request::None;
        };
        if job.in_flight || job.due > t {
            return Request::None;
        }
        let Some(bucket) = self.bucket(job.epoch) else {
            return Request::None;
        };
        if let Some(j) = self.p.catch_ups.front_mut() {
            j.in_flight = true;
        }
        Request::CatchUp(CatchUp {
            bucket,
            epoch: job.epoch,
            detect: self.p.me.secret.detection_key(job.epoch),
            after: job.after,
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
        let message = self.p.outbox.pop_front();
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
                // message for a later slot, and the catch-up page for a later request.
                if let Some(m) = message {
                    self.events.push(Event::Unsendable {
                        id: m.id,
                        why: err.to_string(),
                    });
                    self.p.outbox.push_back(m);
                }
                if catch_up && let Some(j) = self.p.catch_ups.front_mut() {
                    j.in_flight = false;
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
        if let (Some(m), Some(d)) = (&message, &deposit) {
            self.events.push(Event::Deposited {
                id: m.id,
                kind: m.meta.kind,
                target: m.meta.target,
                msg: m.meta.msg,
                part: m.meta.part,
                parts: m.meta.parts,
                acks: m.meta.acks.len(),
                seed: log_digest(d.seed().as_bytes()),
                payload: log_digest(d.payload().as_bytes()),
                slot: log_digest(slot.as_bytes()),
                tick: t,
            });
        }
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
            .verified_slot_key(home_epoch, &self.p.me.home.fingerprint)?;
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
        self.p
            .pins
            .iter()
            .chain(std::iter::once(&self.p.me.home))
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
            .p
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
        let envelope = frame(&m.meta, &m.body)?;
        let wrap = match (&m.group, m.to.first()) {
            (Some(g), _) => g.wrap_key(epoch),
            (None, Some(c)) => c.secret.wrap_key(epoch),
            (None, None) => return Err(ClientError::NoHome),
        };
        Ok(Deposit::new(epoch, &copies, seed, wrap.wrap(&envelope))?)
    }
}

/// The envelope of one deposit: the header of `meta`, then as much of `body` as fits.
fn frame(meta: &Meta, body: &[u8]) -> Result<Envelope, ClientError> {
    let mut bytes = [0u8; hum_shared::ENVELOPE_LEN];
    let acks = &meta.acks[..meta.acks.len().min(MAX_ACKS)];
    let start = HEADER + 8 * acks.len();
    let len = body.len().min(hum_shared::ENVELOPE_LEN - start);
    bytes[..2].copy_from_slice(&(len as u16).to_be_bytes());
    bytes[2] = meta.kind.byte();
    bytes[3..11].copy_from_slice(&meta.msg.to_be_bytes());
    bytes[11..13].copy_from_slice(&meta.part.to_be_bytes());
    bytes[13..15].copy_from_slice(&meta.parts.to_be_bytes());
    bytes[15] = acks.len() as u8;
    for (k, a) in acks.iter().enumerate() {
        bytes[HEADER + 8 * k..HEADER + 8 * k + 8].copy_from_slice(&a.to_be_bytes());
    }
    bytes[start..start + len].copy_from_slice(&body[..len]);
    Envelope::from_bytes(&bytes).map_err(|_| ClientError::BadCell)
}

/// Reads [`frame`] back; a loop's envelope is random, and reads as a loop.
fn parse(envelope: &Envelope, from: Origin) -> (Meta, Vec<u8>) {
    let bytes = envelope.as_bytes();
    if from == Origin::Own {
        let mut meta = Meta::raw();
        meta.kind = SendKind::Loop;
        meta.target = Target::Own;
        return (meta, Vec::new());
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_be_bytes(b)
    };
    let count = usize::from(bytes[15]).min(MAX_ACKS);
    let acks = (0..count).map(|k| u64_at(HEADER + 8 * k)).collect();
    let start = HEADER + 8 * count;
    let len =
        usize::from(u16::from_be_bytes([bytes[0], bytes[1]])).min(hum_shared::ENVELOPE_LEN - start);
    let meta = Meta {
        kind: SendKind::of(bytes[2]),
        target: Target::Cards,
        msg: u64_at(3),
        part: u16::from_be_bytes([bytes[11], bytes[12]]),
        parts: u16::from_be_bytes([bytes[13], bytes[14]]).max(1),
        acks,
    };
    (meta, bytes[start..start + len].to_vec())
}

#[cfg(test)]
mod tests;

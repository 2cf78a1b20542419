//! The test client's state machine: bytes in (the hello, each down cell), bytes out
//! (each up cell). No I/O, no clock: the runner feeds it, one down cell per tick, and
//! every delay is counted in those ticks.
//!
//! The route (slots, tags, answers, catch-up, loops, deletes, epochs) is
//! `hum_shared::route::session`; what is the test client's own is its message framing
//! ([`Meta`] inside each envelope), receipts, texts in parts, and the [`Profile`] a user
//! keeps between sessions: contacts, groups, the outbox, the session state. A session is
//! a [`Core`] made from a profile and an entry relay's hello; when the session ends the
//! profile comes back out, with whatever was in flight returned to the outbox.

use std::collections::{HashMap, HashSet, VecDeque};

use hum_shared::RelayAddr;
use hum_shared::crypto::Envelope;
use hum_shared::route::session::{
    self, DepositId, SenderId, Session, SessionEvent, SessionState, Unwrap, padded_parts,
};
use hum_shared::route::{GroupTagKey, Hello, TagKey};

use super::rng::Rng;
use super::{Card, ClientError, Event};

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
    /// that contact carries it first; also the mean delay before a received 1:1 item is
    /// deleted at its relay.
    pub receipt_delay: f64,
    /// Mean ticks before each epoch's catch-up starts (one draw per epoch).
    pub catch_up_delay: f64,
    /// Whether those delays are exponential (the design's first choice) rather than
    /// uniform up to twice the mean (the session's default).
    pub catch_up_exponential: bool,
}

impl Default for Behaviour {
    /// No loops; receipts and catch-ups at once.
    fn default() -> Self {
        Self {
            loop_every: None,
            receipt_delay: 0.0,
            catch_up_delay: 0.0,
            catch_up_exponential: false,
        }
    }
}

/// How a receiver unwraps what a sender wrapped, and who it is to the profile.
#[derive(Clone)]
struct Inbound {
    key: TagKey,
    unwrap: Unwrap,
    from: Origin,
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

/// A message the runner hands the client: one deposit for one destination relay.
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
    /// Deposits not yet handed to a session (between sessions: all not yet stored, those
    /// that were in flight first).
    outbox: VecDeque<session::Outgoing>,
    /// What each deposit not yet stored carries, by id.
    metas: HashMap<u64, Meta>,
    inbound: Vec<Inbound>,
    contacts: Vec<Contact>,
    groups: Vec<Group>,
    /// Parts of texts received, per sender and message, to receipt whole messages and
    /// drop a part that comes twice under two tags.
    parts: HashMap<(usize, u64), HashSet<u16>>,
    /// The route session's state.
    state: SessionState,
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
        Self {
            me,
            pins,
            behaviour,
            rng,
            outbox: VecDeque::new(),
            metas: HashMap::new(),
            inbound: Vec::new(),
            contacts: Vec::new(),
            groups: Vec::new(),
            parts: HashMap::new(),
            state: SessionState::new(),
            next_own: 0,
        }
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
        self.state.set_last_epoch(epoch);
    }

    /// The home relay's epoch at the last cell the user saw.
    pub fn last_epoch(&self) -> Option<u32> {
        self.state.last_epoch()
    }

    /// Messages waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Epochs whose catch-up is owed or under way.
    pub fn catch_ups_owed(&self) -> Vec<u32> {
        self.state.catch_ups_owed()
    }

    /// Senders recognised so far (contacts, group members, raw senders).
    pub(crate) fn senders(&self) -> usize {
        self.inbound.len()
    }

    fn expect(&mut self, key: TagKey, unwrap: Unwrap, from: Origin) -> usize {
        self.inbound.push(Inbound { key, unwrap, from });
        self.inbound.len() - 1
    }

    fn own_id(&mut self) -> u64 {
        self.next_own += 1;
        OWN_IDS | self.next_own
    }

    /// Puts a deposit in the outbox, framed with its meta.
    fn push(&mut self, m: Outgoing) -> Result<(), ClientError> {
        let envelope = frame(&m.meta, &m.body)?;
        self.metas.insert(m.id, m.meta);
        self.outbox.push_back(session::Outgoing {
            id: DepositId(m.id),
            to: m.to,
            key: m.key,
            group: m.group,
            envelope,
            shared: false,
        });
        Ok(())
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
                let mut by_relay = Session::split_by_relay(&group.members);
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
                // A text's envelope is its header only: it always frames.
                let _ = self.push(Outgoing {
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

    /// Receipts whose time has come go out on their own.
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
            let _ = self.push(Outgoing {
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
    }

    /// A text part (or receipt) came whole from `inbound`: `true` if it is new.
    fn note_part(&mut self, inbound: usize, meta: &Meta, tick: u64) -> bool {
        let got = self.parts.entry((inbound, meta.msg)).or_default();
        if !got.insert(meta.part) {
            return false;
        }
        let whole = got.len() >= usize::from(meta.parts);
        if let (true, SendKind::Text, Some(Origin::Contact(c))) =
            (whole, meta.kind, self.inbound.get(inbound).map(|i| i.from))
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

/// The test client's state in one session: its profile around a route session.
pub(crate) struct Core {
    p: Profile,
    session: Session,
    /// Each route sender's place in the profile's senders.
    senders: HashMap<SenderId, usize>,
    /// The ids the test client gave its loops in flight, by seed digest.
    loops: HashMap<String, u64>,
    pub(crate) events: Vec<Event>,
}

impl Core {
    /// A session of `profile`, after the entry relay's hello.
    pub(crate) fn new(mut profile: Profile, hello: Hello) -> Self {
        let behaviour = session::Behaviour {
            loop_every: profile.behaviour.loop_every,
            catch_up_delay: profile.behaviour.catch_up_delay,
            catch_up_shape: if profile.behaviour.catch_up_exponential {
                session::DelayShape::Exponential
            } else {
                session::DelayShape::Uniform
            },
            delete_delay: profile.behaviour.receipt_delay,
        };
        let state = std::mem::take(&mut profile.state);
        let mut session = Session::new(
            profile.me.clone(),
            profile.pins.clone(),
            behaviour,
            state,
            hello,
            session::system_rng(),
        );
        let mut senders = HashMap::new();
        for (i, inbound) in profile.inbound.iter().enumerate() {
            let id = session.expect(inbound.key.clone(), inbound.unwrap.clone());
            senders.insert(id, i);
        }
        let mut core = Self {
            p: profile,
            session,
            senders,
            loops: HashMap::new(),
            events: Vec::new(),
        };
        core.hand_over();
        core
    }

    /// The profile's new deposits go to the session's outbox.
    fn hand_over(&mut self) {
        while let Some(m) = self.p.outbox.pop_front() {
            self.session.queue(m);
        }
    }

    /// The session ends: what was in flight goes back to the front of the outbox (an
    /// answer may have been lost; the receiver drops a part it already has).
    pub(crate) fn into_profile(self) -> Profile {
        let Core { mut p, session, .. } = self;
        let (state, outbox) = session.into_parts();
        p.state = state;
        let waiting = std::mem::take(&mut p.outbox);
        p.outbox = outbox.into_iter().chain(waiting).collect();
        p
    }

    /// What the route session knows now.
    pub(crate) fn status(&self) -> session::Status {
        self.session.status()
    }

    /// The home relay's epoch now.
    #[cfg(test)]
    pub(crate) fn epoch(&self) -> Option<u32> {
        self.session.status().home_epoch
    }

    pub(crate) fn expect(&mut self, key: TagKey, unwrap: Unwrap) -> usize {
        let i = self.p.expect(key.clone(), unwrap.clone(), Origin::Raw);
        let id = self.session.expect(key, unwrap);
        self.senders.insert(id, i);
        i
    }

    pub(crate) fn queue(&mut self, m: Outgoing) {
        let (id, epoch) = (m.id, m.epoch);
        if let Err(e) = self.p.push(m) {
            self.events.push(Event::Unsendable {
                id,
                why: e.to_string(),
            });
            return;
        }
        match (epoch, self.p.outbox.pop_back()) {
            (Some(e), Some(m)) => self.session.queue_for_epoch(m, e),
            (None, Some(m)) => self.session.queue(m),
            (_, None) => {}
        }
    }

    pub(crate) fn queue_text(&mut self, target: Target, msg: u64, parts: u16) -> u16 {
        let n = self.p.queue_text(target, msg, parts);
        self.hand_over();
        n
    }

    /// Catches up `epoch` as soon as the catch-ups before it are done.
    pub(crate) fn catch_up(&mut self, epoch: u32) {
        self.session.catch_up(epoch);
    }

    /// The up cell that answers the down cell just read, to write before that down cell
    /// goes to [`Core::on_down`] (sealed beforehand by [`Core::prepare`]).
    pub(crate) fn take_up(&mut self) -> Box<[u8; hum_shared::route::CELL_LEN]> {
        let up = self.session.take_up();
        self.translate();
        up
    }

    /// Takes the down cell of the next tick (after its up cell was written; call
    /// [`Core::prepare`] next).
    pub(crate) fn on_down(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.session.on_down(bytes).map_err(|e| match e {
            session::SessionError::Refused(r) => ClientError::Refused(r),
            _ => ClientError::BadCell,
        })?;
        self.translate();
        let t = self.session.status().tick;
        self.p.on_tick(t);
        self.hand_over();
        Ok(())
    }

    /// Seals the next tick's up cell (once the down cell was processed).
    pub(crate) fn prepare(&mut self) {
        self.session.prepare();
        self.translate();
    }

    /// The route's events, in the test client's terms.
    fn translate(&mut self) {
        let events: Vec<SessionEvent> = self.session.events().collect();
        for e in events {
            let out = match e {
                SessionEvent::Received {
                    sender,
                    envelope,
                    epoch,
                    via,
                    tick,
                    seed,
                } => {
                    let Some(&i) = self.senders.get(&sender) else {
                        continue;
                    };
                    let from = self.p.inbound.get(i).map_or(Origin::Raw, |b| b.from);
                    let (meta, body) = parse(&envelope, from);
                    let fresh = match meta.kind {
                        SendKind::Raw | SendKind::Loop => true,
                        SendKind::Text | SendKind::Receipt => self.p.note_part(i, &meta, tick),
                    };
                    Event::Received {
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
                        seed,
                        tick,
                        again: !fresh,
                    }
                }
                SessionEvent::LoopReturned {
                    seed,
                    epoch,
                    tick,
                    via,
                } => Event::Received {
                    sender: usize::MAX,
                    body: Vec::new(),
                    via,
                    epoch,
                    from: Origin::Own,
                    kind: SendKind::Loop,
                    msg: 0,
                    part: 0,
                    parts: 1,
                    acks: Vec::new(),
                    seed,
                    tick,
                    again: false,
                },
                SessionEvent::Duplicate => Event::Duplicate,
                SessionEvent::Deposited {
                    id,
                    tick,
                    seed,
                    payload,
                    slot,
                } => {
                    let meta = self.p.metas.get(&id.0).cloned().unwrap_or_else(Meta::raw);
                    Event::Deposited {
                        id: id.0,
                        kind: meta.kind,
                        target: meta.target,
                        msg: meta.msg,
                        part: meta.part,
                        parts: meta.parts,
                        acks: meta.acks.len(),
                        seed,
                        payload,
                        slot,
                        tick,
                    }
                }
                SessionEvent::Looped {
                    tick,
                    seed,
                    payload,
                    slot,
                } => {
                    let id = self.p.own_id();
                    self.loops.insert(seed.clone(), id);
                    Event::Deposited {
                        id,
                        kind: SendKind::Loop,
                        target: Target::Own,
                        msg: 0,
                        part: 0,
                        parts: 1,
                        acks: 0,
                        seed,
                        payload,
                        slot,
                        tick,
                    }
                }
                SessionEvent::LoopAnswered { seed, outcome } => {
                    let Some(id) = self.loops.remove(&seed) else {
                        continue;
                    };
                    match outcome {
                        hum_shared::route::DepositOutcome::Stored => Event::Stored { id },
                        hum_shared::route::DepositOutcome::Full => Event::Full { id },
                        hum_shared::route::DepositOutcome::Retry { epoch } => {
                            Event::Retry { id, epoch }
                        }
                        _ => Event::Unknown { id },
                    }
                }
                SessionEvent::Stored { id } => {
                    self.p.metas.remove(&id.0);
                    Event::Stored { id: id.0 }
                }
                SessionEvent::Full { id } => Event::Full { id: id.0 },
                SessionEvent::Retry { id, epoch } => Event::Retry { id: id.0, epoch },
                SessionEvent::Unknown { id } => Event::Unknown { id: id.0 },
                SessionEvent::Unsendable { id, why } => {
                    self.p.metas.remove(&id.0);
                    Event::Unsendable {
                        id: id.0,
                        why: why.to_string(),
                    }
                }
                SessionEvent::CaughtUp { epoch } => Event::CaughtUp { epoch },
                _ => continue,
            };
            self.events.push(out);
        }
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

//! The engine's state machine: synchronous, single-threaded, driven by [`Input`]s.
//!
//! Every change that consumes key material is committed to the store in the same
//! transaction as the envelopes or history it produced, before anything leaves: a crash
//! at any instant loses no message and never reuses a message key.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hum_shared::crypto::{
    Capability, Envelope, GroupState, Identity, Invite, InviteSecret, MailboxId, PublicIdentity,
    SenderKeyDistribution, Session, epoch_at, safety_number,
};
use hum_shared::{Down, Reassembler, Up, part_msg_id, split};
use tokio::sync::mpsc::UnboundedSender;
use zeroize::Zeroizing;

use super::link::LinkControl;
use super::records::{
    ContactRecord, DeliveryState, Dest, GroupRecord, InboxRecord, MemberRecord, MessageRecord,
    Origin, OutboxHead, PartRecord, ReceiptOut, RoomRecord,
};
use super::store::{Db, Store};
use super::wire::{AppMessage, Hello, Member, StoredMessage, Uid};
use super::{EngineError, Input};
use crate::api::{
    Command, ContactId, Delivery, Event, LinkState, LinkStatus, MemberView, MessageId, MessageKind,
    MessageView, RoomId, RoomKind, RoomSummary,
};

/// Epochs of mailboxes to keep fetching: the relay keeps envelopes a week.
const EPOCHS_BACK: u64 = 8;
/// Largest text accepted for sending.
pub(crate) const MAX_TEXT: usize = 64 * 1024;
/// Receipts carried by one receipt message.
const RECEIPT_BATCH: usize = 40;
/// How long a subscription to an old epoch's mailbox stays, to fetch what it holds.
const DRAIN_TIME: Duration = Duration::from_secs(60);
/// Group envelopes kept for a second try when they do not open at once.
const STASH_MAX: usize = 256;
/// How long quitting waits for queued envelopes to reach a relay that is up.
const QUIT_GRACE: Duration = Duration::from_secs(3);
/// Wait before retrying a deposit the relay refused as full.
const FULL_RETRY: Duration = Duration::from_secs(1);

/// Where a mailbox's envelopes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    /// Answers to one of our invites.
    Invite(i64),
    /// Answers to one of our invites that was used already.
    UsedInvite(i64),
    /// The used notice of an invite we accepted, for that contact.
    InviteCheck(i64),
    /// A 1:1 session with a contact.
    Direct(i64),
    /// A group room.
    Group(i64),
}

struct Route {
    relay: String,
    cap: Capability,
    kind: RouteKind,
    fanout: bool,
    /// The epoch of a session or group mailbox (none for an invite's).
    epoch: Option<u64>,
    /// When it was subscribed.
    since: Instant,
}

/// One relay link as the engine sees it.
pub(crate) struct LinkSlot {
    /// Operations for the link task to put into its next cells.
    pub(crate) queue: Arc<Mutex<VecDeque<Up>>>,
    up: bool,
    /// When the relay started, estimated from its tick number at connect: a different
    /// start on reconnect means it restarted and lost what it held.
    relay_start: Option<u128>,
    /// Outbox rows waiting to be deposited, in order.
    pending: VecDeque<i64>,
    /// The one deposit awaiting the relay's answer: tag, outbox row, mailbox.
    inflight: Option<(u32, i64, [u8; 32])>,
    /// Mailboxes the relay answered "full" for, and when to try them again.
    blocked: HashMap<[u8; 32], Instant>,
    /// The queued count last shown to the faces.
    shown_queued: usize,
    state: LinkState,
    rates: (u32, u32),
    /// The cause last shown as an error, so a link failing the same way again and again
    /// says it once.
    shown_cause: Option<String>,
    control: Option<tokio::sync::watch::Sender<LinkControl>>,
}

/// Starts link tasks; the engine gives one to the core so tests can replace the network.
pub(crate) type LinkSpawner = Box<
    dyn FnMut(&str, Arc<Mutex<VecDeque<Up>>>, tokio::sync::watch::Receiver<LinkControl>) + Send,
>;

struct Contact {
    rec: ContactRecord,
    public: PublicIdentity,
    room: i64,
}

/// The engine's state.
pub(crate) struct Core {
    store: Store,
    me: Identity,
    my_name: String,
    home: String,
    contacts: HashMap<i64, Contact>,
    sessions: HashMap<i64, Session>,
    rooms: HashMap<i64, RoomRecord>,
    invites: HashMap<i64, InviteSecret>,
    routes: HashMap<MailboxId, Route>,
    /// Messages being reassembled, by room, sender and part size: a sender's parts of one
    /// format revision all have one size (docs/PROTOCOL.md §3.10), so parts kept from
    /// before an upgrade do not stand in the way of the sizes that come after.
    reassembly: HashMap<(i64, Vec<u8>, usize), Reassembler>,
    links: HashMap<String, LinkSlot>,
    tags: u32,
    events: UnboundedSender<Event>,
    spawn: LinkSpawner,
    epoch: u64,
    /// Set by `Quit`: stop once the outbox has drained or at this deadline.
    quitting: Option<Instant>,
    /// Group envelopes that did not open yet (their sender's key may be on its way).
    stash: VecDeque<(i64, Envelope)>,
    options: super::EngineOptions,
    /// Outbox rows stored by a relay and not yet receipted: when to deposit them again,
    /// and the wait after that.
    resend: HashMap<i64, (Instant, Duration)>,
    /// Outbox rows a relay answered `Stored` for since the engine started (kept in memory
    /// only: at start everything not yet receipted is deposited again anyway).
    stored: HashSet<i64>,
    /// Our invites that have been used, still read to tell of later answers.
    used_invites: HashMap<i64, invites::UsedInvite>,
    /// Invites we accepted, by contact, until their inviter says who used them.
    checks: HashMap<i64, invites::Check>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("contacts", &self.contacts.len())
            .finish_non_exhaustive()
    }
}

/// A relay address as the faces show it: `host:port`.
fn host_of(relay: &str) -> String {
    relay
        .strip_prefix("hum://")
        .and_then(|r| r.split('#').next())
        .unwrap_or(relay)
        .to_owned()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn random_uid() -> Result<Uid, EngineError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|_| EngineError::Random)?;
    Ok(b)
}

fn random_u64() -> Result<u64, EngineError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|_| EngineError::Random)?;
    Ok(u64::from_be_bytes(b))
}

/// Encodes a message for sealing; the buffer is wiped when dropped (it may hold keys).
fn enc<T: serde::Serialize>(v: &T) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    postcard::to_stdvec(v)
        .map(Zeroizing::new)
        .map_err(|_| EngineError::Encode)
}

fn crypto(e: hum_shared::crypto::CryptoError) -> EngineError {
    EngineError::Crypto(e.to_string())
}

pub(super) fn new_reassembler(part: usize) -> Reassembler {
    Reassembler::new(part, 4 * MAX_TEXT, 16, 2 * MAX_TEXT)
}

/// The result of sealing one application message, not yet committed.
struct Sealed {
    relay: String,
    mailbox: MailboxId,
    fanout: bool,
    envelopes: Vec<Envelope>,
    session: Option<(i64, Session)>,
    group: Option<(i64, GroupState)>,
}

impl Sealed {
    /// Whose key state sealed it.
    fn dest(&self) -> Option<Dest> {
        match (&self.session, &self.group) {
            (Some((cid, _)), _) => Some(Dest::Contact(*cid)),
            (None, Some((rid, _))) => Some(Dest::Group(*rid)),
            (None, None) => None,
        }
    }
}

impl Core {
    /// Opens the engine on an unlocked store.
    pub(crate) fn new(
        profile: super::Unlocked,
        home: String,
        events: UnboundedSender<Event>,
        spawn: LinkSpawner,
        options: super::EngineOptions,
    ) -> Result<Self, EngineError> {
        let super::Unlocked {
            store,
            identity: me,
            name: my_name,
        } = profile;
        let mut core = Self {
            options,
            resend: HashMap::new(),
            stored: HashSet::new(),
            store,
            me,
            my_name,
            home,
            contacts: HashMap::new(),
            sessions: HashMap::new(),
            rooms: HashMap::new(),
            invites: HashMap::new(),
            routes: HashMap::new(),
            reassembly: HashMap::new(),
            links: HashMap::new(),
            tags: 0,
            events,
            spawn,
            epoch: epoch_at(now_secs()),
            quitting: None,
            stash: VecDeque::new(),
            used_invites: HashMap::new(),
            checks: HashMap::new(),
        };
        core.load()?;
        core.load_invite_state()?;
        Ok(core)
    }

    fn load(&mut self) -> Result<(), EngineError> {
        let db = self.store.db();
        // Expired invites can never be answered: their secrets go.
        let mut expired = Vec::new();
        for (id, secret) in db.invites()? {
            if secret.expires_at() > now_secs() {
                self.invites.insert(id, secret);
            } else {
                expired.push(id);
            }
        }
        self.rooms = db.rooms()?.into_iter().collect();
        for (id, rec) in db.contacts()? {
            let public = PublicIdentity::from_bytes(&rec.identity).map_err(crypto)?;
            let room = self
                .rooms
                .iter()
                .find(|(_, r)| r.contact == Some(id))
                .map(|(&rid, _)| rid)
                .ok_or_else(|| EngineError::Store("a contact has no room".into()))?;
            self.contacts.insert(id, Contact { rec, public, room });
        }
        if let Some(r) = self
            .rooms
            .values()
            .find(|r| r.contact.is_some_and(|c| !self.contacts.contains_key(&c)))
        {
            return Err(EngineError::Store(format!(
                "the room {:?} names a contact that does not exist (damaged store)",
                r.name
            )));
        }
        for (cid, session) in db.sessions()? {
            // A session is bound to its contact's row; it must also be with that contact.
            let contact = self.contacts.get(&cid).ok_or_else(|| {
                EngineError::Store("a session has no contact (damaged store)".into())
            })?;
            if session.peer().fingerprint() != contact.public.fingerprint() {
                return Err(EngineError::Store(format!(
                    "the session stored for {} is with someone else: the store is damaged or \
                     was tampered with",
                    contact.rec.name
                )));
            }
            self.sessions.insert(cid, session);
        }
        // Parts of messages still being reassembled.
        for p in db.parts()? {
            let r = self
                .reassembly
                .entry((p.room, p.sender, p.part.len()))
                .or_insert_with(|| new_reassembler(p.part.len()));
            if let Err(e) = r.insert(&p.part) {
                tracing::debug!(cause = %e, "a kept part was not taken back");
            }
        }
        if !expired.is_empty() {
            self.store.tx(|db| {
                for id in &expired {
                    db.delete_invite(*id)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Announces the profile and connects every link.
    pub(crate) fn start(&mut self) -> Result<(), EngineError> {
        let rooms = self.room_summaries();
        let contacts = self.contact_list();
        self.emit(Event::Ready {
            me: self.my_name.clone(),
            rooms,
            contacts,
        });
        self.replay_inbox()?;
        let home = self.home.clone();
        self.ensure_link(&home);
        self.subscribe_all()?;
        // Everything not yet receipted goes out again: we cannot know what the relay kept.
        for (id, head) in self.store.db().outbox()? {
            self.ensure_link(&head.relay);
            if let Some(l) = self.links.get_mut(&head.relay) {
                l.pending.push_back(id);
            }
        }
        self.pump_all()?;
        Ok(())
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    fn error(&self, message: impl Into<String>) {
        self.emit(Event::Error {
            message: message.into(),
        });
    }

    fn contact_list(&self) -> Vec<(ContactId, String)> {
        let mut v: Vec<_> = self
            .contacts
            .iter()
            .map(|(&id, c)| (ContactId(id), c.rec.name.clone()))
            .collect();
        v.sort();
        v
    }

    fn room_summary(&self, id: i64) -> Option<RoomSummary> {
        let room = self.rooms.get(&id)?;
        let contact = self
            .contacts
            .iter()
            .find(|(_, c)| c.room == id)
            .map(|(&cid, _)| cid);
        let (kind, members, closed) = match (&room.group, contact) {
            (Some(g), _) => (
                RoomKind::Group,
                g.members.iter().map(|m| m.name.clone()).collect(),
                g.closed,
            ),
            (None, Some(cid)) => (
                RoomKind::Direct(ContactId(cid)),
                vec![room.name.clone()],
                false,
            ),
            (None, None) => (RoomKind::Group, Vec::new(), true),
        };
        Some(RoomSummary {
            id: RoomId(id),
            name: room.name.clone(),
            kind,
            members,
            unread: room.unread,
            mentions: room.mentions,
            closed,
        })
    }

    fn room_summaries(&self) -> Vec<RoomSummary> {
        let mut ids: Vec<i64> = self.rooms.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.room_summary(id))
            .collect()
    }

    fn emit_room(&self, id: i64) {
        if let Some(s) = self.room_summary(id) {
            self.emit(Event::Room(s));
        }
    }

    // ----- links -------------------------------------------------------------------------

    fn ensure_link(&mut self, relay: &str) {
        if self.links.contains_key(relay) {
            return;
        }
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let (control_tx, control_rx) = tokio::sync::watch::channel(LinkControl::default());
        (self.spawn)(relay, queue.clone(), control_rx);
        self.links.insert(
            relay.to_owned(),
            LinkSlot {
                queue,
                up: false,
                relay_start: None,
                pending: VecDeque::new(),
                inflight: None,
                blocked: HashMap::new(),
                shown_queued: 0,
                state: LinkState::Connecting,
                rates: (0, 0),
                shown_cause: None,
                control: Some(control_tx),
            },
        );
        self.emit_link(relay);
    }

    fn emit_link(&self, relay: &str) {
        let Some(l) = self.links.get(relay) else {
            return;
        };
        self.emit(Event::Link(LinkStatus {
            relay: host_of(relay),
            state: l.state,
            cells_up_per_sec: l.rates.0,
            cells_down_per_sec: l.rates.1,
            queued: u32::try_from(l.pending.len()).unwrap_or(u32::MAX),
        }));
    }

    /// Tells the faces when the number of envelopes waiting for a relay changed.
    fn refresh_queued(&mut self, relay: &str) {
        let changed = match self.links.get_mut(relay) {
            Some(l) if l.shown_queued != l.pending.len() => {
                l.shown_queued = l.pending.len();
                true
            }
            _ => false,
        };
        if changed {
            self.emit_link(relay);
        }
    }

    fn push_op(&self, relay: &str, op: Up) {
        if let Some(l) = self.links.get(relay)
            && let Ok(mut q) = l.queue.lock()
        {
            q.push_back(op);
        }
    }

    fn subscribe(
        &mut self,
        relay: &str,
        cap: Capability,
        kind: RouteKind,
        fanout: bool,
        epoch: Option<u64>,
    ) -> Result<(), EngineError> {
        let id = cap.mailbox_id();
        if self.routes.contains_key(&id) {
            return Ok(());
        }
        self.ensure_link(relay);
        let after = if fanout {
            self.store.db().cursor(id.as_bytes())?
        } else {
            0
        };
        if self.links.get(relay).is_some_and(|l| l.up) {
            self.push_op(
                relay,
                Up::Subscribe {
                    capability: cap.clone(),
                    after,
                },
            );
        }
        self.routes.insert(
            id,
            Route {
                relay: relay.to_owned(),
                cap,
                kind,
                fanout,
                epoch,
                since: Instant::now(),
            },
        );
        Ok(())
    }

    /// Drops subscriptions to mailboxes of epochs before the last one, once they had time
    /// to drain: senders always deposit into the current epoch's mailbox, so only what
    /// was deposited before we subscribed can be in an old one. Keeps the number of
    /// subscriptions per conversation small.
    fn prune_routes(&mut self) {
        let cutoff = self.epoch.saturating_sub(1);
        let old: Vec<MailboxId> = self
            .routes
            .iter()
            .filter(|(_, r)| r.epoch.is_some_and(|e| e < cutoff) && r.since.elapsed() > DRAIN_TIME)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            if let Some(r) = self.routes.remove(&id) {
                self.push_op(&r.relay, Up::Unsubscribe { mailbox: id });
            }
        }
    }

    /// Forgets an invite: its secret leaves the store and its mailbox is no longer read.
    fn forget_invite(&mut self, id: i64) -> Result<(), EngineError> {
        self.store.tx(|db| db.delete_invite(id))?;
        if let Some(secret) = self.invites.remove(&id)
            && let Some(r) = self.routes.remove(&secret.capability().mailbox_id())
        {
            self.push_op(
                &r.relay,
                Up::Unsubscribe {
                    mailbox: r.cap.mailbox_id(),
                },
            );
        }
        Ok(())
    }

    /// Forgets the invites that expired: nobody can answer them any more.
    fn expire_invites(&mut self) -> Result<(), EngineError> {
        let now = now_secs();
        let expired: Vec<i64> = self
            .invites
            .iter()
            .filter(|(_, s)| s.expires_at() <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.forget_invite(id)?;
        }
        Ok(())
    }

    /// Subscribes every mailbox we read: invites, sessions and groups, for the epochs the
    /// relay may still hold.
    fn subscribe_all(&mut self) -> Result<(), EngineError> {
        let home = self.home.clone();
        let invites: Vec<(i64, Capability)> = self
            .invites
            .iter()
            .map(|(&id, s)| (id, s.capability().clone()))
            .collect();
        for (id, cap) in invites {
            self.subscribe(&home, cap, RouteKind::Invite(id), false, None)?;
        }
        self.subscribe_invite_state()?;
        let epochs: Vec<u64> =
            (self.epoch.saturating_sub(EPOCHS_BACK - 1)..=self.epoch + 1).collect();
        let caps: Vec<(i64, Vec<(u64, Capability)>)> = self
            .sessions
            .iter()
            .map(|(&cid, s)| {
                (
                    cid,
                    epochs
                        .iter()
                        .map(|&e| (e, s.receive_capability(e)))
                        .collect(),
                )
            })
            .collect();
        for (cid, cs) in caps {
            for (e, cap) in cs {
                self.subscribe(&home, cap, RouteKind::Direct(cid), false, Some(e))?;
            }
        }
        let mut groups = Vec::new();
        for (&rid, room) in &self.rooms {
            if let Some(g) = &room.group {
                if g.closed {
                    continue;
                }
                let state = GroupState::from_bytes(&g.state).map_err(crypto)?;
                groups.push((
                    rid,
                    g.relay.clone(),
                    epochs
                        .iter()
                        .map(|&e| (e, state.capability(e)))
                        .collect::<Vec<_>>(),
                ));
            }
        }
        for (rid, relay, cs) in groups {
            for (e, cap) in cs {
                self.subscribe(&relay, cap, RouteKind::Group(rid), true, Some(e))?;
            }
        }
        Ok(())
    }

    fn on_link_up(&mut self, relay: &str, tick: u64, tick_micros: u32) -> Result<(), EngineError> {
        let restarted = {
            let Some(l) = self.links.get_mut(relay) else {
                return Ok(());
            };
            // The relay's start in unix microseconds: tick number times tick length
            // before now. The same relay gives the same start at every connect.
            let age = u128::from(tick) * u128::from(tick_micros);
            let start = now_micros().saturating_sub(age);
            let restarted = l
                .relay_start
                .is_none_or(|prev| prev.abs_diff(start) > 2_000_000);
            l.relay_start = Some(start);
            l.up = true;
            l.state = LinkState::Up;
            l.shown_cause = None;
            l.inflight = None;
            if let Ok(mut q) = l.queue.lock() {
                q.clear();
            }
            restarted
        };
        let mut subs = Vec::new();
        for (id, r) in self.routes.iter().filter(|(_, r)| r.relay == relay) {
            let after = if r.fanout {
                self.store.db().cursor(id.as_bytes())?
            } else {
                0
            };
            subs.push(Up::Subscribe {
                capability: r.cap.clone(),
                after,
            });
        }
        for op in subs {
            self.push_op(relay, op);
        }
        // After a relay restart the relay lost what it held: everything not yet receipted
        // goes out again, in its original order. The receivers drop duplicates.
        let outbox = self.store.db().outbox()?;
        let ids: HashSet<i64> = outbox.iter().map(|(id, _)| *id).collect();
        self.stored.retain(|id| ids.contains(id));
        let rows: Vec<i64> = outbox
            .into_iter()
            .filter(|(id, h)| h.relay == relay && (restarted || !self.stored.contains(id)))
            .map(|(id, _)| id)
            .collect();
        if let Some(l) = self.links.get_mut(relay) {
            l.pending = rows.into_iter().collect();
        }
        self.emit_link(relay);
        self.pump(relay)
    }

    fn on_link_down(&mut self, relay: &str, retry_in_ms: u64, cause: Option<String>) {
        let mut show = None;
        if let Some(l) = self.links.get_mut(relay) {
            l.up = false;
            l.inflight = None;
            l.state = LinkState::Down { retry_in_ms };
            l.rates = (0, 0);
            if cause.is_some() && l.shown_cause != cause {
                l.shown_cause.clone_from(&cause);
                show = cause;
            }
        }
        self.emit_link(relay);
        if let Some(cause) = show {
            // The cause first: a one-line notice cut at the screen's edge keeps it.
            self.error(format!("{cause} (relay {})", host_of(relay)));
        }
    }

    /// `/reconnect`: every link that is down tries again at once.
    fn reconnect(&mut self) {
        let mut down = Vec::new();
        for (relay, l) in &mut self.links {
            if l.up {
                continue;
            }
            if let Some(c) = &l.control {
                c.send_modify(|c| c.retries += 1);
            }
            // Asked for, the answer is shown again even when it is the same.
            l.shown_cause = None;
            l.state = LinkState::Connecting;
            down.push(relay.clone());
        }
        down.sort();
        if down.is_empty() {
            self.emit(Event::Notice("every relay link is up".into()));
        }
        for relay in down {
            self.emit_link(&relay);
            self.emit(Event::Notice(format!(
                "reconnecting to {}",
                host_of(&relay)
            )));
        }
    }

    /// Deposits again what a relay stored long ago without a receipt coming back.
    fn resend_due(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        let due: Vec<i64> = self
            .resend
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(r, _)| *r)
            .collect();
        for row in due {
            let Some(relay) = self.store.db().outbox_head(row)?.map(|h| h.relay) else {
                // Receipted meanwhile.
                self.resend.remove(&row);
                continue;
            };
            if let Some((at, wait)) = self.resend.get_mut(&row) {
                *wait = (*wait * 2).min(Duration::from_secs(86_400));
                *at = now + *wait;
            }
            if let Some(l) = self.links.get_mut(&relay)
                && !l.pending.contains(&row)
            {
                l.pending.push_back(row);
            }
        }
        Ok(())
    }

    fn pump_all(&mut self) -> Result<(), EngineError> {
        let relays: Vec<String> = self.links.keys().cloned().collect();
        for r in relays {
            self.pump(&r)?;
        }
        Ok(())
    }

    /// Hands the next outbox envelope to the link when nothing is in flight: one deposit
    /// at a time per relay keeps every sender's envelopes in order at the relay. A mailbox
    /// the relay called full waits, without holding up the others.
    fn pump(&mut self, relay: &str) -> Result<(), EngineError> {
        let now = Instant::now();
        let (rows, blocked): (Vec<i64>, HashMap<[u8; 32], Instant>) =
            match self.links.get_mut(relay) {
                Some(l) if l.up && l.inflight.is_none() => {
                    l.blocked.retain(|_, t| *t > now);
                    (l.pending.iter().copied().collect(), l.blocked.clone())
                }
                _ => return Ok(()),
            };
        let mut gone = Vec::new();
        let mut chosen = None;
        for row in rows {
            let Some((head, envelope)) = self.store.db().outbox_entry(row)? else {
                // Receipted meanwhile.
                gone.push(row);
                continue;
            };
            // Into the current epoch's mailbox, whenever it was sealed: the receiver reads
            // the current epochs, so a message that waited days in the outbox still lands
            // where it is read.
            let current = match head.dest {
                Some(Dest::Contact(cid)) => {
                    self.sessions.get(&cid).map(|s| s.send_mailbox(self.epoch))
                }
                Some(Dest::Group(rid)) => match self.rooms.get(&rid).and_then(|r| r.group.as_ref())
                {
                    Some(g) => Some(
                        GroupState::from_bytes(&g.state)
                            .map_err(crypto)?
                            .mailbox(self.epoch),
                    ),
                    None => None,
                },
                None => None,
            };
            let mb = current.map_or(head.mailbox, |m| *m.as_bytes());
            if blocked.contains_key(&mb) {
                continue;
            }
            chosen = Some((row, mb, head.fanout, envelope));
            break;
        }
        self.tags = self.tags.wrapping_add(1);
        let tag = self.tags;
        if let Some(l) = self.links.get_mut(relay) {
            l.pending.retain(|r| !gone.contains(r));
            if let Some((row, mb, _, _)) = &chosen {
                l.inflight = Some((tag, *row, *mb));
            }
        }
        if let Some((_, mb, fanout, envelope)) = chosen {
            self.push_op(
                relay,
                Up::Deposit {
                    tag,
                    mailbox: MailboxId::from_bytes(mb),
                    fanout,
                    envelope,
                },
            );
        }
        self.refresh_queued(relay);
        Ok(())
    }

    // ----- input -------------------------------------------------------------------------

    /// Handles one input. Returns `false` when the engine should stop.
    pub(crate) fn handle(&mut self, input: Input) -> Result<bool, EngineError> {
        self.input(input)?;
        if self
            .quitting
            .is_some_and(|deadline| Instant::now() >= deadline || self.drained())
        {
            for l in self.links.values_mut() {
                if let Some(c) = l.control.take() {
                    c.send_modify(|c| c.stop = true);
                }
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether nothing waits for a relay that is up (nothing more can leave before quitting).
    fn drained(&self) -> bool {
        self.links
            .values()
            .all(|l| !l.up || (l.pending.is_empty() && l.inflight.is_none()))
    }

    fn input(&mut self, input: Input) -> Result<(), EngineError> {
        match input {
            Input::Command(Command::Quit) => {
                self.flush_receipts()?;
                if self.quitting.is_none() {
                    self.quitting = Some(Instant::now() + QUIT_GRACE);
                }
            }
            Input::Command(c) => {
                if let Err(e) = self.command(c) {
                    self.error(e.to_string());
                }
            }
            Input::Down { relay, op } => self.down(&relay, op)?,
            Input::LinkUp {
                relay,
                tick,
                tick_micros,
            } => self.on_link_up(&relay, tick, tick_micros)?,
            Input::LinkDown {
                relay,
                retry_in_ms,
                cause,
            } => self.on_link_down(&relay, retry_in_ms, cause),
            Input::Rates { relay, up, down } => {
                if let Some(l) = self.links.get_mut(&relay)
                    && l.rates != (up, down)
                {
                    l.rates = (up, down);
                    self.emit_link(&relay);
                }
            }
            Input::Timer => {
                self.flush_receipts()?;
                let epoch = epoch_at(now_secs());
                if epoch != self.epoch {
                    self.epoch = epoch;
                    self.subscribe_all()?;
                }
                self.prune_routes();
                self.expire_invites()?;
                self.expire_used_invites()?;
                self.resend_due()?;
                self.pump_all()?;
                self.store.checkpoint_due(self.options.checkpoint_every)?;
            }
        }
        Ok(())
    }

    fn down(&mut self, relay: &str, op: Down) -> Result<(), EngineError> {
        match op {
            Down::Deliver {
                mailbox,
                seq,
                envelope,
            } => {
                // Only from the relay that holds the mailbox: another relay cannot move a
                // group's cursor.
                let Some(fanout) = self
                    .routes
                    .get(&mailbox)
                    .filter(|r| r.relay == relay)
                    .map(|r| r.fanout)
                else {
                    return Ok(());
                };
                self.deliver(mailbox, &envelope)?;
                if fanout {
                    self.store.tx(|db| db.set_cursor(mailbox.as_bytes(), seq))?;
                }
                self.push_op(relay, Up::Ack { mailbox, seq });
            }
            Down::Stored { tag } => {
                let row = self.links.get_mut(relay).and_then(|l| match l.inflight {
                    Some((t, r, _)) if t == tag => {
                        l.inflight = None;
                        l.pending.retain(|&p| p != r);
                        Some(r)
                    }
                    _ => None,
                });
                if let Some(row) = row {
                    self.mark_stored(row)?;
                }
                self.pump(relay)?;
            }
            Down::Full { tag } => {
                if let Some(l) = self.links.get_mut(relay)
                    && let Some((t, _, mb)) = l.inflight
                    && t == tag
                {
                    l.inflight = None;
                    l.blocked.insert(mb, Instant::now() + FULL_RETRY);
                }
                self.pump(relay)?;
            }
            Down::Subscribed { .. } => {}
        }
        Ok(())
    }

    /// Marks an outbox row stored. Receipts need nothing more and are dropped; a message
    /// whose envelopes are all stored becomes sent.
    fn mark_stored(&mut self, row: i64) -> Result<(), EngineError> {
        let Some(head) = self.store.db().outbox_head(row)? else {
            return Ok(());
        };
        let Some(uid) = head.uid else {
            self.store.tx(|db| db.delete_outbox(row))?;
            return Ok(());
        };
        self.stored.insert(row);
        let first = self.options.resend_after;
        self.resend
            .entry(row)
            .or_insert((Instant::now() + first, first));
        let room = match head.dest {
            Some(Dest::Contact(cid)) => self.contacts.get(&cid).map(|c| c.room),
            Some(Dest::Group(rid)) => Some(rid),
            None => None,
        };
        let Some(room) = room else {
            return Ok(());
        };
        let stored = &self.stored;
        let changed = self.store.tx(|db| {
            if db
                .outbox_ids_of(&uid)?
                .iter()
                .any(|id| !stored.contains(id))
            {
                return Ok(None);
            }
            let Some((id, mut rec)) = db.message_by_uid(room, &uid)? else {
                return Ok(None);
            };
            if !rec.from_me || rec.delivery != Some(DeliveryState::Queued) {
                return Ok(None);
            }
            rec.delivery = Some(DeliveryState::Sent);
            db.put_message(id, room, &rec)?;
            Ok(Some(id))
        })?;
        if let Some(id) = changed {
            self.emit(Event::Delivery {
                room: RoomId(room),
                id: MessageId(id),
                state: Delivery::Sent,
            });
        }
        Ok(())
    }

    // ----- commands ----------------------------------------------------------------------

    fn command(&mut self, c: Command) -> Result<(), EngineError> {
        match c {
            Command::CreateInvite => self.create_invite(),
            Command::AcceptInvite { code, name } => self.accept_invite(&code, name),
            Command::Send { room, text } => self.send_text(room.0, text),
            Command::CreateGroup { name } => self.create_group(name),
            Command::GroupAdd { room, contact } => self.group_add(room.0, contact.0),
            Command::GroupRemove { room, contact } => self.group_remove(room.0, contact.0),
            Command::GroupLeave { room } => self.group_leave(room.0),
            Command::GroupRename { room, name } => self.group_rename(room.0, name),
            Command::RenameContact { contact, name } => self.rename_contact(contact.0, name),
            Command::MarkRead { room } => {
                let Some(r) = self.rooms.get(&room.0) else {
                    return Err(EngineError::Unknown("room"));
                };
                if r.unread > 0 || r.mentions > 0 {
                    let mut rec = r.clone();
                    rec.unread = 0;
                    rec.mentions = 0;
                    self.store.tx(|db| db.put_room(room.0, &rec))?;
                    self.rooms.insert(room.0, rec);
                }
                self.emit_room(room.0);
                Ok(())
            }
            Command::LoadHistory {
                room,
                before,
                limit,
            } => {
                let page =
                    self.store
                        .db()
                        .page(room.0, before.map(|m| m.0), limit.saturating_add(1))?;
                self.report_damaged(page.damaged);
                let more = page.messages.len() > usize::try_from(limit).unwrap_or(usize::MAX);
                let mut messages: Vec<MessageView> = page
                    .messages
                    .into_iter()
                    .take(usize::try_from(limit).unwrap_or(usize::MAX))
                    .map(|(id, m)| view(room.0, id, m))
                    .collect();
                messages.reverse();
                self.emit(Event::History {
                    room,
                    messages,
                    more,
                });
                Ok(())
            }
            Command::Search { room, query } => {
                let q = query.to_lowercase();
                let rooms: Vec<i64> = match room {
                    Some(r) => vec![r.0],
                    None => {
                        let mut ids: Vec<i64> = self.rooms.keys().copied().collect();
                        ids.sort_unstable();
                        ids
                    }
                };
                let mut messages = Vec::new();
                for rid in rooms {
                    let page = self.store.db().all_messages(rid)?;
                    self.report_damaged(page.damaged);
                    messages.extend(
                        page.messages
                            .into_iter()
                            .filter(|(_, m)| m.body.text.to_lowercase().contains(&q))
                            .map(|(id, m)| view(rid, id, m)),
                    );
                }
                messages.sort_by_key(|m| m.id);
                self.emit(Event::SearchResults { query, messages });
                Ok(())
            }
            Command::Verify { contact } => {
                let c = self
                    .contacts
                    .get(&contact.0)
                    .ok_or(EngineError::Unknown("contact"))?;
                let number = safety_number(&self.me.public(), &c.public);
                self.emit(Event::SafetyNumber {
                    contact,
                    name: c.rec.name.clone(),
                    number,
                });
                Ok(())
            }
            Command::Members { room } => {
                let members = self.members_of(room.0)?;
                self.emit(Event::Members { room, members });
                Ok(())
            }
            Command::Reconnect => {
                self.reconnect();
                Ok(())
            }
            Command::Ping { token } => {
                self.emit(Event::Pong { token });
                Ok(())
            }
            Command::Quit => Ok(()),
        }
    }

    /// Tells the faces that history rows were skipped because they do not open.
    fn report_damaged(&self, damaged: usize) {
        if damaged > 0 {
            self.error(format!(
                "store: {damaged} message(s) of this room do not open and were skipped: the \
                 store is damaged or was tampered with"
            ));
        }
    }

    fn create_invite(&mut self) -> Result<(), EngineError> {
        let (invite, secret) = self
            .me
            .create_invite_with_nickname(
                &self.home,
                Some(&self.my_name),
                self.options.invite_ttl.as_secs().max(1),
                now_secs(),
            )
            .map_err(|e| EngineError::Crypto(e.to_string()))?;
        let id = self.store.tx(|db| db.insert_invite(&secret))?;
        let cap = secret.capability().clone();
        self.invites.insert(id, secret);
        let home = self.home.clone();
        self.subscribe(&home, cap, RouteKind::Invite(id), false, None)?;
        self.emit(Event::Invite {
            code: invite.encode(),
        });
        Ok(())
    }

    fn accept_invite(&mut self, code: &str, name: Option<String>) -> Result<(), EngineError> {
        let invite = Invite::decode(code.trim(), now_secs())
            .map_err(|e| EngineError::Invite(e.to_string()))?;
        let fp = *invite.inviter().fingerprint().as_bytes();
        if fp == *self.me.public().fingerprint().as_bytes() {
            return Err(EngineError::Invite(
                "that is your own invite code: give it to someone else".into(),
            ));
        }
        if self
            .contacts
            .values()
            .any(|c| *c.public.fingerprint().as_bytes() == fp)
        {
            return Err(EngineError::Invite("you already have this contact".into()));
        }
        let relay = invite.relay().to_owned();
        if relay.parse::<hum_shared::RelayAddr>().is_err() {
            return Err(EngineError::Invite(
                "the invite's relay address is not valid".into(),
            ));
        }
        let hello = enc(&Hello {
            name: self.my_name.clone(),
            relay: self.home.clone(),
        })?;
        let (session, envelope) = Session::initiate(&self.me, &invite, &hello).map_err(crypto)?;
        let name = self.unique_name(
            name.or_else(|| invite.nickname().map(str::to_owned))
                .unwrap_or_else(|| "contact".into()),
        );
        let head = OutboxHead {
            relay: relay.clone(),
            mailbox: *invite.mailbox().as_bytes(),
            fanout: false,
            dest: None,
            uid: None,
        };
        let check = Self::check_record(code.trim(), &envelope);
        let (cid, row) = self.add_contact(
            invite.inviter().clone(),
            name,
            relay.clone(),
            session,
            |db, cid| {
                // The handshake envelope waits in the outbox like any other until it is
                // stored; it carries no receipt id, since the first ratchet message answers
                // it. The invite is watched until its inviter says which answer used it.
                let row = db.insert_outbox(&head, envelope.as_bytes())?;
                db.put_invite_check(cid, &check)?;
                Ok(row)
            },
        )?;
        self.watch_invite(cid, invite, envelope)?;
        self.ensure_link(&relay);
        if let Some(l) = self.links.get_mut(&relay) {
            l.pending.push_back(row);
        }
        self.pump(&relay)
    }

    /// Adds a contact with its session and 1:1 room in one transaction, together with
    /// what `extra` writes (the handshake's outbox row, or the used invite's deletion).
    fn add_contact<T>(
        &mut self,
        public: PublicIdentity,
        name: String,
        relay: String,
        session: Session,
        extra: impl FnOnce(&Db<'_>, i64) -> Result<T, EngineError>,
    ) -> Result<(i64, T), EngineError> {
        let rec = ContactRecord {
            name: name.clone(),
            identity: public.to_bytes().to_vec(),
            relay,
        };
        let mut room_rec = RoomRecord {
            name: name.clone(),
            group: None,
            contact: None,
            unread: 0,
            mentions: 0,
        };
        let (cid, rid, out) = self.store.tx(|db| {
            let cid = db.insert_contact(&rec)?;
            db.put_session(cid, &session)?;
            room_rec.contact = Some(cid);
            let rid = db.insert_room(&room_rec)?;
            Ok((cid, rid, extra(db, cid)?))
        })?;
        self.contacts.insert(
            cid,
            Contact {
                rec,
                public,
                room: rid,
            },
        );
        self.sessions.insert(cid, session);
        self.rooms.insert(rid, room_rec);
        self.subscribe_session(cid)?;
        self.emit(Event::Contact {
            id: ContactId(cid),
            name,
        });
        self.emit_room(rid);
        Ok((cid, out))
    }

    fn subscribe_session(&mut self, cid: i64) -> Result<(), EngineError> {
        let caps: Vec<(u64, Capability)> = match self.sessions.get(&cid) {
            Some(s) => (self.epoch.saturating_sub(1)..=self.epoch + 1)
                .map(|e| (e, s.receive_capability(e)))
                .collect(),
            None => return Ok(()),
        };
        let home = self.home.clone();
        for (e, cap) in caps {
            self.subscribe(&home, cap, RouteKind::Direct(cid), false, Some(e))?;
        }
        Ok(())
    }

    fn subscribe_group(&mut self, rid: i64) -> Result<(), EngineError> {
        let Some(g) = self.rooms.get(&rid).and_then(|r| r.group.as_ref()) else {
            return Ok(());
        };
        if g.closed {
            return Ok(());
        }
        let state = GroupState::from_bytes(&g.state).map_err(crypto)?;
        let relay = g.relay.clone();
        let caps: Vec<(u64, Capability)> = (self.epoch.saturating_sub(1)..=self.epoch + 1)
            .map(|e| (e, state.capability(e)))
            .collect();
        for (e, cap) in caps {
            self.subscribe(&relay, cap, RouteKind::Group(rid), true, Some(e))?;
        }
        Ok(())
    }

    fn unique_name(&self, base: String) -> String {
        let base: String = base.chars().filter(|c| !c.is_control()).take(32).collect();
        let base = if base.trim().is_empty() {
            "contact".to_owned()
        } else {
            base.trim().replace(' ', "_")
        };
        let taken = |n: &str| self.contacts.values().any(|c| c.rec.name == n) || n == self.my_name;
        if !taken(&base) {
            return base;
        }
        (2..)
            .map(|i| format!("{base}{i}"))
            .find(|n| !taken(n))
            .unwrap_or(base)
    }

    fn rename_contact(&mut self, cid: i64, name: String) -> Result<(), EngineError> {
        let name = self.unique_name(name);
        let c = self
            .contacts
            .get_mut(&cid)
            .ok_or(EngineError::Unknown("contact"))?;
        let mut rec = c.rec.clone();
        rec.name = name.clone();
        let room = c.room;
        let mut room_rec = self
            .rooms
            .get(&room)
            .cloned()
            .ok_or(EngineError::Unknown("room"))?;
        room_rec.name = name.clone();
        self.store.tx(|db| {
            db.put_contact(cid, &rec)?;
            db.put_room(room, &room_rec)
        })?;
        if let Some(c) = self.contacts.get_mut(&cid) {
            c.rec = rec;
        }
        self.rooms.insert(room, room_rec);
        self.emit(Event::Contact {
            id: ContactId(cid),
            name,
        });
        self.emit_room(room);
        Ok(())
    }
}

/// A history row as the faces see it.
fn view(room: i64, id: i64, m: MessageRecord) -> MessageView {
    MessageView {
        id: MessageId(id),
        room: RoomId(room),
        sender: m.body.sender,
        from_me: m.from_me,
        text: m.body.text,
        sent_at: m.body.sent_at,
        delivery: m.delivery.map(Delivery::from),
        kind: if m.body.event {
            MessageKind::Event
        } else {
            MessageKind::Text
        },
    }
}

mod groups;
mod invites;
mod receive;
mod send;
#[cfg(test)]
mod tests;

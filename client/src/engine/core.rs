//! The engine's state machine: synchronous, single-threaded, driven by [`Input`]s.
//!
//! Every change that consumes key material is committed to the store in the same
//! transaction as the envelopes or history it produced, before anything leaves: a crash
//! at any instant loses no message and never reuses a message key.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hum_shared::crypto::{
    Capability, Envelope, Fingerprint, GroupId, GroupState, Identity, Invite, InviteHome,
    InviteSecret, MailboxId, PublicIdentity, SenderKeyDistribution, Session, epoch_at,
    safety_number,
};
use hum_shared::route::DeliverySecret;
use hum_shared::{Down, Reassembler, RelayAddr, Up, part_msg_id, split};
use zeroize::Zeroizing;

use super::records::{
    ContactRecord, DeliveryState, Dest, GroupRecord, HomeRecord, InboxRecord, MemberRecord,
    MessageRecord, Origin, OutboxHead, PartRecord, ReceiptOut, RoomRecord,
};
use super::route_link::{RouteOp, RouteSetup};
use super::store::{AddedContact, Db, NewContact, ProfileStore, RenamedContact};
use super::wire::{AppMessage, ContactHello, Member, StoredMessage, Uid};
use super::{EngineError, Inconsistency, Input, Refusal};
use crate::api::{
    Command, ContactId, Delivery, DisplayName, Event, LinkState, LinkStatus, MemberView, MessageId,
    MessageKind, MessageView, RoomId, RoomKind, RoomSummary, What,
};
use contacts::{Contact, Contacts};
use homes::Homes;
use outbox::{InFlight, Pump, Resends, RoutePump};
use subscriptions::{Route, RouteKind, Subscriptions};

/// Epochs of mailboxes to keep fetching: the relay keeps envelopes a week.
const EPOCHS_BACK: u64 = 8;
/// Largest text accepted for sending.
pub(crate) const MAX_TEXT: usize = 64 * 1024;
/// Receipts carried by one receipt message.
const RECEIPT_BATCH: usize = 40;
/// Group envelopes kept for a second try when they do not open at once.
const STASH_MAX: usize = 256;
/// How long quitting waits for queued envelopes to reach a relay that is up or connecting.
const QUIT_GRACE: Duration = Duration::from_secs(3);
/// Wait before retrying a deposit the relay refused as full.
const FULL_RETRY: Duration = Duration::from_secs(1);
/// How long a group text every member's relay stored stays in the outbox, to go again to
/// a relay that restarts (and so lost it) before its members read it: the relays' default
/// time to live.
const KEEP_STORED_GROUP_TEXTS: Duration = Duration::from_secs(7 * 24 * 3600);

/// The time an input is handled at. The core never reads a clock: waits are measured on
/// `at` (monotonic), and what is written down or compared with other machines (message
/// times, invite expiry, epochs, a relay's start) on `unix_micros`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Now {
    /// The monotonic clock.
    pub(crate) at: Instant,
    /// The wall clock, in unix microseconds.
    pub(crate) unix_micros: u128,
}

impl Now {
    /// The system's clocks, read once.
    pub(crate) fn system() -> Self {
        Self {
            at: Instant::now(),
            unix_micros: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0),
        }
    }

    /// This time plus `d` on both clocks (a fake clock moving on).
    #[cfg(test)]
    pub(crate) fn after(self, d: Duration) -> Self {
        Self {
            at: self.at + d,
            unix_micros: self.unix_micros + d.as_micros(),
        }
    }

    pub(crate) fn secs(self) -> u64 {
        u64::try_from(self.unix_micros / 1_000_000).unwrap_or(u64::MAX)
    }

    pub(crate) fn millis(self) -> i64 {
        i64::try_from(self.unix_micros / 1_000).unwrap_or(i64::MAX)
    }
}

/// What the core asks the runtime around it to do: the core decides, the runtime (the
/// engine thread in engine.rs, or a test) carries it out.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Tell the faces.
    Emit(Event),
    /// Start a link to this relay (it reports back with [`Input::LinkUp`]).
    OpenLink {
        /// The relay's address.
        relay: RelayAddr,
    },
    /// Put an operation into the link's next cells, if the link is still on connection
    /// `conn` (an operation meant for an older connection is dropped by the link).
    Send {
        /// The relay's address.
        relay: RelayAddr,
        /// The connection it is meant for, from [`Input::LinkUp`].
        conn: u64,
        /// The operation.
        op: Up,
    },
    /// A link that is down tries again now.
    Reconnect {
        /// The relay's address.
        relay: RelayAddr,
    },
    /// The hum/2 link, down, tries again now.
    ReconnectRoute,
    /// Every link stops for good: the engine is quitting.
    StopLinks,
    /// Start the hum/2 link (it reports back with [`Input::Route`]).
    OpenRoute(Box<RouteSetup>),
    /// Tell the hum/2 link this. What it was told outlives its connections, so nothing is
    /// told again after a reconnect.
    Route(RouteOp),
}

/// The next outbox row the pump deposits.
struct Deposit {
    row: i64,
    mailbox: [u8; 32],
    fanout: bool,
    envelope: Vec<u8>,
}

/// One relay link as the engine sees it.
pub(crate) struct LinkSlot {
    up: bool,
    /// The link's connection, from its last [`Input::LinkUp`].
    conn: u64,
    /// When the relay started, estimated from its tick number at connect: a different
    /// start on reconnect means it restarted and lost what it held.
    relay_start: Option<u128>,
    /// What waits to be deposited there.
    pump: Pump,
    /// The queued count last shown to the faces.
    shown_queued: usize,
    state: LinkState,
    rates: (u32, u32),
    /// The cause last shown as an error, so a link failing the same way again and again
    /// says it once.
    shown_cause: Option<String>,
}

/// The engine's state.
pub(crate) struct Core {
    store: ProfileStore,
    me: Identity,
    my_name: String,
    /// The relay this profile receives on (its home relay).
    home: RelayAddr,
    /// The relay this profile connects to (the home relay itself for a single relay).
    entry: RelayAddr,
    /// This profile's delivery secret.
    delivery: DeliverySecret,
    /// Where contacts and group members receive.
    homes: Homes,
    contacts: Contacts,
    sessions: HashMap<i64, Session>,
    rooms: HashMap<i64, RoomRecord>,
    invites: HashMap<i64, InviteSecret>,
    routes: Subscriptions,
    /// Messages being reassembled, by room, sender and part size: a sender's parts of one
    /// format revision all have one size (docs/PROTOCOL.md §3.10), so parts kept from
    /// before an upgrade do not stand in the way of the sizes that come after.
    reassembly: HashMap<(i64, Vec<u8>, usize), Reassembler>,
    links: HashMap<RelayAddr, LinkSlot>,
    tags: u32,
    /// Effects of the input being handled, handed out when it is done.
    out: RefCell<Vec<Effect>>,
    /// The time of the input being handled.
    now: Now,
    epoch: u64,
    /// Set by `Quit`: stop once the outbox has drained or at this deadline.
    quitting: Option<Instant>,
    /// Group envelopes that did not open yet (their sender's key may be on its way).
    stash: VecDeque<(i64, Envelope)>,
    options: super::EngineOptions,
    /// Outbox rows a relay answered `Stored` for since the engine started, and when to
    /// deposit them again without a receipt (kept in memory only: at start everything not
    /// yet receipted is deposited again anyway).
    resends: Resends,
    /// Our invites that have been used, still read to tell of later answers.
    used_invites: HashMap<i64, invites::UsedInvite>,
    /// Invites we accepted, by contact, until their inviter says who used them.
    checks: HashMap<i64, invites::Check>,
    /// The hum/2 link as the core knows it, once opened.
    route: Option<RouteView>,
    /// What the hum/2 link deposits: contacts' rows, when it runs.
    route_pump: RoutePump,
    /// When each contact's waiting receipts leave, with the hum/2 link: a random delay
    /// after the first of them, or with the next text to that contact.
    receipts_due: HashMap<i64, Instant>,
    /// Each group's generation and members the hum/2 link was told to expect.
    group_routes: HashMap<i64, route::GroupRoute>,
}

/// The hum/2 link as the core knows it.
#[derive(Debug, Default)]
pub(crate) struct RouteView {
    /// The connection went down and is not back up (it is retried): quitting does not
    /// wait for it, as it does for a link still coming up for the first time.
    down: bool,
    /// The entry relay is a single relay (it can see who talks to whom).
    single: bool,
    /// The link's last status.
    status: Option<hum_shared::route::session::Status>,
    /// The connection's state, as the faces are told it.
    state: Option<crate::api::LinkState>,
    /// Cells per second of the last second.
    rate: u32,
    /// What the faces were told last.
    shown: Option<crate::api::RouteStatus>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("contacts", &self.contacts.len())
            .finish_non_exhaustive()
    }
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

pub(super) fn new_reassembler(part: usize) -> Reassembler {
    Reassembler::new(part, 4 * MAX_TEXT, 16, 2 * MAX_TEXT)
}

/// The result of sealing one application message, not yet committed.
struct Sealed {
    relay: RelayAddr,
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
        relays: super::Relays,
        options: super::EngineOptions,
        now: Now,
    ) -> Result<Self, EngineError> {
        let super::Unlocked {
            store,
            identity: me,
            name: my_name,
            delivery,
        } = profile;
        let super::Relays { entry, home } = relays;
        let mut core = Self {
            options,
            resends: Resends::default(),
            store,
            me,
            my_name,
            home,
            entry,
            delivery,
            homes: Homes::default(),
            contacts: Contacts::default(),
            sessions: HashMap::new(),
            rooms: HashMap::new(),
            invites: HashMap::new(),
            routes: Subscriptions::default(),
            reassembly: HashMap::new(),
            links: HashMap::new(),
            tags: 0,
            out: RefCell::new(Vec::new()),
            now,
            epoch: epoch_at(now.secs()),
            quitting: None,
            stash: VecDeque::new(),
            used_invites: HashMap::new(),
            checks: HashMap::new(),
            route: None,
            route_pump: RoutePump::default(),
            receipts_due: HashMap::new(),
            group_routes: HashMap::new(),
        };
        core.load()?;
        core.load_homes()?;
        core.load_invite_state()?;
        Ok(core)
    }

    fn load(&mut self) -> Result<(), EngineError> {
        let db = self.store.db();
        // Expired invites can never be answered: their secrets go.
        let mut expired = Vec::new();
        for (id, secret) in db.invites()? {
            if secret.expires_at() > self.now.secs() {
                self.invites.insert(id, secret);
            } else {
                expired.push(id);
            }
        }
        self.rooms = db.rooms()?.into_iter().collect();
        for (id, rec) in db.contacts()? {
            let public = PublicIdentity::from_bytes(&rec.identity).map_err(EngineError::from)?;
            let room = self
                .rooms
                .iter()
                .find(|(_, r)| r.contact == Some(id))
                .map(|(&rid, _)| rid)
                .ok_or(Inconsistency::ContactWithoutRoom)?;
            self.contacts.insert(id, Contact { rec, public, room });
        }
        if let Some(r) = self
            .rooms
            .values()
            .find(|r| r.contact.is_some_and(|c| !self.contacts.contains_key(&c)))
        {
            return Err(Inconsistency::RoomWithoutContact(r.name.clone()).into());
        }
        for (cid, session) in db.sessions()? {
            // A session is bound to its contact's row; it must also be with that contact.
            let contact = self
                .contacts
                .get(&cid)
                .ok_or(Inconsistency::SessionWithoutContact)?;
            if session.peer().fingerprint() != contact.public.fingerprint() {
                return Err(Inconsistency::SessionWithSomeoneElse(contact.rec.name.clone()).into());
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
    pub(crate) fn start(&mut self, now: Now, effects: &mut Vec<Effect>) -> Result<(), EngineError> {
        self.now = now;
        let started = self.started();
        effects.append(self.out.get_mut());
        started
    }

    fn started(&mut self) -> Result<(), EngineError> {
        let rooms = self.room_summaries();
        let contacts = self.contact_list();
        self.emit(Event::Ready {
            me: self.my_name.clone(),
            rooms,
            contacts,
        });
        self.replay_inbox()?;
        // Kept rows were stored everywhere they go: they go again only to a relay that
        // restarts.
        for (id, until) in self.store.db().kept_outbox()? {
            self.resends.keep(id, until);
        }
        let home = self.home.clone();
        self.ensure_link(&home);
        if self.options.route_link {
            self.open_route()?;
        }
        self.subscribe_all()?;
        // Everything not yet receipted goes out again: we cannot know what the relay kept.
        let outbox = self.store.db().outbox()?;
        for (id, head) in &outbox {
            if self.resends.is_kept(*id) {
                continue;
            }
            self.ensure_link(&head.relay);
            if let Some(l) = self.links.get_mut(&head.relay) {
                l.pump.push(*id);
            }
        }
        self.tell_homes(&outbox)?;
        self.pump_all()?;
        Ok(())
    }

    fn emit(&self, e: Event) {
        self.out.borrow_mut().push(Effect::Emit(e));
    }

    fn error(&self, e: &EngineError) {
        self.emit(Event::Error {
            kind: e.kind(),
            message: e.to_string(),
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

    /// Whether a hum/1 link to `relay` may be opened. With the hum/2 link, only to a
    /// single relay that is this profile's entry and home at once: that relay sees every
    /// conversation anyway. A hum/1 link to any other relay would show it this client's
    /// address and when it writes to someone homed there, which hum/2 exists to hide; what
    /// only hum/1 could carry there waits in the outbox.
    pub(super) fn hum1_allowed(&self, relay: &RelayAddr) -> bool {
        !self.options.route_link || (self.entry == self.home && *relay == self.entry)
    }

    fn ensure_link(&mut self, relay: &RelayAddr) {
        if self.links.contains_key(relay) || !self.hum1_allowed(relay) {
            return;
        }
        self.out.borrow_mut().push(Effect::OpenLink {
            relay: relay.to_owned(),
        });
        self.links.insert(
            relay.to_owned(),
            LinkSlot {
                up: false,
                conn: 0,
                relay_start: None,
                pump: Pump::default(),
                shown_queued: 0,
                state: LinkState::Connecting,
                rates: (0, 0),
                shown_cause: None,
            },
        );
        self.emit_link(relay);
    }

    fn emit_link(&mut self, relay: &RelayAddr) {
        let Some(l) = self.links.get_mut(relay) else {
            return;
        };
        // What the faces were told: a later change of the count is told again.
        l.shown_queued = l.pump.len();
        let status = LinkStatus {
            relay: relay.host_port(),
            state: l.state,
            cells_up_per_sec: l.rates.0,
            cells_down_per_sec: l.rates.1,
            queued: u32::try_from(l.pump.len()).unwrap_or(u32::MAX),
        };
        self.emit(Event::Link(status));
    }

    /// Tells the faces when the number of envelopes waiting for a relay changed.
    fn refresh_queued(&mut self, relay: &RelayAddr) {
        let changed = match self.links.get_mut(relay) {
            Some(l) if l.shown_queued != l.pump.len() => {
                l.shown_queued = l.pump.len();
                true
            }
            _ => false,
        };
        if changed {
            self.emit_link(relay);
        }
    }

    fn push_op(&self, relay: &RelayAddr, op: Up) {
        if let Some(l) = self.links.get(relay) {
            self.out.borrow_mut().push(Effect::Send {
                relay: relay.to_owned(),
                conn: l.conn,
                op,
            });
        }
    }

    fn subscribe(
        &mut self,
        relay: &RelayAddr,
        cap: Capability,
        kind: RouteKind,
        fanout: bool,
        epoch: Option<u64>,
    ) -> Result<(), EngineError> {
        let id = cap.mailbox_id();
        if self.routes.contains(&id) || !self.hum1_allowed(relay) {
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
        self.routes.add(Route {
            relay: relay.to_owned(),
            cap,
            kind,
            fanout,
            epoch,
            since: self.now.at,
        });
        Ok(())
    }

    /// Drops subscriptions to mailboxes of epochs before the last one, once they had time
    /// to drain: senders always deposit into the current epoch's mailbox, so only what
    /// was deposited before we subscribed can be in an old one. Keeps the number of
    /// subscriptions per conversation small.
    fn prune_routes(&mut self) {
        for r in self.routes.drop_drained(self.epoch, self.now.at) {
            self.unsubscribe(&r);
        }
    }

    /// Tells the relay of `r` that its mailbox is no longer read.
    fn unsubscribe(&self, r: &Route) {
        self.push_op(
            &r.relay,
            Up::Unsubscribe {
                mailbox: r.cap.mailbox_id(),
            },
        );
    }

    /// Forgets an invite: its secret leaves the store and its mailbox is no longer read.
    fn forget_invite(&mut self, id: i64) -> Result<(), EngineError> {
        self.store.tx(|db| db.delete_invite(id))?;
        if self.invites.contains_key(&id) {
            self.route_op(RouteOp::Forget(homes::Sender::Invite(id).expected()));
        }
        if let Some(secret) = self.invites.remove(&id)
            && let Some(r) = self.routes.remove(&secret.capability().mailbox_id())
        {
            self.unsubscribe(&r);
        }
        Ok(())
    }

    /// Forgets the invites that expired: nobody can answer them any more.
    fn expire_invites(&mut self) -> Result<(), EngineError> {
        let now = self.now.secs();
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
                let state = g.state.clone();
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

    fn on_link_up(
        &mut self,
        relay: &RelayAddr,
        conn: u64,
        tick: u64,
        tick_micros: u32,
    ) -> Result<(), EngineError> {
        let restarted = {
            let Some(l) = self.links.get_mut(relay) else {
                return Ok(());
            };
            // The relay's start in unix microseconds: tick number times tick length
            // before now. The same relay gives the same start at every connect.
            let age = u128::from(tick) * u128::from(tick_micros);
            let start = self.now.unix_micros.saturating_sub(age);
            let restarted = l
                .relay_start
                .is_none_or(|prev| prev.abs_diff(start) > 2_000_000);
            l.relay_start = Some(start);
            l.up = true;
            l.state = LinkState::Up;
            l.shown_cause = None;
            // What was sent for the previous connection is dropped by the link.
            l.conn = conn;
            restarted
        };
        let mut subs = Vec::new();
        for r in self.routes.on_relay(relay) {
            let after = if r.fanout {
                self.store.db().cursor(r.cap.mailbox_id().as_bytes())?
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
        self.resends.keep_only(&ids);
        let rows: Vec<i64> = outbox
            .into_iter()
            .filter(|(id, h)| {
                // A kept row is the hum/2 link's: only a mailbox relay's restart it sees
                // sends it again.
                h.relay == *relay
                    && !self.resends.is_kept(*id)
                    && (restarted || !self.resends.is_stored(*id))
            })
            .map(|(id, _)| id)
            .collect();
        if restarted {
            // Nothing of it is stored any more: should this connection drop before the
            // relay answers again, the rows still go at the next one.
            self.resends.unstore(&rows);
        }
        if let Some(l) = self.links.get_mut(relay) {
            l.pump.restart_with(rows);
        }
        self.emit_link(relay);
        self.pump(relay)
    }

    fn on_link_down(&mut self, relay: &RelayAddr, retry_in_ms: u64, cause: Option<String>) {
        let mut show = None;
        if let Some(l) = self.links.get_mut(relay) {
            l.up = false;
            l.pump.lost();
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
            self.error(&EngineError::Link {
                relay: relay.host_port(),
                cause,
            });
        }
    }

    /// `/reconnect`: every link that is down tries again at once.
    fn reconnect(&mut self) {
        let mut down = Vec::new();
        for (relay, l) in &mut self.links {
            if l.up {
                continue;
            }
            self.out.borrow_mut().push(Effect::Reconnect {
                relay: relay.clone(),
            });
            // Asked for, the answer is shown again even when it is the same.
            l.shown_cause = None;
            l.state = LinkState::Connecting;
            down.push(relay.clone());
        }
        down.sort_by_key(ToString::to_string);
        let route_down = self.route.as_ref().is_some_and(|r| r.down);
        if route_down {
            self.out.borrow_mut().push(Effect::ReconnectRoute);
            if let Some(r) = self.route.as_mut() {
                r.state = Some(LinkState::Connecting);
            }
            self.emit_route();
            if !down.contains(&self.entry) {
                self.emit(Event::Notice(format!(
                    "reconnecting to {}",
                    self.entry.host_port()
                )));
            }
        }
        if down.is_empty() && !route_down {
            self.emit(Event::Notice("every relay link is up".into()));
        }
        for relay in down {
            self.emit_link(&relay);
            self.emit(Event::Notice(format!(
                "reconnecting to {}",
                relay.host_port()
            )));
        }
    }

    /// Deposits again what a relay stored long ago without a receipt coming back.
    fn resend_due(&mut self) -> Result<(), EngineError> {
        let now = self.now.at;
        for row in self.resends.due(now) {
            let Some(relay) = self.store.db().outbox_head(row)?.map(|h| h.relay) else {
                // Receipted meanwhile.
                self.resends.done(row);
                continue;
            };
            self.resends.resent(row, now);
            self.route_pump.resend(row);
            if let Some(l) = self.links.get_mut(&relay) {
                l.pump.push_once(row);
            }
        }
        Ok(())
    }

    /// Drops the kept rows whose time is over: the relays dropped them too.
    fn expire_kept(&mut self) -> Result<(), EngineError> {
        let gone = self.resends.expired(self.now.secs());
        if gone.is_empty() {
            return Ok(());
        }
        self.store.tx(|db| {
            for r in &gone {
                db.delete_outbox(*r)?;
            }
            Ok(())
        })?;
        for r in gone {
            self.resends.done(r);
        }
        Ok(())
    }

    fn pump_all(&mut self) -> Result<(), EngineError> {
        let relays: Vec<RelayAddr> = self.links.keys().cloned().collect();
        for r in relays {
            self.pump(&r)?;
        }
        Ok(())
    }

    /// Hands the next outbox envelope to the link when nothing is in flight: one deposit
    /// at a time per relay keeps every sender's envelopes in order at the relay. A mailbox
    /// the relay called full waits, without holding up the others.
    fn pump(&mut self, relay: &RelayAddr) -> Result<(), EngineError> {
        self.pump_route()?;
        let now = self.now.at;
        let Some(rows) = self
            .links
            .get_mut(relay)
            .filter(|l| l.up)
            .and_then(|l| l.pump.candidates(now))
        else {
            return Ok(());
        };
        let mut gone = Vec::new();
        let mut chosen = None;
        for row in rows {
            let Some((head, envelope)) = self.store.db().outbox_entry(row)? else {
                // Receipted meanwhile.
                gone.push(row);
                continue;
            };
            if self.routed(&head, &envelope) {
                // The hum/2 link deposits it.
                gone.push(row);
                continue;
            }
            // Into the current epoch's mailbox, whenever it was sealed: the receiver reads
            // the current epochs, so a message that waited days in the outbox still lands
            // where it is read.
            let current = match head.dest {
                Some(Dest::Contact(cid)) => {
                    self.sessions.get(&cid).map(|s| s.send_mailbox(self.epoch))
                }
                Some(Dest::Group(rid)) => match self.rooms.get(&rid).and_then(|r| r.group.as_ref())
                {
                    Some(g) => Some(g.state.clone().mailbox(self.epoch)),
                    None => None,
                },
                None => None,
            };
            let mb = current.map_or(head.mailbox, |m| *m.as_bytes());
            if self
                .links
                .get(relay)
                .is_some_and(|l| l.pump.is_blocked(&mb))
            {
                continue;
            }
            chosen = Some(Deposit {
                row,
                mailbox: mb,
                fanout: head.fanout,
                envelope,
            });
            break;
        }
        self.tags = self.tags.wrapping_add(1);
        let tag = self.tags;
        if let Some(l) = self.links.get_mut(relay) {
            l.pump.forget(&gone);
            if let Some(d) = &chosen {
                l.pump.sent(InFlight {
                    tag,
                    row: d.row,
                    mailbox: d.mailbox,
                });
            }
        }
        if let Some(d) = chosen {
            self.push_op(
                relay,
                Up::Deposit {
                    tag,
                    mailbox: MailboxId::from_bytes(d.mailbox),
                    fanout: d.fanout,
                    envelope: d.envelope,
                },
            );
        }
        self.refresh_queued(relay);
        Ok(())
    }

    // ----- input -------------------------------------------------------------------------

    /// Handles one input at `now`, adding what must be done to `effects`. Returns `false`
    /// when the engine should stop (the links are told to stop in `effects`).
    ///
    /// # Errors
    /// A store failure or damage; the engine stops. The effects of what was done before
    /// the failure are in `effects` all the same.
    pub(crate) fn handle(
        &mut self,
        input: Input,
        now: Now,
        effects: &mut Vec<Effect>,
    ) -> Result<bool, EngineError> {
        self.now = now;
        let go_on = self.step(input);
        effects.append(self.out.get_mut());
        go_on
    }

    fn step(&mut self, input: Input) -> Result<bool, EngineError> {
        self.input(input)?;
        self.sync_group_routes();
        if self
            .quitting
            .is_some_and(|deadline| self.now.at >= deadline || self.drained())
        {
            self.out.borrow_mut().push(Effect::StopLinks);
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether nothing waits for a relay that is up or still connecting (nothing more can
    /// leave before quitting). A link that failed is not waited for; one that has not come
    /// up yet, as right after the start, is.
    fn drained(&self) -> bool {
        let route_drained = self
            .route
            .as_ref()
            .is_none_or(|r| r.down || self.route_pump.is_idle());
        route_drained
            && self
                .links
                .values()
                .all(|l| matches!(l.state, LinkState::Down { .. }) || l.pump.is_idle())
    }

    fn input(&mut self, input: Input) -> Result<(), EngineError> {
        match input {
            Input::Command(Command::Quit) => {
                self.flush_receipts(true)?;
                if self.quitting.is_none() {
                    self.quitting = Some(self.now.at + QUIT_GRACE);
                }
            }
            Input::Command(c) => {
                if let Err(e) = self.command(c) {
                    self.error(&e);
                }
            }
            Input::Down { relay, op } => self.down(&relay, op)?,
            Input::LinkUp {
                relay,
                conn,
                tick,
                tick_micros,
            } => self.on_link_up(&relay, conn, tick, tick_micros)?,
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
            Input::Route(r) => self.on_route(r)?,
            Input::Timer => {
                self.flush_receipts(false)?;
                let epoch = epoch_at(self.now.secs());
                if epoch != self.epoch {
                    self.epoch = epoch;
                    self.subscribe_all()?;
                }
                self.prune_routes();
                self.expire_invites()?;
                self.expire_used_invites()?;
                self.resend_due()?;
                self.expire_kept()?;
                self.pump_all()?;
                self.store
                    .checkpoint_due(self.options.checkpoint_every, self.now.at)?;
            }
        }
        Ok(())
    }

    fn down(&mut self, relay: &RelayAddr, op: Down) -> Result<(), EngineError> {
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
                    .filter(|r| r.relay == *relay)
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
                let row = self.links.get_mut(relay).and_then(|l| l.pump.stored(tag));
                if let Some(row) = row {
                    self.mark_stored(row)?;
                }
                self.pump(relay)?;
            }
            Down::Full { tag } => {
                let until = self.now.at + FULL_RETRY;
                if let Some(l) = self.links.get_mut(relay) {
                    l.pump.full(tag, until);
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
        self.resends
            .stored(row, self.now.at, self.options.resend_after);
        let room = match head.dest {
            Some(Dest::Contact(cid)) => self.contacts.get(&cid).map(|c| c.room),
            Some(Dest::Group(rid)) => Some(rid),
            None => None,
        };
        let Some(room) = room else {
            return Ok(());
        };
        // On the hum/2 link no member receipts a group text: once every member's relay
        // stored it, it is done, and it leaves the outbox rather than wait for a receipt
        // on the re-send schedule. While a member's home is unknown the row stays, and
        // the re-send reaches that member once its home is learnt.
        //
        // It is kept, though, until the relays would have dropped it anyway: a relay that
        // restarts loses what it held, and the text goes to that relay again.
        let done = matches!(head.dest, Some(Dest::Group(rid))
            if self.route.is_some() && self.group_all_homed(rid));
        let until = self
            .now
            .secs()
            .saturating_add(KEEP_STORED_GROUP_TEXTS.as_secs());
        let resends = &self.resends;
        let (changed, kept) = self.store.tx(|db| {
            let rows = db.outbox_ids_of(&uid)?;
            if rows.iter().any(|id| !resends.is_stored(*id)) {
                return Ok((None, Vec::new()));
            }
            let mut kept = Vec::new();
            if done {
                for r in rows {
                    db.keep_outbox(r, until)?;
                    kept.push(r);
                }
            }
            let Some((id, mut rec)) = db.message_by_uid(room, &uid)? else {
                return Ok((None, kept));
            };
            if !rec.from_me || rec.delivery != Some(DeliveryState::Queued) {
                return Ok((None, kept));
            }
            rec.delivery = Some(DeliveryState::Sent);
            db.put_message(id, room, &rec)?;
            Ok((Some(id), kept))
        })?;
        for r in kept {
            self.resends.keep(r, until);
        }
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
                    return Err(EngineError::NoSuch(What::Room));
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
                    .ok_or(EngineError::NoSuch(What::Contact))?;
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
            self.error(&EngineError::Damaged(damaged));
        }
    }

    fn create_invite(&mut self) -> Result<(), EngineError> {
        let home = self.home.to_string();
        // A mesh client suggests its own entry relay; a single relay is entry and home.
        let entry = (self.entry != self.home).then(|| self.entry.to_string());
        let (invite, secret) = self
            .me
            .create_invite_with(
                &InviteHome {
                    relay: &home,
                    entry: entry.as_deref(),
                    delivery: &self.delivery,
                },
                Some(&self.my_name),
                self.options.invite_ttl.as_secs().max(1),
                self.now.secs(),
            )
            .map_err(EngineError::from)?;
        let id = self.store.tx(|db| db.insert_invite(&secret))?;
        let cap = secret.capability().clone();
        self.invites.insert(id, secret);
        self.expect_invite(id);
        let home = self.home.clone();
        self.subscribe(&home, cap, RouteKind::Invite(id), false, None)?;
        self.emit(Event::Invite {
            code: invite.encode(),
        });
        Ok(())
    }

    fn accept_invite(&mut self, code: &str, name: Option<String>) -> Result<(), EngineError> {
        let invite = Invite::decode(code.trim(), self.now.secs()).map_err(EngineError::from)?;
        let fp = *invite.inviter().fingerprint().as_bytes();
        if fp == *self.me.public().fingerprint().as_bytes() {
            return Err(EngineError::OwnInvite);
        }
        if self
            .contacts
            .values()
            .any(|c| *c.public.fingerprint().as_bytes() == fp)
        {
            return Err(EngineError::AlreadyContact);
        }
        let relay: RelayAddr = invite
            .relay()
            .parse()
            .map_err(|_| EngineError::InviteRelay)?;
        let hello = enc(&ContactHello {
            name: self.my_name.clone(),
            relay: self.home.to_string(),
            delivery: Zeroizing::new(*self.delivery.expose_secret()),
        })?;
        let (session, envelope) =
            Session::initiate(&self.me, &invite, &hello).map_err(EngineError::from)?;
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
        let check = Self::check_record(code.trim(), &envelope, self.now.secs());
        let person = invite.inviter().fingerprint();
        let home = HomeRecord::new(relay.clone(), invite.delivery_secret());
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
                db.put_home(&person, &home)?;
                Ok(row)
            },
        )?;
        self.homes.insert(person, home);
        self.watch_invite(cid, invite, &relay, envelope)?;
        self.ensure_link(&relay);
        if let Some(l) = self.links.get_mut(&relay) {
            l.pump.push(row);
        }
        self.pump(&relay)
    }

    /// Adds a contact with its session and 1:1 room in one transaction, together with
    /// what `extra` writes (the handshake's outbox row, or the used invite's deletion).
    fn add_contact<T>(
        &mut self,
        public: PublicIdentity,
        name: String,
        relay: RelayAddr,
        session: Session,
        extra: impl FnOnce(&Db<'_>, i64) -> Result<T, EngineError>,
    ) -> Result<(i64, T), EngineError> {
        let rec = ContactRecord {
            name: name.clone(),
            identity: public.to_bytes().to_vec(),
            relay,
        };
        let room = RoomRecord {
            name: name.clone(),
            group: None,
            contact: None,
            unread: 0,
            mentions: 0,
        };
        let (added, out) = self.store.tx(|db| {
            let added = db.add_contact(&NewContact {
                contact: &rec,
                session: &session,
                room: &room,
            })?;
            let out = extra(db, added.contact)?;
            Ok((added, out))
        })?;
        let AddedContact {
            contact: cid,
            room: rid,
            room_record: room_rec,
        } = added;
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
        self.expect_contact(cid);
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
        let state = g.state.clone();
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
        self.contacts.unique_name(&base, &self.my_name)
    }

    fn rename_contact(&mut self, cid: i64, name: String) -> Result<(), EngineError> {
        let name = self.unique_name(name);
        let c = self
            .contacts
            .get_mut(&cid)
            .ok_or(EngineError::NoSuch(What::Contact))?;
        let mut rec = c.rec.clone();
        rec.name = name.clone();
        let room = c.room;
        let mut room_rec = self
            .rooms
            .get(&room)
            .cloned()
            .ok_or(EngineError::NoSuch(What::Room))?;
        room_rec.name = name.clone();
        self.store.tx(|db| {
            db.rename_contact(&RenamedContact {
                contact: cid,
                record: &rec,
                room,
                room_record: &room_rec,
            })
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

mod contacts;
mod groups;
mod homes;
mod invites;
mod outbox;
mod receive;
mod route;
mod send;
mod subscriptions;
#[cfg(test)]
mod tests;

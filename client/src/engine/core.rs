//! The engine's state machine: synchronous, single-threaded, driven by [`Input`]s.
//!
//! Every change that consumes key material is committed to the store in the same
//! transaction as the envelopes or history it produced, before anything leaves: a crash
//! at any instant loses no message and never reuses a message key.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hum_shared::crypto::{
    Capability, Envelope, GroupState, Identity, Invite, InviteSecret, MailboxId, PublicIdentity,
    SenderKeyDistribution, Session, StoreKey, epoch_at, safety_number,
};
use hum_shared::{Down, Reassembler, Up, part_msg_id, split};
use rusqlite::params;
use tokio::sync::mpsc::UnboundedSender;

use super::records::{ContactRecord, GroupRecord, MemberRecord, RoomRecord};
use super::store::{self, Store, exec, open, query_opt, query_pairs, seal, set_cursor};
use super::wire::{AppMessage, Hello, Member, StoredMessage, Uid};
use super::{EngineError, Input};
use crate::api::{
    Command, ContactId, Delivery, Event, LinkState, LinkStatus, MessageId, MessageView, RoomId,
    RoomKind, RoomSummary,
};

/// How long an invite code stays valid.
const INVITE_TTL_SECS: u64 = 7 * 86_400;
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

/// Where to send an application message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dest {
    Contact(i64),
    Group(i64),
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
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

/// Starts link tasks; the engine gives one to the core so tests can replace the network.
pub(crate) type LinkSpawner =
    Box<dyn FnMut(&str, Arc<Mutex<VecDeque<Up>>>, tokio::sync::watch::Receiver<bool>) + Send>;

struct Contact {
    rec: ContactRecord,
    public: PublicIdentity,
    room: i64,
}

struct Room {
    rec: RoomRecord,
    unread: u32,
    mentions: u32,
}

/// The engine's state.
pub(crate) struct Core {
    store: Store,
    key: StoreKey,
    me: Identity,
    my_name: String,
    home: String,
    contacts: HashMap<i64, Contact>,
    sessions: HashMap<i64, Session>,
    rooms: HashMap<i64, Room>,
    invites: HashMap<i64, InviteSecret>,
    routes: HashMap<MailboxId, Route>,
    reassembly: HashMap<(i64, Vec<u8>), Reassembler>,
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
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("contacts", &self.contacts.len())
            .finish_non_exhaustive()
    }
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

fn enc<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, EngineError> {
    postcard::to_stdvec(v).map_err(|_| EngineError::Encode)
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, EngineError> {
    postcard::from_bytes(b)
        .map_err(|_| EngineError::Store("a stored record does not decode".into()))
}

fn crypto(e: hum_shared::crypto::CryptoError) -> EngineError {
    EngineError::Crypto(e.to_string())
}

fn new_reassembler(part: usize) -> Reassembler {
    Reassembler::new(part, 4 * MAX_TEXT, 16, 2 * MAX_TEXT)
}

/// An outbox row as the pump reads it: mailbox, fan-out, envelope, contact, room.
type OutboxEntry = (Vec<u8>, i64, Vec<u8>, Option<i64>, Option<i64>);
/// A receipt waiting to be sealed: row id, contact, room, message id.
type ReceiptRow = (i64, Option<i64>, Option<i64>, Vec<u8>);

/// Sealed key state to write: a session row and a room row.
type StateRows = (Option<(i64, Vec<u8>)>, Option<(i64, Vec<u8>)>);

/// The result of sealing one application message, not yet committed.
struct Sealed {
    relay: String,
    mailbox: MailboxId,
    fanout: bool,
    envelopes: Vec<Envelope>,
    session: Option<(i64, Session)>,
    group: Option<(i64, GroupState)>,
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
            key,
            identity: me,
            name: my_name,
        } = profile;
        let mut core = Self {
            options,
            resend: HashMap::new(),
            store,
            key,
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
        };
        core.load()?;
        Ok(core)
    }

    fn load(&mut self) -> Result<(), EngineError> {
        // Expired invites can never be answered: their secrets go.
        let now = i64::try_from(now_secs()).unwrap_or(i64::MAX);
        self.store
            .tx(|tx| exec(tx, "DELETE FROM invites WHERE expires_at <= ?1", [now]).map(drop))?;
        let c = self.store.conn();
        for (id, sealed) in query_pairs::<i64, Vec<u8>>(c, "SELECT id, sealed FROM contacts", [])? {
            let rec: ContactRecord = dec(&open(&self.key, &sealed, "contact")?)?;
            let public = PublicIdentity::from_bytes(&rec.identity).map_err(crypto)?;
            let room: i64 = query_opt(c, "SELECT id FROM rooms WHERE contact = ?1", [id])?
                .ok_or_else(|| EngineError::Store("a contact has no room".into()))?;
            self.contacts.insert(id, Contact { rec, public, room });
        }
        for (id, sealed) in
            query_pairs::<i64, Vec<u8>>(c, "SELECT contact, sealed FROM sessions", [])?
        {
            let b = zeroize::Zeroizing::new(open(&self.key, &sealed, "session")?);
            self.sessions
                .insert(id, Session::from_bytes(&b).map_err(crypto)?);
        }
        let mut st = c
            .prepare("SELECT id, sealed, unread, mentions FROM rooms")
            .map_err(|e| EngineError::Store(e.to_string()))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| EngineError::Store(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Store(e.to_string()))?;
        drop(st);
        for (id, sealed, unread, mentions) in rows {
            let rec: RoomRecord = dec(&zeroize::Zeroizing::new(open(&self.key, &sealed, "room")?))?;
            self.rooms.insert(
                id,
                Room {
                    rec,
                    unread: u32::try_from(unread).unwrap_or(0),
                    mentions: u32::try_from(mentions).unwrap_or(0),
                },
            );
        }
        for (id, sealed) in query_pairs::<i64, Vec<u8>>(c, "SELECT id, sealed FROM invites", [])? {
            let b = zeroize::Zeroizing::new(open(&self.key, &sealed, "invite")?);
            let secret =
                InviteSecret::from_bytes(&b).map_err(|e| EngineError::Crypto(e.to_string()))?;
            if secret.expires_at() > now_secs() {
                self.invites.insert(id, secret);
            }
        }
        // Parts of messages still being reassembled.
        let parts = {
            let mut st = c
                .prepare("SELECT room, sender, sealed FROM parts ORDER BY rowid")
                .map_err(|e| EngineError::Store(e.to_string()))?;
            st.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(|e| EngineError::Store(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Store(e.to_string()))?
        };
        for (room, sender, sealed) in parts {
            let part = open(&self.key, &sealed, "part")?;
            let size = part.len();
            let r = self
                .reassembly
                .entry((room, sender))
                .or_insert_with(|| new_reassembler(size));
            let _ = r.insert(&part);
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
        for row in self.store.outbox()? {
            self.ensure_link(&row.relay);
            if let Some(l) = self.links.get_mut(&row.relay) {
                l.pending.push_back(row.id);
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
        let (kind, members, closed) = match (&room.rec.group, contact) {
            (Some(g), _) => (
                RoomKind::Group,
                g.members.iter().map(|m| m.name.clone()).collect(),
                g.closed,
            ),
            (None, Some(cid)) => (
                RoomKind::Direct(ContactId(cid)),
                vec![room.rec.name.clone()],
                false,
            ),
            (None, None) => (RoomKind::Group, Vec::new(), true),
        };
        Some(RoomSummary {
            id: RoomId(id),
            name: room.rec.name.clone(),
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
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        (self.spawn)(relay, queue.clone(), stop_rx);
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
                stop: Some(stop_tx),
            },
        );
        self.emit_link(relay);
    }

    fn emit_link(&self, relay: &str) {
        let Some(l) = self.links.get(relay) else {
            return;
        };
        let host = relay
            .strip_prefix("hum://")
            .and_then(|r| r.split('#').next())
            .unwrap_or(relay)
            .to_owned();
        self.emit(Event::Link(LinkStatus {
            relay: host,
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
            self.store.cursor(id.as_bytes())?
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
            if let Some(g) = &room.rec.group {
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
            l.inflight = None;
            if let Ok(mut q) = l.queue.lock() {
                q.clear();
            }
            restarted
        };
        let subs: Vec<Up> = self
            .routes
            .iter()
            .filter(|(_, r)| r.relay == relay)
            .map(|(id, r)| {
                let after = if r.fanout {
                    self.store.cursor(id.as_bytes()).unwrap_or(0)
                } else {
                    0
                };
                Up::Subscribe {
                    capability: r.cap.clone(),
                    after,
                }
            })
            .collect();
        for op in subs {
            self.push_op(relay, op);
        }
        // After a relay restart the relay lost what it held: everything not yet receipted
        // goes out again, in its original order. The receivers drop duplicates.
        let rows: Vec<i64> = self
            .store
            .outbox()?
            .into_iter()
            .filter(|r| r.relay == relay && (restarted || !r.stored))
            .map(|r| r.id)
            .collect();
        if let Some(l) = self.links.get_mut(relay) {
            l.pending = rows.into_iter().collect();
        }
        self.emit_link(relay);
        self.pump(relay)
    }

    fn on_link_down(&mut self, relay: &str, retry_in_ms: u64) {
        if let Some(l) = self.links.get_mut(relay) {
            l.up = false;
            l.inflight = None;
            l.state = LinkState::Down { retry_in_ms };
            l.rates = (0, 0);
        }
        self.emit_link(relay);
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
            let relay: Option<String> = query_opt(
                self.store.conn(),
                "SELECT relay FROM outbox WHERE id = ?1",
                [row],
            )?;
            let Some(relay) = relay else {
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
            let found: Option<OutboxEntry> = self
                .store
                .conn()
                .query_row(
                    "SELECT mailbox, fanout, envelope, contact, room FROM outbox WHERE id = ?1",
                    [row],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .ok();
            let Some((mailbox, fanout, envelope, contact, room)) = found else {
                // Receipted meanwhile.
                gone.push(row);
                continue;
            };
            // Into the current epoch's mailbox, whenever it was sealed: the receiver reads
            // the current epochs, so a message that waited days in the outbox still lands
            // where it is read.
            let current = match (contact, room) {
                (Some(cid), _) => self.sessions.get(&cid).map(|s| s.send_mailbox(self.epoch)),
                (None, Some(rid)) => self
                    .group(rid)
                    .ok()
                    .and_then(|g| GroupState::from_bytes(&g.state).ok())
                    .map(|state| state.mailbox(self.epoch)),
                (None, None) => None,
            };
            let mb = match current {
                Some(m) => *m.as_bytes(),
                None => <[u8; 32]>::try_from(mailbox.as_slice())
                    .map_err(|_| EngineError::Store("outbox row with a bad mailbox".into()))?,
            };
            if blocked.contains_key(&mb) {
                continue;
            }
            chosen = Some((row, mb, fanout != 0, envelope));
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
                if let Some(s) = l.stop.take() {
                    let _ = s.send(true);
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
            Input::LinkDown { relay, retry_in_ms } => self.on_link_down(&relay, retry_in_ms),
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
                self.resend_due()?;
                self.pump_all()?;
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
                    set_cursor(self.store.conn(), mailbox.as_bytes(), seq)?;
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
        let uid: Option<Vec<u8>> = query_opt(
            self.store.conn(),
            "SELECT uid FROM outbox WHERE id = ?1",
            [row],
        )?
        .flatten();
        let Some(uid) = uid else {
            self.store
                .tx(|tx| exec(tx, "DELETE FROM outbox WHERE id = ?1", [row]).map(drop))?;
            return Ok(());
        };
        let first = self.options.resend_after;
        self.resend
            .entry(row)
            .or_insert((Instant::now() + first, first));
        let changed: Option<(i64, i64)> = self.store.tx(|tx| {
            exec(tx, "UPDATE outbox SET stored = 1 WHERE id = ?1", [row])?;
            let waiting: i64 = tx
                .query_row("SELECT COUNT(*) FROM outbox WHERE uid = ?1 AND stored = 0", [&uid], |r| r.get(0))
                .map_err(|e| EngineError::Store(e.to_string()))?;
            if waiting > 0 {
                return Ok(None);
            }
            let msg: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT id, room FROM messages WHERE uid = ?1 AND from_me = 1 AND delivery = ?2",
                    params![&uid, Delivery::Queued as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .ok();
            if let Some((id, _)) = msg {
                exec(tx, "UPDATE messages SET delivery = ?1 WHERE id = ?2", params![Delivery::Sent as i64, id])?;
            }
            Ok(msg)
        })?;
        if let Some((id, room)) = changed {
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
                self.store.tx(|tx| {
                    exec(
                        tx,
                        "UPDATE rooms SET unread = 0, mentions = 0 WHERE id = ?1",
                        [room.0],
                    )
                    .map(drop)
                })?;
                if let Some(r) = self.rooms.get_mut(&room.0) {
                    r.unread = 0;
                    r.mentions = 0;
                }
                self.emit_room(room.0);
                Ok(())
            }
            Command::LoadHistory {
                room,
                before,
                limit,
            } => {
                let rows = self
                    .store
                    .page(room.0, before.map(|m| m.0), limit.saturating_add(1))?;
                let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
                let mut messages = Vec::with_capacity(rows.len());
                for row in rows
                    .into_iter()
                    .take(usize::try_from(limit).unwrap_or(usize::MAX))
                {
                    messages.push(self.view(&row)?);
                }
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
                let mut messages = Vec::new();
                for row in self.store.all_messages(room.map(|r| r.0))? {
                    let v = self.view(&row)?;
                    if v.text.to_lowercase().contains(&q) {
                        messages.push(v);
                    }
                }
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
            Command::Quit => Ok(()),
        }
    }

    fn view(&self, row: &store::MessageRow) -> Result<MessageView, EngineError> {
        let m: StoredMessage = dec(&open(&self.key, &row.sealed, "message")?)?;
        Ok(MessageView {
            id: MessageId(row.id),
            room: RoomId(row.room),
            sender: m.sender,
            from_me: row.from_me,
            text: m.text,
            sent_at: m.sent_at,
            delivery: row.delivery.map(|d| match d {
                0 => Delivery::Queued,
                1 => Delivery::Sent,
                _ => Delivery::Delivered,
            }),
        })
    }

    fn create_invite(&mut self) -> Result<(), EngineError> {
        let (invite, secret) = self
            .me
            .create_invite_with_nickname(
                &self.home,
                Some(&self.my_name),
                INVITE_TTL_SECS,
                now_secs(),
            )
            .map_err(|e| EngineError::Crypto(e.to_string()))?;
        let sealed = seal(&self.key, &secret.to_bytes(), "invite")?;
        let expires = i64::try_from(secret.expires_at()).unwrap_or(i64::MAX);
        let id = self.store.tx(|tx| {
            exec(
                tx,
                "INSERT INTO invites (expires_at, sealed) VALUES (?1, ?2)",
                params![expires, sealed],
            )?;
            Ok(tx.last_insert_rowid())
        })?;
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
        let mailbox = invite.mailbox();
        let env = envelope.as_bytes().to_vec();
        let relay2 = relay.clone();
        let (_, row) = self.add_contact(invite.inviter().clone(), name, relay.clone(), session, |tx| {
            // The handshake envelope waits in the outbox like any other until it is stored;
            // it carries no receipt id, since the first ratchet message answers it.
            exec(
                tx,
                "INSERT INTO outbox (uid, relay, mailbox, fanout, envelope) VALUES (NULL, ?1, ?2, 0, ?3)",
                params![relay2, &mailbox.as_bytes()[..], env],
            )?;
            Ok(tx.last_insert_rowid())
        })?;
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
        extra: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, EngineError>,
    ) -> Result<(i64, T), EngineError> {
        let fp = *public.fingerprint().as_bytes();
        let rec = ContactRecord {
            name: name.clone(),
            identity: public.to_bytes().to_vec(),
            relay,
        };
        let contact_sealed = seal(&self.key, &enc(&rec)?, "contact")?;
        let session_sealed = seal(&self.key, &session.to_bytes().map_err(crypto)?, "session")?;
        let room_rec = RoomRecord {
            name: name.clone(),
            group: None,
        };
        let room_sealed = seal(&self.key, &enc(&room_rec)?, "room")?;
        let (cid, rid, out) = self.store.tx(|tx| {
            exec(
                tx,
                "INSERT INTO contacts (fingerprint, sealed) VALUES (?1, ?2)",
                params![&fp[..], contact_sealed],
            )?;
            let cid = tx.last_insert_rowid();
            exec(
                tx,
                "INSERT INTO sessions (contact, sealed) VALUES (?1, ?2)",
                params![cid, session_sealed],
            )?;
            exec(
                tx,
                "INSERT INTO rooms (contact, sealed) VALUES (?1, ?2)",
                params![cid, room_sealed],
            )?;
            let rid = tx.last_insert_rowid();
            Ok((cid, rid, extra(tx)?))
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
        self.rooms.insert(
            rid,
            Room {
                rec: room_rec,
                unread: 0,
                mentions: 0,
            },
        );
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
        let Some(g) = self.rooms.get(&rid).and_then(|r| r.rec.group.as_ref()) else {
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
        c.rec.name = name.clone();
        let room = c.room;
        let sealed = seal(&self.key, &enc(&c.rec)?, "contact")?;
        let r = self
            .rooms
            .get_mut(&room)
            .ok_or(EngineError::Unknown("room"))?;
        r.rec.name = name.clone();
        let room_sealed = seal(&self.key, &enc(&r.rec)?, "room")?;
        self.store.tx(|tx| {
            exec(
                tx,
                "UPDATE contacts SET sealed = ?1 WHERE id = ?2",
                params![sealed, cid],
            )?;
            exec(
                tx,
                "UPDATE rooms SET sealed = ?1 WHERE id = ?2",
                params![room_sealed, room],
            )
            .map(drop)
        })?;
        self.emit(Event::Contact {
            id: ContactId(cid),
            name,
        });
        self.emit_room(room);
        Ok(())
    }
}

mod groups;
mod receive;
mod send;

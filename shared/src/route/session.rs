//! What a hum/2 client does on the route, sans-IO (docs/PROTOCOL.md, hum/2 §H4 to §H6):
//! bytes in (the entry relay's hello, each down cell), bytes out (one up cell per down
//! cell), events out. No clock, no sockets, no threads: every delay is counted in down
//! cells (entry ticks), and randomness comes from an injected CSPRNG.
//!
//! A [`Session`] lives as long as one connection to an entry relay. Per tick it:
//!
//! - hands out the up cell for tick `t` ([`Session::take_up`]) as soon as the down cell of
//!   `t` has been read and before it is processed: it was sealed beforehand, so writing
//!   it costs the same whatever it holds, and nothing the down cell carries runs before
//!   it leaves;
//! - then processes the down cell of `t` ([`Session::on_down`]): the answer to its slot
//!   of `t - 2`, the live item of its bucket (`t` even) or the reply item of its slot of
//!   `t - 2` (`t` odd), a chunk of the directory;
//! - seals the up cell of `t + 1` ([`Session::prepare`]): a real deposit from the outbox
//!   (each attempt under a fresh tag seed and wrap), a loop into its own bucket, or a
//!   dummy; on odd ticks a catch-up request, on even ticks a delete.
//!
//! What must survive a restart is a [`SessionState`]: save it when the session says
//! [`SessionEvent::StateChanged`] (before the next up cell is written, and no attempt
//! counter is ever used twice), and start the next session from it.
//!
//! ```
//! # fn demo(me: hum_shared::route::session::Card, hello: hum_shared::route::Hello, down: &[u8])
//! #     -> Result<(), hum_shared::route::session::SessionError> {
//! use hum_shared::route::session::{Behaviour, Session, SessionState, system_rng};
//! let mut session = Session::new(me, Vec::new(), Behaviour::immediate(), SessionState::new(),
//!     hello, system_rng());
//! // Every tick: the down cell read, the up cell out, then the down cell processed and
//! // the next up cell sealed.
//! let up = session.take_up();
//! # let _ = up;
//! session.on_down(down)?;
//! session.prepare();
//! for event in session.events() { let _ = event; }
//! # Ok(()) }
//! ```

mod catch_up;
mod deletes;
mod outbox;
mod random;
mod state;
mod tags;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use self::catch_up::{CatchUps, Ticket};
use self::deletes::Deletes;
use self::outbox::{Outbox, Payload, Queued};
pub use self::random::SessionRng;
pub use self::state::SessionState;
use self::state::{Ledger, key_id};
use self::tags::{SHARED_WINDOW, TagTable, WINDOW};
use crate::RelayAddr;
use crate::crypto::Envelope;
use crate::route::{
    CELL_LEN, CatchUp, Copy, Delete, Deposit, DepositOutcome, Directory, DirectoryReassembler,
    DownCell, GroupTagKey, Hello, Item, MAX_COPIES, Refusal, RelayEntry, RelayId, ReplyKeys,
    Request, RouteError, Slot, SlotDeposit, TagKey, UpCell, WrapKey, log_digest, seal_clear_slot,
    seal_slot,
};

/// What a contact knows of a user: the delivery secret and the home relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// The user's delivery secret.
    pub secret: crate::route::DeliverySecret,
    /// The user's home relay, pinned.
    pub home: RelayAddr,
}

impl Card {
    /// A new user homed at `home`, with a fresh delivery secret.
    pub fn new(home: RelayAddr) -> Card {
        Card {
            secret: crate::route::DeliverySecret::generate(),
            home,
        }
    }

    /// The id of the user's home relay.
    pub fn relay(&self) -> RelayId {
        RelayId::of_fingerprint(&self.home.fingerprint)
    }
}

/// How a receiver unwraps what a sender wrapped.
#[derive(Debug, Clone)]
pub enum Unwrap {
    /// Under the receiver's own wrap key: 1:1 items, loops, invite answers. Such items are
    /// deleted at the relay after a random delay.
    Mine,
    /// Under the group's wrap key. Group copies serve every member in a bucket and are
    /// left to expire.
    Group(GroupTagKey),
}

/// A sender whose items the session recognises, as [`Session::expect`] named it. Stable
/// across sessions made from the same [`SessionState`] (the same tag key gets the same id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SenderId(pub u32);

/// The caller's name for a deposit (its answers name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DepositId(pub u64);

/// A deposit waiting in the outbox.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The caller's name for it.
    pub id: DepositId,
    /// Every recipient, all homed at one relay (a group text is one `Outgoing` per
    /// destination relay: [`Session::split_by_relay`]).
    pub to: Vec<Card>,
    /// The sending direction's tag key (a group: the speaker's member tag key).
    pub key: TagKey,
    /// A group's key: the deposit is wrapped under its wrap key, and its copies are padded
    /// to the copy size class.
    pub group: Option<GroupTagKey>,
    /// The sealed envelope, wrapped afresh for every attempt.
    pub envelope: Envelope,
    /// The tag key is one other clients write under too (an invite's, which every
    /// acceptor of the code tags its answer with; the receiver expects it with
    /// [`Session::expect_shared`]): the first counter of an epoch is this client's own,
    /// below half the receiver's window, so it differs from other writers'.
    pub shared: bool,
}

/// How the session behaves on its own, in entry ticks (means of random draws).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    /// Mean ticks between loop deposits (a Poisson process); `None`: no loops.
    pub loop_every: Option<f64>,
    /// Mean ticks before each epoch's catch-up starts (one draw per epoch, shaped as
    /// `catch_up_shape` says).
    pub catch_up_delay: f64,
    /// How the catch-up delays are drawn: uniform up to twice the mean by default, so a
    /// day's catch-up ends within a minute (docs/PROTOCOL.md, hum/2 §H11).
    pub catch_up_shape: DelayShape,
    /// Mean ticks before a received 1:1 item (or loop) is deleted at the relay
    /// (exponential, one draw per item).
    pub delete_delay: f64,
}

/// The design's mean seconds between a client's loops (docs/PROTOCOL.md, hum/2 §H6).
pub const LOOP_EVERY_SECS: f64 = 60.0;
/// The design's mean seconds before each epoch's catch-up starts (§H5).
pub const CATCH_UP_DELAY_SECS: f64 = 20.0;
/// The design's mean seconds before a received 1:1 item is deleted at the relay (as long
/// as a receipt waits, §H6).
pub const DELETE_DELAY_SECS: f64 = 30.0;

impl Behaviour {
    /// The design's behaviour, in ticks of `tick_micros` (the entry relay's tick, as its
    /// hello says): a loop every 60 s on average, each epoch's catch-up after a mean 20 s,
    /// each delete after a mean 30 s.
    pub fn design(tick_micros: u32) -> Behaviour {
        let per_sec = 1e6 / f64::from(tick_micros.max(1));
        Behaviour {
            loop_every: Some(LOOP_EVERY_SECS * per_sec),
            catch_up_delay: CATCH_UP_DELAY_SECS * per_sec,
            catch_up_shape: DelayShape::Uniform,
            delete_delay: DELETE_DELAY_SECS * per_sec,
        }
    }

    /// No loops, catch-ups and deletes at once: what tests use to see things happen
    /// without waiting (a client that behaves so shows its catch-ups and deletes).
    pub fn immediate() -> Behaviour {
        Behaviour {
            loop_every: None,
            catch_up_delay: 0.0,
            catch_up_shape: DelayShape::Uniform,
            delete_delay: 0.0,
        }
    }
}

/// How a random delay of a given mean is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DelayShape {
    /// Uniform from 0 to twice the mean: bounded, so the last of many draws comes by then.
    #[default]
    Uniform,
    /// Exponential: unbounded; the largest of `n` draws is about the mean times
    /// `1 + 1/2 + ... + 1/n`.
    Exponential,
}

/// How an item reached the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Via {
    /// The live bucket stream (even ticks).
    Live,
    /// A catch-up reply item (odd ticks).
    CatchUp,
}

/// What the session knows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// The entry relay's tick of the last down cell.
    pub tick: u64,
    /// Whether the entry relay is a single relay (it sees who talks to whom).
    pub single: bool,
    /// The home relay's epoch now, once the directory lists it.
    pub home_epoch: Option<u32>,
    /// The client's bucket in it.
    pub bucket: Option<u16>,
    /// Clients behind the entry relay now (the anonymity set), when the directory says.
    pub clients: Option<u32>,
    /// The caller's deposits not yet stored (queued or in flight).
    pub outbox: usize,
}

/// What the session saw or did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// An item for us.
    Received {
        /// Who sent it.
        sender: SenderId,
        /// The sealed envelope it carried.
        envelope: Envelope,
        /// The home relay's epoch it was deposited for.
        epoch: u32,
        /// How it came.
        via: Via,
        /// The entry tick of the down cell that carried it.
        tick: u64,
        /// Digest of the attempt's tag seed (`route::log_digest`, as relays' logs name it).
        seed: String,
    },
    /// An item whose tag was already seen (dropped).
    Duplicate,
    /// A real deposit left in the up cell of `tick` (every attempt).
    Deposited {
        /// The deposit.
        id: DepositId,
        /// The entry tick of the down cell the up cell answers.
        tick: u64,
        /// Digest of its tag seed (joins the mailbox relay's deposit records).
        seed: String,
        /// Digest of its wrapped envelope.
        payload: String,
        /// Digest of the sealed slot (joins the entry relay's slot records).
        slot: String,
    },
    /// The deposit was stored at its destination relay: it is sent.
    Stored {
        /// The deposit.
        id: DepositId,
    },
    /// The destination's bucket was full; the deposit is queued again.
    Full {
        /// The deposit.
        id: DepositId,
    },
    /// The deposit was for an epoch the relay no longer (or not yet) takes; it is queued
    /// again for the current one.
    Retry {
        /// The deposit.
        id: DepositId,
        /// The epoch the relay is in.
        epoch: u32,
    },
    /// No readable answer came (lost, late, or not for us); the deposit is queued again.
    Unknown {
        /// The deposit.
        id: DepositId,
    },
    /// The deposit cannot be sealed (its relay is not in the directory or not pinned,
    /// too many copies): it left the outbox.
    Unsendable {
        /// The deposit.
        id: DepositId,
        /// Why.
        why: RouteError,
    },
    /// The catch-up of `epoch` is done: every rank of its pages that could find
    /// something was answered.
    CaughtUp {
        /// The home relay's epoch.
        epoch: u32,
    },
    /// The home relay's epoch changed (buckets, tags and keys change with it).
    EpochChanged {
        /// The relay.
        relay: RelayId,
        /// Its new epoch.
        epoch: u32,
    },
    /// A mailbox relay announces another slot key for an epoch it had a key for: it
    /// restarted and lost what it held, so what was stored there and not yet read must
    /// be deposited again.
    Restarted {
        /// The relay.
        relay: RelayId,
    },
    /// [`Session::state`] is worth saving now (before the next up cell is written).
    StateChanged,
    /// A loop left in the up cell of `tick` (read by nobody but this client).
    Looped {
        /// The entry tick of the down cell the up cell answers.
        tick: u64,
        /// Digest of its tag seed.
        seed: String,
        /// Digest of its wrapped (random) envelope.
        payload: String,
        /// Digest of the sealed slot.
        slot: String,
    },
    /// The answer to one of this client's loops (a lost loop is not sent again).
    LoopAnswered {
        /// Digest of its tag seed.
        seed: String,
        /// What the relay said (`Unknown` when no answer opened).
        outcome: DepositOutcome,
    },
    /// One of this client's loops came back (dropped).
    LoopReturned {
        /// Digest of its tag seed.
        seed: String,
        /// The home relay's epoch it was deposited for.
        epoch: u32,
        /// The entry tick of the down cell that carried it.
        tick: u64,
        /// How it came.
        via: Via,
    },
}

/// Why a down cell ends the session (the link closes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The entry relay refused the client (its last cell).
    #[error("refused: {}", .0.reason())]
    Refused(Refusal),
    /// The bytes are not a down cell: wrong size or version, a bad directory chunk, or a
    /// checked directory that does not decode.
    #[error("not a down cell: {0}")]
    BadCell(RouteError),
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

/// The copy size classes of a group deposit: copies per destination relay are padded
/// to the next of these.
const COPY_CLASSES: [usize; 6] = [2, 4, 8, 16, 32, 64];

/// The padded copy count of a group deposit with `n` recipients at one relay.
fn copy_class(n: usize) -> Option<usize> {
    COPY_CLASSES.iter().copied().find(|&c| c >= n)
}

/// The operating system's CSPRNG, for [`Session::new`].
pub fn system_rng() -> SessionRng {
    random::system()
}

/// The sender id of the client's own loops (never handed out by [`Session::expect`]).
const LOOP: SenderId = SenderId(u32::MAX);
/// Ticks a re-queued deposit waits at least, and the spread of the random wait above it,
/// after its first refusal; each further refusal in a row doubles the wait.
const REQUEUE_WAIT: (u64, u64) = (2, 6);
/// The longest wait between two attempts of one deposit, in ticks (two minutes at
/// 100 ms; a thirtieth of the home relay's epoch when that is shorter, at least 8). Every attempt takes a fresh counter of its tag key, and a receiver recognises
/// only [`WINDOW`] counters past the last it saw: doubling up to this cap keeps a
/// deposit refused for a whole hour-long epoch to about 40 attempts, inside the window.
const MAX_REQUEUE_WAIT: u64 = 1_200;

/// One sender the session recognises.
struct Receiver {
    key: TagKey,
    unwrap: Unwrap,
    /// Counters kept ready past the first not seen: [`WINDOW`], or [`SHARED_WINDOW`] for
    /// a key many clients write under.
    window: u64,
}

/// A slot out, waiting for its answer two ticks later.
struct InFlight {
    keys: ReplyKeys,
    deposit: Option<Queued>,
    /// The catch-up request it carries.
    catch_up: Option<Ticket>,
    /// The seed digest of a loop it carries.
    loop_seed: Option<String>,
}

/// What the up cell of a deposit reports once it is handed out.
struct Note {
    id: Option<DepositId>,
    seed: String,
    payload: String,
}

/// What a cell is sealed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carry {
    /// What is due: a deposit, a loop, a request (a prepared cell).
    Due,
    /// A dummy with no request (a cell nobody prepared: it must not use a counter the
    /// caller could not save before writing it).
    Nothing,
}

/// An up cell sealed ahead of its tick.
struct Prepared {
    tick: u64,
    /// The delete it carries, put back if the cell is never written.
    delete: Option<Delete>,
    cell: Box<[u8; CELL_LEN]>,
    in_flight: Option<InFlight>,
    note: Option<Note>,
    slot: String,
}

/// Why a deposit did not go into a slot.
enum NotNow {
    /// It never will (it leaves the outbox).
    Never(RouteError),
    /// Not yet: a key of its epoch is not announced yet.
    Later,
}

/// A client's route session with one entry relay.
pub struct Session {
    me: Card,
    home: RelayId,
    pins: Vec<RelayAddr>,
    behaviour: Behaviour,
    rng: SessionRng,
    entry: RelayId,
    tick: u64,
    ttl_ticks: u64,
    directory: Directory,
    reassembler: DirectoryReassembler,
    ledger: Ledger,
    receivers: BTreeMap<SenderId, Receiver>,
    tags: TagTable,
    outbox: Outbox,
    catch_ups: CatchUps,
    deletes: Deletes,
    in_flight: BTreeMap<u64, InFlight>,
    prepared: Option<Prepared>,
    /// The last up cell handed out, by tick (asked twice, it is given again).
    written: Option<(u64, Box<[u8; CELL_LEN]>)>,
    /// The home relay's epoch at the last down cell of this session.
    home_epoch: Option<u32>,
    events: Vec<SessionEvent>,
    dirty: bool,
    seals: u64,
    /// Live items that came ahead of their sender's earlier ones while a catch-up of
    /// their epoch is owed or under way: each is read once that catch-up is over, so what
    /// it brings comes first (the epoch, the item). Nothing of them is noted as seen, so
    /// a session that ends with some held finds them again in that catch-up.
    held: Vec<Held>,
    /// Whether a held item is being read (it is not held again).
    releasing: bool,
}

/// A live item held back behind a catch-up of its epoch.
struct Held {
    epoch: u32,
    item: Item,
    /// The tick after which it is read whatever the catch-up does (one stalled behind
    /// many epochs owed, or never answered, holds nothing for long).
    until: u64,
}

/// The most live items held back behind a catch-up; any more are read at once.
const HELD_MAX: usize = 256;
/// Ticks a held item waits beyond the longest catch-up delay: a few pages' worth.
const HOLD_EXTRA_TICKS: u64 = 64;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tick", &self.tick)
            .field("outbox", &self.outbox.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session of the user `me` (pinning `pins`, the other relays it may deposit to)
    /// at the entry relay that sent `hello`, going on from `state`. The up cell of the
    /// first down cell is sealed here.
    pub fn new(
        me: Card,
        pins: Vec<RelayAddr>,
        behaviour: Behaviour,
        state: SessionState,
        hello: Hello,
        rng: SessionRng,
    ) -> Session {
        let mut rng = rng;
        let catch_ups = CatchUps::restore(state.jobs(), || {
            hello.tick.saturating_add(random::delay_shaped(
                &mut rng,
                behaviour.catch_up_delay,
                behaviour.catch_up_shape,
            ))
        });
        let ttl_ticks =
            (u64::from(hello.ttl_secs) * 1_000_000).div_ceil(u64::from(hello.tick_micros.max(1)));
        let mut s = Session {
            home: me.relay(),
            me,
            pins,
            behaviour,
            rng,
            entry: hello.relay,
            tick: hello.tick,
            ttl_ticks,
            directory: hello.directory,
            reassembler: DirectoryReassembler::new(),
            ledger: Ledger::restore(&state),
            receivers: BTreeMap::new(),
            tags: TagTable::default(),
            outbox: Outbox::default(),
            catch_ups,
            deletes: Deletes::default(),
            in_flight: BTreeMap::new(),
            prepared: None,
            written: None,
            home_epoch: None,
            events: Vec::new(),
            dirty: false,
            seals: 0,
            held: Vec::new(),
            releasing: false,
        };
        // The deletes a last session owed go after a fresh delay each (the ticks of
        // this entry relay are not the last one's).
        for d in state.deletes() {
            let due = s
                .tick
                .saturating_add(random::delay(&mut s.rng, s.behaviour.delete_delay));
            s.deletes.owe(due, d);
        }
        drop(state);
        let loops = s.me.secret.loop_tag_key();
        s.receivers.insert(
            LOOP,
            Receiver {
                key: loops,
                unwrap: Unwrap::Mine,
                window: WINDOW,
            },
        );
        s.prepare();
        s
    }

    /// Recognises items sent under `key` from now on (unwrapped as `unwrap` says); the
    /// same key gets the same id in every session of one state.
    pub fn expect(&mut self, key: TagKey, unwrap: Unwrap) -> SenderId {
        self.expect_window(key, unwrap, WINDOW)
    }

    /// Like [`Session::expect`], for a tag key many clients write under (an invite's:
    /// every acceptor of the code deposits its answer under it, with
    /// [`Outgoing::shared`]): a wider window of counters is kept ready, and items
    /// are told apart by their tags only, which differ unless two writers drew the same
    /// first counter.
    pub fn expect_shared(&mut self, key: TagKey, unwrap: Unwrap) -> SenderId {
        self.expect_window(key, unwrap, SHARED_WINDOW)
    }

    fn expect_window(&mut self, key: TagKey, unwrap: Unwrap, window: u64) -> SenderId {
        let sender = self.ledger.sender(key_id(&key));
        self.tags.forget(sender);
        self.tags.add_sender(&self.ledger, sender, &key, window);
        self.receivers.insert(
            sender,
            Receiver {
                key,
                unwrap,
                window,
            },
        );
        self.dirty = true;
        sender
    }

    /// Pins `relay` too: the home relay of a contact learnt after the session started
    /// (a deposit goes only to a relay whose fingerprint the user pinned).
    pub fn add_pin(&mut self, relay: RelayAddr) {
        if !self.pins.contains(&relay) {
            self.pins.push(relay);
        }
    }

    /// Stops recognising `sender`'s items, and forgets how far they were seen.
    pub fn forget(&mut self, sender: SenderId) {
        if sender == LOOP {
            return;
        }
        self.receivers.remove(&sender);
        self.tags.forget(sender);
        self.ledger.forget(sender);
        self.dirty = true;
    }

    /// Queues a deposit (first in, first out). Each attempt has a fresh tag seed and
    /// wrap; an answer `Full`, `Unknown` or `Retry` queues it again after a few random
    /// ticks.
    pub fn queue(&mut self, m: Outgoing) {
        self.outbox.push_back(Queued {
            payload: Payload::Caller(m, None),
            not_before: 0,
            refused: 0,
        });
    }

    /// Queues a deposit for `epoch` of its destination relay instead of the current one
    /// (to see the relay answer `Retry`); a retry goes for the current epoch.
    pub fn queue_for_epoch(&mut self, m: Outgoing, epoch: u32) {
        self.outbox.push_back(Queued {
            payload: Payload::Caller(m, Some(epoch)),
            not_before: 0,
            refused: 0,
        });
    }

    /// Drops deposit `id` from the outbox; `false` if it is not there (sealed into the
    /// next up cell, in flight, or unknown).
    pub fn cancel(&mut self, id: DepositId) -> bool {
        self.outbox.remove(id)
    }

    /// Catches up `epoch` of the home relay as soon as the catch-ups before it are done.
    pub fn catch_up(&mut self, epoch: u32) {
        self.catch_ups.owe(epoch, self.tick);
        self.dirty = true;
    }

    /// Splits a group's recipients by home relay (in the order the relays first appear),
    /// at most 64 per part: one [`Outgoing`] each.
    pub fn split_by_relay(cards: &[Card]) -> Vec<Vec<Card>> {
        let mut by_relay: Vec<Vec<Card>> = Vec::new();
        for c in cards {
            match by_relay
                .iter_mut()
                .find(|g| g.len() < MAX_COPIES && g[0].home.fingerprint == c.home.fingerprint)
            {
                Some(g) => g.push(c.clone()),
                None => by_relay.push(vec![c.clone()]),
            }
        }
        by_relay
    }

    /// Takes the down cell of the next tick: its answer, its item, its directory chunk.
    ///
    /// # Errors
    /// [`SessionError::Refused`] for the entry relay's refusal; [`SessionError::BadCell`]
    /// for bytes that are not a down cell. Either ends the session. An answer or item
    /// that does not open is just not ours.
    pub fn on_down(&mut self, cell: &[u8]) -> Result<(), SessionError> {
        if let Some(r) = Refusal::decode(cell) {
            return Err(SessionError::Refused(r));
        }
        let down = DownCell::decode(cell).map_err(SessionError::BadCell)?;
        if let Some(dir) = self
            .reassembler
            .push(&down.chunk)
            .map_err(SessionError::BadCell)?
        {
            for relay in dir.restarted_since(&self.directory, &self.pinned()) {
                self.events.push(SessionEvent::Restarted { relay });
            }
            self.directory = dir;
        }
        self.tick += 1;
        let t = self.tick;
        self.epochs(t);
        self.refresh_tags();
        if let Some(every) = self.behaviour.loop_every
            && every > 0.0
            && random::chance(&mut self.rng, 1.0 / every)
        {
            self.outbox.push_back(Queued {
                payload: Payload::Loop,
                not_before: 0,
                refused: 0,
            });
        }
        if let Some(f) = self.in_flight.remove(&t.wrapping_sub(2)) {
            if !t.is_multiple_of(2) {
                // The reply item of the slot of t - 2.
                let item = f.keys.open_item(&down.item);
                self.recognise(&item, Via::CatchUp);
            }
            self.answer(f, &down.answer);
        }
        if t.is_multiple_of(2) {
            self.recognise(&down.item, Via::Live);
        }
        self.release_held();
        // Anything older has lost its answer for good.
        let late: Vec<u64> = self
            .in_flight
            .keys()
            .copied()
            .filter(|&k| k + 2 < t)
            .collect();
        for k in late {
            if let Some(f) = self.in_flight.remove(&k) {
                self.lost(f);
            }
        }
        self.flush();
        Ok(())
    }

    /// The up cell for the down cell just read (the tick after the last one processed),
    /// to write before that down cell goes to [`Session::on_down`]: it was sealed
    /// beforehand by [`Session::prepare`], so handing it out costs the same whatever it
    /// holds, and nothing the down cell carries can delay it. Asked twice before the down
    /// cell is processed, it is the same cell.
    ///
    /// If the caller did not prepare it, the cell is a dummy sealed now: an attempt, a
    /// catch-up or a delete leaves only in a prepared cell, whose counters were asked to
    /// be saved ([`SessionEvent::StateChanged`]) before the cell could be written.
    pub fn take_up(&mut self) -> Box<[u8; CELL_LEN]> {
        let t = self.tick + 1;
        if let Some((at, cell)) = &self.written
            && *at == t
        {
            return cell.clone();
        }
        let prepared = match self.prepared.take() {
            Some(p) if p.tick == t => p,
            Some(p) => {
                self.abandon(p);
                self.seal(t, Carry::Nothing)
            }
            None => self.seal(t, Carry::Nothing),
        };
        let cell = self.commit(prepared);
        self.written = Some((t, cell.clone()));
        cell
    }

    /// Seals the up cell of the next tick now (call it once the down cell was processed),
    /// so that handing it out costs the same whatever it holds. Save the state when the
    /// events say [`SessionEvent::StateChanged`] before writing that cell.
    pub fn prepare(&mut self) {
        let t = self.tick + 1;
        match self.prepared.take() {
            Some(p) if p.tick == t => {
                self.prepared = Some(p);
                return;
            }
            Some(p) => self.abandon(p),
            None => {}
        }
        let p = self.seal(t, Carry::Due);
        self.prepared = Some(p);
        self.flush();
    }

    /// Where this client's counters of `key`, a key many write under, start in `epoch`:
    /// below half the receiver's window, the same in every session of this client
    /// (keyed by its delivery secret), other for another client.
    fn shared_start(&self, key: &TagKey, epoch: u32) -> u64 {
        let id = key_id(key);
        let Ok(d) = crate::crypto::kdf::blake2b_256(
            b"hum/2 shared counter start",
            &[self.me.secret.expose_secret(), &id, &epoch.to_be_bytes()],
        ) else {
            return 0;
        };
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        u64::from_be_bytes(first) % (SHARED_WINDOW / 2)
    }

    /// The directory the session goes by now.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The events since the last call.
    pub fn events(&mut self) -> std::vec::Drain<'_, SessionEvent> {
        self.events.drain(..)
    }

    /// What the session knows now.
    pub fn status(&self) -> Status {
        let home_epoch = self.epoch_at(&self.home, self.tick);
        Status {
            tick: self.tick,
            single: self.directory.single,
            home_epoch,
            bucket: home_epoch.and_then(|e| self.bucket(e)),
            clients: Some(self.directory.clients),
            outbox: self.outbox.len()
                + self
                    .in_flight
                    .values()
                    .chain(self.prepared.as_ref().and_then(|p| p.in_flight.as_ref()))
                    .filter(|f| f.deposit.as_ref().is_some_and(|q| q.id().is_some()))
                    .count(),
        }
    }

    /// A snapshot of what must survive a restart. A delete sealed into the prepared cell
    /// is still owed in it: should that cell never be written, a restart sends it again
    /// (a delete of a copy already gone finds nothing).
    pub fn state(&self) -> SessionState {
        let mut deletes = self.deletes.saved();
        if let Some(d) = self.prepared.as_ref().and_then(|p| p.delete.as_ref()) {
            deletes.push(state::DeleteState::of(d));
        }
        self.ledger.snapshot(self.catch_ups.jobs(), deletes)
    }

    /// Seals made so far (every up cell is one, real or dummy): [`Session::take_up`]
    /// makes none when the cell was prepared.
    pub fn seals(&self) -> u64 {
        self.seals
    }

    /// The session is over: its state, and the caller's deposits not yet stored, those in
    /// flight (or sealed for the next cell) first, in the order they left.
    pub fn into_parts(mut self) -> (SessionState, Vec<Outgoing>) {
        let mut out: Vec<Outgoing> = Vec::new();
        let in_flight = std::mem::take(&mut self.in_flight);
        for (_, f) in in_flight {
            out.extend(f.deposit.and_then(Queued::into_outgoing));
        }
        if let Some(p) = self.prepared.take() {
            if let Some(d) = p.delete {
                self.deletes.put_back(p.tick, Request::Delete(d));
            }
            out.extend(
                p.in_flight
                    .and_then(|f| f.deposit)
                    .and_then(Queued::into_outgoing),
            );
        }
        // The session is over: its counters are exact, so the next session from this
        // state goes on from them (a reconnect costs no window; a crash, found with an
        // older snapshot, still skips ahead).
        let mut state = self.state();
        state.mark_exact();
        let outbox = std::mem::take(&mut self.outbox);
        out.extend(outbox.into_outgoing());
        (state, out)
    }

    fn flush(&mut self) {
        if self.dirty {
            self.dirty = false;
            self.events.push(SessionEvent::StateChanged);
        }
    }

    fn entry_of(&self, id: &RelayId) -> Option<&RelayEntry> {
        self.directory.entry(id)
    }

    /// `relay`'s epoch at entry tick `t`.
    fn epoch_at(&self, relay: &RelayId, t: u64) -> Option<u32> {
        let e = self.entry_of(relay)?;
        Some(e.clock_after(t.saturating_sub(self.directory.tick)).0)
    }

    /// The client's bucket at its home relay in `epoch`.
    fn bucket(&self, epoch: u32) -> Option<u16> {
        let e = self.entry_of(&self.home)?;
        self.me.secret.bucket(epoch, e.buckets).ok()
    }

    /// Owes the catch-ups the home relay's clock calls for: at an epoch change the epoch
    /// that ended (every client, whatever it received); at the session's first known
    /// epoch after an absence, every epoch since the last one seen (within the TTL); and
    /// the current one for a client that never saw an epoch before: what was deposited
    /// for it before it first came online (the answer to an invite it gave out at once)
    /// waits there.
    fn epochs(&mut self, t: u64) {
        let Some(now) = self.epoch_at(&self.home, t) else {
            return;
        };
        match (self.home_epoch, self.ledger.last_epoch) {
            (None, None) => {
                self.owe(now, t);
                self.dirty = true;
            }
            (None, Some(last)) => {
                let per = self
                    .entry_of(&self.home)
                    .map_or(1, |e| u64::from(e.epoch_ticks.max(1)));
                let span = u32::try_from(self.ttl_ticks.div_ceil(per)).unwrap_or(u32::MAX);
                for e in last.max(now.saturating_sub(span))..=now {
                    self.owe(e, t);
                }
                self.dirty = true;
            }
            (Some(prev), _) if now > prev => {
                self.owe(prev, t);
                self.events.push(SessionEvent::EpochChanged {
                    relay: self.home,
                    epoch: now,
                });
                let oldest = self
                    .directory
                    .relays
                    .iter()
                    .map(|r| r.clock_after(t.saturating_sub(self.directory.tick)).0)
                    .min()
                    .unwrap_or(now);
                self.ledger.prune_counters(oldest.saturating_sub(1));
                self.dirty = true;
            }
            _ => {}
        }
        if self.ledger.last_epoch != Some(now) {
            self.dirty = true;
        }
        self.home_epoch = Some(now);
        self.ledger.last_epoch = Some(now);
    }

    /// Owes a catch-up of `epoch` after a random delay from tick `t`.
    fn owe(&mut self, epoch: u32, t: u64) {
        let wait = random::delay_shaped(
            &mut self.rng,
            self.behaviour.catch_up_delay,
            self.behaviour.catch_up_shape,
        );
        self.catch_ups.owe(epoch, t.saturating_add(wait));
    }

    /// Keeps the tag table on the epochs wanted: the home relay's current and previous
    /// one, and every epoch being caught up.
    fn refresh_tags(&mut self) {
        let Some(now) = self.home_epoch else {
            return;
        };
        let mut epochs: Vec<u32> = vec![now, now.saturating_sub(1)];
        epochs.extend(self.catch_ups.epochs());
        epochs.sort_unstable();
        epochs.dedup();
        self.ledger.keep_epochs(&epochs);
        let wanted: Vec<(u32, u16)> = epochs
            .into_iter()
            .filter_map(|e| self.bucket(e).map(|b| (e, b)))
            .collect();
        let senders = self.receivers.iter().map(|(s, r)| (*s, &r.key, r.window));
        self.tags.reconcile(&wanted, senders, &self.ledger);
    }

    /// Recognises an item by its tag; a match is unwrapped and reported once.
    /// Recognises a held live item: it is not held again.
    fn recognise_now(&mut self, item: &Item) {
        self.releasing = true;
        self.recognise(item, Via::Live);
        self.releasing = false;
    }

    fn recognise(&mut self, item: &Item, via: Via) {
        let tag = item.tag();
        let Some(entry) = self.tags.get(&tag) else {
            return;
        };
        let Some(receiver) = self.receivers.get(&entry.sender) else {
            return;
        };
        let Some(bucket) = self.tags.bucket(entry.epoch) else {
            return;
        };
        if self.ledger.seen(&tag) {
            self.events.push(SessionEvent::Duplicate);
            return;
        }
        // A counter of this sender before this one is not seen yet, and a catch-up of
        // the epoch is to come: it may bring what was sent first, so this one waits
        // for it. Not under a key many write to (an invite's): its counters start
        // anywhere, so a gap there says nothing.
        let (sender, epoch, n) = (entry.sender, entry.epoch, entry.n);
        if via == Via::Live
            && !self.releasing
            && sender != LOOP
            && receiver.window != SHARED_WINDOW
            && self.held.len() < HELD_MAX
            && self.ledger.window(sender, epoch) < n
            && self.catch_ups.epochs().any(|e| e == epoch)
        {
            if !self.held.iter().any(|h| h.item == *item) {
                // Past the longest wait a catch-up draws, and a few pages' ticks.
                let wait = (2.0 * self.behaviour.catch_up_delay).max(0.0) as u64;
                self.held.push(Held {
                    epoch,
                    item: item.clone(),
                    until: self
                        .tick
                        .saturating_add(wait)
                        .saturating_add(HOLD_EXTRA_TICKS),
                });
            }
            return;
        }
        let secret = receiver.key.secret(entry.epoch, entry.n);
        let seed = secret.seed();
        let Ok(wrapped) = item.unwrap(&seed, bucket) else {
            return;
        };
        let wrap: WrapKey = match &receiver.unwrap {
            Unwrap::Mine => self.me.secret.wrap_key(entry.epoch),
            Unwrap::Group(g) => g.wrap_key(entry.epoch),
        };
        let envelope = wrap.unwrap(&wrapped);
        let mine = matches!(receiver.unwrap, Unwrap::Mine);
        let key = receiver.key.clone();
        let window = receiver.window;
        self.ledger.see(tag, entry.epoch);
        let (moved, save) = self.ledger.saw(entry.sender, entry.epoch, entry.n);
        if let Some(old) = moved {
            // Slide the window past the counter just seen.
            let start = (old + window).max(entry.n + 1);
            self.tags.add(
                &self.ledger,
                entry.sender,
                &key,
                entry.epoch,
                start..entry.n + 1 + window,
            );
        }
        self.dirty |= save;
        if mine {
            let due = self
                .tick
                .saturating_add(random::delay(&mut self.rng, self.behaviour.delete_delay));
            self.deletes.owe(
                due,
                Delete {
                    bucket,
                    epoch: entry.epoch,
                    tag,
                    proof: secret,
                },
            );
            // A delete owed must survive a restart: the state is worth saving.
            self.dirty = true;
        }
        let seed = log_digest(seed.as_bytes());
        self.events.push(if entry.sender == LOOP {
            SessionEvent::LoopReturned {
                seed,
                epoch: entry.epoch,
                tick: self.tick,
                via,
            }
        } else {
            SessionEvent::Received {
                sender: entry.sender,
                envelope,
                epoch: entry.epoch,
                via,
                tick: self.tick,
                seed,
            }
        });
    }

    /// Reads the held live items whose epoch's catch-up is over, or whose time is up, in
    /// the order they came.
    fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let owed: Vec<u32> = self.catch_ups.epochs().collect();
        let t = self.tick;
        let (go, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| !owed.contains(&h.epoch) || h.until <= t);
        self.held = wait;
        for h in go {
            self.recognise_now(&h.item);
        }
    }

    /// The answer to a slot (and, on odd ticks, its reply item, already recognised).
    fn answer(&mut self, f: InFlight, sealed: &[u8; crate::route::ANSWER_LEN]) {
        let answer = f.keys.open_answer(sealed).ok();
        if let Some(ticket) = f.catch_up {
            let outcome = answer.map(|a| a.request);
            if let Some(epoch) = self.catch_ups.answered(ticket, outcome) {
                self.events.push(SessionEvent::CaughtUp { epoch });
                self.dirty = true;
            }
        }
        let Some(q) = f.deposit else {
            return;
        };
        let outcome = answer.map_or(DepositOutcome::Unknown, |a| a.deposit);
        let Some(id) = q.id() else {
            if let Some(seed) = f.loop_seed {
                let outcome = match outcome {
                    DepositOutcome::None => DepositOutcome::Unknown,
                    o => o,
                };
                self.events
                    .push(SessionEvent::LoopAnswered { seed, outcome });
            }
            return;
        };
        match outcome {
            DepositOutcome::Stored => self.events.push(SessionEvent::Stored { id }),
            DepositOutcome::Full => {
                self.events.push(SessionEvent::Full { id });
                self.requeue(q);
            }
            DepositOutcome::Retry { epoch } => {
                self.events.push(SessionEvent::Retry { id, epoch });
                let mut again = q;
                if let Payload::Caller(_, forced) = &mut again.payload {
                    *forced = None;
                }
                // Another epoch: counters start afresh there, so the wait does too.
                again.refused = 0;
                self.requeue(again);
            }
            _ => {
                self.events.push(SessionEvent::Unknown { id });
                self.requeue(q);
            }
        }
    }

    /// A slot whose answer can no longer come: its deposit is unknown and goes again.
    fn lost(&mut self, f: InFlight) {
        if let Some(ticket) = f.catch_up {
            self.catch_ups.unstart(ticket);
        }
        if let Some(q) = f.deposit {
            match q.id() {
                Some(id) => {
                    self.events.push(SessionEvent::Unknown { id });
                    self.requeue(q);
                }
                None => {
                    if let Some(seed) = f.loop_seed {
                        self.events.push(SessionEvent::LoopAnswered {
                            seed,
                            outcome: DepositOutcome::Unknown,
                        });
                    }
                }
            }
        }
    }

    /// Queues a deposit again after a jittered wait.
    fn requeue(&mut self, mut q: Queued) {
        let (least, spread) = REQUEUE_WAIT;
        // At most a thirtieth of the home relay's epoch, so short epochs still get several
        // attempts each.
        let cap = self
            .entry_of(&self.home)
            .map_or(MAX_REQUEUE_WAIT, |e| u64::from(e.epoch_ticks) / 30)
            .clamp(least + spread, MAX_REQUEUE_WAIT);
        let wait = (least + random::below(&mut self.rng, spread + 1))
            .saturating_mul(1 << q.refused.min(16))
            .min(cap);
        q.refused = q.refused.saturating_add(1);
        q.not_before = self.tick + wait;
        self.outbox.push_back(q);
    }

    /// A prepared cell that will never be written: what it carried goes back.
    fn abandon(&mut self, p: Prepared) {
        if let Some(d) = p.delete {
            self.deletes.put_back(p.tick, Request::Delete(d));
        }
        if let Some(f) = p.in_flight {
            if let Some(ticket) = f.catch_up {
                self.catch_ups.unstart(ticket);
            }
            if let Some(q) = f.deposit {
                self.outbox.push_front(q);
            }
        }
    }

    /// Hands a prepared cell out: its slot is in flight from now on.
    fn commit(&mut self, p: Prepared) -> Box<[u8; CELL_LEN]> {
        if let Some(mut f) = p.in_flight {
            if let Some(n) = p.note.as_ref().filter(|n| n.id.is_none()) {
                f.loop_seed = Some(n.seed.clone());
            }
            self.in_flight.insert(p.tick, f);
        }
        if let Some(n) = p.note {
            self.events.push(match n.id {
                Some(id) => SessionEvent::Deposited {
                    id,
                    tick: p.tick,
                    seed: n.seed,
                    payload: n.payload,
                    slot: p.slot,
                },
                None => SessionEvent::Looped {
                    tick: p.tick,
                    seed: n.seed,
                    payload: n.payload,
                    slot: p.slot,
                },
            });
        }
        p.cell
    }

    /// Seals the up cell for the down cell of tick `t`, carrying what is due or nothing.
    fn seal(&mut self, t: u64, carry: Carry) -> Prepared {
        self.seals += 1;
        let known = self
            .epoch_at(&self.home, t)
            .and_then(|e| Some((e, self.bucket(e)?)));
        let single = self.directory.single;
        let home_key = match known {
            Some((e, _)) if !single => self
                .entry_of(&self.home)
                .and_then(|entry| entry.verified_slot_key(e, &self.me.home.fingerprint).ok()),
            _ => None,
        };
        let (Some((home_epoch, bucket)), true) = (known, single || home_key.is_some()) else {
            // The directory does not list the home relay (or its key) yet: keep the beat
            // with a slot of random bytes until it does.
            return self.random_cell(t, known);
        };
        let job = match carry {
            Carry::Due => self.catch_ups.start(t),
            Carry::Nothing => None,
        };
        let (request, catch_up) = match job {
            Some(ticket) => (
                Request::CatchUp(CatchUp {
                    bucket: self.bucket(ticket.epoch).unwrap_or(bucket),
                    epoch: ticket.epoch,
                    detect: self.me.secret.detection_key(ticket.epoch),
                    after: ticket.after,
                    rank: ticket.rank,
                }),
                Some(ticket),
            ),
            None if carry == Carry::Due => (self.deletes.take(t).unwrap_or_default(), None),
            None => (Request::None, None),
        };
        let (deposit, queued) = match carry {
            Carry::Due => self.next_deposit(t),
            Carry::Nothing => (None, None),
        };
        let slot_deposit = match &deposit {
            None => SlotDeposit::Dummy,
            Some((d, Some(k))) => SlotDeposit::Forward {
                dest: k,
                deposit: d,
            },
            Some((d, None)) => SlotDeposit::Local(d),
        };
        let sealed = match &home_key {
            Some(k) => seal_slot(k, self.entry, t, slot_deposit, &request),
            None => seal_clear_slot(self.home, slot_deposit, &request),
        };
        let (slot, keys) = match sealed {
            Ok(s) => s,
            Err(_) => {
                if let Some(q) = queued {
                    self.outbox.push_front(q);
                }
                match catch_up {
                    Some(ticket) => self.catch_ups.unstart(ticket),
                    None => self.deletes.put_back(t, request),
                }
                return self.random_cell(t, known);
            }
        };
        let note = deposit.as_ref().map(|(d, _)| Note {
            id: queued.as_ref().and_then(Queued::id),
            seed: log_digest(d.seed().as_bytes()),
            payload: log_digest(d.payload().as_bytes()),
        });
        let slot_digest = log_digest(slot.as_bytes());
        let delete = match request {
            Request::Delete(d) => Some(d),
            _ => None,
        };
        Prepared {
            tick: t,
            delete,
            cell: UpCell {
                home: self.home,
                epoch: home_epoch,
                bucket,
                slot,
            }
            .encode(),
            in_flight: Some(InFlight {
                keys,
                deposit: queued,
                catch_up,
                loop_seed: None,
            }),
            note,
            slot: slot_digest,
        }
    }

    /// An up cell whose slot is random bytes (nothing to seal to yet).
    fn random_cell(&mut self, t: u64, known: Option<(u32, u16)>) -> Prepared {
        let (epoch, bucket) = known.unwrap_or((0, 0));
        let slot = Slot::random();
        let digest = log_digest(slot.as_bytes());
        Prepared {
            tick: t,
            cell: UpCell {
                home: self.home,
                epoch,
                bucket,
                slot,
            }
            .encode(),
            delete: None,
            in_flight: None,
            note: None,
            slot: digest,
        }
    }

    /// The deposit for the slot of tick `t`, if one is ready: the deposit, the
    /// destination's verified key when it is forwarded, and the outbox entry.
    #[allow(clippy::type_complexity)]
    fn next_deposit(
        &mut self,
        t: u64,
    ) -> (
        Option<(Deposit, Option<crate::route::VerifiedSlotKey>)>,
        Option<Queued>,
    ) {
        // Entries that can never go are dropped; one that must wait goes back.
        let mut waiting = Vec::new();
        let found = loop {
            let Some(q) = self.outbox.take_ready(t) else {
                break None;
            };
            match self.build(&q, t) {
                Ok(d) => break Some((d, q)),
                Err(NotNow::Never(why)) => {
                    if let Some(id) = q.id() {
                        self.events.push(SessionEvent::Unsendable { id, why });
                    }
                }
                Err(NotNow::Later) => {
                    let mut q = q;
                    q.not_before = t + 1;
                    waiting.push(q);
                }
            }
        };
        for q in waiting.into_iter().rev() {
            self.outbox.push_front(q);
        }
        match found {
            Some((d, q)) => (Some(d), Some(q)),
            None => (None, None),
        }
    }

    /// The deposit of one attempt, for the slot of tick `t`: a fresh counter (so a fresh
    /// tag seed), each recipient's bucket and flag in the destination's epoch, group copies
    /// padded to their class, the envelope wrapped anew.
    fn build(
        &mut self,
        q: &Queued,
        t: u64,
    ) -> Result<(Deposit, Option<crate::route::VerifiedSlotKey>), NotNow> {
        let me = [self.me.clone()];
        let loop_key;
        let loop_envelope;
        let (to, key, group, envelope, forced): (&[Card], &TagKey, _, &Envelope, _) = match &q
            .payload
        {
            Payload::Caller(m, forced) => (&m.to, &m.key, m.group.as_ref(), &m.envelope, *forced),
            Payload::Loop => {
                loop_key = self.me.secret.loop_tag_key();
                let mut bytes = [0u8; crate::ENVELOPE_LEN];
                self.rng.fill_bytes(&mut bytes);
                loop_envelope = Envelope::from_bytes(&bytes)
                    .map_err(|_| NotNow::Never(RouteError::Internal))?;
                (&me[..], &loop_key, None, &loop_envelope, None)
            }
        };
        let first = to.first().ok_or(NotNow::Never(RouteError::CopyCount(0)))?;
        let dest = first.relay();
        if to.iter().any(|c| c.relay() != dest) {
            return Err(NotNow::Never(RouteError::Malformed(
                "recipients of one deposit homed at several relays",
            )));
        }
        let entry = self
            .entry_of(&dest)
            .ok_or(NotNow::Never(RouteError::UnknownSlotKey))?;
        let buckets = entry.buckets;
        let epoch = match forced {
            Some(e) => e,
            None => self
                .epoch_at(&dest, t)
                .ok_or(NotNow::Never(RouteError::UnknownSlotKey))?,
        };
        let forward = !self.directory.single && dest != self.home;
        let dest_key = if forward {
            let pin = self
                .pin(&dest)
                .ok_or(NotNow::Never(RouteError::CertificateMismatch))?;
            match entry.verified_slot_key(epoch, &pin) {
                Ok(k) => Some(k),
                Err(RouteError::UnknownSlotKey) if forced.is_none() => return Err(NotNow::Later),
                Err(e) => return Err(NotNow::Never(e)),
            }
        } else {
            None
        };
        let copies_wanted = if group.is_some() {
            copy_class(to.len()).ok_or(NotNow::Never(RouteError::CopyCount(to.len())))?
        } else if to.len() == 1 {
            1
        } else {
            return Err(NotNow::Never(RouteError::CopyCount(to.len())));
        };
        // A key others write under too starts at a counter of the receiver's wider window
        // that differs from writer to writer, so it does not take the tag of another's
        // deposit. Not a fresh draw: a session restarted from a state that missed the
        // first attempts must start where they did, so the state's skip covers them.
        let offset = match &q.payload {
            Payload::Caller(m, _) if m.shared => self.shared_start(key, epoch),
            _ => 0,
        };
        let (n, save) = self.ledger.next_counter(key_id(key), epoch, offset);
        self.dirty |= save;
        let seed = key.secret(epoch, n).seed();
        let mut copies = Vec::with_capacity(copies_wanted);
        for c in to {
            let bucket = c.secret.bucket(epoch, buckets).map_err(NotNow::Never)?;
            let flag = c.secret.detection_key(epoch).flag(&seed.copy_tag(bucket));
            copies.push(Copy { bucket, flag });
        }
        while copies.len() < copies_wanted {
            let bucket = random::below(&mut self.rng, u64::from(buckets)) as u16;
            let flag = (self.rng.next_u32() & 0xff) as u8;
            copies.push(Copy { bucket, flag });
        }
        random::shuffle(&mut self.rng, &mut copies);
        let wrap = match group {
            Some(g) => g.wrap_key(epoch),
            None => first.secret.wrap_key(epoch),
        };
        let deposit =
            Deposit::new(epoch, &copies, seed, wrap.wrap(envelope)).map_err(NotNow::Never)?;
        Ok((deposit, dest_key))
    }

    /// The fingerprint the user pinned for relay `id`.
    /// Every relay pinned, the home relay among them.
    fn pin_addrs(&self) -> impl Iterator<Item = &RelayAddr> {
        self.pins.iter().chain(std::iter::once(&self.me.home))
    }

    /// The fingerprints of every relay pinned (the home relay among them).
    pub fn pinned(&self) -> Vec<crate::CertFingerprint> {
        self.pin_addrs().map(|a| a.fingerprint).collect()
    }

    fn pin(&self, id: &RelayId) -> Option<crate::CertFingerprint> {
        self.pin_addrs()
            .find(|a| RelayId::of_fingerprint(&a.fingerprint) == *id)
            .map(|a| a.fingerprint)
    }
}

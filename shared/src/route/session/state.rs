//! What a session keeps across restarts ([`SessionState`]), and its working form in a
//! running session (the ledger): send counters, senders and their receive windows, the
//! tags seen, the catch-ups owed, the home relay's last epoch.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::SenderId;
use super::catch_up::Job;
use crate::route::{CopyTag, Delete, TagKey, TagSecret};

/// A state's counters are skipped this far ahead when a session starts from it, so an
/// attempt made after the state was saved is never made again (it is saved at least every
/// [`SAVE_EVERY`] attempts; both are below the receivers' window of 64).
pub(super) const SKIP: u64 = 32;
/// A counter or window that crosses a multiple of this asks to be saved.
pub(super) const SAVE_EVERY: u64 = 16;

/// Names a tag key in the state without holding the key: the first 16 bytes of
/// `B2b256("hum/2 session key id"; TK)`.
pub(super) type KeyId = [u8; 16];

/// The state's name for `key`.
pub(super) fn key_id(key: &TagKey) -> KeyId {
    let mut id = [0u8; 16];
    match crate::crypto::kdf::blake2b_256(b"hum/2 session key id", &[key.expose_secret()]) {
        Ok(d) => id.copy_from_slice(&d[..16]),
        // BLAKE2b with a fixed, valid key length does not fail.
        Err(_) => id.copy_from_slice(&key.expose_secret()[..16]),
    }
    id
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct CounterState {
    key: KeyId,
    epoch: u32,
    next: u64,
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct SenderState {
    key: KeyId,
    sender: u32,
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct WindowState {
    sender: u32,
    epoch: u32,
    next: u64,
}

/// A delete owed (its tag secret is the proof the relay checks).
#[derive(Clone, Serialize, Deserialize, Zeroize)]
pub(super) struct DeleteState {
    bucket: u16,
    epoch: u32,
    tag: [u8; 16],
    proof: [u8; 32],
}

impl DeleteState {
    pub(super) fn of(d: &Delete) -> DeleteState {
        DeleteState {
            bucket: d.bucket,
            epoch: d.epoch,
            tag: *d.tag.as_bytes(),
            proof: *d.proof.expose_secret(),
        }
    }

    pub(super) fn delete(&self) -> Delete {
        Delete {
            bucket: self.bucket,
            epoch: self.epoch,
            tag: CopyTag::from_bytes(self.tag),
            proof: TagSecret::from_bytes(self.proof),
        }
    }
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct SeenState {
    epoch: u32,
    tag: [u8; 16],
}

/// What survives a restart of a session: serialize it (postcard) when the session says
/// [`super::SessionEvent::StateChanged`], and start the next session from it.
///
/// It holds the send counter of every (tag key, epoch) used, the senders expected and how
/// far each one's counters have been seen per epoch, the tags already seen (of the epochs
/// still wanted only), the catch-ups owed and the home relay's last epoch. Tag keys are
/// named by a digest, never held. Zeroized on drop.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SessionState {
    counters: Vec<CounterState>,
    senders: Vec<SenderState>,
    next_sender: u32,
    windows: Vec<WindowState>,
    seen: Vec<SeenState>,
    catch_ups: Vec<Job>,
    last_epoch: Option<u32>,
    /// A snapshot of a running session (what a crash leaves): its counters may be behind
    /// the attempts made, so they are skipped on restore. A state a session handed back
    /// when it ended ([`super::Session::into_parts`]) is exact, and restores as it is.
    used: bool,
    /// The deletes owed (their copies' tags and proofs), so a reconnect still sends them.
    deletes: Vec<DeleteState>,
}

/// The state as sessions wrote it before it carried the deletes owed (read, never
/// written).
#[derive(Deserialize)]
struct StateWithoutDeletes {
    counters: Vec<CounterState>,
    senders: Vec<SenderState>,
    next_sender: u32,
    windows: Vec<WindowState>,
    seen: Vec<SeenState>,
    catch_ups: Vec<Job>,
    last_epoch: Option<u32>,
    used: bool,
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState")
            .field("counters", &self.counters.len())
            .field("senders", &self.senders.len())
            .field("seen", &self.seen.len())
            .field("catch_ups", &self.catch_ups.len())
            .field("last_epoch", &self.last_epoch)
            .field("deletes", &self.deletes.len())
            .finish_non_exhaustive()
    }
}

impl SessionState {
    /// The state of a user that never ran a session.
    pub fn new() -> SessionState {
        SessionState::default()
    }

    /// Says the counters are exact (the session that held them ended), so a restore
    /// skips nothing.
    pub(super) fn mark_exact(&mut self) {
        self.used = false;
    }

    /// The home relay's epoch at the last down cell of any session.
    pub fn last_epoch(&self) -> Option<u32> {
        self.last_epoch
    }

    /// Says the user was last online in its home relay's `epoch`, so its next session
    /// catches up every epoch from there.
    pub fn set_last_epoch(&mut self, epoch: u32) {
        self.last_epoch = Some(epoch);
    }

    /// The epochs whose catch-up is owed or under way.
    pub fn catch_ups_owed(&self) -> Vec<u32> {
        self.catch_ups.iter().map(|j| j.epoch).collect()
    }

    /// How many deletes of received items are owed.
    pub fn deletes_owed(&self) -> usize {
        self.deletes.len()
    }

    /// The state as bytes (postcard).
    ///
    /// # Errors
    /// [`crate::route::RouteError::Internal`] if postcard fails (it does not for this type).
    pub fn to_bytes(&self) -> Result<Vec<u8>, crate::route::RouteError> {
        postcard::to_stdvec(self).map_err(|_| crate::route::RouteError::Internal)
    }

    /// A state from [`SessionState::to_bytes`] (also one saved before states carried the
    /// deletes owed: it restores with none).
    ///
    /// # Errors
    /// [`crate::route::RouteError::Malformed`] for bytes that are not a state.
    pub fn from_bytes(bytes: &[u8]) -> Result<SessionState, crate::route::RouteError> {
        if let Ok(state) = postcard::from_bytes::<SessionState>(bytes) {
            return Ok(state);
        }
        let old: StateWithoutDeletes = postcard::from_bytes(bytes)
            .map_err(|_| crate::route::RouteError::Malformed("session state"))?;
        Ok(SessionState {
            counters: old.counters,
            senders: old.senders,
            next_sender: old.next_sender,
            windows: old.windows,
            seen: old.seen,
            catch_ups: old.catch_ups,
            last_epoch: old.last_epoch,
            used: old.used,
            deletes: Vec::new(),
        })
    }

    pub(super) fn jobs(&self) -> &[Job] {
        &self.catch_ups
    }

    /// The deletes owed when the state was taken.
    pub(super) fn deletes(&self) -> impl Iterator<Item = Delete> + '_ {
        self.deletes.iter().map(DeleteState::delete)
    }
}

/// The state's working form in a running session.
#[derive(Default)]
pub(super) struct Ledger {
    counters: HashMap<(KeyId, u32), u64>,
    senders: HashMap<KeyId, SenderId>,
    next_sender: u32,
    windows: HashMap<(SenderId, u32), u64>,
    seen: HashMap<CopyTag, u32>,
    pub(super) last_epoch: Option<u32>,
    /// Where a counter absent from the state starts.
    base: u64,
}

impl Ledger {
    /// The working form of `state`, its counters skipped ahead if a session used it.
    pub(super) fn restore(state: &SessionState) -> Ledger {
        let skip = if state.used { SKIP } else { 0 };
        Ledger {
            counters: state
                .counters
                .iter()
                .map(|c| ((c.key, c.epoch), c.next.saturating_add(skip)))
                .collect(),
            senders: state
                .senders
                .iter()
                .map(|s| (s.key, SenderId(s.sender)))
                .collect(),
            next_sender: state.next_sender,
            windows: state
                .windows
                .iter()
                .map(|w| ((SenderId(w.sender), w.epoch), w.next))
                .collect(),
            seen: state
                .seen
                .iter()
                .map(|s| (CopyTag::from_bytes(s.tag), s.epoch))
                .collect(),
            last_epoch: state.last_epoch,
            base: skip,
        }
    }

    /// The snapshot, with the catch-ups `jobs` and the deletes owed.
    pub(super) fn snapshot(&self, jobs: Vec<Job>, deletes: Vec<DeleteState>) -> SessionState {
        let mut counters: Vec<CounterState> = self
            .counters
            .iter()
            .map(|(&(key, epoch), &next)| CounterState { key, epoch, next })
            .collect();
        counters.sort_by_key(|c| (c.key, c.epoch));
        let mut senders: Vec<SenderState> = self
            .senders
            .iter()
            .map(|(&key, s)| SenderState { key, sender: s.0 })
            .collect();
        senders.sort_by_key(|s| s.sender);
        let mut windows: Vec<WindowState> = self
            .windows
            .iter()
            .map(|(&(s, epoch), &next)| WindowState {
                sender: s.0,
                epoch,
                next,
            })
            .collect();
        windows.sort_by_key(|w| (w.sender, w.epoch));
        let mut seen: Vec<SeenState> = self
            .seen
            .iter()
            .map(|(t, &epoch)| SeenState {
                epoch,
                tag: *t.as_bytes(),
            })
            .collect();
        seen.sort_by_key(|s| (s.epoch, s.tag));
        SessionState {
            counters,
            senders,
            next_sender: self.next_sender,
            windows,
            seen,
            catch_ups: jobs,
            last_epoch: self.last_epoch,
            used: true,
            deletes,
        }
    }

    /// The next attempt counter of `key` in `epoch`, and whether the state should be
    /// saved now (a new counter, or one that crossed a multiple of [`SAVE_EVERY`]).
    ///
    /// A counter not used before starts `offset` past where absent counters start (a key
    /// others write under too draws it at random).
    pub(super) fn next_counter(&mut self, key: KeyId, epoch: u32, offset: u64) -> (u64, bool) {
        let base = self.base.saturating_add(offset);
        let mut fresh = false;
        let next = self.counters.entry((key, epoch)).or_insert_with(|| {
            fresh = true;
            base
        });
        let n = *next;
        *next = n.saturating_add(1);
        (n, fresh || next.is_multiple_of(SAVE_EVERY))
    }

    /// Counters of epochs before `oldest`, which no relay will take any more, go.
    pub(super) fn prune_counters(&mut self, oldest: u32) {
        self.counters.retain(|&(_, epoch), _| epoch >= oldest);
    }

    /// The sender id of `key`: the one the state knows, or a new one.
    pub(super) fn sender(&mut self, key: KeyId) -> SenderId {
        if let Some(&s) = self.senders.get(&key) {
            return s;
        }
        let s = SenderId(self.next_sender);
        self.next_sender = self.next_sender.saturating_add(1);
        self.senders.insert(key, s);
        s
    }

    /// Forgets `sender` and how far its counters were seen.
    pub(super) fn forget(&mut self, sender: SenderId) {
        self.senders.retain(|_, s| *s != sender);
        self.windows.retain(|&(s, _), _| s != sender);
    }

    /// The first counter of `sender` in `epoch` not seen yet.
    pub(super) fn window(&self, sender: SenderId, epoch: u32) -> u64 {
        self.windows.get(&(sender, epoch)).copied().unwrap_or(0)
    }

    /// Counter `n` of `sender` in `epoch` was seen: returns the window's old start if it
    /// moved, and whether the state should be saved now.
    pub(super) fn saw(&mut self, sender: SenderId, epoch: u32, n: u64) -> (Option<u64>, bool) {
        let old = self.window(sender, epoch);
        let new = n.saturating_add(1);
        if new <= old {
            return (None, false);
        }
        self.windows.insert((sender, epoch), new);
        let save = old == 0 || old / SAVE_EVERY != new / SAVE_EVERY;
        (Some(old), save)
    }

    /// Whether `tag` was seen.
    pub(super) fn seen(&self, tag: &CopyTag) -> bool {
        self.seen.contains_key(tag)
    }

    /// Notes `tag` of `epoch` as seen; `false` if it already was.
    pub(super) fn see(&mut self, tag: CopyTag, epoch: u32) -> bool {
        self.seen.insert(tag, epoch).is_none()
    }

    /// Only the seen tags and windows of `wanted` epochs stay.
    pub(super) fn keep_epochs(&mut self, wanted: &[u32]) {
        self.seen.retain(|_, e| wanted.contains(e));
        self.windows.retain(|&(_, e), _| wanted.contains(&e));
    }
}

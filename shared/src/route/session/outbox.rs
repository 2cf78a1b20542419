//! The outbox: deposits waiting for a slot, first in, first out, each from the tick it
//! may leave (a re-queued deposit waits a few random ticks).

use std::collections::VecDeque;

use super::{DepositId, Outgoing};

/// What a queued entry is.
#[derive(Clone)]
pub(super) enum Payload {
    /// The caller's deposit, with the epoch it is forced to (tests of `Retry`).
    Caller(Outgoing, Option<u32>),
    /// A loop into the client's own bucket.
    Loop,
}

/// One entry of the outbox.
#[derive(Clone)]
pub(super) struct Queued {
    pub(super) payload: Payload,
    /// The first tick whose slot may carry it.
    pub(super) not_before: u64,
    /// Attempts refused or unanswered in a row (each waits twice as long as the last).
    pub(super) refused: u32,
}

impl Queued {
    /// The caller's id, if it is the caller's.
    pub(super) fn id(&self) -> Option<DepositId> {
        match &self.payload {
            Payload::Caller(m, _) => Some(m.id),
            Payload::Loop => None,
        }
    }

    /// The caller's deposit, if it is one.
    pub(super) fn into_outgoing(self) -> Option<Outgoing> {
        match self.payload {
            Payload::Caller(m, _) => Some(m),
            Payload::Loop => None,
        }
    }
}

/// The queue.
#[derive(Default)]
pub(super) struct Outbox {
    queue: VecDeque<Queued>,
}

impl Outbox {
    pub(super) fn push_back(&mut self, q: Queued) {
        self.queue.push_back(q);
    }

    pub(super) fn push_front(&mut self, q: Queued) {
        self.queue.push_front(q);
    }

    /// The first entry that may leave in the slot of tick `t`.
    pub(super) fn take_ready(&mut self, t: u64) -> Option<Queued> {
        let at = self.queue.iter().position(|q| q.not_before <= t)?;
        self.queue.remove(at)
    }

    /// Drops the caller's deposit `id`; `true` if it was here.
    pub(super) fn remove(&mut self, id: DepositId) -> bool {
        let before = self.queue.len();
        self.queue.retain(|q| q.id() != Some(id));
        self.queue.len() != before
    }

    /// The caller's deposits waiting.
    pub(super) fn len(&self) -> usize {
        self.queue.iter().filter(|q| q.id().is_some()).count()
    }

    /// The caller's deposits, in order.
    pub(super) fn into_outgoing(self) -> impl Iterator<Item = Outgoing> {
        self.queue.into_iter().filter_map(Queued::into_outgoing)
    }
}

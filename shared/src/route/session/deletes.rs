//! Deletes owed: after a 1:1 item (or a loop) arrived, the request that deletes its copy
//! at the relay, each after its own random delay, in a slot of an even tick.

use super::state::DeleteState;
use crate::route::{Delete, Request};

/// One delete waiting for its tick.
struct Owed {
    due: u64,
    delete: Delete,
}

/// The deletes owed, in no particular order.
#[derive(Default)]
pub(super) struct Deletes {
    owed: Vec<Owed>,
}

impl Deletes {
    /// Owes `delete` from tick `due` on.
    pub(super) fn owe(&mut self, due: u64, delete: Delete) {
        self.owed.push(Owed { due, delete });
    }

    /// The request for the slot of tick `t`: the delete due first, on even ticks only.
    pub(super) fn take(&mut self, t: u64) -> Option<Request> {
        if !t.is_multiple_of(2) {
            return None;
        }
        let at = self
            .owed
            .iter()
            .enumerate()
            .filter(|(_, o)| o.due <= t)
            .min_by_key(|(_, o)| o.due)
            .map(|(i, _)| i)?;
        Some(Request::Delete(self.owed.swap_remove(at).delete))
    }

    /// The deletes owed, as a state keeps them.
    pub(super) fn saved(&self) -> Vec<DeleteState> {
        self.owed
            .iter()
            .map(|o| DeleteState::of(&o.delete))
            .collect()
    }

    /// Puts a delete back (its slot could not be sealed).
    pub(super) fn put_back(&mut self, t: u64, request: Request) {
        if let Request::Delete(delete) = request {
            self.owed.push(Owed { due: t, delete });
        }
    }
}

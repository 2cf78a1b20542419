//! The tag table: every copy tag the client may receive, by (epoch, bucket) wanted, with
//! the sender and counter it stands for. Recognising an item is one hash lookup.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use super::SenderId;
use super::state::Ledger;
use crate::route::{CopyTag, TagKey};

/// Counters kept ready per sender and epoch past the first one not seen (and, below it,
/// every counter not seen yet: an attempt may come after a later one, as when a client
/// back from an absence gets the end of a text live before its catch-up brings the start).
pub(super) const WINDOW: u64 = 64;
/// The same for a tag key many clients write under (an invite's, which every acceptor
/// of the code tags its answer with): each writer's first counter of an epoch is its own
/// below half of this (512), so two acceptors' answers share a tag only when their
/// attempts overlap (about (k + l) / 512 for k and l attempts), and neither is taken for
/// a copy of the other.
pub(super) const SHARED_WINDOW: u64 = 1024;

/// What a tag stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) sender: SenderId,
    pub(super) epoch: u32,
    pub(super) n: u64,
}

/// The table.
#[derive(Default)]
pub(super) struct TagTable {
    tags: HashMap<CopyTag, Entry>,
    /// The epochs held, with the client's bucket in each.
    epochs: BTreeMap<u32, u16>,
}

impl TagTable {
    /// What `tag` stands for, if it is one of ours.
    pub(super) fn get(&self, tag: &CopyTag) -> Option<Entry> {
        self.tags.get(tag).copied()
    }

    /// The client's bucket in `epoch`, if the table holds that epoch.
    pub(super) fn bucket(&self, epoch: u32) -> Option<u16> {
        self.epochs.get(&epoch).copied()
    }

    /// Holds exactly the `wanted` (epoch, bucket) pairs: drops the others, builds the new
    /// ones for every sender in `senders`.
    pub(super) fn reconcile<'a>(
        &mut self,
        wanted: &[(u32, u16)],
        senders: impl Iterator<Item = (SenderId, &'a TagKey, u64)> + Clone,
        ledger: &Ledger,
    ) {
        let stale: Vec<u32> = self
            .epochs
            .iter()
            .filter(|(e, b)| !wanted.contains(&(**e, **b)))
            .map(|(e, _)| *e)
            .collect();
        if !stale.is_empty() {
            self.epochs.retain(|e, _| !stale.contains(e));
            self.tags.retain(|_, v| !stale.contains(&v.epoch));
        }
        for &(epoch, bucket) in wanted {
            if self.epochs.contains_key(&epoch) {
                continue;
            }
            self.epochs.insert(epoch, bucket);
            for (sender, key, window) in senders.clone() {
                let next = ledger.window(sender, epoch);
                self.add(ledger, sender, key, epoch, 0..next + window);
            }
        }
    }

    /// A new sender: its tags in every epoch held, `window` counters past the last seen.
    pub(super) fn add_sender(
        &mut self,
        ledger: &Ledger,
        sender: SenderId,
        key: &TagKey,
        window: u64,
    ) {
        let epochs: Vec<u32> = self.epochs.keys().copied().collect();
        for epoch in epochs {
            let next = ledger.window(sender, epoch);
            self.add(ledger, sender, key, epoch, 0..next + window);
        }
    }

    /// A sender no longer expected.
    pub(super) fn forget(&mut self, sender: SenderId) {
        self.tags.retain(|_, v| v.sender != sender);
    }

    /// Adds `sender`'s tags of `counters` in `epoch`, but those already seen.
    pub(super) fn add(
        &mut self,
        ledger: &Ledger,
        sender: SenderId,
        key: &TagKey,
        epoch: u32,
        counters: Range<u64>,
    ) {
        let Some(&bucket) = self.epochs.get(&epoch) else {
            return;
        };
        for n in counters {
            let tag = key.secret(epoch, n).seed().copy_tag(bucket);
            if !ledger.seen(&tag) {
                self.tags.insert(tag, Entry { sender, epoch, n });
            }
        }
    }
}

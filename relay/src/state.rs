//! The state every task of one relay shares: settings, identity, the roles, the links,
//! the counters.

use std::sync::atomic::{AtomicU64, Ordering};

use hum_shared::route::RelayId;

use crate::Config;
use crate::curious::Curious;
use crate::entry::Entry;
use crate::link::Links;
use crate::mailbox::Mailbox;
use crate::stats::Stats;
use crate::v1::mailbox::Store;

/// What every task of one relay shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// hum/1: the mailboxes.
    pub(crate) store: Store,
    pub(crate) stats: Stats,
    /// hum/1: a cover cell of the configured size, built once.
    pub(crate) cover: Vec<u8>,
    /// hum/2: this relay's id.
    pub(crate) id: RelayId,
    /// hum/2: tick numbers are `tick_base + beat`, `tick_base` from the wall clock at
    /// start, so they keep increasing across restarts.
    pub(crate) tick_base: u64,
    /// The beat now (ticks since start), as the beat task last published it.
    pub(crate) beat: AtomicU64,
    /// hum/2: the entry role, if this relay has it.
    pub(crate) entry: Option<Entry>,
    /// hum/2: the mailbox role, if this relay has it.
    pub(crate) mailbox: Option<Mailbox>,
    /// hum/2: the peer relays and their links.
    pub(crate) links: Links,
    /// The `curious` build's log (nothing otherwise).
    pub(crate) curious: Curious,
}

impl Shared {
    /// The hum/2 tick now.
    pub(crate) fn now_tick(&self) -> u64 {
        self.tick_base + self.beat.load(Ordering::Relaxed)
    }
}

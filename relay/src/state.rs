//! The state every task of one relay shares: settings, the mailboxes, the counters.

use crate::Config;
use crate::stats::Stats;
use crate::v1::mailbox::Store;

/// What every task of one relay shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) stats: Stats,
    /// A cover cell of the configured size, built once.
    pub(crate) cover: Vec<u8>,
}

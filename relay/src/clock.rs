//! The clock that envelope expiry and sequence numbers follow. It is the system clock
//! plus an offset that tests move forward, so expiry can be tested without waiting days.
//! (The beat itself runs on tokio's timer: see `beat.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A clock: the system's, possibly moved forward by [`Clock::advance`].
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicU64>,
}

impl Clock {
    /// The system clock, not moved.
    pub fn system() -> Self {
        Self::default()
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn offset(&self) -> Duration {
        Duration::from_micros(self.offset_micros.load(Ordering::Relaxed))
    }

    /// The current instant, for deadlines.
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + self.offset()
    }

    /// Microseconds since the Unix epoch, for sequence numbers that stay increasing
    /// across restarts of the relay.
    pub(crate) fn unix_micros(&self) -> u64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            + self.offset();
        u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
    }
}

//! The beat: the one place that owns time. It publishes the current tick number; every
//! connection task sends one cell per tick number it sees go by (docs/RELAY.md).
//!
//! Tick `n` is due at `start + n × tick`. If the beat task itself runs late (an
//! overloaded machine), `MissedTickBehavior::Skip` keeps it on that grid instead of
//! bursting or drifting, and the tick number it publishes is computed from the elapsed
//! time, so connections notice the skipped ticks and send the cells they owe.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::shutdown::Shutdown;
use crate::state::Shared;
use crate::stats::Stats;

/// Runs the beat until shutdown.
pub(crate) async fn run(shared: Arc<Shared>, ticks: watch::Sender<u64>, mut shutdown: Shutdown) {
    let tick = shared.config.tick;
    let start = Instant::now();
    let mut interval = tokio::time::interval_at(start + tick, tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // Sweep expired envelopes about once a second.
    let sweep_every = (Duration::from_secs(1).as_micros() / tick.as_micros().max(1)).max(1);
    let sweep_every = u64::try_from(sweep_every).unwrap_or(u64::MAX);
    let mut last_sweep = 0;
    let tick_nanos = tick.as_nanos().max(1);
    loop {
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            _ = interval.tick() => {
                // From the time it is, not the deadline that fired: a late beat
                // publishes the tick it is really at.
                let n = u64::try_from(start.elapsed().as_nanos() / tick_nanos)
                    .unwrap_or(u64::MAX);
                ticks.send_replace(n);
                if n >= last_sweep + sweep_every {
                    last_sweep = n;
                    let gone = shared.store.expire();
                    Stats::add(&shared.stats.expired, gone as u64);
                }
            }
        }
    }
}

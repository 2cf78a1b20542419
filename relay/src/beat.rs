//! The beat: the one place that owns time. It publishes the current tick number; every
//! connection task sends one cell per tick number it sees go by (docs/RELAY.md).
//!
//! Tick `n` is due at `start + n × tick`. If the beat task itself runs late (an
//! overloaded machine), `MissedTickBehavior::Skip` keeps it on that grid instead of
//! bursting or drifting, and the tick number it publishes is computed from the elapsed
//! time, so connections notice the skipped ticks and send the cells they owe.
//!
//! hum/2 work hangs off the same grid: at the start of each tick, before connections
//! hear of it, the mailbox role moves its epoch and keys and (on even ticks) sends its
//! stream batches, and the entry role takes the new live items; half a tick later the
//! entry role sends its slot batches.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hum_shared::route::{LinkFrame, RelayId, Request, Slot, SlotBatch, SlotDeposit, seal_slot};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::entry::{BatchJob, ConnId};
use crate::mailbox::Mailbox;
use crate::peers::Peer;
use crate::random;
use crate::shutdown::Shutdown;
use crate::state::Shared;
use crate::stats::Stats;

/// Runs the beat until shutdown.
pub(crate) async fn run(shared: Arc<Shared>, ticks: watch::Sender<u64>, mut shutdown: Shutdown) {
    let tick = shared.config.tick;
    let start = Instant::now();
    let mut interval = tokio::time::interval_at(start + tick, tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut half = tokio::time::interval_at(start + tick + tick / 2, tick);
    half.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // Sweep expired envelopes about once a second.
    let sweep_every = (Duration::from_secs(1).as_micros() / tick.as_micros().max(1)).max(1);
    let sweep_every = u64::try_from(sweep_every).unwrap_or(u64::MAX);
    let mut last_sweep = 0;
    let tick_nanos = tick.as_nanos().max(1);
    let hum2 = shared.entry.is_some() || shared.mailbox.is_some();
    // The beat whose start, delayed by `offset` nanoseconds, has passed last.
    let beat_at = |offset: u128| {
        u64::try_from(start.elapsed().as_nanos().saturating_sub(offset) / tick_nanos)
            .unwrap_or(u64::MAX)
    };
    loop {
        tokio::select! {
            biased;
            () = shutdown.recv() => return,
            _ = interval.tick() => {
                // From the time it is, not the deadline that fired: a late beat
                // publishes the tick it is really at.
                let n = beat_at(0);
                shared.beat.store(n, Ordering::Relaxed);
                if hum2 {
                    tick_start(&shared, shared.tick_base + n);
                }
                ticks.send_replace(n);
                if n >= last_sweep + sweep_every {
                    last_sweep = n;
                    let gone = shared.store.expire();
                    Stats::add(&shared.stats.expired, gone as u64);
                    if let Some(m) = &shared.mailbox {
                        Stats::add(&shared.stats.route.expired, m.expire() as u64);
                    }
                }
            }
            _ = half.tick(), if shared.entry.is_some() => {
                // The tick whose half has passed last, not the tick it is now: a half
                // tick run late, after the next tick began, still sends its own tick's
                // slots (those of the next tick have not come in yet).
                send_batches(&shared, shared.tick_base + beat_at(tick_nanos / 2));
            }
        }
    }
}

/// The start of hum/2 tick `tick`.
fn tick_start(shared: &Arc<Shared>, tick: u64) {
    let stats = &shared.stats;
    let single = shared.config.is_single();
    if let Some(m) = &shared.mailbox {
        let changed = m.on_tick(tick);
        if changed || tick.is_multiple_of(shared.config.directory_every.max(1)) {
            let update = m.update(tick);
            if !single {
                // To every peer: entry relays need it, mailbox relays hear we are alive.
                shared
                    .links
                    .broadcast(&LinkFrame::Directory(update.clone()), |_| true, stats);
            }
            if let Some(e) = &shared.entry {
                e.on_directory(shared.id, update, tick);
            }
        }
        if tick.is_multiple_of(2) {
            let to: Vec<RelayId> = if single {
                vec![shared.id]
            } else if shared.curious.on() {
                shared
                    .links
                    .peers()
                    .filter(|p| p.role.is_entry())
                    .map(Peer::id)
                    .collect()
            } else {
                Vec::new()
            };
            let batch = m.stream(tick, &to, &shared.curious);
            if single {
                if let Some(e) = &shared.entry {
                    e.on_stream(shared.id, Arc::new(batch));
                }
            } else {
                let frame = LinkFrame::Stream(batch);
                shared.links.broadcast(&frame, |p| p.role.is_entry(), stats);
            }
            Stats::add(&stats.route.streams_sent, 1);
        }
    }
    if let Some(e) = &shared.entry {
        e.tick_start(tick);
    }
}

/// Half a tick into `tick`: every mailbox relay's slot batch, off the beat's task.
fn send_batches(shared: &Arc<Shared>, tick: u64) {
    let Some(entry) = &shared.entry else {
        return;
    };
    for job in entry.take_batches(tick) {
        Stats::add(&shared.stats.route.slots_missing, job.missing as u64);
        let shared = Arc::clone(shared);
        tokio::task::spawn_blocking(move || {
            if job.home == shared.id {
                local_batch(&shared, job);
            } else {
                remote_batch(&shared, job);
            }
        });
    }
}

/// A batch for a mailbox peer: the real slots, padded to the link's capacity with
/// dummies sealed to that relay's current slot key, shuffled.
fn remote_batch(shared: &Shared, job: BatchJob) {
    let Some(entry) = &shared.entry else {
        return;
    };
    let BatchJob {
        home,
        tick,
        capacity,
        key,
        slots,
        ..
    } = job;
    let mut order: Vec<(Option<ConnId>, Slot)> =
        slots.into_iter().map(|(c, s)| (Some(c), s)).collect();
    let real = order.len();
    let pad = capacity.saturating_sub(real);
    for _ in 0..pad {
        let dummy = key
            .as_ref()
            .and_then(|k| {
                seal_slot(k, shared.id, tick, SlotDeposit::Dummy, &Request::None)
                    .ok()
                    .map(|(slot, _)| slot)
            })
            // No key yet: random bytes of the same size (the relay counts them as bad).
            .unwrap_or_else(Slot::random);
        order.push((None, dummy));
    }
    Stats::add(&shared.stats.route.dummies_sealed, pad as u64);
    random::shuffle(&mut order);
    let (conns, slots): (Vec<Option<ConnId>>, Vec<Slot>) = order.into_iter().unzip();
    entry.sent(home, tick, conns);
    if shared.links.send(
        home,
        &LinkFrame::Slots(SlotBatch { tick, slots }),
        &shared.stats,
    ) {
        Stats::add(&shared.stats.route.batches_sent, 1);
        batch_record(shared, home, tick, capacity, real);
    }
}

/// The single relay's own batch: the same pipeline in process, without onion layers,
/// padding or shuffle (it sees everything anyway).
fn local_batch(shared: &Shared, job: BatchJob) {
    let (Some(entry), Some(mailbox)) = (&shared.entry, &shared.mailbox) else {
        return;
    };
    let (conns, slots): (Vec<ConnId>, Vec<Slot>) = job.slots.into_iter().unzip();
    batch_record(shared, shared.id, job.tick, slots.len(), slots.len());
    let work = mailbox.open_batch(
        shared.id,
        job.tick,
        &slots,
        Some(&conns),
        &shared.stats.route,
        &shared.curious,
    );
    let reply = Mailbox::seal(job.tick, work);
    entry.sent(shared.id, job.tick, conns.into_iter().map(Some).collect());
    entry.on_replies(shared.id, reply);
}

/// The curious record of a slot batch the entry role sent.
fn batch_record(shared: &Shared, to: RelayId, tick: u64, size: usize, real: usize) {
    shared
        .curious
        .record("entry", "batch", shared.now_tick(), || {
            format!(r#""to":"{to}","batch_tick":{tick},"size":{size},"real_from_clients":{real}"#)
        });
}

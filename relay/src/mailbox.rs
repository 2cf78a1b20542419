//! The mailbox role (docs/PROTOCOL.md, hum/2 §H4-H6): the slot keyring and its signed
//! announcements, epochs on the relay's own ticks, the home role (open each slot of an
//! entry batch, refuse replays, store local deposits, hand forwards on), the destination
//! role (open inner blobs, store copies) and the bucket streams.
//!
//! This file is the role's state and its per-batch work, without I/O; `link.rs` and
//! `beat.rs` drive it. Crypto runs outside the locks: the keyring is read-locked while
//! slots open, the buckets are locked only to store or read.

mod buckets;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use hum_shared::route::{
    DepositOutcome, DepositReply, DirectoryUpdate, InnerAnswer, InnerBlob, Item, OpenedDeposit,
    OpenedSlot, RelayId, ReplayGuard, ReplyBatch, Request, RequestOutcome, RouteError, Slot,
    SlotKey, SlotKeyring, SlotReplier, StreamBatch, flag_mask, log_digest, open_clear_slot,
    open_inner, open_slot,
};
use zeroize::Zeroizing;

pub(crate) use buckets::BucketCounts;
use buckets::{Buckets, Limits};

use crate::curious::{Curious, or_null};
use crate::stats::{RouteStats, Stats};
use crate::{Clock, Config};

/// Ticks of slot ephemerals the replay guard remembers.
const REPLAY_WINDOW: u64 = 8;

/// What became of one slot of an entry batch, before its answer is sealed.
#[derive(Debug)]
pub(crate) struct SlotWork {
    /// `None`: a bad slot, answered with random bytes.
    replier: Option<SlotReplier>,
    pub(crate) fate: Fate,
    request: RequestOutcome,
    item: Option<Item>,
}

/// Where a slot's deposit stands.
#[derive(Debug)]
pub(crate) enum Fate {
    /// Answered by this relay.
    Done(DepositOutcome),
    /// To forward to `dest`; its answer comes from there.
    Forward { dest: RelayId, blob: InnerBlob },
    /// Sent to its destination; no answer yet.
    Sent,
    /// The destination's sealed answer.
    Answered(InnerAnswer),
}

/// The mailbox role of one relay.
pub(crate) struct Mailbox {
    id: RelayId,
    epoch_ticks: u32,
    buckets_per_epoch: u16,
    flag_bits: u8,
    clock: Clock,
    /// The certificate key, to sign slot keys with.
    pkcs8: Zeroizing<Vec<u8>>,
    keys: RwLock<SlotKeyring>,
    announced: Mutex<Vec<SlotKey>>,
    guard: Mutex<ReplayGuard>,
    store: Mutex<Buckets>,
    /// The relay's tick, as `on_tick` last saw it (for the curious log).
    now: AtomicU64,
}

/// Where a slot sat: the batch it came in and its place there.
#[derive(Debug, Clone, Copy)]
struct At {
    /// The entry relay (home role) or home relay (destination role) it came from.
    source: RelayId,
    /// The entry tick of the batch.
    tick: u64,
    position: usize,
    /// The single relay's own client at that place (it knows; a mesh relay does not).
    conn: Option<u64>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Mailbox {
    pub(crate) fn new(config: &Config, id: RelayId, pkcs8: &[u8], per_tick: usize) -> Self {
        let limits = Limits {
            buckets: config.bucket_count(),
            bucket_quota: config.bucket_quota,
            item_quota: config.item_quota,
            source_cap: config.source_cap,
            flag_mask: flag_mask(config.flag_bits).unwrap_or(0xff),
            ttl: config.ttl,
        };
        Self {
            id,
            epoch_ticks: config.epoch_ticks,
            buckets_per_epoch: config.bucket_count(),
            flag_bits: config.flag_bits,
            clock: config.clock.clone(),
            pkcs8: Zeroizing::new(pkcs8.to_vec()),
            keys: RwLock::new(SlotKeyring::new()),
            announced: Mutex::new(Vec::new()),
            guard: Mutex::new(ReplayGuard::new(REPLAY_WINDOW, per_tick.max(1))),
            store: Mutex::new(Buckets::new(limits)),
            now: AtomicU64::new(0),
        }
    }

    /// The epoch of tick `tick`.
    pub(crate) fn epoch_of(&self, tick: u64) -> u32 {
        u32::try_from(tick / u64::from(self.epoch_ticks)).unwrap_or(u32::MAX)
    }

    /// Moves to tick `tick`: the epoch, the keyring (a new epoch makes the next key and
    /// erases the one before the previous), the announcements. Returns whether the slot
    /// keys changed (so entry relays must hear of it at once).
    pub(crate) fn on_tick(&self, tick: u64) -> bool {
        self.now.store(tick, Ordering::Relaxed);
        let epoch = self.epoch_of(tick);
        lock(&self.store).set_tick(tick, epoch);
        let changed = self
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .advance(epoch);
        if changed {
            let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            let announced: Vec<SlotKey> = [epoch, epoch.saturating_add(1)]
                .iter()
                .filter_map(|&e| keys.by_epoch(e))
                .filter_map(|k| match k.announce(self.id, &self.pkcs8) {
                    Ok(a) => Some(a),
                    Err(err) => {
                        tracing::error!(cause = %err, "cannot sign a slot key");
                        None
                    }
                })
                .collect();
            *lock(&self.announced) = announced;
        }
        changed
    }

    /// The directory update of tick `tick`: clock, parameters, current and next keys.
    pub(crate) fn update(&self, tick: u64) -> DirectoryUpdate {
        let per = u64::from(self.epoch_ticks);
        DirectoryUpdate {
            tick,
            epoch: self.epoch_of(tick),
            tick_in_epoch: u32::try_from(tick % per).unwrap_or(0),
            epoch_ticks: self.epoch_ticks,
            buckets: self.buckets_per_epoch,
            flag_bits: self.flag_bits,
            slot_keys: lock(&self.announced).clone(),
        }
    }

    /// Opens every slot of the batch of entry tick `tick` from entry relay `source`
    /// (home role) and does what each asks, except forwarding. `clear`: the single
    /// relay's own clients, whose slots come in clear form; `conns` names them, place by
    /// place, for the curious log.
    pub(crate) fn open_batch(
        &self,
        source: RelayId,
        tick: u64,
        slots: &[Slot],
        clear: Option<&[u64]>,
        stats: &RouteStats,
        curious: &Curious,
    ) -> Vec<SlotWork> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let mut work = Vec::with_capacity(slots.len());
        for (position, slot) in slots.iter().enumerate() {
            let at = At {
                source,
                tick,
                position,
                conn: clear.and_then(|c| c.get(position).copied()),
            };
            let opened = if clear.is_some() {
                open_clear_slot(slot)
            } else {
                open_slot(&keys, source, tick, slot)
                    .and_then(|o| lock(&self.guard).check(tick, slot).map(|()| o))
            };
            Stats::add(&stats.slots_opened, 1);
            let opened = match opened {
                Ok(o) => o,
                Err(err) => {
                    let counter = match err {
                        RouteError::Replay => &stats.slots_replayed,
                        RouteError::UnknownSlotKey => &stats.slots_unknown_key,
                        RouteError::ClearSlot => &stats.slots_clear_refused,
                        _ => &stats.slots_bad,
                    };
                    Stats::add(counter, 1);
                    let kind = if err == RouteError::Replay {
                        "replay"
                    } else {
                        "bad"
                    };
                    self.slot_record(curious, at, kind, None, "none");
                    work.push(SlotWork {
                        replier: None,
                        fate: Fate::Done(DepositOutcome::None),
                        request: RequestOutcome::None,
                        item: None,
                    });
                    continue;
                }
            };
            work.push(self.handle(at, opened, stats, curious));
        }
        work
    }

    fn handle(
        &self,
        at: At,
        opened: OpenedSlot,
        stats: &RouteStats,
        curious: &Curious,
    ) -> SlotWork {
        let OpenedSlot {
            deposit,
            request,
            replier,
        } = opened;
        let (source, tick, position) = (at.source, at.tick, at.position);
        let request_kind = match &request {
            Request::None => "none",
            Request::CatchUp(_) => "catchup",
            Request::Delete(_) => "delete",
        };
        let fate = match deposit {
            OpenedDeposit::Dummy => {
                Stats::add(&stats.slots_dummy, 1);
                self.slot_record(curious, at, "dummy", None, request_kind);
                Fate::Done(DepositOutcome::None)
            }
            OpenedDeposit::Local(d) => {
                self.slot_record(curious, at, "local", Some(self.id), request_kind);
                let outcome = self.store(source, &d, stats);
                self.deposit_record(curious, at, "local", &d, outcome);
                Fate::Done(outcome)
            }
            OpenedDeposit::Forward { dest, blob } if dest == self.id => {
                self.slot_record(curious, at, "forward", Some(dest), request_kind);
                let answer = self.open_inner(
                    At {
                        source: self.id,
                        conn: None,
                        ..at
                    },
                    &blob,
                    stats,
                    curious,
                );
                Fate::Answered(answer)
            }
            OpenedDeposit::Forward { dest, blob } => {
                self.slot_record(curious, at, "forward", Some(dest), request_kind);
                Stats::add(&stats.forwarded, 1);
                Fate::Forward { dest, blob }
            }
        };
        let (request, item) = match &request {
            Request::None => (RequestOutcome::None, None),
            // Catch-up answers ride the reply items of odd ticks only.
            Request::CatchUp(c) if tick % 2 == 1 => {
                let answered = lock(&self.store).catch_up(c, self.clock.now());
                let (item, outcome) = answered.unwrap_or_else(|| {
                    Stats::add(&stats.catch_ups_refused, 1);
                    (
                        None,
                        RequestOutcome::CatchUp {
                            found: false,
                            next_after: c.after,
                            more: false,
                        },
                    )
                });
                Stats::add(&stats.catch_ups, 1);
                curious.record("mailbox", "catchup", self.tick(), || {
                    format!(
                        r#""source":"{source}","batch_tick":{tick},"pos":{position},"bucket":{},"epoch":{},"detect":"{}","after":{},"rank":{},"found":{}"#,
                        c.bucket,
                        c.epoch,
                        log_digest(c.detect.expose_secret()),
                        c.after,
                        c.rank,
                        or_null(item.as_ref().map(|i| log_digest(i.tag().as_bytes())))
                    )
                });
                (outcome, item)
            }
            Request::CatchUp(_) => {
                Stats::add(&stats.catch_ups_even, 1);
                (RequestOutcome::None, None)
            }
            Request::Delete(d) => {
                let ok = lock(&self.store).delete(d);
                if ok {
                    Stats::add(&stats.deleted, 1);
                }
                curious.record("mailbox", "delete", self.tick(), || {
                    format!(
                        r#""source":"{source}","bucket":{},"epoch":{},"tag":"{}","ok":{ok}"#,
                        d.bucket,
                        d.epoch,
                        log_digest(d.tag.as_bytes())
                    )
                });
                (RequestOutcome::None, None)
            }
        };
        SlotWork {
            replier: Some(replier),
            fate,
            request,
            item,
        }
    }

    /// The relay's tick now.
    fn tick(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }

    /// The curious record of one slot opened as home relay.
    fn slot_record(
        &self,
        curious: &Curious,
        at: At,
        kind: &str,
        dest: Option<RelayId>,
        request: &str,
    ) {
        curious.record("mailbox", "slot", self.tick(), || {
            let conn = at.conn.map(|c| format!(r#","conn":{c}"#)).unwrap_or_default();
            format!(
                r#""source":"{}","batch_tick":{},"pos":{},"kind":"{kind}","dest":{},"request":"{request}"{conn}"#,
                at.source,
                at.tick,
                at.position,
                or_null(dest.map(|d| d.to_string()))
            )
        });
    }

    /// The curious record of one deposit handled as destination relay.
    fn deposit_record(
        &self,
        curious: &Curious,
        at: At,
        via: &str,
        d: &hum_shared::route::Deposit,
        outcome: DepositOutcome,
    ) {
        curious.record("mailbox", "deposit", self.tick(), || {
            let mut buckets: Vec<u16> = Vec::new();
            for c in d.copies() {
                if !buckets.contains(&c.bucket) {
                    buckets.push(c.bucket);
                }
            }
            let copies: Vec<String> = buckets
                .iter()
                .map(|&b| {
                    format!(
                        r#"{{"bucket":{b},"tag":"{}"}}"#,
                        log_digest(d.seed().copy_tag(b).as_bytes())
                    )
                })
                .collect();
            let answer = match outcome {
                DepositOutcome::Stored => "stored",
                DepositOutcome::Full => "full",
                DepositOutcome::Retry { .. } => "retry",
                _ => "unknown",
            };
            format!(
                r#""source":"{}","via":"{via}","batch_tick":{},"pos":{},"epoch":{},"seed":"{}","payload":"{}","copies":[{}],"answer":"{answer}""#,
                at.source,
                at.tick,
                at.position,
                d.epoch(),
                log_digest(d.seed().as_bytes()),
                log_digest(d.payload().as_bytes()),
                copies.join(",")
            )
        });
    }

    fn store(
        &self,
        source: RelayId,
        d: &hum_shared::route::Deposit,
        stats: &RouteStats,
    ) -> DepositOutcome {
        let outcome =
            lock(&self.store).deposit(source, d, self.clock.now(), self.clock.unix_micros());
        let counter = match outcome {
            DepositOutcome::Stored => &stats.stored,
            DepositOutcome::Full => &stats.full,
            DepositOutcome::Retry { .. } => &stats.retry,
            _ => &stats.inner_bad,
        };
        Stats::add(counter, 1);
        outcome
    }

    /// Opens an inner blob of home relay `at.source` and stores its deposit.
    fn open_inner(
        &self,
        at: At,
        blob: &InnerBlob,
        stats: &RouteStats,
        curious: &Curious,
    ) -> InnerAnswer {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        match open_inner(&keys, at.source, blob) {
            Ok(opened) => {
                drop(keys);
                let outcome = self.store(at.source, &opened.deposit, stats);
                self.deposit_record(curious, at, "forward", &opened.deposit, outcome);
                opened.replier.seal(outcome)
            }
            Err(_) => {
                Stats::add(&stats.inner_bad, 1);
                InnerAnswer::random()
            }
        }
    }

    /// The destination role: opens and stores each real blob of home relay `home`'s
    /// forward batch, and answers every place (random bytes for padding and bad blobs).
    pub(crate) fn destination(
        &self,
        home: RelayId,
        tick: u64,
        blobs: &[Option<InnerBlob>],
        stats: &RouteStats,
        curious: &Curious,
    ) -> Vec<InnerAnswer> {
        blobs
            .iter()
            .enumerate()
            .map(|(position, b)| match b {
                Some(blob) => self.open_inner(
                    At {
                        source: home,
                        tick,
                        position,
                        conn: None,
                    },
                    blob,
                    stats,
                    curious,
                ),
                None => InnerAnswer::random(),
            })
            .collect()
    }

    /// Seals the answers (and, on odd ticks, reply items) of a batch, by position.
    pub(crate) fn seal(tick: u64, work: Vec<SlotWork>) -> ReplyBatch {
        let odd = tick % 2 == 1;
        let mut answers = Vec::with_capacity(work.len());
        let mut items = Vec::with_capacity(if odd { work.len() } else { 0 });
        for w in work {
            let Some(replier) = w.replier else {
                answers.push(crate::random::answer());
                if odd {
                    items.push(Item::random());
                }
                continue;
            };
            let deposit = match w.fate {
                Fate::Done(outcome) => DepositReply::Outcome(outcome),
                Fate::Answered(answer) => DepositReply::Forwarded(answer),
                // Not answered in time: random bytes, which the client reads as Unknown.
                Fate::Forward { .. } | Fate::Sent => DepositReply::Forwarded(InnerAnswer::random()),
            };
            let reply = replier.seal(&deposit, &w.request, w.item.as_ref());
            answers.push(reply.answer);
            if odd {
                items.push(reply.item);
            }
        }
        ReplyBatch {
            tick,
            answers,
            items,
        }
    }

    /// The live stream batch of tick `tick`: one item per bucket of the current epoch,
    /// for the entry relays `to` (the curious log names each).
    pub(crate) fn stream(&self, tick: u64, to: &[RelayId], curious: &Curious) -> StreamBatch {
        let mut store = lock(&self.store);
        let marked = store.stream_marked();
        let epoch = store.epoch();
        drop(store);
        let items: Vec<Item> = marked
            .iter()
            .map(|i| i.clone().unwrap_or_else(Item::random))
            .collect();
        if curious.on() {
            for to in to {
                for (bucket, (item, real)) in items.iter().zip(&marked).enumerate() {
                    curious.record("mailbox", "stream", tick, || {
                        format!(
                            r#""to":"{to}","epoch":{epoch},"bucket":{bucket},"tag":{},"item":"{}""#,
                            or_null(real.as_ref().map(|i| log_digest(i.tag().as_bytes()))),
                            log_digest(item.as_bytes())
                        )
                    });
                }
            }
        }
        StreamBatch { tick, epoch, items }
    }

    /// Deletes what has expired; returns how many items went.
    pub(crate) fn expire(&self) -> usize {
        lock(&self.store).expire(self.clock.now())
    }

    /// What the role holds, in counts.
    pub(crate) fn counts(&self) -> BucketCounts {
        lock(&self.store).counts()
    }

    /// The epochs whose slot keys are held (current, next, and the previous for a
    /// while): every older key is erased.
    pub(crate) fn key_epochs(&self) -> Vec<u32> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .iter()
            .map(hum_shared::route::SlotKeyPair::epoch)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hum_shared::route::{RelayId, Request, SlotDeposit, seal_slot};

    const ENTRY: RelayId = RelayId::from_bytes([2; 8]);

    fn mailbox() -> Result<Mailbox, crate::RelayError> {
        let made = rcgen::generate_simple_self_signed(vec!["hum-relay".to_owned()])
            .map_err(|e| crate::RelayError::Certificate(e.to_string()))?;
        let mut config = Config::ephemeral(std::time::Duration::from_millis(20));
        config.epoch_ticks = 100;
        config.buckets = crate::BucketCount::Fixed(16);
        let m = Mailbox::new(
            &config,
            RelayId::from_bytes([1; 8]),
            &made.signing_key.serialize_der(),
            16,
        );
        m.on_tick(1_000);
        Ok(m)
    }

    /// The mailbox's slot key of epoch 10, as a client holds it.
    fn key_of_epoch_10(
        m: &Mailbox,
    ) -> Result<hum_shared::route::VerifiedSlotKey, Box<dyn std::error::Error>> {
        Ok(m.keys
            .read()
            .map_err(|_| "poisoned")?
            .by_epoch(10)
            .ok_or("no key")?
            .verified(m.id))
    }

    #[test]
    fn a_replayed_slot_is_refused_and_a_slot_of_another_tick_does_not_open()
    -> Result<(), Box<dyn std::error::Error>> {
        let m = mailbox()?;
        let key = key_of_epoch_10(&m)?;
        let (slot, _) = seal_slot(&key, ENTRY, 1_000, SlotDeposit::Dummy, &Request::None)?;
        let (stats, curious) = (RouteStats::default(), Curious::default());
        // Twice in one batch, then again in a second batch of the same tick.
        let work = m.open_batch(
            ENTRY,
            1_000,
            &[slot.clone(), slot.clone()],
            None,
            &stats,
            &curious,
        );
        assert!(work[0].replier.is_some() && work[1].replier.is_none());
        m.open_batch(
            ENTRY,
            1_000,
            std::slice::from_ref(&slot),
            None,
            &stats,
            &curious,
        );
        assert_eq!(
            stats
                .slots_replayed
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
        // A later batch, or another entry relay: the associated data differs.
        m.open_batch(
            ENTRY,
            1_001,
            std::slice::from_ref(&slot),
            None,
            &stats,
            &curious,
        );
        m.open_batch(
            RelayId::from_bytes([3; 8]),
            1_000,
            &[slot],
            None,
            &stats,
            &curious,
        );
        assert_eq!(
            stats.slots_bad.load(std::sync::atomic::Ordering::Relaxed),
            2
        );
        assert_eq!(
            stats.slots_dummy.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        // A clear slot is refused outside the single relay's own pipeline.
        let (clear, _) =
            hum_shared::route::seal_clear_slot(m.id, SlotDeposit::Dummy, &Request::None)?;
        m.open_batch(ENTRY, 1_000, &[clear], None, &stats, &curious);
        assert_eq!(
            stats
                .slots_clear_refused
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        Ok(())
    }

    #[test]
    fn catch_ups_out_of_range_in_even_ticks_or_replayed_are_counted()
    -> Result<(), Box<dyn std::error::Error>> {
        use hum_shared::route::{CATCH_UP_PAGE, CatchUp, DeliverySecret};
        use std::sync::atomic::Ordering::Relaxed;
        let m = mailbox()?;
        let key = key_of_epoch_10(&m)?;
        let dk = DeliverySecret::generate().detection_key(10);
        let ask = |bucket: u16, epoch: u32, rank: u8| {
            Request::CatchUp(CatchUp {
                bucket,
                epoch,
                detect: dk.clone(),
                after: 7,
                rank,
            })
        };
        let (stats, curious) = (RouteStats::default(), Curious::default());
        let buckets = m.buckets_per_epoch;
        let requests = [
            ask(0, 10, 0),
            ask(0, 10, CATCH_UP_PAGE),
            ask(buckets, 10, 0),
            ask(0, 12, 0),
            ask(0, 11, CATCH_UP_PAGE - 1),
        ];
        let mut slots = Vec::new();
        for r in &requests {
            slots.push(seal_slot(&key, ENTRY, 1_001, SlotDeposit::Dummy, r)?.0);
        }
        let work = m.open_batch(ENTRY, 1_001, &slots, None, &stats, &curious);
        let nothing = RequestOutcome::CatchUp {
            found: false,
            next_after: 7,
            more: false,
        };
        let got: Vec<_> = work.iter().map(|w| (w.request, w.item.is_some())).collect();
        assert!(got.iter().all(|g| *g == (nothing, false)), "{got:?}");
        assert_eq!(stats.catch_ups.load(Relaxed), 5);
        assert_eq!(stats.catch_ups_refused.load(Relaxed), 3);
        // A replayed slot is not answered at all (random bytes), and counted as a replay.
        let again = m.open_batch(ENTRY, 1_001, &slots[..1], None, &stats, &curious);
        assert!(again[0].replier.is_none());
        assert_eq!(stats.slots_replayed.load(Relaxed), 1);
        assert_eq!(stats.catch_ups.load(Relaxed), 5);
        // In a slot of an even tick there is no reply item to carry it.
        let (even, _) = seal_slot(&key, ENTRY, 1_002, SlotDeposit::Dummy, &ask(0, 10, 0))?;
        let work = m.open_batch(ENTRY, 1_002, &[even], None, &stats, &curious);
        assert_eq!(work[0].request, RequestOutcome::None);
        assert_eq!(stats.catch_ups_even.load(Relaxed), 1);
        Ok(())
    }
}

//! Mailboxes: envelopes held in memory only, keyed by mailbox id (docs/PROTOCOL.md §4).
//!
//! The relay never sees a capability except to hash it into an id when a client
//! subscribes, so it stores ids only. Sequence numbers are microseconds since the Unix
//! epoch at deposit, made strictly increasing within a mailbox: they stay increasing
//! when an empty mailbox is forgotten and recreated, and across restarts of the relay.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hum_shared::{CellWriter, Down, MailboxId};

use crate::Clock;

/// One stored envelope.
#[derive(Debug)]
struct Entry {
    envelope: Vec<u8>,
    fanout: bool,
    expires: Instant,
}

/// One mailbox: its envelopes by sequence number and how many connections follow it.
#[derive(Debug, Default)]
struct Mailbox {
    entries: BTreeMap<u64, Entry>,
    last_seq: u64,
    subscribers: usize,
    /// Whether the mailbox fans out, fixed by the first deposit while it holds anything:
    /// a deposit of the other kind is refused, so a queue envelope cannot slip into a
    /// group mailbox (where the first ack would delete it for everyone) nor the reverse.
    fanout: Option<bool>,
}

impl Mailbox {
    fn is_forgettable(&self) -> bool {
        self.entries.is_empty() && self.subscribers == 0
    }
}

#[derive(Debug, Default)]
struct Inner {
    boxes: HashMap<MailboxId, Mailbox>,
    bytes: usize,
    envelopes: usize,
}

/// A connection's subscription: which mailbox, and the last sequence number it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sub {
    pub(crate) id: MailboxId,
    pub(crate) cursor: u64,
}

/// Why a deposit was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaFull;

/// Counts describing what the store holds (never ids or contents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StoreCounts {
    pub(crate) mailboxes: usize,
    pub(crate) envelopes: usize,
    pub(crate) bytes: usize,
}

/// Every mailbox of the relay, behind one short-held lock.
#[derive(Debug)]
pub(crate) struct Store {
    inner: Mutex<Inner>,
    clock: Clock,
    ttl: Duration,
    mailbox_quota: usize,
    global_quota: usize,
}

impl Store {
    pub(crate) fn new(
        clock: Clock,
        ttl: Duration,
        mailbox_quota: usize,
        global_quota: usize,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            clock,
            ttl,
            mailbox_quota,
            global_quota,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; if something did, the data is still
        // consistent enough to serve (counts are recomputed on expiry).
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores an envelope and returns its sequence number, or refuses it when a quota
    /// is reached.
    pub(crate) fn deposit(
        &self,
        id: MailboxId,
        fanout: bool,
        envelope: Vec<u8>,
    ) -> Result<u64, QuotaFull> {
        let now = self.clock.now();
        let micros = self.clock.unix_micros();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let len = envelope.len();
        let mailbox = inner.boxes.entry(id).or_default();
        // Make room from what has expired first.
        let (gone, gone_bytes) = drop_expired(mailbox, now);
        inner.envelopes -= gone;
        inner.bytes -= gone_bytes;
        if mailbox.entries.is_empty() {
            mailbox.fanout = None;
        }
        let mismatch = mailbox.fanout.is_some_and(|f| f != fanout);
        if mismatch
            || mailbox.entries.len() >= self.mailbox_quota
            || inner.bytes + len > self.global_quota
        {
            if mailbox.is_forgettable() {
                inner.boxes.remove(&id);
            }
            return Err(QuotaFull);
        }
        let seq = micros.max(mailbox.last_seq.saturating_add(1));
        mailbox.last_seq = seq;
        mailbox.fanout = Some(fanout);
        mailbox.entries.insert(
            seq,
            Entry {
                envelope,
                fanout,
                expires: now + self.ttl,
            },
        );
        inner.bytes += len;
        inner.envelopes += 1;
        Ok(seq)
    }

    /// Counts one more connection following `id` (so its sequence numbers are kept).
    pub(crate) fn subscribe(&self, id: MailboxId) {
        self.lock().boxes.entry(id).or_default().subscribers += 1;
    }

    /// Counts one connection fewer following `id`.
    pub(crate) fn unsubscribe(&self, id: MailboxId) {
        let mut inner = self.lock();
        if let Some(m) = inner.boxes.get_mut(&id) {
            m.subscribers = m.subscribers.saturating_sub(1);
            if m.is_forgettable() {
                inner.boxes.remove(&id);
            }
        }
    }

    /// Forgets all of a closing connection's subscriptions at once.
    pub(crate) fn unsubscribe_all(&self, subs: &[Sub]) {
        if subs.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for s in subs {
            if let Some(m) = inner.boxes.get_mut(&s.id) {
                m.subscribers = m.subscribers.saturating_sub(1);
                if m.is_forgettable() {
                    inner.boxes.remove(&s.id);
                }
            }
        }
    }

    /// A subscriber received envelope `seq`: a queue envelope is deleted, a fanout one
    /// stays until it expires. Returns whether something was deleted.
    pub(crate) fn ack(&self, id: MailboxId, seq: u64) -> bool {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(m) = inner.boxes.get_mut(&id) else {
            return false;
        };
        if m.entries.get(&seq).is_none_or(|e| e.fanout) {
            return false;
        }
        if let Some(e) = m.entries.remove(&seq) {
            inner.bytes -= e.envelope.len();
            inner.envelopes -= 1;
        }
        if m.is_forgettable() {
            inner.boxes.remove(&id);
        }
        true
    }

    /// Whether any of `subs` has an envelope to deliver (so a cover cell will not do).
    pub(crate) fn has_pending(&self, subs: &[Sub]) -> bool {
        if subs.is_empty() {
            return false;
        }
        let now = self.clock.now();
        let inner = self.lock();
        subs.iter().any(|sub| {
            inner.boxes.get(&sub.id).is_some_and(|m| {
                // Nothing deposited since the cursor (the common case) needs no search.
                m.last_seq > sub.cursor
                    && m.entries
                        .range(sub.cursor.saturating_add(1)..)
                        .any(|(_, e)| e.expires > now)
            })
        })
    }

    /// Puts as many pending envelopes of `subs` into `w` as fit, taking the
    /// subscriptions in turn from `*turn`, and moves their cursors. Returns how many.
    pub(crate) fn fill(&self, subs: &mut [Sub], turn: &mut usize, w: &mut CellWriter) -> usize {
        if subs.is_empty() {
            return 0;
        }
        let now = self.clock.now();
        let inner = self.lock();
        let n = subs.len();
        let mut put = 0;
        let mut idle = 0;
        // Visit subscriptions round-robin until a whole round delivers nothing.
        while idle < n {
            let i = *turn % n;
            *turn = (*turn + 1) % n;
            let sub = &mut subs[i];
            let next = inner.boxes.get(&sub.id).and_then(|m| {
                m.entries
                    .range(sub.cursor.saturating_add(1)..)
                    .find(|(_, e)| e.expires > now)
            });
            let Some((&seq, entry)) = next else {
                idle += 1;
                continue;
            };
            let op = Down::Deliver {
                mailbox: sub.id,
                seq,
                envelope: entry.envelope.clone(),
            };
            if w.push(&op).is_err() {
                // Does not fit: it goes in a later cell. Step back so this mailbox is
                // first next time.
                *turn = i;
                break;
            }
            sub.cursor = seq;
            put += 1;
            idle = 0;
        }
        put
    }

    /// Deletes every expired envelope; returns how many.
    pub(crate) fn expire(&self) -> usize {
        let now = self.clock.now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut gone = 0;
        let mut gone_bytes = 0;
        inner.boxes.retain(|_, m| {
            let (n, b) = drop_expired(m, now);
            gone += n;
            gone_bytes += b;
            !m.is_forgettable()
        });
        inner.envelopes -= gone;
        inner.bytes -= gone_bytes;
        gone
    }

    /// What the store holds, in counts.
    pub(crate) fn counts(&self) -> StoreCounts {
        let inner = self.lock();
        StoreCounts {
            mailboxes: inner.boxes.len(),
            envelopes: inner.envelopes,
            bytes: inner.bytes,
        }
    }
}

/// Removes the expired envelopes at the front of a mailbox (sequence order is deposit
/// order, so they are all at the front); returns how many and their bytes.
fn drop_expired(m: &mut Mailbox, now: Instant) -> (usize, usize) {
    let mut n = 0;
    let mut bytes = 0;
    while let Some(e) = m.entries.first_entry() {
        if e.get().expires > now {
            break;
        }
        bytes += e.remove().envelope.len();
        n += 1;
    }
    (n, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hum_shared::{ENVELOPE_LEN, decode_cell};

    fn store(clock: &Clock) -> Store {
        Store::new(clock.clone(), Duration::from_secs(60), 3, 5 * ENVELOPE_LEN)
    }

    fn drain(s: &Store, subs: &mut [Sub]) -> Vec<Down> {
        let mut out = Vec::new();
        let mut turn = 0;
        loop {
            let Ok(mut w) = CellWriter::new(1024) else {
                return out;
            };
            if s.fill(subs, &mut turn, &mut w) == 0 {
                return out;
            }
            out.extend(decode_cell::<Down>(&w.finish(), 1024).unwrap_or_default());
        }
    }

    #[test]
    fn sequence_numbers_increase_and_survive_forgetting() -> Result<(), QuotaFull> {
        let clock = Clock::system();
        let s = store(&clock);
        let id = MailboxId::from_bytes([1; 32]);
        let a = s.deposit(id, false, vec![0; ENVELOPE_LEN])?;
        let b = s.deposit(id, false, vec![0; ENVELOPE_LEN])?;
        assert!(b > a);
        assert!(s.ack(id, a));
        assert!(s.ack(id, b));
        assert_eq!(s.counts(), StoreCounts::default());
        let c = s.deposit(id, false, vec![0; ENVELOPE_LEN])?;
        assert!(c > b);
        Ok(())
    }

    #[test]
    fn a_mailbox_keeps_the_kind_of_its_first_deposit() -> Result<(), QuotaFull> {
        let clock = Clock::system();
        let s = store(&clock);
        let id = MailboxId::from_bytes([9; 32]);
        s.deposit(id, true, vec![0; ENVELOPE_LEN])?;
        assert!(s.deposit(id, false, vec![0; ENVELOPE_LEN]).is_err());
        s.deposit(id, true, vec![0; ENVELOPE_LEN])?;
        let other = MailboxId::from_bytes([10; 32]);
        let seq = s.deposit(other, false, vec![0; ENVELOPE_LEN])?;
        assert!(s.deposit(other, true, vec![0; ENVELOPE_LEN]).is_err());
        // Emptied, it takes either kind again.
        assert!(s.ack(other, seq));
        s.deposit(other, true, vec![0; ENVELOPE_LEN])?;
        Ok(())
    }

    #[test]
    fn quotas_refuse_and_expiry_frees() -> Result<(), QuotaFull> {
        let clock = Clock::system();
        let s = store(&clock);
        let id = MailboxId::from_bytes([1; 32]);
        for _ in 0..3 {
            s.deposit(id, false, vec![0; ENVELOPE_LEN])?;
        }
        assert_eq!(s.deposit(id, false, vec![0; ENVELOPE_LEN]), Err(QuotaFull));
        let other = MailboxId::from_bytes([2; 32]);
        s.deposit(other, true, vec![0; ENVELOPE_LEN])?;
        s.deposit(other, true, vec![0; ENVELOPE_LEN])?;
        // Global quota: five envelopes in all.
        assert_eq!(
            s.deposit(MailboxId::from_bytes([3; 32]), false, vec![0; ENVELOPE_LEN]),
            Err(QuotaFull)
        );
        assert_eq!(s.counts().mailboxes, 2);
        clock.advance(Duration::from_secs(61));
        assert_eq!(s.expire(), 5);
        assert_eq!(s.counts(), StoreCounts::default());
        Ok(())
    }

    #[test]
    fn fill_delivers_in_order_round_robin_and_fanout_survives_ack() -> Result<(), QuotaFull> {
        let clock = Clock::system();
        let s = store(&clock);
        let (q, g) = (
            MailboxId::from_bytes([1; 32]),
            MailboxId::from_bytes([2; 32]),
        );
        let q1 = s.deposit(q, false, vec![1; ENVELOPE_LEN])?;
        let q2 = s.deposit(q, false, vec![2; ENVELOPE_LEN])?;
        let g1 = s.deposit(g, true, vec![3; ENVELOPE_LEN])?;
        let mut subs = [Sub { id: q, cursor: 0 }, Sub { id: g, cursor: 0 }];
        let seqs: Vec<u64> = drain(&s, &mut subs)
            .into_iter()
            .filter_map(|d| match d {
                Down::Deliver { seq, .. } => Some(seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![q1, g1, q2]);
        assert!(drain(&s, &mut subs).is_empty());
        assert!(!s.ack(g, g1));
        assert!(s.ack(q, q1));
        let mut again = [Sub { id: g, cursor: 0 }, Sub { id: q, cursor: 0 }];
        assert_eq!(drain(&s, &mut again).len(), 2);
        Ok(())
    }
}

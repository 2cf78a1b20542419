//! The outbox's side of the relay links: the deposit pump of each link (one deposit in
//! flight, in order, full mailboxes waiting) and the schedule of re-sends for what a relay
//! stored and no receipt answered.
//!
//! Both are plain state, driven by the core with the time it is given; the core reads the
//! rows from the store and decides where they go.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use hum_shared::route::RelayId;
use hum_shared::route::session::DepositId;

use crate::engine::records::Dest;

/// The longest wait between two re-sends of one message.
const RESEND_MAX: Duration = Duration::from_secs(86_400);

/// A deposit the relay has not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InFlight {
    /// The deposit's tag, which the answer names.
    pub(super) tag: u32,
    /// The outbox row.
    pub(super) row: i64,
    /// The mailbox it went to.
    pub(super) mailbox: [u8; 32],
}

/// What one relay link has to deposit: outbox rows in order, the one deposit awaiting the
/// relay's answer, and the mailboxes the relay called full, until when.
#[derive(Debug, Default)]
pub(super) struct Pump {
    pending: VecDeque<i64>,
    inflight: Option<InFlight>,
    blocked: HashMap<[u8; 32], Instant>,
}

impl Pump {
    /// Queues `row` last.
    pub(super) fn push(&mut self, row: i64) {
        self.pending.push_back(row);
    }

    /// Queues `row` last unless it is queued already.
    pub(super) fn push_once(&mut self, row: i64) {
        if !self.pending.contains(&row) {
            self.pending.push_back(row);
        }
    }

    /// A new connection: these rows go, in this order, and nothing is in flight.
    pub(super) fn restart_with(&mut self, rows: impl IntoIterator<Item = i64>) {
        self.pending = rows.into_iter().collect();
        self.inflight = None;
    }

    /// The connection is gone, and with it the answer to what was in flight.
    pub(super) fn lost(&mut self) {
        self.inflight = None;
    }

    /// How many rows wait.
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing waits and nothing is in flight.
    pub(super) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.inflight.is_none()
    }

    /// The rows that may go next, in order, when nothing is in flight (blocks that ran
    /// out by `now` are lifted).
    pub(super) fn candidates(&mut self, now: Instant) -> Option<Vec<i64>> {
        if self.inflight.is_some() {
            return None;
        }
        self.blocked.retain(|_, until| *until > now);
        Some(self.pending.iter().copied().collect())
    }

    /// Whether the relay called `mailbox` full and the wait is not over.
    pub(super) fn is_blocked(&self, mailbox: &[u8; 32]) -> bool {
        self.blocked.contains_key(mailbox)
    }

    /// Rows that are gone from the outbox (receipted meanwhile).
    pub(super) fn forget(&mut self, rows: &[i64]) {
        self.pending.retain(|r| !rows.contains(r));
    }

    /// `deposit` leaves.
    pub(super) fn sent(&mut self, deposit: InFlight) {
        self.inflight = Some(deposit);
    }

    /// The relay stored the deposit `tag`: returns its row, done with here.
    pub(super) fn stored(&mut self, tag: u32) -> Option<i64> {
        let f = self.inflight.filter(|f| f.tag == tag)?;
        self.inflight = None;
        self.pending.retain(|&p| p != f.row);
        Some(f.row)
    }

    /// The relay called the deposit `tag`'s mailbox full: nothing goes there before
    /// `until`; the row stays queued where it is.
    pub(super) fn full(&mut self, tag: u32, until: Instant) {
        if let Some(f) = self.inflight.filter(|f| f.tag == tag) {
            self.inflight = None;
            self.blocked.insert(f.mailbox, until);
        }
    }
}

/// The rows a relay stored since the engine started, and when to deposit each again if
/// no receipt comes: after the first wait, then twice as long each time, up to a day.
/// Rows that wait for no receipt (a group text every member's relay stored) are kept
/// instead, stored and never due, until their time.
#[derive(Debug, Default)]
pub(super) struct Resends {
    stored: HashSet<i64>,
    due: HashMap<i64, (Instant, Duration)>,
    /// Kept rows, and when each leaves the outbox (seconds since the Unix epoch).
    kept: HashMap<i64, u64>,
}

impl Resends {
    /// A relay stored `row` at `now`; its first re-send is `first` later (a row stored
    /// again keeps its schedule).
    pub(super) fn stored(&mut self, row: i64, now: Instant, first: Duration) {
        self.stored.insert(row);
        self.due.entry(row).or_insert((now + first, first));
    }

    /// Whether a relay stored `row`.
    pub(super) fn is_stored(&self, row: i64) -> bool {
        self.stored.contains(&row)
    }

    /// Only these rows are still in the outbox.
    pub(super) fn keep_only(&mut self, rows: &HashSet<i64>) {
        self.stored.retain(|r| rows.contains(r));
        self.kept.retain(|r, _| rows.contains(r));
    }

    /// `row` is stored everywhere it goes and waits for no receipt: it stays, never due,
    /// until `until` (a row kept already keeps its first time).
    pub(super) fn keep(&mut self, row: i64, until: u64) {
        self.stored.insert(row);
        self.due.remove(&row);
        self.kept.entry(row).or_insert(until);
    }

    /// Whether `row` is kept.
    pub(super) fn is_kept(&self, row: i64) -> bool {
        self.kept.contains_key(&row)
    }

    /// The kept rows whose time is over at `now` (seconds since the Unix epoch).
    pub(super) fn expired(&self, now: u64) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .kept
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(r, _)| *r)
            .collect();
        v.sort_unstable();
        v
    }

    /// These rows are no longer stored (their relay restarted): they go again as new.
    pub(super) fn unstore(&mut self, rows: &[i64]) {
        self.stored.retain(|r| !rows.contains(r));
    }

    /// The rows whose re-send is due at `now`.
    pub(super) fn due(&self, now: Instant) -> Vec<i64> {
        self.due
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(r, _)| *r)
            .collect()
    }

    /// `row` goes again at `now`: the next time is twice as far.
    pub(super) fn resent(&mut self, row: i64, now: Instant) {
        if let Some((at, wait)) = self.due.get_mut(&row) {
            *wait = (*wait * 2).min(RESEND_MAX);
            *at = now + *wait;
        }
    }

    /// `row` left the outbox: no more re-sends.
    pub(super) fn done(&mut self, row: i64) {
        self.due.remove(&row);
        self.kept.remove(&row);
        self.stored.remove(&row);
    }
}

/// The deposits handed to the hum/2 link: at most one outbox row in flight per contact or
/// group, so each gets this side's envelopes in the order they were sealed (the session
/// retries a deposit that came back by itself, ahead of what was queued after it). A group
/// row is one deposit per destination relay of its members.
#[derive(Debug, Default)]
pub(super) struct RoutePump {
    /// The last deposit id given (each attempt gets a fresh one).
    last: u64,
    /// Deposits not yet stored: outbox row and where it goes.
    in_flight: HashMap<DepositId, (i64, Dest)>,
    /// Stored rows whose re-send is due (no receipt came).
    again: HashSet<i64>,
    /// Kept rows that go again to these relays only (they restarted, and lost them).
    only: HashMap<i64, HashSet<RelayId>>,
}

impl RoutePump {
    /// Whether a deposit for `dest` is in flight.
    pub(super) fn busy(&self, dest: Dest) -> bool {
        self.in_flight.values().any(|(_, d)| *d == dest)
    }

    /// Whether `row` is in flight.
    pub(super) fn has(&self, row: i64) -> bool {
        self.in_flight.values().any(|(r, _)| *r == row)
    }

    /// Whether `row` is due again although it was stored.
    pub(super) fn is_due_again(&self, row: i64) -> bool {
        self.again.contains(&row)
    }

    /// `row` goes again although it was stored.
    pub(super) fn resend(&mut self, row: i64) {
        self.again.insert(row);
    }

    /// Kept `row` goes again, to `relay` only: it restarted and lost its copies.
    pub(super) fn resend_to(&mut self, row: i64, relay: RelayId) {
        self.only.entry(row).or_default().insert(relay);
    }

    /// Kept `row` goes to no relay again after all.
    pub(super) fn forget_only(&mut self, row: i64) {
        self.only.remove(&row);
    }

    /// The relays `row` goes to when it goes again: all its members' (`None`), or only
    /// those that restarted since it was stored.
    pub(super) fn only(&self, row: i64) -> Option<&HashSet<RelayId>> {
        self.only.get(&row)
    }

    /// One deposit of `row`, for `dest`, is handed to the link under the returned id.
    pub(super) fn sent(&mut self, row: i64, dest: Dest) -> DepositId {
        self.last += 1;
        self.again.remove(&row);
        self.only.remove(&row);
        let id = DepositId(self.last);
        self.in_flight.insert(id, (row, dest));
        id
    }

    /// Deposit `id` is over (stored, or it cannot be sent): its row, if it was ours and
    /// none of the row's other deposits is still in flight.
    pub(super) fn done(&mut self, id: DepositId) -> Option<i64> {
        let (row, _) = self.in_flight.remove(&id)?;
        (!self.has(row)).then_some(row)
    }

    /// Whether nothing is in flight.
    pub(super) fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deposit(tag: u32, row: i64, mailbox: u8) -> InFlight {
        InFlight {
            tag,
            row,
            mailbox: [mailbox; 32],
        }
    }

    #[test]
    fn one_row_is_in_flight_and_its_answer_frees_the_next() {
        let now = Instant::now();
        let mut p = Pump::default();
        p.push(1);
        p.push(2);
        assert_eq!(p.candidates(now), Some(vec![1, 2]));
        p.sent(deposit(7, 1, 0));
        assert_eq!(p.candidates(now), None, "one in flight at a time");
        assert_eq!(
            p.stored(8),
            None,
            "an answer to another deposit frees nothing"
        );
        assert_eq!(p.stored(7), Some(1));
        assert_eq!(p.candidates(now), Some(vec![2]));
        assert!(!p.is_idle());
        p.sent(deposit(9, 2, 0));
        p.stored(9);
        assert!(p.is_idle());
    }

    #[test]
    fn a_full_mailbox_is_blocked_until_its_time_and_keeps_its_row() {
        let now = Instant::now();
        let mut p = Pump::default();
        p.push(1);
        p.sent(deposit(1, 1, 5));
        p.full(1, now + Duration::from_secs(1));
        assert_eq!(
            p.candidates(now),
            Some(vec![1]),
            "the row stays, in its place"
        );
        assert!(p.is_blocked(&[5; 32]) && !p.is_blocked(&[6; 32]));
        assert_eq!(p.candidates(now + Duration::from_secs(1)), Some(vec![1]));
        assert!(
            !p.is_blocked(&[5; 32]),
            "the block is lifted when its time is up"
        );
    }

    #[test]
    fn a_lost_connection_forgets_the_answer_not_the_rows() {
        let now = Instant::now();
        let mut p = Pump::default();
        p.push(1);
        p.sent(deposit(1, 1, 0));
        p.lost();
        assert_eq!(
            p.stored(1),
            None,
            "a late answer of a lost connection is ignored"
        );
        assert_eq!(p.candidates(now), Some(vec![1]));
        p.restart_with([3, 1]);
        assert_eq!(p.candidates(now), Some(vec![3, 1]));
        p.push_once(3);
        assert_eq!(p.len(), 2);
        p.forget(&[3]);
        assert_eq!(p.candidates(now), Some(vec![1]));
    }

    #[test]
    fn re_sends_come_after_the_first_wait_then_twice_as_late_up_to_a_day() {
        let t0 = Instant::now();
        let first = Duration::from_secs(600);
        let mut r = Resends::default();
        r.stored(4, t0, first);
        assert!(r.is_stored(4));
        assert!(r.due(t0 + first - Duration::from_secs(1)).is_empty());
        let mut at = t0 + first;
        let mut waits = Vec::new();
        for _ in 0..10 {
            assert_eq!(r.due(at), [4]);
            r.resent(4, at);
            // Stored again: the schedule stays.
            r.stored(4, at, first);
            let next = (0..)
                .map(|m| at + Duration::from_secs(60 * m))
                .find(|t| !r.due(*t).is_empty())
                .unwrap_or(at);
            waits.push((next - at).as_secs() / 60);
            at = next;
        }
        assert_eq!(waits, [20, 40, 80, 160, 320, 640, 1280, 1440, 1440, 1440]);
        r.done(4);
        assert!(r.due(at + RESEND_MAX).is_empty());
        r.unstore(&[4]);
        assert!(!r.is_stored(4));
    }
}

//! Catch-ups owed: epochs of the home relay whose stored items the client asks for, page
//! by page, one epoch at a time, each epoch after its own random delay.
//!
//! A page is the ranks 0 to 7 after one anchor (docs/PROTOCOL.md, hum/2 §H6): no request
//! of a page needs another's answer, so they go in consecutive request slots, and only
//! the next page waits for the answer to the last rank of this one (its `next_after` is
//! the next anchor). Once an answer says that no match follows its rank, the higher ranks
//! are not asked: the relay would answer them with nothing, as it knows.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::route::{CATCH_UP_PAGE, RequestOutcome};

/// Every rank of a page, as a bit set.
const ALL: u8 = u8::MAX >> (8 - CATCH_UP_PAGE);

/// One epoch's catch-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
pub(super) struct Job {
    pub(super) epoch: u32,
    /// The tick from which it may start (session-local: drawn afresh in a new session).
    #[serde(skip)]
    pub(super) due: u64,
    /// The anchor of the page under way: the ranks count matches after this sequence.
    pub(super) after: u64,
    /// Requests answered so far.
    pub(super) asked: u32,
    /// Whether pages may follow (false once the epoch is caught up).
    pub(super) more: bool,
    /// Ranks of the page under way that are answered, or known to find nothing (a page
    /// restored from a saved state starts over: its ranks name the same entries).
    #[serde(skip)]
    done: u8,
    /// Ranks whose request is out (its answer comes two ticks after its slot).
    #[serde(skip)]
    in_flight: u8,
    /// The next page's anchor, once the last rank's answer said more follows.
    #[serde(skip)]
    next: Option<u64>,
}

impl Job {
    fn new(epoch: u32, due: u64) -> Job {
        Job {
            epoch,
            due,
            after: 0,
            asked: 0,
            more: true,
            done: 0,
            in_flight: 0,
            next: None,
        }
    }

    fn started(&self) -> bool {
        self.asked > 0 || self.in_flight != 0 || self.done != 0
    }
}

/// Which request a slot carried: the epoch, the page's anchor and the rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket {
    pub(super) epoch: u32,
    pub(super) after: u64,
    pub(super) rank: u8,
}

/// The queue of catch-ups: the front one is under way, the rest wait in order of due tick.
#[derive(Default)]
pub(super) struct CatchUps {
    jobs: VecDeque<Job>,
}

impl CatchUps {
    /// From saved jobs, each due `due(epoch)` ticks from now.
    pub(super) fn restore(jobs: &[Job], mut due: impl FnMut() -> u64) -> CatchUps {
        let mut c = CatchUps::default();
        for j in jobs {
            let mut job = *j;
            job.in_flight = 0;
            job.done = 0;
            job.next = None;
            job.due = due();
            c.insert(job);
        }
        c
    }

    /// Owes `epoch` from tick `due` on (once per epoch).
    pub(super) fn owe(&mut self, epoch: u32, due: u64) {
        if self.jobs.iter().any(|j| j.epoch == epoch) {
            return;
        }
        self.insert(Job::new(epoch, due));
    }

    fn insert(&mut self, job: Job) {
        // In order of due tick, behind a job already under way.
        let started = usize::from(self.jobs.front().is_some_and(Job::started));
        let at = self
            .jobs
            .iter()
            .skip(started)
            .position(|j| j.due > job.due)
            .map_or(self.jobs.len(), |p| p + started);
        self.jobs.insert(at, job);
    }

    /// The request that may go in the slot of tick `t` (odd ticks only): the lowest rank
    /// of the front job's page neither answered nor out, marked out.
    pub(super) fn start(&mut self, t: u64) -> Option<Ticket> {
        if t.is_multiple_of(2) {
            return None;
        }
        let job = self.jobs.front_mut()?;
        if job.due > t {
            return None;
        }
        let free = ALL & !(job.done | job.in_flight);
        if free == 0 {
            return None;
        }
        let rank = free.trailing_zeros() as u8;
        job.in_flight |= 1 << rank;
        Some(Ticket {
            epoch: job.epoch,
            after: job.after,
            rank,
        })
    }

    /// The front job's page, if `ticket` is of it.
    fn page_of(&mut self, ticket: Ticket) -> Option<&mut Job> {
        self.jobs
            .front_mut()
            .filter(|j| j.epoch == ticket.epoch && j.after == ticket.after)
    }

    /// The request could not leave: its rank goes again later.
    pub(super) fn unstart(&mut self, ticket: Ticket) {
        if let Some(j) = self.page_of(ticket) {
            j.in_flight &= !(1 << ticket.rank);
        }
    }

    /// The answer to the request `ticket` named (`None`: lost, and its rank is asked
    /// again); returns the epoch if it is now caught up (no rank of its last page left to
    /// ask, and no page after it).
    pub(super) fn answered(
        &mut self,
        ticket: Ticket,
        outcome: Option<RequestOutcome>,
    ) -> Option<u32> {
        // An answer of a page already behind us (ranks it no longer needed) is dropped.
        let job = self.page_of(ticket)?;
        let bit = 1 << ticket.rank;
        job.in_flight &= !bit;
        let Some(RequestOutcome::CatchUp {
            next_after, more, ..
        }) = outcome
        else {
            return None;
        };
        job.asked = job.asked.saturating_add(1);
        job.done |= bit;
        if !more {
            // Nothing matches after this rank: the higher ones would find nothing.
            job.done |= ALL & !(bit | (bit - 1));
        } else if ticket.rank == CATCH_UP_PAGE - 1 {
            job.next = Some(next_after);
        }
        if job.done != ALL {
            return None;
        }
        match job.next.take() {
            Some(next) => {
                // The next page, anchored after the last rank of this one.
                job.after = next;
                job.done = 0;
                job.in_flight = 0;
                None
            }
            None => {
                let epoch = job.epoch;
                self.jobs.pop_front();
                Some(epoch)
            }
        }
    }

    /// The epochs owed or under way.
    pub(super) fn epochs(&self) -> impl Iterator<Item = u32> + '_ {
        self.jobs.iter().map(|j| j.epoch)
    }

    /// The jobs, to save.
    pub(super) fn jobs(&self) -> Vec<Job> {
        self.jobs.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(next_after: u64, more: bool) -> Option<RequestOutcome> {
        Some(RequestOutcome::CatchUp {
            found: true,
            next_after,
            more,
        })
    }

    #[test]
    fn a_page_goes_on_consecutive_odd_ticks_and_the_next_waits_for_its_last_rank() {
        let mut c = CatchUps::default();
        c.owe(4, 0);
        // Eight ranks on eight odd ticks, none waiting for an answer.
        let page: Vec<Ticket> = (0..8).filter_map(|i| c.start(2 * i + 1)).collect();
        assert_eq!(page.len(), 8);
        assert!(
            page.iter()
                .enumerate()
                .all(|(i, t)| usize::from(t.rank) == i)
        );
        assert!(page.iter().all(|t| t.after == 0 && t.epoch == 4));
        // Nothing more to ask before the page is answered; even ticks never carry one.
        assert_eq!(c.start(17), None);
        assert_eq!(c.start(18), None);
        // Rank 2 is lost: asked again, the rest of the page answered meanwhile.
        for t in &page {
            let o = (t.rank != 2).then(|| outcome(100 + u64::from(t.rank), true));
            assert_eq!(c.answered(*t, o.flatten()), None);
        }
        let again = c.start(19);
        assert_eq!(again.map(|t| (t.rank, t.after)), Some((2, 0)));
        assert_eq!(c.answered(page[2], outcome(102, true)), None);
        // The next page is anchored at the last rank's next_after.
        let second = c.start(21);
        assert_eq!(second.map(|t| (t.rank, t.after)), Some((0, 107)));
        // Its rank 0 says nothing follows: ranks 1 to 7 are not asked, and a late answer
        // of the page before changes nothing.
        let first = second.map(|t| c.answered(t, outcome(200, false)));
        assert_eq!(first, Some(Some(4)));
        assert_eq!(c.answered(page[5], outcome(105, true)), None);
        assert_eq!(c.start(23), None);
        assert_eq!(c.epochs().count(), 0);
    }

    #[test]
    fn a_restored_page_starts_over_at_its_anchor() {
        let mut c = CatchUps::default();
        c.owe(9, 0);
        let t0 = c.start(1);
        let t1 = c.start(3);
        if let Some(t) = t0 {
            c.answered(t, outcome(11, true));
        }
        let saved = c.jobs();
        let mut r = CatchUps::restore(&saved, || 5);
        assert_eq!(r.start(3), None);
        assert_eq!(r.start(5).map(|t| (t.rank, t.after)), Some((0, 0)));
        assert_eq!(r.start(7).map(|t| t.rank), Some(1));
        // The first session's answers count for nothing in the restored one.
        assert_eq!(t1.and_then(|t| r.answered(t, outcome(12, false))), None);
        assert_eq!(r.epochs().collect::<Vec<_>>(), [9]);
    }
}

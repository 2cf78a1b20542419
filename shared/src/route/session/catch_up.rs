//! Catch-ups owed: epochs of the home relay whose stored items the client asks for, page
//! by page, one epoch at a time, each epoch after its own random delay.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::route::RequestOutcome;

/// Requests per page of an epoch, whatever they find.
pub(super) const PAGE: u32 = 8;

/// One epoch's catch-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
pub(super) struct Job {
    pub(super) epoch: u32,
    /// The tick from which it may start (session-local: drawn afresh in a new session).
    #[serde(skip)]
    pub(super) due: u64,
    /// The sequence after which the next request looks.
    pub(super) after: u64,
    /// Requests answered so far.
    pub(super) asked: u32,
    /// Whether the last answer said more items follow.
    pub(super) more: bool,
    /// A request is out (its answer comes two ticks after its slot).
    #[serde(skip)]
    pub(super) in_flight: bool,
}

impl Job {
    fn new(epoch: u32, due: u64) -> Job {
        Job {
            epoch,
            due,
            after: 0,
            asked: 0,
            more: true,
            in_flight: false,
        }
    }
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
            job.in_flight = false;
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
        let started = usize::from(
            self.jobs
                .front()
                .is_some_and(|j| j.asked > 0 || j.in_flight),
        );
        let at = self
            .jobs
            .iter()
            .skip(started)
            .position(|j| j.due > job.due)
            .map_or(self.jobs.len(), |p| p + started);
        self.jobs.insert(at, job);
    }

    /// The job whose request may go in the slot of tick `t` (odd ticks only), marked in
    /// flight.
    pub(super) fn start(&mut self, t: u64) -> Option<Job> {
        if t.is_multiple_of(2) {
            return None;
        }
        let job = self.jobs.front_mut()?;
        if job.in_flight || job.due > t {
            return None;
        }
        job.in_flight = true;
        Some(*job)
    }

    /// The request could not leave: it goes again later.
    pub(super) fn unstart(&mut self) {
        if let Some(j) = self.jobs.front_mut() {
            j.in_flight = false;
        }
    }

    /// The answer to the front job's request; returns the epoch if it is now caught up
    /// (a whole number of pages asked and nothing more to find).
    pub(super) fn answered(&mut self, outcome: Option<RequestOutcome>) -> Option<u32> {
        let job = self.jobs.front_mut()?;
        job.in_flight = false;
        let Some(RequestOutcome::CatchUp {
            next_after, more, ..
        }) = outcome
        else {
            // The answer was lost: the same page is asked again.
            return None;
        };
        job.after = next_after;
        job.more = more;
        job.asked += 1;
        if job.asked.is_multiple_of(PAGE) && !job.more {
            let epoch = job.epoch;
            self.jobs.pop_front();
            return Some(epoch);
        }
        None
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

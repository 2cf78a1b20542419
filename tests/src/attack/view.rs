//! A log joined to the ground truth: which user each connection is (by its address), which
//! send each deposit is (by its tag seed), which relay's buckets the log's mailbox role holds,
//! and who is in each bucket. The attacks read these joins; only the connection's user is
//! something a relay itself knows (it sees the address), the rest is there to score.

use std::collections::HashMap;

use super::curious_log::{CuriousLog, Deposit};
use super::truth::{Send, Truth};

/// Settings of one run of the attack program.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Permutations per shuffled-label control.
    pub permutations: usize,
    /// Seed of every permutation and tie-break: the same seed gives the same report.
    pub seed: u64,
    /// Central mass of the control interval (0.95).
    pub level: f64,
    /// The reply window in ticks: how long after a delivery a deposit counts as its answer.
    pub window: u64,
    /// The delivery lag in ticks: how long after a slot its item can reach the recipient.
    pub lag: u64,
    /// The mailbox role's own relay id, when the program cannot infer it.
    pub relay: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            permutations: 200,
            seed: 1,
            level: 0.95,
            window: 50,
            lag: 4,
            relay: None,
        }
    }
}

/// The joins between a log and the truth.
#[derive(Debug)]
pub(crate) struct View<'a> {
    pub(crate) log: &'a CuriousLog,
    pub(crate) truth: &'a Truth,
    pub(crate) options: &'a Options,
    /// Connection to user, through the connection's address and the truth's sessions.
    pub(crate) conn_user: HashMap<u64, u32>,
    /// Tag seed to the truth's send.
    pub(crate) send_by_seed: HashMap<u64, usize>,
    /// The relay whose buckets the mailbox records name.
    pub(crate) relay: Option<u64>,
    /// (source, batch tick, position) to the connection, where slot records name it.
    pub(crate) slot_conn: HashMap<(u64, u64, u32), u64>,
    /// (epoch, bucket) to its users, at `relay`.
    pub(crate) members: HashMap<(u32, u16), Vec<u32>>,
    /// Each user's sessions (start, end) in ms.
    sessions: Vec<Vec<(f64, Option<f64>)>>,
}

impl<'a> View<'a> {
    pub(crate) fn new(log: &'a CuriousLog, truth: &'a Truth, options: &'a Options) -> Self {
        let conn_user = conn_users(log, truth);
        let send_by_seed = truth
            .sends
            .iter()
            .enumerate()
            .map(|(i, s)| (s.seed, i))
            .collect();
        let slot_conn = log
            .mailbox_slots
            .iter()
            .filter_map(|s| s.conn.map(|c| ((s.source, s.batch_tick, s.pos), c)))
            .collect();
        let mut v = Self {
            log,
            truth,
            options,
            conn_user,
            send_by_seed,
            relay: None,
            slot_conn,
            members: HashMap::new(),
            sessions: vec![Vec::new(); truth.users.len()],
        };
        for s in &truth.sessions {
            v.sessions[s.user as usize].push((s.start, s.end));
        }
        v.relay = options.relay.or_else(|| v.infer_relay());
        if let Some(r) = v.relay {
            for (&(user, relay, epoch), &bucket) in &truth.buckets {
                if relay == r {
                    v.members.entry((epoch, bucket)).or_default().push(user);
                }
            }
            for m in v.members.values_mut() {
                m.sort_unstable();
            }
        }
        v
    }

    /// The truth's send of a deposit.
    pub(crate) fn send_of(&self, d: &Deposit) -> Option<&'a Send> {
        self.send_by_seed
            .get(&d.seed)
            .map(|&i| &self.truth.sends[i])
    }

    /// The connection a deposit came from, where the log says.
    pub(crate) fn conn_of(&self, d: &Deposit) -> Option<u64> {
        self.slot_conn
            .get(&(d.source, d.batch_tick, d.pos))
            .copied()
    }

    /// A user's bucket at the view's relay in `epoch`.
    pub(crate) fn bucket_of(&self, user: u32, epoch: u32) -> Option<u16> {
        let r = self.relay?;
        self.truth.buckets.get(&(user, r, epoch)).copied()
    }

    /// Whether `user` had a session open at `ms`.
    pub(crate) fn online(&self, user: u32, ms: f64) -> bool {
        self.sessions.get(user as usize).is_some_and(|ss| {
            ss.iter()
                .any(|&(a, b)| a <= ms && b.is_none_or(|e| e >= ms))
        })
    }

    /// The relay whose buckets the deposits name: the one where each 1:1 deposit's copy
    /// bucket is its recipient's bucket, by majority.
    fn infer_relay(&self) -> Option<u64> {
        let relays: Vec<u64> = {
            let mut r: Vec<u64> = self.truth.buckets.keys().map(|k| k.1).collect();
            r.sort_unstable();
            r.dedup();
            r
        };
        if relays.len() == 1 {
            return relays.first().copied();
        }
        let mut votes: HashMap<u64, usize> = HashMap::new();
        for d in self.log.deposits.iter().take(10_000) {
            let Some(to) = self.send_of(d).and_then(|s| s.to_user) else {
                continue;
            };
            for &r in &relays {
                if self.truth.buckets.get(&(to, r, d.epoch)) == Some(&d.copies[0].0) {
                    *votes.entry(r).or_default() += 1;
                }
            }
        }
        if let Some((&r, _)) = votes
            .iter()
            .max_by_key(|(r, n)| (**n, std::cmp::Reverse(**r)))
        {
            return Some(r);
        }
        // An entry-only log: the home relay its clients name most.
        let mut homes: HashMap<u64, usize> = HashMap::new();
        for s in &self.log.entry_slots {
            *homes.entry(s.home).or_default() += 1;
        }
        homes
            .into_iter()
            .max_by_key(|(r, n)| (*n, std::cmp::Reverse(*r)))
            .map(|(r, _)| r)
    }
}

/// Each connection's user: the session whose client address is the connection's peer and
/// that was open when the connection opened (within a few seconds).
fn conn_users(log: &CuriousLog, truth: &Truth) -> HashMap<u64, u32> {
    const SLACK_MS: f64 = 5_000.0;
    let mut by_local: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in truth.sessions.iter().enumerate() {
        by_local.entry(s.local.as_str()).or_default().push(i);
    }
    let mut out = HashMap::new();
    for c in &log.connects {
        let Some(candidates) = by_local.get(c.peer.as_str()) else {
            continue;
        };
        let fits = |i: &&usize| {
            let s = &truth.sessions[**i];
            s.start <= c.ms + SLACK_MS && s.end.is_none_or(|e| e + SLACK_MS >= c.ms)
        };
        let pick = candidates.iter().find(fits).or_else(|| candidates.first());
        if let Some(&i) = pick {
            out.insert(c.conn, truth.sessions[i].user);
        }
    }
    out
}

//! Attack 2, recovering contact edges: a score for every pair of users the role can see,
//! and its AUC against the true contact graph.
//!
//! - A single relay sees it directly: the deposit's connection, and the connections its
//!   copy's item went to.
//! - An entry relay can only correlate in time: a slot from one connection, then an item to
//!   another within the delivery lag, counting only slots and items whose bytes it had not
//!   seen before (anything repeated is a dummy to it). Each ordered pair's count is compared
//!   with what the second connection's item rate alone predicts, as a z-score; a pair's
//!   score is the sum of both directions.
//!
//! The control relabels the contact graph's users at random (the graph's shape and every
//! user's number of contacts stay the same).

use std::collections::{HashMap, HashSet};

use super::control::Control;
use super::report::{Row, Skipped};
use super::rng::Rng;
use super::stats::Ranked;
use super::view::View;

/// Scores of every unordered pair of a set of users.
pub(crate) struct PairScores {
    /// The users, by dense index.
    pub(crate) users: Vec<u32>,
    /// Row-major n × n, symmetric.
    pub(crate) score: Vec<f64>,
}

impl PairScores {
    fn new(users: Vec<u32>) -> Self {
        let n = users.len();
        Self {
            users,
            score: vec![0.0; n * n],
        }
    }

    fn add(&mut self, a: usize, b: usize, s: f64) {
        let n = self.users.len();
        self.score[a * n + b] += s;
        if a != b {
            self.score[b * n + a] += s;
        }
    }
}

pub(crate) fn edges(v: &View<'_>, role: &str) -> Result<Row, Skipped> {
    let skip = |reason: &str| Skipped {
        attack: "edges".into(),
        role: role.into(),
        reason: reason.into(),
    };
    let (pairs, method) = if v.log.knows_connections() {
        (
            direct(v),
            "the deposit's connection and the connections its item reached",
        )
    } else if !v.log.entry_slots.is_empty() {
        (
            timing(v),
            "new-bytes slot of one connection, then new-bytes item of another within the lag",
        )
    } else {
        return Err(skip("the log has neither connections nor entry slots"));
    };
    let n = pairs.users.len();
    if n < 3 {
        return Err(skip("fewer than three users can be named"));
    }
    let index: HashMap<u32, usize> = pairs
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (*u, i))
        .collect();
    let edges: Vec<(usize, usize)> = v
        .truth
        .contacts
        .iter()
        .filter_map(|(a, b)| Some((*index.get(a)?, *index.get(b)?)))
        .collect();
    if edges.is_empty() {
        return Err(skip("no contact pair among the users the role can name"));
    }
    // The upper triangle, ranked once.
    let pair_id = |a: usize, b: usize| {
        let (a, b) = (a.min(b), a.max(b));
        a * n - a * (a + 1) / 2 + (b - a - 1)
    };
    let mut flat = Vec::with_capacity(n * (n - 1) / 2);
    for a in 0..n {
        for b in a + 1..n {
            flat.push(pairs.score[a * n + b]);
        }
    }
    let ranked = Ranked::new(&flat);
    let real: HashSet<usize> = edges.iter().map(|&(a, b)| pair_id(a, b)).collect();
    let score = ranked.auc_of(real.iter().copied()).unwrap_or(0.5);
    let o = v.options;
    let control = Control::run(o.permutations, o.level, &Rng::new(o.seed ^ 0xed9e), |rng| {
        let p = rng.permutation(n);
        let ids: HashSet<usize> = edges.iter().map(|&(a, b)| pair_id(p[a], p[b])).collect();
        ranked.auc_of(ids)
    });
    let mut row = Row::new("edges", role, method, score, control, flat.len());
    row.positives = Some(real.len());
    Ok(row)
}

/// Sender to recipients, as a single relay sees them.
fn direct(v: &View<'_>) -> PairScores {
    let mut users: Vec<u32> = v.conn_user.values().copied().collect();
    users.sort_unstable();
    users.dedup();
    let index: HashMap<u32, usize> = users.iter().enumerate().map(|(i, u)| (*u, i)).collect();
    let mut out = PairScores::new(users);
    let mut item_conns: HashMap<u64, Vec<u64>> = HashMap::new();
    for it in &v.log.items {
        item_conns.entry(it.item).or_default().push(it.conn);
    }
    let mut tag_items: HashMap<u64, Vec<u64>> = HashMap::new();
    for s in &v.log.streams {
        if let Some(t) = s.tag {
            tag_items.entry(t).or_default().push(s.item);
        }
    }
    for d in &v.log.deposits {
        let Some(sender) = v
            .conn_of(d)
            .and_then(|c| v.conn_user.get(&c))
            .and_then(|u| index.get(u))
        else {
            continue;
        };
        let mut reached: Vec<usize> = Vec::new();
        for (_, tag) in &d.copies {
            for item in tag_items.get(tag).into_iter().flatten() {
                for c in item_conns.get(item).into_iter().flatten() {
                    if let Some(r) = v.conn_user.get(c).and_then(|u| index.get(u)) {
                        reached.push(*r);
                    }
                }
            }
        }
        reached.sort_unstable();
        reached.dedup();
        for r in reached {
            if r != *sender {
                out.add(*sender, r, 1.0);
            }
        }
    }
    out
}

/// Slot-then-item timing at the entry relay.
fn timing(v: &View<'_>) -> PairScores {
    let lag = v.options.lag.max(1);
    let mut users: Vec<u32> = v.conn_user.values().copied().collect();
    users.sort_unstable();
    users.dedup();
    let index: HashMap<u32, usize> = users.iter().enumerate().map(|(i, u)| (*u, i)).collect();
    let n = users.len();
    let t0 = v.log.entry_slots.iter().map(|s| s.tick).min().unwrap_or(0);
    let t1 = v.log.entry_slots.iter().map(|s| s.tick).max().unwrap_or(0);
    let bins = ((t1 - t0) / lag + 2) as usize;
    let mut out_ev = vec![0f32; n * bins];
    let mut in_ev = vec![0f32; n * bins];
    let mut on = vec![0f32; n * bins];
    let mut seen: HashSet<u64> = HashSet::new();
    for s in &v.log.entry_slots {
        let Some(&u) = v.conn_user.get(&s.conn).and_then(|u| index.get(u)) else {
            continue;
        };
        let k = ((s.tick - t0) / lag) as usize;
        on[u * bins + k] += 1.0;
        if seen.insert(s.slot) {
            out_ev[u * bins + k] += 1.0;
        }
    }
    let mut seen: HashSet<u64> = HashSet::new();
    for it in &v.log.items {
        let Some(&u) = v.conn_user.get(&it.conn).and_then(|u| index.get(u)) else {
            continue;
        };
        if it.tick < t0 {
            continue;
        }
        let k = (((it.tick - t0) / lag) as usize).min(bins - 1);
        if seen.insert(it.item) {
            in_ev[u * bins + k] += 1.0;
        }
    }
    let rate: Vec<f64> = (0..n)
        .map(|u| {
            let i: f64 = in_ev[u * bins..(u + 1) * bins]
                .iter()
                .map(|&x| f64::from(x))
                .sum();
            let o: f64 = on[u * bins..(u + 1) * bins]
                .iter()
                .map(|&x| f64::from(x))
                .sum();
            if o > 0.0 { i / o } else { 0.0 }
        })
        .collect();
    let mut scores = PairScores::new(users);
    for a in 0..n {
        let nz: Vec<(usize, f64)> = (0..bins - 1)
            .filter_map(|k| {
                let x = out_ev[a * bins + k];
                (x > 0.0).then_some((k, f64::from(x)))
            })
            .collect();
        if nz.is_empty() {
            continue;
        }
        for b in 0..n {
            if a == b || rate[b] == 0.0 {
                continue;
            }
            let (mut obs, mut exp) = (0.0, 0.0);
            for &(k, x) in &nz {
                obs += x * f64::from(in_ev[b * bins + k] + in_ev[b * bins + k + 1]);
                exp += x * rate[b] * f64::from(on[b * bins + k] + on[b * bins + k + 1]);
            }
            scores.add(a, b, (obs - exp) / (exp + 1.0).sqrt());
        }
    }
    scores
}

//! Attack 1, naming the sender of each deposit (top-1 accuracy).
//!
//! A relay that knows the deposit's connection (a single relay: the slot record names it)
//! names that connection's user. Otherwise it links the deposit to others through what it
//! can see of it, in this order: the same tag seed, the same payload bytes, the same
//! position in the same source's batch; and names the sender that most of the linked
//! deposits had, leaving this one out. That is the strongest form of the attack: it is
//! told the sender of every other deposit. With nothing to link, it names no one.

use std::collections::HashMap;

use super::control::Control;
use super::report::{Row, Skipped};
use super::rng::Rng;
use super::stats::shuffle_within;
use super::view::View;

/// How one deposit gets its guess.
#[derive(Debug, Clone, Copy)]
enum Decider {
    /// The connection's user.
    Direct(u32),
    /// Leave-one-out majority of this group of linked deposits.
    Group(usize),
    /// Nothing links it.
    None,
}

pub(crate) fn sender(v: &View<'_>, role: &str) -> Result<Row, Skipped> {
    let mut labels: Vec<u32> = Vec::new();
    let mut strata: Vec<u64> = Vec::new();
    let mut direct: Vec<Option<u32>> = Vec::new();
    let mut handles: [Vec<u64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut chance = 0.0;
    let single = v.log.knows_connections();
    for d in &v.log.deposits {
        let Some(send) = v.send_of(d) else { continue };
        labels.push(send.user);
        strata.push(d.source);
        direct.push(v.conn_of(d).and_then(|c| v.conn_user.get(&c).copied()));
        handles[0].push(d.seed);
        handles[1].push(d.payload);
        handles[2].push(d.source.rotate_left(32) ^ u64::from(d.pos));
        // The users the role cannot tell apart: everyone behind the deposit's source who
        // was online (a single relay: everyone online).
        let candidates = v
            .truth
            .users
            .iter()
            .enumerate()
            .filter(|(_, u)| {
                single
                    || if d.forwarded {
                        u.home == Some(d.source)
                    } else {
                        u.entry == Some(d.source)
                    }
            })
            .filter(|(i, _)| v.online(*i as u32, d.ms))
            .count()
            .max(1);
        chance += 1.0 / candidates as f64;
    }
    let n = labels.len();
    if n == 0 {
        return Err(Skipped {
            attack: "sender".into(),
            role: role.into(),
            reason: "no deposit joins a send of the ground truth".into(),
        });
    }
    // Which group decides each deposit: the first handle that links it to another.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut decider = vec![Decider::None; n];
    for (i, d) in direct.iter().enumerate() {
        if let Some(u) = d {
            decider[i] = Decider::Direct(*u);
        }
    }
    for h in &handles {
        let mut by: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, k) in h.iter().enumerate() {
            by.entry(*k).or_default().push(i);
        }
        let mut keys: Vec<u64> = by.keys().copied().collect();
        keys.sort_unstable();
        for k in keys {
            let members = &by[&k];
            if members.len() < 2 {
                continue;
            }
            let g = groups.len();
            let mut used = false;
            for &i in members {
                if matches!(decider[i], Decider::None) {
                    decider[i] = Decider::Group(g);
                    used = true;
                }
            }
            if used {
                groups.push(members.clone());
            }
        }
    }
    let accuracy = |labels: &[u32]| correct(labels, &decider, &groups) as f64 / n as f64;
    let score = accuracy(&labels);
    let o = v.options;
    let control = Control::run(o.permutations, o.level, &Rng::new(o.seed ^ 0x5e4d), |rng| {
        let mut l = labels.clone();
        shuffle_within(&mut l, &strata, rng);
        Some(accuracy(&l))
    });
    let method = if direct.iter().any(Option::is_some) {
        "the deposit's connection"
    } else {
        "links by equal seed, payload or batch position, named by the others' senders"
    };
    let mut row = Row::new("sender", role, method, score, control, n);
    row.chance = Some(chance / n as f64);
    Ok(row)
}

/// How many deposits the attack names right under `labels`.
fn correct(labels: &[u32], decider: &[Decider], groups: &[Vec<usize>]) -> usize {
    // Per group: each label's count, then the leave-one-out majority for each member it
    // decides (ties to the smaller user).
    let mut guesses: Vec<Option<u32>> = vec![None; labels.len()];
    for (g, members) in groups.iter().enumerate() {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for &i in members {
            *counts.entry(labels[i]).or_default() += 1;
        }
        let mut ranked: Vec<(u32, u32)> = counts.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for &i in members {
            if !matches!(decider[i], Decider::Group(x) if x == g) {
                continue;
            }
            let own = labels[i];
            guesses[i] = loo_majority(&ranked, own);
        }
    }
    decider
        .iter()
        .zip(labels)
        .zip(guesses)
        .filter(|((d, l), g)| match d {
            Decider::Direct(u) => u == *l,
            Decider::Group(_) => *g == Some(**l),
            Decider::None => false,
        })
        .count()
}

/// The most frequent label once one occurrence of `own` is removed; `ranked` is sorted by
/// count (descending), then label.
fn loo_majority(ranked: &[(u32, u32)], own: u32) -> Option<u32> {
    let mut best: Option<(u32, u32)> = None;
    for &(u, c) in ranked.iter().take(3) {
        let c = if u == own { c - 1 } else { c };
        if c == 0 {
            continue;
        }
        best = match best {
            None => Some((u, c)),
            Some((bu, bc)) if c > bc || (c == bc && u < bu) => Some((u, c)),
            b => b,
        };
    }
    best.map(|(u, _)| u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_one_out_majority_leaves_the_deposit_itself_out() {
        // Counts: user 7 three times, user 2 twice, user 9 once.
        let ranked = [(7, 3), (2, 2), (9, 1)];
        assert_eq!(loo_majority(&ranked, 2), Some(7));
        assert_eq!(loo_majority(&ranked, 9), Some(7));
        // Four of 7's: three are left, still the most.
        assert_eq!(loo_majority(&[(7, 4), (2, 2)], 7), Some(7));
        // 7 and 2 tie at two once one of 7's is left out: the smaller user wins.
        let ranked = [(7, 3), (2, 2)];
        assert_eq!(loo_majority(&ranked, 7), Some(2));
        // A group of two different senders names the other one, wrongly.
        let ranked = [(1, 1), (4, 1)];
        assert_eq!(loo_majority(&ranked, 1), Some(4));
        assert_eq!(loo_majority(&[(5, 1)], 5), None);
    }

    #[test]
    fn correct_counts_direct_and_linked_guesses() {
        // Deposits 0..3 linked in one group (senders 1, 1, 1, 2), deposit 4 direct, 5 alone.
        let labels = [1, 1, 1, 2, 3, 4];
        let decider = [
            Decider::Group(0),
            Decider::Group(0),
            Decider::Group(0),
            Decider::Group(0),
            Decider::Direct(3),
            Decider::None,
        ];
        let groups = vec![vec![0, 1, 2, 3]];
        // The three 1s are named right, the 2 is named 1, the direct one is right.
        assert_eq!(correct(&labels, &decider, &groups), 4);
    }
}

//! Attack 2b, the bucket-pair correlation within an epoch: a deposit into bucket b is
//! delivered, and within the reply window a deposit goes into bucket c. Scored over every
//! pair of the relay's buckets in each epoch; truth: the pair holds a contact pair that
//! exchanged messages in that epoch. The design accepts this leak; the row says how many
//! exchanges per pair it takes to beat chance.
//!
//! A single relay knows each deposit's sender bucket directly (the connection's bucket).

use std::collections::HashMap;

use super::activity::Activity;
use super::control::Control;
use super::report::{CurvePoint, Row, Skipped};
use super::rng::Rng;
use super::stats::{Ranked, auc_subset};
use super::truth::SendKind;
use super::view::View;

/// Bins of exchanges per pair for the curve: (min, max).
const BINS: [(u32, u32); 7] = [
    (1, 1),
    (2, 2),
    (3, 4),
    (5, 8),
    (9, 16),
    (17, 32),
    (33, u32::MAX),
];

pub(crate) fn bucket_pairs(v: &View<'_>, role: &str) -> Result<Row, Skipped> {
    let skip = |reason: &str| Skipped {
        attack: "bucket-pairs".into(),
        role: role.into(),
        reason: reason.into(),
    };
    let Some(relay) = v.relay else {
        return Err(skip(
            "cannot tell which relay's buckets the log names (give --relay)",
        ));
    };
    let buckets = bucket_count(v);
    if buckets < 3 {
        return Err(skip("fewer than three buckets"));
    }
    let b = usize::from(buckets);
    let mut epochs: Vec<u32> = v.log.deposits.iter().map(|d| d.epoch).collect();
    epochs.sort_unstable();
    epochs.dedup();
    // Exchanges per (epoch, bucket pair), from the truth.
    let mut k: HashMap<u32, Vec<u32>> = epochs.iter().map(|&e| (e, vec![0; b * b])).collect();
    for d in &v.log.deposits {
        let Some(s) = v.send_of(d) else { continue };
        let Some(to) = s.to_user else { continue };
        if s.kind == SendKind::Loop || !v.truth.is_contact(s.user, to) {
            continue;
        }
        let (Some(x), Some(y)) = (v.bucket_of(s.user, d.epoch), v.bucket_of(to, d.epoch)) else {
            continue;
        };
        if x == y || x >= buckets || y >= buckets {
            continue;
        }
        if let Some(m) = k.get_mut(&d.epoch) {
            let (x, y) = (usize::from(x.min(y)), usize::from(x.max(y)));
            m[x * b + y] += 1;
        }
    }
    let (method, scores_by_epoch) = if v.log.knows_connections() {
        (
            "the sender's bucket (by connection) and the copy's bucket",
            direct(v, relay, buckets, &epochs),
        )
    } else {
        let act = Activity::new(v.log);
        let z: Vec<Vec<f64>> = epochs
            .iter()
            .map(|&e| act.reply_z(e, buckets, v.options.window))
            .collect();
        (
            "delivery into one bucket, then a deposit into another within the window",
            z,
        )
    };
    // Items: (epoch index, x, y) for x < y.
    let mut items: Vec<(usize, usize, usize)> = Vec::new();
    let mut scores: Vec<f64> = Vec::new();
    for (ei, z) in scores_by_epoch.iter().enumerate() {
        for x in 0..b {
            for y in x + 1..b {
                items.push((ei, x, y));
                scores.push(z[x * b + y] + z[y * b + x]);
            }
        }
    }
    let exchanges = |perm: Option<&[Vec<usize>]>| -> Vec<u32> {
        items
            .iter()
            .map(|&(ei, x, y)| {
                let (x, y) = match perm {
                    Some(p) => (p[ei][x], p[ei][y]),
                    None => (x, y),
                };
                k[&epochs[ei]][x.min(y) * b + x.max(y)]
            })
            .collect()
    };
    let real = exchanges(None);
    let positives = real.iter().filter(|&&x| x > 0).count();
    if positives == 0 {
        return Err(skip(
            "no pair of this relay's buckets held a contact pair that exchanged messages",
        ));
    }
    let ranked = Ranked::new(&scores);
    let score = ranked.auc(real.iter().map(|&x| x > 0)).unwrap_or(0.5);
    let o = v.options;
    let rng = Rng::new(o.seed ^ 0xb0c7);
    let perm =
        |rng: &mut Rng| -> Vec<Vec<usize>> { epochs.iter().map(|_| rng.permutation(b)).collect() };
    let control = Control::run(o.permutations, o.level, &rng, |r| {
        let p = perm(r);
        ranked.auc(exchanges(Some(&p)).iter().map(|&x| x > 0))
    });
    let mut row = Row::new("bucket-pairs", role, method, score, control, items.len());
    row.positives = Some(positives);
    row.by_design = true;
    // The curve: each bin's positives against the pairs with no exchange.
    let bin_auc = |ex: &[u32], (lo, hi): (u32, u32)| -> Option<f64> {
        let labels: Vec<Option<bool>> = ex
            .iter()
            .map(|&x| {
                if x == 0 {
                    Some(false)
                } else {
                    (lo..=hi).contains(&x).then_some(true)
                }
            })
            .collect();
        auc_subset(&scores, &labels)
    };
    for bin in BINS {
        let n = real
            .iter()
            .filter(|&&x| (bin.0..=bin.1).contains(&x))
            .count();
        if n == 0 {
            continue;
        }
        let Some(s) = bin_auc(&real, bin) else {
            continue;
        };
        let runs = o.permutations.min(100);
        let c = Control::run(runs, o.level, &rng.fork(u64::from(bin.0)), |r| {
            let p = perm(r);
            bin_auc(&exchanges(Some(&p)), bin)
        });
        if row.exchanges_needed.is_none() && s > c.hi {
            row.exchanges_needed = Some(bin.0);
        }
        row.curve.push(CurvePoint {
            min: bin.0,
            max: bin.1,
            n,
            score: s,
            control: c,
        });
    }
    Ok(row)
}

/// The number of buckets: one more than the largest seen in the log or the truth.
pub(crate) fn bucket_count(v: &View<'_>) -> u16 {
    let from_log = v
        .log
        .streams
        .iter()
        .map(|s| s.bucket)
        .chain(
            v.log
                .deposits
                .iter()
                .flat_map(|d| d.copies.iter().map(|c| c.0)),
        )
        .chain(v.log.catchups.iter().map(|c| c.bucket))
        .max();
    let from_truth = v.members.keys().map(|k| k.1).max();
    from_log.max(from_truth).map_or(0, |m| m.saturating_add(1))
}

/// Sender bucket to copy bucket, counted per epoch (a single relay).
fn direct(v: &View<'_>, relay: u64, buckets: u16, epochs: &[u32]) -> Vec<Vec<f64>> {
    let b = usize::from(buckets);
    let mut conn_bucket: HashMap<(u64, u32), u16> = HashMap::new();
    for s in &v.log.entry_slots {
        if s.home == relay {
            conn_bucket.insert((s.conn, s.epoch), s.bucket);
        }
    }
    let index: HashMap<u32, usize> = epochs.iter().enumerate().map(|(i, e)| (*e, i)).collect();
    let mut out = vec![vec![0.0; b * b]; epochs.len()];
    for d in &v.log.deposits {
        if d.copies.len() != 1 {
            continue;
        }
        let Some(c) = v.conn_of(d) else { continue };
        let (Some(&from), Some(&ei)) = (conn_bucket.get(&(c, d.epoch)), index.get(&d.epoch)) else {
            continue;
        };
        let to = d.copies[0].0;
        if from != to && from < buckets && to < buckets {
            out[ei][usize::from(from) * b + usize::from(to)] += 1.0;
        }
    }
    out
}

//! Attack 3, linking a user across an epoch change: for each pair (bucket x of epoch e,
//! bucket y of epoch e + 1) of the relay's buckets, a score; truth: some user was in x and
//! then in y. One row per kind of evidence, each an AUC over the pairs that evidence can
//! speak of (buckets it saw on each side):
//!
//! - co-presence: a single relay sees each connection's bucket in both epochs; a mailbox
//!   relay sees catch-up requests, and links a request for (x, e) to one for (y, e + 1)
//!   from the same source close in time (weight exp(−Δ/window)) or at the same batch
//!   position (weight 1/(requests at that position on each side));
//! - digests: any digest (seed, payload, tag, item, detection key, found tag) seen with a
//!   bucket of e and a bucket of e + 1 links them (weight 1/(buckets on each side));
//! - groups: a group deposit's bucket set in e against one in e + 1, similar when their
//!   sizes differ by at most one (1 + their Jaccard overlap), spread over the sets' bucket
//!   pairs, a bucket number present in both sets counting five times (stable ids);
//! - straddle: chats across the boundary: pairs of buckets that answer each other (at
//!   least twice each way, above chance) in the last and first five windows around it,
//!   chained through the deposits that cross it (a delivery into x in e answered into y in
//!   e + 1 links x's partner in e to y, and x to y's partner in e + 1).
//!
//! The control permutes the buckets of e + 1.

use std::collections::{HashMap, HashSet};

use super::activity::Activity;
use super::control::Control;
use super::report::{Row, Skipped};
use super::rng::Rng;
use super::stats::Ranked;
use super::view::View;

/// One epoch change's candidate pairs and their scores.
#[derive(Debug, Default)]
struct Grid {
    epoch: u32,
    xs: Vec<u16>,
    ys: Vec<u16>,
    score: HashMap<(u16, u16), f64>,
}

impl Grid {
    fn new(
        epoch: u32,
        xs: impl IntoIterator<Item = u16>,
        ys: impl IntoIterator<Item = u16>,
    ) -> Self {
        let sorted = |it: &mut dyn Iterator<Item = u16>| {
            let mut v: Vec<u16> = it.collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        Self {
            epoch,
            xs: sorted(&mut xs.into_iter()),
            ys: sorted(&mut ys.into_iter()),
            score: HashMap::new(),
        }
    }

    fn add(&mut self, x: u16, y: u16, s: f64) {
        *self.score.entry((x, y)).or_default() += s;
    }
}

/// The four rows (or why each did not run).
pub(crate) fn linking(v: &View<'_>, role: &str) -> Vec<Result<Row, Skipped>> {
    let names = [
        "link-copresence",
        "link-digests",
        "link-groups",
        "link-straddle",
    ];
    let skip_all = |reason: &str| Skipped::all(&names, role, reason);
    let Some(relay) = v.relay else {
        return skip_all("cannot tell which relay's buckets the log names (give --relay)");
    };
    let changes = epoch_changes(v);
    if changes.is_empty() {
        return skip_all("the log spans no epoch change");
    }
    // Truth: (epoch, x, y) where some user moved from x in e to y in e + 1.
    let mut moved: HashSet<(u32, u16, u16)> = HashSet::new();
    for (&(u, r, e), &x) in &v.truth.buckets {
        if r == relay
            && let Some(&y) = v.truth.buckets.get(&(u, r, e + 1))
        {
            moved.insert((e, x, y));
        }
    }
    let act = Activity::new(v.log);
    let (copresence_method, copresence) = if v.log.knows_connections() {
        (
            "each connection's bucket in both epochs",
            by_connection(v, relay, &changes),
        )
    } else {
        (
            "catch-up requests close in time or at the same batch position",
            by_catchup(v, &changes),
        )
    };
    let features = [
        (copresence_method, copresence),
        ("a digest seen in both epochs", by_digest(v, &changes)),
        (
            "group bucket sets of similar size and overlap",
            by_group(v, &changes),
        ),
        (
            "delivery-to-deposit chains across the boundary",
            by_straddle(v, &act, &changes),
        ),
    ];
    names
        .iter()
        .zip(features)
        .map(|(name, (method, grids))| grade(v, name, role, method, &grids, &moved))
        .collect()
}

/// The epochs e of the log's records for which e + 1 is there too.
fn epoch_changes(v: &View<'_>) -> Vec<u32> {
    let mut epochs: Vec<u32> = v
        .log
        .deposits
        .iter()
        .map(|d| d.epoch)
        .chain(v.log.streams.iter().map(|s| s.epoch))
        .chain(v.log.catchups.iter().map(|c| c.epoch))
        .chain(v.log.entry_slots.iter().map(|s| s.epoch))
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    epochs
        .windows(2)
        .filter(|w| w[1] == w[0] + 1)
        .map(|w| w[0])
        .collect()
}

fn grade(
    v: &View<'_>,
    name: &str,
    role: &str,
    method: &str,
    grids: &[Grid],
    moved: &HashSet<(u32, u16, u16)>,
) -> Result<Row, Skipped> {
    let mut items: Vec<(usize, usize, usize)> = Vec::new();
    let mut scores = Vec::new();
    for (gi, g) in grids.iter().enumerate() {
        for (xi, x) in g.xs.iter().enumerate() {
            for (yi, y) in g.ys.iter().enumerate() {
                items.push((gi, xi, yi));
                scores.push(g.score.get(&(*x, *y)).copied().unwrap_or(0.0));
            }
        }
    }
    let labels = |perm: Option<&[Vec<usize>]>| -> Vec<bool> {
        items
            .iter()
            .map(|&(gi, xi, yi)| {
                let g = &grids[gi];
                let yi = perm.map_or(yi, |p| p[gi][yi]);
                moved.contains(&(g.epoch, g.xs[xi], g.ys[yi]))
            })
            .collect()
    };
    let real = labels(None);
    let positives = real.iter().filter(|&&l| l).count();
    if positives == 0 || positives == real.len() {
        return Err(Skipped {
            attack: name.into(),
            role: role.into(),
            reason: if items.is_empty() {
                "no evidence of this kind on both sides of an epoch change".into()
            } else {
                "the candidate pairs are all of one class".into()
            },
        });
    }
    let ranked = Ranked::new(&scores);
    let score = ranked.auc(real.iter().copied()).unwrap_or(0.5);
    let o = v.options;
    let control = Control::run(o.permutations, o.level, &Rng::new(o.seed ^ 0x11c4), |r| {
        let p: Vec<Vec<usize>> = grids.iter().map(|g| r.permutation(g.ys.len())).collect();
        ranked.auc(labels(Some(&p)))
    });
    let mut row = Row::new(name, role, method, score, control, items.len());
    row.positives = Some(positives);
    Ok(row)
}

/// A single relay: the buckets each user's connections reported in e and in e + 1.
fn by_connection(v: &View<'_>, relay: u64, changes: &[u32]) -> Vec<Grid> {
    let mut seen: HashSet<(u32, u32, u16)> = HashSet::new();
    for s in &v.log.entry_slots {
        if s.home == relay
            && let Some(&u) = v.conn_user.get(&s.conn)
        {
            seen.insert((u, s.epoch, s.bucket));
        }
    }
    let mut per_user: HashMap<(u32, u32), Vec<u16>> = HashMap::new();
    for &(u, e, b) in &seen {
        per_user.entry((u, e)).or_default().push(b);
    }
    changes
        .iter()
        .map(|&e| {
            let side = |ep: u32| seen.iter().filter(move |s| s.1 == ep).map(|s| s.2);
            let mut g = Grid::new(e, side(e), side(e + 1));
            for (&(u, ep), xs) in &per_user {
                if ep != e {
                    continue;
                }
                for y in per_user.get(&(u, e + 1)).into_iter().flatten() {
                    for x in xs {
                        g.add(*x, *y, 1.0);
                    }
                }
            }
            g
        })
        .collect()
}

/// A mailbox relay: catch-up requests for e and for e + 1 from the same source.
fn by_catchup(v: &View<'_>, changes: &[u32]) -> Vec<Grid> {
    let w = v.options.window.max(1) as f64;
    changes
        .iter()
        .map(|&e| {
            let side = |ep: u32| v.log.catchups.iter().filter(move |c| c.epoch == ep);
            let mut g = Grid::new(e, side(e).map(|c| c.bucket), side(e + 1).map(|c| c.bucket));
            // Close in time, per source.
            let mut later: HashMap<u64, Vec<(u64, u16)>> = HashMap::new();
            for c in side(e + 1) {
                later
                    .entry(c.source)
                    .or_default()
                    .push((c.batch_tick, c.bucket));
            }
            for l in later.values_mut() {
                l.sort_unstable();
            }
            for a in side(e) {
                let Some(l) = later.get(&a.source) else {
                    continue;
                };
                let span = (5.0 * w) as u64;
                let from = l.partition_point(|x| x.0 + span < a.batch_tick);
                for &(t, y) in &l[from..] {
                    if t > a.batch_tick + span {
                        break;
                    }
                    g.add(a.bucket, y, (-(t.abs_diff(a.batch_tick) as f64) / w).exp());
                }
            }
            // The same batch position.
            let mut at: HashMap<(u64, u32), (Vec<u16>, Vec<u16>)> = HashMap::new();
            for c in side(e) {
                at.entry((c.source, c.pos)).or_default().0.push(c.bucket);
            }
            for c in side(e + 1) {
                at.entry((c.source, c.pos)).or_default().1.push(c.bucket);
            }
            for (xs, ys) in at.values() {
                if xs.is_empty() || ys.is_empty() {
                    continue;
                }
                let wgt = 1.0 / (xs.len() * ys.len()) as f64;
                for x in xs {
                    for y in ys {
                        g.add(*x, *y, wgt);
                    }
                }
            }
            g
        })
        .collect()
}

/// Any digest seen with a bucket in e and one in e + 1.
fn by_digest(v: &View<'_>, changes: &[u32]) -> Vec<Grid> {
    let mut at: HashMap<u64, Vec<(u32, u16)>> = HashMap::new();
    let mut put = |d: u64, e: u32, b: u16| at.entry(d).or_default().push((e, b));
    for d in &v.log.deposits {
        for &(b, tag) in &d.copies {
            put(d.seed, d.epoch, b);
            put(d.payload, d.epoch, b);
            put(tag, d.epoch, b);
        }
    }
    for s in &v.log.streams {
        if let Some(t) = s.tag {
            put(t, s.epoch, s.bucket);
            put(s.item, s.epoch, s.bucket);
        }
    }
    for c in &v.log.catchups {
        put(c.detect, c.epoch, c.bucket);
        if let Some(f) = c.found {
            put(f, c.epoch, c.bucket);
        }
    }
    for d in &v.log.deletes {
        put(d.tag, d.epoch, d.bucket);
    }
    let mut sides: HashMap<u32, HashSet<u16>> = HashMap::new();
    for places in at.values_mut() {
        places.sort_unstable();
        places.dedup();
        for &(e, b) in places.iter() {
            sides.entry(e).or_default().insert(b);
        }
    }
    let mut grids: Vec<Grid> = changes
        .iter()
        .map(|&e| {
            let side = |ep: u32| sides.get(&ep).into_iter().flatten().copied();
            Grid::new(e, side(e), side(e + 1))
        })
        .collect();
    for places in at.values() {
        if places.len() < 2 {
            continue;
        }
        for g in &mut grids {
            let xs: Vec<u16> = places
                .iter()
                .filter(|p| p.0 == g.epoch)
                .map(|p| p.1)
                .collect();
            let ys: Vec<u16> = places
                .iter()
                .filter(|p| p.0 == g.epoch + 1)
                .map(|p| p.1)
                .collect();
            if xs.is_empty() || ys.is_empty() {
                continue;
            }
            let wgt = 1.0 / (xs.len() * ys.len()) as f64;
            for x in &xs {
                for y in &ys {
                    g.add(*x, *y, wgt);
                }
            }
        }
    }
    grids
}

/// Group deposits' bucket sets in e against those in e + 1.
fn by_group(v: &View<'_>, changes: &[u32]) -> Vec<Grid> {
    let mut sets: HashMap<u32, HashSet<Vec<u16>>> = HashMap::new();
    for d in &v.log.deposits {
        if d.copies.len() < 2 {
            continue;
        }
        let mut s: Vec<u16> = d.copies.iter().map(|c| c.0).collect();
        s.sort_unstable();
        s.dedup();
        sets.entry(d.epoch).or_default().insert(s);
    }
    changes
        .iter()
        .map(|&e| {
            let empty = HashSet::new();
            let (a, b) = (
                sets.get(&e).unwrap_or(&empty),
                sets.get(&(e + 1)).unwrap_or(&empty),
            );
            let mut g = Grid::new(e, a.iter().flatten().copied(), b.iter().flatten().copied());
            for s in a {
                for t in b {
                    if s.len().abs_diff(t.len()) > 1 {
                        continue;
                    }
                    let common = s.iter().filter(|x| t.binary_search(x).is_ok()).count();
                    let jaccard = common as f64 / (s.len() + t.len() - common) as f64;
                    let wgt = (1.0 + jaccard) / (s.len() * t.len()) as f64;
                    for x in s {
                        for y in t {
                            g.add(*x, *y, if x == y { 5.0 * wgt } else { wgt });
                        }
                    }
                }
            }
            g
        })
        .collect()
}

/// (observed, expected) delivery-to-deposit counts per bucket pair.
type PairCounts = HashMap<(u16, u16), (f64, f64)>;

/// Chats that straddle the boundary between e and e + 1.
fn by_straddle(v: &View<'_>, act: &Activity, changes: &[u32]) -> Vec<Grid> {
    let w = v.options.window.max(1);
    let reach = 5 * w;
    changes
        .iter()
        .map(|&e| {
            let Some((tau, _)) = act.span(e + 1) else {
                return Grid::new(e, [], []);
            };
            let lo = tau.saturating_sub(reach);
            let hi = tau + reach;
            let near = |t: u64| t >= lo && t < hi;
            // Deposits per (epoch, bucket) in the window, for the expected counts.
            let mut rate: HashMap<(u32, u16), f64> = HashMap::new();
            for &(_, eb, b) in act.deposits.iter().filter(|d| near(d.0)) {
                let len = if eb == e { tau - lo } else { hi - tau };
                *rate.entry((eb, b)).or_default() += 1.0 / len.max(1) as f64;
            }
            // Delivery into a (epoch ea) answered by a deposit into b (epoch eb) within w:
            // observed and expected counts.
            let mut pairs: HashMap<(u32, u32), PairCounts> = HashMap::new();
            let mut xs = Vec::new();
            let mut ys = Vec::new();
            for &(t, ea, a) in act.deliveries.iter().filter(|d| near(d.0)) {
                if ea != e && ea != e + 1 {
                    continue;
                }
                // Ticks of (t, t + w] on each side of the boundary.
                let before = (t + w).min(tau - 1).saturating_sub(t) as f64;
                let after = (t + w + 1).saturating_sub(tau.max(t + 1)) as f64;
                for (&(eb, b), &r) in &rate {
                    if eb < ea || (ea == eb && a == b) {
                        continue;
                    }
                    let span = if eb == e { before } else { after };
                    if span > 0.0 {
                        pairs
                            .entry((ea, eb))
                            .or_default()
                            .entry((a, b))
                            .or_default()
                            .1 += r * span;
                    }
                }
                let from = act.deposits.partition_point(|d| d.0 <= t);
                for &(t2, eb, b) in &act.deposits[from..] {
                    if t2 > t + w {
                        break;
                    }
                    if (eb != e && eb != e + 1) || eb < ea || (ea == eb && a == b) {
                        continue;
                    }
                    pairs
                        .entry((ea, eb))
                        .or_default()
                        .entry((a, b))
                        .or_default()
                        .0 += 1.0;
                    if ea == e {
                        xs.push(a);
                    } else {
                        ys.push(a);
                    }
                    if eb == e {
                        xs.push(b);
                    } else {
                        ys.push(b);
                    }
                }
            }
            let z = |m: Option<&PairCounts>| -> HashMap<(u16, u16), f64> {
                m.into_iter()
                    .flatten()
                    .filter(|(_, (obs, exp))| obs > exp)
                    .map(|(k, (obs, exp))| (*k, (obs - exp) / (exp + 1.0).sqrt()))
                    .collect()
            };
            // A chat on each side: a pair of buckets answering each other, at least twice
            // each way, more often than chance.
            let chats = |m: Option<&PairCounts>| -> Vec<((u16, u16), f64)> {
                let repeated: PairCounts = m
                    .into_iter()
                    .flatten()
                    .filter(|(_, (obs, _))| *obs >= 2.0)
                    .map(|(k, v)| (*k, *v))
                    .collect();
                let zs = z(Some(&repeated));
                zs.iter()
                    .filter_map(|(&(a, b), &s)| zs.get(&(b, a)).map(|&r| ((a, b), s.min(r))))
                    .collect()
            };
            let before = chats(pairs.get(&(e, e)));
            let after = chats(pairs.get(&(e + 1, e + 1)));
            let cross: Vec<((u16, u16), f64)> = z(pairs.get(&(e, e + 1))).into_iter().collect();
            let mut g = Grid::new(e, xs, ys);
            for &((x, y), c) in &cross {
                // x's partner in e (delivered into, answered into x) is y's user.
                for &((p, q), a) in &before {
                    if q == x {
                        g.add(p, y, a * c);
                    }
                }
                // y's partner in e + 1 (delivery into y answered into it) is x's user.
                for &((p, q), a) in &after {
                    if p == y {
                        g.add(x, q, a * c);
                    }
                }
            }
            g
        })
        .collect()
}

//! Attack 5, telling real slots from dummies, one sample per up cell: for the entry role
//! from its slot records, for a network observer from its TLS records. The best classifier
//! here is naive Bayes over every feature the party has (classifier.rs); its balanced
//! accuracy on held-out samples is the score, 0.5 is chance.
//!
//! Entry role features: whether the slot's bytes were seen before; how long after the
//! tick's first slot it came (ms); ticks since the connection last got an item with new
//! bytes; and, for a single relay, what its mailbox role found in the slot. Observer
//! features: the record's size, the time since the connection's last down record, and the
//! time since its last up record.
//!
//! Labels: a send of the ground truth marks the first slot of its user's connection at or
//! after its time (or the slot whose digest it names, when it names one).

use std::collections::{HashMap, HashSet};

use super::classifier::{Classifier, Column};
use super::control::Control;
use super::curious_log::SlotKind;
use super::report::{Row, Skipped};
use super::rng::Rng;
use super::truth::Truth;
use super::view::{Options, View};
use super::wire_log::WireLog;

/// Negatives kept per positive (all positives are kept): balanced accuracy does not depend
/// on the classes' shares, and the control gets cheaper.
const NEGATIVES_PER_POSITIVE: usize = 20;
/// Negatives always kept, when there are that many.
const MIN_NEGATIVES: usize = 20_000;

pub(crate) fn entry(v: &View<'_>, role: &str) -> Result<Row, Skipped> {
    let skip = |reason: &str| Skipped {
        attack: "real-dummy".into(),
        role: role.into(),
        reason: reason.into(),
    };
    let slots = &v.log.entry_slots;
    if slots.is_empty() {
        return Err(skip("the log has no entry slot records"));
    }
    // Each connection's slots in time order.
    let mut by_conn: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, s) in slots.iter().enumerate() {
        by_conn.entry(s.conn).or_default().push(i);
    }
    for l in by_conn.values_mut() {
        l.sort_by(|&a, &b| slots[a].ms.total_cmp(&slots[b].ms));
    }
    let mut conns_of: HashMap<u32, Vec<u64>> = HashMap::new();
    for (&c, &u) in &v.conn_user {
        conns_of.entry(u).or_default().push(c);
    }
    let by_digest: HashMap<u64, usize> =
        slots.iter().enumerate().map(|(i, s)| (s.slot, i)).collect();
    let mut labels = vec![false; slots.len()];
    for send in &v.truth.sends {
        if let Some(d) = send.slot {
            if let Some(&i) = by_digest.get(&d) {
                labels[i] = true;
            }
            continue;
        }
        let mut best: Option<usize> = None;
        for c in conns_of.get(&send.user).into_iter().flatten() {
            let Some(list) = by_conn.get(c) else { continue };
            let from = list.partition_point(|&i| slots[i].ms < send.ms);
            if let Some(&i) = list[from..].iter().find(|&&i| !labels[i])
                && best.is_none_or(|b| slots[i].ms < slots[b].ms)
            {
                best = Some(i);
            }
        }
        if let Some(i) = best {
            labels[i] = true;
        }
    }
    // Features.
    let mut seen: HashSet<u64> = HashSet::new();
    let novel: Vec<u32> = slots
        .iter()
        .map(|s| u32::from(seen.insert(s.slot)))
        .collect();
    let mut first: HashMap<u64, f64> = HashMap::new();
    for s in slots {
        let f = first.entry(s.tick).or_insert(s.ms);
        *f = f.min(s.ms);
    }
    let delay: Vec<f64> = slots.iter().map(|s| s.ms - first[&s.tick]).collect();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut new_items: HashMap<u64, Vec<u64>> = HashMap::new();
    for it in &v.log.items {
        if seen.insert(it.item) {
            new_items.entry(it.conn).or_default().push(it.tick);
        }
    }
    for l in new_items.values_mut() {
        l.sort_unstable();
    }
    let since: Vec<u32> = slots
        .iter()
        .map(|s| {
            let l = new_items.get(&s.conn).map_or(&[][..], Vec::as_slice);
            let k = l.partition_point(|&t| t <= s.tick);
            if k == 0 {
                17
            } else {
                (s.tick - l[k - 1]).min(16) as u32
            }
        })
        .collect();
    let mut columns = vec![
        Column::Categorical(novel),
        Column::Continuous(delay),
        Column::Categorical(since),
    ];
    if v.log.knows_connections() {
        let kinds: HashMap<(u64, u64), SlotKind> = v
            .log
            .mailbox_slots
            .iter()
            .filter_map(|m| m.conn.map(|c| ((c, m.batch_tick), m.kind)))
            .collect();
        let kind: Vec<u32> = slots
            .iter()
            .map(|s| match kinds.get(&(s.conn, s.tick)) {
                None => 0,
                Some(k) => 1 + *k as u32,
            })
            .collect();
        columns.push(Column::Categorical(kind));
    }
    let method = if v.log.knows_connections() {
        "new bytes, answer delay, ticks since a new item, and the slot's kind"
    } else {
        "new bytes, answer delay, ticks since a new item"
    };
    classify("real-dummy", role, method, columns, labels, v.options).map_err(|r| skip(&r))
}

pub(crate) fn observer(wire: &WireLog, truth: &Truth, options: &Options) -> Result<Row, Skipped> {
    let skip = |reason: &str| Skipped {
        attack: "real-dummy".into(),
        role: "observer".into(),
        reason: reason.into(),
    };
    let recs = &wire.records;
    // Up records per connection, in time order, with their features.
    let mut ups: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut last_down: HashMap<u32, f64> = HashMap::new();
    let mut last_up: HashMap<u32, f64> = HashMap::new();
    let mut order: Vec<usize> = (0..recs.len()).collect();
    order.sort_by(|&a, &b| recs[a].ms.total_cmp(&recs[b].ms));
    let mut sample_of = vec![usize::MAX; recs.len()];
    let (mut size, mut since_down, mut since_up) = (Vec::new(), Vec::new(), Vec::new());
    let mut sizes: HashMap<u32, u32> = HashMap::new();
    for &i in &order {
        let r = recs[i];
        if !r.up {
            last_down.insert(r.conn, r.ms);
            continue;
        }
        sample_of[i] = size.len();
        ups.entry(r.conn).or_default().push(i);
        let next = sizes.len() as u32;
        size.push(*sizes.entry(r.size).or_insert(next.min(63)));
        since_down.push(last_down.get(&r.conn).map_or(-1.0, |d| r.ms - d));
        since_up.push(last_up.get(&r.conn).map_or(-1.0, |u| r.ms - u));
        last_up.insert(r.conn, r.ms);
    }
    if size.is_empty() {
        return Err(skip("the observer recorded no up record"));
    }
    let names: HashMap<&str, u32> = wire
        .conns
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let mut sessions: HashMap<u32, Vec<(u32, f64, Option<f64>)>> = HashMap::new();
    for s in &truth.sessions {
        if let Some(&c) = names.get(s.local.as_str()) {
            sessions
                .entry(s.user)
                .or_default()
                .push((c, s.start, s.end));
        }
    }
    let mut labels = vec![false; size.len()];
    for send in &truth.sends {
        for &(c, start, end) in sessions.get(&send.user).into_iter().flatten() {
            if send.ms < start || end.is_some_and(|e| send.ms > e) {
                continue;
            }
            let Some(list) = ups.get(&c) else { continue };
            let from = list.partition_point(|&i| recs[i].ms < send.ms);
            if let Some(&i) = list[from..].iter().find(|&&i| !labels[sample_of[i]]) {
                labels[sample_of[i]] = true;
            }
            break;
        }
    }
    let columns = vec![
        Column::Categorical(size),
        Column::Continuous(since_down),
        Column::Continuous(since_up),
    ];
    classify(
        "real-dummy",
        "observer",
        "record size, time since the last down record, time since the last up record",
        columns,
        labels,
        options,
    )
    .map_err(|r| skip(&r))
}

/// Subsamples the negatives, trains and tests, and runs the control.
fn classify(
    attack: &str,
    role: &str,
    method: &str,
    columns: Vec<Column>,
    labels: Vec<bool>,
    o: &Options,
) -> Result<Row, String> {
    let positives = labels.iter().filter(|&&l| l).count();
    if positives < 8 {
        return Err(format!("only {positives} real slots could be labelled"));
    }
    let mut rng = Rng::new(o.seed ^ 0x7ea1);
    let keep_neg = (positives * NEGATIVES_PER_POSITIVE).max(MIN_NEGATIVES);
    let negatives = labels.len() - positives;
    let keep: Vec<usize> = (0..labels.len())
        .filter(|&i| {
            labels[i] || negatives <= keep_neg || rng.below(negatives as u64) < keep_neg as u64
        })
        .collect();
    let columns: Vec<Column> = columns
        .into_iter()
        .map(|c| match c {
            Column::Categorical(v) => Column::Categorical(keep.iter().map(|&i| v[i]).collect()),
            Column::Continuous(v) => Column::Continuous(keep.iter().map(|&i| v[i]).collect()),
        })
        .collect();
    let labels: Vec<bool> = keep.iter().map(|&i| labels[i]).collect();
    let classifier = Classifier::new(&columns, &mut rng);
    let Some(score) = classifier.balanced_accuracy(&labels) else {
        return Err("a half of the split holds no real or no dummy slot".into());
    };
    let control = Control::run(o.permutations, o.level, &rng.fork(1), |r| {
        let mut l = labels.clone();
        r.shuffle(&mut l);
        classifier.balanced_accuracy(&l)
    });
    let mut row = Row::new(attack, role, method, score, control, labels.len());
    row.chance = Some(0.5);
    Ok(row)
}

//! Attack 4, naming a group message's speaker (accuracy against chance).
//!
//! - `speaker`: a single relay names the depositing connection's user. A mailbox relay names
//!   the speaker's bucket from the bucket sets: the deposits of the same epoch whose sets
//!   are near this one (sizes within one, Jaccard overlap at least one half) are taken as
//!   the same group's; a bucket in their union but missing from this set is the speaker's
//!   (sender-side fan-out leaves the speaker out). With nothing missing it guesses one of
//!   the set at random.
//! - `speaker-receipts`: members' receipts follow a group message into the speaker's
//!   bucket: the bucket whose single-copy deposits in the window after the message most
//!   exceed its usual rate is named.
//!
//! The control permutes the speakers among the messages of the same group and epoch.

use std::collections::HashMap;

use super::activity::Activity;
use super::bucket_pairs::bucket_count;
use super::control::Control;
use super::report::{Row, Skipped};
use super::rng::Rng;
use super::stats::shuffle_within;
use super::view::View;

/// One group deposit the attack names a speaker for.
struct Message {
    tick: u64,
    epoch: u32,
    set: Vec<u16>,
    speaker: u32,
    group: u32,
    stratum: u64,
    /// The connection's user, when the log names it.
    direct: Option<u32>,
}

pub(crate) fn speakers(v: &View<'_>, role: &str) -> Vec<Result<Row, Skipped>> {
    let skip = |attack: &str, reason: &str| Skipped {
        attack: attack.into(),
        role: role.into(),
        reason: reason.into(),
    };
    let mut messages: Vec<Message> = Vec::new();
    for d in &v.log.deposits {
        let Some(s) = v.send_of(d) else { continue };
        let Some(g) = s.to_group else { continue };
        let mut set: Vec<u16> = d.copies.iter().map(|c| c.0).collect();
        set.sort_unstable();
        set.dedup();
        messages.push(Message {
            tick: d.tick,
            epoch: d.epoch,
            set,
            speaker: s.user,
            group: g,
            stratum: (u64::from(g) << 32) | u64::from(d.epoch),
            direct: v.conn_of(d).and_then(|c| v.conn_user.get(&c).copied()),
        });
    }
    if messages.is_empty() {
        let r = "no group deposit joins a send of the ground truth";
        return vec![Err(skip("speaker", r)), Err(skip("speaker-receipts", r))];
    }
    let direct = messages.iter().all(|m| m.direct.is_some());
    let structure = if direct {
        by_connection(v, role, &messages)
    } else {
        by_bucket_set(v, role, &messages)
    };
    vec![structure, by_receipts(v, role, &messages)]
}

/// Scores guesses of the speaker's bucket (`None`: no guess) against the truth, with the
/// shuffled-speaker control.
fn grade_buckets(
    v: &View<'_>,
    attack: &str,
    role: &str,
    method: &str,
    messages: &[&Message],
    guesses: &[Option<u16>],
    chance: f64,
) -> Result<Row, Skipped> {
    if messages.is_empty() {
        return Err(Skipped {
            attack: attack.into(),
            role: role.into(),
            reason: "no group message whose speaker has a bucket at this relay".into(),
        });
    }
    let speakers: Vec<u32> = messages.iter().map(|m| m.speaker).collect();
    let strata: Vec<u64> = messages.iter().map(|m| m.stratum).collect();
    let accuracy = |speakers: &[u32]| {
        let right = messages
            .iter()
            .zip(speakers)
            .zip(guesses)
            .filter(|((m, s), g)| g.is_some() && v.bucket_of(**s, m.epoch) == **g)
            .count();
        right as f64 / messages.len() as f64
    };
    let score = accuracy(&speakers);
    let o = v.options;
    let control = Control::run(o.permutations, o.level, &Rng::new(o.seed ^ 0x59ea), |r| {
        let mut s = speakers.clone();
        shuffle_within(&mut s, &strata, r);
        Some(accuracy(&s))
    });
    let mut row = Row::new(attack, role, method, score, control, messages.len());
    row.chance = Some(chance);
    Ok(row)
}

fn by_connection(v: &View<'_>, role: &str, messages: &[Message]) -> Result<Row, Skipped> {
    let speakers: Vec<u32> = messages.iter().map(|m| m.speaker).collect();
    let strata: Vec<u64> = messages.iter().map(|m| m.stratum).collect();
    let accuracy = |speakers: &[u32]| {
        let right = messages
            .iter()
            .zip(speakers)
            .filter(|(m, s)| m.direct == Some(**s))
            .count();
        right as f64 / messages.len() as f64
    };
    let score = accuracy(&speakers);
    let o = v.options;
    let control = Control::run(o.permutations, o.level, &Rng::new(o.seed ^ 0x59eb), |r| {
        let mut s = speakers.clone();
        shuffle_within(&mut s, &strata, r);
        Some(accuracy(&s))
    });
    let chance = messages
        .iter()
        .map(|m| {
            let members = v.truth.groups.get(m.group as usize).map_or(1, Vec::len);
            1.0 / members.max(1) as f64
        })
        .sum::<f64>()
        / messages.len() as f64;
    let mut row = Row::new(
        "speaker",
        role,
        "the deposit's connection",
        score,
        control,
        messages.len(),
    );
    row.chance = Some(chance);
    Ok(row)
}

/// Messages whose speaker has a bucket at the view's relay (only those can be named by
/// bucket).
fn homed<'m>(v: &View<'_>, messages: &'m [Message]) -> Vec<&'m Message> {
    messages
        .iter()
        .filter(|m| v.bucket_of(m.speaker, m.epoch).is_some())
        .collect()
}

fn by_bucket_set(v: &View<'_>, role: &str, messages: &[Message]) -> Result<Row, Skipped> {
    let ms = homed(v, messages);
    let mut rng = Rng::new(v.options.seed ^ 0x9e55);
    // Unique sets per epoch, and for each its neighbours' union.
    let mut sets: HashMap<u32, Vec<Vec<u16>>> = HashMap::new();
    for m in &ms {
        let s = sets.entry(m.epoch).or_default();
        if !s.contains(&m.set) {
            s.push(m.set.clone());
        }
    }
    let mut chance = 0.0;
    let guesses: Vec<Option<u16>> = ms
        .iter()
        .map(|m| {
            let mut missing: HashMap<u16, usize> = HashMap::new();
            let mut union = m.set.len();
            for t in sets.get(&m.epoch).into_iter().flatten() {
                if *t == m.set || t.len().abs_diff(m.set.len()) > 1 {
                    continue;
                }
                let common = t.iter().filter(|x| m.set.binary_search(x).is_ok()).count();
                if 2 * common < t.len() + m.set.len() - common {
                    continue;
                }
                for x in t {
                    if m.set.binary_search(x).is_err() {
                        *missing.entry(*x).or_default() += 1;
                    }
                }
            }
            union += missing.len();
            chance += 1.0 / union.max(1) as f64;
            let best = missing
                .into_iter()
                .max_by_key(|(b, n)| (*n, std::cmp::Reverse(*b)));
            match best {
                Some((b, _)) => Some(b),
                None => m.set.get(rng.index(m.set.len())).copied(),
            }
        })
        .collect();
    let chance = chance / ms.len().max(1) as f64;
    grade_buckets(
        v,
        "speaker",
        role,
        "the bucket missing from a set that its group's other sets hold",
        &ms,
        &guesses,
        chance,
    )
}

fn by_receipts(v: &View<'_>, role: &str, messages: &[Message]) -> Result<Row, Skipped> {
    let ms = homed(v, messages);
    let act = Activity::new(v.log);
    let buckets = bucket_count(v);
    let w = v.options.window;
    let mut length: HashMap<u32, f64> = HashMap::new();
    let guesses: Vec<Option<u16>> = ms
        .iter()
        .map(|m| {
            let len = *length
                .entry(m.epoch)
                .or_insert_with(|| act.span(m.epoch).map_or(1.0, |(a, b)| (b - a + 1) as f64));
            let mut best: Option<(f64, u16)> = None;
            for b in 0..buckets {
                let n = act.deposits_in(m.epoch, b, m.tick, m.tick + w);
                if n == 0 {
                    continue;
                }
                let excess = n as f64 - act.deposit_count(m.epoch, b) as f64 * w as f64 / len;
                if best.is_none_or(|(e, _)| excess > e) {
                    best = Some((excess, b));
                }
            }
            best.map(|(_, b)| b)
        })
        .collect();
    grade_buckets(
        v,
        "speaker-receipts",
        role,
        "the bucket whose deposits most exceed its rate in the window after",
        &ms,
        &guesses,
        1.0 / f64::from(buckets.max(1)),
    )
}

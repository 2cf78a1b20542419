//! What a load run's relay logs say, read back after the run: the bucket queueing delay
//! (a copy's deposit to its place in the live stream, from a mailbox relay's curious log)
//! and how well the ground truth joins the logs (every deposit attempt by its tag seed,
//! every session by its address). `hum-load run` prints both; the load test checks them.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Copy {
    tag: String,
}

#[derive(Debug, Deserialize)]
struct Record {
    ev: String,
    #[serde(default)]
    ms: f64,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    copies: Option<Vec<Copy>>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    seed: Option<String>,
    #[serde(default)]
    peer: Option<String>,
    #[serde(default)]
    local: Option<String>,
    #[serde(default)]
    user: Option<u64>,
    #[serde(default)]
    end: Option<f64>,
}

/// Calls `each` with every record of a JSON-lines file whose line contains one of
/// `wanted` (the others are not parsed).
fn each(
    path: &Path,
    wanted: &[&str],
    mut each: impl FnMut(Record) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    for (n, line) in std::io::BufReader::with_capacity(1 << 20, file)
        .lines()
        .enumerate()
    {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if !wanted.iter().any(|w| line.contains(w)) {
            continue;
        }
        let r: Record = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}", path.display(), n + 1))?;
        each(r)?;
    }
    Ok(())
}

/// The bucket queueing delay at one mailbox relay.
#[derive(Debug, Default)]
pub struct QueueDelay {
    /// Ticks from each stored copy's deposit to its first place in a live stream.
    pub ticks: Vec<f64>,
    /// Stored copies never streamed live (their epoch ended first: caught up instead).
    pub never: usize,
}

/// Reads the queueing delay from a mailbox relay's curious log.
///
/// # Errors
/// A file that cannot be read or a line that does not parse.
pub fn queue_delay(log: &Path, tick_ms: f64) -> anyhow::Result<QueueDelay> {
    let mut waiting: HashMap<String, f64> = HashMap::new();
    let mut out = QueueDelay::default();
    each(log, &[r#""ev":"deposit""#, r#""ev":"stream""#], |r| {
        match r.ev.as_str() {
            "deposit" if r.answer.as_deref() == Some("stored") => {
                for c in r.copies.unwrap_or_default() {
                    waiting.insert(c.tag, r.ms);
                }
            }
            "stream" => {
                if let Some(tag) = r.tag
                    && let Some(at) = waiting.remove(&tag)
                {
                    out.ticks.push((r.ms - at) / tick_ms);
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    out.never = waiting.len();
    Ok(out)
}

/// How the ground truth joins the logs.
#[derive(Debug, Default)]
pub struct Joins {
    /// Deposit attempts in the truth.
    pub sends: usize,
    /// Of those, found by seed in a mailbox log's deposit records.
    pub sends_found: usize,
    /// Attempts the client saw answered `stored`.
    pub stored: usize,
    /// Of those, found by seed in a mailbox log's deposit records, answered `stored`
    /// there too.
    pub stored_found: usize,
    /// Attempts without an answer.
    pub unanswered: usize,
    /// Of those, sent within three ticks before (or one after) the end of a session of
    /// their user: it closed before the answer came.
    pub unanswered_at_close: usize,
    /// Sessions in the truth.
    pub sessions: usize,
    /// Of those, whose address an entry log's connect records name.
    pub sessions_found: usize,
}

/// Joins the truth at `truth` with the entry logs `entries` and mailbox logs `mailboxes`.
///
/// # Errors
/// A file that cannot be read or a line that does not parse.
pub fn joins(
    truth: &Path,
    entries: &[&Path],
    mailboxes: &[&Path],
    tick_ms: f64,
) -> anyhow::Result<Joins> {
    // Seed digest to whether the destination stored it.
    let mut seeds: HashMap<String, bool> = HashMap::new();
    for m in mailboxes {
        each(m, &[r#""ev":"deposit""#], |r| {
            if let Some(s) = r.seed {
                let stored = r.answer.as_deref() == Some("stored");
                *seeds.entry(s).or_default() |= stored;
            }
            Ok(())
        })?;
    }
    let mut peers: HashSet<String> = HashSet::new();
    for e in entries {
        each(e, &[r#""ev":"connect""#], |r| {
            peers.extend(r.peer);
            Ok(())
        })?;
    }
    let mut j = Joins::default();
    // Seed to (user, ms) of the attempts not answered yet; each user's session ends.
    let mut sent: HashMap<String, (u64, f64)> = HashMap::new();
    let mut ends: HashMap<u64, Vec<f64>> = HashMap::new();
    each(
        truth,
        &[r#""ev":"send""#, r#""ev":"session""#, r#""ev":"answer""#],
        |r| {
            match r.ev.as_str() {
                "send" => {
                    j.sends += 1;
                    if let Some(s) = r.seed {
                        if seeds.contains_key(&s) {
                            j.sends_found += 1;
                        }
                        sent.insert(s, (r.user.unwrap_or(u64::MAX), r.ms));
                    }
                }
                "answer" => {
                    if let Some(s) = &r.seed {
                        sent.remove(s);
                    }
                    if r.answer.as_deref() == Some("stored") {
                        j.stored += 1;
                        if r.seed.as_ref().and_then(|s| seeds.get(s)) == Some(&true) {
                            j.stored_found += 1;
                        }
                    }
                }
                "session" => {
                    j.sessions += 1;
                    if r.local.as_ref().is_some_and(|l| peers.contains(l)) {
                        j.sessions_found += 1;
                    }
                    if let (Some(u), Some(end)) = (r.user, r.end) {
                        ends.entry(u).or_default().push(end);
                    }
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    j.unanswered = sent.len();
    j.unanswered_at_close = sent
        .values()
        .filter(|(u, ms)| {
            ends.get(u).is_some_and(|e| {
                e.iter()
                    .any(|end| end - ms >= -tick_ms && end - ms <= 3.0 * tick_ms)
            })
        })
        .count();
    Ok(j)
}

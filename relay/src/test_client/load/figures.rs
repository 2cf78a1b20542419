//! What a load run measured, as a user would notice it, and how it prints.

use std::fmt;

use super::super::SendKind;

/// Percentiles of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Sample size.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of `sample` (nearest rank).
    pub fn of(mut sample: Vec<f64>) -> Self {
        if sample.is_empty() {
            return Self::default();
        }
        sample.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let rank = (p * sample.len() as f64).ceil() as usize;
            sample[rank.clamp(1, sample.len()) - 1]
        };
        Self {
            n: sample.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: sample[sample.len() - 1],
        }
    }
}

/// Catch-up after an absence: users that came back having missed `missed` epoch
/// changes, and how long until every text sent them while away was whole.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatchUpRow {
    /// Epoch changes missed.
    pub missed: u32,
    /// Seconds from the reconnect to the last such text.
    pub seconds: Percentiles,
    /// Returns whose texts were not all there by the end.
    pub unfinished: usize,
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Users.
    pub users: usize,
    /// Contact pairs.
    pub edges: usize,
    /// Groups.
    pub groups: usize,
    /// The tick, in ms.
    pub tick_ms: f64,
    /// Ticks per epoch.
    pub epoch_ticks: u32,
    /// Length of the main phase, ms.
    pub main_ms: u64,
    /// Epoch changes seen.
    pub epochs: usize,
    /// Share of users offline at each epoch change of each home relay.
    pub offline_at_change: Vec<f64>,
    /// Sessions started.
    pub sessions: usize,
    /// Sessions that could not start.
    pub refused: usize,
    /// Sessions the relay ended.
    pub dropped: usize,
    /// Profiles lost (a session task failed).
    pub lost: usize,
    /// Texts queued.
    pub texts: usize,
    /// Deposit attempts: texts (parts), receipts, loops.
    pub deposits: [usize; 3],
    /// Answers: stored, full, unknown, retry; and deposits that could not be sealed.
    pub stored: usize,
    /// Answered `Full`.
    pub full: usize,
    /// No readable answer.
    pub unknown: usize,
    /// Answered `Retry`.
    pub retry: usize,
    /// Could not be sealed (no key yet).
    pub unsendable: usize,
    /// Epoch catch-ups completed.
    pub caught_up: usize,
    /// Ticks from a single-part text's deposit to its recipient, when the sender had no
    /// backlog, the recipient was online from the deposit on, and it came live (1:1).
    pub latency: Vec<f64>,
    /// The same for single-part group texts, per member.
    pub latency_group: Vec<f64>,
    /// Ticks from queueing any text to its recipient having it whole, live.
    pub latency_queued: Vec<f64>,
    /// (recipient-texts whole, recipient-texts) of the main phase.
    pub delivered: (usize, usize),
    /// Recipient-texts not whole by the end: never deposited, deposited but no part
    /// arrived, some parts arrived.
    pub undelivered: [usize; 3],
    /// Catch-up after absences, by epochs missed.
    pub catch_up: Vec<CatchUpRow>,
    /// Bytes on the wire per client-day (both ways, TLS records).
    pub bytes_per_day: f64,
}

impl Report {
    pub(super) fn count_deposit(&mut self, kind: SendKind) {
        match kind {
            SendKind::Receipt => self.deposits[1] += 1,
            SendKind::Loop => self.deposits[2] += 1,
            _ => self.deposits[0] += 1,
        }
    }

    /// Latency percentiles in ticks (single-part, no backlog, live).
    pub fn latency(&self) -> Percentiles {
        Percentiles::of(self.latency.clone())
    }

    /// Queue-to-whole percentiles in ticks (any text, live).
    pub fn latency_queued(&self) -> Percentiles {
        Percentiles::of(self.latency_queued.clone())
    }

    /// Delivery ratio of the main phase's texts.
    pub fn delivery(&self) -> f64 {
        let (w, n) = self.delivered;
        if n == 0 { 0.0 } else { w as f64 / n as f64 }
    }

    /// The smallest share of users offline at an epoch change.
    pub fn least_offline_at_change(&self) -> Option<f64> {
        self.offline_at_change
            .iter()
            .copied()
            .min_by(f64::total_cmp)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lat = self.latency();
        let group = Percentiles::of(self.latency_group.clone());
        let q = self.latency_queued();
        writeln!(
            f,
            "users {}, contact pairs {}, groups {}; tick {} ms, epoch {} ticks; main phase {:.0} s, epoch changes {}",
            self.users,
            self.edges,
            self.groups,
            self.tick_ms,
            self.epoch_ticks,
            self.main_ms as f64 / 1_000.0,
            self.epochs
        )?;
        let offline: Vec<String> = self
            .offline_at_change
            .iter()
            .map(|o| format!("{:.0}%", o * 100.0))
            .collect();
        writeln!(
            f,
            "sessions {} (refused {}, ended by the relay {}, lost {}); offline at each epoch change: {}",
            self.sessions,
            self.refused,
            self.dropped,
            self.lost,
            offline.join(", ")
        )?;
        writeln!(
            f,
            "texts {}; deposits: text parts {}, receipts {}, loops {}; answers: stored {}, full {}, unknown {}, retry {}, unsendable {}; epoch catch-ups {}",
            self.texts,
            self.deposits[0],
            self.deposits[1],
            self.deposits[2],
            self.stored,
            self.full,
            self.unknown,
            self.retry,
            self.unsendable,
            self.caught_up
        )?;
        writeln!(f, "| figure | value |")?;
        writeln!(f, "| --- | --- |")?;
        writeln!(
            f,
            "| latency, single-part text without backlog to a recipient online, live (ticks) | p50 {:.1}, p99 {:.1}, max {:.1} (n = {}) |",
            lat.p50, lat.p99, lat.max, lat.n
        )?;
        writeln!(
            f,
            "| the same, group texts, per member (ticks) | p50 {:.1}, p99 {:.1}, max {:.1} (n = {}) |",
            group.p50, group.p99, group.max, group.n
        )?;
        writeln!(
            f,
            "| queued to whole, any text, live (ticks) | p50 {:.1}, p99 {:.1}, max {:.1} (n = {}) |",
            q.p50, q.p99, q.max, q.n
        )?;
        writeln!(
            f,
            "| delivery, texts of the main phase by the end | {:.4} ({} of {}; missing: {} never left the sender, {} left but no part arrived, {} in part) |",
            self.delivery(),
            self.delivered.0,
            self.delivered.1,
            self.undelivered[0],
            self.undelivered[1],
            self.undelivered[2]
        )?;
        for row in &self.catch_up {
            writeln!(
                f,
                "| catch-up after missing {} epoch change(s) (s to the last text) | p50 {:.1}, max {:.1} (n = {}, unfinished {}) |",
                row.missed, row.seconds.p50, row.seconds.max, row.seconds.n, row.unfinished
            )?;
        }
        writeln!(
            f,
            "| bytes per client-day, both ways | {:.0} ({:.2} GB) |",
            self.bytes_per_day,
            self.bytes_per_day / 1e9
        )
    }
}

/// Whether a load generator kept up with a run: the slots its clients owed that had not
/// come when the entry relay's batch left (the entry relay pads with dummies it seals
/// itself, so CPU figures would measure the generator falling behind); and, to read
/// beside them, the messages it sent against those delivered (fewer arrive when the
/// buckets' streams are at capacity too, which is the relays' doing, not the
/// generator's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptUp {
    /// Slots owed: clients times ticks measured.
    pub slots: u64,
    /// Of those, missing at the entry relay (late or never sent).
    pub missing: u64,
    /// Messages sent.
    pub sent: u64,
    /// Messages delivered.
    pub delivered: u64,
}

impl KeptUp {
    /// The largest share of slots that may miss their batch before the figures of a run
    /// are withheld.
    pub const MISSING_MAX: f64 = 0.01;

    /// Whether the generator fell behind: more than [`KeptUp::MISSING_MAX`] of the
    /// slots missing.
    pub fn fell_behind(&self) -> bool {
        self.slots > 0 && self.missing as f64 / self.slots as f64 > Self::MISSING_MAX
    }
}

impl fmt::Display for KeptUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "late or dropped slots {} of {} ({:.2}%), delivered {} of {} sent",
            self.missing,
            self.slots,
            100.0 * self.missing as f64 / self.slots.max(1) as f64,
            self.delivered,
            self.sent
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{KeptUp, Percentiles};

    #[test]
    fn a_generator_whose_slots_miss_their_batch_fell_behind() {
        let ok = KeptUp {
            slots: 30_000,
            missing: 300,
            sent: 3_000,
            delivered: 2_900,
        };
        assert!(!ok.fell_behind());
        assert!(KeptUp { missing: 301, ..ok }.fell_behind());
        // Few delivered with every slot on time: the streams, not the generator.
        assert!(
            !KeptUp {
                delivered: 169,
                ..ok
            }
            .fell_behind()
        );
        assert!(
            !KeptUp {
                slots: 0,
                missing: 0,
                ..ok
            }
            .fell_behind()
        );
        assert_eq!(
            ok.to_string(),
            "late or dropped slots 300 of 30000 (1.00%), delivered 2900 of 3000 sent"
        );
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!((p.n, p.p50, p.p99, p.max), (100, 50.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(Vec::new()).n, 0);
        let one = Percentiles::of(vec![3.0]);
        assert_eq!((one.p50, one.p99), (3.0, 3.0));
    }
}

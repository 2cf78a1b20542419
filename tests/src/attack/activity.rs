//! What a mailbox relay sees of conversation in time: deliveries (real items of its live
//! stream, by bucket) and single-copy deposits (by the bucket they go into).

use std::collections::{HashMap, HashSet};

use super::curious_log::CuriousLog;

/// Deliveries and deposits by tick, epoch and bucket.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// (tick, epoch, bucket) of each real stream item, once however many entry relays got it.
    pub(crate) deliveries: Vec<(u64, u32, u16)>,
    /// (tick, epoch, bucket) of each single-copy deposit.
    pub(crate) deposits: Vec<(u64, u32, u16)>,
    /// Deposit ticks per (epoch, bucket), sorted.
    by_bucket: HashMap<(u32, u16), Vec<u64>>,
}

impl Activity {
    pub(crate) fn new(log: &CuriousLog) -> Self {
        let mut seen: HashSet<(u64, u16, u64)> = HashSet::new();
        let mut deliveries: Vec<(u64, u32, u16)> = log
            .streams
            .iter()
            .filter_map(|s| {
                let tag = s.tag?;
                seen.insert((s.tick, s.bucket, tag))
                    .then_some((s.tick, s.epoch, s.bucket))
            })
            .collect();
        deliveries.sort_unstable();
        let mut deposits: Vec<(u64, u32, u16)> = log
            .deposits
            .iter()
            .filter(|d| d.copies.len() == 1)
            .map(|d| (d.tick, d.epoch, d.copies[0].0))
            .collect();
        deposits.sort_unstable();
        let mut by_bucket: HashMap<(u32, u16), Vec<u64>> = HashMap::new();
        for &(t, e, b) in &deposits {
            by_bucket.entry((e, b)).or_default().push(t);
        }
        Self {
            deliveries,
            deposits,
            by_bucket,
        }
    }

    /// Deposits into (epoch, bucket) at ticks in `(from, to]`.
    pub(crate) fn deposits_in(&self, epoch: u32, bucket: u16, from: u64, to: u64) -> usize {
        match self.by_bucket.get(&(epoch, bucket)) {
            None => 0,
            Some(ts) => ts.partition_point(|&t| t <= to) - ts.partition_point(|&t| t <= from),
        }
    }

    /// Deposits into (epoch, bucket) in all.
    pub(crate) fn deposit_count(&self, epoch: u32, bucket: u16) -> usize {
        self.by_bucket.get(&(epoch, bucket)).map_or(0, Vec::len)
    }

    /// The first and last tick of any delivery or deposit of `epoch`.
    pub(crate) fn span(&self, epoch: u32) -> Option<(u64, u64)> {
        let ticks = self
            .deliveries
            .iter()
            .chain(&self.deposits)
            .filter(|x| x.1 == epoch)
            .map(|x| x.0);
        let (mut lo, mut hi) = (u64::MAX, 0);
        for t in ticks {
            lo = lo.min(t);
            hi = hi.max(t);
        }
        (lo <= hi).then_some((lo, hi))
    }

    /// Delivery-to-deposit counts within one epoch: for each delivery into `a` at `t`, the
    /// deposits into every other bucket in `(t, t + window]`, as z-scores against the
    /// deposit rate of the second bucket. Returns a row-major `buckets × buckets` matrix.
    pub(crate) fn reply_z(&self, epoch: u32, buckets: u16, window: u64) -> Vec<f64> {
        let b = usize::from(buckets);
        let mut obs = vec![0.0; b * b];
        let mut deliveries = vec![0.0; b];
        let Some((t0, t1)) = self.span(epoch) else {
            return obs;
        };
        let length = (t1 - t0 + 1) as f64;
        for &(t, e, x) in &self.deliveries {
            if e != epoch || x >= buckets {
                continue;
            }
            deliveries[usize::from(x)] += 1.0;
            for y in 0..buckets {
                if y != x {
                    obs[usize::from(x) * b + usize::from(y)] +=
                        self.deposits_in(epoch, y, t, t + window) as f64;
                }
            }
        }
        for x in 0..b {
            for y in 0..b {
                if x == y {
                    obs[x * b + y] = 0.0;
                    continue;
                }
                let rate = self.deposit_count(epoch, y as u16) as f64 / length;
                let exp = deliveries[x] * rate * window as f64;
                obs[x * b + y] = (obs[x * b + y] - exp) / (exp + 1.0).sqrt();
            }
        }
        obs
    }
}

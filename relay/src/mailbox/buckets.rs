//! The buckets of a mailbox relay: the items of every epoch it still holds, kept for the
//! TTL, and the queue of each bucket's live stream (docs/PROTOCOL.md, hum/2 §H4-H6).
//!
//! Everything is in memory. A bucket's items are keyed by a sequence number (microseconds
//! since the Unix epoch at deposit, strictly increasing), so catch-up pages stay ordered
//! across a restart's fresh start. A copy deleted or expired leaves its tag and flags
//! behind (its contents go), so that the ranks catch-up requests name do not move while
//! its epoch is held.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use hum_shared::route::{
    BucketCopy, CATCH_UP_PAGE, CatchUp, CopyTag, Delete, Deposit, DepositOutcome, Item, RelayId,
    RequestOutcome, TagSeed, flag_matches,
};

/// The answer of a catch-up that finds nothing.
fn none(next_after: u64) -> RequestOutcome {
    RequestOutcome::CatchUp {
        found: false,
        next_after,
        more: false,
    }
}

/// One stored copy, or what is left of it: `item` and `seed` are `None` once it was
/// deleted or expired (its tag and flags keep its rank for catch-up; the seed, which would
/// tie it to the other copies of its deposit, goes with the item).
#[derive(Debug)]
struct Stored {
    tag: CopyTag,
    item: Option<Item>,
    flags: Vec<u8>,
    seed: Option<TagSeed>,
    expires: Instant,
}

impl Stored {
    /// What is left once the copy is deleted or expired.
    fn forget(&mut self) {
        self.item = None;
        self.seed = None;
    }
}

impl Stored {
    /// The item, while it is neither deleted nor expired.
    fn live(&self, now: Instant) -> Option<&Item> {
        self.item.as_ref().filter(|_| self.expires > now)
    }
}

/// Entries (copies and what is left of deleted or expired ones) one bucket keeps per
/// epoch, as a multiple of the bucket quota: beyond it the bucket is full for that epoch.
const ENTRIES_PER_QUOTA: usize = 4;

/// The live queue of one bucket, in two kinds: deposits with one copy (1:1 chat,
/// receipts, loops) and copies of deposits with several (groups). The kinds take turns
/// whenever both have items waiting, one-copy first, so neither starves the other: a
/// backlog of one kind delays an item of the other by at most one item. Within a kind,
/// round robin over the sources (the peer relays the deposits came through), first in
/// first out within a source. (Part counts are inside the sealed envelope: the relay
/// cannot put one-part messages first, only one-copy deposits.)
#[derive(Debug, Default)]
struct Queue {
    classes: [Vec<(RelayId, VecDeque<u64>)>; 2],
    turn: [usize; 2],
    /// The kind that was served last.
    last: Option<usize>,
}

impl Queue {
    fn push(&mut self, class: usize, source: RelayId, seq: u64) {
        let sources = &mut self.classes[class];
        match sources.iter_mut().find(|(s, _)| *s == source) {
            Some((_, q)) => q.push_back(seq),
            None => sources.push((source, VecDeque::from([seq]))),
        }
    }

    /// The next sequence number to stream, by the order above.
    fn pop(&mut self) -> Option<u64> {
        let order = if self.last == Some(0) { [1, 0] } else { [0, 1] };
        for class in order {
            if let Some(seq) = self.pop_class(class) {
                self.last = Some(class);
                return Some(seq);
            }
        }
        None
    }

    /// The next sequence number of one kind: its sources in turn.
    fn pop_class(&mut self, class: usize) -> Option<u64> {
        let sources = &mut self.classes[class];
        while !sources.is_empty() {
            let i = self.turn[class] % sources.len();
            let seq = sources[i].1.pop_front();
            if sources[i].1.is_empty() {
                sources.remove(i);
                self.turn[class] = i;
            } else {
                self.turn[class] = i + 1;
            }
            if seq.is_some() {
                return seq;
            }
        }
        None
    }

    /// Drops what `keep` refuses (items deleted or expired).
    fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        for sources in &mut self.classes {
            for (_, q) in sources.iter_mut() {
                q.retain(|&seq| keep(seq));
            }
            sources.retain(|(_, q)| !q.is_empty());
        }
    }

    fn len(&self) -> usize {
        self.classes
            .iter()
            .flatten()
            .map(|(_, q)| q.len())
            .sum::<usize>()
    }
}

/// One bucket of one epoch.
#[derive(Debug, Default)]
struct Bucket {
    items: BTreeMap<u64, Stored>,
    /// Entries of `items` whose copy is still there.
    live: usize,
    queue: Queue,
    /// Deposits taken this tick, per source (for the source cap).
    admitted: Vec<(RelayId, usize)>,
    admitted_tick: u64,
}

impl Bucket {
    fn admitted(&mut self, tick: u64, source: RelayId) -> usize {
        if self.admitted_tick != tick {
            self.admitted.clear();
            self.admitted_tick = tick;
        }
        self.admitted
            .iter()
            .find(|(s, _)| *s == source)
            .map_or(0, |(_, n)| *n)
    }

    fn admit(&mut self, source: RelayId) {
        match self.admitted.iter_mut().find(|(s, _)| *s == source) {
            Some((_, n)) => *n += 1,
            None => self.admitted.push((source, 1)),
        }
    }
}

/// Limits of the store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) buckets: u16,
    pub(crate) bucket_quota: usize,
    pub(crate) item_quota: usize,
    pub(crate) source_cap: usize,
    pub(crate) flag_mask: u8,
    pub(crate) ttl: Duration,
}

/// What the store holds, in counts (never tags or contents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BucketCounts {
    /// Items held.
    pub(crate) items: usize,
    /// Epochs with items.
    pub(crate) epochs: usize,
    /// Items waiting for the live stream.
    pub(crate) queued: usize,
}

/// Every bucket of every epoch held.
#[derive(Debug)]
pub(crate) struct Buckets {
    limits: Limits,
    epochs: BTreeMap<u32, Vec<Bucket>>,
    current: u32,
    tick: u64,
    items: usize,
    last_seq: u64,
}

impl Buckets {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            epochs: BTreeMap::new(),
            current: 0,
            tick: 0,
            items: 0,
            last_seq: 0,
        }
    }

    /// Moves to the mailbox relay's tick `tick` in epoch `epoch`. Live queues of epochs
    /// gone by are dropped (their items stay for catch-up).
    pub(crate) fn set_tick(&mut self, tick: u64, epoch: u32) {
        self.tick = tick;
        if epoch != self.current {
            self.current = epoch;
            for (e, buckets) in &mut self.epochs {
                if *e < epoch {
                    buckets.iter_mut().for_each(|b| b.queue = Queue::default());
                }
            }
        }
    }

    /// The current epoch.
    pub(crate) fn epoch(&self) -> u32 {
        self.current
    }

    fn epoch_mut(&mut self, epoch: u32) -> &mut Vec<Bucket> {
        let n = usize::from(self.limits.buckets);
        self.epochs
            .entry(epoch)
            .or_insert_with(|| (0..n).map(|_| Bucket::default()).collect())
    }

    /// Stores a deposit that came from `source`: one item per distinct bucket, queued for
    /// the live stream of its epoch. A deposit for the next epoch waits for it; one for
    /// any other epoch is answered `Retry`. All copies or none.
    pub(crate) fn deposit(
        &mut self,
        source: RelayId,
        deposit: &Deposit,
        now: Instant,
        unix_micros: u64,
    ) -> DepositOutcome {
        let epoch = deposit.epoch();
        if epoch != self.current && epoch != self.current.wrapping_add(1) {
            return DepositOutcome::Retry {
                epoch: self.current,
            };
        }
        if deposit
            .copies()
            .iter()
            .any(|c| c.bucket >= self.limits.buckets)
        {
            return DepositOutcome::Unknown;
        }
        let copies: Vec<BucketCopy> = deposit.bucket_copies();
        if self.items + copies.len() > self.limits.item_quota {
            return DepositOutcome::Full;
        }
        let (tick, limits) = (self.tick, self.limits);
        let buckets = self.epoch_mut(epoch);
        let refused = copies.iter().any(|c| {
            let b = &mut buckets[usize::from(c.bucket)];
            b.live >= limits.bucket_quota
                || b.items.len() >= limits.bucket_quota.saturating_mul(ENTRIES_PER_QUOTA)
                || b.admitted(tick, source) >= limits.source_cap
        });
        if refused {
            return DepositOutcome::Full;
        }
        let class = usize::from(copies.len() > 1);
        let expires = now + limits.ttl;
        let mut seq = unix_micros.max(self.last_seq.saturating_add(1));
        let n = copies.len();
        let buckets = self.epoch_mut(epoch);
        for c in copies {
            let b = &mut buckets[usize::from(c.bucket)];
            b.admit(source);
            b.queue.push(class, source, seq);
            b.live += 1;
            b.items.insert(
                seq,
                Stored {
                    tag: c.item.tag(),
                    item: Some(c.item),
                    flags: c.flags,
                    seed: Some(deposit.seed().clone()),
                    expires,
                },
            );
            seq += 1;
        }
        self.items += n;
        self.last_seq = seq - 1;
        DepositOutcome::Stored
    }

    /// The live stream batch of the current epoch: every bucket's next item, or random
    /// bytes for a bucket with nothing queued.
    #[cfg(test)]
    pub(crate) fn stream(&mut self) -> Vec<Item> {
        self.stream_marked()
            .into_iter()
            .map(|i| i.unwrap_or_else(Item::random))
            .collect()
    }

    /// As the stream batch, with `None` where a bucket has nothing queued (the batch
    /// carries random bytes there).
    pub(crate) fn stream_marked(&mut self) -> Vec<Option<Item>> {
        let epoch = self.current;
        let buckets = self.epoch_mut(epoch);
        buckets
            .iter_mut()
            .map(|b| {
                loop {
                    let seq = b.queue.pop()?;
                    // Deleted or expired since it was queued: the next one.
                    if let Some(item) = b.items.get(&seq).and_then(|s| s.item.as_ref()) {
                        break Some(item.clone());
                    }
                }
            })
            .collect()
    }

    /// Answers a catch-up request: the entry of rank `c.rank` among those after `c.after`
    /// whose flags match (deleted and expired copies keep their rank, and are answered
    /// `found: false`), the sequence of that entry (the anchor of the next page), and
    /// whether a copy that matches follows it. No such entry: `next_after` is the bucket's
    /// last sequence (or `after`) and nothing follows. `None` for a request out of range:
    /// a rank beyond the page, a bucket this relay does not have, an epoch after the next.
    pub(crate) fn catch_up(
        &self,
        c: &CatchUp,
        now: Instant,
    ) -> Option<(Option<Item>, RequestOutcome)> {
        if c.rank >= CATCH_UP_PAGE
            || c.bucket >= self.limits.buckets
            || c.epoch > self.current.saturating_add(1)
        {
            return None;
        }
        let Some(bucket) = self
            .epochs
            .get(&c.epoch)
            .and_then(|b| b.get(usize::from(c.bucket)))
        else {
            return Some((None, none(c.after)));
        };
        let mask = self.limits.flag_mask;
        let mut matches = bucket
            .items
            .range(c.after.saturating_add(1)..)
            .filter(|(_, s)| flag_matches(&c.detect, &s.tag, &s.flags, mask));
        let Some((&seq, entry)) = matches.nth(usize::from(c.rank)) else {
            let last = bucket.items.keys().next_back().copied().unwrap_or(0);
            return Some((None, none(last.max(c.after))));
        };
        let item = entry.live(now).cloned();
        let more = matches.any(|(_, s)| s.live(now).is_some());
        Some((
            item.clone(),
            RequestOutcome::CatchUp {
                found: item.is_some(),
                next_after: seq,
                more,
            },
        ))
    }

    /// Deletes the copy tagged `d.tag` when `d.proof` is the tag secret its seed was made
    /// from. Returns whether something was deleted.
    pub(crate) fn delete(&mut self, d: &Delete) -> bool {
        let Some(bucket) = self
            .epochs
            .get_mut(&d.epoch)
            .and_then(|b| b.get_mut(usize::from(d.bucket)))
        else {
            return false;
        };
        let found = bucket
            .items
            .iter()
            .find(|(_, s)| {
                s.item.is_some()
                    && s.tag == d.tag
                    && s.seed.as_ref().is_some_and(|x| x.is_proven_by(&d.proof))
            })
            .map(|(&seq, _)| seq);
        let Some(seq) = found else {
            return false;
        };
        if let Some(s) = bucket.items.get_mut(&seq) {
            s.forget();
        }
        bucket.live -= 1;
        let items = &bucket.items;
        bucket
            .queue
            .retain(|s| items.get(&s).is_some_and(|s| s.item.is_some()));
        self.items -= 1;
        true
    }

    /// Deletes what has expired, and epochs left empty; returns how many items went.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let mut gone = 0;
        let current = self.current;
        self.epochs.retain(|&e, buckets| {
            for b in buckets.iter_mut() {
                for s in b.items.values_mut() {
                    if s.item.is_some() && s.expires <= now {
                        s.forget();
                        b.live -= 1;
                        gone += 1;
                    }
                }
                let items = &b.items;
                b.queue
                    .retain(|seq| items.get(&seq).is_some_and(|s| s.item.is_some()));
            }
            // An epoch goes (with what is left of its copies) once nothing in it is live.
            e >= current || buckets.iter().any(|b| b.live > 0)
        });
        self.items -= gone;
        gone
    }

    /// What is held, in counts.
    pub(crate) fn counts(&self) -> BucketCounts {
        BucketCounts {
            items: self.items,
            epochs: self
                .epochs
                .values()
                .filter(|b| b.iter().any(|b| b.live > 0))
                .count(),
            queued: self.epochs.values().flatten().map(|b| b.queue.len()).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hum_shared::route::{Copy, DeliverySecret, TagKey, WrappedEnvelope};

    const A: RelayId = RelayId::from_bytes([1; 8]);
    const B: RelayId = RelayId::from_bytes([2; 8]);

    fn limits() -> Limits {
        Limits {
            buckets: 4,
            bucket_quota: 3,
            item_quota: 8,
            source_cap: 2,
            flag_mask: 0xff,
            ttl: Duration::from_secs(60),
        }
    }

    fn deposit(epoch: u32, copies: &[(u16, u8)], key: &TagKey, n: u64) -> Deposit {
        let copies: Vec<Copy> = copies
            .iter()
            .map(|&(bucket, flag)| Copy { bucket, flag })
            .collect();
        Deposit::new(
            epoch,
            &copies,
            key.secret(epoch, n).seed(),
            WrappedEnvelope::random(),
        )
        .expect("a valid deposit")
    }

    #[test]
    fn epochs_quotas_and_the_source_cap() {
        let mut s = Buckets::new(limits());
        let now = Instant::now();
        s.set_tick(100, 5);
        let k = TagKey::generate();
        assert_eq!(
            s.deposit(A, &deposit(4, &[(1, 0)], &k, 0), now, 1),
            DepositOutcome::Retry { epoch: 5 }
        );
        assert_eq!(
            s.deposit(A, &deposit(7, &[(1, 0)], &k, 0), now, 1),
            DepositOutcome::Retry { epoch: 5 }
        );
        // The next epoch's deposit is kept, and not streamed before it starts.
        assert_eq!(
            s.deposit(A, &deposit(6, &[(1, 0)], &k, 0), now, 1),
            DepositOutcome::Stored
        );
        for n in 1..=2 {
            assert_eq!(
                s.deposit(A, &deposit(5, &[(2, 0)], &k, n), now, 1),
                DepositOutcome::Stored
            );
        }
        // Source cap: a third from A this tick is refused, B still gets in.
        assert_eq!(
            s.deposit(A, &deposit(5, &[(2, 0)], &k, 3), now, 1),
            DepositOutcome::Full
        );
        assert_eq!(
            s.deposit(B, &deposit(5, &[(2, 0)], &k, 4), now, 1),
            DepositOutcome::Stored
        );
        // Bucket quota (3): full now, whoever asks, next tick too.
        s.set_tick(101, 5);
        assert_eq!(
            s.deposit(B, &deposit(5, &[(2, 0)], &k, 5), now, 1),
            DepositOutcome::Full
        );
        // Out-of-range buckets are not stored.
        assert_eq!(
            s.deposit(B, &deposit(5, &[(9, 0)], &k, 6), now, 1),
            DepositOutcome::Unknown
        );
        assert_eq!(s.counts().items, 4);
        let streamed = s.stream();
        assert_eq!(streamed.len(), 4);
        // Two left in bucket 2, and the next epoch's one waiting.
        assert_eq!(s.counts().queued, 3);
        // The item quota (8) holds across buckets.
        s.set_tick(102, 5);
        let wide = deposit(5, &[(0, 0), (1, 0), (3, 0), (3, 1)], &k, 7);
        assert_eq!(s.deposit(A, &wide, now, 1), DepositOutcome::Stored);
        assert_eq!(
            s.deposit(A, &deposit(5, &[(0, 0), (1, 0), (3, 0)], &k, 8), now, 1),
            DepositOutcome::Full
        );
        // Expiry frees everything at the TTL.
        assert_eq!(s.expire(now + Duration::from_secs(61)), 7);
        assert_eq!(s.counts(), BucketCounts::default());
    }

    /// A catch-up request of rank `rank` after `after`, answered (`Err` when refused).
    fn ask(
        s: &Buckets,
        epoch: u32,
        bucket: u16,
        detect: &hum_shared::route::DetectionKey,
        after: u64,
        rank: u8,
        now: Instant,
    ) -> Result<(Option<Item>, RequestOutcome), String> {
        let req = CatchUp {
            bucket,
            epoch,
            detect: detect.clone(),
            after,
            rank,
        };
        s.catch_up(&req, now)
            .ok_or_else(|| format!("rank {rank} of bucket {bucket} refused"))
    }

    /// `found`, `next_after` and `more` of a catch-up outcome.
    fn outcome(o: &RequestOutcome) -> Result<(bool, u64, bool), String> {
        match *o {
            RequestOutcome::CatchUp {
                found,
                next_after,
                more,
            } => Ok((found, next_after, more)),
            _ => Err(format!("not a catch-up outcome: {o:?}")),
        }
    }

    #[test]
    fn ranks_page_through_an_epoch_and_keep_their_place_when_copies_go() -> Result<(), String> {
        let mut s = roomy();
        let now = Instant::now();
        s.set_tick(0, 2);
        let dk = DeliverySecret::generate().detection_key(2);
        let k = TagKey::generate();
        // Twenty copies for us in bucket 0, each after one that is not.
        let mut mine = Vec::new();
        for n in 0..40 {
            let seed = k.secret(2, n).seed();
            let flag = dk.flag(&seed.copy_tag(0)) ^ u8::from(n % 2 == 1);
            assert_eq!(
                s.deposit(A, &deposit(2, &[(0, flag)], &k, n), now, 1),
                DepositOutcome::Stored
            );
            if n % 2 == 0 {
                mine.push((k.secret(2, n), seed.copy_tag(0)));
            }
        }
        // Rank 3 of the first page, asked before and after ranks 0 to 2 were deleted and
        // one was expired by hand: the same copy.
        let (before, o) = ask(&s, 2, 0, &dk, 0, 3, now)?;
        assert_eq!(before.map(|i| i.tag()), Some(mine[3].1));
        let (_, anchor3, more) = outcome(&o)?;
        assert!(more);
        for (proof, tag) in &mine[..2] {
            assert!(s.delete(&Delete {
                bucket: 0,
                epoch: 2,
                tag: *tag,
                proof: proof.clone(),
            }));
        }
        let (after, o) = ask(&s, 2, 0, &dk, 0, 3, now)?;
        assert_eq!(after.map(|i| i.tag()), Some(mine[3].1));
        assert_eq!(outcome(&o)?.1, anchor3);
        // A deleted rank answers nothing found, but names its place.
        let (gone, o) = ask(&s, 2, 0, &dk, 0, 1, now)?;
        assert!(gone.is_none());
        let (found, _, more) = outcome(&o)?;
        assert!(!found && more);
        // Page by page (each page's anchor the last rank's next_after): every copy of
        // ours not deleted, in order, once.
        let mut got = Vec::new();
        let mut anchor = 0;
        loop {
            let mut next = None;
            for rank in 0..CATCH_UP_PAGE {
                let (item, o) = ask(&s, 2, 0, &dk, anchor, rank, now)?;
                got.extend(item.map(|i| i.tag()));
                let (_, next_after, more) = outcome(&o)?;
                if rank == CATCH_UP_PAGE - 1 && more {
                    next = Some(next_after);
                }
            }
            match next {
                Some(n) => anchor = n,
                None => break,
            }
        }
        let want: Vec<CopyTag> = mine[2..].iter().map(|(_, t)| *t).collect();
        assert_eq!(got, want);
        // What is left of a deleted copy is its tag and flags: not its seed, which would
        // tie it to the other copies of its deposit.
        let left: Vec<bool> = s.epochs[&2][0]
            .items
            .values()
            .filter(|st| st.item.is_none())
            .map(|st| st.seed.is_none())
            .collect();
        assert_eq!(left, [true, true]);
        // Past the last copy: nothing found, nothing more.
        let (none, o) = ask(&s, 2, 0, &dk, 0, 7, now + Duration::from_secs(61))?;
        assert!(none.is_none());
        assert!(!outcome(&o)?.2);
        // Out of range: a rank beyond the page, a bucket the relay lacks, an epoch after
        // the next.
        for (epoch, bucket, rank) in [(2, 0, CATCH_UP_PAGE), (2, 4, 0), (4, 0, 0)] {
            assert!(ask(&s, epoch, bucket, &dk, 0, rank, now).is_err());
        }
        // Expired copies keep their rank too: rank 3 still names its place.
        s.expire(now + Duration::from_secs(61));
        assert_eq!(s.counts().items, 0);
        let (_, o) = ask(&s, 2, 0, &dk, 0, 3, now)?;
        assert_eq!(outcome(&o)?, (false, anchor3, false));
        Ok(())
    }

    /// A store with room for every test's deposits.
    fn roomy() -> Buckets {
        Buckets::new(Limits {
            source_cap: 100,
            bucket_quota: 100,
            item_quota: 200,
            ..limits()
        })
    }

    /// The tags bucket `bucket` streams in its next `n` batches.
    fn streamed(s: &mut Buckets, bucket: usize, n: usize) -> Vec<CopyTag> {
        (0..n).map(|_| s.stream()[bucket].tag()).collect()
    }

    #[test]
    fn neither_kind_starves_the_other_in_a_bucket() {
        let mut s = roomy();
        let now = Instant::now();
        s.set_tick(0, 0);
        let k = TagKey::generate();
        let tag = |d: &Deposit| d.seed().copy_tag(0);
        // A backlog of twenty 1:1 items, then three group messages (copies in buckets 0
        // and 1): each group copy waits behind one 1:1 item at most, not behind all 20.
        let one: Vec<Deposit> = (0..20).map(|n| deposit(0, &[(0, 1)], &k, n)).collect();
        let groups: Vec<Deposit> = (20..23)
            .map(|n| deposit(0, &[(0, 1), (1, 2)], &k, n))
            .collect();
        for d in one.iter().chain(&groups) {
            assert_eq!(s.deposit(A, d, now, 1), DepositOutcome::Stored);
        }
        let order = streamed(&mut s, 0, 23);
        let at = |d: &Deposit| order.iter().position(|t| *t == tag(d));
        assert_eq!(
            groups.iter().map(at).collect::<Vec<_>>(),
            [Some(1), Some(3), Some(5)]
        );
        // The 1:1 items keep their order among themselves.
        let ones: Vec<usize> = one.iter().filter_map(at).collect();
        assert_eq!(ones.len(), 20);
        assert!(ones.windows(2).all(|w| w[0] < w[1]));
        // And the reverse: a 1:1 item behind a backlog of group copies goes next.
        s.set_tick(2, 0);
        let tag2 = |d: &Deposit| d.seed().copy_tag(2);
        let many: Vec<Deposit> = (30..50)
            .map(|n| deposit(0, &[(2, 1), (3, 2)], &k, n))
            .collect();
        for d in &many {
            assert_eq!(s.deposit(B, d, now, 1), DepositOutcome::Stored);
        }
        assert_eq!(streamed(&mut s, 2, 2), [tag2(&many[0]), tag2(&many[1])]);
        let late = deposit(0, &[(2, 1)], &k, 50);
        assert_eq!(s.deposit(B, &late, now, 1), DepositOutcome::Stored);
        assert_eq!(streamed(&mut s, 2, 2), [tag2(&late), tag2(&many[2])]);
    }

    #[test]
    fn the_stream_takes_kinds_and_sources_in_turn() {
        let mut s = Buckets::new(Limits {
            source_cap: 10,
            bucket_quota: 10,
            ..limits()
        });
        let now = Instant::now();
        s.set_tick(0, 0);
        let k = TagKey::generate();
        let group = deposit(0, &[(0, 1), (1, 1)], &k, 0);
        let a1 = deposit(0, &[(0, 1)], &k, 1);
        let a2 = deposit(0, &[(0, 1)], &k, 2);
        let b1 = deposit(0, &[(0, 1)], &k, 3);
        for (src, d) in [(A, &group), (A, &a1), (A, &a2), (B, &b1)] {
            assert_eq!(s.deposit(src, d, now, 1), DepositOutcome::Stored);
        }
        let tag = |d: &Deposit| d.seed().copy_tag(0);
        let order = streamed(&mut s, 0, 5);
        // One-copy first, then the kinds in turn; within one kind the sources in turn.
        assert_eq!(order[..4], [tag(&a1), tag(&group), tag(&b1), tag(&a2)]);
        // Nothing left: random bytes, not a repeat.
        assert!(![tag(&a1), tag(&a2), tag(&b1), tag(&group)].contains(&order[4]));
    }

    #[test]
    fn catch_up_pages_by_flag_and_delete_needs_the_proof() -> Result<(), String> {
        let mut s = Buckets::new(Limits {
            source_cap: 10,
            bucket_quota: 10,
            ..limits()
        });
        let now = Instant::now();
        s.set_tick(0, 3);
        let bob = DeliverySecret::generate();
        let dk = bob.detection_key(3);
        let k = TagKey::generate();
        let mut mine = Vec::new();
        for n in 0..6 {
            let seed = k.secret(3, n).seed();
            let flag = if n % 2 == 0 {
                dk.flag(&seed.copy_tag(1))
            } else {
                dk.flag(&seed.copy_tag(1)) ^ 1
            };
            let d = deposit(3, &[(1, flag)], &k, n);
            assert_eq!(s.deposit(A, &d, now, 10), DepositOutcome::Stored);
            if n % 2 == 0 {
                mine.push(d.seed().copy_tag(1));
            }
        }
        // One page: every rank after the anchor 0, none needing another's answer.
        let mut found = Vec::new();
        for rank in 0..CATCH_UP_PAGE {
            let (item, outcome) = ask(&s, 3, 1, &dk, 0, rank, now)?;
            if let Some(i) = item {
                assert!(matches!(
                    outcome,
                    RequestOutcome::CatchUp { found: true, .. }
                ));
                found.push(i.tag());
            }
        }
        assert_eq!(found, mine);
        // A wrong proof deletes nothing; the tag secret does.
        let wrong = Delete {
            bucket: 1,
            epoch: 3,
            tag: mine[0],
            proof: k.secret(3, 1),
        };
        assert!(!s.delete(&wrong));
        let right = Delete {
            proof: k.secret(3, 0),
            ..wrong
        };
        assert!(s.delete(&right));
        assert_eq!(s.counts().items, 5);
        // The deleted copy is not streamed.
        let streamed: Vec<CopyTag> = (0..6).map(|_| s.stream()[1].tag()).collect();
        assert!(!streamed.contains(&mine[0]));
        assert!(streamed.contains(&mine[1]));
        Ok(())
    }
}

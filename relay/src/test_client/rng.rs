//! A small seedable random source for the test client's and the load's behaviour (delays,
//! Poisson processes, the social graph), so that a run and a unit test can be replayed
//! from a seed. It decides *when* things happen, never key material: every key, nonce and
//! ephemeral comes from `hum_shared`'s system randomness.

/// SplitMix64: fast, small, good enough for simulation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator replayable from `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator seeded from the system.
    pub fn from_os() -> Self {
        Self(u64::from_le_bytes(crate::random::bytes()))
    }

    /// A new generator for a sub-stream, so that adding draws in one place does not move
    /// every other.
    pub fn fork(&mut self) -> Self {
        Self(self.next_u64() ^ 0x5851_f42d_4c95_7f2d)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1]`.
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() <= p
    }

    /// Exponential with mean `mean` (0 when `mean` is not positive).
    pub fn exp(&mut self, mean: f64) -> f64 {
        if mean > 0.0 {
            -mean * self.unit().ln()
        } else {
            0.0
        }
    }

    /// Shuffles `v` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seed_replays_and_the_draws_have_their_means() {
        let (mut a, mut b) = (Rng::seeded(7), Rng::seeded(7));
        assert_eq!(
            (0..5).map(|_| a.next_u64()).collect::<Vec<_>>(),
            (0..5).map(|_| b.next_u64()).collect::<Vec<_>>()
        );
        let n = 200_000;
        let mean = (0..n).map(|_| a.exp(30.0)).sum::<f64>() / f64::from(n);
        assert!((mean - 30.0).abs() < 0.5, "{mean}");
        let hits = (0..n).filter(|_| a.chance(0.25)).count();
        assert!((hits as f64 / f64::from(n) - 0.25).abs() < 0.01);
        let mut seen = [0usize; 10];
        (0..n).for_each(|_| seen[a.below(10)] += 1);
        assert!(
            seen.iter()
                .all(|&c| (c as f64 / f64::from(n) - 0.1).abs() < 0.01)
        );
        assert!((0..1000).all(|_| (3..=5).contains(&a.between(3, 5))));
    }
}

//! The draws a session makes from its injected CSPRNG: delays, Poisson arrivals, padding.

use rand_core::CryptoRng;

/// The random source a session draws from: any CSPRNG (see [`super::system_rng`]).
pub type SessionRng = Box<dyn CryptoRng + Send>;

/// Uniform in `(0, 1]`.
pub(super) fn unit(rng: &mut SessionRng) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
}

/// Uniform in `0..n` (0 when `n` is 0).
pub(super) fn below(rng: &mut SessionRng, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

/// True with probability `p`.
pub(super) fn chance(rng: &mut SessionRng, p: f64) -> bool {
    unit(rng) <= p
}

/// An exponential delay of mean `mean` ticks, rounded to whole ticks (0 when `mean` is not
/// positive).
pub(super) fn delay(rng: &mut SessionRng, mean: f64) -> u64 {
    if mean > 0.0 {
        (-mean * unit(rng).ln()).round() as u64
    } else {
        0
    }
}

/// A delay of mean `mean` ticks drawn as `shape` says (0 when `mean` is not positive).
pub(super) fn delay_shaped(rng: &mut SessionRng, mean: f64, shape: super::DelayShape) -> u64 {
    match shape {
        super::DelayShape::Exponential => delay(rng, mean),
        super::DelayShape::Uniform if mean > 0.0 => below(rng, (2.0 * mean).round() as u64 + 1),
        super::DelayShape::Uniform => 0,
    }
}

/// Shuffles `v` in place (Fisher-Yates).
pub(super) fn shuffle<T>(rng: &mut SessionRng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// The operating system's CSPRNG, as a [`SessionRng`].
pub(super) fn system() -> SessionRng {
    Box::new(crate::crypto::kdf::rng())
}

#[cfg(test)]
mod tests {
    use super::super::DelayShape;
    use super::*;

    #[test]
    fn uniform_delays_stay_within_twice_the_mean_and_exponential_ones_do_not() {
        let mut rng = system();
        let draws = |rng: &mut SessionRng, shape| -> Vec<u64> {
            (0..4_000).map(|_| delay_shaped(rng, 10.0, shape)).collect()
        };
        let uniform = draws(&mut rng, DelayShape::Uniform);
        assert!(uniform.iter().all(|&d| d <= 20));
        let mean = uniform.iter().sum::<u64>() as f64 / uniform.len() as f64;
        assert!((9.0..11.0).contains(&mean), "{mean}");
        // P(an exponential draw above 2 means) = e^-2: about 540 of 4,000.
        let exponential = draws(&mut rng, DelayShape::Exponential);
        assert!(exponential.iter().filter(|&&d| d > 20).count() > 300);
        assert_eq!(delay_shaped(&mut rng, 0.0, DelayShape::Uniform), 0);
    }
}

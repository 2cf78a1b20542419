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

//! Randomness from the operating system's CSPRNG: shuffles of batches, random fillers,
//! jitter.

use hum_shared::route::ANSWER_LEN;

/// Random bytes; the OS generator does not fail on supported systems, and a failure here
/// leaves zeros rather than stopping the beat.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if getrandom::fill(&mut out).is_err() {
        tracing::error!("the system random generator failed");
    }
    out
}

/// A uniform number below `n` (`n > 0`), without modulo bias.
pub(crate) fn below(n: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let x = u64::from_be_bytes(bytes());
        if x < zone {
            return x % n;
        }
    }
}

/// Shuffles `items` in place (Fisher-Yates with the CSPRNG).
pub(crate) fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = usize::try_from(below(i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}

/// A random answer's bytes, standing for one that is not there.
pub(crate) fn answer() -> [u8; ANSWER_LEN] {
    bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_permutations_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let mut v: Vec<u32> = (0..16).collect();
            shuffle(&mut v);
            let mut sorted = v.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..16).collect::<Vec<_>>());
            seen.insert(v);
        }
        assert!(seen.len() > 15, "shuffles repeat: {}", seen.len());
        assert!((0..1000).all(|_| below(3) < 3));
    }
}

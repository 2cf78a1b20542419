//! The home role's guard against replayed slots.

use std::collections::{HashSet, VecDeque};

use super::{RouteError, Slot};

/// Remembers the ephemeral keys of the slots a home relay opened over the last `window`
/// of its own ticks, and refuses one seen again (docs/PROTOCOL.md, hum/2 §H4.3).
///
/// A slot's associated data binds the entry relay's id and tick, so a slot replayed into
/// a later batch does not open at all; the guard catches a slot repeated within a batch or
/// under a repeated tick. Memory is bounded: at most `per_tick` keys for each of `window`
/// ticks (32 bytes each); beyond that a tick's slots are refused.
#[derive(Debug)]
pub struct ReplayGuard {
    window: u64,
    per_tick: usize,
    ticks: VecDeque<(u64, HashSet<[u8; 32]>)>,
}

impl ReplayGuard {
    /// A guard over `window` ticks (at least 1) holding at most `per_tick` keys per tick
    /// (the sum of the capacities of the links slots arrive on).
    pub fn new(window: u64, per_tick: usize) -> ReplayGuard {
        ReplayGuard {
            window: window.max(1),
            per_tick,
            ticks: VecDeque::new(),
        }
    }

    /// Checks the slot opened at our tick `now` and remembers it. Call it only for a slot
    /// that opened (so a stranger cannot fill the guard with garbage).
    ///
    /// # Errors
    /// [`RouteError::Replay`] if its ephemeral was seen in the window;
    /// [`RouteError::Stale`] for a tick older than the window;
    /// [`RouteError::GuardFull`] when `now` already holds `per_tick` keys.
    pub fn check(&mut self, now: u64, slot: &Slot) -> Result<(), RouteError> {
        let eph: [u8; 32] = super::kdf::take(&slot.as_bytes()[..], 1);
        let newest = self.ticks.back().map_or(now, |(t, _)| *t);
        if now.saturating_add(self.window) <= newest {
            return Err(RouteError::Stale { tick: now, newest });
        }
        let newest = newest.max(now);
        while self
            .ticks
            .front()
            .is_some_and(|(t, _)| t.saturating_add(self.window) <= newest)
        {
            self.ticks.pop_front();
        }
        if self.ticks.iter().any(|(_, seen)| seen.contains(&eph)) {
            return Err(RouteError::Replay);
        }
        if !self.ticks.iter().any(|(t, _)| *t == now) {
            let at = self.ticks.partition_point(|(t, _)| *t < now);
            self.ticks.insert(at, (now, HashSet::new()));
        }
        let Some((_, seen)) = self.ticks.iter_mut().find(|(t, _)| *t == now) else {
            return Err(RouteError::Stale { tick: now, newest });
        };
        if seen.len() >= self.per_tick {
            return Err(RouteError::GuardFull);
        }
        seen.insert(eph);
        Ok(())
    }

    /// The number of keys held.
    pub fn len(&self) -> usize {
        self.ticks.iter().map(|(_, s)| s.len()).sum()
    }

    /// Whether the guard holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_repeats_within_the_window_and_forgets_after() -> Result<(), RouteError> {
        let mut g = ReplayGuard::new(8, 4);
        let a = Slot::random();
        let b = Slot::random();
        g.check(100, &a)?;
        assert_eq!(g.check(100, &a), Err(RouteError::Replay));
        g.check(101, &b)?;
        assert_eq!(g.check(107, &a), Err(RouteError::Replay));
        // Tick 108: tick 100 has left the window.
        g.check(108, &a)?;
        assert_eq!(g.check(108, &b), Err(RouteError::Replay));
        assert!(matches!(
            g.check(100, &Slot::random()),
            Err(RouteError::Stale { .. })
        ));
        // A tick inside the window that came late still counts.
        g.check(104, &Slot::random())?;
        let c = Slot::random();
        g.check(103, &c)?;
        assert_eq!(g.check(109, &c), Err(RouteError::Replay));
        Ok(())
    }

    #[test]
    fn memory_is_bounded() -> Result<(), RouteError> {
        let mut g = ReplayGuard::new(3, 2);
        for tick in 0..50 {
            g.check(tick, &Slot::random())?;
            g.check(tick, &Slot::random())?;
            assert_eq!(g.check(tick, &Slot::random()), Err(RouteError::GuardFull));
            assert!(g.len() <= 6);
        }
        assert_eq!(g.len(), 6);
        Ok(())
    }
}

//! Attack 6, an equivocating mailbox relay: it withheld one bucket's stream from one entry
//! relay for a while (the ground truth says when) and watches whether that entry relay's
//! traffic reacts. The observable is the entry relay's real slots (or, without slot
//! records, its deposits): their rate inside the period against outside (rate ratio and the
//! exact conditional Poisson test), and their timing (the Kolmogorov–Smirnov distance
//! between the gaps inside and outside). The control places a period of the same length at
//! random elsewhere in the log.

use super::control::Control;
use super::report::{Row, Skipped};
use super::rng::Rng;
use super::stats::{ks_p_value, poisson_rate_test};
use crate::observer::ks_statistic;

use super::view::View;

pub(crate) fn equivocation(v: &View<'_>, role: &str) -> Vec<Result<Row, Skipped>> {
    let skip =
        |reason: &str| Skipped::all(&["equivocation-rate", "equivocation-timing"], role, reason);
    let Some(eq) = v.truth.equivocations.first() else {
        return skip("the ground truth names no equivocation");
    };
    let Some((t0, t1)) = v.log.span_ms else {
        return skip("the log is empty");
    };
    let mut events: Vec<f64> = if v.log.mailbox_slots.is_empty() {
        v.log
            .deposits
            .iter()
            .filter(|d| d.source == eq.to)
            .map(|d| d.ms)
            .collect()
    } else {
        v.log
            .mailbox_slots
            .iter()
            .filter(|s| s.source == eq.to && s.kind.is_real())
            .map(|s| s.ms)
            .collect()
    };
    events.sort_by(f64::total_cmp);
    let len = eq.end - eq.start;
    if events.len() < 10 || t1 - t0 < 2.0 * len {
        return skip("too few events from that entry relay, or a log not twice the period long");
    }
    let real = measure(&events, eq.start, eq.end, (t0, t1));
    let o = v.options;
    let mut ratios = Vec::new();
    let mut distances = Vec::new();
    let mut rng = Rng::new(o.seed ^ 0xe9e1);
    for _ in 0..o.permutations {
        let mut start = t0 + rng.unit() * (t1 - t0 - len);
        for _ in 0..100 {
            if start + len <= eq.start || start >= eq.end {
                break;
            }
            start = t0 + rng.unit() * (t1 - t0 - len);
        }
        let m = measure(&events, start, start + len, (t0, t1));
        ratios.push(m.ratio);
        distances.push(m.distance);
    }
    let method_rate = format!(
        "real slots from entry {:016x} while bucket {} was withheld from it: rate inside over outside",
        eq.to, eq.bucket
    );
    let mut rate = Row::new(
        "equivocation-rate",
        role,
        &method_rate,
        real.ratio,
        Control::from_scores(&mut ratios, o.level),
        events.len(),
    );
    rate.p_value = Some(real.rate_p);
    let mut timing = Row::new(
        "equivocation-timing",
        role,
        "KS distance of the gaps between those slots, inside against outside",
        real.distance,
        Control::from_scores(&mut distances, o.level),
        events.len(),
    );
    timing.p_value = Some(real.timing_p);
    vec![Ok(rate), Ok(timing)]
}

struct Measure {
    ratio: f64,
    rate_p: f64,
    distance: f64,
    timing_p: f64,
}

/// The rate ratio and gap distance of `events` inside `[start, end)` against the rest of
/// `span`.
fn measure(events: &[f64], start: f64, end: f64, span: (f64, f64)) -> Measure {
    let inside = |t: f64| t >= start && t < end;
    let c1 = events.iter().filter(|&&t| inside(t)).count() as u64;
    let c0 = events.len() as u64 - c1;
    let t1 = end - start;
    let t0 = (span.1 - span.0) - t1;
    let (ratio, rate_p) = poisson_rate_test(c1, t1, c0, t0.max(1.0));
    let (mut gin, mut gout) = (Vec::new(), Vec::new());
    for w in events.windows(2) {
        match (inside(w[0]), inside(w[1])) {
            (true, true) => gin.push(w[1] - w[0]),
            (false, false) => gout.push(w[1] - w[0]),
            _ => {}
        }
    }
    let (distance, timing_p) = if gin.is_empty() || gout.is_empty() {
        (0.0, 1.0)
    } else {
        let d = ks_statistic(&gin, &gout);
        (d, ks_p_value(d, gin.len(), gout.len()))
    };
    Measure {
        ratio: if ratio.is_finite() { ratio } else { 1e9 },
        rate_p,
        distance,
        timing_p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busier_period_shows_in_rate_and_gaps_and_a_quiet_one_does_not() {
        let mut r = Rng::new(4);
        let mut events: Vec<f64> = (0..2_000).map(|_| r.unit() * 10_000.0).collect();
        let calm = {
            let mut e = events.clone();
            e.sort_by(f64::total_cmp);
            measure(&e, 4_000.0, 5_000.0, (0.0, 10_000.0))
        };
        assert!(
            (calm.ratio - 1.0).abs() < 0.2 && calm.rate_p > 0.01,
            "{}",
            calm.ratio
        );
        assert!(calm.timing_p > 0.01, "{}", calm.timing_p);
        // Twice the rate in [4000, 5000).
        events.extend((0..200).map(|_| 4_000.0 + r.unit() * 1_000.0));
        events.sort_by(f64::total_cmp);
        let busy = measure(&events, 4_000.0, 5_000.0, (0.0, 10_000.0));
        assert!((busy.ratio - 2.0).abs() < 0.3, "{}", busy.ratio);
        assert!(
            busy.rate_p < 1e-6 && busy.timing_p < 1e-3,
            "{} {}",
            busy.rate_p,
            busy.timing_p
        );
        assert!(busy.distance > calm.distance);
    }
}

//! The shuffled-label control: the same attack scored against the ground truth with its
//! labels permuted, many times. Its spread is what chance looks like for this attack on
//! this run, base rates and sample size included.

use serde::Serialize;

use super::rng::Rng;
use super::stats::{mean_sd, quantile};

/// z for a two-sided 5% test plus z for 80% power: a score this many standard deviations
/// of the control above its mean is seen four times in five.
const DETECTABLE_Z: f64 = 1.959_964 + 0.841_621;

/// The distribution of an attack's score under permuted labels.
#[derive(Debug, Clone, Serialize)]
pub struct Control {
    /// Lower end of the central interval.
    pub lo: f64,
    /// Upper end of the central interval.
    pub hi: f64,
    /// Mean of the permuted scores.
    pub mean: f64,
    /// Their standard deviation.
    pub sd: f64,
    /// How many permutations were scored.
    pub runs: usize,
    /// The permuted scores, sorted.
    #[serde(skip)]
    scores: Vec<f64>,
}

impl Control {
    /// Scores `attack` (given a generator for one permutation) `runs` times; permutations
    /// the attack cannot score (it returns `None`) are left out.
    pub(crate) fn run(
        runs: usize,
        level: f64,
        rng: &Rng,
        mut attack: impl FnMut(&mut Rng) -> Option<f64>,
    ) -> Self {
        let mut scores: Vec<f64> = (0..runs)
            .filter_map(|i| attack(&mut rng.fork(i as u64 + 1)))
            .filter(|s| s.is_finite())
            .collect();
        Self::from_scores(&mut scores, level)
    }

    /// The control of already-computed permuted scores.
    pub(crate) fn from_scores(scores: &mut [f64], level: f64) -> Self {
        scores.sort_by(f64::total_cmp);
        let tail = (1.0 - level) / 2.0;
        let (mean, sd) = mean_sd(scores);
        Self {
            lo: quantile(scores, tail),
            hi: quantile(scores, 1.0 - tail),
            mean,
            sd,
            runs: scores.len(),
            scores: scores.to_vec(),
        }
    }

    /// The permutation p-value of `score` (one-sided, upper): the share of permuted scores at
    /// least as high, counting the real one among them.
    pub fn p_above(&self, score: f64) -> f64 {
        let at_least = self.scores.len() - self.scores.partition_point(|s| *s < score - 1e-12);
        (1 + at_least) as f64 / (1 + self.scores.len()) as f64
    }

    /// Whether `score` lies inside the interval.
    pub fn contains(&self, score: f64) -> bool {
        const EPS: f64 = 1e-9;
        score >= self.lo - EPS && score <= self.hi + EPS
    }

    /// The smallest score this run would tell from chance four times in five (two-sided
    /// 5% test, 80% power): mean plus 2.8 standard deviations of the control.
    pub fn min_effect(&self) -> f64 {
        self.mean + DETECTABLE_Z * self.sd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::stats::auc;

    #[test]
    fn the_interval_holds_the_central_mass_of_the_scores() {
        let mut s: Vec<f64> = (0..=1000).map(|i| f64::from(i) / 1000.0).collect();
        let c = Control::from_scores(&mut s, 0.95);
        assert!(
            (c.lo - 0.025).abs() < 1e-9 && (c.hi - 0.975).abs() < 1e-9,
            "{c:?}"
        );
        assert!(c.contains(0.5) && c.contains(0.975) && !c.contains(0.99) && !c.contains(0.01));
        assert!((c.mean - 0.5).abs() < 1e-9);
        assert!((c.p_above(0.9995) - 2.0 / 1002.0).abs() < 1e-12);
        assert!((c.p_above(0.0) - 1.0).abs() < 1e-12);
        assert!((c.p_above(0.5) - 502.0 / 1002.0).abs() < 1e-12);
    }

    #[test]
    fn a_permutation_control_of_an_auc_centres_on_one_half_and_flags_a_real_signal() {
        // Scores that carry the labels: the real AUC is high, the permuted ones are not.
        let mut r = Rng::new(5);
        let n = 400;
        let labels: Vec<bool> = (0..n).map(|i| i % 4 == 0).collect();
        let scores: Vec<f64> = labels
            .iter()
            .map(|&l| r.unit() + if l { 0.3 } else { 0.0 })
            .collect();
        let real = auc(&scores, &labels).unwrap_or(f64::NAN);
        let c = Control::run(300, 0.95, &Rng::new(9), |rng| {
            let mut l = labels.clone();
            rng.shuffle(&mut l);
            auc(&scores, &l)
        });
        assert_eq!(c.runs, 300);
        assert!((c.mean - 0.5).abs() < 0.01, "{c:?}");
        // The null spread of an AUC with 100 positives and 300 negatives: se = 0.0334.
        assert!((c.sd - 0.0334).abs() < 0.006, "{c:?}");
        assert!(real > 0.7 && !c.contains(real), "{real} {c:?}");
        assert!(
            c.min_effect() > 0.55 && c.min_effect() < 0.62,
            "{}",
            c.min_effect()
        );
        // Unrelated scores: the real AUC falls inside.
        let noise: Vec<f64> = (0..n).map(|_| r.unit()).collect();
        let real = auc(&noise, &labels).unwrap_or(f64::NAN);
        let c = Control::run(300, 0.95, &Rng::new(9), |rng| {
            let mut l = labels.clone();
            rng.shuffle(&mut l);
            auc(&noise, &l)
        });
        assert!(c.contains(real), "{real} {c:?}");
    }
}

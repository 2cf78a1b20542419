//! The statistics the attacks are scored with: the area under the ROC curve (with ties),
//! quantiles, the normal distribution, the two-sample Kolmogorov–Smirnov test and the exact
//! binomial test that compares two Poisson rates.

/// Average ranks (1-based) of `scores`, ties (equal to within 1e-9, relative) sharing the
/// mean of their ranks.
pub(crate) fn ranks(scores: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut out = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        // Equal up to rounding: sums taken in another order must still tie.
        while j + 1 < order.len()
            && (scores[order[j + 1]] - scores[order[i]]).abs()
                <= 1e-9 * (1.0 + scores[order[i]].abs())
        {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = mean;
        }
        i = j + 1;
    }
    out
}

/// The AUC from the rank sum of the positives: the probability that a random positive
/// scores above a random negative, ties counting one half (the Mann–Whitney U over
/// `n1 · n0`). `None` when either class is empty.
pub(crate) fn auc_from_rank_sum(rank_sum: f64, n1: usize, n0: usize) -> Option<f64> {
    if n1 == 0 || n0 == 0 {
        return None;
    }
    let (a, b) = (n1 as f64, n0 as f64);
    Some((rank_sum - a * (a + 1.0) / 2.0) / (a * b))
}

/// The AUC of `scores` against `labels` (true = positive). `None` when either class is
/// empty or the lengths differ.
pub(crate) fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() {
        return None;
    }
    let r = ranks(scores);
    let n1 = labels.iter().filter(|&&l| l).count();
    let sum: f64 = r
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l)
        .map(|(r, _)| r)
        .sum();
    auc_from_rank_sum(sum, n1, labels.len() - n1)
}

#[cfg(test)]
/// The standard error of an AUC of 0.5 with `n1` positives and `n0` negatives (the
/// Mann–Whitney null: sqrt((n1 + n0 + 1) / (12 · n1 · n0))).
pub(crate) fn auc_null_se(n1: usize, n0: usize) -> f64 {
    let (a, b) = (n1 as f64, n0 as f64);
    ((a + b + 1.0) / (12.0 * a * b)).sqrt()
}

/// Scores ranked once, so that the AUC of many labelings (a permutation control) costs one
/// pass each.
#[derive(Debug, Clone)]
pub(crate) struct Ranked {
    ranks: Vec<f64>,
}

impl Ranked {
    /// Ranks `scores`.
    pub(crate) fn new(scores: &[f64]) -> Self {
        Self {
            ranks: ranks(scores),
        }
    }

    /// The AUC of `labels` (one per score); `None` when a class is empty.
    pub(crate) fn auc(&self, labels: impl IntoIterator<Item = bool>) -> Option<f64> {
        let (mut sum, mut n1, mut n) = (0.0, 0usize, 0usize);
        for (r, l) in self.ranks.iter().zip(labels) {
            n += 1;
            if l {
                sum += r;
                n1 += 1;
            }
        }
        auc_from_rank_sum(sum, n1, n - n1)
    }

    /// The AUC when the positives are the items at `positives` (indices into the scores).
    pub(crate) fn auc_of(&self, positives: impl IntoIterator<Item = usize>) -> Option<f64> {
        let (mut sum, mut n1) = (0.0, 0usize);
        for i in positives {
            sum += self.ranks[i];
            n1 += 1;
        }
        auc_from_rank_sum(sum, n1, self.ranks.len().saturating_sub(n1))
    }
}

/// The AUC of the items labelled `Some`, ignoring the `None` ones (a subset's own ranking).
pub(crate) fn auc_subset(scores: &[f64], labels: &[Option<bool>]) -> Option<f64> {
    let (s, l): (Vec<f64>, Vec<bool>) = scores
        .iter()
        .zip(labels)
        .filter_map(|(s, l)| l.map(|l| (*s, l)))
        .unzip();
    auc(&s, &l)
}

/// Shuffles `labels` within each stratum (items with equal `strata` keys).
pub(crate) fn shuffle_within<T: Copy>(
    labels: &mut [T],
    strata: &[u64],
    rng: &mut crate::attack::rng::Rng,
) {
    let mut groups: std::collections::HashMap<u64, Vec<usize>> = std::collections::HashMap::new();
    for (i, s) in strata.iter().enumerate() {
        groups.entry(*s).or_default().push(i);
    }
    let mut keys: Vec<u64> = groups.keys().copied().collect();
    keys.sort_unstable();
    for k in keys {
        let idx = &groups[&k];
        let mut vals: Vec<T> = idx.iter().map(|&i| labels[i]).collect();
        rng.shuffle(&mut vals);
        for (&i, v) in idx.iter().zip(vals) {
            labels[i] = v;
        }
    }
}

/// The `q` quantile of sorted `xs` (linear interpolation between order statistics, as
/// R's type 7). NaN for an empty slice.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// Mean and (sample) standard deviation.
pub(crate) fn mean_sd(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The complementary error function (fractional error below 1.2e-7).
pub(crate) fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The standard normal distribution function.
pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The two-sided p-value of the two-sample Kolmogorov–Smirnov statistic `d` for samples
/// of sizes `n` and `m` (the asymptotic Kolmogorov distribution with Stephens' small-sample
/// correction).
pub(crate) fn ks_p_value(d: f64, n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return 1.0;
    }
    let ne = (n as f64 * m as f64) / (n as f64 + m as f64);
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    kolmogorov_q(lambda)
}

/// Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} exp(−2 j² λ²), the Kolmogorov tail.
pub(crate) fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    let mut last = 0.0f64;
    for j in 1..=100 {
        let term = sign * 2.0 * (-2.0 * f64::from(j * j) * lambda * lambda).exp();
        sum += term;
        if term.abs() <= 1e-10 * sum.abs() || term.abs() <= 1e-8 * last {
            return sum.clamp(0.0, 1.0);
        }
        sign = -sign;
        last = term.abs();
    }
    1.0
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The two-sided exact binomial p-value of `k` successes in `n` trials of probability `p`:
/// the total probability of outcomes no more likely than `k` (normal approximation with
/// continuity correction above a million trials).
pub(crate) fn binomial_two_sided(k: u64, n: u64, p: f64) -> f64 {
    if n == 0 || !(0.0..=1.0).contains(&p) {
        return 1.0;
    }
    if p == 0.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    if p == 1.0 {
        return if k == n { 1.0 } else { 0.0 };
    }
    if n > 1_000_000 {
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        let z = ((k as f64 - mean).abs() - 0.5).max(0.0) / sd;
        return (2.0 * (1.0 - normal_cdf(z))).min(1.0);
    }
    let nf = n as f64;
    let base = ln_gamma(nf + 1.0);
    let log_pmf = |i: u64| {
        let i = i as f64;
        base - ln_gamma(i + 1.0) - ln_gamma(nf - i + 1.0) + i * p.ln() + (nf - i) * (1.0 - p).ln()
    };
    let at = log_pmf(k);
    let cut = at + 1e-7;
    let mut total = 0.0;
    for i in 0..=n {
        let l = log_pmf(i);
        if l <= cut {
            total += l.exp();
        }
    }
    total.min(1.0)
}

/// Compares two Poisson rates: `c1` events in exposure `t1` against `c0` in `t0`. Returns
/// the rate ratio (c1/t1)/(c0/t0) and the two-sided p-value of the conditional test (given
/// c1 + c0 events, c1 is binomial with p = t1 / (t1 + t0) when the rates are equal).
pub(crate) fn poisson_rate_test(c1: u64, t1: f64, c0: u64, t0: f64) -> (f64, f64) {
    let ratio = if c0 == 0 || t1 <= 0.0 {
        if c1 == 0 { 1.0 } else { f64::INFINITY }
    } else {
        (c1 as f64 / t1) / (c0 as f64 / t0)
    };
    let p = binomial_two_sided(c1, c1 + c0, t1 / (t1 + t0));
    (ratio, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn auc_matches_hand_computed_values() {
        // Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered.
        let s = [0.1, 0.4, 0.35, 0.8];
        let l = [false, false, true, true];
        assert_eq!(auc(&s, &l), Some(0.75));
        assert_eq!(auc(&[1.0, 2.0], &[false, true]), Some(1.0));
        assert_eq!(auc(&[1.0, 2.0], &[true, false]), Some(0.0));
        // All tied: one half.
        assert_eq!(
            auc(&[3.0; 6], &[true, false, true, false, false, true]),
            Some(0.5)
        );
        // A tie between one positive and one negative counts one half: (1 + 0.5) / 2.
        assert_eq!(auc(&[1.0, 2.0, 2.0], &[false, true, false]), Some(0.75));
        assert_eq!(auc(&[1.0, 2.0], &[true, true]), None);
        assert_eq!(ranks(&[5.0, 1.0, 5.0, 3.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn ranked_and_subset_aucs_agree_with_the_direct_one() {
        let s = [0.1, 0.4, 0.35, 0.8, 0.5];
        let l = [false, false, true, true, false];
        let r = Ranked::new(&s);
        assert_eq!(r.auc(l), auc(&s, &l));
        assert_eq!(r.auc_of([2, 3]), auc(&s, &l));
        // Leaving out item 4 (0.5, a negative that outranks one positive) gives 0.75.
        let sub = [Some(false), Some(false), Some(true), Some(true), None];
        assert_eq!(auc_subset(&s, &sub), Some(0.75));
        let mut labels = [1u32, 2, 3, 4, 5, 6];
        let strata = [0u64, 0, 0, 1, 1, 1];
        shuffle_within(&mut labels, &strata, &mut crate::attack::rng::Rng::new(3));
        let (mut a, mut b) = (labels[..3].to_vec(), labels[3..].to_vec());
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!((a, b), (vec![1, 2, 3], vec![4, 5, 6]));
    }

    #[test]
    fn auc_null_se_matches_the_spread_of_random_scores() {
        let mut r = crate::attack::rng::Rng::new(11);
        let (n1, n0) = (100, 300);
        let labels: Vec<bool> = (0..n1 + n0).map(|i| i < n1).collect();
        let aucs: Vec<f64> = (0..400)
            .map(|_| {
                let s: Vec<f64> = (0..n1 + n0).map(|_| r.unit()).collect();
                auc(&s, &labels).unwrap_or(f64::NAN)
            })
            .collect();
        let (mean, sd) = mean_sd(&aucs);
        assert!(close(mean, 0.5, 0.01), "{mean}");
        let se = auc_null_se(n1, n0);
        assert!(close(se, 0.0334, 0.0005), "{se}");
        assert!((sd / se - 1.0).abs() < 0.15, "{sd} vs {se}");
    }

    #[test]
    fn quantiles_and_moments() {
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&xs, 0.5), 3.0);
        assert_eq!(quantile(&xs, 0.25), 2.0);
        assert_eq!(quantile(&xs, 0.1), 1.4);
        assert_eq!(quantile(&xs, 1.0), 5.0);
        let (m, sd) = mean_sd(&xs);
        assert_eq!(m, 3.0);
        assert!(close(sd, 1.581_138_8, 1e-6));
    }

    #[test]
    fn normal_distribution_known_values() {
        assert!(close(normal_cdf(0.0), 0.5, 1e-7));
        assert!(close(normal_cdf(1.959_964), 0.975, 1e-6));
        assert!(close(normal_cdf(-1.644_854), 0.05, 1e-6));
        assert!(close(erfc(1.0), 0.157_299_207, 1e-7));
    }

    #[test]
    fn kolmogorov_smirnov_known_values() {
        // The 5% and 1% critical points of the Kolmogorov distribution.
        assert!(close(kolmogorov_q(1.358), 0.05, 5e-4));
        assert!(close(kolmogorov_q(1.628), 0.01, 2e-4));
        assert_eq!(kolmogorov_q(0.1), 1.0);
        // Equal samples: D = 0, p = 1; disjoint samples of 50: D = 1, p tiny.
        let a: Vec<f64> = (0..50).map(f64::from).collect();
        let b: Vec<f64> = (100..150).map(f64::from).collect();
        let d = crate::observer::ks_statistic(&a, &b);
        assert_eq!(d, 1.0);
        assert!(ks_p_value(d, 50, 50) < 1e-9);
        assert_eq!(ks_p_value(0.0, 50, 50), 1.0);
        // D = 0.2 with n = m = 100 sits near the 5% line (critical value 0.192).
        let p = ks_p_value(0.2, 100, 100);
        assert!((0.02..0.05).contains(&p), "{p}");
    }

    #[test]
    fn binomial_and_rate_tests_known_values() {
        // 10 of 10 at p = 1/2: both tails, 2 / 1024.
        assert!(close(binomial_two_sided(10, 10, 0.5), 2.0 / 1024.0, 1e-12));
        // 5 of 10 at p = 1/2 is the most likely outcome: p = 1.
        assert!(close(binomial_two_sided(5, 10, 0.5), 1.0, 1e-12));
        // 2 of 20 at p = 0.3 (R: binom.test(2, 20, 0.3)$p.value = 0.05263).
        assert!(close(binomial_two_sided(2, 20, 0.3), 0.052_628, 1e-5));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-10));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-10
        ));
        // Equal rates: ratio 1, p = 1; 30 against 10 events in equal time: ratio 3, p small.
        let (r, p) = poisson_rate_test(20, 10.0, 40, 20.0);
        assert!(close(r, 1.0, 1e-12) && p > 0.9, "{r} {p}");
        let (r, p) = poisson_rate_test(30, 1.0, 10, 1.0);
        assert!(close(r, 3.0, 1e-12));
        assert!(close(p, 0.002_221, 1e-5), "{p}");
    }
}

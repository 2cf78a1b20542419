//! The real-versus-dummy classifier: naive Bayes over binned features, trained on one half
//! of the samples with its threshold chosen there, scored on the other half as balanced
//! accuracy (the mean of the true-positive and true-negative rates: 0.5 is chance whatever
//! the share of real slots).

use super::rng::Rng;
use super::stats::quantile;

/// One feature of every sample.
#[derive(Debug, Clone)]
pub(crate) enum Column {
    /// A small number of categories (values are category indices).
    Categorical(Vec<u32>),
    /// A number; binned by the training half's quantiles.
    Continuous(Vec<f64>),
}

/// Quantile bins of a continuous feature.
const BINS: usize = 16;

/// Samples binned once, with a fixed train/test split, ready to be scored under many
/// labelings.
#[derive(Debug)]
pub(crate) struct Classifier {
    /// Per column, each sample's bin.
    bins: Vec<Vec<u32>>,
    /// Per column, the number of bins.
    widths: Vec<usize>,
    train: Vec<bool>,
}

impl Classifier {
    pub(crate) fn new(columns: &[Column], rng: &mut Rng) -> Self {
        let n = columns.first().map_or(0, |c| match c {
            Column::Categorical(v) => v.len(),
            Column::Continuous(v) => v.len(),
        });
        let train: Vec<bool> = (0..n).map(|_| rng.chance(0.5)).collect();
        let mut bins = Vec::new();
        let mut widths = Vec::new();
        for c in columns {
            match c {
                Column::Categorical(v) => {
                    widths.push(v.iter().max().map_or(1, |m| *m as usize + 1));
                    bins.push(v.clone());
                }
                Column::Continuous(v) => {
                    let mut t: Vec<f64> = v
                        .iter()
                        .zip(&train)
                        .filter(|(_, t)| **t)
                        .map(|(x, _)| *x)
                        .collect();
                    t.sort_by(f64::total_cmp);
                    let mut cuts: Vec<f64> = (1..BINS)
                        .map(|i| quantile(&t, i as f64 / BINS as f64))
                        .collect();
                    cuts.dedup();
                    widths.push(cuts.len() + 1);
                    bins.push(
                        v.iter()
                            .map(|x| cuts.partition_point(|c| c < x) as u32)
                            .collect(),
                    );
                }
            }
        }
        Self {
            bins,
            widths,
            train,
        }
    }

    /// Balanced accuracy on the test half of a classifier trained on the train half under
    /// `labels`; `None` when a half lacks a class.
    pub(crate) fn balanced_accuracy(&self, labels: &[bool]) -> Option<f64> {
        let n = labels.len();
        let (mut p, mut q) = (0f64, 0f64);
        let mut counts: Vec<Vec<[f64; 2]>> =
            self.widths.iter().map(|w| vec![[0.0; 2]; *w]).collect();
        for i in (0..n).filter(|&i| self.train[i]) {
            let c = usize::from(labels[i]);
            if labels[i] {
                p += 1.0;
            } else {
                q += 1.0;
            }
            for (col, b) in counts.iter_mut().zip(&self.bins) {
                col[b[i] as usize][c] += 1.0;
            }
        }
        if p == 0.0 || q == 0.0 {
            return None;
        }
        let llr: Vec<Vec<f64>> = counts
            .iter()
            .map(|col| {
                let k = col.len() as f64;
                col.iter()
                    .map(|[neg, pos]| ((pos + 1.0) / (p + k)).ln() - ((neg + 1.0) / (q + k)).ln())
                    .collect()
            })
            .collect();
        let score = |i: usize| -> f64 {
            llr.iter()
                .zip(&self.bins)
                .map(|(l, b)| l[b[i] as usize])
                .sum()
        };
        // The threshold that maximises balanced accuracy on the train half.
        let mut train: Vec<(f64, bool)> = (0..n)
            .filter(|&i| self.train[i])
            .map(|i| (score(i), labels[i]))
            .collect();
        train.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut tp, mut fp) = (0.0, 0.0);
        let (mut best, mut threshold) = (0.5, f64::INFINITY);
        let mut i = 0;
        while i < train.len() {
            let s = train[i].0;
            while i < train.len() && train[i].0 == s {
                if train[i].1 {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
                i += 1;
            }
            let ba = (tp / p + 1.0 - fp / q) / 2.0;
            if ba > best {
                best = ba;
                threshold = s;
            }
        }
        let (mut tp, mut tn, mut pos, mut neg) = (0.0, 0.0, 0.0, 0.0);
        for i in (0..n).filter(|&i| !self.train[i]) {
            let guess = score(i) >= threshold;
            if labels[i] {
                pos += 1.0;
                tp += f64::from(u8::from(guess));
            } else {
                neg += 1.0;
                tn += f64::from(u8::from(!guess));
            }
        }
        if pos == 0.0 || neg == 0.0 {
            return None;
        }
        Some((tp / pos + tn / neg) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feature_that_carries_the_label_is_found_and_noise_is_not() {
        let mut r = Rng::new(2);
        let n = 4_000;
        let labels: Vec<bool> = (0..n).map(|_| r.chance(0.1)).collect();
        // Real samples are later by 2 units on average; the category is noise.
        let delay: Vec<f64> = labels
            .iter()
            .map(|&l| r.unit() * 3.0 + if l { 2.0 } else { 0.0 })
            .collect();
        let noise: Vec<u32> = (0..n).map(|_| r.below(4) as u32).collect();
        let c = Classifier::new(
            &[
                Column::Continuous(delay),
                Column::Categorical(noise.clone()),
            ],
            &mut r,
        );
        let ba = c.balanced_accuracy(&labels).unwrap_or(0.0);
        assert!(ba > 0.75, "{ba}");
        let c = Classifier::new(&[Column::Categorical(noise)], &mut r);
        let ba = c.balanced_accuracy(&labels).unwrap_or(0.0);
        assert!((0.42..0.58).contains(&ba), "{ba}");
        // One class only: nothing to score.
        assert_eq!(c.balanced_accuracy(&vec![false; n]), None);
    }
}

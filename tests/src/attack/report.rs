//! The attack program's output: one row per attack and role, as a plain table or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::control::Control;

/// What a row says about its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Verdict {
    /// The score lies inside the control interval: the attack does no better than chance.
    Pass,
    /// The score lies above the control interval: the attack learns something.
    Leak,
    /// The score lies below the control interval (an anti-correlation is information too).
    Below,
}

/// One point of a score as a function of the number of exchanges.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// Fewest exchanges of the bin.
    pub min: u32,
    /// Most exchanges of the bin (`u32::MAX` for the open last bin).
    pub max: u32,
    /// Positive items in the bin.
    pub n: usize,
    /// The score of the bin's positives against all negatives.
    pub score: f64,
    /// Its control.
    pub control: Control,
}

/// One attack's result for one role.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Which attack.
    pub attack: String,
    /// Whose view: entry, mailbox, single (one relay in both roles: hum/1's view) or observer.
    pub role: String,
    /// What the attack used, in a few words.
    pub method: String,
    /// The score: accuracy, AUC, balanced accuracy or rate ratio (see docs/ATTACKS.md).
    pub score: f64,
    /// The shuffled-label control.
    pub control: Control,
    /// Items scored (deposits, pairs, slots, events).
    pub n: usize,
    /// Positives among them, where the score is an AUC.
    pub positives: Option<usize>,
    /// The naive chance level (1/N of the candidates), where there is one.
    pub chance: Option<f64>,
    /// The smallest score the run would tell from the control four times in five.
    pub min_effect: f64,
    /// The permutation p-value of the score (one-sided: the share of permuted scores at
    /// least as high).
    pub perm_p: f64,
    /// A p-value of the attack's own test, where it has one.
    pub p_value: Option<f64>,
    /// Whether the score lies in the control interval.
    pub verdict: Verdict,
    /// Whether the design accepts this leak (the bucket-pair correlation); then
    /// `exchanges_needed` says at what cost.
    pub by_design: bool,
    /// The fewest exchanges per pair whose score leaves the control interval.
    pub exchanges_needed: Option<u32>,
    /// The score by number of exchanges per pair.
    pub curve: Vec<CurvePoint>,
}

impl Row {
    /// A row from a score and its control.
    pub(crate) fn new(
        attack: &str,
        role: &str,
        method: &str,
        score: f64,
        control: Control,
        n: usize,
    ) -> Self {
        let verdict = if control.contains(score) {
            Verdict::Pass
        } else if score > control.hi {
            Verdict::Leak
        } else {
            Verdict::Below
        };
        Self {
            attack: attack.to_owned(),
            role: role.to_owned(),
            method: method.to_owned(),
            score,
            n,
            positives: None,
            chance: None,
            min_effect: control.min_effect(),
            perm_p: control.p_above(score),
            control,
            p_value: None,
            verdict,
            by_design: false,
            exchanges_needed: None,
            curve: Vec::new(),
        }
    }

    /// Whether this row's score is an AUC.
    fn is_auc(&self) -> bool {
        self.positives.is_some()
    }
}

/// An attack that could not run on these inputs, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Which attack.
    pub attack: String,
    /// Whose view.
    pub role: String,
    /// Why not.
    pub reason: String,
}

impl Skipped {
    /// The same reason for each of `attacks`.
    pub(crate) fn all<T>(attacks: &[&str], role: &str, reason: &str) -> Vec<Result<T, Skipped>> {
        attacks
            .iter()
            .map(|a| {
                Err(Skipped {
                    attack: (*a).into(),
                    role: role.into(),
                    reason: reason.into(),
                })
            })
            .collect()
    }
}

/// Everything one run of the attack program found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The views the log gave (entry, mailbox, single, observer).
    pub views: Vec<String>,
    /// Central mass of each control interval.
    pub level: f64,
    /// Permutations per control.
    pub permutations: usize,
    /// The rows.
    pub rows: Vec<Row>,
    /// Attacks that could not run.
    pub skipped: Vec<Skipped>,
    /// Counts of what was read.
    pub inputs: Vec<(String, usize)>,
}

/// The AUC a run should be able to tell from 0.5 (docs/ROUTING: enough samples to see 0.52).
pub const AUC_TARGET: f64 = 0.52;

impl Report {
    /// The rows as a plain table, with notes below it.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let pct = (self.level * 100.0).round();
        let header = [
            "attack".to_owned(),
            "role".to_owned(),
            "score".to_owned(),
            format!("control {pct}%"),
            "n".to_owned(),
            "sees".to_owned(),
            "verdict".to_owned(),
        ];
        let mut lines: Vec<[String; 7]> = vec![header];
        for r in &self.rows {
            let mut verdict = match r.verdict {
                Verdict::Pass => "pass".to_owned(),
                Verdict::Leak => "LEAK".to_owned(),
                Verdict::Below => "BELOW".to_owned(),
            };
            if r.by_design && r.verdict != Verdict::Pass {
                verdict.push_str(" (by design)");
            }
            if r.is_auc() && r.verdict == Verdict::Pass && r.min_effect > AUC_TARGET {
                verdict.push_str(" *");
            }
            let n = match r.positives {
                Some(p) => format!("{} ({p}+)", r.n),
                None => r.n.to_string(),
            };
            lines.push([
                r.attack.clone(),
                r.role.clone(),
                format!("{:.3}", r.score),
                format!("[{:.3}, {:.3}]", r.control.lo, r.control.hi),
                n,
                format!("{:.3}", r.min_effect),
                verdict,
            ]);
        }
        let mut widths = [0usize; 7];
        for l in &lines {
            for (w, c) in widths.iter_mut().zip(l) {
                *w = (*w).max(c.chars().count());
            }
        }
        for l in &lines {
            let mut s = String::new();
            for (i, (w, c)) in widths.iter().zip(l).enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                if i == 2 || i == 4 || i == 5 {
                    let _ = write!(s, "{c:>w$}");
                } else {
                    let _ = write!(s, "{c:<w$}");
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        }
        out.push('\n');
        for r in &self.rows {
            let mut note = format!(
                "{} ({}): {}; permutation p = {:.3}",
                r.attack, r.role, r.method, r.perm_p
            );
            if let Some(c) = r.chance {
                let _ = write!(note, "; naive chance {c:.3}");
            }
            if let Some(p) = r.p_value {
                let _ = write!(note, "; p = {p:.3e}");
            }
            if !r.curve.is_empty() {
                match r.exchanges_needed {
                    Some(k) => {
                        let _ = write!(note, "; beats chance from {k} exchanges per pair");
                    }
                    None => note.push_str("; does not beat chance at any number of exchanges seen"),
                }
                for p in &r.curve {
                    let max = if p.max == u32::MAX {
                        "+".to_owned()
                    } else {
                        format!("-{}", p.max)
                    };
                    let _ = write!(
                        note,
                        "\n    {}{max} exchanges: {:.3} [{:.3}, {:.3}] n={}",
                        p.min, p.score, p.control.lo, p.control.hi, p.n
                    );
                }
            }
            out.push_str(&note);
            out.push('\n');
        }
        for s in &self.skipped {
            let _ = writeln!(out, "{} ({}): not run: {}", s.attack, s.role, s.reason);
        }
        if self
            .rows
            .iter()
            .any(|r| r.is_auc() && r.verdict == Verdict::Pass && r.min_effect > AUC_TARGET)
        {
            let _ = writeln!(
                out,
                "* this run is too small to see an AUC of {AUC_TARGET} (its `sees` column is above it)"
            );
        }
        let _ = writeln!(
            out,
            "{} rows: at {pct}% each, about {:.1} of them fall outside their interval by chance alone",
            self.rows.len(),
            self.rows.len() as f64 * (1.0 - self.level)
        );
        let inputs: Vec<String> = self
            .inputs
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "read: {}; {} permutations per control",
            inputs.join(", "),
            self.permutations
        );
        out
    }

    /// The report as one JSON document.
    ///
    /// # Errors
    /// Never in practice (every field serialises); the serializer's error otherwise.
    pub fn json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// The row of `attack` for `role`, if it ran.
    pub fn row(&self, attack: &str, role: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.attack == attack && r.role == role)
    }
}

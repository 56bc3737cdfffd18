//! The statistics of the per-round table, as pure functions: the Wilson score interval of an
//! accuracy, the exact McNemar test of two paired rounds, and the flips between two rounds.

use serde::{Deserialize, Serialize};

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The 95 % Wilson score interval of `correct` out of `n`, as fractions; `None` when `n` is 0.
/// Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 or n correct.
pub fn wilson(correct: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n) = (correct as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// How two rounds of the same items differ, item by item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flips {
    /// Right in the earlier round, wrong in the later one.
    pub right_to_wrong: usize,
    /// Wrong in the earlier round, right in the later one.
    pub wrong_to_right: usize,
}

/// The flips from `earlier` to `later`, which hold the same items in the same order.
pub fn flips(earlier: &[bool], later: &[bool]) -> Flips {
    assert_eq!(
        earlier.len(),
        later.len(),
        "paired rounds have the same items: this is a bug"
    );
    let mut f = Flips::default();
    for (&a, &b) in earlier.iter().zip(later) {
        match (a, b) {
            (true, false) => f.right_to_wrong += 1,
            (false, true) => f.wrong_to_right += 1,
            _ => {}
        }
    }
    f
}

/// The exact (binomial) McNemar test, two-sided: the probability, if both rounds were equally
/// good, of discordant pairs at least as lopsided as `flips`. 1 when there are no flips.
pub fn mcnemar_exact(flips: Flips) -> f64 {
    let n = flips.right_to_wrong + flips.wrong_to_right;
    let k = flips.right_to_wrong.min(flips.wrong_to_right);
    // P(X ≤ k) for X ~ Binomial(n, ½), summed in log space so that large n cannot underflow.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn wilson_matches_published_values() {
        // 8/10: (0.4902, 0.9433); 0/10: (0, 0.2775); 50/100: (0.4038, 0.5962).
        let (lo, hi) = wilson(8, 10).unwrap();
        assert!(close(lo, 0.4902) && close(hi, 0.9433), "{lo} {hi}");
        let (lo, hi) = wilson(0, 10).unwrap();
        assert!(lo == 0.0 && close(hi, 0.2775), "{lo} {hi}");
        let (lo, hi) = wilson(50, 100).unwrap();
        assert!(close(lo, 0.4038) && close(hi, 0.5962), "{lo} {hi}");
        let (lo, hi) = wilson(10, 10).unwrap();
        assert!(close(lo, 0.7225) && close(hi, 1.0), "{lo} {hi}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn flips_count_each_direction() {
        let r1 = [true, true, false, false, true];
        let r2 = [true, false, true, true, false];
        assert_eq!(
            flips(&r1, &r2),
            Flips {
                right_to_wrong: 2,
                wrong_to_right: 2
            }
        );
        assert_eq!(flips(&r2, &r2), Flips::default());
    }

    #[test]
    fn mcnemar_exact_binomial_tails() {
        let f = |right_to_wrong, wrong_to_right| {
            mcnemar_exact(Flips {
                right_to_wrong,
                wrong_to_right,
            })
        };
        assert_eq!(f(0, 0), 1.0);
        assert!(close(f(0, 5), 0.0625)); // 2 · ½⁵
        assert!(close(f(1, 9), 0.021_484_375)); // 2 · (1 + 10) / 1024
        assert!(close(f(9, 1), 0.021_484_375)); // symmetric
        assert_eq!(f(3, 3), 1.0); // capped at 1
        assert!(close(f(10, 20), 0.0987)); // scipy.stats.binomtest(10, 30).pvalue = 0.0987
        assert!(f(0, 2000) < 1e-300 && f(0, 2000) >= 0.0); // no NaN for large n
    }
}

//! Latency summaries: nearest-rank percentiles and the mean of a sample.

use serde::Serialize;

/// p50, p95 and mean of a sample: durations in seconds, or rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Median (nearest-rank).
    pub p50: f64,
    /// 95th percentile (nearest-rank).
    pub p95: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// Summarises `values`; `None` when there are none to summarise.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            p50: percentile(&sorted, 50.0)?,
            p95: percentile(&sorted, 95.0)?,
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of already sorted values:
/// the smallest value with at least `p`% of the sample at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Multiply first: `p * n` is exact for whole percentages, `p / 100` is not.
    let rank = (p * sorted.len() as f64 / 100.0).ceil() as usize;
    // Clamp so that p = 0 means the minimum and rounding never runs past the end.
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_known_values() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(10.0));
        assert_eq!(percentile(&values, 95.0), Some(19.0));
        assert_eq!(percentile(&values, 100.0), Some(20.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
    }

    #[test]
    fn empty_sample_has_no_percentile_or_summary() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn summary_sorts_unsorted_input() {
        let s = Summary::of(&[3.0, 1.0, 2.0, 10.0]).expect("non-empty");
        assert_eq!(s.p50, 2.0);
        assert_eq!(s.p95, 10.0);
        assert_eq!(s.mean, 4.0);
    }
}

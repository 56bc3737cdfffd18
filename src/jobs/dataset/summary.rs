//! The dataset job's `summary`, computed from every recorded row (so a resumed job's summary
//! covers the records of its earlier runs too): counts, acceptance, tokens, the distribution of
//! the answer samples' similarity, and a threshold sweep — how many records each threshold would
//! have kept with the other checks unchanged, so a threshold can be chosen from measured data
//! without generating anything again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::filter::Scores;
use super::spec::FilterSpec;
use crate::store::RecordRow;

/// Thresholds the sweep always reports (the job's own is added when it is not among them).
const SWEEP: [f32; 8] = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];

/// A dataset job's `summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Records written (accepted and rejected), over every run of the job.
    pub records: usize,
    pub accepted: usize,
    pub rejected: usize,
    /// Rejected records by reason (`inconsistent_samples`, `gold_mismatch`, …).
    pub rejected_by: BTreeMap<String, usize>,
    /// Queries of this run that produced no record.
    pub failed: usize,
    pub acceptance_rate: f64,
    /// Mean similarity of a record's answer samples (generated records only).
    pub mean_sample_similarity: Option<f64>,
    pub sample_similarity: Option<Distribution>,
    /// The job's similarity threshold.
    pub threshold: f64,
    pub threshold_sweep: Vec<SweepPoint>,
    /// Tokens generated for the records.
    pub tokens: u64,
    /// Time spent building the records (summed over records, concurrent ones overlapping).
    pub record_seconds: f64,
    /// This run's wall time.
    pub seconds: f64,
}

/// Quantiles of the answer samples' similarity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub n: usize,
    pub min: f64,
    pub p10: f64,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
    pub p90: f64,
    pub max: f64,
}

/// How many scored records one threshold would have kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub threshold: f64,
    pub accepted: usize,
    pub acceptance_rate: f64,
}

/// A row's filter scores, read back from its provenance (none for imported records).
pub fn scores(row: &RecordRow) -> Option<Scores> {
    serde_json::from_value(row.provenance.get("scores")?.clone()).ok()
}

/// The summary of `rows`; `failed` counts queries that produced no row, `seconds` is this run's
/// wall time.
pub fn summarize(rows: &[RecordRow], filter: &FilterSpec, failed: usize, seconds: f64) -> Summary {
    let accepted = rows.iter().filter(|r| r.accepted).count();
    let mut rejected_by = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.accepted) {
        let reason = r.line["reason"].as_str().unwrap_or("unknown").to_string();
        *rejected_by.entry(reason).or_default() += 1;
    }
    let scored: Vec<Scores> = rows.iter().filter_map(scores).collect();
    let mut sims: Vec<f32> = scored.iter().map(|s| s.sample_similarity).collect();
    sims.sort_by(f32::total_cmp);
    let field = |k: &str| {
        rows.iter()
            .filter_map(|r| r.provenance[k].as_u64())
            .sum::<u64>()
    };
    Summary {
        records: rows.len(),
        accepted,
        rejected: rows.len() - accepted,
        rejected_by,
        failed,
        acceptance_rate: r4(accepted as f64 / rows.len().max(1) as f64),
        mean_sample_similarity: mean(&sims),
        sample_similarity: distribution(&sims),
        threshold: r4(f64::from(filter.threshold)),
        threshold_sweep: sweep(&scored, filter),
        tokens: field("tokens"),
        record_seconds: field("elapsed_ms") as f64 / 1000.0,
        seconds,
    }
}

/// `x` to four decimals (an `f32` printed as JSON shows its binary tail otherwise).
fn r4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn mean(xs: &[f32]) -> Option<f64> {
    (!xs.is_empty()).then(|| r4(xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64))
}

/// Quantile `q` of sorted `xs`, interpolated between the two nearest ranks.
fn quantile(xs: &[f32], q: f64) -> f64 {
    let pos = q * (xs.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let w = pos - lo as f64;
    f64::from(xs[lo]) * (1.0 - w) + f64::from(xs[hi]) * w
}

/// Min, quartiles, p10/p90 and max of sorted `xs` (none when empty).
fn distribution(xs: &[f32]) -> Option<Distribution> {
    if xs.is_empty() {
        return None;
    }
    let q = |p| r4(quantile(xs, p));
    Some(Distribution {
        n: xs.len(),
        min: q(0.0),
        p10: q(0.1),
        p25: q(0.25),
        median: q(0.5),
        p75: q(0.75),
        p90: q(0.9),
        max: q(1.0),
    })
}

/// For each threshold, the records the filter would keep with every other check as it was.
fn sweep(scored: &[Scores], filter: &FilterSpec) -> Vec<SweepPoint> {
    let mut thresholds = SWEEP.to_vec();
    if !thresholds
        .iter()
        .any(|t| (t - filter.threshold).abs() < 1e-6)
    {
        thresholds.push(filter.threshold);
        thresholds.sort_by(f32::total_cmp);
    }
    thresholds
        .into_iter()
        .map(|t| {
            let at = FilterSpec {
                threshold: t,
                ..filter.clone()
            };
            let kept = scored
                .iter()
                .filter(|s| super::filter::judge(&at, s).is_none())
                .count();
            SweepPoint {
                threshold: r4(f64::from(t)),
                accepted: kept,
                acceptance_rate: r4(kept as f64 / scored.len().max(1) as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::score::CopyCheck;
    use serde_json::{json, Value};

    /// The summary as the API shows it.
    fn summarize(rows: &[RecordRow], filter: &FilterSpec, failed: usize, seconds: f64) -> Value {
        serde_json::to_value(super::summarize(rows, filter, failed, seconds)).unwrap()
    }

    fn row(id: &str, sim: f32, gold_match: Option<bool>, filter: &FilterSpec) -> RecordRow {
        let s = Scores {
            sample_similarity: sim,
            copy: CopyCheck {
                cosine: 0.5,
                text_similarity: 0.1,
                is_copy: false,
            },
            extracted: None,
            gold_match,
        };
        let verdict = super::super::filter::judge(filter, &s);
        RecordRow {
            custom_id: id.into(),
            accepted: verdict.is_none(),
            line: verdict.map_or(json!({"messages": []}), |r| json!({"reason": r.as_str()})),
            provenance: json!({"scores": s, "tokens": 100, "elapsed_ms": 1500}),
            seq: 0,
        }
    }

    #[test]
    fn counts_reasons_quantiles_and_the_sweep() {
        let filter = FilterSpec::default();
        let rows = vec![
            row("a", 0.95, None, &filter),
            row("b", 0.85, None, &filter),
            row("c", 0.72, None, &filter),
            row("d", 0.90, Some(false), &filter),
            row("e", 0.55, None, &filter),
        ];
        let s = summarize(&rows, &filter, 1, 12.0);
        assert_eq!(s["records"], 5);
        assert_eq!(s["accepted"], 2);
        assert_eq!(s["rejected_by"]["inconsistent_samples"], 2);
        assert_eq!(s["rejected_by"]["gold_mismatch"], 1);
        assert_eq!(s["tokens"], 500);
        assert_eq!(s["record_seconds"], 7.5);
        let d = &s["sample_similarity"];
        assert_eq!(d["n"], 5);
        assert_eq!(d["min"], 0.55);
        assert_eq!(d["median"], 0.85);
        assert_eq!(d["max"], 0.95);
        // p25 lies between the 2nd and 3rd of (0.55, 0.72, 0.85, 0.90, 0.95): exactly 0.72.
        assert_eq!(d["p25"], 0.72);
        let at = |t: f64| {
            s["threshold_sweep"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| (r["threshold"].as_f64().unwrap() - t).abs() < 1e-6)
                .map(|r| r["accepted"].as_u64().unwrap())
                .unwrap()
        };
        // The gold mismatch stays rejected at every threshold.
        assert_eq!(at(0.5), 4);
        assert_eq!(at(0.7), 3);
        assert_eq!(at(0.8), 2);
        assert_eq!(at(0.9), 1);
        assert_eq!(at(0.95), 1);
    }

    #[test]
    fn adds_the_jobs_own_threshold_and_handles_no_scores() {
        let filter = FilterSpec {
            threshold: 0.77,
            ..FilterSpec::default()
        };
        let s = summarize(&[], &filter, 0, 0.0);
        assert_eq!(s["sample_similarity"], Value::Null);
        assert_eq!(s["mean_sample_similarity"], Value::Null);
        let ts: Vec<f64> = s["threshold_sweep"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["threshold"].as_f64().unwrap())
            .collect();
        assert_eq!(ts.len(), SWEEP.len() + 1);
        assert!(ts.iter().any(|t| (t - 0.77).abs() < 1e-6));
        assert!(ts.windows(2).all(|w| w[0] < w[1]));
    }
}

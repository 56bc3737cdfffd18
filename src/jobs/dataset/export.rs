//! A finished dataset job's outputs as files in a folder, as `ptr-server build-dataset` leaves
//! them: `train.jsonl`, `rejected.jsonl`, `provenance.jsonl`, `summary.json` and
//! `similarity.svg`, with the summary and its threshold sweep printed.

use std::path::Path;

use crate::store::Store;

/// Copies the job's output files and summary into `out`, draws `similarity.svg`, and prints the
/// summary with its threshold sweep.
pub fn export(store: &Store, job: &crate::store::JobRow, out: &Path) -> anyhow::Result<()> {
    let state = &job.state;
    for (key, name) in [
        ("output_file_id", "train.jsonl"),
        ("error_file_id", "rejected.jsonl"),
        ("provenance_file_id", "provenance.jsonl"),
    ] {
        if let Some(id) = state[key].as_str() {
            std::fs::write(out.join(name), store.file_content(id)?)?;
        }
    }
    let summary = &state["summary"];
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(summary)?,
    )?;
    eprintln!("{}", serde_json::to_string_pretty(summary)?);
    let sims: Vec<f32> = store
        .records(&job.id)?
        .iter()
        .filter_map(super::summary::scores)
        .map(|s| s.sample_similarity)
        .collect();
    if !sims.is_empty() {
        let threshold = summary["threshold"].as_f64().unwrap_or(0.0) as f32;
        super::chart::write(&out.join("similarity.svg"), &sims, threshold)?;
        eprintln!("threshold  accepted");
        for row in summary["threshold_sweep"].as_array().into_iter().flatten() {
            eprintln!(
                "{:>9.2}  {:>8} ({:.0} %)",
                row["threshold"].as_f64().unwrap_or(0.0),
                row["accepted"].as_u64().unwrap_or(0),
                row["acceptance_rate"].as_f64().unwrap_or(0.0) * 100.0
            );
        }
    }
    eprintln!("wrote {}", out.join("train.jsonl").display());
    Ok(())
}

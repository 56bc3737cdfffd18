//! A finished dataset job's outputs as files in a folder, as `ptr-server build-dataset` leaves
//! them: `train.jsonl`, `rejected.jsonl`, `provenance.jsonl`, `summary.json` and
//! `similarity.svg`, with the summary and its threshold sweep printed.

use std::path::Path;

use super::DatasetState;
use crate::jobs::JobState;
use crate::store::Store;

/// Copies the job's output files and summary into `out`, draws `similarity.svg`, and prints the
/// summary with its threshold sweep.
pub fn export(store: &Store, job: &crate::store::JobRow, out: &Path) -> anyhow::Result<()> {
    let state = DatasetState::of(job);
    for (id, name) in [
        (&state.output_file_id, "train.jsonl"),
        (&state.error_file_id, "rejected.jsonl"),
        (&state.provenance_file_id, "provenance.jsonl"),
    ] {
        if let Some(id) = id {
            std::fs::write(out.join(name), store.file_content(id)?)?;
        }
    }
    let Some(summary) = &state.summary else {
        anyhow::bail!("job {} has no summary: it wrote no outputs", job.id);
    };
    let text = serde_json::to_string_pretty(summary)?;
    std::fs::write(out.join("summary.json"), &text)?;
    eprintln!("{text}");
    let sims: Vec<f32> = store
        .records(&job.id)?
        .iter()
        .filter_map(super::summary::scores)
        .map(|s| s.sample_similarity)
        .collect();
    if !sims.is_empty() {
        super::chart::write(&out.join("similarity.svg"), &sims, summary.threshold as f32)?;
        eprintln!("threshold  accepted");
        for row in &summary.threshold_sweep {
            eprintln!(
                "{:>9.2}  {:>8} ({:.0} %)",
                row.threshold,
                row.accepted,
                row.acceptance_rate * 100.0
            );
        }
    }
    eprintln!("wrote {}", out.join("train.jsonl").display());
    Ok(())
}

//! The dataset job without a server, as `ptr-server build-dataset` runs it: through the very same
//! job code, with a job store in `<out>/.state`, on local models (loaded from models.toml) or
//! remote endpoints. Draws a progress bar (records, records per minute, acceptance rate), and
//! exports `train.jsonl`, `rejected.jsonl`, `provenance.jsonl`, `summary.json` and
//! `similarity.svg` into `<out>`. Run again with the same spec, input and `out` to resume.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{DatasetRunner, DatasetSpec, EmbedderLoader};
use crate::config::ModelSource;
use crate::jobs::{JobKind, JobManager};
use crate::store::{FileStatus, JobStatus, NewFile, Store};

/// Runs the dataset job `spec` on `input` (the query file's bytes) to its end, in a job store
/// under `<out>/.state`, and exports its files into `out`. The same spec and input resume the
/// same job.
pub async fn run(
    mut spec: DatasetSpec,
    input: &[u8],
    out: &Path,
    source: &ModelSource,
    embedder: EmbedderLoader,
) -> anyhow::Result<()> {
    let store = Arc::new(Store::open(&out.join(".state"))?);
    let key = hex::encode(Sha256::digest(format!(
        "{}{}",
        hex::encode(Sha256::digest(input)),
        serde_json::to_string(&spec)?
    )));
    let existing = store
        .list_jobs(&[], &[], None, 1000)?
        .into_iter()
        .find(|j| j.spec["metadata"]["cli_key"] == json!(key));
    let pool = super::local_models::load_local(source, &spec).await?;
    let resolver = super::resolve::Resolver {
        models: pool,
        extract: crate::eval::tasks::gsm8k::extract,
    };
    let mut manager = JobManager::new(store.clone(), 1);
    manager.register(
        JobKind::Dataset,
        Arc::new(DatasetRunner::new(resolver.clone(), embedder)),
    );
    let manager = Arc::new(manager);
    manager.start()?;
    let job = match existing {
        Some(job) => {
            eprintln!("resuming {} ({})", job.id, job.status.as_str());
            job
        }
        None => {
            let file = store.insert_file(NewFile {
                filename: "input",
                purpose: "user_data",
                content: input,
                status: FileStatus::Processed,
                status_details: None,
            })?;
            spec.input_file = file.id;
            spec.metadata = Some(json!({"cli_key": key}));
            resolver.resolve(&spec, &store, true).await?;
            manager
                .create(JobKind::Dataset, serde_json::to_value(&spec)?, Some(key))
                .await?
        }
    };
    let job = follow(&manager, &job.id).await?;
    export(&store, &job, out)?;
    match job.status {
        JobStatus::Succeeded => Ok(()),
        s => bail!(
            "the job ended {}: {}",
            s.as_str(),
            job.error.unwrap_or(Value::Null)
        ),
    }
}

/// Draws the progress bar until the job ends.
async fn follow(manager: &Arc<JobManager>, id: &str) -> anyhow::Result<crate::store::JobRow> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} records · {msg}",
        )
        .expect("a valid progress template: this is a bug")
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let mut changes = manager.subscribe();
    loop {
        let job = manager.job(id).await?;
        let counts = &job.state["request_counts"];
        let get = |k: &str| counts[k].as_u64().unwrap_or(0);
        bar.set_length(get("total"));
        bar.set_position(get("completed"));
        let per_min = get("completed") as f64 / (started.elapsed().as_secs_f64() / 60.0).max(1e-9);
        let rate = get("accepted") as f64 / get("completed").max(1) as f64;
        bar.set_message(format!(
            "{per_min:.1}/min · {:.0}% accepted · {} failed",
            rate * 100.0,
            get("failed")
        ));
        if job.status.is_terminal() {
            bar.finish();
            return Ok(job);
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), changes.recv()).await;
    }
}

/// Copies the job's output files and summary into `out`, draws `similarity.svg`, and prints the
/// summary with its threshold sweep.
fn export(store: &Store, job: &crate::store::JobRow, out: &Path) -> anyhow::Result<()> {
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

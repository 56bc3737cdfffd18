//! `ptr-server build-dataset`: the dataset job run from a shell, through the very same job code.
//! It keeps a job store in `<out>/.state`, runs the job in-process on local models (loaded from
//! models.toml) or remote endpoints, draws a progress bar (records, records per minute,
//! acceptance rate), and exports `train.jsonl`, `rejected.jsonl`, `provenance.jsonl`,
//! `summary.json` and `similarity.svg` into `<out>`. Run it again with the same arguments and
//! `--out` to resume.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::input::InputFormat;
use super::spec::{DatasetSpec, FilterSpec, RoleSpec, DEFAULT_THRESHOLD};
use super::{DatasetRunner, EmbedderLoader};
use crate::config::ModelSource;
use crate::jobs::{JobKind, JobManager};
use crate::store::{FileStatus, JobStatus, NewFile, Store};

/// `build-dataset` arguments.
#[derive(Debug, Clone, Args)]
pub struct BuildDatasetArgs {
    /// The query file (JSONL or a JSON array).
    #[arg(long)]
    pub input: PathBuf,
    /// auto, question, gsm8k, wizardlm or ptr_sample.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Use the first N queries.
    #[arg(long)]
    pub limit: Option<usize>,
    /// The weak model: an id from models.toml, or a remote model with --weak-url.
    #[arg(long)]
    pub weak_model: Option<String>,
    /// An OpenAI-compatible endpoint for the weak model (e.g. http://host:8000/v1).
    #[arg(long)]
    pub weak_url: Option<String>,
    #[arg(long, default_value_t = 0.7)]
    pub weak_temperature: f64,
    #[arg(long, default_value_t = 256)]
    pub weak_max_tokens: u32,
    /// The strong model: an id from models.toml, or a remote model with --strong-url.
    #[arg(long)]
    pub strong_model: Option<String>,
    #[arg(long)]
    pub strong_url: Option<String>,
    #[arg(long, default_value_t = 0.7)]
    pub strong_temperature: f64,
    #[arg(long, default_value_t = 512)]
    pub strong_max_tokens: u32,
    /// Environment variable holding the remote endpoints' API key.
    #[arg(long)]
    pub api_key_env: Option<String>,
    #[arg(long, default_value_t = 2)]
    pub n_thoughts: u32,
    /// Answer samples compared by the consistency filter.
    #[arg(long, default_value_t = 3)]
    pub k: u32,
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    pub threshold: f32,
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Import `ptr_sample` records as they are, generating nothing.
    #[arg(long)]
    pub import: bool,
    /// Output folder.
    #[arg(long, default_value = "dataset")]
    pub out: PathBuf,
    #[command(flatten)]
    pub source: ModelSource,
}

fn role(
    model: &Option<String>,
    url: &Option<String>,
    key: &Option<String>,
    t: f64,
    max: u32,
) -> Option<RoleSpec> {
    model.as_ref().map(|m| RoleSpec {
        model: m.clone(),
        base_url: url.clone(),
        api_key_env: url.as_ref().and(key.clone()),
        temperature: Some(t),
        top_p: None,
        max_tokens: Some(max),
        icl_examples_file: None,
        icl_examples: None,
    })
}

/// Runs `build-dataset`.
pub async fn run(args: BuildDatasetArgs, embedder: EmbedderLoader) -> anyhow::Result<()> {
    let content = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let format: InputFormat = serde_json::from_value(json!(args.format))
        .context("--format must be auto, question, gsm8k, wizardlm or ptr_sample")?;
    let state_dir = args.out.join(".state");
    let store = Arc::new(Store::open(&state_dir)?);
    let mut spec = DatasetSpec {
        input_file: String::new(),
        input_format: format,
        limit: args.limit,
        weak: role(
            &args.weak_model,
            &args.weak_url,
            &args.api_key_env,
            args.weak_temperature,
            args.weak_max_tokens,
        ),
        strong: role(
            &args.strong_model,
            &args.strong_url,
            &args.api_key_env,
            args.strong_temperature,
            args.strong_max_tokens,
        ),
        n_thoughts: args.n_thoughts,
        instruction: None,
        filter: FilterSpec {
            k: args.k,
            threshold: args.threshold,
            ..FilterSpec::default()
        },
        concurrency: args.concurrency,
        import: args.import,
        suffix: None,
        metadata: None,
    };
    if let Err(e) = spec.check() {
        bail!("--{}: {}", e.param.replace(['.', '_'], "-"), e.message);
    }
    // The same arguments and input resume the same job.
    let key = hex::encode(Sha256::digest(format!(
        "{}{}",
        hex::encode(Sha256::digest(&content)),
        serde_json::to_string(&spec)?
    )));
    let existing = store
        .list_jobs(&[], &[], None, 1000)?
        .into_iter()
        .find(|j| j.spec["metadata"]["cli_key"] == json!(key));
    let pool = super::cli_models::load_local(&args, &spec).await?;
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
                content: &content,
                status: FileStatus::Processed,
                status_details: None,
            })?;
            spec.input_file = file.id;
            spec.metadata = Some(json!({"cli_key": key}));
            resolver
                .resolve(&spec, &store, true)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.param, e.message))?;
            manager
                .create(JobKind::Dataset, serde_json::to_value(&spec)?, Some(key))
                .await?
        }
    };
    let job = follow(&manager, &job.id).await?;
    export(&store, &job, &args.out)?;
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
fn export(store: &Store, job: &crate::store::JobRow, out: &std::path::Path) -> anyhow::Result<()> {
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

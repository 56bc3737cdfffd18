//! `ptr-server build-dataset`: the dataset job run from a shell. The arguments become a
//! [`DatasetSpec`], checked as the admin API checks one; the job runs in the application core
//! ([`crate::app::App`], its HTTP router called in process, no socket) with its store in
//! `<out>/.state`, on local models (loaded from models.toml) or remote endpoints, with a progress
//! bar (records, records per minute, acceptance rate); its outputs are exported into `<out>`.
//! The same arguments again resume the same job.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::serve::ServeArgs;
use super::source::ModelSourceArgs;
use crate::engine::DeviceSpec;
use crate::jobs::dataset::input::InputFormat;
use crate::jobs::dataset::spec::{DatasetSpec, FilterSpec, RoleSpec, DEFAULT_THRESHOLD};
use crate::jobs::dataset::DatasetState;
use crate::jobs::{JobKind, JobState};
use crate::store::{FileStatus, JobStatus, NewFile};

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
    /// Output folder (and the job store, `.state`: the resume point).
    #[arg(long, default_value = "dataset")]
    pub out: PathBuf,
    /// Where the local models run: cpu, cuda[:N] or metal.
    #[arg(long, env = "PTR_DEVICE", default_value = "cpu")]
    pub device: DeviceSpec,
    #[command(flatten)]
    pub source: ModelSourceArgs,
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

impl BuildDatasetArgs {
    /// The job's spec (its input file still unset), checked.
    pub fn spec(&self) -> anyhow::Result<DatasetSpec> {
        let format: InputFormat = serde_json::from_value(json!(self.format))
            .context("--format must be auto, question, gsm8k, wizardlm or ptr_sample")?;
        let spec = DatasetSpec {
            input_file: String::new(),
            input_format: format,
            limit: self.limit,
            weak: role(
                &self.weak_model,
                &self.weak_url,
                &self.api_key_env,
                self.weak_temperature,
                self.weak_max_tokens,
            ),
            strong: role(
                &self.strong_model,
                &self.strong_url,
                &self.api_key_env,
                self.strong_temperature,
                self.strong_max_tokens,
            ),
            n_thoughts: self.n_thoughts,
            instruction: None,
            filter: FilterSpec {
                k: self.k,
                threshold: self.threshold,
                ..FilterSpec::default()
            },
            concurrency: self.concurrency,
            import: self.import,
            suffix: None,
            metadata: None,
        };
        if let Err(e) = spec.check() {
            bail!("--{}: {}", e.param.replace(['.', '_'], "-"), e.message);
        }
        Ok(spec)
    }

    /// The roles' models that run here (those without an endpoint).
    fn local_models(&self) -> Vec<String> {
        let roles = [
            (&self.weak_model, &self.weak_url),
            (&self.strong_model, &self.strong_url),
        ];
        let mut models: Vec<String> = Vec::new();
        for (model, url) in roles {
            if let (Some(m), None) = (model, url) {
                if !models.contains(m) {
                    models.push(m.clone());
                }
            }
        }
        models
    }

    /// The application's settings: `serve`'s defaults, this command's device and models, the
    /// job store under `<out>/.state`, one job at a time.
    fn config(&self) -> anyhow::Result<crate::config::ServeConfig> {
        let mut config = ServeArgs::in_process(&self.source, self.device, self.local_models(), 1)?;
        config.fetch = true;
        config.data_dir = self.out.join(".state");
        config.admin.admin_token = Some("build-dataset".into());
        config.admin.max_running_jobs = 1;
        Ok(config)
    }
}

/// Runs `build-dataset`.
pub async fn run(args: BuildDatasetArgs) -> anyhow::Result<()> {
    let input = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let mut spec = args.spec()?;
    let config = args.config()?;
    let app = crate::app::App::build(&config)?;
    // The job's local roles generate through the server's API in process (no socket).
    let _routes = crate::server::routes(&config, &app);
    let admin = app.admin.clone().context("no back office: this is a bug")?;
    for model in args.local_models() {
        eprintln!("loading {model} …");
        app.models
            .load(&model)
            .await
            .map_err(|e| anyhow::anyhow!("{e} (or give its --weak-url/--strong-url)"))?;
    }
    // Its models are loaded: a job resumed from an earlier run of this command finds them ready.
    admin.start_jobs()?;
    let key = hex::encode(Sha256::digest(format!(
        "{}{}",
        hex::encode(Sha256::digest(&input)),
        serde_json::to_string(&spec)?
    )));
    let job = match super::follow::earlier_job(&admin.store, "dataset", &key)? {
        Some(job) => job,
        None => {
            let file = admin.store.insert_file(NewFile {
                filename: "input",
                purpose: "user_data",
                content: &input,
                status: FileStatus::Processed,
                status_details: None,
            })?;
            spec.input_file = file.id;
            spec.metadata = Some(json!({"cli_key": key}));
            admin.datasets.resolve(&spec, &admin.store, true).await?;
            admin
                .jobs
                .create(JobKind::Dataset, serde_json::to_value(&spec)?, Some(key))
                .await?
        }
    };
    let started = std::time::Instant::now();
    let template = "{elapsed_precise} [{bar:30}] {pos}/{len} records · {msg}";
    let job = super::follow::follow(&admin.jobs, &job.id, template, |job, bar| {
        let c = DatasetState::of(job).request_counts.unwrap_or_default();
        bar.set_length(c.total as u64);
        bar.set_position(c.completed as u64);
        let minutes = (started.elapsed().as_secs_f64() / 60.0).max(1e-9);
        let rate = c.accepted as f64 / c.completed.max(1) as f64;
        bar.set_message(format!(
            "{:.1}/min · {:.0}% accepted · {} failed",
            c.completed as f64 / minutes,
            rate * 100.0,
            c.failed
        ));
        Ok(())
    })
    .await?;
    // The scheduler stops before the runtime does (the job has ended: nothing to pause).
    admin.jobs.shutdown(std::time::Duration::from_secs(5)).await;
    crate::jobs::dataset::export::export(&admin.store, &job, &args.out)?;
    match job.status {
        JobStatus::Succeeded => Ok(()),
        s => bail!(
            "the job ended {}: {}",
            s.as_str(),
            job.error.unwrap_or(Value::Null)
        ),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use crate::engine::DeviceSpec;

    fn args(extra: &[&str]) -> super::BuildDatasetArgs {
        let mut argv = vec!["ptr-server", "build-dataset", "--input", "q.jsonl"];
        argv.extend_from_slice(extra);
        match Cli::parse_from(argv).command {
            Command::BuildDataset(a) => a,
            _ => unreachable!("parsed build-dataset"),
        }
    }

    #[test]
    fn the_device_and_the_local_roles_reach_the_engine_options() {
        let a = args(&[
            "--device",
            "cuda:1",
            "--weak-model",
            "w",
            "--strong-model",
            "s",
            "--out",
            "o",
        ]);
        let config = a.config().unwrap();
        assert_eq!(config.device, DeviceSpec::Cuda(1));
        assert_eq!(config.load, ["w", "s"]);
        assert_eq!(config.data_dir, std::path::Path::new("o/.state"));
        let options = crate::app::load_options(&config);
        assert_eq!(options.device, DeviceSpec::Cuda(1));
        assert_eq!(options.recycle_after, 0, "only a CPU engine is recycled");
        // A remote role is not loaded here; one model for both roles is loaded once.
        let a = args(&[
            "--weak-model",
            "w",
            "--strong-model",
            "s",
            "--strong-url",
            "http://x/v1",
        ]);
        assert_eq!(a.local_models(), ["w"]);
        let a = args(&["--weak-model", "m", "--strong-model", "m"]);
        assert_eq!(a.local_models(), ["m"]);
        assert_eq!(args(&[]).config().unwrap().device, DeviceSpec::Cpu);
    }
}

//! `ptr-server build-dataset`: the dataset job run from a shell. The arguments become a
//! [`DatasetSpec`], checked as the admin API checks one; [`standalone::run`] runs it.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;

use super::source::ModelSourceArgs;
use crate::jobs::dataset::input::InputFormat;
use crate::jobs::dataset::spec::{DatasetSpec, FilterSpec, RoleSpec, DEFAULT_THRESHOLD};
use crate::jobs::dataset::standalone;
use crate::registry::ModelRegistry;

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
}

/// Runs `build-dataset`.
pub async fn run(args: BuildDatasetArgs) -> anyhow::Result<()> {
    let source = args.source.source();
    let registry = ModelRegistry::load(&source.models)?;
    let embedder = crate::server::embedder_loader(registry, source.cache.clone());
    let input = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let spec = args.spec()?;
    standalone::run(spec, &input, &args.out, &source, embedder).await
}

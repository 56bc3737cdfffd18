//! `ptr-server fetch-model`: download models and sentence embedders named in models.toml into the
//! model cache.

use anyhow::Context;
use clap::Args;

use super::source::ModelSourceArgs;
use crate::registry::ModelRegistry;

/// `fetch-model` arguments.
#[derive(Debug, Clone, Args)]
pub struct FetchArgs {
    /// Model or embedder ids to fetch [default: the default model].
    pub ids: Vec<String>,
    /// Fetch every model and embedder in models.toml.
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
    #[command(flatten)]
    pub source: ModelSourceArgs,
}

/// Fetches what `args` names (the default model when it names nothing), on a blocking thread.
pub async fn run(args: FetchArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || fetch_models(&args)).await?
}

fn fetch_models(args: &FetchArgs) -> anyhow::Result<()> {
    let source = args.source.source();
    let registry = ModelRegistry::load(&source.models)?;
    let specs: Vec<_> = if args.all {
        registry.artifacts().collect()
    } else if args.ids.is_empty() {
        vec![registry.default_model().into()]
    } else {
        args.ids
            .iter()
            .map(|id| {
                registry
                    .artifact(id)
                    .with_context(|| format!("models.toml declares no model or embedder `{id}`"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    for spec in specs {
        let (path, fetched) = source.cache.ensure(spec)?;
        let what = if fetched { "fetched" } else { "already cached" };
        println!("{}: {what} at {}", spec.id, path.display());
    }
    Ok(())
}

//! What each subcommand does, once the command line is parsed.

use anyhow::Context;

use crate::config::{Cli, Command, FetchArgs};
use crate::registry::ModelRegistry;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(config) => {
            tracing::info!(cpu = %crate::cpu::report(), ?config, "starting");
            crate::server::start(config)
                .await?
                .run_until(crate::server::shutdown_signal())
                .await
        }
        Command::FetchModel(args) => {
            tokio::task::spawn_blocking(move || fetch_models(&args)).await?
        }
        Command::Openapi => {
            print!("{}", crate::http::docs::spec_json());
            Ok(())
        }
        Command::Bench(args) => crate::bench::run(args).await,
        Command::BenchRefine(args) => crate::bench::run_refine(args).await,
        Command::BuildDataset(args) => {
            let registry = ModelRegistry::load(&args.source.models)?;
            let cache = args.source.cache();
            let embedder = crate::server::embedder_loader(registry, cache);
            crate::jobs::dataset::cli::run(args, embedder).await
        }
        Command::Eval(args) => crate::eval::run_cli(*args).await,
        Command::Train(args) => crate::train::command(args).await,
    }
}

fn fetch_models(args: &FetchArgs) -> anyhow::Result<()> {
    let registry = ModelRegistry::load(&args.source.models)?;
    let cache = args.source.cache();
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
        let (path, fetched) = cache.ensure(spec)?;
        let what = if fetched { "fetched" } else { "already cached" };
        println!("{}: {what} at {}", spec.id, path.display());
    }
    Ok(())
}

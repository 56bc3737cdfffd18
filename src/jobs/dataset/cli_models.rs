//! Local models for `build-dataset`: the roles that name no endpoint are loaded from models.toml
//! (fetched if missing) into a model pool, as `serve` would.

use std::sync::Arc;

use anyhow::Context;

use super::cli::BuildDatasetArgs;
use super::spec::DatasetSpec;
use crate::config::DeviceSpec;
use crate::engine::mistral::{LoadOptions, MistralEngine};
use crate::fetch::ModelCache;
use crate::http::{ModelPool, ModelSlot};
use crate::registry::ModelRegistry;

/// Loads every local model the spec names.
pub async fn load_local(
    args: &BuildDatasetArgs,
    spec: &DatasetSpec,
) -> anyhow::Result<Arc<ModelPool>> {
    let registry = ModelRegistry::load(&args.source.models)?;
    let cache = ModelCache::new(
        args.source
            .model_cache
            .clone()
            .unwrap_or_else(ModelCache::default_dir),
        args.source.python.clone(),
    );
    let pool = Arc::new(ModelPool::new(&registry.default_model().id));
    let opts = LoadOptions {
        device: DeviceSpec::Cpu,
        max_num_seqs: 16,
        prefix_cache_n: 16,
        recycle_after: 32,
    };
    for role in [&spec.weak, &spec.strong].into_iter().flatten() {
        if role.base_url.is_some() || pool.resolve(Some(&role.model)).is_ok() {
            continue;
        }
        let model = registry
            .get(&role.model)
            .with_context(|| {
                format!(
                    "models.toml declares no model `{}` (or give its --*-url)",
                    role.model
                )
            })?
            .clone();
        let c = cache.clone();
        let m = model.clone();
        let path = tokio::task::spawn_blocking(move || c.ensure(&m).map(|(p, _)| p)).await??;
        eprintln!("loading {} …", model.id);
        let engine = MistralEngine::load(&model.id, &path, &opts)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", model.id))?;
        pool.set(
            &model.id,
            ModelSlot::Ready(Arc::new(engine)),
            model.refinement.clone(),
        );
    }
    Ok(pool)
}

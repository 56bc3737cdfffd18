//! Local models for the dataset job without a server ([`super::standalone`]): the roles that name no endpoint are loaded from models.toml
//! (fetched if missing) through a [`ModelManager`], as `serve` loads them.

use std::sync::Arc;

use super::spec::DatasetSpec;
use crate::config::ModelSource;
use crate::engine::mistral::LoadOptions;
use crate::engine::DeviceSpec;
use crate::models::{MistralLoader, ModelManager, RuntimeStore};
use crate::registry::ModelRegistry;

/// Loads every local model the spec names.
pub async fn load_local(
    source: &ModelSource,
    spec: &DatasetSpec,
) -> anyhow::Result<Arc<ModelManager>> {
    let registry = ModelRegistry::load(&source.models)?;
    let cache = source.cache.clone();
    let options = LoadOptions {
        device: DeviceSpec::Cpu,
        max_num_seqs: 16,
        prefix_cache_n: 16,
        recycle_after: 32,
    };
    let loader = Arc::new(MistralLoader {
        cache,
        fetch: true,
        options,
    });
    let models = Arc::new(ModelManager::new(
        &registry,
        RuntimeStore::memory(),
        loader,
        16,
    )?);
    for role in [&spec.weak, &spec.strong].into_iter().flatten() {
        if role.base_url.is_none() && models.resolve(Some(&role.model)).is_err() {
            eprintln!("loading {} …", role.model);
            models
                .load(&role.model)
                .await
                .map_err(|e| anyhow::anyhow!("{e} (or give its --weak-url/--strong-url)"))?;
        }
    }
    Ok(models)
}

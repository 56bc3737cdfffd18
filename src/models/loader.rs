//! [`EngineLoader`]: how a [`ModelSpec`] becomes a running engine. The manager only decides
//! *when* to load; the loader knows *how*. [`MistralLoader`] finds (or fetches) the weights in
//! the model cache and starts a mistral.rs engine; tests plug in a loader of fake engines.

use std::sync::Arc;

use crate::engine::mistral::{LoadOptions, MistralEngine};
use crate::engine::Engine;
use crate::fetch::ModelCache;
use crate::registry::ModelSpec;

/// Builds engines from specs.
#[async_trait::async_trait]
pub trait EngineLoader: Send + Sync {
    /// Loads the model; the error is a message for the log and the model's status.
    async fn load(&self, spec: &ModelSpec) -> Result<Arc<dyn Engine>, String>;

    /// The file a model needs that is not there and that no fetch can bring (a `path` model
    /// whose file another command makes): then there is nothing to try, and nothing failed.
    fn missing_file(&self, _spec: &ModelSpec) -> Option<std::path::PathBuf> {
        None
    }
}

/// Loads GGUF models into mistral.rs.
pub struct MistralLoader {
    pub cache: ModelCache,
    /// Fetch a wheel-sourced model that is not in the cache yet (else: fail with how to fetch).
    pub fetch: bool,
    pub options: LoadOptions,
}

#[async_trait::async_trait]
impl EngineLoader for MistralLoader {
    async fn load(&self, spec: &ModelSpec) -> Result<Arc<dyn Engine>, String> {
        let (cache, fetch, s) = (self.cache.clone(), self.fetch, spec.clone());
        // Hashing (and maybe downloading) the weights is blocking work.
        let path = tokio::task::spawn_blocking(move || {
            if fetch {
                cache.ensure(&s).map(|(path, _)| path)
            } else {
                cache.verify(&s)
            }
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let engine = MistralEngine::load(&spec.id, &path, &self.options)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(engine))
    }

    fn missing_file(&self, spec: &ModelSpec) -> Option<std::path::PathBuf> {
        spec.path.clone().filter(|p| !p.is_file())
    }
}

//! [`FakeLoader`]: a model loader of scripted [`FakeEngine`]s, for a [`super::ModelManager`] in
//! tests (compiled for tests only, like the fake engine: feature `fake-engine`).

use std::sync::Arc;

use crate::engine::fake::FakeEngine;
use crate::engine::Engine;

/// Loads [`FakeEngine`]s by model id, for a [`super::ModelManager`] in tests. While
/// `gate` has no permits, loads wait (a model stays `loading`).
pub struct FakeLoader {
    pub engines: Vec<FakeEngine>,
    pub gate: Arc<tokio::sync::Semaphore>,
}

impl FakeLoader {
    pub fn new(engines: Vec<FakeEngine>) -> Self {
        Self {
            engines,
            gate: Arc::new(tokio::sync::Semaphore::new(
                tokio::sync::Semaphore::MAX_PERMITS,
            )),
        }
    }

    /// A model manager serving `engine` (loaded) as its only, default model.
    pub async fn serving(engine: FakeEngine) -> Arc<super::ModelManager> {
        let id = engine.model_id().to_string();
        let registry = crate::registry::ModelRegistry::parse(&format!(
            "default_model = \"{id}\"\n[[model]]\nid = \"{id}\"\npath = \"/nonexistent/{id}.gguf\"\n"
        ))
        .expect("a one-model registry parses: this is a bug");
        let models = super::ModelManager::new(
            &registry,
            super::RuntimeStore::memory(),
            Arc::new(Self::new(vec![engine])),
            4,
        )
        .expect("a manager of one fake model builds: this is a bug");
        models
            .load(&id)
            .await
            .expect("a fake model loads: this is a bug");
        Arc::new(models)
    }
}

#[async_trait::async_trait]
impl super::EngineLoader for FakeLoader {
    async fn load(&self, spec: &crate::registry::ModelSpec) -> Result<Arc<dyn Engine>, String> {
        let _pass = self.gate.acquire().await.map_err(|e| e.to_string())?;
        self.engines
            .iter()
            .find(|e| e.model_id() == spec.id)
            .map(|e| Arc::new(e.clone()) as Arc<dyn Engine>)
            .ok_or_else(|| format!("no fake engine for `{}`", spec.id))
    }
}
